/* oracle.h - the findings a synthesized capture must produce.
 *
 * The synthesizer knows what the middlebox did to each connection (enum
 * mb_action, by SIGNATURES.md row) and what each end saw.  This module turns
 * that ground truth into the rule ids smtpscope must report at each vantage,
 * with a visibility table: a masked banner is visible only downstream of the
 * device for server-to-client traffic (outside), a masked verb only upstream
 * of the server (inside) unless the server echoes it, and so on.  It never
 * looks at the captured bytes, so it is an oracle for the rules, not a copy
 * of them.
 */
#ifndef SC_SYNTH_ORACLE_H
#define SC_SYNTH_ORACLE_H

#include <stdbool.h>
#include <stddef.h>

#include "pcaps/synth/persona.h"

/* Most rule ids one session can be expected to show. */
#define SYN_ORACLE_MAX 16

struct syn_oracle_in {
    unsigned actions;            /* enum mb_action of the session's middlebox */
    bool inside;                 /* the vantage: false outside (client side), true inside */
    const struct syn_view *view; /* what the end at this vantage saw */
    enum syn_client_kind client;
    enum syn_server_kind server;
    const struct syn_client_result *result;
};

/* Whether the view shows commands in cleartext after a 220 to STARTTLS. */
bool syn_view_cleartext_after_tls(const struct syn_view *v);

/* Writes the rule ids (static strings, sorted, unique) the session must
 * show at the vantage to out; returns how many. */
size_t syn_oracle_session(const struct syn_oracle_in *in, const char **out, size_t max);

/* Cross-session facts of one session at one vantage, for
 * inconsistent_server and the STARTTLS-deleted form of starttls_stripped. */
struct syn_oracle_seen {
    bool banner_seen, banner_masked;
    bool keywords_seen; /* a complete 250 EHLO reply */
    bool tls_offered;   /* STARTTLS visible in it */
    bool tls_masked;    /* STARTTLS there but masked */
};
void syn_oracle_seen(const struct syn_oracle_in *in, struct syn_oracle_seen *out);

/* The differences compare must find for one session: (kind, rule) pairs,
 * rule "-" for none, sorted and unique.  Differences of severity info (TTL,
 * ISN, capture gaps, RSTs not passed on) are not listed: they depend on the
 * path, not on the device's rules. */
#define SYN_ORACLE_DIFFS_MAX 16
struct syn_oracle_diff {
    const char *kind, *rule;
};
size_t syn_oracle_compare(unsigned actions, struct syn_oracle_diff *out, size_t max);

#endif
