# DBD::Pg, clean: the work committed, the handle disconnected.
use strict;
use warnings;
use DBI;

my $dbh = DBI->connect("dbi:Pg:", "", "", {AutoCommit => 0, RaiseError => 1});
$dbh->do("create temporary table pending (n int)");
$dbh->do("insert into pending values (1)");
$dbh->commit;
$dbh->disconnect;
print "done\n";
