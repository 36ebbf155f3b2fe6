/* A WebSocket load generator: the client side of RFC 6455 on one epoll loop.
 *
 * Plain C with no Python in it: _speedups/loadgen.pyx fills a wsl_config,
 * calls wsl_run() with the GIL released and turns the wsl_result into a dict.
 *
 * Design, for many connections and little CPU per message:
 *
 * - Non-blocking sockets, level-triggered epoll, TCP_NODELAY; each connection
 *   binds to the next source address (127.0.0.x) before connect(), with
 *   IP_BIND_ADDRESS_NO_PORT so the port is picked per 4-tuple at connect time.
 * - One read buffer for the whole loop. The frame parser is a byte-stream
 *   state machine: a frame cut by the end of a read leaves behind at most its
 *   header (10 bytes), the timestamp digits decoded so far, and for a control
 *   frame its payload (<= 125 bytes, allocated only then). Data payloads are
 *   never buffered, so an idle connection owns no buffer and a 16 MiB message
 *   costs nothing but the reads.
 * - Corked writes: everything one read triggers (echo sends, Pongs, a Close)
 *   goes into one staging buffer and leaves in one send(); only the bytes the
 *   kernel refuses are queued on the connection (and EPOLLOUT is asked for).
 * - Payload: bytes 0-15 are the send time (CLOCK_MONOTONIC, ns) as lowercase
 *   hex, 16-23 the sender's connection number in hex, the rest '.' filler:
 *   ASCII, so text frames are valid UTF-8. Latency = receive time - that
 *   timestamp; CLOCK_MONOTONIC is one clock for all processes of a machine.
 * - Latency histogram: 1 us buckets below 1024 us, then 128 buckets per power
 *   of two (< 0.8% wide) up to 2^26 us (67 s), then one overflow bucket.
 *
 * Timeline of a run: a ramp (connections/ramp_rate s, plus at most
 * handshake_timeout for the last handshakes), then `warmup` s unmeasured,
 * then `duration` s measured, then a closing phase of at most close_timeout s
 * (a Close frame to every open connection, then wait for the server's FIN).
 * The run ends early when stop_fd becomes readable or no connection is left.
 */
#ifndef WSFRAME_WSLOAD_H
#define WSFRAME_WSLOAD_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24   /* Linux >= 4.2, <linux/in.h> */
#endif
#ifndef RUSAGE_THREAD
#define RUSAGE_THREAD 1              /* Linux; glibc shows it only with _GNU_SOURCE */
#endif

enum { WSL_ECHO = 0, WSL_HOLD = 1, WSL_SUBSCRIBE = 2, WSL_PUBLISH = 3 };

/* Failure reasons: an errno value below WSL_ERRNO_MAX, or one of these. */
#define WSL_ERRNO_MAX 256
enum {
    WSL_F_HANDSHAKE_TIMEOUT = WSL_ERRNO_MAX,  /* no 101 within handshake_timeout */
    WSL_F_BAD_HANDSHAKE,                      /* a response other than 101, or a huge head */
    WSL_F_EOF,                                /* the server closed TCP without a Close frame */
    WSL_F_PROTOCOL,                           /* a frame RFC 6455 forbids */
    WSL_NFAIL
};

/* Histogram geometry (see the top of the file). */
#define WSL_LINEAR 1024
#define WSL_SUB_BITS 7
#define WSL_MIN_EXP 10                 /* 2^10 = WSL_LINEAR */
#define WSL_MAX_EXP 26
#define WSL_NBUCKETS (WSL_LINEAR + (WSL_MAX_EXP - WSL_MIN_EXP) * (1 << WSL_SUB_BITS) + 1)

typedef struct {
    uint32_t host;              /* IPv4 address, network byte order */
    uint16_t port;              /* host byte order */
    const char *path;           /* request target: "/", "/room/x?a=b" */
    long path_cycle;            /* > 0: connection k asks for path + decimal (path_offset + k) % path_cycle */
    long path_offset;
    int mode;                   /* WSL_ECHO ... */
    long connections;           /* connection attempts */
    int inflight;               /* echo: messages outstanding per connection */
    size_t size;                /* payload bytes per message (>= 24) */
    int text;                   /* opcode 1 (text) or 2 (binary) */
    double duration, warmup;    /* seconds: measured window, and the unmeasured lead-in */
    double ramp_rate;           /* connection attempts per second (<= 0: no limit) */
    double rate;                /* publish: messages per second in total (<= 0: flood) */
    double handshake_timeout;   /* connect + 101 response, seconds */
    double close_timeout;       /* closing phase, seconds */
    const uint32_t *sources;    /* bind() addresses, network byte order; may be NULL */
    int nsources;
    int stop_fd;                /* stop early when readable; -1: none */
    volatile int64_t *progress; /* live counters for a watcher, or NULL (see WSL_PROGRESS) */
    long room_size;             /* > 0: path[room_off..+8] becomes connection index / room_size */
    size_t room_off;            /*      in 8 hex digits (one room per room_size connections) */
} wsl_config;

/* progress[]: what another process may read while the run goes on. */
enum { WSL_P_ATTEMPTED = 0, WSL_P_OPEN, WSL_P_FAILED, WSL_P_RECEIVED, WSL_P_SENT, WSL_PROGRESS };

typedef struct {
    int64_t attempted, connected, survivors, closed_by_server, dropped, peak_open;
    int64_t messages_sent, messages_received, bytes_received, pings_answered;
    double elapsed, connect_seconds, cpu_user, cpu_system, cpu_measured;
    uint64_t lat_count, lat_sum_ns, lat_max_ns;
    uint64_t failed[WSL_NFAIL];
    uint64_t hist[WSL_NBUCKETS];
} wsl_result;

/* ---- connections ------------------------------------------------------------------ */

enum { WSL_IDLE = 0, WSL_CONNECTING, WSL_HANDSHAKE, WSL_OPEN, WSL_CLOSING, WSL_DONE };

