/* smtp_verbs.c - the SMTP verb table (RFC 5321 4.1, RFC 3030, RFC 3207,
 * RFC 4954, RFC 2645, RFC 1985, and the private verbs seen in the field). */
#include <string.h>

#include "common/ascii.h"
#include "dissect/smtp.h"

static const char *const smtp__verb_names[SMTP_V__COUNT] = {
    [SMTP_V_UNKNOWN] = "?",
    [SMTP_V_HELO] = "HELO",
    [SMTP_V_EHLO] = "EHLO",
    [SMTP_V_LHLO] = "LHLO",
    [SMTP_V_MAIL] = "MAIL",
    [SMTP_V_RCPT] = "RCPT",
    [SMTP_V_DATA] = "DATA",
    [SMTP_V_BDAT] = "BDAT",
    [SMTP_V_RSET] = "RSET",
    [SMTP_V_VRFY] = "VRFY",
    [SMTP_V_EXPN] = "EXPN",
    [SMTP_V_HELP] = "HELP",
    [SMTP_V_NOOP] = "NOOP",
    [SMTP_V_QUIT] = "QUIT",
    [SMTP_V_STARTTLS] = "STARTTLS",
    [SMTP_V_AUTH] = "AUTH",
    [SMTP_V_ETRN] = "ETRN",
    [SMTP_V_TURN] = "TURN",
    [SMTP_V_ATRN] = "ATRN",
    [SMTP_V_SAML] = "SAML",
    [SMTP_V_SEND] = "SEND",
    [SMTP_V_SOML] = "SOML",
    [SMTP_V_VERB] = "VERB",
    [SMTP_V_ONEX] = "ONEX",
    [SMTP_V_BURL] = "BURL",
    [SMTP_V_XCLIENT] = "XCLIENT",
    [SMTP_V_XFORWARD] = "XFORWARD",
    [SMTP_V_XEXCH50] = "XEXCH50",
    [SMTP_V_X_EXPS] = "X-EXPS",
    [SMTP_V_X_ANONYMOUSTLS] = "X-ANONYMOUSTLS",
    [SMTP_V_X_LINK2STATE] = "X-LINK2STATE",
    [SMTP_V_XSHADOW] = "XSHADOW",
    [SMTP_V_CONNECT] = "<connect>",
    [SMTP_V_END_OF_DATA] = "<end-of-data>",
    [SMTP_V_AUTH_RESPONSE] = "<auth-response>",
};

const char *smtp_verb_name(enum smtp_verb v)
{
    return (unsigned)v < SMTP_V__COUNT ? smtp__verb_names[v] : "?";
}

enum smtp_verb smtp_verb_lookup(const uint8_t *p, size_t n)
{
    /* Longest real verb is X-ANONYMOUSTLS (14). */
    if (n == 0 || n > 14)
        return SMTP_V_UNKNOWN;
    char up[16];
    for (size_t i = 0; i < n; i++)
        up[i] = (char)sc_to_upper(p[i]);
    for (int v = SMTP_V_HELO; v < SMTP_V_CONNECT; v++) {
        const char *name = smtp__verb_names[v];
        if (strlen(name) == n && memcmp(name, up, n) == 0)
            return (enum smtp_verb)v;
    }
    return SMTP_V_UNKNOWN;
}
