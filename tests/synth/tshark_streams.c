/* tshark_streams.c - checks the two-sided synthesized captures with tshark.
 *
 * For every pcaps/synth-NAME.streams.yaml (written by smtpscope-synth: the
 * bytes the model sent in each direction of each session, at the outside and
 * the inside vantage), tshark reassembles the same TCP streams from
 * synth-NAME.pcap[ng] and synth-NAME-inside.pcap[ng] ("follow,tcp,raw"); the
 * length and SHA-256 of every stream must equal the model's.  So what tshark
 * shows outside and inside differs exactly as the middlebox model says, and
 * nowhere else.  Independent of smtpscope: only tshark reads the captures.
 *
 * Usage: tshark_streams PCAPS_DIR
 * Exit: 0 all match, 1 a mismatch, 77 tshark missing, 2 setup error.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "common/jv.h"

static int failures;

static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = 0;
    pclose(p);
    return buf;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Finds the tcp.stream index of the connection from client to server. */
static long stream_index(const char *file, const char *client, const char *server)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "tshark -r '%s' -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' -T fields -e tcp.stream "
             "-e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport "
             "2>/dev/null",
             file);
    /* One tshark run per file: the SYN list is cached for the next call. */
    static char cached_file[2048];
    static char *cached;
    if (!cached || strcmp(cached_file, file) != 0) {
        free(cached);
        cached = run(cmd);
        snprintf(cached_file, sizeof(cached_file), "%s", file);
    }
    char *out = strdup(cached ? cached : "");
    long found = -1;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line && found < 0;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[7] = {0};
        int n = 0;
        for (char *p = line; n < 7; n++) {
            f[n] = p;
            char *t = strchr(p, '\t');
            if (!t) {
                n++;
                break;
            }
            *t = 0;
            p = t + 1;
        }
        if (n < 7)
            continue;
        char c[96], s[96];
        const char *ca = f[1][0] ? f[1] : f[2], *sa = f[4][0] ? f[4] : f[5];
        snprintf(c, sizeof(c), strchr(ca, ':') ? "[%s]:%s" : "%s:%s", ca, f[3]);
        snprintf(s, sizeof(s), strchr(sa, ':') ? "[%s]:%s" : "%s:%s", sa, f[6]);
        if (strcmp(c, client) == 0 && strcmp(s, server) == 0)
            found = atol(f[0]);
    }
    free(out);
    return found;
}

/* Rebuilds both directions of a stream from tshark's raw follow output. */
static void follow(const char *file, long idx, EVP_MD_CTX *md[2], size_t len[2])
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "tshark -r '%s' -qz follow,tcp,raw,%ld 2>/dev/null", file, idx);
    char *out = run(cmd);
    int sep = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "=====", 5) == 0) {
            sep++;
            continue;
        }
        if (sep != 1 || strncmp(line, "Follow:", 7) == 0 || strncmp(line, "Filter:", 7) == 0 ||
            strncmp(line, "Node ", 5) == 0)
            continue;
        int dir = line[0] == '\t' ? 1 : 0; /* node 0 (the SYN's sender) has no indent */
        const char *h = line + dir;
        uint8_t chunk[4096];
        size_t k = 0;
        while (h[0] && h[1]) {
            int a = hexval(h[0]), b = hexval(h[1]);
            if (a < 0 || b < 0)
                break;
            chunk[k++] = (uint8_t)(a << 4 | b);
            h += 2;
            if (k == sizeof(chunk)) {
                EVP_DigestUpdate(md[dir], chunk, k);
                len[dir] += k;
                k = 0;
            }
        }
        EVP_DigestUpdate(md[dir], chunk, k);
        len[dir] += k;
    }
    free(out);
}

static void check(const char *file, const char *what, const struct jv *side, const struct jv *c2s,
                  const struct jv *s2c)
{
    if (strcmp(jv_text(jv_get(side, "lossy")), "true") == 0)
        return; /* capture loss on purpose: the bytes are not all there */
    const char *client = jv_text(jv_get(side, "client"));
    const char *server = jv_text(jv_get(side, "server"));
    long idx = stream_index(file, client, server);
    if (idx < 0) {
        printf("  FAIL %s %s: tshark finds no connection %s -> %s\n", file, what, client, server);
        failures++;
        return;
    }
    EVP_MD_CTX *md[2] = {EVP_MD_CTX_new(), EVP_MD_CTX_new()};
    size_t len[2] = {0, 0};
    EVP_DigestInit_ex(md[0], EVP_sha256(), NULL);
    EVP_DigestInit_ex(md[1], EVP_sha256(), NULL);
    follow(file, idx, md, len);
    const struct jv *want[2] = {c2s, s2c};
    for (int d = 0; d < 2; d++) {
        unsigned char h[32];
        unsigned int hl = 0;
        EVP_DigestFinal_ex(md[d], h, &hl);
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", h[i]);
        char got_len[32];
        snprintf(got_len, sizeof(got_len), "%zu", len[d]);
        const char *wl = jv_text(jv_get(want[d], "len"));
        const char *wh = jv_text(jv_get(want[d], "sha256"));
        if (strcmp(wl, got_len) != 0 || strcmp(wh, hex) != 0) {
            printf("  FAIL %s %s %s %s: model %s bytes %.16s..., tshark %s bytes %.16s...\n", file,
                   what, client, d ? "s2c" : "c2s", wl, wh, got_len, hex);
            failures++;
        }
        EVP_MD_CTX_free(md[d]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tshark_streams PCAPS_DIR\n");
        return 2;
    }
    if (system("tshark --version >/dev/null 2>&1") != 0) {
        printf("SKIP: tshark is not installed; the two-sided capture check needs it\n");
        return 77;
    }
    const char *dir = argv[1];
    DIR *d = opendir(dir);
    if (!d)
        return 2;
    struct dirent *e;
    int files = 0, sessions = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        const char *suf = ".streams.yaml";
        if (l <= strlen(suf) || strcmp(e->d_name + l - strlen(suf), suf) != 0)
            continue;
        char base[1024], path[2048], out[2048], in[2048], err[512];
        snprintf(base, sizeof(base), "%.*s", (int)(l - strlen(suf)), e->d_name);
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct jv *doc = jv_load_yaml(path, err, sizeof(err));
        if (!doc) {
            printf("FAIL %s\n", err);
            failures++;
            continue;
        }
        const char *ext = ".pcap";
        snprintf(out, sizeof(out), "%s/%s.pcap", dir, base);
        if (!exists(out))
            ext = ".pcapng";
        snprintf(out, sizeof(out), "%s/%s%s", dir, base, ext);
        snprintf(in, sizeof(in), "%s/%s-inside%s", dir, base, ext);
        const struct jv *ss = jv_get(doc, "sessions");
        int before = failures;
        for (size_t i = 0; ss && i < ss->n; i++) {
            const struct jv *s = ss->v[i];
            check(out, "outside", jv_get(s, "outside"), jv_get(s, "outside_c2s"),
                  jv_get(s, "outside_s2c"));
            check(in, "inside", jv_get(s, "inside"), jv_get(s, "inside_c2s"),
                  jv_get(s, "inside_s2c"));
            sessions++;
        }
        printf("%s: %s\n", base, failures == before ? "ok" : "FAILED");
        files++;
        jv_free(doc);
    }
    closedir(d);
    printf("tshark_streams: %d two-sided scenarios, %d sessions, %d failures\n", files, sessions,
           failures);
    return failures ? 1 : 0;
}
