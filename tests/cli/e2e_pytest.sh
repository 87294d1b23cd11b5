#!/usr/bin/env bash
# End to end under pytest (issue 15): the shim records the running test (PYTEST_CURRENT_TEST) when a
# connection opens and when its transaction begins. A suite (data/pytest_suite) with one test keeping a
# connection (held, counted with --strict), one opening a connection that a later test leaves in a
# transaction (teardown), clean tests and a clean connection made while pytest collects (conftest.py,
# no test running yet: the shim must still see that it is in Python): the `pqleak run` summary, the
# merged JSON (connections[].test and tx_test), the JUnit test case names (a teardown's by the test that
# began its transaction) and the shim's own text report name the tests, the clean ones never; the same with pytest-xdist (-n 2). A C program started with the
# variable set (as by a test) is named too, with control characters replaced and a long name cut;
# without the variable, nothing. Without psycopg2, pytest or pytest-xdist the test is skipped (77).
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"
PY=${PYTHON:-/usr/bin/python3}
for m in psycopg2 pytest xdist; do
  "$PY" -c "import $m" 2>/dev/null ||
    { echo "SKIP: no $m for $PY (Debian: python3-psycopg2 python3-pytest python3-pytest-xdist)"; exit 77; }
done
command -v xmllint >/dev/null || fail "xmllint is missing (package libxml2-utils; see tools/deps)"

# The suite runs from a copy, so that pytest's names are relative to it and it writes nothing into the
# sources.
cp -r "$CLI_DATA/pytest_suite" "$T/suite"
OPEN="test_orders.py::test_open_for_later (call)"
BEGIN="test_orders.py::test_checkout (call)"
KEEP="test_users.py::test_leak_connection (call)"

# suite NAME PYTEST-OPTIONS...: the suite under `pqleak run --strict` with reports in $T/NAME, merged
# JSON $T/NAME.json and JUnit $T/NAME.xml; both leaks fail it.
suite() {
  local name=$1
  shift
  (cd "$T/suite" && expect 23 "$PQLEAK" run --strict --report-dir "$T/$name" --json "$T/$name.json" \
    --junit "$T/$name.xml" -- "$PY" -m pytest -q -p no:cacheprovider "$@" .)
  has "$T/out" "6 passed"
  has "$T/err" "    test: $KEEP"
  has "$T/err" "    test: $OPEN"
  has "$T/err" "    transaction began in test: $BEGIN"
  hasnt "$T/err" "test_clean"
  pyjson "$T/$name.json" \
    'len(d["connections"]) == 2' \
    '{(c["target"]["application_name"], c.get("test"), c.get("tx_test")) for c in d["connections"]} == {
       ("pytest_users", "'"$KEEP"'", None), ("pytest_orders", "'"$OPEN"'", "'"$BEGIN"'")}'
  xmllint --noout "$T/$name.xml" || fail "$name.xml is not well-formed"
  xmllint --xpath '//testcase/@name' "$T/$name.xml" >"$T/names"
  has "$T/names" "name=\"$KEEP: held connection leak at test_leak_connection (test_users.py:"
  # The teardown is named by the test that began its transaction (where "last used at" points), the
  # test that opened the connection listed too.
  has "$T/names" "name=\"$BEGIN: teardown connection leak at test_checkout (test_orders.py:"
  hasnt "$T/names" "name=\"$OPEN"
  xmllint --xpath 'string(//testcase[@classname="pqleak.teardown"]/failure)' "$T/$name.xml" >"$T/failure"
  has "$T/failure" "test: $OPEN"
  has "$T/failure" "transaction began in test: $BEGIN"
}

suite one
pyjson "$T/one.json" 'len({c["pid"] for c in d["connections"]}) == 1'
# pytest-xdist: two worker processes, each file on one worker (the open and the transaction's begin
# share a module's state), so the two leaks are in two processes.
suite xdist -n 2 --dist loadfile
pyjson "$T/xdist.json" 'len({c["pid"] for c in d["connections"]}) == 2'

# The shim's own report, without the command: a test: line after each group's headline and after its
# transaction's.
(cd "$T/suite" && expect 0 env LD_PRELOAD="$PQLEAK_SHIM" PQLEAK_STRICT=1 PQLEAK_REPORT_DIR="$T/shim" \
  "$PY" -m pytest -q -p no:cacheprovider .)
has "$T/err" "  test: $KEEP"
grep -A1 "its transaction began in test_checkout" "$T/err" >"$T/tx"
has "$T/tx" "  test: $BEGIN"

# A program a test runs inherits the variable: named, with a control character as '?' and a long name
# cut to 255 bytes ending in "..." (never inside a character); without the variable, no member at all.
expect 23 env PYTEST_CURRENT_TEST=$'t.py::test_c\n (call)' "$PQLEAK" run --json "$T/c.json" -- "$CLI_LEAKER" a 1
pyjson "$T/c.json" 'd["connections"][0]["test"] == "t.py::test_c? (call)"' 'not "tx_test" in d["connections"][0]'
long=$(printf 't.py::test_%0300d (call)' 0)
expect 23 env PYTEST_CURRENT_TEST="$long" "$PQLEAK" run --json "$T/l.json" -- "$CLI_LEAKER" a 1
pyjson "$T/l.json" 'len(d["connections"][0]["test"]) == 255' \
  'd["connections"][0]["test"] == "'"${long:0:252}"'..."'
# Cut never halves a character: 11 bytes, then two-byte characters; the 253rd byte is a second half, so
# 251 bytes are kept.
wide=$(printf 't.py::test_'; for _ in $(seq 200); do printf '\xc3\xa9'; done)
expect 23 env PYTEST_CURRENT_TEST="$wide" "$PQLEAK" run --json "$T/w.json" -- "$CLI_LEAKER" a 1
pyjson "$T/w.json" 'd["connections"][0]["test"] == "t.py::test_" + "\u00e9" * 120 + "..."'
expect 23 env -u PYTEST_CURRENT_TEST "$PQLEAK" run --json "$T/n.json" -- "$CLI_LEAKER" a 1
pyjson "$T/n.json" 'all("test" not in c and "tx_test" not in c for c in d["connections"])'
hasnt "$T/err" "test:"
echo PASS
