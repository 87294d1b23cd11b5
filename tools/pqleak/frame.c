/* Frame keys, frame classes (through common/frames.h) and frame formatting for the pqleak command
 * (frame.h). Pure functions of their arguments; command-line process only. */
#include "frame.h"

#include "names.h"
#include "path.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? cli_xstrdup(s) : NULL;
}

void cli_frame_free(struct cli_frame *f)
{
    free(f->function);
    free(f->file);
    free(f->module);
    free(f->offset);
    free(f->lang);
    *f = (struct cli_frame){0};
}

void cli_stack_free(struct cli_stack *s)
{
    for (size_t i = 0; i < s->n; i++)
        cli_frame_free(&s->f[i]);
    free(s->f);
    s->f = NULL;
    s->n = 0;
}

static char *json_str(const json_t *obj, const char *name)
{
    return dup_or_null(json_string_value(json_object_get(obj, name)));
}

void cli_stack_from_frames(const json_t *frames, struct cli_stack *out)
{
    out->n = json_array_size(frames);
    out->f = cli_xcalloc(out->n ? out->n : 1, sizeof *out->f);
    for (size_t i = 0; i < out->n; i++) {
        const json_t *f = json_array_get(frames, i);
        struct cli_frame *d = &out->f[i];
        d->function = json_str(f, PQL_F_FUNCTION);
        d->file = json_str(f, PQL_F_FILE);
        const json_t *line = json_object_get(f, PQL_F_LINE);
        d->line = json_is_integer(line) ? (long)json_integer_value(line) : 0;
        d->module = json_str(f, PQL_F_MODULE);
        const json_t *off = json_object_get(f, PQL_F_OFFSET);
        if (json_is_integer(off))
            d->offset = cli_xasprintf("0x%llx", (unsigned long long)json_integer_value(off));
        else
            d->offset = json_str(f, PQL_F_OFFSET);
        d->lang = json_str(f, PQL_F_LANG);
    }
}

enum cli_stack_ref cli_stack_ref(const json_t *stacks, const json_t *obj, const char *name,
                                 const json_t **frames)
{
    const json_t *id = json_object_get(obj, name);
    if (!id || json_is_null(id))
        return CLI_STACK_NONE;
    if (!json_is_integer(id))
        return CLI_STACK_NOT_ID;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
    const json_t *found = json_object_get(stacks, key);
    if (!found)
        return CLI_STACK_UNKNOWN;
    if (frames)
        *frames = found;
    return CLI_STACK_FOUND;
}

bool cli_stack_from_report(const json_t *stacks, const json_t *obj, const char *name, struct cli_stack *out)
{
    *out = (struct cli_stack){0};
    const json_t *frames;
    if (cli_stack_ref(stacks, obj, name, &frames) != CLI_STACK_FOUND || !json_is_array(frames))
        return false;
    cli_stack_from_frames(frames, out);
    return true;
}

void cli_frame_copy(struct cli_frame *dst, const struct cli_frame *src)
{
    dst->function = dup_or_null(src->function);
    dst->file = dup_or_null(src->file);
    dst->line = src->line;
    dst->module = dup_or_null(src->module);
    dst->offset = dup_or_null(src->offset);
    dst->lang = dup_or_null(src->lang);
}

void cli_stack_copy(struct cli_stack *dst, const struct cli_stack *src)
{
    dst->n = src->n;
    dst->f = cli_xcalloc(src->n, sizeof *dst->f);
    for (size_t i = 0; i < src->n; i++)
        cli_frame_copy(&dst->f[i], &src->f[i]);
}

struct sbuf {
    char *s;
    size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        b->cap = (b->n + len + 1) * 2;
        b->s = cli_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    if (s)
        sb_add(b, s, strlen(s));
}

