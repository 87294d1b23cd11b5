# DBD::Pg, idle: a global AutoCommit handle, its work done, never disconnected. Perl's global destruction
# closes it with nothing in flight (held: a leak only in strict mode).
use strict;
use warnings;
use DBI;

our $dbh = DBI->connect("dbi:Pg:application_name=dbd_pg_held", "", "", {AutoCommit => 1, RaiseError => 1});  # pqleak-test: open
$dbh->do("select 1");
print "done\n";
