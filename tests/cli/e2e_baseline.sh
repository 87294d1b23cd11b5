#!/usr/bin/env bash
# End to end, real shim and real server: the baseline round trip. A leaking run fails; `pqleak
# suppressions` on its reports names both leak sites; the same run with that file passes (the shim and
# the command both apply it); a new leak site fails again, and only it is reported.
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"

tree='"$CLI_LEAKER" a 2; "$CLI_LEAKER" b 1; psql -XAtqc "select 1" >/dev/null; "$CLI_LEAKER" clean 1'

expect 23 "$PQLEAK" run --report-dir "$T/r1" -- bash -c "$tree"
has "$T/err" "pqleak: 3 connections leaked in 2 groups across 4 processes"

expect 0 "$PQLEAK" suppressions "$T/r1"
cp "$T/out" "$T/base.supp"
[ "$(grep -v '^#' "$T/base.supp" | grep -v '^$' | sort)" = "$(printf 'leak:leak_site_a\nleak:leak_site_b')" ] ||
  { cat "$T/base.supp"; fail "the baseline does not name exactly the two leak sites"; }
has "$T/base.supp" "# 2 connection(s) leaked by cli_leaker"
has "$T/base.supp" "# 1 connection(s) leaked by cli_leaker"

expect 0 "$PQLEAK" report --suppressions "$T/base.supp" "$T/r1"

expect 0 "$PQLEAK" run --suppressions "$T/base.supp" --json "$T/m.json" -- bash -c "$tree"
has "$T/err" "pqleak: suppression leak:leak_site_a matched 2 connections in 1 group"
has "$T/err" "pqleak: suppression leak:leak_site_b matched 1 connection in 1 group"
has "$T/err" "pqleak: 3 connections leaked in 2 groups (2 suppressed) across 4 processes"
pyjson "$T/m.json" 'all(l["suppressed"] and l["rule"] in ("leak:leak_site_a", "leak:leak_site_b") for l in d["leaks"])'

expect 23 "$PQLEAK" run --suppressions "$T/base.supp" -- bash -c "$tree; \"\$CLI_LEAKER\" c 1"
has "$T/err" "pqleak: 1 connection leaked (unclosed: not closed before exit), opened at leak_site_c (cli_leaker.c:"
hasnt "$T/err" "leaked (unclosed: not closed before exit), opened at leak_site_a"
has "$T/err" "pqleak: 4 connections leaked in 3 groups (2 suppressed) across 5 processes"
echo PASS
