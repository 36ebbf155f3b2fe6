/* The two hot loops of the codec, hand-written in C (RFC 6455 §5.3, §8.1).
 *
 * wsf_mask        XOR a buffer with the 4-byte masking key, 32 bytes per
 *                 step (the compiler turns the step into SIMD; on x86-64 an
 *                 AVX2 clone is picked at load time where the CPU has it).
 * wsf_utf8_feed   an incremental, fail-fast UTF-8 validator: a small state
 *                 machine over the well-formed byte sequences of Unicode's
 *                 Table 3-7, with an 8-bytes-at-a-time ASCII skip.
 *
 * Both are checked byte for byte against the pure-Python reference
 * (wsframe/masking.py, wsframe/utf8.py) by the test suite.
 */
#ifndef WSFRAME_KERNELS_H
#define WSFRAME_KERNELS_H

#include <stdint.h>
#include <string.h>
#include <Python.h>

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define WSF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define WSF_CLONES
#endif

/* dst[i] = src[i] ^ key[i % 4]; dst may equal src (in-place unmasking). */
WSF_CLONES
static void wsf_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
                     const unsigned char *key)
{
    uint32_t k32;
    uint64_t k64, w0, w1, w2, w3;
    Py_ssize_t i = 0;

    memcpy(&k32, key, 4);
    k64 = ((uint64_t)k32 << 32) | k32;  /* key bytes in memory order, twice */
    for (; i + 32 <= n; i += 32) {
        memcpy(&w0, src + i, 8);
        memcpy(&w1, src + i + 8, 8);
        memcpy(&w2, src + i + 16, 8);
        memcpy(&w3, src + i + 24, 8);
        w0 ^= k64; w1 ^= k64; w2 ^= k64; w3 ^= k64;
        memcpy(dst + i, &w0, 8);
        memcpy(dst + i + 8, &w1, 8);
        memcpy(dst + i + 16, &w2, 8);
        memcpy(dst + i + 24, &w3, 8);
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(&w0, src + i, 8);
        w0 ^= k64;
        memcpy(dst + i, &w0, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

/* UTF-8 states: what the next byte must be. */
enum {
    U8_ACCEPT = 0,   /* between characters */
    U8_TAIL1,        /* one more 80..BF */
    U8_TAIL2,        /* two more 80..BF */
    U8_TAIL3,        /* three more 80..BF */
    U8_E0,           /* after E0: A0..BF (no overlong 3-byte forms) */
    U8_ED,           /* after ED: 80..9F (no surrogates D800-DFFF) */
    U8_F0,           /* after F0: 90..BF (no overlong 4-byte forms) */
    U8_F4            /* after F4: 80..8F (nothing past U+10FFFF) */
};

#define WSF_HIGH_BITS 0x8080808080808080ULL

/* One byte through the state machine: the new state, or -1 if the byte
 * cannot continue the sequence. */
static inline int wsf_utf8_step(int s, unsigned char ch)
{
    switch (s) {
    case U8_ACCEPT:
        if (ch < 0x80) return U8_ACCEPT;
        if (ch < 0xC2) return -1;            /* stray continuation, or overlong C0/C1 */
        if (ch < 0xE0) return U8_TAIL1;
        if (ch == 0xE0) return U8_E0;
        if (ch == 0xED) return U8_ED;
        if (ch < 0xF0) return U8_TAIL2;
        if (ch == 0xF0) return U8_F0;
        if (ch < 0xF4) return U8_TAIL3;
        if (ch == 0xF4) return U8_F4;
        return -1;                           /* F5..FF never appear */
    case U8_TAIL1: return (ch & 0xC0) == 0x80 ? U8_ACCEPT : -1;
    case U8_TAIL2: return (ch & 0xC0) == 0x80 ? U8_TAIL1 : -1;
    case U8_TAIL3: return (ch & 0xC0) == 0x80 ? U8_TAIL2 : -1;
    case U8_E0: return (ch >= 0xA0 && ch <= 0xBF) ? U8_TAIL1 : -1;
    case U8_ED: return (ch >= 0x80 && ch <= 0x9F) ? U8_TAIL1 : -1;
    case U8_F0: return (ch >= 0x90 && ch <= 0xBF) ? U8_TAIL2 : -1;
    case U8_F4: return (ch >= 0x80 && ch <= 0x8F) ? U8_TAIL2 : -1;
    }
    return -1;
}

#define WSF_IS_CONT(b) (((b) & 0xC0) == 0x80)

/* Validate n more bytes of a stream in state *state. Returns -1 while the
 * stream can still be valid UTF-8, else the index of the byte that made it
 * invalid (and resets *state).
 *
 * The fast loop checks one whole character per step when all its bytes are
 * present (and skips ASCII 8 bytes at a time); a character cut by the end of
 * a piece, or begun in an earlier one, goes byte by byte through
 * wsf_utf8_step, so an error is still caught at the exact byte. */
static Py_ssize_t wsf_utf8_feed(int *state, const unsigned char *p, Py_ssize_t n)
{
    int s = *state;
    Py_ssize_t i = 0;
    uint64_t w;
    unsigned char c, c1, lo, hi;

    while (s != U8_ACCEPT && i < n) {       /* finish a character from the last piece */
        s = wsf_utf8_step(s, p[i]);
        if (s < 0) goto bad;
        i++;
    }
    while (i < n) {
        c = p[i];
        if (c < 0x80) {
            i++;
            /* ASCII needs no state: skip it 8, then 32 bytes at a time (the
             * first 8-byte test fails fast inside non-Latin text). */
            if (i + 8 > n) continue;
            memcpy(&w, p + i, 8);
            if (w & WSF_HIGH_BITS) continue;
            i += 8;
            while (i + 32 <= n) {
                uint64_t a, b, d;
                memcpy(&w, p + i, 8); memcpy(&a, p + i + 8, 8);
                memcpy(&b, p + i + 16, 8); memcpy(&d, p + i + 24, 8);
                if ((w | a | b | d) & WSF_HIGH_BITS) break;
                i += 32;
            }
            while (i + 8 <= n) {
                memcpy(&w, p + i, 8);
                if (w & WSF_HIGH_BITS) break;
                i += 8;
            }
            continue;
        }
        if (c < 0xE0) {                       /* 2 bytes: C2..DF 80..BF */
            if (c < 0xC2) goto bad;
            if (i + 2 > n) break;
            if (!WSF_IS_CONT(p[i + 1])) { i += 1; goto bad; }
            i += 2;
        } else if (c < 0xF0) {                /* 3 bytes */
            if (i + 3 > n) break;
            c1 = p[i + 1];
            lo = c == 0xE0 ? 0xA0 : 0x80;     /* no overlong forms */
            hi = c == 0xED ? 0x9F : 0xBF;     /* no surrogates */
            if (c1 < lo || c1 > hi) { i += 1; goto bad; }
            if (!WSF_IS_CONT(p[i + 2])) { i += 2; goto bad; }
            i += 3;
        } else {                              /* 4 bytes */
            if (c > 0xF4) goto bad;
            if (i + 4 > n) break;
            c1 = p[i + 1];
            lo = c == 0xF0 ? 0x90 : 0x80;     /* no overlong forms */
            hi = c == 0xF4 ? 0x8F : 0xBF;     /* nothing past U+10FFFF */
            if (c1 < lo || c1 > hi) { i += 1; goto bad; }
            if (!WSF_IS_CONT(p[i + 2])) { i += 2; goto bad; }
            if (!WSF_IS_CONT(p[i + 3])) { i += 3; goto bad; }
            i += 4;
        }
    }
    while (i < n) {                           /* a character cut by the end of the piece */
        s = wsf_utf8_step(s, p[i]);
        if (s < 0) goto bad;
        i++;
    }
    *state = s;
    return -1;
bad:
    *state = U8_ACCEPT;
    return i;
}

#endif /* WSFRAME_KERNELS_H */
