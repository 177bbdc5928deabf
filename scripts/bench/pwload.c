/*
 * pwload.c - Portway's benchmark load tool and service (scripts/bench.sh builds it with `cc -O2`).
 *
 * One single-threaded C program, so that the load side costs as little CPU as possible: on one core, every cycle
 * the load tool spends is a cycle the tunnel does not get. Every client mode is bounded in time (and in count where
 * it counts), prints exactly one JSON object on stdout and exits; the service exits by itself after MAX_S seconds.
 * Only 127.0.0.1 is ever used.
 *
 *   pwload serve ECHO SINK SOURCE UDP MAX_S
 *       TCP echo on ECHO; TCP sink on SINK (reads and discards, and writes one byte back per MiB received, so the
 *       sender can count what really arrived); TCP source on SOURCE (writes without end); UDP echo on UDP.
 *       Prints "READY" once all four listen.
 *   pwload ports N                            N port numbers free for both TCP and UDP on 127.0.0.1
 *   pwload probe PORT tcp|udp                 one 64-byte echo; exit 0 when it came back intact
 *   pwload lat PORT N SIZE DEADLINE_S WARMUP  one connection, N sequential SIZE-byte round trips
 *   pwload connrate PORT SECS SIZE MAXN       connect, SIZE-byte echo, close, again, for SECS (at most MAXN)
 *   pwload conc PORT N SIZE DEADLINE_S SETTLE_MS PID...
 *       opens N connections at once, each echoes SIZE bytes and is kept open; once all have echoed (or the
 *       deadline passed) waits SETTLE_MS, reads VmRSS/VmHWM of each PID from /proc, prints, closes everything.
 *   pwload tput PORT up|down STREAMS SECS WARMUP_MS
 *       STREAMS connections; `up` writes to a sink and counts the sink's MiB acknowledgements, `down` reads from a
 *       source; only what arrives between WARMUP_MS and WARMUP_MS + SECS counts. Receiver-side figures both ways;
 *       stream_mb lists each stream's MB (its share), stream_min_mb / stream_max_mb the smallest and largest.
 *   pwload udp PORT SECS SIZE WINDOW TIMEOUT_MS MAXN
 *       keeps WINDOW datagrams in flight for SECS; a datagram whose echo is not back within TIMEOUT_MS is lost
 *       (an echo arriving later is "late"). WINDOW 1 is a sequential ping-pong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)
#define IOBUF (128 * 1024)

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what) {
    printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
    fflush(stdout);
    exit(2);
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void timeouts(int fd, int secs) {
    struct timeval tv = {secs, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void fill(char *buf, int size, uint64_t seq) {
    for (int i = 0; i < size; i++) buf[i] = (char)('a' + (i + seq) % 26);
    if (size >= 8) memcpy(buf, &seq, 8);
}

static int write_all(int fd, const char *buf, int n) {
    int off = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += (int)w;
    }
    return 0;
}

/* 0 ok, -1 error, -2 EOF */
static int read_exact(int fd, char *buf, int n) {
    int off = 0;
    while (off < n) {
        ssize_t r = read(fd, buf + off, (size_t)(n - off));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) return -2;
        off += (int)r;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of sorted samples (ns), in microseconds */
static double pct(const uint64_t *s, size_t n, double q) {
    if (n == 0) return -1;
    size_t idx = (size_t)(q * (double)n + 0.999999);
    if (idx < 1) idx = 1;
    if (idx > n) idx = n;
    return (double)s[idx - 1] / 1000.0;
}

static void print_stats(uint64_t *s, size_t n) {
    qsort(s, n, sizeof *s, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)s[i];
    printf("\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f,"
           "\"mean_us\":%.2f",
           pct(s, n, 0.50), pct(s, n, 0.90), pct(s, n, 0.99), pct(s, n, 0.999), n ? (double)s[0] / 1000.0 : -1,
           n ? (double)s[n - 1] / 1000.0 : -1, n ? sum / (double)n / 1000.0 : -1);
}

/* ends every JSON object: the tool's own CPU time (so the script can tell what else ran on the core), then the error */
static void print_error(const char *err) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\"tool_cpu_s\":%.3f,", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    printf("\"error\":\"");
    for (const char *p = err; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        if ((unsigned char)*p >= 0x20) putchar(*p);
    }
    printf("\"");
}

