#!/usr/bin/env bash
# End to end, real shim and real server (issue 12): the `pqleak run` summary names the program's own
# frame as the headline, folds libpq's and libc's frames (--full-stacks shows them), names the
# connections' application_name; the merged JSON carries each group's site; a baseline names the
# program's own frame with where it was opened, or a pool's worker where it last used the connection.
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"

expect 23 env PGAPPNAME=nightly-batch "$PQLEAK" run --report-dir "$T/r" --json "$T/m.json" -- "$CLI_LEAKER" a 2
has "$T/err" "pqleak: 2 connections leaked (unclosed: not closed before exit), opened at leak_site_a (cli_leaker.c:"
has "$T/err" "    application_name: nightly-batch"
has "$T/err" " frames in libc.so.6"
hasnt "$T/err" "__libc_start_main"
pyjson "$T/m.json" \
  'd["leaks"][0]["site"]["function"] == "leak_site_a"' \
  'd["leaks"][0]["site_from"] in ("stack", "tx_stack", "last_used")' \
  'd["misuse"] == []'

expect 23 "$PQLEAK" report --full-stacks "$T/r"
has "$T/out" "__libc_start_"
hasnt "$T/out" "frames in libc.so.6"

expect 0 "$PQLEAK" suppressions "$T/r"
has "$T/out" "# opened at leak_site_a (cli_leaker.c:"
has "$T/out" "leak:leak_site_a@cli_leaker.c"
# A C pool: a filler thread opens, a worker checks out and keeps one. The headline is the worker's line
# (the shim's site, "last used"), in the summary and in the baseline, which then suppresses it.
expect 23 "$PQLEAK" run --report-dir "$T/pool" -- "$PQLEAK_BIN/it_handoff" pool-leak
has "$T/err" "pqleak: 1 connection leaked (unclosed: not closed before exit), last used at run_in_transaction (handoff.c:"
has "$T/err" "    last used at:"
expect 0 "$PQLEAK" suppressions "$T/pool"
cp "$T/out" "$T/pool.supp"
has "$T/pool.supp" "leak:run_in_transaction@handoff.c"
hasnt "$T/pool.supp" "leak:pool_filler"
expect 0 "$PQLEAK" run --suppressions "$T/pool.supp" -- "$PQLEAK_BIN/it_handoff" pool-leak
has "$T/err" "pqleak: suppression leak:run_in_transaction@handoff.c matched 1 connection in 1 group"
echo PASS
