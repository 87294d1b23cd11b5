/* Benchmark workload: how long a connect waiting at PQLEAK_MAX_CONNS=1 takes to return once the only slot is
 * released in another thread. Run by tools/bench/run with LD_PRELOAD=libpqleak.so PQLEAK_MAX_CONNS=1 only:
 * without a cap nothing waits (the program then says so and exits 1).
 *
 *   handoff [-c CONNINFO] [-f FAILINFO] [-k CAP] [-w WARMUP] N
 *
 * Each of WARMUP + N iterations (the warm-up ones are not counted) starts with a 2 ms pause, in which the
 * previous holder's server process exits (on a 2-CPU machine it would otherwise compete with the next
 * step), then has three timed steps between the main thread A and a second thread B:
 *   nowait   B: PQconnectdb(FAILINFO) with the slot free, timed from call to return. FAILINFO (default
 *            "host=/nonexistent") fails in microseconds without a server, so this is the shim's and
 *            libpq's own work on a failed connect: what B also does after it gets the slot below.
 *   cond     the reference: B sleeps in pthread_cond_wait; A timestamps and signals; B timestamps when
 *            it wakes. The operating system's wake-up latency for one thread waking another.
 *   handoff  A holds the only slot (a real connection, CONNINFO, default from the PG* variables); B calls
 *            PQconnectdb(FAILINFO) and blocks at the cap; once B sleeps in the kernel, A timestamps
 *            (CLOCK_MONOTONIC) and calls PQfinish; B timestamps when its PQconnectdb returns.
 * With -k CAP (default 1; run with PQLEAK_MAX_CONNS=CAP), A also holds CAP - 1 connections for the whole
 * run, so that the hand-off happens at the cap without the open count ever falling below it.
 * A waits until B sleeps in a futex (/proc/self/task/TID/syscall) before it releases or signals, so each
 * figure starts from a thread that is really asleep. handoff - nowait is the hand-off itself: release,
 * grant, wake-up and return from the wait.
 *
 * Prints on stdout, in microseconds, "KEY NUMBER" lines: handoff_med, handoff_p99, nowait_med, nowait_p99,
 * cond_med, cond_p99, net_med (median handoff minus median nowait). Exits 0; 1 when a step fails (the
 * holder's connect fails, FAILINFO connects, or B did not wait at the cap). Every connection is closed. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum cmd { CMD_NOWAIT, CMD_COND, CMD_HANDOFF, CMD_QUIT };

static const char *failinfo = "host=/nonexistent";
static const long settle_us = 2000;
static sem_t go, done; /* A -> B: a command is set; B -> A: it is done */
static enum cmd command;
static _Atomic int b_tid;
static _Atomic int armed;    /* B is about to block (cond or connect) */
static _Atomic int returned; /* B's blocking call returned */
static double b_ns;          /* B's timestamp (cond, handoff) or duration (nowait) */
static int b_failed;         /* B's failing connect connected after all */
static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_flag;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* B's failing connect; returns the time of its return. */
static double fail_connect(void)
{
    PGconn *c = PQconnectdb(failinfo);
    double t = now_ns();
    atomic_store(&returned, 1);
    if (c && PQstatus(c) == CONNECTION_OK)
        b_failed = 1;
    PQfinish(c);
    return t;
}

static void *thread_b(void *arg)
{
    (void)arg;
    atomic_store(&b_tid, (int)gettid());
    for (;;) {
        sem_wait(&go);
        switch (command) {
        case CMD_NOWAIT: {
            double t0 = now_ns();
            b_ns = fail_connect() - t0;
            break;
        }
        case CMD_COND:
            pthread_mutex_lock(&cond_mu);
            atomic_store(&armed, 1);
            while (!cond_flag)
                pthread_cond_wait(&cond, &cond_mu);
            b_ns = now_ns();
            atomic_store(&returned, 1);
            cond_flag = 0;
            pthread_mutex_unlock(&cond_mu);
            break;
        case CMD_HANDOFF:
            atomic_store(&armed, 1);
            b_ns = fail_connect();
            break;
        case CMD_QUIT:
            return NULL;
        }
        sem_post(&done);
    }
}