/* Bytes the kernel did not take: data[off:len]. */
typedef struct {
    size_t off, len, cap;
    unsigned char data[];
} wsl_queue;

typedef struct {
    int fd;
    uint8_t state;
    uint8_t ev;            /* the epoll events registered */
    uint8_t in_frame;      /* reading the payload of a frame */
    uint8_t op;            /* first header byte of the current frame (FIN | opcode) */
    uint8_t msg_op;        /* opcode of the data message in progress; 0: none */
    uint8_t ts_n;          /* hex digits of its timestamp decoded; 0xFF: it has none */
    uint8_t hdr_len;       /* bytes of a cut frame header in hdr */
    uint8_t ctl_len;       /* bytes of a cut control payload in ctl */
    uint8_t hs_match;      /* handshake: progress through "\r\n\r\n" */
    unsigned char hdr[10]; /* 2 + 8: server frames carry no masking key */
    uint32_t hs_n;         /* handshake: response bytes read */
    uint64_t left;         /* payload bytes of the current frame still to come */
    uint64_t ts;           /* the timestamp being decoded */
    int64_t t0;            /* when the connection attempt started (ns) */
    wsl_queue *wq;         /* unsent bytes; NULL almost always */
    unsigned char *ctl;    /* a control payload cut by a read; NULL almost always */
} wsl_conn;

typedef struct {
    unsigned char *p;
    size_t len, cap;
} wsl_stage;

enum { WSL_PH_RAMP, WSL_PH_RUN, WSL_PH_CLOSE, WSL_PH_DONE };

#define WSL_RBUF (256 * 1024)
#define WSL_MAX_EVENTS 1024
#define WSL_RAMP_BATCH 1024            /* attempts per loop turn at most */
#define WSL_RAMP_SLICE_NS 2000000LL    /* and connect() for at most 2 ms per turn */
#define WSL_MAX_QUEUE (4u << 20)       /* publish skips a connection with more queued */
#define WSL_MAX_HEAD 16384             /* response head limit */

typedef struct {
    const wsl_config *cfg;
    wsl_result *res;
    int ep;
    int phase;
    int measuring, measured;   /* inside the window; the window has started */
    int stop, ramp_stopped, flood;
    int addr_fail_streak;
    long nconns;               /* attempts so far = conns[] in use */
    long open, pending, live;  /* OPEN; CONNECTING or HANDSHAKE; fds held */
    long hs_scan;              /* oldest connection that may still be handshaking */
    long pub_cursor;
    int64_t now, t_start, window_start, window_end, measure_t0, close_deadline, pub_last;
    double credit, credit_cap;
    uint64_t rng;
    long due;                  /* echo sends triggered by the current read */
    size_t frame_len;          /* bytes of one message frame on the wire */
    struct rusage ru_window;
    wsl_conn *conns;
    unsigned char *rbuf;
    unsigned char *payload;    /* one message, unmasked; bytes 0-23 rewritten per batch */
    char *request;             /* the handshake request, key at key_off */
    size_t request_len, key_off, room_off;  /* room_off: 0, or where the room digits go */
    size_t path_end;           /* where a path_cycle number goes (the end of the path) */
    wsl_stage st;
} wsl_loop;

/* ---- small helpers ------------------------------------------------------------------ */

static inline int64_t wsl_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t wsl_ns(double seconds)
{
    if (seconds <= 0) return 0;
    if (seconds > 1e9) seconds = 1e9;
    return (int64_t)(seconds * 1e9);
}

/* xorshift64* (Vigna): masking keys and handshake nonces. Not cryptographic:
 * RFC 6455 §5.3 wants unpredictable keys against proxy cache poisoning, which
 * does not apply to a loopback benchmark; speed does. */
static inline uint64_t wsl_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static const char wsl_hex[] = "0123456789abcdef";

static void wsl_put_hex(unsigned char *dst, uint64_t v, int digits)
{
    int i;
    for (i = digits - 1; i >= 0; i--) {
        dst[i] = (unsigned char)wsl_hex[v & 15];
        v >>= 4;
    }
}

/* Base64 (RFC 4648 §4) of 16 bytes: 24 characters, two of them '='. */
static void wsl_base64_16(const unsigned char *in, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int i, o = 0;
    uint32_t v;
    for (i = 0; i + 3 <= 15; i += 3) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    v = (uint32_t)in[15] << 16;          /* one byte left: xx== */
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
}

