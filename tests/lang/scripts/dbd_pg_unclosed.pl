# DBD::Pg, leaking: POSIX::_exit skips every destructor, so nothing ever closes the handle (unclosed).
use strict;
use warnings;
use DBI;
use POSIX ();

my $dbh = DBI->connect("dbi:Pg:", "", "", {AutoCommit => 1, RaiseError => 1});  # pqleak-test: open
$dbh->do("select 1");
$| = 1;
print "done\n";
POSIX::_exit(0);
