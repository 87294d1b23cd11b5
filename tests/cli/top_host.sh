#!/usr/bin/env bash
# `pqleak top` against the real server: two Python services under the shim (svc_a holding its
# connection idle in a transaction begun in hold_connection; svc_b idle after a commit in
# handle_request, on a connection a pool opened: "last used at"), a C program under the shim (it_prog
# serve: two connections opened in connect_ok, one idle in a transaction) and a psql session without
# the shim. --json attributes every tracked backend, with the server's state and the line holding it,
# and lists the psql backend (and no tracked one) as unattributed; the text names the lines; a process
# stopped with SIGSTOP is listed as not answering within --timeout while the others are still shown; a
# server that refuses the join leaves the client side; another user's processes are never asked;
# strings from the server are escaped; suspects are marked; --interval repeats until interrupted;
# usage errors (tests/cli/options.sh).
# The test runs in a pid namespace of its own (unshare), so that top sees only its processes, not
# those of other tests on the host; without one it is skipped (77), as without psycopg2.
if [ -z "${TOP_TEST_NS:-}" ]; then
  unshare --pid --fork --mount-proc true 2>/dev/null || { echo "SKIP: cannot make a pid namespace (unshare)"; exit 77; }
  TOP_TEST_NS=1 exec unshare --pid --fork --mount-proc bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import psycopg2' 2>/dev/null || { echo "SKIP: no psycopg2 for $PY"; exit 77; }
# A private TMPDIR: live reports and advertisements of this namespace's small pids stay apart.
mkdir -p "$T/tmp"
export TMPDIR=$T/tmp

cat >"$T/svc_a.py" <<'PY'
import os, sys, time
import psycopg2


def hold_connection():
    conn = psycopg2.connect("")
    cur = conn.cursor()
    cur.execute("select 'svc_a'")  # psycopg2 opens a transaction: the connection stays idle in it
    return conn


conn = hold_connection()
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
PY
# svc_b's connection comes from a pool, an installed library (site-packages) that opens it in a thread
# of its own: no line of the program opened it, so the line holding it is where the program last used it.
mkdir -p "$T/lib/site-packages"
cat >"$T/lib/site-packages/tinypool.py" <<'PY'
import threading
import psycopg2


class Pool:
    def __init__(self):
        self.conns = []
        t = threading.Thread(target=self._fill)
        t.start()
        t.join()

    def _fill(self):
        self.conns.append(psycopg2.connect(""))

    def get(self):
        return self.conns[0]
PY
cat >"$T/svc_b.py" <<'PY'
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib", "site-packages"))
import tinypool


def handle_request(pool):
    conn = pool.get()
    conn.cursor().execute("select 'svc_b'")
    conn.commit()


pool = tinypool.Pool()
handle_request(pool)
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
PY

# py NAME: starts $T/NAME.py under the shim; sets $pid.
py() {
  LD_PRELOAD=$SHIM "$PY" "$T/$1.py" "$T/stop.$1" >"$T/$1.out" 2>"$T/$1.err" &
  pid=$!
  wait_for 30 grep -qs ready "$T/$1.out"
}
py svc_a
pa=$pid
py svc_b
pb=$pid
serve c
pc=$pid

# psql without the shim, idle after its query; the query's comment holds an escape character.
mkfifo "$T/psql.in"
psql -X -At <"$T/psql.in" >"$T/psql.out" 2>&1 &
exec 3>"$T/psql.in"
printf 'select pg_backend_pid() /* \033[2J */;\n' >&3
wait_for 30 grep -qs '^[0-9]' "$T/psql.out"
psql_backend=$(head -n 1 "$T/psql.out")

# JSON: every tracked backend joined, the psql one unattributed (with the backends of other tests that
# share the server, if any), no tracked one unattributed.
expect 0 "$PQLEAK" top --json
one_line "$T/out"
pyjson "$T/out" 'd["schema"] == "pqleak-top/1"' 'd["status"] == "OK"' \
  "sorted(p['pid'] for p in d['processes']) == sorted([$pa, $pb, $pc])" \
  'all(p["answered"] and p["error"] is None for p in d["processes"])' \
  'len(d["servers"]) == 1 and d["servers"][0]["queried"] and d["servers"][0]["tracked"] == 4' \
  'd["servers"][0]["max_connections"] > 0' \
  'len(d["connections"]) == 4' \
  'all(c["server_pid"] and c["server"] and c["server"]["state"] for c in d["connections"])' \
  "[(u['application_name'], u['state'], u['client_addr']) for u in d['unattributed'] if u['server_pid'] == $psql_backend] == [('psql', 'idle', None)]" \
  "all(u['backend_start'] and u['server'] == d['servers'][0]['name'] for u in d['unattributed'])" \
  "[u['query'] for u in d['unattributed'] if u['server_pid'] == $psql_backend][0].startswith('select pg_backend_pid() /* \x1b[2J */')" \
  'not set(c["server_pid"] for c in d["connections"]) & set(u["server_pid"] for u in d["unattributed"])'
