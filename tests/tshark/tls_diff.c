/* tls_diff.c - what smtpscope reads from TLS handshakes, against tshark.
 *
 * For every capture given (directories are walked for *.pcap, *.pcapng and
 * *.cap), every SMTP session for which smtpscope reports a TLS ServerHello is
 * compared with tshark's dissection of the same TCP connection:
 *   - the negotiated version (tls.handshake.extensions.supported_version when
 *     the ServerHello has it, else tls.handshake.version);
 *   - the cipher suite (tls.handshake.ciphersuite);
 *   - the client's JA3 hash (tls.handshake.ja3) and SNI;
 *   - the SHA-256 of the first certificate (tls.handshake.certificate), or
 *     none when smtpscope says TLS 1.3 hid it.
 * Sessions where tshark saw a ServerHello but smtpscope reports none fail
 * too.  The summary line gives the counts for the closing note.
 *
 * Usage: tls_diff SMTPSCOPE ROOT...
 * Exit: 0 all agree, 1 a difference, 2 setup error, 77 no tshark or no root.
 */
#include <dirent.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/jv.h"

static const char *bin;
static int failures;
static size_t captures, sessions, compared, skipped_xanon;

static char *slurp(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    pclose(p);
    if (buf)
        buf[len] = 0;
    return buf;
}

/* One TCP connection as tshark sees it. */
struct conn {
    char key[160]; /* "client>server" as smtpscope writes the endpoints */
    char version[16], cipher[16], ja3[40], sni[256], cert[65];
    bool server_hello;
};

static struct conn *conns;
static size_t nconns;

static struct conn *conn_get(const char *key)
{
    for (size_t i = 0; i < nconns; i++)
        if (strcmp(conns[i].key, key) == 0)
            return &conns[i];
    conns = realloc(conns, (nconns + 1) * sizeof(*conns));
    struct conn *c = &conns[nconns++];
    memset(c, 0, sizeof(*c));
    snprintf(c->key, sizeof(c->key), "%s", key);
    return c;
}

static void endpoint(char *out, size_t n, const char *v4, const char *v6, const char *port)
{
    if (v6[0])
        snprintf(out, n, "[%s]:%s", v6, port);
    else
        snprintf(out, n, "%s:%s", v4, port);
}

/* Splits a '|'-separated tshark line into at most max fields. */
static size_t fields(char *line, char **f, size_t max)
{
    static char empty[1];
    size_t n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = 0;
        p = bar + 1;
    }
    for (size_t i = n; i < max; i++)
        f[i] = empty;
    return n;
}

static void sha256_hex(const char *hex, char out[65])
{
    size_t n = strlen(hex) / 2;
    unsigned char *der = malloc(n ? n : 1), md[EVP_MAX_MD_SIZE];
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        der[i] = (unsigned char)v;
    }
    unsigned mdlen = 0;
    EVP_Digest(der, n, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    free(der);
}

static const char *tshark_version(const char *v)
{
    if (strcmp(v, "0x0304") == 0)
        return "TLSv1.3";
    if (strcmp(v, "0x0303") == 0)
        return "TLSv1.2";
    if (strcmp(v, "0x0302") == 0)
        return "TLSv1.1";
    if (strcmp(v, "0x0301") == 0)
        return "TLSv1.0";
    if (strcmp(v, "0x0300") == 0)
        return "SSLv3";
    return v;
}

static void load_tshark(const char *file)
{
    nconns = 0;
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "tshark -r '%s' -Y 'tls.handshake.type == 1 || tls.handshake.type == 2 || "
             "tls.handshake.type == 11' -T fields -E separator='|' -E occurrence=f "
             "-e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport "
             "-e tls.handshake.type -e tls.handshake.version "
             "-e tls.handshake.extensions.supported_version -e tls.handshake.ciphersuite "
             "-e tls.handshake.ja3 -e tls.handshake.extensions_server_name "
             "-e tls.handshake.certificate 2>/dev/null",
             file);
    char *out = slurp(cmd);
    if (!out)
        return;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[13];
        fields(line, f, 13);
        char src[100], dst[100], key[210];
        endpoint(src, sizeof(src), f[0], f[1], f[2]);
        endpoint(dst, sizeof(dst), f[3], f[4], f[5]);
        /* First occurrences: the packet's first handshake message type, and
         * its first certificate wherever it is. */
        bool ch = strcmp(f[6], "1") == 0;
        bool sh = strcmp(f[6], "2") == 0;
        bool cert = f[12][0] != 0;
        if (ch) {
            snprintf(key, sizeof(key), "%s>%s", src, dst);
            struct conn *c = conn_get(key);
            if (!c->ja3[0]) {
                snprintf(c->ja3, sizeof(c->ja3), "%s", f[10]);
                snprintf(c->sni, sizeof(c->sni), "%s", f[11]);
            }
        }
        if (sh || cert) {
            snprintf(key, sizeof(key), "%s>%s", dst, src);
            struct conn *c = conn_get(key);
            if (sh) {
                /* The last ServerHello wins (a HelloRetryRequest comes first). */
                c->server_hello = true;
                snprintf(c->version, sizeof(c->version), "%s",
                         tshark_version(f[8][0] ? f[8] : f[7]));
                snprintf(c->cipher, sizeof(c->cipher), "%s", f[9]);
            }
            if (cert && !c->cert[0] && f[12][0]) {
                char *comma = strchr(f[12], ',');
                if (comma)
                    *comma = 0;
                sha256_hex(f[12], c->cert);
            }
        }
    }
    free(out);
}

