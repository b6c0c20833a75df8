/* proxy.h - a proxy handshake in front of an SMTP dialogue: SOCKS4/4a (the
 * de-facto NEC specification), SOCKS5 (RFC 1928, with RFC 1929 user/password
 * sub-negotiation) and HTTP CONNECT (RFC 9110 9.3.6).
 *
 * Spam bots and some mail clients reach port 25 through such proxies, so the
 * SMTP dialogue of a connection to port 1080 or 8080 starts after a few bytes
 * of proxy protocol.  The parser is fed both directions of a connection that
 * the client opened by speaking first; it says whether that was a proxy
 * handshake, and when the handshake succeeded it hands back the bytes that
 * followed it in each direction, which are the tunnelled stream.
 *
 * Bytes are buffered per direction (at most `max` bytes, given to
 * proxy_init) until the step of the handshake that reads them; the bytes
 * after the handshake in the feed that completes it are kept whole for
 * proxy_leftover, however many.  The outcome does not depend on how the
 * bytes are cut into feeds.  Credentials (SOCKS5 user/password, HTTP
 * Proxy-Authorization) are parsed over, never kept.
 */
#ifndef SC_DISSECT_PROXY_H
#define SC_DISSECT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/event.h"

enum proxy_kind {
    PROXY_NONE = 0,
    PROXY_SOCKS4,
    PROXY_SOCKS5,
    PROXY_HTTP_CONNECT,
};

enum proxy_result {
    PROXY_MORE = 0, /* handshake under way: the bytes were taken */
    PROXY_DONE,     /* the tunnel is open: see proxy_leftover() */
    PROXY_FAILED,   /* a proxy handshake that did not open a tunnel */
    PROXY_NOT,      /* the client's first bytes are no proxy protocol we know */
};

struct proxy {
    enum proxy_kind kind;
    int step;
    struct sc_buf in[2]; /* unconsumed bytes per direction (enum sc_dir) */
    size_t used[2];      /* bytes of in[] consumed by the handshake */
    char target[272];    /* "host:port" the client asked for */
    char failure[96];    /* why a handshake failed */
    size_t max;          /* bytes buffered per direction at most */
};

/* Prepares a parser that buffers at most max bytes per direction; past that
 * the connection is taken for no proxy handshake we follow. */
void proxy_init(struct proxy *p, size_t max);
void proxy_free(struct proxy *p);

/* Feeds n bytes of direction dir.  Returns the state after them. */
enum proxy_result proxy_feed(struct proxy *p, enum sc_dir dir, const uint8_t *b, size_t n);

/* After PROXY_DONE: the bytes of dir that followed the handshake (pointer
 * into the parser's buffer, valid until proxy_free). */
void proxy_leftover(const struct proxy *p, enum sc_dir dir, const uint8_t **b, size_t *n);

/* Returns "socks4", "socks5", "http-connect" or "none". */
const char *proxy_kind_name(enum proxy_kind k);

#endif
