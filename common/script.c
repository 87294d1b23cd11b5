/* An interpreter's script (script.h): one table of interpreters and their options. */
#include "script.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Interpreters by the start of their program's name: the options that run inline code (no script),
 * the one that names a module (python -m) or a script file (php -f), and the options that take the next
 * argument as their value. Lists are space-separated words. */
struct interpreter {
    const char *prefix, *code, *module, *file, *with_value;
};
static const struct interpreter interpreters[] = {
    {"python", "-c", "-m", NULL, " -W -X "},         {"perl", "-e -E", NULL, NULL, " -I -M -m "},
    {"ruby", "-e", NULL, NULL, " -I -r -C -E "},     {"php", "-r", NULL, "-f", " -c -d -z -t "},
    {"node", "-e -p", NULL, NULL, " -r --require "},
};

/* True when word is one of the space-separated words of list. */
static bool in_list(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list ? strstr(list, word) : NULL; p; p = strstr(p + 1, word))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* The script (or module) interpreter in runs, from its arguments args[0..n); NULL when none. */
static const char *script_of(const struct interpreter *in, char *const *args, int n)
{
    for (int i = 0; i < n; i++) {
        const char *a = args[i];
        if (!strcmp(a, "--"))
            return i + 1 < n ? args[i + 1] : NULL;
        if (a[0] != '-' || !a[1])
            return a;
        if (in_list(in->code, a))
            return NULL;
        if ((in->module && !strcmp(a, in->module)) || (in->file && !strcmp(a, in->file)))
            return i + 1 < n ? args[i + 1] : NULL;
        if (in_list(in->with_value, a))
            i++;
    }
    return NULL;
}

const char *pql_script_arg(const char *exe, char *const *args, int n)
{
    for (size_t i = 0; exe && i < sizeof(interpreters) / sizeof(interpreters[0]); i++)
        if (strncmp(exe, interpreters[i].prefix, strlen(interpreters[i].prefix)) == 0)
            return script_of(&interpreters[i], args, n);
    return NULL;
}