# Each connection with its process, the server's view and the line that holds it.
pyjson "$T/out" \
  "[(c['site']['function'], c['server']['state'], c['server']['query'], c['tx_status']) for c in d['connections'] if c['pid'] == $pa] == [('hold_connection', 'idle in transaction', \"select 'svc_a'\", 'intrans')]" \
  "[(c['site']['function'], c['site']['file'].endswith('/svc_a.py'), c['site']['line'], c['site_from']) for c in d['connections'] if c['pid'] == $pa] == [('hold_connection', True, 6, 'stack')]" \
  "[(c['site']['function'], c['site']['line'], c['site_from'], c['server']['state'], c['server']['query']) for c in d['connections'] if c['pid'] == $pb] == [('handle_request', 8, 'last_used', 'idle', 'COMMIT')]" \
  "sorted((c['site']['function'], c['server']['state']) for c in d['connections'] if c['pid'] == $pc) == [('connect_ok', 'idle'), ('connect_ok', 'idle in transaction')]" \
  "all(c['script'].endswith('/svc_a.py') for c in d['connections'] if c['pid'] == $pa)" \
  "all(c['server']['xact_start'] for c in d['connections'] if c['tx_status'] == 'intrans')" \
  'all(isinstance(c["stack"], int) and str(c["stack"]) in d["stacks"] for c in d["connections"])' \
  'all(str(c["tx_stack"]) in d["stacks"] for c in d["connections"] if c["tx_status"] == "intrans")'
# Oldest transaction first: the two in a transaction, svc_a's (begun first) first, then the idle ones.
pyjson "$T/out" "[c['pid'] for c in d['connections']][:2] == [$pa, $pc]"

# Text: the plugin line, the processes, the server, each connection's line and the psql backend.
expect 0 "$PQLEAK" top
first_line "$T/out" "PQLEAK OK - 4 connections in 3 processes, "
has "$T/out" " | connections=4 suspects=0 processes=3 not_answering=0 unattributed="
has "$T/out" "python3"
grep -E "^  $pa +python3[.0-9]* svc_a\.py +[0-9]+ +idle in transaction +[0-9.]+ s +select 'svc_a' +hold_connection \(svc_a\.py:6\)$" "$T/out" >/dev/null ||
  { cat "$T/out" >&2; fail "no line of svc_a's connection with its state, query and line"; }
grep -E "^  $pb +python3[.0-9]* svc_b\.py +[0-9]+ +idle +- +COMMIT +last used at handle_request \(svc_b\.py:8\)$" "$T/out" >/dev/null ||
  { cat "$T/out" >&2; fail "no line of svc_b's connection"; }
[ "$(grep -cE "^  $pc +it_prog .* connect_ok \(prog\.c:[0-9]+\)$" "$T/out")" = 2 ] ||
  { cat "$T/out" >&2; fail "expected two lines of it_prog's connections"; }
has "$T/out" "$PGHOST:$PGPORT: OK: "
has "$T/out" ", 4 tracked here, "
grep -E "^  $psql_backend +idle +psql +local .*select pg_backend_pid\(\) /\* \\\\x1b\[2J \*/;$" "$T/out" >/dev/null ||
  { cat "$T/out" >&2; fail "no escaped line of the psql backend among the unattributed"; }
! grep -q $'\033' "$T/out" || fail "an escape character from the server reached the text"
expect 0 "$PQLEAK" top --sort age
has "$T/out" "4 connections, longest open first:"

# A stopped process does not answer: listed as such after --timeout, the others still shown; UNKNOWN.
stop "$pb"
start=$SECONDS
expect 3 "$PQLEAK" top --timeout 1
[ $((SECONDS - start)) -le 5 ] || fail "top --timeout 1 took $((SECONDS - start)) s"
first_line "$T/out" "PQLEAK UNKNOWN - 3 connections in 3 processes (1 not answering)"
grep -E "^  $pb +root +\? +\? +\? +python3[.0-9]* svc_b\.py: NOT ANSWERING: no live report from process $pb in .* after 1 s" "$T/out" >/dev/null ||
  { cat "$T/out" >&2; fail "the stopped process is not listed as not answering"; }
