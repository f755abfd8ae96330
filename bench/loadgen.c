/*
 * Fixed-rate (open-loop) HTTP/1.1 load generator for bench/redirect.py.
 *
 * Why our own: wrk measures a closed loop (a slow answer delays the next request, which hides
 * stalls), wrk2 is not packaged by Debian, and the earlier Python generator stalled for 8-12 ms
 * itself at 20,000 requests/s, as much as the p99 it was to measure. This one is a single
 * thread on epoll with nanosecond timeouts; its own longest stall is reported (`max_stall`).
 *
 * Model (as the Python generator had it): `connections` keep-alive connections, one request
 * at a time each; request k is due at start + k / rate on connection k % connections. A
 * request due while its connection still waits is sent as soon as the answer arrives, and its
 * latency still counts from when it was due (no coordinated omission).
 *
 *   loadgen PORT RATE CONNECTIONS DURATION_S WARMUP_S TOKENS_FILE HOST USER_AGENT
 *
 * Prints one JSON object: rate, achieved, sent, completed, in_flight_at_end,
 * lost_connections, statuses, p50, p99, p999, max (ms), behind, max_stall (ms).
 * Only ever connects to 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING 4096
#define BUF 65536

typedef struct {
    int fd;
    int busy;
    double sched;             /* when the request on the wire was due */
    double due[RING];         /* requests due while busy, oldest first */
    unsigned head, tail;
    char buf[BUF];
    size_t len;
} conn_t;

