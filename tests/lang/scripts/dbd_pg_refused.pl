# DBD::Pg under PQLEAK_MAX_CONNS=1: a second connect while the first handle is still open is refused by
# pqleak (this thread holds the only slot: waiting could never end); DBI->connect returns undef and
# $DBI::errstr carries pqleak's message. Once the first handle is disconnected, a connect succeeds: the
# refused one took no slot. Every handle the program got is disconnected (clean).
use strict;
use warnings;
use DBI;

$| = 1;
my %attr = (AutoCommit => 1, RaiseError => 0, PrintError => 0, PrintWarn => 0);
my $held = DBI->connect("dbi:Pg:application_name=dbd_pg_refused_held", "", "", \%attr)  # pqleak-test: open
    or die "first connect failed: $DBI::errstr\n";
$held->do("select 1") or die "select failed: $DBI::errstr\n";
my $second = DBI->connect("dbi:Pg:application_name=dbd_pg_refused_second", "", "", \%attr);
if ($second) {
    print "second connect succeeded\n";
    $second->disconnect;
} else {
    my $msg = $DBI::errstr // "";
    $msg =~ s/\s+\z//;
    print "refused: $msg\n";
}
$held->disconnect;
my $again = DBI->connect("dbi:Pg:application_name=dbd_pg_refused_again", "", "", \%attr)
    or die "connect after the disconnect failed: $DBI::errstr\n";
$again->disconnect;
print "done\n";
