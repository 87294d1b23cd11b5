#!/usr/bin/env bash
# End to end, real shim and real server: the baseline round trip. A leaking run fails; `pqleak
# suppressions` on its reports names both leak sites; the same run with that file passes; a new leak
# site fails again, and only it is reported. The shim's own matching is observed apart from the
# command's (which applies the rules again when it merges): in the per-process reports that run keeps,
# and in a process run under the shim alone (its JSON report, its text report and PQLEAK_EXITCODE). A
# rule names the function in its file: the same function name in another file of the program
# (cli_leaker_twin.c) stays a leak, for the shim and the command.
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"
SHIM=$(realpath "$PQLEAK_SHIM")

tree='"$CLI_LEAKER" a 2; "$CLI_LEAKER" b 1; psql -XAtqc "select 1" >/dev/null; "$CLI_LEAKER" clean 1'

expect 23 "$PQLEAK" run --report-dir "$T/r1" -- bash -c "$tree"
has "$T/err" "pqleak: 3 connections leaked in 2 groups across 4 processes"

expect 0 "$PQLEAK" suppressions "$T/r1"
cp "$T/out" "$T/base.supp"
[ "$(grep -v '^#' "$T/base.supp" | grep -v '^$' | sort)" = "$(printf 'leak:leak_site_a@cli_leaker.c\nleak:leak_site_b@cli_leaker.c')" ] ||
  { cat "$T/base.supp"; fail "the baseline does not name exactly the two leak sites"; }
has "$T/base.supp" "# 2 connection(s) leaked by cli_leaker"
has "$T/base.supp" "# 1 connection(s) leaked by cli_leaker"

expect 0 "$PQLEAK" report --suppressions "$T/base.supp" "$T/r1"

expect 0 "$PQLEAK" run --suppressions "$T/base.supp" --report-dir "$T/r2" --json "$T/m.json" -- bash -c "$tree"
has "$T/err" "pqleak: suppression leak:leak_site_a@cli_leaker.c matched 2 connections in 1 group"
has "$T/err" "pqleak: suppression leak:leak_site_b@cli_leaker.c matched 1 connection in 1 group"
has "$T/err" "pqleak: 3 connections leaked in 2 groups (2 suppressed) across 4 processes"
pyjson "$T/m.json" 'all(l["suppressed"] and l["rule"] in ("leak:leak_site_a@cli_leaker.c", "leak:leak_site_b@cli_leaker.c") for l in d["leaks"])'
# The shim in each leaking process already marked its leak suppressed, with the rule that matched: its
# own exit report says so, before the command merged anything.
[ "$(ls "$T/r2" | wc -l)" = 4 ] || { ls -la "$T/r2" >&2; fail "expected 4 reports (one per process) in $T/r2"; }
shim_marks=$("${PYTHON:-python3}" - "$T/r2" <<'PY'
import glob, json, sys
marks = []
for f in glob.glob(sys.argv[1] + "/pqleak-*-exit-*.json"):
    d = json.load(open(f))
    marks += ["%s %s %s" % (l["count"], l["suppressed"], l["rule"]) for l in d["leaks"]]
print("; ".join(sorted(marks)))
PY
)
[ "$shim_marks" = "1 True leak:leak_site_b@cli_leaker.c; 2 True leak:leak_site_a@cli_leaker.c" ] ||
  fail "the shim's own reports mark the leaks as: '$shim_marks'"

# The shim alone (no pqleak run): with the baseline in PQLEAK_SUPPRESSIONS, a process leaking only from
# a known site is not a leaking process: PQLEAK_EXITCODE is not used, no text report, and its JSON report
# marks the group suppressed with its rule.
shim() { # DIR ARGS...: cli_leaker ARGS under the shim with the baseline, reports in DIR
  local dir=$1
  shift
  env LD_PRELOAD="$SHIM" PQLEAK_SUPPRESSIONS="$T/base.supp" PQLEAK_REPORT_DIR="$dir" PQLEAK_EXITCODE=23 \
    "$CLI_LEAKER" "$@"
}
expect 0 shim "$T/s1" a 2
has "$T/out" "cli_leaker: a: 2 open"
hasnt "$T/err" "leaked"
[ "$(ls "$T/s1" | wc -l)" = 1 ] || { ls -la "$T/s1" >&2; fail "expected one report in $T/s1"; }
pyjson "$T/s1"/pqleak-*-exit-*.json 'd["trigger"] == "exit"' 'len(d["leaks"]) == 1' \
  'd["leaks"][0]["count"] == 2 and d["leaks"][0]["kind"] == "unclosed"' \
  'd["leaks"][0]["suppressed"] is True and d["leaks"][0]["rule"] == "leak:leak_site_a@cli_leaker.c"'
# ... and a new site is a leak for the shim too: PQLEAK_EXITCODE, a text report, not suppressed.
expect 23 shim "$T/s2" c 1
has "$T/err" "pqleak: ERROR: 1 connection leaked"
has "$T/err" "leak_site_c"
pyjson "$T/s2"/pqleak-*-exit-*.json 'len(d["leaks"]) == 1' \
  'd["leaks"][0]["suppressed"] is False and d["leaks"][0]["rule"] is None'
# ... nor is the same function name in another file: the twin's leak_site_a (cli_leaker_twin.c). The
# control: a rule naming the function alone (what baselines wrote before) covers the twin too.
expect 23 shim "$T/s3" twin 1
has "$T/err" "pqleak: ERROR: 1 connection leaked"
has "$T/err" "leak_site_a (cli_leaker_twin.c:"
pyjson "$T/s3"/pqleak-*-exit-*.json 'len(d["leaks"]) == 1' \
  'd["leaks"][0]["suppressed"] is False and d["leaks"][0]["rule"] is None' \
  'd["leaks"][0]["site"]["function"] == "leak_site_a" and d["leaks"][0]["site"]["file"].endswith("/cli_leaker_twin.c")'
expect 23 "$PQLEAK" run --suppressions "$T/base.supp" -- "$CLI_LEAKER" twin 1
has "$T/err" "pqleak: 1 connection leaked (unclosed: not closed before exit), opened at leak_site_a (cli_leaker_twin.c:"
has "$T/err" "pqleak: 1 connection leaked in 1 group across 1 process"
printf 'leak:leak_site_a\n' >"$T/name.supp"
expect 0 "$PQLEAK" run --suppressions "$T/name.supp" -- "$CLI_LEAKER" twin 1
has "$T/err" "pqleak: suppression leak:leak_site_a matched 1 connection in 1 group"

expect 23 "$PQLEAK" run --suppressions "$T/base.supp" -- bash -c "$tree; \"\$CLI_LEAKER\" c 1"
has "$T/err" "pqleak: 1 connection leaked (unclosed: not closed before exit), opened at leak_site_c (cli_leaker.c:"
hasnt "$T/err" "leaked (unclosed: not closed before exit), opened at leak_site_a"
has "$T/err" "pqleak: 4 connections leaked in 3 groups (2 suppressed) across 5 processes"
echo PASS
