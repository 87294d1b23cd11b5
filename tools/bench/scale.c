/* Scale workload (tools/bench/scale): opens N connections that fail at once (tracked CONNECTION_BAD
 * records, no server involved), keeps them all, and prints "KEY NUMBER" lines: the memory they take,
 * and with -d DIR the time of a live (SIGUSR1) report; "exit_start" times the exit report from its
 * file's modification time. A plain libpq program (tools/bench/run builds it too), run with and
 * without LD_PRELOAD=libpqleak.so. */

/*   scale [-n N] [-s STACKS] [-d REPORT_DIR]
 *
 * -s STACKS (a power of two, at most 2^20): the connections are opened from that many distinct stacks
 * (recursion through two functions chosen by the bits of the connection's number), the worst case for
 * grouping by stack. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fnmatch.h>
#include <libpq-fe.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NOWHERE "host=/nonexistent-pqleak-scale"

static PGconn **conns;
static volatile unsigned sink; /* keeps the recursion from being a tail call */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A "Name: N kB" line of /proc/self/status, in KiB. */
static long status_kb(const char *name)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = -1;
    size_t len = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, len) && line[len] == ':' && sscanf(line + len + 1, "%ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static long rss_kb(void)
{
    return status_kb("VmRSS");
}

static long hwm_kb(void)
{
    return status_kb("VmHWM");
}

/* Bytes the program (and whatever runs in it) holds from malloc. */
static double heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

static PGconn *open_at(unsigned bits, int depth);

__attribute__((noinline)) static PGconn *via_a(unsigned bits, int depth)
{
    PGconn *c = open_at(bits >> 1, depth - 1);
    sink += 1;
    return c;
}

__attribute__((noinline)) static PGconn *via_b(unsigned bits, int depth)
{
    PGconn *c = open_at(bits >> 1, depth - 1);
    sink += 2;
    return c;
}

__attribute__((noinline)) static PGconn *open_at(unsigned bits, int depth)
{
    if (depth <= 0)
        return PQconnectdb(NOWHERE);
    PGconn *c = bits & 1 ? via_a(bits, depth) : via_b(bits, depth);
    sink += 3;
    return c;
}

/* The newest signal report of this process in dir, with its modification time. */
static int signal_report(const char *dir, double *mtime)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "pqleak-%d-signal-*.json", (int)getpid());
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d))) {
        if (fnmatch(pattern, e->d_name, 0) != 0)
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0) {
            *mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
            found = 1;
        }
    }
    if (d)
        closedir(d);
    return found;
}

int main(int argc, char **argv)
{
    long n = 100000, stacks = 1;
    const char *dir = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:s:d:")) != -1) {
        switch (opt) {
        case 'n': n = atol(optarg); break;
        case 's': stacks = atol(optarg); break;
        case 'd': dir = optarg; break;
        default:
            fprintf(stderr, "usage: scale [-n N] [-s STACKS] [-d REPORT_DIR]\n");
            return 2;
        }
    }
    int depth = 0;
    while ((1L << depth) < stacks && depth < 20)
        depth++;
    if (n <= 0 || (1L << depth) != stacks) {
        fprintf(stderr, "scale: N must be positive and STACKS a power of two up to 2^20\n");
        return 2;
    }
    conns = calloc((size_t)n, sizeof *conns);
    /* The first connection starts the shim (settings, libunwind, the reporter thread): not per record. */
    PQfinish(PQconnectdb(NOWHERE));
    malloc_trim(0);
    long rss0 = rss_kb();
    double heap0 = heap_bytes(), t0 = clock_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        conns[i] = open_at((unsigned)i, depth);
        if (!conns[i] || PQstatus(conns[i]) != CONNECTION_BAD) {
            fprintf(stderr, "scale: connection %ld did not fail as it should\n", i);
            return 1;
        }
    }
    double open_s = clock_s(CLOCK_MONOTONIC) - t0;
    long rss1 = rss_kb();
    double heap1 = heap_bytes();
    printf("connections %ld\nstacks %ld\nopen_us_per_conn %.2f\n", n, stacks, open_s * 1e6 / (double)n);
    printf("rss_bytes_per_conn %.1f\nheap_bytes_per_conn %.1f\n", (double)(rss1 - rss0) * 1024 / (double)n,
           (heap1 - heap0) / (double)n);
    fflush(stdout);
    if (dir) {
        double mtime = 0, start = clock_s(CLOCK_REALTIME);
        raise(SIGUSR1);
        while (!signal_report(dir, &mtime)) {
            if (clock_s(CLOCK_REALTIME) - start > 600) {
                fprintf(stderr, "scale: no signal report in %s after 600 s\n", dir);
                return 1;
            }
            usleep(2000);
        }
        printf("signal_report_s %.3f\n", mtime - start);
        printf("peak_rss_kb %ld\n", hwm_kb());
    }
    printf("exit_start %.6f\n", clock_s(CLOCK_REALTIME));
    fflush(stdout);
    return 0;
}
