#!/usr/bin/env bash
# End to end, real shim and real server: a shell script's process tree where cli_leaker processes leak
# from two sites among clean psql runs. Exit 23; one group per leak site, with the right program,
# counts summed over processes, targets named; the merged JSON and JUnit agree. The per-process reports
# the shim wrote are grouped already (the command merges by symbolized stack again, so only they show
# the shim's own grouping): one group per leak site, all its connections in it.
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"

tree='
  psql -XAtqc "select 1" >/dev/null
  "$CLI_LEAKER" a 2 &
  "$CLI_LEAKER" a 1
  wait
  "$CLI_LEAKER" b 1 | cat
  "$CLI_LEAKER" clean 3
  psql -XAtqc "select 1" >/dev/null
'
expect 23 "$PQLEAK" run --json "$T/m.json" --junit "$T/j.xml" -- bash -c "$tree"
leaker=$(realpath "$CLI_LEAKER")
has "$T/err" "pqleak: 3 connections leaked (unclosed: not closed before exit), opened at leak_site_a (cli_leaker.c:"
has "$T/err" "pqleak: 1 connection leaked (unclosed: not closed before exit), opened at leak_site_b (cli_leaker.c:"
has "$T/err" "    in: $leaker (pids "
has "$T/err" "    to: $PGHOST:5432 postgres postgres"
has "$T/err" " leak_site_a $PQLEAK_SRC/tests/cli/cli_leaker.c:"
has "$T/err" " main $PQLEAK_SRC/tests/cli/cli_leaker.c:"
has "$T/err" "pqleak: 4 connections leaked in 2 groups across 6 processes"
hasnt "$T/err" "clean_site"
hasnt "$T/err" "psql"
# the shim printed no text report of its own (PQLEAK_TEXT_REPORT=0)
[ "$(count "$T/err" "leak_site_a (cli_leaker.c:")" -eq 1 ] || { show; fail "leak_site_a reported more than once"; }

pyjson "$T/m.json" \
  'd["trigger"] == "merged" and d["pid"] is None' \
  'len(d["processes"]) == 6' \
  'sorted(p["program"].rsplit("/", 1)[-1] for p in d["processes"]) == ["cli_leaker"] * 4 + ["psql"] * 2' \
  'len(d["leaks"]) == 2' \
  'sorted(l["count"] for l in d["leaks"]) == [1, 3]' \
  'all(l["kind"] == "unclosed" and l["suppressed"] is False for l in d["leaks"])' \
  'sorted(len(l["processes"]) for l in d["leaks"]) == [1, 2]' \
  'all(p["program"].endswith("/cli_leaker") for l in d["leaks"] for p in l["processes"])' \
  'sorted(next(f["function"] for f in d["stacks"][str(l["stack"])] if f["function"] and f["function"].startswith("leak_site")) for l in d["leaks"]) == ["leak_site_a", "leak_site_b"]' \
  'len(d["connections"]) == 4' \
  'all(c["target"]["dbname"] == "postgres" and c["target"]["user"] == "postgres" for c in d["connections"])' \
  'd["utilization"]["opened_total"] >= 9'

xmllint --noout "$T/j.xml" || fail "j.xml is not well-formed"
[ "$(xmllint --xpath 'count(//testcase/failure)' "$T/j.xml")" = 2 ] || fail "expected 2 JUnit failures"

# The same reports, kept and read again with `pqleak report`.
expect 23 "$PQLEAK" run --report-dir "$T/reports" -- bash -c "$tree"
ls "$T/reports"/pqleak-*-exit-*.json >/dev/null || fail "no exit reports in --report-dir"
[ "$(ls "$T/reports" | wc -l)" -eq 6 ] || { ls -la "$T/reports"; fail "expected 6 reports (one per process)"; }
groups=$("${PYTHON:-python3}" - "$T/reports" <<'PY'
import glob, json, sys
out = []
for f in sorted(glob.glob(sys.argv[1] + "/pqleak-*-exit-*.json")):
    d = json.load(open(f))
    name = d["program"].rsplit("/", 1)[-1]
    site = lambda l: next((f["function"] for f in d["stacks"][str(l["stack"])]
                           if (f["function"] or "").startswith("leak_site")), None)
    out.append("%s:%s" % (name, ",".join("%s*%d/%d" % (site(l), l["count"], len(l["connections"]))
                                         for l in d["leaks"])))
print(" ".join(sorted(out)))
PY
)
[ "$groups" = "cli_leaker: cli_leaker:leak_site_a*1/1 cli_leaker:leak_site_a*2/2 cli_leaker:leak_site_b*1/1 psql: psql:" ] ||
  fail "the shim's own leak groups per process (program:site*count/connections) are: $groups"
expect 23 "$PQLEAK" report "$T/reports"
has "$T/out" "pqleak: 4 connections leaked in 2 groups across 6 processes"
echo PASS
