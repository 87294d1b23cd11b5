# DBD::Pg, clean by the program's own hand (the control of dbd_pg_teardown_lexical): handles with
# uncommitted work that the program drops itself, in the main program's scope (`undef $dbh`), at the end
# of an if block (its own enter/leave, as the main program's), of a bare block and of a sub. DBI rolls each back and DBD::Pg closes it: none of them is
# the runtime's teardown, so nothing is reported. (Warn => 0: DBI's own "Issuing rollback() due to DESTROY"
# warning names the script's path, which may contain "pqleak".)
use strict;
use warnings;
use DBI;

sub open_pending {
    my $dbh = DBI->connect("dbi:Pg:", "", "", {AutoCommit => 0, RaiseError => 1, PrintWarn => 0, Warn => 0});
    $dbh->do("create temporary table pending (n int)");
    $dbh->do("insert into pending values (1)");
    return $dbh;
}

sub work {
    my $dbh = open_pending();
    return 1;
}

my $dbh = open_pending();
undef $dbh;
if ($0) {
    my $in_if = open_pending();
    $in_if->do("select 1");
}
{
    my $inner = open_pending();
}
work();
print "done\n";
