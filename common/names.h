/* What the shim writes and the command reads must be spelled the same on both sides: the schema, the
 * report's field names, report file names, the live-report directory and the shim's thread names.
 * The functions use no stdio and no allocation: safe on any thread and in signal handlers. */
#ifndef PQL_NAMES_H
#define PQL_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define PQL_SCHEMA "pqleak/1"

/* pqleak's version, the one place it is written: CMakeLists.txt reads it from here for project(VERSION),
 * every report carries it ("pqleak_version"), the text report's header and `pqleak --version` print it.
 * CHANGELOG.md has a section for each. */
#define PQL_VERSION "0.1.0"

/* The shim's reporter thread: "pqleak-sig" when the shim installed its own signal handler (so that
 * `pqleak status` may signal the process), else "pqleak". */
#define PQL_THREAD_SIGNAL "pqleak-sig"
#define PQL_THREAD_PLAIN  "pqleak"

/* ---- report file names ---- */

/* A report is written to a temp dot-file in the same directory (src/output/outfile.c: '.', the final
 * name, ".PID.SEQ.tmp"), then renamed to "pqleak-PID-TRIGGER-SEQ.json". The command relies only on the
 * leading dot: a name starting with '.' is never a report (tools/pqleak/reportio.c). The reporter's
 * advertisement file (below) is written the same way, so every temp file of the shim's in a report
 * directory starts with PQL_TEMP_PREFIX and ends with PQL_TEMP_SUFFIX. */
#define PQL_REPORT_PREFIX "pqleak-"
#define PQL_REPORT_SUFFIX ".json"
#define PQL_TEMP_PREFIX   ".pqleak-"
#define PQL_TEMP_SUFFIX   ".tmp"

/* Writes "DIR/pqleak-PID-TRIGGER-SEQ.json" into buf. Returns its length, or -1 when it does not fit
 * in len bytes (buf then holds no usable name) or an argument is NULL. */
int pql_report_file_name(char *buf, size_t len, const char *dir, int pid, const char *trigger, unsigned seq);

/* Reads a report file's base name, "pqleak-PID-TRIGGER-SEQ.json": PID and SEQ decimal, TRIGGER
 * non-empty, without '/' and shorter than tlen. Returns false, outputs unspecified, for any other
 * name (a temp file, a merged report saved under another name). Any output may be NULL. */
bool pql_report_file_parse(const char *name, int *pid, char *trigger, size_t tlen, unsigned *seq);

/* ---- the live-report directory ---- */

/* Where a process without PQLEAK_REPORT_DIR writes live reports: "${TMPDIR:-/tmp}/pqleak-UID", TMPDIR
 * used only when it is an absolute path (tmpdir_env is its value, or NULL when unset). The shim uses
 * the directory only when it is a directory of uid with mode 0700. Returns the length written, or -1
 * when it does not fit in len bytes. */
#define PQL_LIVE_DIR_PREFIX "pqleak-"
int pql_live_dir_default(char *buf, size_t len, const char *tmpdir_env, unsigned uid);

/* Whether st, the lstat of that directory, is one the shim uses: a directory (no symbolic link) of uid
 * with mode 0700 (no bit for group or others). */
bool pql_live_dir_trusted(const struct stat *st, unsigned uid);

/* ---- per-process file names (PQLEAK_LOG, PQLEAK_METRICS) ---- */

/* Writes pattern into buf with every "%p" replaced by pid, in decimal. Returns the length written, or
 * -1 when it does not fit in len bytes (buf then holds no usable name). Signal-safe. */
int pql_expand_pid(char *buf, size_t len, const char *pattern, int pid);

/* ---- the run channel (pqleak run) ---- */

/* `pqleak run` binds an abstract unix datagram socket named after its report directory; a process that
 * connected and then could not leave its exit report there sends one message to it, "F PID REASON", so
 * that the run fails closed instead of passing on a missing report (docs/exit-codes.md). Writes the
 * address "pqleak-run:DIR" (without the leading NUL of the abstract namespace), cut to len - 1 bytes
 * (both sides cut alike), into buf and returns its length. Signal-safe. */
#define PQL_RUN_SOCKET_PREFIX "pqleak-run:"
int pql_run_socket_name(char *buf, size_t len, const char *dir);

/* Writes that message, "F PID WHY", into buf, WHY cut to fit in len - 1 bytes (a shortened reason still
 * fails the run; tools/pqleak/run.c parses it). Returns its length, or -1 when not even "F PID " fits.
 * Signal-safe. */
int pql_run_message(char *buf, size_t len, int pid, const char *why);

/* ---- the reporter's advertisement ---- */

