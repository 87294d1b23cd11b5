/* CPython 3.12's frames: pyframes.c compiled against that version's headers (src/CMakeLists.txt). */
#define PQL_PY_VARIANT 312
#include "pyframes.c"