/* dst = src XOR the 4-byte key repeated (RFC 6455 §5.3), 8 bytes per step. */
static void wsl_mask_copy(unsigned char *dst, const unsigned char *src, size_t n,
                          const unsigned char *key)
{
    uint32_t k32;
    uint64_t k64, w;
    size_t i = 0;
    memcpy(&k32, key, 4);
    k64 = ((uint64_t)k32 << 32) | k32;   /* the key bytes in memory order, twice */
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

static int wsl_reserve(wsl_stage *b, size_t more)
{
    size_t cap;
    unsigned char *p;
    if (b->len + more <= b->cap) return 0;
    cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more) cap *= 2;
    p = (unsigned char *)realloc(b->p, cap);
    if (p == NULL) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int wsl_queue_add(wsl_queue **qp, const unsigned char *p, size_t n)
{
    wsl_queue *q = *qp, *g;
    size_t cap;
    if (q == NULL) {
        cap = n < 4096 ? 4096 : n;
        q = (wsl_queue *)malloc(sizeof(wsl_queue) + cap);
        if (q == NULL) return -1;
        q->off = q->len = 0;
        q->cap = cap;
        *qp = q;
    }
    if (q->off && q->len + n > q->cap) {        /* slide the unsent bytes to the front */
        memmove(q->data, q->data + q->off, q->len - q->off);
        q->len -= q->off;
        q->off = 0;
    }
    if (q->len + n > q->cap) {
        cap = q->cap * 2;
        while (cap < q->len + n) cap *= 2;
        g = (wsl_queue *)realloc(q, sizeof(wsl_queue) + cap);
        if (g == NULL) return -1;
        q = g;
        q->cap = cap;
        *qp = q;
    }
    memcpy(q->data + q->len, p, n);
    q->len += n;
    return 0;
}

/* ---- latency histogram -------------------------------------------------------------- */

static inline int wsl_bucket(uint64_t us)
{
    int k;
    if (us < WSL_LINEAR) return (int)us;
    k = 63 - __builtin_clzll(us);
    if (k >= WSL_MAX_EXP) return WSL_NBUCKETS - 1;
    return WSL_LINEAR + (k - WSL_MIN_EXP) * (1 << WSL_SUB_BITS)
           + (int)((us >> (k - WSL_SUB_BITS)) & ((1 << WSL_SUB_BITS) - 1));
}

/* Bucket i holds [lower, upper) microseconds; the overflow bucket ends at max. */
static void wsl_bucket_range(const wsl_result *r, int i, double *lower, double *upper)
{
    int k, sub;
    if (i < WSL_LINEAR) {
        *lower = i;
        *upper = i + 1;
        return;
    }
    if (i >= WSL_NBUCKETS - 1) {
        *lower = (double)(1ULL << WSL_MAX_EXP);
        *upper = r->lat_max_ns / 1000.0 + 1;
        return;
    }
    k = WSL_MIN_EXP + (i - WSL_LINEAR) / (1 << WSL_SUB_BITS);
    sub = (i - WSL_LINEAR) % (1 << WSL_SUB_BITS);
    *lower = (double)(((uint64_t)(1 << WSL_SUB_BITS) + sub) << (k - WSL_SUB_BITS));
    *upper = *lower + (double)(1ULL << (k - WSL_SUB_BITS));
}

/* The q-quantile (0 < q <= 1) in microseconds: the middle of its bucket, capped at max. */
static double wsl_percentile(const wsl_result *r, double q)
{
    uint64_t rank, seen = 0;
    double lo, hi, v, max_us = r->lat_max_ns / 1000.0;
    int i;
    if (r->lat_count == 0) return 0.0;
    v = q * (double)r->lat_count;        /* rank = ceil(q * count) */
    rank = (uint64_t)v;
    if ((double)rank < v) rank++;
    if (rank < 1) rank = 1;
    if (rank > r->lat_count) rank = r->lat_count;
    for (i = 0; i < WSL_NBUCKETS; i++) {
        seen += r->hist[i];
        if (seen >= rank) {
            wsl_bucket_range(r, i, &lo, &hi);
            v = (lo + hi) / 2;
            return v < max_us ? v : max_us;
        }
    }
    return max_us;
}

static inline void wsl_record(wsl_result *r, int64_t ns)
{
    if (ns < 0) return;   /* "sent" in the future: not one of our timestamps */
    r->hist[wsl_bucket((uint64_t)ns / 1000)]++;
    r->lat_count++;
    r->lat_sum_ns += (uint64_t)ns;
    if ((uint64_t)ns > r->lat_max_ns) r->lat_max_ns = (uint64_t)ns;
}

/* ---- connection bookkeeping --------------------------------------------------------- */

static void wsl_release(wsl_loop *L, wsl_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);   /* also leaves the epoll set */
        c->fd = -1;
        L->live--;
    }
    free(c->wq);
    c->wq = NULL;
    free(c->ctl);
    c->ctl = NULL;
    c->state = WSL_DONE;
}

static void wsl_count_failure(wsl_loop *L, int reason)
{
    if (reason <= 0 || reason >= WSL_NFAIL) reason = EIO;
    L->res->failed[reason]++;
}

/* End a connection abnormally, recording why (a closing connection just ends). */
static void wsl_drop(wsl_loop *L, wsl_conn *c, int reason)
{
    static const unsigned char close_1002[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xEA};
    switch (c->state) {
    case WSL_OPEN:
        if (reason == WSL_F_PROTOCOL)   /* best effort, §7.4.1: 1002 protocol error */
            (void)send(c->fd, close_1002, sizeof close_1002, MSG_NOSIGNAL | MSG_DONTWAIT);
        L->open--;
        L->res->dropped++;
        wsl_count_failure(L, reason);
        break;
    case WSL_CONNECTING:
    case WSL_HANDSHAKE:
        L->pending--;
        wsl_count_failure(L, reason);
        break;
    default:
        break;
    }
    L->st.len = 0;   /* whatever was staged was for this connection */
    wsl_release(L, c);
}

static int wsl_update_interest(wsl_loop *L, wsl_conn *c)
{
    struct epoll_event e;
    uint32_t want = c->state == WSL_CONNECTING ? EPOLLOUT : EPOLLIN;
    if (c->wq != NULL || (L->flood && c->state == WSL_OPEN)) want |= EPOLLOUT;
    if (want == c->ev) return 0;
    e.events = want;
    e.data.ptr = c;
    if (epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &e) < 0) {
        wsl_drop(L, c, errno);
        return -1;
    }
    c->ev = (uint8_t)want;
    return 0;
}

/* ---- sending ------------------------------------------------------------------------- */

/* Append one masked client frame (§5.2, §5.3) to the staging buffer. */
static int wsl_put_frame(wsl_loop *L, int opcode, const unsigned char *payload, size_t n)
{
    unsigned char *p;
    size_t h;
    uint32_t key = (uint32_t)(wsl_rand(&L->rng) >> 32);
    if (wsl_reserve(&L->st, 14 + n) < 0) return -1;
    p = L->st.p + L->st.len;
    p[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        p[1] = (unsigned char)(0x80 | n);
        h = 2;
    } else if (n < 65536) {
        p[1] = 0x80 | 126;
        p[2] = (unsigned char)(n >> 8);
        p[3] = (unsigned char)n;
        h = 4;
    } else {
        p[1] = 0x80 | 127;
        for (h = 0; h < 8; h++) p[2 + h] = (unsigned char)((uint64_t)n >> (56 - 8 * h));
        h = 10;
    }
    memcpy(p + h, &key, 4);
    wsl_mask_copy(p + h + 4, payload, n, p + h);
    L->st.len += h + 4 + n;
    return 0;
}