/* While the shim's reporter thread answers PQLEAK_SIGNAL, it keeps a file "pqleak-PID.reporter" (0600) in
 * the private live-report directory above (whatever PQLEAK_REPORT_DIR says), holding one line:
 * "pqleak-reporter pid=PID tid=TID signal=N start=T token=X\n", T being field 22 of /proc/PID/stat (the
 * process's start time, so that a stale file of an earlier process with the same pid never matches), X
 * 16 hex digits, random. `pqleak status` queues signal N to the thread TID only (rt_tgsigqueueinfo), with
 * X as the signal's value, and only to a process that matches the file in every respect; the shim
 * answers such a request with a JSON report only, any other signal with the text report as well. */
#define PQL_ADVERT_SUFFIX ".reporter"

/* PQLEAK_SIGNAL's value as the shim reads it (src/base/config.c) and `pqleak status` reads it from a
 * process's environment: "USR1", "USR2" (a "SIG" prefix and any case allowed), "none" or "0" (no
 * signal: 0). Sets *sig and returns true, or returns false (*sig untouched) for any other value. */
bool pql_signal_parse(const char *value, int *sig);
/* The name of such a signal: "USR1", "USR2", else "none". */
const char *pql_signal_name(int sig);
#define PQL_ADVERT_MAGIC "pqleak-reporter"

/* What the line says. */
struct pql_advert {
    int pid, tid, sig;
    unsigned long long start; /* field 22 of /proc/PID/stat: pql_proc_start_time */
    unsigned long long token;
};

/* Writes the file's path "DIR/pqleak-PID.reporter" into buf. Returns its length, or -1 when it does not
 * fit in len bytes (buf then holds no usable name). Signal-safe. */
int pql_advert_file_name(char *buf, size_t len, const char *dir, int pid);

/* Writes the line, newline included, into buf. Returns its length, or -1 when it does not fit in len
 * bytes. Signal-safe. */
int pql_advert_format(char *buf, size_t len, const struct pql_advert *a);

/* Reads a line as pql_advert_format writes it (the newline may be missing); false, *a unspecified, for
 * any other text. */
bool pql_advert_parse(const char *text, struct pql_advert *a);

/* The start time of process pid (0: this process, /proc/self), in clock ticks since boot: field 22 of
 * /proc/PID/stat, read past the command name (which may hold spaces and parentheses). 0 when it cannot
 * be read. Signal-safe (open, read, close). */
unsigned long long pql_proc_start_time(int pid);

/* ---- the report's field names (docs/report-schema.md), as string literals: "\"" PQL_F_OPEN "\": %ld" ----
 */

/* The report object. "processes" only in a merged report (the command's). */
#define PQL_F_SCHEMA      "schema"
#define PQL_F_VERSION     "pqleak_version"
#define PQL_F_TRIGGER     "trigger"
#define PQL_F_PID         "pid"
#define PQL_F_PROGRAM     "program"
#define PQL_F_TIME        "time"
#define PQL_F_SETTINGS    "settings"
#define PQL_F_UTILIZATION "utilization"
#define PQL_F_CONNECTIONS "connections"
#define PQL_F_LEAKS       "leaks"
#define PQL_F_STACKS      "stacks"
#define PQL_F_PROCESSES   "processes"

/* "utilization". */
#define PQL_F_OPEN            "open"
#define PQL_F_PEAK_OPEN       "peak_open"
#define PQL_F_CAP             "cap"
#define PQL_F_UTILIZATION_PCT "utilization_pct"
#define PQL_F_OPENED_TOTAL    "opened_total"
#define PQL_F_CLOSED_TOTAL    "closed_total"
#define PQL_F_FAILED_TOTAL    "failed_total"
#define PQL_F_WAITS_TOTAL     "waits_total"
#define PQL_F_WAIT_S_TOTAL    "wait_s_total"
#define PQL_F_WAIT_S_MAX      "wait_s_max"
#define PQL_F_TIMEOUTS_TOTAL  "timeouts_total"
#define PQL_F_REFUSED_TOTAL   "refused_total"

/* A connection of "connections" ("pid" and "program" too in a merged report). */
#define PQL_F_ID          "id"
#define PQL_F_STATUS      "status"
#define PQL_F_TARGET      "target"
#define PQL_F_SERVER_PID  "server_pid"
#define PQL_F_CLIENT_PORT "client_port"
#define PQL_F_AGE_S       "age_s"
#define PQL_F_IDLE_S      "idle_s"
#define PQL_F_TX_STATUS   "tx_status"
#define PQL_F_THREAD      "thread"
#define PQL_F_SUSPECT     "suspect"
#define PQL_F_STACK       "stack"
#define PQL_F_TX_STACK    "tx_stack"
#define PQL_F_LAST_STACK  "last_stack"
#define PQL_F_TEST        "test"
#define PQL_F_TX_TEST     "tx_test"

