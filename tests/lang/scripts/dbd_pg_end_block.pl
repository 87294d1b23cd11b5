# DBD::Pg, clean: the program ends its transaction and disconnects in an END block, which Perl runs
# inside perl_destruct, before global destruction: the program's own close, not the runtime's teardown.
use strict;
use warnings;
use DBI;

our $dbh = DBI->connect("dbi:Pg:", "", "", {AutoCommit => 0, RaiseError => 1, PrintWarn => 0});
$dbh->do("create temporary table pending (n int)");
$dbh->do("insert into pending values (1)");
print "done\n";

END {
    $dbh->rollback;
    $dbh->disconnect;
}
