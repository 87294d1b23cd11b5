#!/usr/bin/env bash
# `pqleak status` never reads a report-looking file that is not the process's user's (nor a symlink,
# even to such a file): it keeps waiting, and its UNKNOWN line after the timeout says how many files it
# ignored. Needs root (to make a file of another user); as anyone else the test is skipped (77).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: report files of another user (needs root to make one)"
  exit 77
fi
mkdir -p "$T/tmp"

serve plain TMPDIR="$T/tmp"
dir=$T/tmp/pqleak-$(id -u)
# A first report makes the private directory; it is a real live report of the process, owned by its
# user: the files planted below are copies of it, so status would accept them if it read them.
expect 0 "$PQLEAK" status "$pid"
has "$T/out" ": $dir/pqleak-$pid-signal-"
cp "$dir"/pqleak-"$pid"-signal-*.json "$T/tmp/own.json"
expect 0 "$PQLEAK" report "$T/tmp/own.json"

# The process is held stopped, so that the planted files are the only new ones: a copy owned by another
# user, and a symlink to the copy owned by the process's user.
stop "$pid"
"$PQLEAK" status --timeout 2 "$pid" >"$T/out" 2>"$T/err" &
st=$!
wait_for 10 pending "$pid" USR1
cp "$T/tmp/own.json" "$T/tmp/fake.json"
chown 65534 "$T/tmp/fake.json"
mv "$T/tmp/fake.json" "$dir/pqleak-$pid-signal-998.json"
ln -s "$T/tmp/own.json" "$dir/pqleak-$pid-signal-997.json"
got=0
wait "$st" || got=$?
[ "$got" = 3 ] || { show; fail "status with foreign files exited with $got, expected 3"; }
has "$T/out" "PQLEAK UNKNOWN - no live report from process $pid in $dir after 2 s"
has "$T/out" "ignored 2 files there not owned by its user"
one_line "$T/out"
rm -f "$dir/pqleak-$pid-signal-998.json" "$dir/pqleak-$pid-signal-997.json"

# Once the process runs again it answers (it handles the pending signal), with its own report.
kill -CONT "$pid"
expect 0 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK OK - 2 connections open, no cap | "
unserve
echo PASS
