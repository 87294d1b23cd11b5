#!/usr/bin/env bash
# A gate never passes on reports it could not read: an unreadable path, an empty, truncated, corrupt
# or foreign file gives exit status 2 and one line naming it, and
# no summary.
source "$(dirname "$0")/lib.sh"
M=$CLI_DATA/merge

bad_case() { # NAME: the file $T/d/NAME is bad, whether read through its directory or by name
  local name=$1
  expect 2 "$PQLEAK" report "$T/d"
  one_line "$T/err"
  has "$T/err" "$T/d/$name"
  [ ! -s "$T/out" ] || { show; fail "a summary was printed despite $name"; }
  expect 2 "$PQLEAK" report "$M" "$T/d/$name"
  one_line "$T/err"
  has "$T/err" "$T/d/$name"
  expect 2 "$PQLEAK" suppressions "$T/d"
  has "$T/err" "$T/d/$name"
  rm -rf "$T/d"
}

fresh() {
  rm -rf "$T/d"
  cp -r "$M" "$T/d"
}

fresh
printf 'this is { not JSON' >"$T/d/pqleak-7-exit-1.json"
bad_case pqleak-7-exit-1.json
has "$T/err" "not valid JSON"

fresh
head -c 700 "$M/pqleak-1002-exit-1.json" >"$T/d/pqleak-7-exit-1.json"
bad_case pqleak-7-exit-1.json
has "$T/err" "truncated or corrupt"

fresh
: >"$T/d/pqleak-7-exit-1.json"
bad_case pqleak-7-exit-1.json
has "$T/err" "empty file"

fresh
echo '{"schema": "otherthing/2", "trigger": "exit", "leaks": []}' >"$T/d/pqleak-7-exit-1.json"
bad_case pqleak-7-exit-1.json
has "$T/err" 'not a pqleak report (schema "otherthing/2", expected "pqleak/1")'

fresh
echo '{"name": "package.json of something else"}' >"$T/d/package.json"
bad_case package.json
has "$T/err" 'not a pqleak report (no "schema")'

fresh
echo '[1, 2, 3]' >"$T/d/list.json"
bad_case list.json

# Well-formed JSON, but not a whole pqleak report.
for mutation in \
  'del d["leaks"]' \
  'd["leaks"] = {}' \
  'd["leaks"][0]["stack"] = 99' \
  'd["leaks"][0]["count"] = "two"' \
  'd["leaks"][0]["count"] = -1' \
  'del d["leaks"][0]["kind"]' \
  'd["leaks"][0]["suppressed"] = "no"' \
  'd["trigger"] = "sometime"' \
  'd["stacks"]["3"] = {"function": "x"}' \
  'd["stacks"]["3"][0]["line"] = "twelve"' \
  'd["connections"][1]["id"] = 2' \
  'd["pid"] = "1002"'; do
  fresh
  "${PYTHON:-python3}" - "$M/pqleak-1002-exit-1.json" "$T/d/pqleak-1002-exit-1.json" "$mutation" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))
PY
  expect 2 "$PQLEAK" report "$T/d"
  one_line "$T/err"
  has "$T/err" "$T/d/pqleak-1002-exit-1.json: "
  has "$T/err" "report"
done

# Unreadable paths.
expect 2 "$PQLEAK" report "$T/nonexistent.json"
one_line "$T/err"
has "$T/err" "$T/nonexistent.json"
expect 2 "$PQLEAK" report "$M" "$T/nonexistent-dir"
has "$T/err" "$T/nonexistent-dir"

# A directory without reports is no error: it says so, as `pqleak run` of a command that never
# connected does (options.sh checks that they agree).
mkdir "$T/empty"
echo 'hello' >"$T/empty/readme.txt"
expect 0 "$PQLEAK" report "$T/empty"
one_line "$T/err"
has "$T/err" "$T/empty: no reports"
expect 0 "$PQLEAK" suppressions "$T/empty"
echo PASS