/* ---------------------------------------------------------------- serve */

enum { K_NONE, K_LISTEN_ECHO, K_LISTEN_SINK, K_LISTEN_SOURCE, K_UDP, K_ECHO, K_SINK, K_SOURCE };

struct sconn {
    int kind;
    char *pend; /* echo: bytes not yet written back */
    int len, off;
    uint64_t got; /* sink: bytes received */
};

static struct sconn *sc;
static size_t sc_max;

static int listen_on(int ep, int port, int type, int kind) {
    int one = 1;
    int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);
    if (fd < 0) fail("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (type == SOCK_DGRAM) {
        int big = 4 * MIB;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
    struct sockaddr_in a = loopback(port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("bind");
    if (type == SOCK_STREAM && listen(fd, 4096) < 0) fail("listen");
    if ((size_t)fd >= sc_max) fail("fd table");
    sc[fd].kind = kind;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return fd;
}

static void sclose(int ep, int fd) {
    free(sc[fd].pend);
    memset(&sc[fd], 0, sizeof sc[fd]);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void watch(int ep, int fd, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, op, fd, &ev);
}

static int mode_serve(int echo_port, int sink_port, int source_port, int udp_port, int max_s) {
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    sc_max = rl.rlim_cur > 1048576 ? 1048576 : (size_t)rl.rlim_cur + 16;
    sc = calloc(sc_max, sizeof *sc);
    int ep = epoll_create1(0);
    if (ep < 0) fail("epoll_create1");
    listen_on(ep, echo_port, SOCK_STREAM, K_LISTEN_ECHO);
    listen_on(ep, sink_port, SOCK_STREAM, K_LISTEN_SINK);
    listen_on(ep, source_port, SOCK_STREAM, K_LISTEN_SOURCE);
    int ufd = listen_on(ep, udp_port, SOCK_DGRAM, K_UDP);
    static char buf[IOBUF], src[IOBUF];
    fill(src, IOBUF, 7);
    printf("READY\n");
    fflush(stdout);
    uint64_t end = now_ns() + (uint64_t)max_s * 1000000000ull;
    struct epoll_event evs[256];
    while (now_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            uint32_t e = evs[i].events;
            struct sconn *c = &sc[fd];
            int dead = 0;
            switch (c->kind) {
            case K_LISTEN_ECHO:
            case K_LISTEN_SINK:
            case K_LISTEN_SOURCE:
                for (int k = 0; k < 64; k++) {
                    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
                    if (cfd < 0) break;
                    if ((size_t)cfd >= sc_max) { close(cfd); continue; }
                    nodelay(cfd);
                    memset(&sc[cfd], 0, sizeof sc[cfd]);
                    sc[cfd].kind = c->kind == K_LISTEN_ECHO ? K_ECHO : c->kind == K_LISTEN_SINK ? K_SINK : K_SOURCE;
                    watch(ep, cfd, sc[cfd].kind == K_SOURCE ? EPOLLIN | EPOLLOUT : EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
                }
                break;
            case K_UDP:
                (void)ufd;
                for (int k = 0; k < 256; k++) {
                    struct sockaddr_in from;
                    socklen_t fl = sizeof from;
                    ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
                    if (r < 0) break;
                    sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
                }
                break;
            case K_ECHO:
                if (c->pend) { /* flushing a backlog: only EPOLLOUT is watched */
                    if (e & (EPOLLERR | EPOLLHUP)) dead = 1;
                    while (!dead && c->off < c->len) {
                        ssize_t w = write(fd, c->pend + c->off, (size_t)(c->len - c->off));
                        if (w < 0) {
                            if (errno != EAGAIN && errno != EINTR) dead = 1;
                            break;
                        }
                        c->off += (int)w;
                    }
                    if (!dead && c->off >= c->len) {
                        free(c->pend);
                        c->pend = NULL;
                        watch(ep, fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
                    }
                    break;
                }
                for (int loops = 0; loops < 16 && !dead; loops++) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r == 0) { dead = 1; break; }
                    if (r < 0) {
                        if (errno != EAGAIN && errno != EINTR) dead = 1;
                        break;
                    }
                    int off = 0;
                    while (off < r) {
                        ssize_t w = write(fd, buf + off, (size_t)(r - off));
                        if (w < 0) {
                            if (errno == EINTR) continue;
                            if (errno != EAGAIN) dead = 1;
                            break;
                        }
                        off += (int)w;
                    }
                    if (dead) break;
                    if (off < r) {
                        c->len = (int)r - off;
                        c->off = 0;
                        c->pend = malloc((size_t)c->len);
                        memcpy(c->pend, buf + off, (size_t)c->len);
                        watch(ep, fd, EPOLLOUT, EPOLL_CTL_MOD);
                        break;
                    }
                }
                if (!dead && !c->pend && (e & (EPOLLHUP | EPOLLERR))) dead = 1;
                break;
            case K_SINK:
                for (int loops = 0; loops < 16 && !dead; loops++) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r == 0) { dead = 1; break; }
                    if (r < 0) {
                        if (errno != EAGAIN && errno != EINTR) dead = 1;
                        break;
                    }
                    uint64_t before = c->got / MIB;
                    c->got += (uint64_t)r;
                    uint64_t acks = c->got / MIB - before;
                    static const char ackbuf[64] = {0};
                    while (acks > 0) { /* one byte per MiB: never more than a few in flight */
                        size_t k = acks > sizeof ackbuf ? sizeof ackbuf : (size_t)acks;
                        ssize_t w = write(fd, ackbuf, k);
                        if (w <= 0) { if (errno != EAGAIN && errno != EINTR) dead = 1; break; }
                        acks -= (uint64_t)w;
                    }
                }
                if (!dead && (e & (EPOLLHUP | EPOLLERR))) dead = 1;
                break;
            case K_SOURCE:
                if (e & (EPOLLHUP | EPOLLERR)) { dead = 1; break; }
                if (e & EPOLLIN) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { dead = 1; break; }
                }
                if (e & EPOLLOUT) {
                    for (int loops = 0; loops < 16; loops++) {
                        ssize_t w = write(fd, src, sizeof src);
                        if (w < 0) {
                            if (errno != EAGAIN && errno != EINTR) dead = 1;
                            break;
                        }
                        if ((size_t)w < sizeof src) break;
                    }
                }
                break;
            default:
                break;
            }
            if (dead) sclose(ep, fd);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- ports */

