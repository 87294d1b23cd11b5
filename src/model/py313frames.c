/* CPython 3.13's frames: pyframes.c compiled against that version's headers (src/CMakeLists.txt). */
#define PQL_PY_VARIANT 313
#include "pyframes.c"
