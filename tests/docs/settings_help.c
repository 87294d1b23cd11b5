/* Prints the shim's settings table for the docs.settings test: "NAME DEFAULT HELP" lines from
 * pql_settings_help, then, after a line "--", the report's "settings" object as the shim writes it
 * with every setting at its default (the JSON keys, in table order). */
#include "buf.h"
#include "config.h"

#include <stdio.h>
#include <unistd.h>

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

int main(void)
{
    pql_settings_help(STDOUT_FILENO);
    struct pql_settings s;
    pql_settings_load(&s, no_env, NULL);
    struct pql_buf b;
    pql_buf_init(&b);
    pql_buf_puts(&b, "{");
    pql_settings_json(&s, &b);
    pql_buf_puts(&b, "}");
    if (b.failed) {
        fputs("settings_help: out of memory\n", stderr);
        return 1;
    }
    printf("--\n%.*s\n", (int)b.len, b.data);
    pql_buf_free(&b);
    return 0;
}
