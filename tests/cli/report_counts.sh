#!/usr/bin/env bash
# Issue 13 item 10: counts that would overflow when summed saturate (never wrap negative, never undefined
# behaviour); a leak entry of count 0 holds no connection and does not fail the gate.
source "$(dirname "$0")/lib.sh"
C=$CLI_DATA/counts

expect 23 "$PQLEAK" report "$C"
has "$T/out" "pqleak: 9223372036854775807 connections leaked (unclosed: not closed before exit), opened at open_many (app.c:5)"
has "$T/out" "pqleak: 9223372036854775807 connections leaked in 1 group across 2 processes"
hasnt "$T/out" "open_none"
hasnt "$T/out" "-"
expect 23 "$PQLEAK" report --json "$C"
cp "$T/out" "$T/m.json"
pyjson "$T/m.json" '[l["count"] for l in d["leaks"]] == [9223372036854775807, 0]'
# Merged again with itself: still saturated.
expect 23 "$PQLEAK" report "$T/m.json" "$C"
has "$T/out" "pqleak: 9223372036854775807 connections leaked in 1 group across 2 processes"
expect 0 "$PQLEAK" suppressions "$C"
has "$T/out" "(9223372036854775807 connections leaked)"
hasnt "$T/out" "open_none"

# Only a count-0 entry: nothing leaked, the gate passes.
grep -v '"count": 9223372036854775807' "$C/pqleak-7001-exit-0.json" >"$T/zero.json"
expect 0 "$PQLEAK" report "$T/zero.json"
has "$T/out" "pqleak: no connection leaks in 1 process"
expect 0 "$PQLEAK" report --junit "$T/z.xml" "$T/zero.json"
has "$T/z.xml" 'failures="0"'
expect 0 "$PQLEAK" run -- sh -c 'cp "$1" "$PQLEAK_REPORT_DIR"/' sh "$T/zero.json"
echo PASS