/* Stage `count` messages from connection c, stamped with the time now. */
static int wsl_put_messages(wsl_loop *L, wsl_conn *c, long count)
{
    long i;
    if (count <= 0) return 0;
    wsl_put_hex(L->payload, (uint64_t)wsl_clock(), 16);
    wsl_put_hex(L->payload + 16, (uint64_t)(c - L->conns), 8);
    for (i = 0; i < count; i++) {
        if (wsl_put_frame(L, L->cfg->text ? 1 : 2, L->payload, L->cfg->size) < 0) {
            wsl_drop(L, c, ENOMEM);
            return -1;
        }
    }
    if (L->measuring) L->res->messages_sent += count;
    return 0;
}

/* Send the queued bytes of c; drop EPOLLOUT once they are all gone. */
static int wsl_write_queue(wsl_loop *L, wsl_conn *c)
{
    wsl_queue *q = c->wq;
    ssize_t n;
    while (q->off < q->len) {
        n = send(c->fd, q->data + q->off, q->len - q->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            wsl_drop(L, c, errno == EPIPE ? ECONNRESET : errno);
            return -1;
        }
        q->off += (size_t)n;
    }
    if (q->off == q->len) {
        free(q);
        c->wq = NULL;
    }
    return wsl_update_interest(L, c);
}

/* One send() for everything staged for c; queue what the kernel does not take. */
static int wsl_flush(wsl_loop *L, wsl_conn *c)
{
    ssize_t n;
    if (L->st.len == 0) return wsl_update_interest(L, c);
    if (c->wq != NULL) {   /* keep the order: behind what is already queued */
        if (wsl_queue_add(&c->wq, L->st.p, L->st.len) < 0) {
            wsl_drop(L, c, ENOMEM);
            return -1;
        }
        L->st.len = 0;
        return wsl_write_queue(L, c);
    }
    n = send(c->fd, L->st.p, L->st.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            wsl_drop(L, c, errno == EPIPE ? ECONNRESET : errno);
            return -1;
        }
        n = 0;
    }
    if ((size_t)n < L->st.len && wsl_queue_add(&c->wq, L->st.p + n, L->st.len - (size_t)n) < 0) {
        wsl_drop(L, c, ENOMEM);
        return -1;
    }
    L->st.len = 0;
    return wsl_update_interest(L, c);
}

static size_t wsl_queued(const wsl_conn *c)
{
    return c->wq ? c->wq->len - c->wq->off : 0;
}

/* ---- receiving ----------------------------------------------------------------------- */

/* Read the response head: it must start "HTTP/1.1 101" and ends at CRLF CRLF
 * (RFC 6455 §4.1; Sec-WebSocket-Accept is not checked). Returns the bytes
 * used (the rest are frames), or -1 when the connection was dropped. */
static long wsl_handshake_feed(wsl_loop *L, wsl_conn *c, const unsigned char *p, size_t n)
{
    static const char status[] = "HTTP/1.1 101";
    size_t i;
    unsigned char b;
    for (i = 0; i < n; i++) {
        b = p[i];
        if (c->hs_n < 12) {
            if (b != (unsigned char)status[c->hs_n]) goto bad;
        } else if (c->hs_n == 12 && b != ' ' && b != '\r') {
            goto bad;    /* "HTTP/1.1 1010" */
        }
        if (++c->hs_n > WSL_MAX_HEAD) goto bad;
        if (b == '\r') c->hs_match = c->hs_match == 2 ? 3 : 1;
        else if (b == '\n') c->hs_match = c->hs_match == 1 ? 2 : c->hs_match == 3 ? 4 : 0;
        else c->hs_match = 0;
        if (c->hs_match == 4) {
            c->state = WSL_OPEN;
            c->hs_n = 0;
            c->hs_match = 0;
            L->pending--;
            L->open++;
            if (L->open > L->res->peak_open) L->res->peak_open = L->open;
            L->res->connected++;
            if (L->cfg->mode == WSL_ECHO && wsl_put_messages(L, c, L->cfg->inflight) < 0)
                return -1;
            return (long)(i + 1);
        }
    }
    return (long)n;
bad:
    wsl_drop(L, c, WSL_F_BAD_HANDSHAKE);
    return -1;
}

static inline size_t wsl_header_size(unsigned char b1)
{
    unsigned len = b1 & 0x7F;
    return len == 126 ? 4 : len == 127 ? 10 : 2;
}

/* Validate a complete frame header (RFC 6455 §5.2, §5.4, §5.5). */
static int wsl_header(wsl_loop *L, wsl_conn *c, const unsigned char *h)
{
    unsigned b0 = h[0], op = b0 & 0x0F;
    uint64_t len = h[1] & 0x7F;
    int i;
    if (b0 & 0x70) goto bad;            /* RSV1-3: no extension was negotiated */
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (len == 127) {
        len = 0;
        for (i = 2; i < 10; i++) len = len << 8 | h[i];
        if (len >> 63) goto bad;        /* the most significant bit MUST be 0 */
    }
    if (op & 8) {                       /* control: 8 Close, 9 Ping, 10 Pong */
        if (op > 10 || !(b0 & 0x80) || len > 125) goto bad;
    } else if (op == 0) {               /* continuation of the message in progress */
        if (!c->msg_op) goto bad;
    } else if (op <= 2) {               /* a new text or binary message */
        if (c->msg_op) goto bad;
        c->msg_op = (uint8_t)op;
        c->ts_n = 0;
        c->ts = 0;
    } else {
        goto bad;                       /* reserved opcode */
    }
    c->op = (uint8_t)b0;
    c->left = len;
    c->in_frame = 1;
    return 0;
bad:
    wsl_drop(L, c, WSL_F_PROTOCOL);
    return -1;
}