static int mode_ports(int n) {
    int got = 0, tries = 0; /* sockets stay open until exit, so that no number repeats */
    if (n > 64) n = 64;
    while (got < n && tries++ < 1000) {
        int t = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = loopback(0);
        if (bind(t, (struct sockaddr *)&a, sizeof a) < 0) { close(t); continue; }
        socklen_t l = sizeof a;
        getsockname(t, (struct sockaddr *)&a, &l);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in b = loopback(ntohs(a.sin_port));
        if (bind(u, (struct sockaddr *)&b, sizeof b) < 0) { close(u); continue; } /* t stays held, unused */
        close(u);
        printf("%d\n", ntohs(a.sin_port));
        got++;
    }
    return got == n ? 0 : 1;
}

/* ---------------------------------------------------------------- probe */

static int mode_probe(int port, const char *proto) {
    char out[64], in[64];
    fill(out, 64, (uint64_t)getpid());
    struct sockaddr_in a = loopback(port);
    if (!strcmp(proto, "udp")) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return 1;
        if (send(fd, out, 64, 0) != 64) return 1;
        uint64_t until = now_ns() + 500000000ull;
        while (now_ns() < until) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 100) <= 0) continue;
            ssize_t r = recv(fd, in, sizeof in, 0);
            if (r == 64 && !memcmp(in, out, 64)) return 0;
            if (r < 0) return 1;
        }
        return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    timeouts(fd, 2);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return 1;
    if (!strcmp(proto, "connect")) return 0;
    if (write_all(fd, out, 64) < 0 || read_exact(fd, in, 64) != 0) return 1;
    return memcmp(in, out, 64) != 0;
}

/* ------------------------------------------------------------------ lat */

