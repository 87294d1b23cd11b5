#!/usr/bin/env bash
# End to end, real shim and real server (issue 12): misuse fails `pqleak run` like a leak, named at the
# using line; a fork hand-off (the child uses and closes the parent's connection, the parent never
# touches it again, as pg_basebackup -X stream does) is neither a leak nor misuse; when the parent
# queries it after the child's use, it is both.
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"

expect 0 "$PQLEAK" run --report-dir "$T/hr" --json "$T/h.json" -- "$CLI_LEAKER" handoff
# The exact order behind it: the parent's copy was last used before its first fork (at its opening),
# and the child came of that fork.
python3 - "$T/hr" <<'PY' || fail "fork counts in the reports"
import glob, json, sys
reps = [json.load(open(f)) for f in glob.glob(sys.argv[1] + "/*.json")]
parent = next(r for r in reps if r["connections"])
child = next(r for r in reps if r["pid"] != parent["pid"])
assert [c.get("last_use_fork") for c in parent["connections"]] == [0], parent["connections"]
assert child["misuse"] and all(m.get("opener_fork") == 1 for m in child["misuse"]), child["misuse"]
PY
has "$T/err" "handed to child PID "
has "$T/err" ", which used"
hasnt "$T/err" "connection misuse ("
hasnt "$T/err" "leaked (unclosed"
pyjson "$T/h.json" 'len(d["misuse"]) >= 1 and all(m["handed_off"] for m in d["misuse"])' \
  'sum(l["count"] for l in d["leaks"]) == 0'

expect 23 "$PQLEAK" run --junit "$T/late.xml" -- "$CLI_LEAKER" handoff-late
has "$T/err" "pqleak: 1 connection leaked (unclosed: not closed before exit), opened at hand_off (cli_leaker.c:"
has "$T/err" "pqleak: connection misuse (fork: used by a forked child that did not open it (parent and child share one session)), used at stream_in_child (cli_leaker.c:"
hasnt "$T/err" "handed to child"
has "$T/late.xml" "fork connection misuse at stream_in_child (cli_leaker.c:"
expect 0 "$PQLEAK" run --no-fail -- "$CLI_LEAKER" handoff-late

# pg_basebackup -X stream as a whole: the WAL connection handed to the child, and the parent's main
# connection finished by the child's exit (the parent's atexit handler) after the parent's last use of
# it, the parent closing its own copy later: neither is a leak or misuse.
expect 0 "$PQLEAK" run --json "$T/b.json" -- "$CLI_LEAKER" basebackup
hasnt "$T/err" "connection misuse ("
hasnt "$T/err" "leaked (unclosed"
has "$T/err" ", which used it: not a leak of pid "
has "$T/err" "closed by its forked child PID "
pyjson "$T/b.json" 'all(m["handed_off"] for m in d["misuse"])' \
  'any(m["pid"] == m["opened_by"] for m in d["misuse"])' 'sum(l["count"] for l in d["leaks"]) == 0'
# ... but when the parent uses its main connection after the child's close, the close cut a session
# still in use: misuse.
expect 23 "$PQLEAK" run --report-dir "$T/lr" -- "$CLI_LEAKER" basebackup-late
has "$T/err" "pqleak: connection misuse (fork: closed by a forked child that did not open it"
hasnt "$T/err" "closed by its forked child PID "
# A process that forked times its uses on the precise clock (a tick of the coarse one may hold the
# child's close and the parent's next use): the close note's last use is no earlier than the moment the
# program read before that use, and later than the child's close.
late=$(sed -n 's/^cli_leaker: late use at //p' "$T/err")
python3 - "$T/lr" "$late" <<'PY' || fail "the precise times of a process that forked"
import glob, json, sys
reps = [json.load(open(f)) for f in glob.glob(sys.argv[1] + "/*.json")]
parent = next(r for r in reps if r["connections"] or any(m["pid"] == m["opened_by"] for m in r["misuse"]))
child = next(r for r in reps if r["pid"] != parent["pid"])
note = next(m for m in parent["misuse"] if m["pid"] == m["opened_by"])
close = next(m for m in child["misuse"] if m["closed"] and m["server_pid"] == note["server_pid"])
assert note["mono_ns"] >= int(sys.argv[2]), (note, sys.argv[2])
assert note["mono_ns"] > close["mono_ns"], (note, close)
PY
# PQLEAK_TRACK_QUERIES=0: no last use is known, so no hand-off is shown. The late uses, which the shim
# no longer sees, cannot hide behind one: the child's close of a connection its parent leaked (resolved
# from the parent's connection) or closed itself (from the parent's close note) stays misuse.
PQLEAK_TRACK_QUERIES=0 expect 23 "$PQLEAK" run -- "$CLI_LEAKER" handoff-late
has "$T/err" "pqleak: connection misuse (fork: closed by a forked child that did not open it"
hasnt "$T/err" "handed to child"
# ... and the summary says why it cannot tell.
has "$T/err" "followed no commands (PQLEAK_TRACK_QUERIES=0): whether it had stopped using the connection before its child did (a fork hand-off) is unknown"
PQLEAK_TRACK_QUERIES=0 expect 23 "$PQLEAK" run -- "$CLI_LEAKER" basebackup-late
has "$T/err" "pqleak: connection misuse (fork: closed by a forked child that did not open it"
hasnt "$T/err" "closed by its forked child PID "
echo PASS