/* Decode timestamp digits from the start of a message. */
static inline void wsl_ts_feed(wsl_conn *c, const unsigned char *p, size_t n)
{
    size_t i;
    unsigned ch, v;
    for (i = 0; i < n && c->ts_n < 16; i++) {
        ch = p[i];
        if (ch - '0' < 10u) v = ch - '0';
        else if (ch - 'a' < 6u) v = ch - 'a' + 10;
        else {
            c->ts_n = 0xFF;
            return;
        }
        c->ts = c->ts << 4 | v;
        c->ts_n++;
    }
}

/* A Ping, Pong or Close is complete. Returns 1 after a Close (no frames follow
 * it), -1 when the connection was dropped, else 0. */
static int wsl_control(wsl_loop *L, wsl_conn *c, unsigned op, const unsigned char *pl, size_t n)
{
    if (op == 9) {                      /* Ping: a Pong with the same payload (§5.5.2) */
        if (c->state != WSL_OPEN) return 0;
        if (wsl_put_frame(L, 10, pl, n) < 0) {
            wsl_drop(L, c, ENOMEM);
            return -1;
        }
        L->res->pings_answered++;
        return 0;
    }
    if (op == 10) return 0;             /* an unsolicited Pong: ignored (§5.5.3) */
    if (n == 1) {                       /* a Close body starts with a 2-byte code (§5.5.1) */
        wsl_drop(L, c, WSL_F_PROTOCOL);
        return -1;
    }
    if (c->state == WSL_OPEN) {         /* echo the status code, then wait for the FIN */
        L->res->closed_by_server++;
        L->open--;
        c->state = WSL_CLOSING;
        if (wsl_put_frame(L, 8, pl, n >= 2 ? 2 : 0) < 0) {
            wsl_drop(L, c, ENOMEM);
            return -1;
        }
    }
    return 1;
}

static int wsl_frame_done(wsl_loop *L, wsl_conn *c, const unsigned char *ctl, size_t n,
                          int64_t t)
{
    if (c->op & 8) return wsl_control(L, c, c->op & 0x0F, ctl, n);
    if (!(c->op & 0x80)) return 0;      /* more fragments follow (§5.4) */
    c->msg_op = 0;
    if (L->cfg->mode == WSL_ECHO) L->due++;
    if (L->measuring) {
        L->res->messages_received++;
        if (c->ts_n == 16 && L->cfg->mode != WSL_PUBLISH) wsl_record(L->res, t - (int64_t)c->ts);
    }
    return 0;
}

/* Parse server frames from n bytes. Returns 0, 1 after a Close, -1 if dropped. */
static int wsl_feed(wsl_loop *L, wsl_conn *c, const unsigned char *p, size_t n, int64_t t)
{
    const unsigned char *h, *ctl;
    size_t need, take, ctl_n;
    int r;
    while (n > 0) {
        if (!c->in_frame) {
            if (c->hdr_len == 0 && n >= 2 && n >= (need = wsl_header_size(p[1]))) {
                if (p[1] & 0x80) {        /* a server MUST NOT mask (§5.1) */
                    wsl_drop(L, c, WSL_F_PROTOCOL);
                    return -1;
                }
                h = p;
                p += need;
                n -= need;
            } else {                      /* a header cut by the end of a read */
                c->hdr[c->hdr_len++] = *p++;
                n--;
                if (c->hdr_len < 2) continue;
                if (c->hdr[1] & 0x80) {
                    wsl_drop(L, c, WSL_F_PROTOCOL);
                    return -1;
                }
                if (c->hdr_len < wsl_header_size(c->hdr[1])) continue;
                h = c->hdr;
                c->hdr_len = 0;
            }
            if (wsl_header(L, c, h) < 0) return -1;
            if (c->left > 0) continue;
            c->in_frame = 0;              /* an empty payload: the frame is complete */
            r = wsl_frame_done(L, c, NULL, 0, t);
            if (r) return r;
            continue;
        }
        take = c->left < n ? (size_t)c->left : n;
        ctl = NULL;
        ctl_n = 0;
        if (c->op & 8) {
            if (c->ctl == NULL && take == c->left) {   /* all here: use it in place */
                ctl = p;
                ctl_n = take;
            } else {
                if (c->ctl == NULL) {
                    c->ctl = (unsigned char *)malloc(125);
                    if (c->ctl == NULL) {
                        wsl_drop(L, c, ENOMEM);
                        return -1;
                    }
                    c->ctl_len = 0;
                }
                memcpy(c->ctl + c->ctl_len, p, take);
                c->ctl_len += (uint8_t)take;
                ctl = c->ctl;
                ctl_n = c->ctl_len;
            }
        } else if (c->ts_n < 16) {
            wsl_ts_feed(c, p, take);
        }
        p += take;
        n -= take;
        c->left -= take;
        if (c->left == 0) {
            c->in_frame = 0;
            r = wsl_frame_done(L, c, ctl, ctl_n, t);
            if (r >= 0 && c->ctl != NULL) {
                free(c->ctl);
                c->ctl = NULL;
            }
            if (r) return r;
        }
    }
    return 0;
}

static void wsl_on_readable(wsl_loop *L, wsl_conn *c)
{
    ssize_t n = recv(c->fd, L->rbuf, WSL_RBUF, 0);
    const unsigned char *p = L->rbuf;
    size_t len;
    long used;
    int64_t t;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        wsl_drop(L, c, errno == EPIPE ? ECONNRESET : errno);
        return;
    }
    if (n == 0) {                         /* FIN */
        if (c->state == WSL_CLOSING) wsl_release(L, c);
        else wsl_drop(L, c, WSL_F_EOF);
        return;
    }
    t = wsl_clock();
    if (L->measuring) L->res->bytes_received += n;
    if (c->state == WSL_CLOSING) return;  /* after a Close: read until the FIN */
    len = (size_t)n;
    L->due = 0;
    if (c->state == WSL_HANDSHAKE) {
        used = wsl_handshake_feed(L, c, p, len);
        if (used < 0 || c->state != WSL_OPEN) return;
        p += used;
        len -= (size_t)used;
    }
    if (len > 0 && wsl_feed(L, c, p, len, t) < 0) return;
    if (L->due > 0 && c->state == WSL_OPEN && wsl_put_messages(L, c, L->due) < 0) return;
    wsl_flush(L, c);
}