char *cli_stack_key(const struct cli_stack *s)
{
    /* Unit and record separators cannot occur in symbol names or paths we care about, so the key is
     * unambiguous without escaping. */
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    for (size_t i = 0; i < s->n; i++) {
        const struct cli_frame *f = &s->f[i];
        char num[32];
        if (f->function) {
            snprintf(num, sizeof num, "%ld", f->line);
            sb_str(&b, "F\x1f");
            sb_str(&b, f->function);
            sb_str(&b, "\x1f");
            sb_str(&b, f->file);
            sb_str(&b, "\x1f");
            sb_str(&b, num);
            /* Without a source file, "main" of one program would merge with "main" of another;
             * the module's name keeps them apart (it is the same in every process). */
            if (!f->file && f->module) {
                sb_str(&b, "\x1f");
                sb_str(&b, pql_base_name(f->module));
            }
        } else {
            sb_str(&b, "M\x1f");
            sb_str(&b, f->module);
            sb_str(&b, "\x1f");
            sb_str(&b, f->offset);
        }
        sb_str(&b, "\x1e");
    }
    return b.s;
}

enum pql_frame_kind cli_frame_kind(const struct cli_frame *f)
{
    return pql_frame_classify(f->function, f->file, f->module, f->lang);
}

bool cli_frame_is_runtime(const struct cli_frame *f)
{
    return pql_frame_kind_is_runtime(cli_frame_kind(f));
}

bool cli_frame_is_app(const struct cli_frame *f)
{
    return f->lang && strcmp(f->lang, "c") != 0 && cli_frame_kind(f) == PQL_FRAME_APP;
}

int cli_stack_headline(const struct cli_stack *s, bool *own)
{
    if (own)
        *own = false;
    if (s->n == 0)
        return -1;
    struct pql_frame_ref *refs = cli_xcalloc(s->n, sizeof *refs);
    for (size_t i = 0; i < s->n; i++)
        refs[i] = (struct pql_frame_ref){s->f[i].function, s->f[i].file, s->f[i].module, s->f[i].lang};
    int h = pql_frame_headline(refs, s->n, own);
    free(refs);
    return h;
}

const struct cli_frame *cli_stack_title(const struct cli_stack *s)
{
    int h = cli_stack_headline(s, NULL);
    if (h >= 0)
        return &s->f[h];
    return s->n ? &s->f[0] : NULL;
}

const struct cli_frame *cli_stack_held_at(const struct cli_stack *open, const struct cli_stack *last,
                                          bool *last_used)
{
    bool own;
    if (last_used)
        *last_used = false;
    int h = cli_stack_headline(open, &own);
    if (h >= 0 && own)
        return &open->f[h];
    int lh = last ? cli_stack_headline(last, &own) : -1;
    if (lh < 0 || !own)
        return NULL;
    if (last_used)
        *last_used = true;
    return &last->f[lh];
}

char *cli_frame_format(const struct cli_frame *f)
{
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    sb_str(&b, f->function ? f->function : "??");
    if (f->file) {
        char num[32] = "";
        if (f->line > 0)
            snprintf(num, sizeof num, ":%ld", f->line);
        sb_str(&b, " ");
        sb_str(&b, f->file);
        sb_str(&b, num);
    }
    if (f->module || f->offset) {
        sb_str(&b, " (");
        sb_str(&b, f->module ? pql_base_name(f->module) : "?");
        if (f->offset) {
            sb_str(&b, "+");
            sb_str(&b, f->offset);
        }
        sb_str(&b, ")");
    } else if (f->lang && strcmp(f->lang, "c") != 0) {
        sb_str(&b, " [");
        sb_str(&b, f->lang);
        sb_str(&b, "]");
    }
    return b.s;
}

char *cli_frame_short(const struct cli_frame *f)
{
    if (f->function && f->file && f->line > 0)
        return cli_xasprintf("%s (%s:%ld)", f->function, pql_base_name(f->file), f->line);
    if (f->function && f->file)
        return cli_xasprintf("%s (%s)", f->function, pql_base_name(f->file));
    if (f->function)
        return cli_xstrdup(f->function);
    return cli_xasprintf("%s+%s", f->module ? pql_base_name(f->module) : "?", f->offset ? f->offset : "?");
}
