/* The former name of appframes.h, kept until its last users (lifecycle/shim.c, output/text.c) include
 * appframes.h: pql_py_setup is pql_app_setup. */
#ifndef PQL_PYFRAMES_H
#define PQL_PYFRAMES_H

#include "appframes.h"

/* As pql_app_setup(enabled). */
void pql_py_setup(bool enabled);

#endif
