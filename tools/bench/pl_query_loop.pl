# The Perl query workload of tools/bench/run (pl_query): a Perl script's short work with DBI and
# DBD::Pg, in one process: CONNECTS x (connect; QUERIES x `select 1`; TXNS x a short transaction,
# begin_work / select 1 / commit; disconnect). The connection comes from PG* variables.
#
#     perl pl_query_loop.pl [CONNECTS [QUERIES [TXNS]]]     (defaults 40, 100, 100)
#
# Prints "transactions <n>" and exits 0; a failed connect or query dies (exit 255). Every connection is
# closed, so the shim never reports a leak.
use strict;
use warnings;
use DBI;

my ($connects, $queries, $txns) = (@ARGV, 40, 100, 100)[0 .. 2];
for (1 .. $connects) {
    my $dbh = DBI->connect("dbi:Pg:", "", "", {AutoCommit => 1, RaiseError => 1, PrintError => 0});
    $dbh->do("select 1") for 1 .. $queries;
    for (1 .. $txns) {
        $dbh->begin_work;
        $dbh->do("select 1");
        $dbh->commit;
    }
    $dbh->disconnect;
}
print "transactions ", $connects * $txns, "\n";
