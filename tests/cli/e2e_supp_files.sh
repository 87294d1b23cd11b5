#!/usr/bin/env bash
# End to end, real shim and real server: `pqleak run --suppressions A --suppressions B` gives the shim
# in every process the rules of both files (it reads one PQLEAK_SUPPRESSIONS file: the run writes their
# rules together into its report directory and removes that file afterwards), and the run passes only
# with both.
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"

tree='"$CLI_LEAKER" a 2; "$CLI_LEAKER" b 1'
printf 'leak:leak_site_a\n' >"$T/a.supp"
printf '# the other one\nleak:leak_site_b\n' >"$T/b.supp"

expect 23 "$PQLEAK" run --suppressions "$T/b.supp" --report-dir "$T/r1" -- bash -c "$tree"
has "$T/err" "pqleak: 3 connections leaked in 2 groups (1 suppressed) across 2 processes"

expect 0 "$PQLEAK" run --suppressions "$T/a.supp" --suppressions "$T/b.supp" --report-dir "$T/r2" -- \
  bash -c "$tree"
has "$T/err" "pqleak: suppression leak:leak_site_a matched 2 connections in 1 group"
has "$T/err" "pqleak: suppression leak:leak_site_b matched 1 connection in 1 group"
# The shim marked both in its own reports (not only the command when it merged), and the file that
# carried the rules to it is gone: only the reports remain.
marks=$("${PYTHON:-python3}" - "$T/r2" <<'PY'
import glob, json, sys
marks = []
for f in glob.glob(sys.argv[1] + "/pqleak-*-exit-*.json"):
    marks += ["%s %s" % (l["suppressed"], l["rule"]) for l in json.load(open(f))["leaks"]]
print("; ".join(sorted(marks)))
PY
)
[ "$marks" = "True leak:leak_site_a; True leak:leak_site_b" ] || fail "the shim's reports mark: '$marks'"
[ "$(ls "$T/r2" | grep -vc '^pqleak-.*-exit-.*\.json$')" = 0 ] || { ls -la "$T/r2" >&2; fail "files other than reports left in $T/r2"; }
# The same in a private report directory (no --report-dir).
expect 0 "$PQLEAK" run --suppressions "$T/a.supp" --suppressions "$T/b.supp" -- bash -c "$tree"
has "$T/err" "(2 suppressed)"
echo PASS