static int mode_lat(int port, int n, int size, int deadline_s, int warmup) {
    signal(SIGPIPE, SIG_IGN);
    static char out[IOBUF], in[IOBUF];
    uint64_t *s = calloc((size_t)n + 1, sizeof *s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    nodelay(fd);
    timeouts(fd, 5);
    struct sockaddr_in a = loopback(port);
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)deadline_s * 1000000000ull;
    char err[160] = "";
    size_t ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        snprintf(err, sizeof err, "connect: %s", strerror(errno));
    } else {
        for (int i = 0; i < warmup + n; i++) {
            if (now_ns() > end) { snprintf(err, sizeof err, "deadline after %zu samples", ok); break; }
            fill(out, size, (uint64_t)i);
            uint64_t b = now_ns();
            if (i == warmup) t0 = b;
            if (write_all(fd, out, size) < 0) { snprintf(err, sizeof err, "write: %s", strerror(errno)); break; }
            int r = read_exact(fd, in, size);
            uint64_t e = now_ns();
            if (r == -2) { snprintf(err, sizeof err, "EOF from peer"); break; }
            if (r < 0) { snprintf(err, sizeof err, "read: %s", strerror(errno)); break; }
            if (memcmp(in, out, (size_t)size)) { snprintf(err, sizeof err, "echo mismatch"); break; }
            if (i >= warmup) s[ok++] = e - b;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    close(fd);
    printf("{\"n\":%d,\"ok\":%zu,\"size\":%d,\"secs\":%.3f,", n, ok, size, secs);
    print_stats(s, ok);
    printf(",");
    print_error(err);
    printf("}\n");
    return ok == (size_t)n ? 0 : 1;
}

/* ------------------------------------------------------------- connrate */

static int mode_connrate(int port, int secs_limit, int size, int maxn) {
    signal(SIGPIPE, SIG_IGN);
    static char out[IOBUF], in[IOBUF];
    uint64_t *s = calloc((size_t)maxn + 1, sizeof *s);
    struct sockaddr_in a = loopback(port);
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)secs_limit * 1000000000ull;
    char err[160] = "";
    size_t ok = 0, failed = 0;
    int attempted = 0;
    while (attempted < maxn && now_ns() < end) {
        int i = attempted++;
        uint64_t b = now_ns();
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            failed++;
            if (!err[0]) snprintf(err, sizeof err, "socket: %s", strerror(errno));
            continue;
        }
        nodelay(fd);
        timeouts(fd, 5);
        fill(out, size, (uint64_t)i);
        const char *what = NULL;
        int r = 0;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) what = "connect";
        else if (write_all(fd, out, size) < 0) what = "write";
        else if ((r = read_exact(fd, in, size)) != 0) what = r == -2 ? "EOF" : "read";
        else if (memcmp(in, out, (size_t)size)) what = "mismatch";
        int saved = errno;
        close(fd);
        if (what) {
            failed++;
            if (!err[0])
                snprintf(err, sizeof err, "conn %d %s: %s", i, what, r == -2 ? "closed by peer" : strerror(saved));
        } else {
            s[ok++] = now_ns() - b;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("{\"attempted\":%d,\"ok\":%zu,\"fail\":%zu,\"size\":%d,\"secs\":%.3f,\"conns_per_s\":%.1f,", attempted, ok,
           failed, size, secs, secs > 0 ? (double)ok / secs : 0);
    print_stats(s, ok);
    printf(",");
    print_error(err);
    printf("}\n");
    return failed == 0 ? 0 : 1;
}

/* ----------------------------------------------------------------- conc */

enum { C_CONNECTING = 1, C_WAITING, C_OK, C_FAIL };
struct cconn {
    int fd, state, got;
    char in[64];
};

static long proc_kib(int pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) { v = atol(line + kl); break; }
    fclose(f);
    return v;
}

