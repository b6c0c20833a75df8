/* proxy.c - SOCKS4/4a, SOCKS5 (RFC 1928, 1929) and HTTP CONNECT (RFC 9110)
 * handshakes in front of a tunnelled stream. */
#include "dissect/proxy.h"

#include <stdio.h>
#include <string.h>

#include "common/ascii.h"
#include "common/str.h"

enum {
    ST_DETECT = 0,
    ST_S5_HELLO,
    ST_S5_METHOD,
    ST_S5_AUTH_REQ,
    ST_S5_AUTH_REP,
    ST_S5_REQ,
    ST_S5_REP,
    ST_S4_REQ,
    ST_S4_REP,
    ST_H_REQ,
    ST_H_REP,
    ST_DONE,
    ST_FAILED,
    ST_NOT,
};

#define SOCKS5_VERSION 5
#define SOCKS4_VERSION 4
#define SOCKS_CMD_CONNECT 1
#define SOCKS5_AUTH_NONE 0
#define SOCKS5_AUTH_USERPASS 2
#define SOCKS5_ATYP_IPV4 1
#define SOCKS5_ATYP_NAME 3
#define SOCKS5_ATYP_IPV6 4
#define SOCKS4_GRANTED 0x5a

static const char http_connect[] = "CONNECT ";

void proxy_init(struct proxy *p, size_t max)
{
    memset(p, 0, sizeof(*p));
    p->max = max;
    /* proxy_feed keeps the handshake within max; past it, a buffer holds
     * the rest of the feed that completed the handshake. */
    sc_buf_init(&p->in[0], 0);
    sc_buf_init(&p->in[1], 0);
}

void proxy_free(struct proxy *p)
{
    sc_buf_free(&p->in[0]);
    sc_buf_free(&p->in[1]);
}

const char *proxy_kind_name(enum proxy_kind k)
{
    switch (k) {
    case PROXY_SOCKS4:
        return "socks4";
    case PROXY_SOCKS5:
        return "socks5";
    case PROXY_HTTP_CONNECT:
        return "http-connect";
    default:
        return "none";
    }
}

static size_t avail(const struct proxy *p, int d)
{
    return p->in[d].len - p->used[d];
}

static const uint8_t *at(const struct proxy *p, int d)
{
    return p->in[d].data ? p->in[d].data + p->used[d] : NULL;
}

static int fail(struct proxy *p, const char *why)
{
    sc_strlcpy(p->failure, sizeof(p->failure), why);
    return ST_FAILED;
}

/* Formats a SOCKS address of type atyp at a (length already checked). */
static void socks_target(struct proxy *p, uint8_t atyp, const uint8_t *a, uint16_t port)
{
    char host[260];
    if (atyp == SOCKS5_ATYP_IPV4) {
        snprintf(host, sizeof(host), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    } else if (atyp == SOCKS5_ATYP_IPV6) {
        size_t k = 0;
        host[k++] = '[';
        for (int i = 0; i < 16; i += 2)
            k += (size_t)snprintf(host + k, sizeof(host) - k, "%s%x", i ? ":" : "",
                                  (unsigned)(a[i] << 8 | a[i + 1]));
        snprintf(host + k, sizeof(host) - k, "]");
    } else {
        size_t n = a[0], k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof(host); i++)
            host[k++] = sc_is_print(a[1 + i]) ? (char)a[1 + i] : '?';
        host[k] = 0;
    }
    snprintf(p->target, sizeof(p->target), "%s:%u", host, port);
}

/* Length of a SOCKS5 address of type atyp starting at a (n bytes there), or
 * 0 if more bytes are needed, or SIZE_MAX if the type is invalid. */
static size_t socks5_addr_len(uint8_t atyp, const uint8_t *a, size_t n)
{
    switch (atyp) {
    case SOCKS5_ATYP_IPV4:
        return 4;
    case SOCKS5_ATYP_IPV6:
        return 16;
    case SOCKS5_ATYP_NAME:
        return n >= 1 ? 1 + (size_t)a[0] : 0;
    default:
        return SIZE_MAX;
    }
}

