/* Exit and live reports (report.h): the model (rmodel.h) printed by the text and JSON writers, the JSON
 * written through the atomic writer. Exiting or reporter thread; not signal-safe. */
#define _GNU_SOURCE
#include "report.h"

#include "buf.h"
#include "json.h"
#include "log.h"
#include "names.h"
#include "outfile.h"
#include "rmodel.h"
#include "text.h"

#include <errno.h>
#include <string.h>

struct pql_report_result pql_report_exit(const struct pql_settings *settings, struct pql_rules *rules)
{
    struct pql_report_result res = {0, 0};
    struct pql_report r;
    if (!pql_rmodel_begin(&r, PQL_TRIGGER_EXIT, settings, rules)) {
        res.json_errno = *settings->report_dir ? ENOMEM : 0;
        return res;
    }
    /* A process that never opened a connection (a forked child, say) writes nothing, unless it misused
     * one of its parent's. */
    if (r.counters.opened_total == 0 && r.waits.refused_total == 0 && r.nmisuse == 0)
        goto out;
    if (!pql_rmodel_group(&r)) {
        pql_log("out of memory while writing the exit report");
        res.json_errno = *settings->report_dir ? ENOMEM : 0;
        goto out;
    }
    res.leaked = r.leaked;
    bool text = res.leaked > 0 && settings->text_report;
    if (*settings->report_dir) {
        struct pql_buf b;
        pql_buf_init(&b);
        pql_json_report(&b, &r, true);
        if (!pql_outfile_report(settings->report_dir, r.trigger, &b, NULL, 0)) {
            int e = errno;
            res.json_errno = e ? e : EIO;
            pql_log(
                "cannot write a report in PQLEAK_REPORT_DIR='%s' (%s); the report goes to the log instead",
                settings->report_dir, strerror(e));
            text = res.leaked > 0;
        }
        pql_buf_free(&b);
    }
    if (text)
        pql_text_leaks(&r);
out:
    pql_rmodel_end(&r);
    return res;
}

bool pql_report_live(const struct pql_settings *settings, const char *trigger, const char *dir, bool text,
                     char *path, size_t pathlen)
{
    struct pql_report r;
    if (!pql_rmodel_begin(&r, trigger, settings, NULL))
        return false;
    if (text)
        pql_text_live(&r);
    bool ok = false;
    if (dir) {
        struct pql_buf b;
        pql_buf_init(&b);
        pql_json_report(&b, &r, false);
        ok = pql_outfile_report(dir, trigger, &b, path, pathlen);
        if (!ok)
            pql_log("cannot write a live report in '%s' (%s)", dir, strerror(errno));
        pql_buf_free(&b);
    }
    pql_rmodel_end(&r);
    return ok;
}