/* True when thread tid is blocked in a futex system call. */
static int in_futex(int tid)
{
    char path[64], buf[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(buf, sizeof(buf), f) && atol(buf) == SYS_futex && buf[0] != '-';
    fclose(f);
    return ok;
}

/* Waits until B, armed, sleeps in a futex (twice in a row, 50 us apart); 0 if B returned first. */
static int wait_until_asleep(void)
{
    while (!atomic_load(&armed))
        pause_us(10);
    int tid = atomic_load(&b_tid);
    for (;;) {
        if (atomic_load(&returned))
            return 0;
        if (in_futex(tid)) {
            pause_us(50);
            if (in_futex(tid) && !atomic_load(&returned))
                return 1;
        }
        pause_us(20);
    }
}

static void start(enum cmd c)
{
    atomic_store(&armed, 0);
    atomic_store(&returned, 0);
    command = c;
    sem_post(&go);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and returns its p-quantile (nearest rank). */
static double quantile(double *v, long n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    long i = (long)(p * (double)n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static PGconn *connect_ok(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "handoff: the holder's connect failed: %s",
                c ? PQerrorMessage(c) : "out of memory\n");
        PQfinish(c);
        return NULL;
    }
    return c;
}

static long parse_count(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "handoff: %s must be a non-negative integer, not '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: handoff [-c CONNINFO] [-f FAILINFO] [-w WARMUP] N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *conninfo = "";
    long warmup = 20, cap = 1;
    int opt;
    while ((opt = getopt(argc, argv, "c:f:k:w:")) != -1) {
        switch (opt) {
        case 'c':
            conninfo = optarg;
            break;
        case 'f':
            failinfo = optarg;
            break;
        case 'k':
            cap = parse_count(optarg, "CAP");
            break;
        case 'w':
            warmup = parse_count(optarg, "WARMUP");
            break;
        default:
            usage();
        }
    }
    if (optind != argc - 1)
        usage();
    long n = parse_count(argv[optind], "N");
    if (n == 0 || cap == 0)
        usage();

    double *handoff = calloc((size_t)n, sizeof(double)), *nowait = calloc((size_t)n, sizeof(double)),
           *cond_lat = calloc((size_t)n, sizeof(double));
    PGconn **kept = calloc((size_t)cap, sizeof(*kept)); /* the CAP - 1 connections held throughout */
    if (!handoff || !nowait || !cond_lat || !kept) {
        fprintf(stderr, "handoff: out of memory\n");
        return 1;
    }
    sem_init(&go, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t b;
    if (pthread_create(&b, NULL, thread_b, NULL) != 0) {
        fprintf(stderr, "handoff: cannot start a thread\n");
        return 1;
    }
    int status = 0;
    for (long i = 0; i < cap - 1 && status == 0; i++)
        if (!(kept[i] = connect_ok(conninfo)))
            status = 1;
    for (long i = 0; i < warmup + n && status == 0; i++) {
        long k = i - warmup; /* < 0: warm-up */
        /* The previous holder's server process exits meanwhile: let it finish. */
        pause_us(settle_us);

        start(CMD_NOWAIT);
        sem_wait(&done);
        if (k >= 0)
            nowait[k] = b_ns;

        start(CMD_COND);
        wait_until_asleep();
        pthread_mutex_lock(&cond_mu);
        double t0 = now_ns();
        cond_flag = 1;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&cond_mu);
        sem_wait(&done);
        if (k >= 0)
            cond_lat[k] = b_ns - t0;

        PGconn *holder = connect_ok(conninfo);
        if (!holder) {
            status = 1;
            break;
        }
        start(CMD_HANDOFF);
        if (!wait_until_asleep()) {
            fprintf(stderr,
                    "handoff: the second connect did not wait for the slot: run with "
                    "LD_PRELOAD=libpqleak.so PQLEAK_MAX_CONNS=%ld\n",
                    cap);
            status = 1;
        }
        t0 = now_ns();
        PQfinish(holder);
        sem_wait(&done);
        if (k >= 0)
            handoff[k] = b_ns - t0;
        if (b_failed) {
            fprintf(stderr, "handoff: '%s' connected; it must fail without a server\n", failinfo);
            status = 1;
        }
    }
    command = CMD_QUIT;
    sem_post(&go);
    pthread_join(b, NULL);
    for (long i = 0; i < cap - 1; i++)
        PQfinish(kept[i]);
    if (status != 0)
        return status;

    double h50 = quantile(handoff, n, 0.5), w50 = quantile(nowait, n, 0.5);
    printf("handoff_med %.2f\n", h50 / 1e3);
    printf("handoff_p99 %.2f\n", quantile(handoff, n, 0.99) / 1e3);
    printf("nowait_med %.2f\n", w50 / 1e3);
    printf("nowait_p99 %.2f\n", quantile(nowait, n, 0.99) / 1e3);
    printf("cond_med %.2f\n", quantile(cond_lat, n, 0.5) / 1e3);
    printf("cond_p99 %.2f\n", quantile(cond_lat, n, 0.99) / 1e3);
    printf("net_med %.2f\n", h50 > w50 ? (h50 - w50) / 1e3 : 0.0);
    return 0;
}