/* Offset just past the "\r\n\r\n" (or "\n\n") ending an HTTP head, or 0. */
static size_t http_head_end(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (b[i] != '\n')
            continue;
        if (b[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Runs the handshake as far as the buffered bytes allow. */
static void step(struct proxy *p)
{
    for (;;) {
        const uint8_t *c = at(p, SC_DIR_C2S), *s = at(p, SC_DIR_S2C);
        size_t cn = avail(p, SC_DIR_C2S), sn = avail(p, SC_DIR_S2C);
        switch (p->step) {
        case ST_DETECT:
            if (sn > 0) {
                p->step = ST_NOT; /* the server spoke first: no proxy client */
                return;
            }
            if (cn == 0)
                return;
            if (c[0] == SOCKS5_VERSION) {
                p->kind = PROXY_SOCKS5;
                p->step = ST_S5_HELLO;
            } else if (c[0] == SOCKS4_VERSION) {
                p->kind = PROXY_SOCKS4;
                p->step = ST_S4_REQ;
            } else {
                size_t k = cn < sizeof(http_connect) - 1 ? cn : sizeof(http_connect) - 1;
                if (memcmp(c, http_connect, k) != 0) {
                    p->step = ST_NOT;
                    return;
                }
                if (k < sizeof(http_connect) - 1)
                    return;
                p->kind = PROXY_HTTP_CONNECT;
                p->step = ST_H_REQ;
            }
            continue;
        case ST_S5_HELLO:
            if (cn < 2 || cn < 2 + (size_t)c[1])
                return;
            if (c[1] == 0) {
                p->step = ST_NOT;
                return;
            }
            p->used[SC_DIR_C2S] += 2 + (size_t)c[1];
            p->step = ST_S5_METHOD;
            continue;
        case ST_S5_METHOD:
            if (sn < 2)
                return;
            p->used[SC_DIR_S2C] += 2;
            if (s[0] != SOCKS5_VERSION)
                p->step = fail(p, "the proxy did not answer in SOCKS5");
            else if (s[1] == SOCKS5_AUTH_NONE)
                p->step = ST_S5_REQ;
            else if (s[1] == SOCKS5_AUTH_USERPASS)
                p->step = ST_S5_AUTH_REQ;
            else
                p->step = fail(p, "the proxy accepted none of the client's methods");
            continue;
        case ST_S5_AUTH_REQ: {
            /* VER ULEN UNAME PLEN PASSWD: skipped, never kept. */
            if (cn < 2 || cn < 3 + (size_t)c[1])
                return;
            size_t plen = c[2 + (size_t)c[1]];
            if (cn < 3 + (size_t)c[1] + plen)
                return;
            p->used[SC_DIR_C2S] += 3 + (size_t)c[1] + plen;
            p->step = ST_S5_AUTH_REP;
            continue;
        }
        case ST_S5_AUTH_REP:
            if (sn < 2)
                return;
            p->used[SC_DIR_S2C] += 2;
            p->step = s[1] == 0 ? ST_S5_REQ : fail(p, "the proxy refused the user name/password");
            continue;
        case ST_S5_REQ: {
            if (cn < 5)
                return;
            if (c[0] != SOCKS5_VERSION || c[1] != SOCKS_CMD_CONNECT) {
                p->step = fail(p, "the client asked for something other than CONNECT");
                continue;
            }
            size_t al = socks5_addr_len(c[3], c + 4, cn - 4);
            if (al == SIZE_MAX) {
                p->step = fail(p, "invalid SOCKS5 address type");
                continue;
            }
            if (al == 0 || cn < 4 + al + 2)
                return;
            socks_target(p, c[3], c + 4, (uint16_t)(c[4 + al] << 8 | c[5 + al]));
            p->used[SC_DIR_C2S] += 4 + al + 2;
            p->step = ST_S5_REP;
            continue;
        }
        case ST_S5_REP: {
            if (sn < 5)
                return;
            size_t al = socks5_addr_len(s[3], s + 4, sn - 4);
            if (s[0] != SOCKS5_VERSION || al == SIZE_MAX) {
                p->step = fail(p, "malformed SOCKS5 reply");
                continue;
            }
            if (al == 0 || sn < 4 + al + 2)
                return;
            p->used[SC_DIR_S2C] += 4 + al + 2;
            if (s[1] != 0) {
                char why[64];
                snprintf(why, sizeof(why), "the proxy refused the connection (SOCKS5 reply %u)",
                         s[1]);
                p->step = fail(p, why);
            } else {
                p->step = ST_DONE;
            }
            continue;
        }
        case ST_S4_REQ: {
            if (cn < 9)
                return;
            if (c[1] != SOCKS_CMD_CONNECT) {
                p->step = fail(p, "the client asked for something other than CONNECT");
                continue;
            }
            const uint8_t *nul = memchr(c + 8, 0, cn - 8);
            if (!nul)
                return;
            size_t end = (size_t)(nul - c) + 1;
            uint16_t port = (uint16_t)(c[2] << 8 | c[3]);
            if (c[4] == 0 && c[5] == 0 && c[6] == 0 && c[7] != 0) {
                /* SOCKS4a: the host name follows the user id. */
                const uint8_t *nul2 = memchr(c + end, 0, cn - end);
                if (!nul2)
                    return;
                size_t hl = (size_t)(nul2 - (c + end));
                uint8_t name[256];
                name[0] = (uint8_t)(hl > 255 ? 255 : hl);
                memcpy(name + 1, c + end, name[0]);
                socks_target(p, SOCKS5_ATYP_NAME, name, port);
                end += hl + 1;
            } else {
                socks_target(p, SOCKS5_ATYP_IPV4, c + 4, port);
            }
            p->used[SC_DIR_C2S] += end;
            p->step = ST_S4_REP;
            continue;
        }
        case ST_S4_REP:
            if (sn < 8)
                return;
            p->used[SC_DIR_S2C] += 8;
            p->step = s[1] == SOCKS4_GRANTED ? ST_DONE
                                             : fail(p, "the proxy refused the connection (SOCKS4)");
            continue;
        case ST_H_REQ: {
            size_t end = http_head_end(c, cn);
            if (end == 0)
                return;
            /* "CONNECT host:port HTTP/1.1": keep the authority only. */
            size_t i = sizeof(http_connect) - 1, k = 0;
            while (i < end && c[i] != ' ' && c[i] != '\r' && c[i] != '\n' &&
                   k + 1 < sizeof(p->target)) {
                p->target[k++] = sc_is_print(c[i]) ? (char)c[i] : '?';
                i++;
            }
            p->target[k] = 0;
            p->used[SC_DIR_C2S] += end;
            p->step = ST_H_REP;
            continue;
        }
        case ST_H_REP: {
            size_t end = http_head_end(s, sn);
            if (end == 0)
                return;
            p->used[SC_DIR_S2C] += end;
            /* "HTTP/1.x 2xx ..." */
            bool ok = sn >= 12 && memcmp(s, "HTTP/", 5) == 0 && s[8] == ' ' && s[9] == '2' &&
                      sc_is_digit(s[10]) && sc_is_digit(s[11]);
            p->step = ok ? ST_DONE : fail(p, "the proxy answered CONNECT with an error");
            continue;
        }
        default:
            return;
        }
    }
}

enum proxy_result proxy_feed(struct proxy *p, enum sc_dir dir, const uint8_t *b, size_t n)
{
    if (dir > SC_DIR_S2C)
        return PROXY_NOT;
    if (p->step < ST_DONE && n > 0) {
        /* What fits is read first, so that a handshake that ends within
         * max bytes is read whatever the segments: the same as one byte at
         * a time.  What follows the handshake in this feed is the tunnel's,
         * kept for proxy_leftover. */
        size_t room = p->in[dir].len < p->max ? p->max - p->in[dir].len : 0;
        size_t take = n < room ? n : room;
        sc_buf_append(&p->in[dir], b, take);
        step(p);
        if (take < n) {
            if (p->step == ST_DONE)
                sc_buf_append(&p->in[dir], b + take, n - take);
            else if (p->step < ST_DONE)
                p->step = p->step == ST_DETECT ? ST_NOT : fail(p, "proxy handshake too long");
        }
    }
    switch (p->step) {
    case ST_DONE:
        return PROXY_DONE;
    case ST_FAILED:
        return PROXY_FAILED;
    case ST_NOT:
        return PROXY_NOT;
    default:
        return PROXY_MORE;
    }
}

void proxy_leftover(const struct proxy *p, enum sc_dir dir, const uint8_t **b, size_t *n)
{
    *b = p->in[dir].data ? p->in[dir].data + p->used[dir] : NULL;
    *n = p->in[dir].len - p->used[dir];
}
