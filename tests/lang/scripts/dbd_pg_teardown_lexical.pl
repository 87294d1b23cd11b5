# DBD::Pg, leaking: as dbd_pg_teardown.pl, but the handle is a file-scoped lexical (`my $dbh`, the usual
# idiom). Perl frees it when the main program's scope is left at its end, after the last statement,
# just before perl_run returns (not in perl_destruct); DBI rolls the insert back (teardown).
use strict;
use warnings;
use DBI;

my $dbh = DBI->connect("dbi:Pg:", "", "", {AutoCommit => 0, RaiseError => 1, PrintWarn => 0});  # pqleak-test: open
$dbh->do("create temporary table pending (n int)");  # pqleak-test: begin
$dbh->do("insert into pending values (1)");
print "done\n";
