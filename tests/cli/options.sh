#!/usr/bin/env bash
# Command-line parsing (getopt_long): --help on every subcommand prints that subcommand's usage on
# stdout and exits 0; unknown, ambiguous and valueless-given-a-value options are named in one line
# (exit 2; `status`: 3); unambiguous abbreviations work; a single-value option given twice is a usage
# error (`top` too) while --suppressions adds up; `--json -` and `--junit -` are refused where stdout is
# taken; a directory without reports and a run whose command never connected agree (status 0, same words).
source "$(dirname "$0")/lib.sh"
M=$CLI_DATA/merge

usage_error() { # TEXT ARGS...: pqleak ARGS fails with 2 (status: 3, UNKNOWN) and one line containing
  # TEXT, nothing on stdout
  local text=$1 want=2
  shift
  [ "$1" != status ] || want=3
  expect "$want" "$PQLEAK" "$@"
  one_line "$T/err"
  has "$T/err" "$text"
  [ ! -s "$T/out" ] || { show; fail "usage error printed to stdout"; }
}

# --help and -h, on every subcommand, wherever they stand among the options.
for sub in run report status suppressions top; do
  for h in --help -h; do
    expect 0 "$PQLEAK" "$sub" "$h"
    has "$T/out" "usage: pqleak $sub"
    [ ! -s "$T/err" ] || { show; fail "$sub $h wrote to stderr"; }
  done
done
expect 0 "$PQLEAK" run --no-fail --help
has "$T/out" "--report-dir DIR"
hasnt "$T/out" "usage: pqleak status"
expect 0 "$PQLEAK" report "$M" --help
has "$T/out" "--suppressions FILE"
expect 0 "$PQLEAK" status --help
has "$T/out" "--timeout S"
# After --, --help is the command's.
expect 0 "$PQLEAK" run -- sh -c 'echo "$1"' sh --help
has "$T/out" "--help"

# Unknown options, named as given, with the subcommand's --help.
usage_error "report: unknown option '--bogus'; see pqleak report --help" report --bogus "$M"
usage_error "unknown option '--bogus'" report "$M" --bogus=1
usage_error "status: unknown option '-q'" status -q 1
usage_error "suppressions: unknown option '--strict'" suppressions --strict "$M"
usage_error "report: --strict takes no value, got '--strict=yes'" report --strict=yes "$M"
usage_error "report: --junit needs a value" report "$M" --junit
usage_error "ambiguous option '--s'" report --s x "$M"
# Unambiguous abbreviations, as GNU tools take them (with these rules only --strict fails).
printf 'leak:open_db\nleak:*cache.c\n' >"$T/rules"
expect 0 "$PQLEAK" report --suppr "$T/rules" "$M"
expect 23 "$PQLEAK" report --suppr="$T/rules" --stri "$M"
has "$T/out" "pqleak: 7 connections leaked in 4 groups (3 suppressed)"
# Operands and options mix (not in run, whose options end at --).
expect 23 "$PQLEAK" report "$M" --json
pyjson "$T/out" 'd["schema"] == "pqleak/1"'

# Single-value options once; the repetition is named.
usage_error "run: --exitcode given twice ('3', then '4')" run --exitcode 3 --exitcode=4 -- true
usage_error "run: --json given twice" run --json "$T/a.json" --json "$T/b.json" -- true
usage_error "run: --report-dir given twice" run --report-dir "$T/a" --report-dir "$T/b" -- true
usage_error "report: --junit given twice" report --junit "$T/a.xml" --junit "$T/b.xml" "$M"
usage_error "status: --timeout given twice" status --timeout 1 --timeout 2 1
# ... top's too (it parses with the others' parser), before it looks for any process or server.
usage_error "top: --db given twice ('a', then 'b'); it takes one value; see pqleak top --help" top --db a --db=b
usage_error "top: --sort given twice ('tx', then 'age')" top --sort tx --sort age
usage_error "top: --interval given twice" top --json --interval 1 --interval 2
usage_error "top: --timeout given twice" top --timeout 1 --timeout 1
usage_error "top: --user given twice" top --user 0 --user 0
# ... flags may repeat harmlessly.
expect 23 "$PQLEAK" report --strict --strict --suppressions "$T/rules" "$M"

# top's own checks: one line, 2.
usage_error "top: --sort 'size' is not one of tx, age, idle" top --sort size
usage_error "top: --user and --all-users exclude each other" top --user root --all-users
usage_error "top: --user 'no such user' is no user name or uid" top --user 'no such user'
usage_error "top: --interval '0' is not a number of seconds above 0" top --interval 0
usage_error "top: --timeout 'x' is not a number of seconds above 0" top --timeout x
usage_error "top: unknown option '--bogus'; see pqleak top --help" top --bogus
usage_error "top: unexpected argument 'extra'; see pqleak top --help" top extra
usage_error "top: --json takes no value, got '--json=1'" top --json=1

# Standard output is the command's under run, the summary's under report.
rm -f "$T/ran"
usage_error "run: --json -: standard output belongs to the command" run --json - -- touch "$T/ran"
[ ! -e "$T/ran" ] || fail "the command ran although --json - was refused"
usage_error "run: --junit -: standard output belongs to the command" run --junit=- -- touch "$T/ran"
usage_error "report: --junit -: standard output carries the summary" report --junit - "$M"

# --suppressions adds up: two files hold what one did, rules applied in file order.
printf 'leak:open_db\n' >"$T/one.supp"
printf '# second file\nleak:*cache.c\n' >"$T/two.supp"
cat "$T/one.supp" "$T/two.supp" >"$T/both.supp"
expect 0 "$PQLEAK" report --suppressions "$T/both.supp" "$M"
cp "$T/out" "$T/out.both"
expect 0 "$PQLEAK" report --suppressions "$T/one.supp" --suppressions="$T/two.supp" "$M"
cmp "$T/out" "$T/out.both" || { diff "$T/out.both" "$T/out" >&2; fail "two files do not add up to one"; }
has "$T/out" "pqleak: suppression leak:open_db matched 3 connections in 1 group"
has "$T/out" "pqleak: suppression leak:*cache.c matched 1 connection in 1 group"
# Either alone suppresses less: the last one does not silently win.
expect 23 "$PQLEAK" report --suppressions "$T/two.supp" "$M"
expect 23 "$PQLEAK" report --suppressions "$T/one.supp" "$M"
# A bad line in any of them refuses the whole, naming its file and line.
printf 'leak:ok\nsuppress:me\n' >"$T/bad.supp"
expect 2 "$PQLEAK" report --suppressions "$T/one.supp" --suppressions "$T/bad.supp" "$M"
one_line "$T/err"
has "$T/err" "$T/bad.supp:2: not a suppression rule"
rm -f "$T/ran"
expect 2 "$PQLEAK" run --suppressions "$T/one.supp" --suppressions "$T/missing.supp" -- touch "$T/ran"
has "$T/err" "$T/missing.supp"
[ ! -e "$T/ran" ] || fail "the command ran with an unreadable second suppressions file"

# No report: a command that never connected and a directory without reports agree.
mkdir "$T/noreports"
expect 0 "$PQLEAK" run --report-dir "$T/noreports" -- true
one_line "$T/err"
has "$T/err" "no process opened a PostgreSQL connection"
expect 0 "$PQLEAK" report "$T/noreports"
one_line "$T/err"
has "$T/err" "no process opened a PostgreSQL connection"
# ... while a directory that does not exist is still an error.
expect 2 "$PQLEAK" report "$T/noreports/typo"
echo PASS
