/* Reads PHP 8.2's frames of the calling thread (appframes.h): EG(current_execute_data) and its
 * prev_execute_data chain, user code only (each frame's file, function, and line of its current
 * opline). Nothing of PHP is called: executor_globals (non-ZTS builds, such as Debian's) is looked up at
 * run time, and this thread's frames cannot change while it is inside libpq. Built only with PHP's
 * headers (for the layouts); inert elsewhere, for another PHP, for ZTS builds or without PHP. */
#define _GNU_SOURCE
#include "appreaders.h"

#include "codemap.h"
#include "dlhook.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "appframes.h"

#ifdef PQL_HAVE_PHP_HEADERS
#include <php.h>
#undef snprintf /* ap_php_snprintf: PHP is not linked */

static bool enabled;
static zend_executor_globals *eg;
static uintptr_t interp_lo, interp_hi; /* the engine's code (php or libphp) */

void pql_php_setup(void)
{
    const char *(*zend_version)(void) = (const char *(*)(void))pql_dlsym(RTLD_DEFAULT, "get_zend_version");
    void *execute = pql_dlsym(RTLD_DEFAULT, "zend_execute");
    eg = pql_dlsym(RTLD_DEFAULT, "executor_globals");
    /* The layouts are this engine's ("Zend Engine v4.2.x" is PHP 8.2's): another one is left alone
     * rather than misread. Asked once, at start-up: the engine's version string is a constant. */
    char want[32];
    int wlen = snprintf(want, sizeof(want), "Zend Engine v%.*s",
                        (int)(strrchr(ZEND_VERSION, '.') - ZEND_VERSION + 1), ZEND_VERSION);
    if (!eg || !execute || !zend_version || strncmp(zend_version(), want, (size_t)wlen) != 0)
        return;
    enabled = pql_code_range((uintptr_t)execute, &interp_lo, &interp_hi);
}

int pql_php_merge(uintptr_t *frames, int n, int max)
{
    if (!enabled || !eg->current_execute_data)
        return n;
    int k = pql_app_first_in(frames, n, interp_lo, interp_hi);
    if (k == n) /* not called from PHP code */
        return n;
    int out = k;
    char name[512];
    pql_app_lock();
    for (const zend_execute_data *ex = eg->current_execute_data; ex && out < max;
         ex = ex->prev_execute_data) {
        const zend_function *fn = ex->func;
        if (!fn || !ZEND_USER_CODE(fn->type) || !ex->opline || !fn->op_array.filename)
            continue;
        const zend_string *fname = fn->common.function_name;
        const zend_class_entry *scope = fname ? fn->common.scope : NULL;
        struct pql_app_key key = {PQL_LANG_PHP, (uintptr_t)fn, (uintptr_t)ex->opline,
                                  (uintptr_t)fn->op_array.filename * 31 + (uintptr_t)fname};
        uint32_t id = pql_app_find(&key);
        if (!id) {
            const char *function = "(main)";
            if (fname && scope && scope->name)
                function =
                    (snprintf(name, sizeof(name), "%s::%s", ZSTR_VAL(scope->name), ZSTR_VAL(fname)), name);
            else if (fname)
                function = ZSTR_VAL(fname);
            id = pql_app_add(&key, function, ZSTR_VAL(fn->op_array.filename), (int)ex->opline->lineno);
        }
        if (id)
            frames[out++] = PQL_APPFRAME_TAG | id;
    }
    pql_app_unlock();
    return out > k ? out : n;
}

int pql_php_in_shutdown(void)
{
    if (!enabled)
        return -1;
    /* php_request_shutdown sets it first; the module's shutdown follows with it still set. */
    return (eg->flags & EG_FLAGS_IN_SHUTDOWN) != 0;
}

#else /* no PHP headers at build time */

void pql_php_setup(void)
{
}

int pql_php_merge(uintptr_t *frames, int n, int max)
{
    (void)frames;
    (void)max;
    return n;
}

int pql_php_in_shutdown(void)
{
    return -1;
}

#endif
