#!/usr/bin/env bash
# Issue 12: misuse is a finding. A connection used by two threads at once, or by a forked child that
# did not open it, fails `pqleak report` and `pqleak run` with 23 (unless --no-fail), named at the
# using line in the summary, the merged JSON and JUnit. Except a fork hand-off (pg_basebackup -X
# stream): the child used and closed the parent's connection and the parent never used it after the
# child's first use; then the parent's copy is no leak and the child's use no finding.
# Hand-written reports in data/misuse and data/handoff.
source "$(dirname "$0")/lib.sh"
command -v xmllint >/dev/null || fail "xmllint is missing (package libxml2-utils; see tools/deps)"
U=$CLI_DATA/misuse
H=$CLI_DATA/handoff

expect 23 "$PQLEAK" report "$U"
has "$T/out" "pqleak: connection misuse (threads: used by two threads at once), used at worker_query (worker.c:57)"
has "$T/out" "    in: pid 3001 (opened by pid 3001)"
has "$T/out" "    2 times"
has "$T/out" "    to: server pid 3100"
has "$T/out" "      #1 worker_query /src/server/worker.c:57 (server+0x3210)"
has "$T/out" "      #1 open_shared /src/server/db.c:14 (server+0x2010)"
has "$T/out" "pqleak: no connection leaks in 1 process; 2 connection misuses"

expect 23 "$PQLEAK" run -- sh -c 'cp "$1"/*.json "$PQLEAK_REPORT_DIR"/' sh "$U"
has "$T/err" "used at worker_query (worker.c:57)"
expect 0 "$PQLEAK" run --no-fail -- sh -c 'cp "$1"/*.json "$PQLEAK_REPORT_DIR"/' sh "$U"
expect 5 "$PQLEAK" run --exitcode 5 -- sh -c 'cp "$1"/*.json "$PQLEAK_REPORT_DIR"/' sh "$U"

# JUnit: one failing test case per misuse site.
expect 23 "$PQLEAK" report --junit "$T/j.xml" "$U"
xmllint --noout "$T/j.xml"
[ "$(xmllint --xpath 'count(//testcase)' "$T/j.xml")" = 1 ] || fail "expected 1 test case"
[ "$(xmllint --xpath 'count(//testcase/failure)' "$T/j.xml")" = 1 ] || fail "expected 1 failure"
[ "$(xmllint --xpath 'string(/testsuites/@failures)' "$T/j.xml")" = 1 ] || fail "testsuites@failures"
xmllint --xpath 'string(//testcase[1]/@name)' "$T/j.xml" >"$T/n"
has "$T/n" "threads connection misuse at worker_query (worker.c:57)"

# The merged JSON: a "misuse" list, which reads back as a finding.
expect 23 "$PQLEAK" report --json "$U"
cp "$T/out" "$T/m.json"
pyjson "$T/m.json" \
  'len(d["misuse"]) == 2' \
  'd["misuse"][0]["kind"] == "threads" and d["misuse"][0]["connection"] == 2 and d["misuse"][0]["pid"] == 3001 and d["misuse"][0]["server_pid"] == 3100' \
  'd["misuse"][0]["site"]["function"] == "worker_query" and not d["misuse"][0]["handed_off"]' \
  'd["stacks"][str(d["misuse"][0]["stack"])][1]["function"] == "worker_query"'
expect 23 "$PQLEAK" report "$T/m.json"
has "$T/out" "used at worker_query (worker.c:57)"

# A baseline cannot hide misuse; it says so.
expect 0 "$PQLEAK" suppressions "$U"
has "$T/out" "# 2 connection misuse finding(s) in these reports: no rule covers misuse; fix it"
hasnt "$T/out" "leak:"
expect 0 "$PQLEAK" suppressions "$H"
hasnt "$T/out" "misuse"
hasnt "$T/out" "leak:"

# A malformed misuse list is a corrupt report (the gate fails closed).
sed 's/"kind": "threads"/"kind": 7/' "$U/pqleak-3001-exit-0.json" >"$T/bad.json"
expect 2 "$PQLEAK" report "$T/bad.json"
has "$T/err" "corrupt report"

# The fork hand-off: no leak, no misuse, said so.
expect 0 "$PQLEAK" report "$H"
has "$T/out" "handed to child PID 4002, which used and closed it"
has "$T/out" "pqleak: no connection leaks in 2 processes"
hasnt "$T/out" "misuse ("
hasnt "$T/out" "leaked (unclosed"
expect 0 "$PQLEAK" run -- sh -c 'cp "$1"/*.json "$PQLEAK_REPORT_DIR"/' sh "$H"
has "$T/err" "handed to child PID 4002"
expect 0 "$PQLEAK" report --junit "$T/h.xml" "$H"
[ "$(xmllint --xpath 'count(//testcase/failure)' "$T/h.xml")" = 0 ] || fail "hand-off: expected no failure"
expect 0 "$PQLEAK" report --json "$H"
cp "$T/out" "$T/h.json"
pyjson "$T/h.json" 'all(m["handed_off"] for m in d["misuse"])' 'sum(l["count"] for l in d["leaks"]) == 0'
expect 0 "$PQLEAK" report "$T/h.json"

