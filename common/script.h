/* Which script an interpreter runs, from its command line: the shim's default service label
 * (src/output/metrics.c) and `pqleak top`'s script column name a Python, Perl, Ruby, PHP or node process
 * by it. libc only, no allocation: any thread. */
#ifndef PQL_SCRIPT_H
#define PQL_SCRIPT_H

/* The argument naming the script (or module: python -m) that the program exe (its base name: python3,
 * perl5.36, ruby, php8.2, node...) runs, from its arguments args[0..n) (argv after argv[0]); points into
 * args. NULL for a program that is no such interpreter, for inline code (python -c, perl -e, ruby -e,
 * php -r, node -e), or when no argument names a script. */
const char *pql_script_arg(const char *exe, char *const *args, int n);

#endif
