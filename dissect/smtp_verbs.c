/* smtp_verbs.c - the SMTP verb table (RFC 5321 4.1, RFC 3030, RFC 3207,
 * RFC 4954, RFC 2645, RFC 1985, and the private verbs seen in the field). */
#include <stdint.h>
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

#define SMTP__W4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* The four-letter verbs, most of every dialogue, as one word compare (the
 * unit test holds this to the table above). */
static enum smtp_verb smtp__lookup4(const char *up)
{
    switch (SMTP__W4((uint8_t)up[0], (uint8_t)up[1], (uint8_t)up[2], (uint8_t)up[3])) {
    case SMTP__W4('H', 'E', 'L', 'O'):
        return SMTP_V_HELO;
    case SMTP__W4('E', 'H', 'L', 'O'):
        return SMTP_V_EHLO;
    case SMTP__W4('L', 'H', 'L', 'O'):
        return SMTP_V_LHLO;
    case SMTP__W4('M', 'A', 'I', 'L'):
        return SMTP_V_MAIL;
    case SMTP__W4('R', 'C', 'P', 'T'):
        return SMTP_V_RCPT;
    case SMTP__W4('D', 'A', 'T', 'A'):
        return SMTP_V_DATA;
    case SMTP__W4('B', 'D', 'A', 'T'):
        return SMTP_V_BDAT;
    case SMTP__W4('R', 'S', 'E', 'T'):
        return SMTP_V_RSET;
    case SMTP__W4('V', 'R', 'F', 'Y'):
        return SMTP_V_VRFY;
    case SMTP__W4('E', 'X', 'P', 'N'):
        return SMTP_V_EXPN;
    case SMTP__W4('H', 'E', 'L', 'P'):
        return SMTP_V_HELP;
    case SMTP__W4('N', 'O', 'O', 'P'):
        return SMTP_V_NOOP;
    case SMTP__W4('Q', 'U', 'I', 'T'):
        return SMTP_V_QUIT;
    case SMTP__W4('A', 'U', 'T', 'H'):
        return SMTP_V_AUTH;
    case SMTP__W4('E', 'T', 'R', 'N'):
        return SMTP_V_ETRN;
    case SMTP__W4('T', 'U', 'R', 'N'):
        return SMTP_V_TURN;
    case SMTP__W4('A', 'T', 'R', 'N'):
        return SMTP_V_ATRN;
    case SMTP__W4('S', 'A', 'M', 'L'):
        return SMTP_V_SAML;
    case SMTP__W4('S', 'E', 'N', 'D'):
        return SMTP_V_SEND;
    case SMTP__W4('S', 'O', 'M', 'L'):
        return SMTP_V_SOML;
    case SMTP__W4('V', 'E', 'R', 'B'):
        return SMTP_V_VERB;
    case SMTP__W4('O', 'N', 'E', 'X'):
        return SMTP_V_ONEX;
    case SMTP__W4('B', 'U', 'R', 'L'):
        return SMTP_V_BURL;
    default:
        return SMTP_V_UNKNOWN;
    }
}

enum smtp_verb smtp_verb_lookup(const uint8_t *p, size_t n)
{
    /* Longest real verb is X-ANONYMOUSTLS (14). */
    if (n == 0 || n > 14)
        return SMTP_V_UNKNOWN;
    char up[16];
    for (size_t i = 0; i < n; i++)
        up[i] = (char)sc_to_upper(p[i]);
    if (n == 4)
        return smtp__lookup4(up);
    for (int v = SMTP_V_HELO; v < SMTP_V_CONNECT; v++) {
        const char *name = smtp__verb_names[v];
        if (strlen(name) == n && memcmp(name, up, n) == 0)
            return (enum smtp_verb)v;
    }
    return SMTP_V_UNKNOWN;
}