# The parent used the connection after the child's first use (idle 1 s before its exit at :10, the
# child's first use at :06): both a leak and a misuse.
mkdir "$T/late"
cp "$H/pqleak-4002-exit-0.json" "$T/late/"
sed 's/"idle_s": 5/"idle_s": 1/' "$H/pqleak-4001-exit-0.json" >"$T/late/pqleak-4001-exit-0.json"
expect 23 "$PQLEAK" report "$T/late"
has "$T/out" "pqleak: 1 connection leaked (unclosed: not closed before exit), opened at GetConnection (streamutil.c:170)"
has "$T/out" "pqleak: connection misuse (fork: used by a forked child that did not open it (parent and child share one session)), used at LogStreamerMain (pg_basebackup.c:520)"
has "$T/out" "pqleak: connection misuse (fork: closed by a forked child"
hasnt "$T/out" "handed to child"

# variant NAME PARENT CONN CHILD: the hand-off reports with members added (JSON objects): CONN to the
# parent's connection, CHILD to each of the child's entries (a list gives one value to each entry).
variant() {
  mkdir "$T/$1"
  python3 - "$T/$1" "$2" "$H/pqleak-4002-exit-0.json" "$3" "$4" <<'PY'
import json, sys
out, parent, child = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
parent["connections"][0].update(json.loads(sys.argv[4]))
for i, m in enumerate(child["misuse"]):
    m.update({k: v[i] if isinstance(v, list) else v for k, v in json.loads(sys.argv[5]).items()})
json.dump(parent, open(f"{out}/pqleak-4001-exit-0.json", "w"))
json.dump(child, open(f"{out}/pqleak-4002-exit-0.json", "w"))
PY
}
# The same clocks, but fork counts say the parent last used it before the fork that made the child
# (last_use_fork 0 < opener_fork 1): a hand-off whatever the clocks say (they have a tick's resolution;
# pg_basebackup's child queries within a millisecond of the fork).
variant counted "$T/late/pqleak-4001-exit-0.json" '{"last_use_fork": 0}' '{"opener_fork": 1}'
variant after "$T/late/pqleak-4001-exit-0.json" '{"last_use_fork": 1}' '{"opener_fork": 1}'
expect 0 "$PQLEAK" report "$T/counted"
has "$T/out" "handed to child PID 4002, which used and closed it"
hasnt "$T/out" "misuse ("
expect 0 "$PQLEAK" report --json "$T/counted"
cp "$T/out" "$T/c.json"
pyjson "$T/c.json" 'all(m["handed_off"] and m["opener_fork"] == 1 for m in d["misuse"])'
# After that fork (last_use_fork 1), the monotonic clock decides when both reports carry it: the
# parent's last use a microsecond after the child's first is misuse, though the ISO times (to the
# millisecond) would have called it a hand-off; a microsecond before is a hand-off.
for v in ns-after:5000001000 ns-before:4999999000; do
  variant "${v%%:*}" "$H/pqleak-4001-exit-0.json" "{\"last_use_fork\": 1, \"last_use_ns\": ${v#*:}}" \
    '{"opener_fork": 1, "mono_ns": [5000000000, 8000000000]}'
done
expect 23 "$PQLEAK" report "$T/ns-after"
has "$T/out" "used at LogStreamerMain (pg_basebackup.c:520)"
hasnt "$T/out" "handed to child"
expect 0 "$PQLEAK" report --json "$T/ns-before"
cp "$T/out" "$T/nb.json"
pyjson "$T/nb.json" 'all(m["handed_off"] for m in d["misuse"])' 'd["misuse"][0]["mono_ns"] == 5000000000'
# Used after that fork (last_use_fork 1): the clocks decide, and they say after the child's use.
expect 23 "$PQLEAK" report "$T/after"
has "$T/out" "used at LogStreamerMain (pg_basebackup.c:520)"
hasnt "$T/out" "handed to child"

# The child's report alone (no parent's connection to match): misuse.
expect 23 "$PQLEAK" report "$H/pqleak-4002-exit-0.json"
has "$T/out" "used at LogStreamerMain (pg_basebackup.c:520)"
echo PASS
