# DBD::Pg, leaking: an AutoCommit => 0 handle with work in its transaction, never disconnected. Perl's
# global destruction destroys it; DBI rolls the insert back and DBD::Pg closes it (teardown).
use strict;
use warnings;
use DBI;

our $dbh = DBI->connect("dbi:Pg:", "", "", {AutoCommit => 0, RaiseError => 1, PrintWarn => 0});  # pqleak-test: open
$dbh->do("create temporary table pending (n int)");  # pqleak-test: begin
$dbh->do("insert into pending values (1)");
print "done\n";
