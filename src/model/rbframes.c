/* Reads Ruby 3.1's frames of the calling thread (appframes.h) with rb_profile_frames, the profilers'
 * reader: it walks this thread's own control frames and allocates nothing, and so do the path and label
 * readers used here, which return strings the frames' instruction sequences already hold. Safe without
 * the GVL (ruby-pg releases it around connecting): only this thread's frames are read, and they cannot
 * change while it is inside libpq. libruby's functions are looked up at run time (nothing is linked);
 * built only with Ruby's headers (for RSTRING), inert elsewhere, for another Ruby or without Ruby. */
#define _GNU_SOURCE
#include "appreaders.h"

#include "codemap.h"
#include "dlhook.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "appframes.h"

#ifdef PQL_HAVE_RUBY_HEADERS
#include <ruby.h>
#include <ruby/debug.h>
#include <ruby/version.h>
#undef snprintf /* ruby_snprintf: libruby is not linked */

#define RB_MAX_FRAMES 128

static bool enabled;
static int (*profile_frames)(int, int, VALUE *, int *);
static VALUE (*frame_path)(VALUE);
static VALUE (*frame_label)(VALUE);
static int (*native_thread_p)(void);
static uintptr_t interp_lo, interp_hi; /* libruby's code */

bool pql_ruby_setup(void)
{
    const int *version = pql_dlsym(RTLD_DEFAULT, "ruby_api_version");
    *(void **)&profile_frames = pql_dlsym(RTLD_DEFAULT, "rb_profile_frames");
    *(void **)&frame_path = pql_dlsym(RTLD_DEFAULT, "rb_profile_frame_path");
    *(void **)&frame_label = pql_dlsym(RTLD_DEFAULT, "rb_profile_frame_label");
    *(void **)&native_thread_p = pql_dlsym(RTLD_DEFAULT, "ruby_native_thread_p");
    /* RSTRING's layout is this version's: another one is left alone rather than misread. */
    if (!version || version[0] != RUBY_API_VERSION_MAJOR || version[1] != RUBY_API_VERSION_MINOR ||
        !profile_frames || !frame_path || !frame_label || !native_thread_p)
        return false;
    enabled = pql_code_range((uintptr_t)profile_frames, &interp_lo, &interp_hi);
    return enabled;
}

/* A Ruby string's bytes as a C string in buf (truncated); "?" for anything but a string. */
static const char *c_string(VALUE s, char *buf, size_t len)
{
    if (!RB_TYPE_P(s, T_STRING))
        return "?";
    struct RString m = rbimpl_rstring_getmem(s); /* RSTRING_PTR would call libruby on a NULL pointer */
    if (!m.as.heap.ptr)
        return "?";
    snprintf(buf, len, "%.*s", (int)m.as.heap.len, m.as.heap.ptr);
    return buf;
}

int pql_ruby_merge(uintptr_t *frames, int n, int max)
{
    if (!enabled || !native_thread_p())
        return n;
    int k = pql_app_first_in(frames, n, interp_lo, interp_hi);
    if (k == n) /* not called from Ruby code */
        return n;
    VALUE rf[RB_MAX_FRAMES];
    int lines[RB_MAX_FRAMES];
    int m = profile_frames(0, RB_MAX_FRAMES, rf, lines);
    int out = k;
    char function[256], file[1024];
    pql_app_lock();
    for (int i = 0; i < m && out < max; i++) {
        /* C methods have no path, the VM's dummy top frame no line: neither is the script's. */
        VALUE path = frame_path(rf[i]), label = frame_label(rf[i]);
        if (!RB_TYPE_P(path, T_STRING) || lines[i] <= 0)
            continue;
        struct pql_app_key key = {PQL_LANG_RUBY, rf[i], (uint64_t)lines[i], path * 31 + label};
        uint32_t id = pql_app_find(&key);
        if (!id)
            id = pql_app_add(&key, c_string(label, function, sizeof(function)),
                             c_string(path, file, sizeof(file)), lines[i]);
        if (id)
            frames[out++] = PQL_APPFRAME_TAG | id;
    }
    pql_app_unlock();
    return out > k ? out : n;
}

#else /* no Ruby headers at build time */

bool pql_ruby_setup(void)
{
    return false;
}

int pql_ruby_merge(uintptr_t *frames, int n, int max)
{
    (void)frames;
    (void)max;
    return n;
}

#endif