/* A connection's "target". */
#define PQL_F_HOST             "host"
#define PQL_F_PORT             "port"
#define PQL_F_DBNAME           "dbname"
#define PQL_F_USER             "user"
#define PQL_F_APPLICATION_NAME "application_name"

/* A leak group of "leaks": "stack", "tx_stack", "connections" (ids) and, merged, "processes". */
#define PQL_F_COUNT      "count"
#define PQL_F_KIND       "kind"
#define PQL_F_SUPPRESSED "suppressed"
#define PQL_F_RULE       "rule"
#define PQL_F_SITE       "site"      /* {"function", "file", "line"}: the line to fix */
#define PQL_F_SITE_FROM  "site_from" /* "stack", "tx_stack" or "last_used" */

/* An entry of the top-level "suppressions_used" array (exit reports): each rule that matched, in file
 * order, with "rule", "count" (connections) and "groups". */
#define PQL_F_SUPPRESSIONS_USED "suppressions_used"
#define PQL_F_GROUPS            "groups"

/* A finding of the top-level "misuse" array: "kind", "connection", "server_pid", "pid", "opened_by",
 * "time", "closed", "stack", "open_stack", "site". */
#define PQL_F_MISUSE        "misuse"
#define PQL_F_CONNECTION    "connection"
#define PQL_F_OPENED_BY     "opened_by"
#define PQL_F_CLOSED        "closed"
#define PQL_F_LAST_USE_FORK "last_use_fork"
#define PQL_F_MONO_NS       "mono_ns"
#define PQL_F_LAST_USE_NS   "last_use_ns"
#define PQL_F_OPENER_FORK   "opener_fork"
#define PQL_F_OPEN_STACK    "open_stack"

/* A frame of a stack in "stacks". */
#define PQL_F_FUNCTION "function"
#define PQL_F_FILE     "file"
#define PQL_F_LINE     "line"
#define PQL_F_MODULE   "module"
#define PQL_F_OFFSET   "offset"
#define PQL_F_LANG     "lang"

/* "settings": one key per PQLEAK_* setting. */
#define PQL_F_LOG                  "log"
#define PQL_F_REPORT_DIR           "report_dir"
#define PQL_F_EXITCODE             "exitcode"
#define PQL_F_SUPPRESSIONS         "suppressions"
#define PQL_F_STACK_DEPTH          "stack_depth"
#define PQL_F_MAX_CONNS            "max_conns"
#define PQL_F_CHECKOUT_TIMEOUT_S   "checkout_timeout_s"
#define PQL_F_MAX_CONNS_PER_TARGET "max_conns_per_target"
#define PQL_F_WARN_PCT             "warn_pct"
#define PQL_F_CRIT_PCT             "crit_pct"
#define PQL_F_SIGNAL               "signal"
#define PQL_F_TRACK_QUERIES        "track_queries"
#define PQL_F_SUSPECT_AGE_S        "suspect_age_s"
#define PQL_F_SUSPECT_IDLE_TX_S    "suspect_idle_tx_s"
#define PQL_F_METRICS              "metrics"
#define PQL_F_METRICS_INTERVAL_S   "metrics_interval_s"
#define PQL_F_PYTHON               "python"
#define PQL_F_STRICT               "strict"
#define PQL_F_TRACE                "trace"
#define PQL_F_DISABLE              "disable"
#define PQL_F_TEXT_REPORT          "text_report"
#define PQL_F_FULL_STACKS          "full_stacks"
#define PQL_F_STRIP_PATH_PREFIX    "strip_path_prefix"
#define PQL_F_HOOK_DLSYM           "hook_dlsym"
#define PQL_F_SERVICE              "service"

/* ---- values both sides interpret ---- */

/* "trigger" (and the TRIGGER of a report file name). */
#define PQL_TRIGGER_EXIT    "exit"
#define PQL_TRIGGER_SIGNAL  "signal"
#define PQL_TRIGGER_SUSPECT "suspect"
#define PQL_TRIGGER_REQUEST "request"
#define PQL_TRIGGER_MERGED  "merged" /* the command's merged report only */

/* A leak group's "kind". */
#define PQL_KIND_UNCLOSED "unclosed" /* not closed before exit */
#define PQL_KIND_TEARDOWN "teardown" /* closed by the runtime's teardown inside a transaction */
#define PQL_KIND_HELD     "held"     /* closed idle by the runtime's teardown: a leak only when strict */

/* A connection's "status", "tx_status" and "suspect". */
#define PQL_V_OK         "ok"
#define PQL_V_BAD        "bad"
#define PQL_V_TX_IDLE    "idle"
#define PQL_V_TX_ACTIVE  "active"
#define PQL_V_TX_INTRANS "intrans"
#define PQL_V_TX_INERROR "inerror"
#define PQL_V_TX_UNKNOWN "unknown"
#define PQL_V_AGE        "age"
#define PQL_V_IDLE_TX    "idle_tx"

#endif
