/* Symbolized stacks as the reports carry them: frames, their merge keys, whose code they are (the
 * user's or a runtime's: libpq, libc, ld.so, the shim, interpreters; common/frames.h decides) and how
 * they print. */
#ifndef CLI_FRAME_H
#define CLI_FRAME_H

#include "frames.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct cli_frame {
    char *function; /* NULL when unknown, like every string here */
    char *file;
    long line; /* 0 when unknown */
    char *module;
    char *offset; /* module-relative, "0x1a2b" */
    char *lang;   /* "c", "python", ... */
};

/* Frames innermost first. */
struct cli_stack {
    struct cli_frame *f;
    size_t n;
};

/* Frees the strings of one frame and empties it. */
void cli_frame_free(struct cli_frame *f);
/* Frees the frames and empties s. */
void cli_stack_free(struct cli_stack *s);
/* A stack from a report's array of frame objects (validated by reportio.c), into an empty out. */
void cli_stack_from_frames(const json_t *frames, struct cli_stack *out);
/* How obj[name] ("stack", "tx_stack", "last_stack", "open_stack": a stack id) refers to a report's
 * "stacks" object, the one lookup of the command: reportio.c and findings.c check references with it,
 * cli_stack_from_report reads them. */
enum cli_stack_ref {
    CLI_STACK_NONE,    /* obj names no stack: the member is missing or null */
    CLI_STACK_NOT_ID,  /* the member is not an integer */
    CLI_STACK_UNKNOWN, /* an id that stacks lacks */
    CLI_STACK_FOUND,   /* *frames (when frames is not NULL) is the stack's entry in stacks */
};
enum cli_stack_ref cli_stack_ref(const json_t *stacks, const json_t *obj, const char *name,
                                 const json_t **frames);
/* The stack that obj[name] refers to in a report's "stacks" object, as reportio.c reads it (frames
 * already validated). Returns false, out empty, when obj names none or stacks lacks it. */
bool cli_stack_from_report(const json_t *stacks, const json_t *obj, const char *name, struct cli_stack *out);
/* Deep copies; dst is overwritten, not freed. */
void cli_frame_copy(struct cli_frame *dst, const struct cli_frame *src);
void cli_stack_copy(struct cli_stack *dst, const struct cli_stack *src);

/* The merge key of a stack: per frame function+file+line when the function is known (addresses differ
 * between processes, symbols do not), else module+offset. Caller frees. */
char *cli_stack_key(const struct cli_stack *s);

/* Whose code f is (common/frames.h: the one list the shim uses too). */
enum pql_frame_kind cli_frame_kind(const struct cli_frame *f);

/* True for native frames of libpq, the system (libc, ld.so, the shim, libunwind) and language
 * interpreters: folded in summaries and never chosen for a suppression rule. Interpreted frames are
 * never runtime frames. */
bool cli_frame_is_runtime(const struct cli_frame *f);

/* True for an interpreted-language frame (Python) of the program's own source: not in an installed
 * package (site-packages, dist-packages), the language's standard library (.../lib/pythonX.Y/) or a
 * frozen module. Without a file name it cannot tell, and says false. */
bool cli_frame_is_app(const struct cli_frame *f);

/* Index of the stack's headline, the frame a report names as the place to fix: common/frames.h
 * pql_frame_headline, the one rule of the shim and the command (*own true when it is the program's own
 * code, false for a library's; own may be NULL). -1 when every frame is libpq's, the system's or an
 * interpreter's, or the stack is empty. */
int cli_stack_headline(const struct cli_stack *s, bool *own);

/* The frame a stack is named by: its headline (cli_stack_headline), else its innermost frame; NULL for
 * an empty stack. */
const struct cli_frame *cli_stack_title(const struct cli_stack *s);

/* Where the program holds a connection, by the reports' headline rule (the shim's rmodel.c chooses a
 * leak's "site" so): the headline of open (the stack that opened it) when it is the program's own code;
 * else the headline of last (where it was last checked out or used; NULL when unknown) when that is
 * the program's own code, *last_used (may be NULL) then true; else NULL (*last_used false). */
const struct cli_frame *cli_stack_held_at(const struct cli_stack *open, const struct cli_stack *last,
                                          bool *last_used);

/* "function file:line (module+offset)", leaving out what is unknown. Caller frees. */
char *cli_frame_format(const struct cli_frame *f);
/* "function (file:line)", or the best short name available: for one-line titles. Caller frees. */
char *cli_frame_short(const struct cli_frame *f);

#endif