static void fail(const char *file, const char *key, const char *what, const char *ours,
                 const char *theirs)
{
    printf("FAIL %s %s: %s: smtpscope \"%s\", tshark \"%s\"\n", file, key, what, ours, theirs);
    failures++;
}

static void check(const char *file)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' analyze -q -f json --transcript '%s' 2>/dev/null", bin, file);
    char *out = slurp(cmd);
    if (!out)
        return;
    bool loaded = false;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char err[256];
        struct jv *r = jv_parse(line, err, sizeof(err));
        if (!r || strcmp(jv_text(jv_get(r, "type")), "session") != 0) {
            jv_free(r);
            continue;
        }
        if (!loaded) {
            load_tshark(file);
            loaded = true;
            captures++;
        }
        sessions++;
        char key[210];
        snprintf(key, sizeof(key), "%s>%s", jv_text(jv_get(r, "client")),
                 jv_text(jv_get(r, "server")));
        struct conn *c = NULL;
        for (size_t i = 0; i < nconns && !c; i++)
            if (strcmp(conns[i].key, key) == 0)
                c = &conns[i];
        /* Exchange's X-ANONYMOUSTLS is STARTTLS under another name, which
         * Wireshark's SMTP dissector does not follow into TLS. */
        const struct jv *tr = jv_get(r, "transcript");
        bool xanon = false;
        for (size_t i = 0; tr && i < tr->n; i++)
            xanon = xanon || strcmp(jv_text(jv_get(tr->v[i], "cmd")), "X-ANONYMOUSTLS") == 0;
        if (xanon) {
            skipped_xanon++;
            jv_free(r);
            continue;
        }
        const struct jv *tls = jv_get(r, "tls");
        const struct jv *ver = tls ? jv_get(tls, "version") : NULL;
        bool ours = ver && ver->type == JV_STR;
        if (!ours) {
            if (c && c->server_hello)
                fail(file, key, "ServerHello", "(none)", c->version);
            jv_free(r);
            continue;
        }
        if (!c || !c->server_hello) {
            fail(file, key, "ServerHello", jv_text(ver), "(none)");
            jv_free(r);
            continue;
        }
        compared++;
        if (strcmp(jv_text(ver), c->version) != 0)
            fail(file, key, "version", jv_text(ver), c->version);
        char cid[16];
        snprintf(cid, sizeof(cid), "0x%04x", (unsigned)atoi(jv_text(jv_get(tls, "cipher_id"))));
        if (strcmp(cid, c->cipher) != 0)
            fail(file, key, "cipher", cid, c->cipher);
        const struct jv *hello = jv_get(tls, "client_hello");
        if (hello && hello->type == JV_OBJ) {
            if (strcmp(jv_text(jv_get(hello, "ja3_md5")), c->ja3) != 0)
                fail(file, key, "ja3", jv_text(jv_get(hello, "ja3_md5")), c->ja3);
        } else if (c->ja3[0]) {
            fail(file, key, "ClientHello", "(none)", c->ja3);
        }
        const char *sni = jv_get(tls, "sni")->type == JV_STR ? jv_text(jv_get(tls, "sni")) : "";
        if (strcmp(sni, c->sni) != 0)
            fail(file, key, "sni", sni, c->sni);
        const struct jv *cert = jv_get(tls, "cert_sha256");
        const char *cs = cert && cert->type == JV_STR ? jv_text(cert) : "";
        if (strcmp(cs, c->cert) != 0)
            fail(file, key, "certificate sha256", cs, c->cert);
        jv_free(r);
    }
    free(out);
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static void walk(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (S_ISREG(st.st_mode)) {
        if (has_suffix(path, ".pcap") || has_suffix(path, ".pcapng") || has_suffix(path, ".cap"))
            check(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        walk(sub);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tls_diff SMTPSCOPE ROOT...\n");
        return 2;
    }
    bin = argv[1];
    if (system("tshark --version >/dev/null 2>&1") != 0) {
        printf("tls_diff: tshark not installed: skipped\n");
        return 77;
    }
    bool any = false;
    for (int i = 2; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            printf("tls_diff: %s does not exist, skipped\n", argv[i]);
            continue;
        }
        any = true;
        walk(argv[i]);
    }
    free(conns);
    if (!any)
        return 77;
    printf("tls_diff: %zu captures, %zu sessions, %zu TLS handshakes compared with tshark "
           "(%zu after X-ANONYMOUSTLS left out: tshark does not follow it), %d differences\n",
           captures, sessions, compared, skipped_xanon, failures);
    return failures ? 1 : 0;
}