static int mode_conc(int port, int n, int size, int deadline_s, int settle_ms, int npids, char **pids) {
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    if (size > 64) size = 64;
    struct cconn *c = calloc((size_t)n, sizeof *c);
    struct sockaddr_in a = loopback(port);
    int ep = epoll_create1(0);
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)deadline_s * 1000000000ull;
    int opened = 0, ok = 0, failed = 0;
    char err[160] = "", out[64];
    struct epoll_event evs[256];
    for (; opened < n; opened++) {
        int i = opened;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        c[i].fd = fd;
        if (fd < 0) {
            c[i].state = C_FAIL, failed++;
            if (!err[0]) snprintf(err, sizeof err, "socket: %s", strerror(errno));
            continue;
        }
        nodelay(fd);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
            c[i].state = C_FAIL, failed++;
            if (!err[0]) snprintf(err, sizeof err, "connect: %s", strerror(errno));
            close(fd);
            c[i].fd = -1;
            continue;
        }
        c[i].state = C_CONNECTING;
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    while (ok + failed < n && now_ns() < end) {
        int m = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < m; k++) {
            int i = (int)evs[k].data.u32;
            struct cconn *cc = &c[i];
            const char *what = NULL;
            if (cc->state == C_CONNECTING) {
                int e = 0;
                socklen_t el = sizeof e;
                getsockopt(cc->fd, SOL_SOCKET, SO_ERROR, &e, &el);
                if (e) {
                    errno = e;
                    what = "connect";
                } else {
                    fill(out, size, (uint64_t)i);
                    if (write(cc->fd, out, (size_t)size) != size) what = "write";
                    else {
                        cc->state = C_WAITING;
                        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                        epoll_ctl(ep, EPOLL_CTL_MOD, cc->fd, &ev);
                    }
                }
            } else if (cc->state == C_WAITING) {
                ssize_t r = read(cc->fd, cc->in + cc->got, (size_t)(size - cc->got));
                if (r == 0) {
                    errno = ECONNRESET;
                    what = "EOF";
                } else if (r < 0) {
                    if (errno != EAGAIN && errno != EINTR) what = "read";
                } else if ((cc->got += (int)r) == size) {
                    fill(out, size, (uint64_t)i);
                    if (memcmp(out, cc->in, (size_t)size)) what = "mismatch";
                    else {
                        cc->state = C_OK, ok++;
                        epoll_ctl(ep, EPOLL_CTL_DEL, cc->fd, NULL); /* keep it open */
                    }
                }
            }
            if (what) {
                if (!err[0]) snprintf(err, sizeof err, "conn %d %s: %s", i, what, strerror(errno));
                cc->state = C_FAIL, failed++;
                epoll_ctl(ep, EPOLL_CTL_DEL, cc->fd, NULL);
                close(cc->fd);
                cc->fd = -1;
            }
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    int pending = n - ok - failed;
    if (pending && !err[0]) snprintf(err, sizeof err, "deadline with %d pending", pending);
    usleep((useconds_t)settle_ms * 1000);
    printf("{\"n\":%d,\"ok\":%d,\"fail\":%d,\"pending\":%d,\"secs_to_all\":%.3f,\"rss_kib\":{", n, ok, failed, pending,
           secs);
    long total = 0, hwm = 0;
    for (int p = 0; p < npids; p++) {
        long v = proc_kib(atoi(pids[p]), "VmRSS:");
        printf("%s\"%s\":%ld", p ? "," : "", pids[p], v);
        if (v > 0) total += v;
        long h = proc_kib(atoi(pids[p]), "VmHWM:");
        if (h > 0) hwm += h;
    }
    printf("},\"rss_total_kib\":%ld,\"hwm_total_kib\":%ld,", total, hwm);
    print_error(err);
    printf("}\n");
    fflush(stdout);
    for (int i = 0; i < opened; i++)
        if (c[i].fd > 0 && c[i].state != C_FAIL) close(c[i].fd);
    return ok == n ? 0 : 1;
}

/* ----------------------------------------------------------------- tput */

