#!/usr/bin/env bash
# Usage errors exit 2 with one line saying what is wrong; --help exits 0; a command that is not found
# gives 127 and one that cannot be executed 126, as a shell says; unwritable outputs, a missing shim
# and bad numbers are refused before the command runs.
source "$(dirname "$0")/lib.sh"

usage_error() { # TEXT ARGS...: pqleak ARGS fails with one line containing TEXT
  local text=$1
  shift
  expect 2 "$PQLEAK" "$@"
  one_line "$T/err"
  has "$T/err" "$text"
  [ ! -s "$T/out" ] || { show; fail "usage error printed to stdout"; }
}

usage_error "no subcommand"
usage_error "unknown subcommand 'frobnicate'" frobnicate
usage_error "unknown option '--bogus'" run --bogus -- true
usage_error "unknown option '-x'" run -x -- true
usage_error "expected -- before the command" run true
usage_error "missing -- COMMAND" run
usage_error "missing -- COMMAND" run --no-fail
usage_error "no command after --" run --
usage_error "--json needs a value" run --json
usage_error "--max-conns 'abc'" run --max-conns abc -- true
usage_error "--max-conns '-1'" run --max-conns -1 -- true
usage_error "--max-conns '5x'" run --max-conns=5x -- true
usage_error "--checkout-timeout 'soon'" run --checkout-timeout soon -- true
usage_error "--checkout-timeout 'inf'" run --checkout-timeout inf -- true
usage_error "--exitcode '256'" run --exitcode 256 -- true
usage_error "--exitcode ''" run --exitcode= -- true
usage_error "unknown option '--bogus'" report --bogus "$CLI_DATA/merge"
usage_error "no report files or directories given" report
usage_error "no report files or directories given" report --json
usage_error "no report files or directories given" suppressions
usage_error "unknown option '--json'" suppressions --json "$CLI_DATA/merge"

expect 0 "$PQLEAK" --help
has "$T/out" "usage: pqleak run"
has "$T/out" "pqleak report"
has "$T/out" "pqleak suppressions"
expect 0 "$PQLEAK" run --help
has "$T/out" "--report-dir DIR"
expect 0 "$PQLEAK" report --help
expect 0 "$PQLEAK" --version
has "$T/out" "pqleak "

# status: usage errors exit 3 (UNKNOWN, as a Nagios plugin's), not 2 (CRITICAL); status_refuse.sh has
# the rest.
expect 3 "$PQLEAK" status
one_line "$T/err"
has "$T/err" "status: no process id given"

# The command.
expect 127 "$PQLEAK" run -- pqleak-no-such-command-xyz
one_line "$T/err"
has "$T/err" "pqleak-no-such-command-xyz: command not found"
expect 127 "$PQLEAK" run -- "$T/no/such/path"
printf '#!/bin/sh\necho hi\n' >"$T/notexec"
chmod 644 "$T/notexec"
expect 126 "$PQLEAK" run -- "$T/notexec"
one_line "$T/err"
has "$T/err" "$T/notexec: cannot execute"
expect 126 "$PQLEAK" run -- "$T"
# Options after -- belong to the command.
expect 0 "$PQLEAK" run -- sh -c 'echo "$1"' sh --json
has "$T/out" "--json"
# --opt=value works like --opt value.
expect 9 "$PQLEAK" run --exitcode=9 -- sh -c 'exit 9'

# Unwritable outputs are refused before the command runs.
refused() { # TEXT ARGS...: pqleak run ARGS -- touch $T/ran fails with 2 and TEXT, without running
  local text=$1
  shift
  rm -f "$T/ran"
  expect 2 "$PQLEAK" run "$@" -- touch "$T/ran"
  one_line "$T/err"
  has "$T/err" "$text"
  [ ! -e "$T/ran" ] || fail "the command ran although '$*' was refused"
}
refused "--json $T/nodir/m.json: directory $T/nodir does not exist" --json "$T/nodir/m.json"
refused "--junit $T/nodir/j.xml" --junit "$T/nodir/j.xml"
mkdir "$T/adir"
refused "--json $T/adir: is a directory" --json "$T/adir"
touch "$T/afile"
refused "--report-dir $T/afile/reports" --report-dir "$T/afile/reports"
refused "--suppressions $T/none.supp" --suppressions "$T/none.supp"

# The shim must be there: PQLEAK_LIB overrides, and pqleak finds it at ../lib next to itself.
rm -f "$T/ran"
expect 2 env PQLEAK_LIB="$T/nowhere/libpqleak.so" "$PQLEAK" run -- touch "$T/ran"
one_line "$T/err"
has "$T/err" "PQLEAK_LIB=$T/nowhere/libpqleak.so"
[ ! -e "$T/ran" ] || fail "ran without a shim"
mkdir -p "$T/prefix/bin" "$T/prefix/lib"
cp "$PQLEAK" "$T/prefix/bin/pqleak"
expect 2 env -u PQLEAK_LIB "$T/prefix/bin/pqleak" run -- true
one_line "$T/err"
has "$T/err" "$T/prefix/bin/../lib/libpqleak.so does not exist"
# ... and in an install-like tree it is found there.
cp "$PQLEAK_SHIM" "$T/prefix/lib/libpqleak.so"
expect 0 env -u PQLEAK_LIB "$T/prefix/bin/pqleak" run -- sh -c 'echo "$LD_PRELOAD"'
has "$T/out" "$T/prefix/lib/libpqleak.so"
echo PASS