/* ---- connecting ------------------------------------------------------------------------ */

static void wsl_connected(wsl_loop *L, wsl_conn *c)
{
    unsigned char nonce[16];
    uint64_t a = wsl_rand(&L->rng), b = wsl_rand(&L->rng);
    memcpy(nonce, &a, 8);
    memcpy(nonce + 8, &b, 8);
    char digits[24];
    int nd = 0;
    c->state = WSL_HANDSHAKE;
    if (L->cfg->path_cycle > 0) {   /* this connection's path: path + its number (in the cycle) */
        nd = snprintf(digits, sizeof digits, "%ld",
                      (L->cfg->path_offset + (long)(c - L->conns)) % L->cfg->path_cycle);
        if (nd < 0) nd = 0;
    }
    if (wsl_reserve(&L->st, L->request_len + (size_t)nd) < 0) {
        wsl_drop(L, c, ENOMEM);
        return;
    }
    memcpy(L->st.p, L->request, L->path_end);
    memcpy(L->st.p + L->path_end, digits, (size_t)nd);
    memcpy(L->st.p + L->path_end + nd, L->request + L->path_end, L->request_len - L->path_end);
    wsl_base64_16(nonce, (char *)L->st.p + L->key_off + nd);
    if (L->room_off)  /* inside the path, before path_end: the insertion does not move it */
        wsl_put_hex(L->st.p + L->room_off, (uint64_t)((c - L->conns) / L->cfg->room_size), 8);
    L->st.len = L->request_len + (size_t)nd;
    wsl_flush(L, c);
}

static int wsl_fatal_errno(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Start connection attempt number L->nconns. */
static void wsl_connect_one(wsl_loop *L)
{
    const wsl_config *cfg = L->cfg;
    wsl_conn *c = &L->conns[L->nconns];
    struct sockaddr_in sa;
    struct epoll_event e;
    int fd, one = 1, err;

    c->fd = -1;
    c->t0 = L->now;
    c->state = WSL_DONE;
    L->res->attempted++;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        goto failed;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    if (cfg->nsources > 0) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sa.sin_addr.s_addr = cfg->sources[L->nconns % cfg->nsources];
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            err = errno;
            goto failed;
        }
    }
    sa.sin_addr.s_addr = cfg->host;
    sa.sin_port = htons(cfg->port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        err = errno;
        goto failed;
    }
    e.events = EPOLLOUT;   /* writable = connected (or failed: SO_ERROR says) */
    e.data.ptr = c;
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
        err = errno;
        goto failed;
    }
    L->nconns++;
    c->fd = fd;
    c->ev = EPOLLOUT;
    c->state = WSL_CONNECTING;
    L->pending++;
    L->live++;
    L->addr_fail_streak = 0;
    return;
failed:
    L->nconns++;
    if (fd >= 0) close(fd);
    wsl_count_failure(L, err);
    if (wsl_fatal_errno(err)) L->ramp_stopped = 1;   /* out of fds or memory: stop */
    if (err == EADDRNOTAVAIL
            && ++L->addr_fail_streak >= 4 * (cfg->nsources > 0 ? cfg->nsources : 1))
        L->ramp_stopped = 1;                         /* every source is out of ports */
}

static void wsl_ramp(wsl_loop *L)
{
    const wsl_config *cfg = L->cfg;
    long target = cfg->connections, budget = WSL_RAMP_BATCH;
    double due;
    if (cfg->ramp_rate > 0) {
        due = (double)(L->now - L->t_start) / 1e9 * cfg->ramp_rate + 1;
        if (due < (double)target) target = (long)due;
    }
    /* connect() is cheap (~20 us) until the kernel has to search for a free port
     * (past half the ephemeral range per source address: ~40x that); a turn of
     * 1024 slow ones would leave the loop deaf for a second, its connections'
     * handshakes and Pings unanswered. So the batch also ends after a time slice. */
    while (L->nconns < target && budget-- > 0 && !L->ramp_stopped) {
        wsl_connect_one(L);
        if ((budget & 15) == 0 && wsl_clock() - L->now > WSL_RAMP_SLICE_NS) break;
    }
}

/* Connections are started in time order, so the oldest pending one is found
 * by walking a cursor forward: O(1) per connection over the whole ramp. */
static void wsl_check_handshakes(wsl_loop *L)
{
    int64_t limit = wsl_ns(L->cfg->handshake_timeout);
    wsl_conn *c;
    while (L->hs_scan < L->nconns) {
        c = &L->conns[L->hs_scan];
        if (c->state == WSL_CONNECTING || c->state == WSL_HANDSHAKE) {
            if (L->now - c->t0 < limit) break;
            wsl_drop(L, c, WSL_F_HANDSHAKE_TIMEOUT);
        }
        L->hs_scan++;
    }
}

/* ---- publishing ------------------------------------------------------------------------ */

/* Paced publishing: a token bucket of `rate` messages per second, shared
 * round-robin by the open connections (one cork per connection per turn). */
static void wsl_publish_tick(wsl_loop *L)
{
    long k, m, base, extra, seen, i, count;
    wsl_conn *c;
    L->credit += (double)(L->now - L->pub_last) / 1e9 * L->cfg->rate;
    L->pub_last = L->now;
    if (L->credit > L->credit_cap) L->credit = L->credit_cap;
    k = (long)L->credit;
    m = L->open;
    if (k <= 0 || m <= 0) return;
    L->credit -= (double)k;
    base = k / m;
    extra = k % m;
    for (seen = 0; seen < L->nconns; seen++) {
        if (base == 0 && extra == 0) break;
        i = L->pub_cursor;
        L->pub_cursor = (i + 1) % L->nconns;
        c = &L->conns[i];
        if (c->state != WSL_OPEN) continue;
        count = base;
        if (extra > 0) {
            count++;
            extra--;
        }
        if (wsl_queued(c) > WSL_MAX_QUEUE) continue;   /* it cannot keep up: skip it */
        if (wsl_put_messages(L, c, count) == 0) wsl_flush(L, c);
    }
}

