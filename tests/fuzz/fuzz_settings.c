/* libFuzzer target: the settings table (src/base/config.c), read from a fuzzed environment. The input is
 * "NAME=VALUE" lines; NAME is a PQLEAK_* variable (or "*", meaning every one of them gets VALUE).
 * Properties: loading never fails; every value lands in its documented range whatever was given; each
 * malformed value gives one warning line naming its variable; the settings' JSON object is valid JSON
 * and gives the string settings back unchanged. */
#define _GNU_SOURCE
#include "buf.h"
#include "config.h"
#include "fuzz.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

FUZZ_INITIALIZE_KEEPING_STDERR

static const char *const names[] = {
    "PQLEAK_LOG",
    "PQLEAK_REPORT_DIR",
    "PQLEAK_EXITCODE",
    "PQLEAK_SUPPRESSIONS",
    "PQLEAK_STACK_DEPTH",
    "PQLEAK_MAX_CONNS",
    "PQLEAK_CHECKOUT_TIMEOUT",
    "PQLEAK_MAX_CONNS_PER_TARGET",
    "PQLEAK_WARN_PCT",
    "PQLEAK_CRIT_PCT",
    "PQLEAK_SIGNAL",
    "PQLEAK_TRACK_QUERIES",
    "PQLEAK_SUSPECT_AGE",
    "PQLEAK_SUSPECT_IDLE_TX",
    "PQLEAK_METRICS",
    "PQLEAK_METRICS_INTERVAL",
    "PQLEAK_PYTHON",
    "PQLEAK_STRICT",
    "PQLEAK_TRACE",
    "PQLEAK_DISABLE",
    "PQLEAK_TEXT_REPORT",
    "PQLEAK_HOOK_DLSYM",
    "PQLEAK_FULL_STACKS",
    "PQLEAK_SERVICE",
    "PQLEAK_OPTIONS",
    "PQLEAK_STRIP_PATH_PREFIX",
};
#define NNAMES (sizeof names / sizeof names[0])

static const char *values[NNAMES];
static const char *current_input;
static int warnings;

static const char *fuzz_getenv(const char *name)
{
    for (size_t i = 0; i < NNAMES; i++)
        if (!strcmp(names[i], name))
            return values[i];
    fuzz_fail("pql_settings_load asked for an unknown variable %s", name);
}

static void fuzz_warn(const char *line)
{
    warnings++;
    if (!strstr(line, "PQLEAK_") || strchr(line, '\n')) {
        fuzz_fail("a warning that names no variable or spans lines: '%s'\ninput: %s", line, current_input);
    }
}

#define RANGE(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fuzz_fail("out of range: %s\ninput: %s", #cond, current_input);                                  \
        }                                                                                                    \
    } while (0)

static void same_string(const json_t *obj, const char *key, const char *want)
{
    const json_t *v = json_object_get(obj, key);
    const char *got = json_string_value(v);
    bool ok = *want ? got && !strcmp(got, want) : json_is_null(v);
    /* Text that is not UTF-8 is replaced in JSON (U+FFFD): compare only what must survive. */
    bool utf8 = true;
    for (const unsigned char *p = (const unsigned char *)want; *p; p++)
        utf8 = utf8 && *p < 0x80 && *p >= 0x20 && *p != 0x7f;
    if (!ok && utf8) {
        fuzz_fail("settings JSON \"%s\" is not the setting: '%s' vs '%s'\ninput: %s", key, got ? got : "null",
                  want, current_input);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return -1;
    char *text = strndup((const char *)data, size);
    current_input = text;
    memset(values, 0, sizeof values);
    char *copy = strdup(text);
    size_t given = 0;
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        for (size_t i = 0; i < NNAMES; i++) {
            if (!strcmp(line, "*") || !strcmp(line, names[i]) || !strcmp(line, names[i] + 7)) {
                given += !values[i];
                values[i] = eq + 1;
            }
        }
    }
    struct pql_settings s;
    warnings = 0;
    pql_settings_load(&s, fuzz_getenv, fuzz_warn);
    /* One warning per malformed value or PQLEAK_OPTIONS item (items are separated by ':'), plus at most one
     * for a critical level below the warning level and one for an idle-in-transaction suspect without the
     * commands followed. */
    size_t items = 0;
    for (size_t i = 0; i < NNAMES; i++)
        if (values[i] && !strcmp(names[i], "PQLEAK_OPTIONS"))
            for (const char *c = values[i]; *c; c++)
                items += *c == ':';
    RANGE(warnings >= 0 && (size_t)warnings <= given + items + 2);
    RANGE(strnlen(s.log, sizeof s.log) < sizeof s.log); /* "" means stderr, as unset */
    RANGE(strnlen(s.report_dir, sizeof s.report_dir) < sizeof s.report_dir);
    RANGE(strnlen(s.suppressions, sizeof s.suppressions) < sizeof s.suppressions);
    RANGE(strnlen(s.metrics, sizeof s.metrics) < sizeof s.metrics);
    RANGE(s.exitcode >= 0 && s.exitcode <= 255);
    RANGE(s.stack_depth >= 1 && s.stack_depth <= 256);
    RANGE(s.max_conns >= 0 && s.max_conns <= 1000000);
    RANGE(s.max_conns_per_target >= 0 && s.max_conns_per_target <= 1000000);
    RANGE(isfinite(s.checkout_timeout) && s.checkout_timeout >= 0 && s.checkout_timeout <= 86400);
    RANGE(s.warn_pct >= 1 && s.warn_pct <= 100 && s.crit_pct >= s.warn_pct && s.crit_pct <= 100);
    RANGE(s.signal == 0 || s.signal == SIGUSR1 || s.signal == SIGUSR2);
    RANGE(isfinite(s.suspect_age) && s.suspect_age >= 0 && s.suspect_age <= 1e9);
    RANGE(isfinite(s.suspect_idle_tx) && s.suspect_idle_tx >= 0 && s.suspect_idle_tx <= 1e9);
    RANGE(s.track_queries || s.suspect_idle_tx == 0); /* idle in a transaction is known from the commands */
    RANGE(isfinite(s.metrics_interval) && s.metrics_interval >= 0.1 && s.metrics_interval <= 86400);

    struct pql_buf b;
    pql_buf_init(&b);
    pql_buf_puts(&b, "{");
    pql_settings_json(&s, &b);
    pql_buf_puts(&b, "}");
    RANGE(!b.failed);
    json_error_t err;
    json_t *obj = json_loads(b.data, JSON_REJECT_DUPLICATES, &err);
    if (!obj) {
        fuzz_fail("settings JSON is not valid (%s): %s\ninput: %s", err.text, b.data, text);
    }
    same_string(obj, "log", s.log);
    same_string(obj, "report_dir", s.report_dir);
    same_string(obj, "suppressions", s.suppressions);
    same_string(obj, "metrics", s.metrics);
    RANGE(json_integer_value(json_object_get(obj, "max_conns")) == s.max_conns);
    json_decref(obj);
    pql_buf_free(&b);
    free(copy);
    free(text);
    return 0;
}
