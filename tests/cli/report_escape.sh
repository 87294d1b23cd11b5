#!/usr/bin/env bash
# Untrusted strings in a report (issue 13 item 9): a report whose program path, function names, target
# and application_name hold newlines, a forged "leak:*" rule, a forged "PQLEAK OK" line, escape
# sequences and white space (a file name too). `pqleak report` prints them escaped (\xNN), forging no line and sending no
# ESC; `pqleak suppressions` writes one rule per leak site, with wildcards for the bytes a rule line
# cannot hold, and the rules parser reads the baseline back: the same report then passes.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/r"
"${PYTHON:-python3}" - "$CLI_DATA/merge/pqleak-1002-exit-1.json" "$T/r/pqleak-1002-exit-1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["program"] = "/usr/local/bin/app\nPQLEAK OK - forged\x1b[2J"
names = {"open_db": "open\nleak:*\n\x1b[2J", "open_cache": " x #y\t", "open_pool": "pool\r\u009b1m"}
for frames in d["stacks"].values():
    for f in frames:
        if f["function"] == "open_pool":
            f["file"] = "src/ pool\nleak:* #.c "
        f["function"] = names.get(f["function"], f["function"])
c = d["connections"][1]["target"]
c["application_name"], c["dbname"] = "c\x1b[31m", "cache\nleak:*"
json.dump(d, open(sys.argv[2], "w"))
PY

clean() { # FILE WHAT: no forged line, no ESC or C1 CSI byte
  if grep -qE '^(leak:|PQLEAK OK)' "$1"; then cat -A "$1" >&2; fail "$2: a forged line"; fi
  if grep -q $'\e' "$1" || grep -q $'\xc2\x9b' "$1" || grep -q $'\r' "$1"; then
    cat -A "$1" >&2
    fail "$2: a raw control character"
  fi
}

expect 23 "$PQLEAK" report --strict "$T/r"
clean "$T/out" "pqleak report"
has "$T/out" 'opened at open\x0aleak:*\x0a\x1b[2J (app.c:12)'
has "$T/out" 'in: /usr/local/bin/app\x0aPQLEAK OK - forged\x1b[2J (pid 1002)'
has "$T/out" 'cache\x0aleak:*'
has "$T/out" 'application_name: c\x1b[31m'
has "$T/out" 'pool\x0d\xc2\x9b1m'

expect 0 "$PQLEAK" suppressions "$T/r"
cp "$T/out" "$T/base.supp"
if grep -q $'\e' "$T/base.supp"; then cat -A "$T/base.supp" >&2; fail "the baseline: a raw ESC"; fi
rules=$(grep -v '^#' "$T/base.supp" | grep -v '^$' | sort)
want=$(printf '%s\n' 'leak:?x?#y?@cache.c' 'leak:open?leak:\*??\[2J@app.c' 'leak:pool?*1m@?pool?leak:\*?#.c?' | sort)
[ "$rules" = "$want" ] || { cat -A "$T/base.supp" >&2; fail "baseline rules: $rules"; }
has "$T/base.supp" '# 1 connection(s) leaked by app\x0aPQLEAK OK - forged\x1b[2J'
# Read back by the one rules parser: every group is covered.
expect 0 "$PQLEAK" report --strict --suppressions "$T/base.supp" "$T/r"
clean "$T/out" "pqleak report with the baseline"
has "$T/out" "pqleak: suppression leak:?x?#y?@cache.c matched 1 connection in 1 group"
has "$T/out" "pqleak: suppression leak:pool?*1m@?pool?leak:\*?#.c? matched 1 connection in 1 group"
echo PASS
