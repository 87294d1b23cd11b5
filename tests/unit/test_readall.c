/* Unit tests of common/readall.c: a file descriptor read to its end, never more than max bytes kept,
 * whatever the size hint says (a pipe or /proc file has none, a growing file a stale one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readall.h"

/* A pipe holding n bytes of 'x', its write end closed; returns the read end. */
static int pipe_of(size_t n)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char chunk[512];
    memset(chunk, 'x', sizeof chunk);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
        assert_int_equal(write(fds[1], chunk, k), (ssize_t)k);
        done += k;
    }
    close(fds[1]);
    return fds[0];
}

static void test_read_all(void **state)
{
    (void)state;
    size_t len = 7;
    /* Up to max, whatever the hint. */
    size_t hints[] = {0, 1, 300, 4000, 100000};
    for (size_t h = 0; h < sizeof hints / sizeof hints[0]; h++) {
        int fd = pipe_of(4000);
        char *s = pql_read_all(fd, hints[h], 4000, &len);
        close(fd);
        assert_non_null(s);
        assert_int_equal(len, 4000);
        assert_int_equal(s[3999], 'x');
        assert_int_equal(s[4000], '\0');
        free(s);
        /* One byte more is refused. */
        fd = pipe_of(4001);
        errno = 0;
        assert_null(pql_read_all(fd, hints[h], 4000, &len));
        assert_int_equal(errno, EFBIG);
        close(fd);
    }
    int fd = pipe_of(0);
    char *s = pql_read_all(fd, 0, 10, &len);
    close(fd);
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);
    /* A read error is returned as read's errno. */
    errno = 0;
    assert_null(pql_read_all(-1, 0, 10, &len));
    assert_int_equal(errno, EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_read_all)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
