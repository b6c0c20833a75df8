/* scenario.h - scenario files for the synthesizer: what to simulate (YAML,
 * read with libyaml through common/jv.h) and the run that turns them into
 * captures.
 *
 * A scenario names the capture format and vantages (outside, inside), the
 * network (addresses, round-trip times, path loss, reordering), the
 * middlebox model between client and server, any number of SMTP sessions
 * (each a client persona and a server persona), and optional background
 * traffic (bulk TLS on 443, DNS).  pcaps/README.md documents every key;
 * pcaps/scenarios/ holds the library.  The same scenario always produces the
 * same bytes.
 */
#ifndef SC_SYNTH_SCENARIO_H
#define SC_SYNTH_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jv.h"
#include "pcaps/synth/encap.h"
#include "pcaps/synth/mbox.h"
#include "pcaps/synth/persona.h"
#include "pcaps/synth/wire.h"

#define SYN_MAX_SESSIONS 64 /* session entries in one scenario file */
#define SYN_MAX_LIST 512    /* items in one list (recipients, keywords, script) */

struct syn_vantage_cfg {
    bool on;
    uint8_t nvlan;
    uint16_t vlan[2];
    double loss, duplicate, conflict, position;
    sc_time clock_offset;
    struct syn_encap_cfg encap; /* layers around every packet (encap.n 0: none) */
};

struct syn_session_cfg {
    int count;
    sc_time at, every;
    bool bypass; /* the connection takes another path: the middlebox does not see it */
    struct syn_client_cfg client;
    struct syn_server_cfg server;
    /* TLS of the server (generated certificate). */
    int tls_version;
    const char *tls_cn;
    const char *tls_issuer;
    bool tls_ec;
    /* Storage for the lists the persona configs point into. */
    const char *rcpt[SYN_MAX_LIST];
    const char *keywords[SYN_MAX_LIST];
    const char *reject[SYN_MAX_LIST];
    const char *script[SYN_MAX_LIST];
    char *owned[SYN_MAX_LIST]; /* generated strings to free */
    size_t nowned;
};

struct syn_scenario {
    struct jv *doc; /* the parsed file; strings above point into it */
    const char *description;
    uint64_t seed;
    int64_t start; /* seconds since the epoch */
    sc_time duration;
    enum syn_format format;
    enum syn_link link;
    uint32_t snaplen;
    struct syn_vantage_cfg outside, inside;
    bool ipv6;
    struct cap_addr client, server;
    uint16_t port, client_port;
    sc_time rtt_outside, rtt_inside;
    uint8_t hops_outside, hops_inside;
    double loss_outside, loss_inside, reorder, duplicate;
    bool client_windows, server_windows;
    struct mb_cfg mbox;
    const char *mbox_cn;
    struct syn_session_cfg sessions[SYN_MAX_SESSIONS];
    size_t nsessions;
    int bg_tls_flows;
    size_t bg_tls_bytes;
    int bg_dns;
};

/* Loads a scenario; on error returns NULL and writes "FILE:LINE:COL: what"
 * into err. */
struct syn_scenario *syn_scenario_load(const char *path, char *err, size_t errlen);
void syn_scenario_free(struct syn_scenario *sc);

struct syn_run_stats {
    uint64_t packets[2]; /* written: outside, inside */
    uint64_t sessions;
    uint64_t tls_sessions;
    uint64_t messages_accepted;
    uint64_t aborted;
};

/* Runs the scenario, writing the outside capture to out_path and the inside
 * capture to in_path (either may be NULL).  cert_path, if set, receives the
 * first session's server certificate (PEM).  Returns 0, or -1 with a message
 * on stderr. */
int syn_scenario_run(const struct syn_scenario *sc, const char *out_path, const char *in_path,
                     const char *cert_path, struct syn_run_stats *st);

/* Where the expectation files go (either may be NULL): what the client saw
 * (for the outside capture) and what the server saw (inside), in the
 * .expect.yaml format of tests/golden/run_golden.c.  Set before running. */
struct syn_expect_paths {
    const char *outside;
    const char *inside;
    const char *name; /* the capture's base name, for the header comment */
    /* What each vantage must show of each direction's TCP stream (length and
     * SHA-256 of the bytes), for checking captures with another tool. */
    const char *streams;
    /* The differences `smtpscope compare` must find between the two
     * captures, per session (two-sided scenarios). */
    const char *compare;
};
int syn_scenario_run_expect(const struct syn_scenario *sc, const char *out_path,
                            const char *in_path, const char *cert_path,
                            const struct syn_expect_paths *ex, struct syn_run_stats *st);

#endif
