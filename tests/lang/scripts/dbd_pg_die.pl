# DBD::Pg, leaking: the program dies (no eval) with two AutoCommit => 0 handles inside their
# transactions, neither disconnected: a global (`our`), destroyed in Perl's global destruction, and a
# lexical of the sub that dies, freed while die unwinds the program's scopes (inside
# Perl_my_failure_exit). DBI rolls both inserts back and DBD::Pg closes both handles (teardown).
use strict;
use warnings;
use DBI;

sub open_db {
    my ($name) = @_;
    my $dbh = DBI->connect("dbi:Pg:application_name=$name", "", "",
                           {AutoCommit => 0, RaiseError => 1, PrintWarn => 0});
    $dbh->do("create temporary table pending (n int)");
    $dbh->do("insert into pending values (1)");
    return $dbh;
}

our $global = open_db("dbd_pg_die_global");

sub finish {
    my $lexical = open_db("dbd_pg_die_lexical");
    $| = 1;
    print "done\n";
    die "dbd_pg_die: giving up\n";
}

finish();