/* Unpaced publishing (rate 0): a batch whenever the socket is writable and
 * nothing is queued. */
static void wsl_flood(wsl_loop *L, wsl_conn *c)
{
    long batch = (long)(65536 / L->frame_len);
    if (c->wq != NULL) return;
    if (batch < 1) batch = 1;
    if (batch > 256) batch = 256;
    if (wsl_put_messages(L, c, batch) == 0) wsl_flush(L, c);
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void wsl_on_event(wsl_loop *L, wsl_conn *c, uint32_t ev)
{
    int err = 0;
    socklen_t len = sizeof err;
    switch (c->state) {
    case WSL_CONNECTING:
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err) wsl_drop(L, c, err);
        else wsl_connected(L, c);
        return;
    case WSL_HANDSHAKE:
    case WSL_OPEN:
    case WSL_CLOSING:
        break;
    default:
        return;   /* ended earlier in this turn */
    }
    if (ev & EPOLLOUT) {
        if (c->wq != NULL && wsl_write_queue(L, c) < 0) return;
        if (L->flood && c->state == WSL_OPEN) {
            wsl_flood(L, c);
            if (c->state == WSL_DONE) return;
        }
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) wsl_on_readable(L, c);
}

static double wsl_tv(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Leave the measured window: send every open connection a Close (1000). */
static void wsl_begin_close(wsl_loop *L)
{
    static const unsigned char code_1000[] = {0x03, 0xE8};
    struct rusage ru;
    wsl_conn *c;
    long i;
    if (L->measured) {
        L->res->elapsed = (double)(L->now - L->measure_t0) / 1e9;
        if (L->measuring && getrusage(RUSAGE_THREAD, &ru) == 0)
            L->res->cpu_measured = wsl_tv(ru.ru_utime) + wsl_tv(ru.ru_stime)
                                   - wsl_tv(L->ru_window.ru_utime) - wsl_tv(L->ru_window.ru_stime);
    }
    if (L->phase == WSL_PH_RAMP) L->res->connect_seconds = (double)(L->now - L->t_start) / 1e9;
    L->res->survivors = L->open;
    L->measuring = 0;
    L->flood = 0;
    L->phase = WSL_PH_CLOSE;
    L->close_deadline = L->now + wsl_ns(L->cfg->close_timeout);
    for (i = 0; i < L->nconns; i++) {
        c = &L->conns[i];
        if (c->state == WSL_CONNECTING || c->state == WSL_HANDSHAKE) {
            L->pending--;            /* the run is over: not a failure */
            wsl_release(L, c);
        } else if (c->state == WSL_OPEN) {
            if (wsl_put_frame(L, 8, code_1000, 2) < 0) {
                wsl_drop(L, c, ENOMEM);
                continue;
            }
            L->open--;
            c->state = WSL_CLOSING;
            wsl_flush(L, c);
        } else if (c->state == WSL_CLOSING) {
            wsl_update_interest(L, c);
        }
    }
}

/* Phase changes that depend only on the clock and the counters. */
static void wsl_advance(wsl_loop *L)
{
    const wsl_config *cfg = L->cfg;
    long i;
    if (L->phase == WSL_PH_RAMP) {
        if (L->stop) {
            wsl_begin_close(L);
        } else if ((L->nconns >= cfg->connections || L->ramp_stopped) && L->pending == 0) {
            L->res->connect_seconds = (double)(L->now - L->t_start) / 1e9;
            L->phase = WSL_PH_RUN;
            L->window_start = L->now + wsl_ns(cfg->warmup);
            L->window_end = L->window_start + wsl_ns(cfg->duration);
            L->pub_last = L->now;
            L->credit = 1.0;
            if (cfg->mode == WSL_PUBLISH && cfg->rate <= 0) {
                L->flood = 1;
                for (i = 0; i < L->nconns; i++)
                    if (L->conns[i].state == WSL_OPEN) wsl_update_interest(L, &L->conns[i]);
            }
        }
    }
    if (L->phase == WSL_PH_RUN) {
        if (!L->measured && L->now >= L->window_start) {
            L->measured = L->measuring = 1;
            L->measure_t0 = L->now;
            getrusage(RUSAGE_THREAD, &L->ru_window);
        }
        if (L->stop || L->now >= L->window_end || (L->open == 0 && L->pending == 0))
            wsl_begin_close(L);
    }
    if (L->phase == WSL_PH_CLOSE && (L->live == 0 || L->now >= L->close_deadline)) {
        for (i = 0; i < L->nconns; i++)
            if (L->conns[i].fd >= 0) wsl_release(L, &L->conns[i]);
        L->phase = WSL_PH_DONE;
    }
}

/* Milliseconds epoll_wait may sleep: until the next thing the clock starts. */
static int wsl_timeout(wsl_loop *L)
{
    const wsl_config *cfg = L->cfg;
    int64_t next = L->now + 1000000000LL, t;
    if (L->phase == WSL_PH_RAMP) {
        if (!L->ramp_stopped && L->nconns < cfg->connections) {
            t = cfg->ramp_rate > 0 ? L->t_start + (int64_t)((double)L->nconns / cfg->ramp_rate * 1e9)
                                   : L->now;
            if (t < next) next = t;
        }
        if (L->pending > 0 && L->now + 10000000LL < next) next = L->now + 10000000LL;
    } else if (L->phase == WSL_PH_RUN) {
        t = L->measured ? L->window_end : L->window_start;
        if (t < next) next = t;
        if (cfg->mode == WSL_PUBLISH && cfg->rate > 0 && L->open > 0) {
            t = L->now + (int64_t)((1.0 - L->credit) / cfg->rate * 1e9);
            if (t < next) next = t;
        }
    } else if (L->close_deadline < next) {
        next = L->close_deadline;
    }
    if (next <= L->now) return 0;
    return (int)((next - L->now + 999999) / 1000000);   /* round up: never spin early */
}

static void wsl_free(wsl_loop *L)
{
    long i;
    if (L->conns != NULL)
        for (i = 0; i < L->nconns; i++)
            if (L->conns[i].fd >= 0 || L->conns[i].wq || L->conns[i].ctl)
                wsl_release(L, &L->conns[i]);
    if (L->ep >= 0) close(L->ep);
    free(L->conns);
    free(L->rbuf);
    free(L->payload);
    free(L->request);
    free(L->st.p);
}

static int wsl_setup(wsl_loop *L, const wsl_config *cfg, wsl_result *res)
{
    char host[64];
    const unsigned char *a = (const unsigned char *)&cfg->host;
    size_t path_len = strlen(cfg->path), cap, i;
    struct epoll_event e;
    int n;

    memset(L, 0, sizeof *L);
    L->cfg = cfg;
    L->res = res;
    L->ep = -1;
    L->now = L->t_start = wsl_clock();
    L->rng = (uint64_t)L->now ^ ((uint64_t)(uintptr_t)L << 16) ^ 0x9E3779B97F4A7C15ULL;
    if (L->rng == 0) L->rng = 1;
    L->credit_cap = 1.0 + cfg->rate * 0.05;   /* after a stall: at most 50 ms of burst */
    L->frame_len = cfg->size + 14;

    L->ep = epoll_create1(EPOLL_CLOEXEC);
    if (L->ep < 0) return errno;
    L->conns = (wsl_conn *)calloc(cfg->connections > 0 ? (size_t)cfg->connections : 1,
                                  sizeof(wsl_conn));
    L->rbuf = (unsigned char *)malloc(WSL_RBUF);
    L->payload = (unsigned char *)malloc(cfg->size > 24 ? cfg->size : 24);
    cap = path_len + 256;
    L->request = (char *)malloc(cap);
    if (!L->conns || !L->rbuf || !L->payload || !L->request || wsl_reserve(&L->st, 1) < 0)
        return ENOMEM;
    for (i = 0; i < cfg->size; i++) L->payload[i] = '.';

    /* The request (§4.1); the 24 key characters are filled in per connection. */
    n = snprintf(host, sizeof host, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], cfg->port);
    if (n < 0) return EINVAL;
    n = snprintf(L->request, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: ", cfg->path, host);
    if (n < 0 || (size_t)n >= cap) return EINVAL;
    L->path_end = 4 + path_len;   /* "GET " + path */
    L->key_off = (size_t)n;
    if (cfg->room_size > 0 && cfg->room_off + 8 <= path_len)
        L->room_off = 4 + cfg->room_off;   /* after "GET " */
    n = snprintf(L->request + L->key_off, cap - L->key_off,
                 "########################\r\nSec-WebSocket-Version: 13\r\n\r\n");
    if (n < 0 || L->key_off + (size_t)n >= cap) return EINVAL;
    L->request_len = L->key_off + (size_t)n;

    if (cfg->stop_fd >= 0) {
        e.events = EPOLLIN;
        e.data.ptr = NULL;   /* the one registration that is not a connection */
        if (epoll_ctl(L->ep, EPOLL_CTL_ADD, cfg->stop_fd, &e) < 0) return errno;
    }
    return 0;
}

/* Publish live counters (plain stores; a reader may see a turn-old value). */
static void wsl_report(const wsl_loop *L)
{
    volatile int64_t *p = L->cfg->progress;
    uint64_t failed = 0;
    int i;

    for (i = 0; i < WSL_NFAIL; i++) failed += L->res->failed[i];
    p[WSL_P_ATTEMPTED] = L->nconns;
    p[WSL_P_OPEN] = L->open;
    p[WSL_P_FAILED] = (int64_t)failed;
    p[WSL_P_RECEIVED] = L->res->messages_received;
    p[WSL_P_SENT] = L->res->messages_sent;
}

/* Run the load; returns 0, or an errno when the loop could not be set up. */
static int wsl_run(const wsl_config *cfg, wsl_result *res)
{
    wsl_loop L;
    struct epoll_event evs[WSL_MAX_EVENTS];
    struct rusage ru0, ru1;
    int err, n, i;

    memset(res, 0, sizeof *res);
    getrusage(RUSAGE_SELF, &ru0);
    err = wsl_setup(&L, cfg, res);
    if (err) {
        wsl_free(&L);
        return err;
    }
    for (;;) {
        L.now = wsl_clock();
        if (L.phase == WSL_PH_RAMP) {
            wsl_ramp(&L);
            wsl_check_handshakes(&L);
        }
        wsl_advance(&L);
        if (L.phase == WSL_PH_DONE) break;
        if (L.phase == WSL_PH_RUN && cfg->mode == WSL_PUBLISH && cfg->rate > 0)
            wsl_publish_tick(&L);
        n = epoll_wait(L.ep, evs, WSL_MAX_EVENTS, wsl_timeout(&L));
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        L.now = wsl_clock();
        wsl_advance(&L);   /* events that came after the window do not count */
        if (L.phase == WSL_PH_DONE) break;
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {   /* stop_fd: stop, and stop watching it */
                L.stop = 1;
                epoll_ctl(L.ep, EPOLL_CTL_DEL, cfg->stop_fd, NULL);
            } else wsl_on_event(&L, (wsl_conn *)evs[i].data.ptr, evs[i].events);
        }
        /* After the events, not before: the counters then include what this turn
         * received, before epoll_wait sleeps (up to 1 s). Reported before, the last
         * deliveries of a run showed up a sleep late, and a watcher timing "the last
         * delivery" (bench broadcast) stretched its window by that much. */
        if (cfg->progress) wsl_report(&L);
    }
    if (cfg->progress) wsl_report(&L);
    wsl_free(&L);
    getrusage(RUSAGE_SELF, &ru1);
    res->cpu_user = wsl_tv(ru1.ru_utime) - wsl_tv(ru0.ru_utime);
    res->cpu_system = wsl_tv(ru1.ru_stime) - wsl_tv(ru0.ru_stime);
    return err;
}

#endif /* WSFRAME_WSLOAD_H */