static int mode_tput(int port, const char *dir, int streams, int secs, int warmup_ms) {
    signal(SIGPIPE, SIG_IGN);
    int up = !strcmp(dir, "up");
    static char buf[IOBUF];
    fill(buf, IOBUF, 3);
    if (streams < 1) streams = 1;
    if (streams > 256) streams = 256;
    int fds[256];
    uint64_t counted[256] = {0};
    struct sockaddr_in a = loopback(port);
    char err[160] = "";
    int ep = epoll_create1(0);
    for (int i = 0; i < streams; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fds[i], (struct sockaddr *)&a, sizeof a) < 0) {
            printf("{\"error\":\"connect stream %d: %s\"}\n", i, strerror(errno));
            return 2;
        }
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = up ? EPOLLIN | EPOLLOUT : EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    uint64_t t0 = now_ns(), w0 = t0 + (uint64_t)warmup_ms * 1000000ull, w1 = w0 + (uint64_t)secs * 1000000000ull;
    uint64_t total = 0, sent = 0, first = 0, last = 0;
    int alive = streams;
    struct epoll_event evs[256];
    uint64_t now;
    while ((now = now_ns()) < w1 && alive > 0) {
        int m = epoll_wait(ep, evs, 256, 100);
        now = now_ns();
        int in_window = now >= w0 && now < w1;
        for (int k = 0; k < m; k++) {
            int i = (int)evs[k].data.u32, fd = fds[i];
            if (fd < 0) continue;
            int dead = 0;
            if (evs[k].events & EPOLLIN) {
                for (int loops = 0; loops < 4; loops++) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r == 0) { dead = 1; if (!err[0]) snprintf(err, sizeof err, "stream %d: EOF", i); break; }
                    if (r < 0) {
                        if (errno != EAGAIN && errno != EINTR) {
                            dead = 1;
                            if (!err[0]) snprintf(err, sizeof err, "stream %d read: %s", i, strerror(errno));
                        }
                        break;
                    }
                    uint64_t bytes = up ? (uint64_t)r * MIB : (uint64_t)r; /* up: one ack byte per MiB */
                    if (in_window) {
                        total += bytes, counted[i] += bytes;
                        if (!first) first = now;
                        last = now;
                    }
                    if ((size_t)r < sizeof buf) break;
                }
            }
            if (!dead && up && (evs[k].events & EPOLLOUT)) {
                for (int loops = 0; loops < 4; loops++) {
                    ssize_t w = write(fd, buf, sizeof buf);
                    if (w < 0) {
                        if (errno != EAGAIN && errno != EINTR) {
                            dead = 1;
                            if (!err[0]) snprintf(err, sizeof err, "stream %d write: %s", i, strerror(errno));
                        }
                        break;
                    }
                    sent += (uint64_t)w;
                    if ((size_t)w < sizeof buf) break;
                }
            }
            if (!dead && (evs[k].events & (EPOLLERR | EPOLLHUP))) {
                dead = 1;
                if (!err[0]) snprintf(err, sizeof err, "stream %d: hangup", i);
            }
            if (dead) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                fds[i] = -1;
                alive--;
            }
        }
    }
    double window = (double)(w1 - w0) / 1e9;
    uint64_t mn = UINT64_MAX, mx = 0;
    for (int i = 0; i < streams; i++) {
        if (counted[i] < mn) mn = counted[i];
        if (counted[i] > mx) mx = counted[i];
        if (fds[i] >= 0) close(fds[i]);
    }
    printf("{\"dir\":\"%s\",\"streams\":%d,\"secs\":%.3f,\"bytes\":%llu,\"mb_s\":%.1f,\"gbit_s\":%.3f,"
           "\"stream_min_mb\":%.1f,\"stream_max_mb\":%.1f,\"sent_bytes\":%llu,",
           dir, streams, window, (unsigned long long)total, (double)total / window / 1e6,
           (double)total * 8 / window / 1e9, (double)mn / 1e6, (double)mx / 1e6, (unsigned long long)sent);
    printf("\"stream_mb\":[");
    for (int i = 0; i < streams; i++) printf("%s%.1f", i ? "," : "", (double)counted[i] / 1e6);
    printf("],");
    print_error(err);
    printf("}\n");
    (void)first, (void)last;
    return err[0] ? 1 : 0;
}

/* ------------------------------------------------------------------ udp */

