/* Test library: a dependency of deepmod.c that defines a function the test program defines too. A module
 * loaded with RTLD_DEEPBIND binds to this one (its own lookup scope first); without RTLD_DEEPBIND, to the
 * program's (tests/integration/test_core.py deepbind_module). */
int pqleak_test_which(void);

int pqleak_test_which(void)
{
    return 2;
}
