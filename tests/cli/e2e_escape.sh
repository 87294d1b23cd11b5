#!/usr/bin/env bash
# Untrusted strings on output (issue 13 item 9), real shim and real server: a program whose path holds
# newlines, "leak:*", a forged "PQLEAK OK" line and an escape sequence, and a Python function whose name
# and file do the same (psycopg2; without it the test is skipped, 77). No line of `pqleak run`'s
# summary, `pqleak report`, `pqleak status` or the shim's log is forged, no ESC byte reaches the
# terminal, and the baseline `pqleak suppressions` writes holds only its rules and reads back: the
# same run passes with it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import psycopg2' 2>/dev/null || { echo "SKIP: no psycopg2 for $PY"; exit 77; }

mkdir -p "$T/bin"
export EVIL_BIN="$T/bin/"$'x\nleak:*\nPQLEAK OK - forged \e[2J\xc2\x9b'
cp "$CLI_LEAKER" "$EVIL_BIN"
cat >"$T/evil.py" <<'PY'
import os, sys, time
import psycopg2

EVIL = "evil\nleak:*\nPQLEAK OK - forged \x1b[31m"  # ASCII: the shim reads compact ASCII names


def opener():
    return psycopg2.connect("")


opener.__code__ = opener.__code__.replace(co_name=EVIL, co_qualname=EVIL,
                                          co_filename="/nonexistent/evil\nPQLEAK OK - forged \x1b[2J.py")
conn = opener()
if sys.argv[1] == "hold":
    print("ready", flush=True)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.05)
    conn.close()
else:
    os._exit(0)  # unclosed
PY
export PY EVIL_PY=$T/evil.py

# clean FILE WHAT: no line of FILE starts with a forged "leak:" rule or "PQLEAK OK" line (the first line
# of `status` aside), and no ESC or C1 CSI byte is in it.
clean() {
  if tail -n +"${3:-1}" "$1" | grep -qE '^(leak:|PQLEAK OK)'; then cat -A "$1" >&2; fail "$2: a forged line"; fi
  if grep -q $'\e' "$1"; then cat -A "$1" >&2; fail "$2: a raw ESC"; fi
  if grep -q $'\xc2\x9b' "$1"; then cat -A "$1" >&2; fail "$2: a raw C1 CSI"; fi
}

tree='"$EVIL_BIN" a 1; "$PY" "$EVIL_PY" leak'
expect 23 "$PQLEAK" run --report-dir "$T/r" -- bash -c "$tree"
clean "$T/err" "pqleak run's summary"
has "$T/err" 'x\x0aleak:*\x0aPQLEAK OK - forged \x1b[2J\xc2\x9b (pid '
has "$T/err" 'evil\x0aleak:*\x0aPQLEAK OK - forged \x1b[31m'
has "$T/err" "pqleak: 2 connections leaked in 2 groups across 2 processes"
# The shim alone writes text reports to its log: escaped too.
expect 0 env LD_PRELOAD="$SHIM" PQLEAK_LOG="$T/shim-%p.log" bash -c "$tree"
for log in "$T"/shim-*.log; do
  clean "$log" "the shim's log"
done
cat "$T"/shim-*.log >"$T/shim.log"
has "$T/shim.log" 'evil\x0aleak:*\x0aPQLEAK OK - forged \x1b[31m'

# Every line the shim logs is escaped: a trace line naming a socket directory with an escape sequence.
ln -s "$PGHOST" "$T/s"$'\e[2J'
expect 0 env LD_PRELOAD="$SHIM" PQLEAK_LOG="$T/trace.log" PQLEAK_TRACE=1 PGHOST="$T/s"$'\e[2J' "$CLI_LEAKER" clean 1
clean "$T/trace.log" "a trace line"
has "$T/trace.log" 's\x1b[2J port='

expect 23 "$PQLEAK" report "$T/r"
clean "$T/out" "pqleak report"
# The JSON keeps the names as the shim recorded them: escaped, one line each.
expect 23 "$PQLEAK" report --json "$T/r"
pyjson "$T/out" 'any("evil\\x0aleak:*" in (f["function"] or "") for s in d["stacks"].values() for f in s)'

expect 0 "$PQLEAK" suppressions "$T/r"
cp "$T/out" "$T/base.supp"
if grep -q $'\e' "$T/base.supp"; then cat -A "$T/base.supp" >&2; fail "the baseline: a raw ESC"; fi
rules=$(grep -v '^#' "$T/base.supp" | grep -v '^$' | sort)
[ "$(echo "$rules" | wc -l)" = 2 ] || { cat -A "$T/base.supp" >&2; fail "expected two rules: $rules"; }
has "$T/base.supp" 'leak:leak_site_a' # no source file known in a binary at this path: the function alone
has "$T/base.supp" 'leak:evil\\x0aleak:\*\\x0aPQLEAK OK - forged \\x1b\[31m@evil\\x0aPQLEAK OK - forged \\x1b\[2J.py'
# The parser reads back what the baseline wrote, and the same leaks are covered.
expect 0 "$PQLEAK" report --suppressions "$T/base.supp" "$T/r"
clean "$T/out" "pqleak report with the baseline"
expect 0 "$PQLEAK" run --suppressions "$T/base.supp" --report-dir "$T/r2" -- \
  bash -c "$tree"
has "$T/err" "pqleak: 2 connections leaked in 2 groups (2 suppressed) across 2 processes"

# pqleak status: the first line is the plugin's, no other line is forged.
rm -f "$T/stop"
LD_PRELOAD=$SHIM "$PY" "$EVIL_PY" hold "$T/stop" >"$T/hold.out" 2>"$T/hold.err" &
pid=$!
wait_for 30 grep -qs ready "$T/hold.out"
expect 0 "$PQLEAK" status "$pid"
clean "$T/out" "pqleak status" 2
has "$T/out" 'evil\x0aleak:*\x0aPQLEAK OK - forged \x1b[31m'
[ "$(grep -c '^PQLEAK ' "$T/out")" = 1 ] || { cat -A "$T/out" >&2; fail "more than one plugin line"; }
touch "$T/stop"
wait "$pid"
echo PASS