static int mode_udp(int port, int secs, int size, int window, int timeout_ms, int maxn) {
    static char out[IOBUF], in[IOBUF];
    if (size < 8) size = 8;
    if (window < 1) window = 1;
    uint64_t *ts = calloc((size_t)maxn + 1, sizeof *ts); /* send time; 0 once settled */
    uint64_t *rtt = calloc((size_t)maxn + 1, sizeof *rtt);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 * MIB;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct sockaddr_in a = loopback(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("udp connect");
    uint64_t t0 = now_ns(), send_end = t0 + (uint64_t)secs * 1000000000ull, tmo = (uint64_t)timeout_ms * 1000000ull;
    uint64_t sent = 0, got = 0, lost = 0, late = 0, senderr = 0, oldest = 0, inflight = 0;
    char err[160] = "";
    for (;;) {
        uint64_t now = now_ns();
        int sending = now < send_end && sent < (uint64_t)maxn;
        if (!sending && inflight == 0) break;
        if (now > send_end + tmo + 1000000000ull) break; /* hard bound */
        while (sending && inflight < (uint64_t)window && sent < (uint64_t)maxn) {
            fill(out, size, sent);
            uint64_t t = now_ns();
            if (send(fd, out, (size_t)size, 0) != size) {
                senderr++;
                if (!err[0]) snprintf(err, sizeof err, "send: %s", strerror(errno));
                ts[sent] = 0, lost++, sent++;
                break;
            }
            ts[sent++] = t, inflight++;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, 1);
        if (pr > 0) {
            for (int k = 0; k < 256; k++) {
                ssize_t r = recv(fd, in, sizeof in, MSG_DONTWAIT);
                if (r < 0) {
                    if (errno != EAGAIN && errno != EINTR && !err[0])
                        snprintf(err, sizeof err, "recv: %s", strerror(errno));
                    break;
                }
                uint64_t e = now_ns(), seq;
                if (r != size) { late++; continue; }
                memcpy(&seq, in, 8);
                if (seq >= sent) { late++; continue; }
                fill(out, size, seq);
                if (memcmp(in, out, (size_t)size)) { late++; continue; }
                if (ts[seq] == 0) { late++; continue; } /* already counted lost, or a duplicate */
                rtt[got++] = e - ts[seq];
                ts[seq] = 0, inflight--;
            }
        }
        now = now_ns();
        while (oldest < sent && (ts[oldest] == 0 || now - ts[oldest] > tmo)) {
            if (ts[oldest] != 0) ts[oldest] = 0, lost++, inflight--;
            oldest++;
        }
    }
    double dur = (double)(send_end < now_ns() ? send_end - t0 : now_ns() - t0) / 1e9;
    close(fd);
    printf("{\"window\":%d,\"size\":%d,\"secs\":%.3f,\"sent\":%llu,\"recv\":%llu,\"lost\":%llu,\"late\":%llu,"
           "\"send_errors\":%llu,\"loss_pct\":%.3f,\"dgrams_per_s\":%.1f,",
           window, size, dur, (unsigned long long)sent, (unsigned long long)got, (unsigned long long)lost,
           (unsigned long long)late, (unsigned long long)senderr, sent ? 100.0 * (double)lost / (double)sent : 100.0,
           dur > 0 ? (double)got / dur : 0);
    print_stats(rtt, got);
    printf(",");
    print_error(err);
    printf("}\n");
    return got > 0 ? 0 : 1;
}

static int iarg(int argc, char **argv, int i, int def) {
    return i < argc ? atoi(argv[i]) : def;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: pwload serve|ports|probe|lat|connrate|conc|tput|udp ARGS (see the source)\n");
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "ports")) return mode_ports(atoi(argv[2]));
    int port = atoi(argv[2]);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "bad port %s\n", argv[2]);
        return 2;
    }
    int size = iarg(argc, argv, 4, 64);
    if (size < 1 || size > IOBUF) size = 64;
    if (!strcmp(m, "serve"))
        return mode_serve(port, iarg(argc, argv, 3, 0), iarg(argc, argv, 4, 0), iarg(argc, argv, 5, 0),
                          iarg(argc, argv, 6, 3600));
    if (!strcmp(m, "probe")) return mode_probe(port, argc > 3 ? argv[3] : "tcp");
    if (!strcmp(m, "lat"))
        return mode_lat(port, iarg(argc, argv, 3, 20000), size, iarg(argc, argv, 5, 60), iarg(argc, argv, 6, 200));
    if (!strcmp(m, "connrate"))
        return mode_connrate(port, iarg(argc, argv, 3, 5), size, iarg(argc, argv, 5, 500000));
    if (!strcmp(m, "conc"))
        return mode_conc(port, iarg(argc, argv, 3, 1000), size, iarg(argc, argv, 5, 30), iarg(argc, argv, 6, 1000),
                         argc > 7 ? argc - 7 : 0, argv + 7);
    if (!strcmp(m, "tput"))
        return mode_tput(port, argc > 3 ? argv[3] : "up", iarg(argc, argv, 4, 1), iarg(argc, argv, 5, 5),
                         iarg(argc, argv, 6, 1000));
    if (!strcmp(m, "udp"))
        return mode_udp(port, iarg(argc, argv, 3, 3), size, iarg(argc, argv, 5, 32), iarg(argc, argv, 6, 200),
                        iarg(argc, argv, 7, 2000000));
    fprintf(stderr, "unknown mode %s\n", m);
    return 2;
}
