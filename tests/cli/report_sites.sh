#!/usr/bin/env bash
# Issue 12: one headline rule (common/frames.h pql_frame_headline) in the summary, JUnit, the merged
# JSON and baselines, or the site the report names ("site", "site_from"; older reports: the open
# stack's headline; "last_stack" when the open stack has no frame of the program's own). Short stacks:
# libraries, runtimes and test runners (pytest, pluggy) folded, --full-stacks shows every frame;
# application_name in the summary. Hand-written reports in data/site and data/library.
source "$(dirname "$0")/lib.sh"
command -v xmllint >/dev/null || fail "xmllint is missing (package libxml2-utils; see tools/deps)"
S=$CLI_DATA/site

expect 23 "$PQLEAK" report "$S"
# A pytest leak: the test's own lines, 26 pytest/pluggy/runpy frames (its launcher script too) folded
# into one line.
has "$T/out" "pqleak: 1 connection leaked (unclosed: not closed before exit), opened at get_conn (test_orders.py:12)"
has "$T/out" "      #0 ... 4 frames in libpq.so.5, _psycopg.cpython-311-x86_64-linux-gnu.so, python3.11, psycopg2"
has "$T/out" "      #4 get_conn /src/shop/tests/test_orders.py:12 [python]"
has "$T/out" "      #5 test_order_total /src/shop/tests/test_orders.py:20 [python]"
has "$T/out" "      #6 ... 26 frames in _pytest, pluggy, python3.11, pytest-3"
hasnt "$T/out" "_multicall"
hasnt "$T/out" "pytest_pyfunc_call"
# The group fits a screen: title, in, to, application_name, heading, 5 stack lines.
awk '/opened at get_conn/{p=1} p&&/^$/{exit} p' "$T/out" >"$T/pytest"
[ "$(wc -l <"$T/pytest")" -le 12 ] || { cat "$T/pytest" >&2; fail "the pytest group takes more than 12 lines"; }
# libpqxx is a library: the headline is the program's own make_conn, not pqxx::connection.
has "$T/out" "opened at make_conn (db.cpp:31)"
has "$T/out" "      #0 ... 3 frames in libpq.so.5, libpqxx-7.7.so"
hasnt "$T/out" "opened at pqxx"
# A pool: the shim's site, where the connection was last used.
has "$T/out" "pqleak: 2 connections leaked (teardown: closed by the language runtime's teardown with work in flight, which was rolled back), last used at handle_order (app.py:40)"
has "$T/out" "    last used at:"
has "$T/out" "      #2 refresh_cache /srv/shop/cache.py:77 [python]"
# An older report without "site": the connection's last_stack names it.
has "$T/out" "pqleak: 1 connection leaked (unclosed: not closed before exit), last used at refresh_cache (cache.py:77)"
has "$T/out" "    application_name: pytest-orders"
has "$T/out" "    application_name: shop-web"

# --full-stacks: every frame.
expect 23 "$PQLEAK" report --full-stacks "$S"
has "$T/out" "      #7 _multicall /usr/lib/python3/dist-packages/pluggy/_callers.py:77 [python]"
has "$T/out" "      #31 <module> /usr/bin/pytest-3:33 [python]"
hasnt "$T/out" " frames in "

# The same under `pqleak run`, with and without --full-stacks.
expect 23 "$PQLEAK" run -- sh -c 'cp "$1"/*.json "$PQLEAK_REPORT_DIR"/' sh "$S"
has "$T/err" "      #6 ... 26 frames in _pytest, pluggy, python3.11, pytest-3"
has "$T/err" "    application_name: shop-cache"
expect 23 "$PQLEAK" run --full-stacks -- sh -c 'cp "$1"/*.json "$PQLEAK_REPORT_DIR"/' sh "$S"
has "$T/err" "      #7 _multicall /usr/lib/python3/dist-packages/pluggy/_callers.py:77 [python]"

# JUnit: the same headline and folding.
expect 23 "$PQLEAK" report --junit "$T/j.xml" "$S"
xmllint --noout "$T/j.xml"
xmllint --xpath 'string(//testcase[1]/@name)' "$T/j.xml" >"$T/n1"
has "$T/n1" "unclosed connection leak at get_conn (test_orders.py:12) [1]"
xmllint --xpath 'string(//testcase[2]/@name)' "$T/j.xml" >"$T/n2"
has "$T/n2" "make_conn (db.cpp:31)"
xmllint --xpath 'string(//testcase[1]/failure)' "$T/j.xml" >"$T/f1"
has "$T/f1" "#6 ... 26 frames in _pytest, pluggy, python3.11, pytest-3"
xmllint --xpath 'string(//testcase[4]/failure)' "$T/j.xml" >"$T/f4"
has "$T/f4" "last used at:"

# The merged JSON carries site and site_from, and reads back the same.
expect 23 "$PQLEAK" report --json "$S"
cp "$T/out" "$T/m.json"
pyjson "$T/m.json" \
  '[l["site"]["function"] for l in d["leaks"]] == ["get_conn", "make_conn", "handle_order", "refresh_cache"]' \
  '[l["site_from"] for l in d["leaks"]] == ["stack", "stack", "last_used", "last_used"]' \
  'd["leaks"][0]["site"] == {"function": "get_conn", "file": "/src/shop/tests/test_orders.py", "line": 12}' \
  'all(c["last_stack"] is None or str(c["last_stack"]) in d["stacks"] for c in d["connections"])' \
  'd["misuse"] == []'
expect 23 "$PQLEAK" report "$T/m.json"
has "$T/out" "last used at handle_order (app.py:40)"
has "$T/out" "last used at refresh_cache (cache.py:77)"

# Baselines name the program's own frame, or where a pool's connection was last used.
expect 0 "$PQLEAK" suppressions "$S"
cp "$T/out" "$T/base"
has "$T/base" "# opened at get_conn (test_orders.py:12)"
[ "$(grep -v '^#' "$T/base" | grep -v '^$')" = "$(printf 'leak:%s\n' get_conn@test_orders.py make_conn@db.cpp \
  handle_order@app.py refresh_cache@cache.py)" ] || { cat "$T/base"; fail "unexpected baseline rules"; }
hasnt "$T/base" "pqxx"
has "$T/base" "# last used at handle_order (app.py:40) (where it was opened names no code of yours, or other code used it later)"
expect 0 "$PQLEAK" report --suppressions "$T/base" "$S"
has "$T/out" "pqleak: 5 connections leaked in 4 groups (4 suppressed) across 1 process"

# No frame of the program's own anywhere: the library's function in its file (never its module), said so.
expect 0 "$PQLEAK" suppressions "$CLI_DATA/library"
has "$T/out" "# no frame of your own code in this stack: the rule names the library frame pg_db_login6 (pgsql.c:512)"
has "$T/out" "leak:pg_db_login6@pgsql.c"
hasnt "$T/out" "leak:libdbpool"
hasnt "$T/out" "leak:*"
echo PASS
