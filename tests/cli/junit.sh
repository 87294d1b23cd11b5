#!/usr/bin/env bash
# --junit writes well-formed JUnit XML (checked with xmllint): one failing test case per counted leak
# group with the stack as failure text, suppressed groups skipped, held ones passing; markup and
# control characters from reports are escaped; no leaks gives one passing test case.
source "$(dirname "$0")/lib.sh"
command -v xmllint >/dev/null || fail "xmllint is missing (package libxml2-utils; see tools/deps)"
M=$CLI_DATA/merge

xcount() { # FILE XPATH: the number xmllint computes
  xmllint --xpath "$2" "$1"
}

expect 23 "$PQLEAK" report --junit "$T/j.xml" "$M"
xmllint --noout "$T/j.xml" || fail "j.xml is not well-formed"
[ "$(xcount "$T/j.xml" 'count(//testcase)')" = 4 ] || fail "expected 4 test cases"
[ "$(xcount "$T/j.xml" 'count(//testcase/failure)')" = 2 ] || fail "expected 2 failures"
[ "$(xcount "$T/j.xml" 'count(//testcase/skipped)')" = 1 ] || fail "expected 1 skipped"
[ "$(xcount "$T/j.xml" 'string(/testsuites/@failures)')" = 2 ] || fail "testsuites@failures"
xcount "$T/j.xml" 'string(//testcase[1]/failure)' >"$T/f1"
has "$T/f1" "#1 open_db src/app.c:12 (app+0x1234)"
has "$T/f1" "#4 ... 2 frames in libc.so.6"
xcount "$T/j.xml" 'string(//testcase[1]/@name)' >"$T/n1"
has "$T/n1" "open_db (app.c:12)"

# CI reporters link a test case to its source line (file, line) and show its time: the longest any of
# its connections had been open (age_s).
[ "$(xcount "$T/j.xml" 'string(//testcase[1]/@file)')" = src/app.c ] || fail "testcase[1]@file"
[ "$(xcount "$T/j.xml" 'string(//testcase[1]/@line)')" = 12 ] || fail "testcase[1]@line"
[ "$(xcount "$T/j.xml" 'string(//testcase[1]/@time)')" = 3.000 ] || fail "testcase[1]@time"
[ "$(xcount "$T/j.xml" 'count(//testcase[not(@time)])')" = 0 ] || fail "a test case without time"
# (vendor_connect, a library's frame, has no source file)
[ "$(xcount "$T/j.xml" 'count(//testcase[@file and @line])')" = 3 ] || fail "expected 3 test cases with file and line"

# Under pytest the connections carry the test that opened them ("test") and the one that began their
# transaction ("tx_test"): the test case is named by the latter when the group has a transaction stack
# (open_cache's), else by the former, and its text lists every test of the group.
mkdir "$T/pytest"
"${PYTHON:-python3}" - "$M" "$T/pytest" <<'PY'
import glob, json, os, sys
for f in glob.glob(sys.argv[1] + "/*.json"):
    d = json.load(open(f))
    for i, c in enumerate(d.get("connections", [])):
        c["test"] = "test_orders.py::test_checkout (call)" if i == 0 else "test_orders.py::test_refund (setup)"
        if c.get("tx_stack") is not None:
            c["tx_test"] = "test_orders.py::test_pay (call)"
        elif i == 0 and d["pid"] == 1001:
            c["tx_test"] = "test_orders.py::test_audit (call)"  # a transaction since ended: no tx_stack
    json.dump(d, open(os.path.join(sys.argv[2], os.path.basename(f)), "w"))
PY
expect 23 "$PQLEAK" report --junit "$T/pt.xml" "$T/pytest"
xmllint --noout "$T/pt.xml" || fail "pt.xml is not well-formed"
xcount "$T/pt.xml" 'string(//testcase[1]/@name)' >"$T/n1"
has "$T/n1" "test_orders.py::test_checkout (call) and other tests: unclosed connection leak at open_db (app.c:12)"
xcount "$T/pt.xml" 'string(//testcase[1]/failure)' >"$T/f1"
has "$T/f1" "test: test_orders.py::test_checkout (call)"
has "$T/f1" "test: test_orders.py::test_refund (setup)"
has "$T/f1" "transaction began in test: test_orders.py::test_audit (call)"
xcount "$T/pt.xml" 'string(//testcase[2]/@name)' >"$T/n2"
has "$T/n2" "test_orders.py::test_pay (call): unclosed connection leak at open_cache (cache.c:8)"
xcount "$T/pt.xml" 'string(//testcase[2]/failure)' >"$T/f2"
has "$T/f2" "test: test_orders.py::test_refund (setup)"
has "$T/f2" "transaction began in test: test_orders.py::test_pay (call)"

expect 23 "$PQLEAK" report --strict --junit "$T/j2.xml" "$M"
[ "$(xcount "$T/j2.xml" 'count(//testcase/failure)')" = 3 ] || fail "--strict: expected 3 failures"

# Markup, quotes and control characters in names, paths and targets.
expect 23 "$PQLEAK" report --junit "$T/odd.xml" "$CLI_DATA/odd.json"
xmllint --noout "$T/odd.xml" || { cat "$T/odd.xml"; fail "odd.xml is not well-formed"; }
[ "$(xcount "$T/odd.xml" 'count(//testcase/failure)')" = 4 ] || fail "odd: expected 4 failures"
xcount "$T/odd.xml" 'string(//testcase[1]/failure)' >"$T/f"
has "$T/f" 'get[conn]*<T&>::"open" src/odd <1>.cc:7'
has "$T/f" "in: /opt/odd <&> \"dir\"/tool's (pid 4001)"
has "$T/odd.xml" '&lt;T&amp;&gt;::&quot;open&quot;'

# No leaks: one passing test case.
expect 0 "$PQLEAK" report --junit "$T/none.xml" "$M/pqleak-1001-signal-1.json"
xmllint --noout "$T/none.xml"
[ "$(xcount "$T/none.xml" 'count(//testcase)')" = 1 ] || fail "no leaks: expected 1 test case"
[ "$(xcount "$T/none.xml" 'count(//failure)')" = 0 ] || fail "no leaks: expected no failure"

# The same from `pqleak run`, with reports its command writes itself, and when nothing connects.
expect 23 "$PQLEAK" run --junit "$T/run.xml" -- sh -c 'cp "$1"/*.json "$PQLEAK_REPORT_DIR"/' sh "$M"
xmllint --noout "$T/run.xml"
[ "$(xcount "$T/run.xml" 'count(//testcase/failure)')" = 2 ] || fail "run: expected 2 failures"
expect 0 "$PQLEAK" run --junit "$T/run0.xml" -- true
xmllint --noout "$T/run0.xml"
[ "$(xcount "$T/run0.xml" 'count(//testcase)')" = 1 ] || fail "run, no leaks: expected 1 test case"
echo PASS
