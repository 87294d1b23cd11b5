/* Misuse warnings: text to the log with the current stack and the connection's open stack. */
#define _GNU_SOURCE
#include "misuse.h"

#include "buf.h"
#include "log.h"
#include "registry.h"
#include "report.h"
#include "shim.h"
#include "stack.h"
#include "symbolize.h"

#include <unistd.h>

void pql_misuse_report(const struct pql_conn *rec, enum pql_misuse kind, int other_tid)
{
    uintptr_t frames[PQL_MAX_FRAMES];
    uint32_t here = pql_stack_intern(frames, pql_stack_capture(frames, pql_shim_settings()->stack_depth));
    struct pql_buf b;
    pql_buf_init(&b);
    if (kind == PQL_MISUSE_FORK)
        pql_buf_printf(&b,
                       "\n==%d==pqleak: WARNING: connection #%llu, opened by process %d, is used by its forked "
                       "child %d: a libpq connection cannot be shared across fork (the parent's session breaks)\n",
                       (int)getpid(), (unsigned long long)rec->id, (int)rec->pid, (int)getpid());
    else
        pql_buf_printf(&b,
                       "\n==%d==pqleak: WARNING: connection #%llu is used by thread %d while thread %d is using it: "
                       "a libpq connection must not be used by two threads at once\n",
                       (int)getpid(), (unsigned long long)rec->id, (int)gettid(), other_tid);
    struct pql_symbolizer *sym = pql_sym_acquire();
    pql_buf_puts(&b, "  used at:\n");
    pql_report_stack_text(&b, sym, here);
    pql_buf_puts(&b, "  opened at:\n");
    pql_report_stack_text(&b, sym, rec->stack);
    pql_sym_release(sym);
    if (!b.failed)
        pql_log_write(b.data, b.len);
    pql_buf_free(&b);
}