static char **reqs;
static size_t *req_len;
static size_t nreqs;
static uint64_t rng = 88172645463325252ULL;
static double *lat;
static size_t nlat, cap_lat;
static long statuses[600];
static long sent, completed, in_window, lost, behind, overflow;
static double measure_from, stop_at;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int open_conn(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void send_req(conn_t *c, double sched) {
    size_t i = next_rand() % nreqs;
    ssize_t n = send(c->fd, reqs[i], req_len[i], MSG_NOSIGNAL);
    if (n != (ssize_t)req_len[i]) die("send (short or failed)");
    c->busy = 1;
    c->sched = sched;
    sent++;
}

static void record(double latency) {
    if (nlat == cap_lat) {
        cap_lat = cap_lat ? cap_lat * 2 : 1 << 16;
        lat = realloc(lat, cap_lat * sizeof *lat);
        if (!lat) die("realloc");
    }
    lat[nlat++] = latency;
}

/* Complete answers in c->buf: count them, free the connection, send what is due. */
static void on_readable(conn_t *c, double now) {
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            die("recv");
        }
        if (n == 0) { /* the server closed the connection */
            lost++;
            c->busy = 0;
            c->head = c->tail = 0;
            close(c->fd);
            c->fd = -1;
            return;
        }
        c->len += (size_t)n;
        if (c->len == BUF) die("answer larger than the buffer");
    }
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return;
        size_t head = (size_t)(end - c->buf) + 4, body = 0;
        for (char *p = c->buf; p < end; p++) {
            if (*p == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0) {
                body = strtoul(p + 16, NULL, 10);
                break;
            }
        }
        if (c->len < head + body) return;
        int status = atoi(c->buf + 9);
        statuses[status > 0 && status < 600 ? status : 0]++;
        completed++;
        if (c->sched >= measure_from && c->sched < stop_at) record(now - c->sched);
        if (now >= measure_from && now < stop_at) in_window++;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
        c->busy = 0;
        if (c->head != c->tail) {
            behind++;
            send_req(c, c->due[c->head++ % RING]);
        }
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double q) {
    if (!nlat) return -1;
    size_t i = (size_t)(q * nlat);
    return lat[i < nlat ? i : nlat - 1] * 1e3;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s PORT RATE CONNECTIONS DURATION WARMUP TOKENS HOST UA\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]);
    int nconn = atoi(argv[3]);
    double duration = atof(argv[4]), warmup = atof(argv[5]);
    if (port <= 0 || rate <= 0 || nconn <= 0 || duration <= 0 || warmup < 0) {
        fprintf(stderr, "loadgen: bad argument\n");
        return 2;
    }
    FILE *f = fopen(argv[6], "r");
    if (!f) die(argv[6]);
    char line[256];
    size_t cap = 1024;
    reqs = malloc(cap * sizeof *reqs);
    req_len = malloc(cap * sizeof *req_len);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        if (nreqs == cap) {
            cap *= 2;
            reqs = realloc(reqs, cap * sizeof *reqs);
            req_len = realloc(req_len, cap * sizeof *req_len);
        }
        int n = asprintf(&reqs[nreqs], "GET /c/%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n\r\n",
                         line, argv[7], argv[8]);
        if (n < 0) die("asprintf");
        req_len[nreqs++] = (size_t)n;
    }
    fclose(f);
    if (!nreqs) {
        fprintf(stderr, "loadgen: no tokens in %s\n", argv[6]);
        return 2;
    }
    rng ^= (uint64_t)getpid() * 2654435761ULL;

    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)nconn, sizeof *conns);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = open_conn(port);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) die("epoll_ctl");
    }
    double start = now_s() + 0.05;
    measure_from = start + warmup;
    stop_at = measure_from + duration;
    double interval = 1.0 / rate, max_stall = 0, last = now_s();
    long k = 0;
    struct epoll_event evs[256];
    for (;;) {
        double now = now_s();
        if (now > measure_from && now - last > max_stall) max_stall = now - last;
        last = now;
        if (now >= stop_at) break;
        for (double due = start + k * interval; due <= now && due < stop_at;
             due = start + ++k * interval) {
            conn_t *c = &conns[k % nconn];
            if (c->fd < 0) continue;
            if (!c->busy && c->head == c->tail) {
                send_req(c, due);
            } else if (c->tail - c->head < RING) {
                c->due[c->tail++ % RING] = due;
            } else {
                overflow++;
            }
        }
        double wait = start + k * interval - now_s();
        struct timespec ts = {0, 0};
        if (wait > 0) {
            ts.tv_sec = (time_t)wait;
            ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
        }
        int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
        if (n < 0 && errno != EINTR) die("epoll_pwait2");
        double t = now_s();
        for (int i = 0; i < n; i++) on_readable(&conns[evs[i].data.u32], t);
    }
    /* Let what is on the wire (and queued) finish, up to 10 s. */
    double deadline = now_s() + 10;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < nconn; i++) busy += conns[i].busy;
        if (!busy || now_s() > deadline) break;
        int n = epoll_wait(ep, evs, 256, 10);
        double t = now_s();
        for (int i = 0; i < n; i++) on_readable(&conns[evs[i].data.u32], t);
    }
    long in_flight = 0;
    for (int i = 0; i < nconn; i++) {
        in_flight += conns[i].busy;
        if (conns[i].fd >= 0) close(conns[i].fd);
    }
    qsort(lat, nlat, sizeof *lat, cmp);
    printf("{\"rate\": %.0f, \"achieved\": %.1f, \"sent\": %ld, \"completed\": %ld, "
           "\"in_flight_at_end\": %ld, \"lost_connections\": %ld, \"statuses\": {",
           rate, in_window / duration, sent, completed, in_flight, lost);
    int first = 1;
    for (int s = 0; s < 600; s++) {
        if (statuses[s]) {
            printf("%s\"%d\": %ld", first ? "" : ", ", s, statuses[s]);
            first = 0;
        }
    }
    printf("}, \"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, \"behind\": %ld, "
           "\"schedule_overflow\": %ld, \"max_stall\": %.3f}\n",
           pct(0.50), pct(0.99), pct(0.999), nlat ? lat[nlat - 1] * 1e3 : -1.0, behind,
           overflow, max_stall * 1e3);
    return 0;
}