has "$T/out" "hold_connection (svc_a.py:6)"
expect 3 "$PQLEAK" top --json --timeout 1
pyjson "$T/out" "[p['answered'] for p in d['processes'] if p['pid'] == $pb] == [False]" \
  "'no live report from process $pb' in [p['error'] for p in d['processes'] if p['pid'] == $pb][0]" \
  "$pb not in [c['pid'] for c in d['connections']]" 'len(d["connections"]) == 3' 'd["status"] == "UNKNOWN"'
kill -CONT "$pb"

# A server that refuses the join: said clearly, the client side still shown, UNKNOWN.
expect 3 "$PQLEAK" top --db "user=pqleak_no_such_role"
has "$T/out" "$PGHOST:$PGPORT: NOT QUERIED (cannot connect: "
has "$T/out" "pqleak_no_such_role"
grep -E "^  $pa .* client: in transaction +[0-9.]+ s\+ +- +hold_connection \(svc_a\.py:6\)$" "$T/out" >/dev/null ||
  { cat "$T/out" >&2; fail "no client-side line of svc_a's connection"; }
expect 3 "$PQLEAK" top --json --db "user=pqleak_no_such_role"
pyjson "$T/out" 'not d["servers"][0]["queried"] and "pqleak_no_such_role" in d["servers"][0]["error"]' \
  'len(d["connections"]) == 4 and all(c["server"] is None for c in d["connections"])' \
  "[c['site']['function'] for c in d['connections'] if c['pid'] == $pa] == ['hold_connection']" \
  'd["unattributed"] == []'

# --db naming a server no tracked connection uses adds a server while connections point to theirs: no
# connection may be left pointing into freed memory (valgrind, from tools/deps, sees any read of it).
expect 3 valgrind -q --error-exitcode=9 "$PQLEAK" top --json --db "host=/nonexistent"
pyjson "$T/out" 'len(d["connections"]) == 4' 'any(not s["queried"] for s in d["servers"])'

# Another user's processes: listed with --all-users, never asked (only root may); without it, not seen.
# (Skipped where setpriv or a 'nobody' that can run the command is missing.)
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
if command -v setpriv >/dev/null && as_nobody test -x "$PQLEAK"; then
  as_nobody env TMPDIR=/tmp "$PQLEAK" top --json --all-users >"$T/out" 2>"$T/err" || true
  pyjson "$T/out" "sorted(p['pid'] for p in d['processes']) == sorted([$pa, $pb, $pc])" \
    'all(not p["answered"] and "belongs to user root (uid 0), not to you" in p["error"] for p in d["processes"])' \
    'd["connections"] == [] and d["status"] == "UNKNOWN"'
  as_nobody env TMPDIR=/tmp "$PQLEAK" top --json >"$T/out" 2>"$T/err" || true
  pyjson "$T/out" 'd["processes"] == []'
fi

# --interval: a round every S seconds until interrupted, one JSON document a line.
got=0
timeout --preserve-status -s INT 3 "$PQLEAK" top --json --interval 0.5 >"$T/out" 2>"$T/err" || got=$?
[ "$got" = 0 ] || { show; fail "top --interval ended by SIGINT exited with $got, expected 0"; }
[ "$(grep -c '"schema":"pqleak-top/1"' "$T/out")" -ge 2 ] || { show; fail "expected at least two rounds"; }

# A suspect (idle in a transaction longer than PQLEAK_SUSPECT_IDLE_TX) is marked, once the shim has
# found it so.
cp "$T/svc_a.py" "$T/svc_s.py"
PQLEAK_SUSPECT_IDLE_TX=1 py svc_s
ps_=$pid
suspect_seen() {
  "$PQLEAK" top --json >"$T/out" 2>"$T/err" || true
  pyjson "$T/out" "[c['suspect'] for c in d['connections'] if c['pid'] == $ps_] == ['idle_tx']" 2>/dev/null
}
wait_for 30 suspect_seen
expect 0 "$PQLEAK" top
grep -E "^  $ps_ +python3[.0-9]* svc_s\.py .* hold_connection \(svc_s\.py:6\)  SUSPECT \(idle in transaction\)$" "$T/out" >/dev/null ||
  { cat "$T/out" >&2; fail "the suspect is not marked"; }
first_line "$T/out" "PQLEAK OK - 5 connections in 4 processes, 1 suspect,"
[ "$(count "$T/out" "SUSPECT (")" = 1 ] || { cat "$T/out" >&2; fail "expected one suspect"; }

exec 3>&-
touch "$T/stop.svc_a" "$T/stop.svc_b" "$T/stop.svc_s"
unserve
echo PASS
