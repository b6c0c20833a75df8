/* tlsgen.c - deterministic in-memory TLS 1.2/1.3 client and server for the synthesizer
 * (RFC 5246, RFC 8446; certificates per RFC 5280; DRBG keystream per RFC 8439).
 *
 * Determinism.  Each tlsgen_ctx owns two OpenSSL library contexts
 * (OSSL_LIB_CTX), one for the client side and one for the server side.  Into
 * each we load the default provider plus a tiny built-in provider whose only
 * algorithm is a RAND ("TLSGEN-DRBG") that outputs a ChaCha20 keystream
 * (RFC 8439 block function) keyed from tlsgen_opts.seed and the side, and
 * make it the type of that library context's seed source, primary, public and
 * private DRBGs (RAND_set_seed_source_type / RAND_set_DRBG_type).  Every
 * random byte OpenSSL draws for that side - key generation, serial numbers,
 * hello randoms, session ids, key shares, ECDSA nonces, RSA-PSS salts, CBC
 * explicit IVs, ticket keys - therefore comes from the seed; the generator
 * never reads the operating system's entropy and ignores reseeds and
 * additional input.  Splitting the two sides means the bytes one side emits
 * depend only on the seed and on the sequence of calls made on that side's
 * endpoints, not on how calls on the two sides interleave.  Certificate
 * validity comes from the options, session tickets are disabled (a TLS 1.3
 * ticket would embed the clock), and options, cipher lists, groups,
 * signature algorithms, record padding and the security level are set
 * explicitly (to OpenSSL 3.0's built-in defaults where tlsgen has no
 * preference) so that a system openssl.cnf cannot change the bytes.
 *
 * Threads: OpenSSL keeps the public and private DRBGs per thread; a thread
 * gets the next keystream of its side, so output stays reproducible only if
 * the threads touching a context do so in a reproducible order.  The
 * synthesizer drives everything from one thread.
 */
#include "pcaps/synth/tlsgen.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Name under which the deterministic generator is registered in each library
 * context (provider and algorithm). */
#define TG_PROV_NAME "tlsgen-drbg"
#define TG_RAND_NAME "TLSGEN-DRBG"

/* Largest request the generator serves per call; OpenSSL's EVP layer splits
 * bigger requests into chunks of this size. */
#define TG_MAX_REQUEST ((size_t)1 << 16)

/* Security strength the generator claims, in bits (the most OpenSSL asks of
 * any DRBG). */
#define TG_STRENGTH 256u

/* Size of the stack buffers used to move bytes out of OpenSSL: one maximum
 * TLS plaintext record (RFC 8446 section 5.1). */
#define TG_CHUNK 16384

/* Serial numbers of generated certificates: 16 bytes from the DRBG with the
 * top bit cleared (RFC 5280 section 4.1.2.2 allows at most 20 octets and
 * requires a positive number). */
#define TG_SERIAL_LEN 16

/* Validity bounds a certificate can express: 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z (GeneralizedTime has four year digits, RFC 5280
 * section 4.1.2.5.2).  Options outside are refused. */
#define TG_TIME_MIN INT64_C(-62135596800)
#define TG_TIME_MAX INT64_C(253402300799)

/* ------------------------------------------------------------------------ */
/* ChaCha20 keystream (RFC 8439 section 2.3)                                 */

#define TG_ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define TG_QR(a, b, c, d)                                                                          \
    do {                                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = TG_ROTL(d, 16);                                                                        \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = TG_ROTL(b, 12);                                                                        \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = TG_ROTL(d, 8);                                                                         \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = TG_ROTL(b, 7);                                                                         \
    } while (0)

static uint32_t tg_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Computes one 64-byte ChaCha20 block for a 32-byte key, a block counter and
 * a 12-byte nonce.  Internal, non-static so that the unit test can check it
 * against the RFC 8439 test vector. */
void tlsgen__chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                            uint8_t out[64]);
void tlsgen__chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                            uint8_t out[64])
{
    uint32_t in[16], x[16];
    in[0] = 0x61707865u;
    in[1] = 0x3320646eu;
    in[2] = 0x79622d32u;
    in[3] = 0x6b206574u;
    for (int i = 0; i < 8; i++)
        in[4 + i] = tg_le32(key + 4 * i);
    in[12] = counter;
    for (int i = 0; i < 3; i++)
        in[13 + i] = tg_le32(nonce + 4 * i);
    memcpy(x, in, sizeof(x));
    for (int i = 0; i < 10; i++) {
        TG_QR(x[0], x[4], x[8], x[12]);
        TG_QR(x[1], x[5], x[9], x[13]);
        TG_QR(x[2], x[6], x[10], x[14]);
        TG_QR(x[3], x[7], x[11], x[15]);
        TG_QR(x[0], x[5], x[10], x[15]);
        TG_QR(x[1], x[6], x[11], x[12]);
        TG_QR(x[2], x[7], x[8], x[13]);
        TG_QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t v = x[i] + in[i];
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
}

/* ------------------------------------------------------------------------ */
/* The deterministic RAND provider                                           */

/* Provider context, one per library context: the side's key.  Each generator
 * instance created in that library context gets its own stream (nonce = side
 * and creation index) of the same key. */
struct tg_prov {
    uint8_t key[32];
    uint8_t side; /* 'c' client, 's' server */
    bool keyed;   /* set by tlsgen right after loading; instances made before fail */
    int instances;
    CRYPTO_RWLOCK *lock;
};

struct tg_rand {
    uint8_t key[32];
    uint8_t nonce[12];
    uint32_t counter; /* next block */
    bool exhausted;   /* the 32-bit block counter wrapped: 256 GiB drawn */
    bool keyed;
    uint8_t block[64];
    size_t used; /* bytes of block already handed out */
    int state;   /* EVP_RAND_STATE_* */
    CRYPTO_RWLOCK *lock;
};

static void *tg_rand_newctx(void *provctx, void *parent, const OSSL_DISPATCH *parent_calls)
{
    struct tg_prov *pv = provctx;
    struct tg_rand *r;
    int idx = 0;

    (void)parent; /* never asked for entropy: the key is the only input */
    (void)parent_calls;
    if (pv == NULL || (r = OPENSSL_zalloc(sizeof(*r))) == NULL)
        return NULL;
    if (!CRYPTO_atomic_add(&pv->instances, 1, &idx, pv->lock)) {
        OPENSSL_free(r);
        return NULL;
    }
    if (pv->keyed) {
        memcpy(r->key, pv->key, sizeof(r->key));
        r->nonce[0] = pv->side;
        r->nonce[4] = (uint8_t)idx;
        r->nonce[5] = (uint8_t)(idx >> 8);
        r->nonce[6] = (uint8_t)(idx >> 16);
        r->nonce[7] = (uint8_t)(idx >> 24);
        r->keyed = true;
    }
    r->used = sizeof(r->block);
    r->state = EVP_RAND_STATE_UNINITIALISED;
    return r;
}

static void tg_rand_freectx(void *vctx)
{
    struct tg_rand *r = vctx;
    if (r == NULL)
        return;
    CRYPTO_THREAD_lock_free(r->lock);
    OPENSSL_clear_free(r, sizeof(*r));
}

static int tg_rand_instantiate(void *vctx, unsigned int strength, int prediction_resistance,
                               const unsigned char *pstr, size_t pstr_len,
                               const OSSL_PARAM params[])
{
    struct tg_rand *r = vctx;
    (void)prediction_resistance;
    (void)pstr;
    (void)pstr_len;
    (void)params; /* reseed intervals and the like do not apply */
    if (strength > TG_STRENGTH)
        return 0;
    r->state = EVP_RAND_STATE_READY;
    return 1;
}

static int tg_rand_uninstantiate(void *vctx)
{
    struct tg_rand *r = vctx;
    OPENSSL_cleanse(r->block, sizeof(r->block));
    r->used = sizeof(r->block);
    r->state = EVP_RAND_STATE_UNINITIALISED;
    return 1;
}

static int tg_rand_generate(void *vctx, unsigned char *out, size_t outlen, unsigned int strength,
                            int prediction_resistance, const unsigned char *adin, size_t adin_len)
{
    struct tg_rand *r = vctx;
    (void)prediction_resistance; /* deliberately unpredictable only to outsiders */
    (void)adin;
    (void)adin_len;
    if (r->state != EVP_RAND_STATE_READY || !r->keyed || strength > TG_STRENGTH)
        return 0;
    while (outlen > 0) {
        if (r->used == sizeof(r->block)) {
            if (r->exhausted) {
                r->state = EVP_RAND_STATE_ERROR;
                return 0;
            }
            tlsgen__chacha20_block(r->key, r->counter, r->nonce, r->block);
            if (++r->counter == 0)
                r->exhausted = true;
            r->used = 0;
        }
        size_t n = sizeof(r->block) - r->used;
        if (n > outlen)
            n = outlen;
        memcpy(out, r->block + r->used, n);
        r->used += n;
        out += n;
        outlen -= n;
    }
    return 1;
}

static int tg_rand_reseed(void *vctx, int prediction_resistance, const unsigned char *ent,
                          size_t ent_len, const unsigned char *adin, size_t adin_len)
{
    struct tg_rand *r = vctx;
    (void)prediction_resistance; /* reseeding would break reproducibility: ignored */
    (void)ent;
    (void)ent_len;
    (void)adin;
    (void)adin_len;
    return r->state == EVP_RAND_STATE_READY;
}

/* Seed source role: hands out keystream as "entropy" (only used if OpenSSL
 * ever chains one of its own DRBGs below ours). */
static size_t tg_rand_get_seed(void *vctx, unsigned char **buffer, int entropy, size_t min_len,
                               size_t max_len, int prediction_resistance, const unsigned char *adin,
                               size_t adin_len)
{
    size_t n = min_len;
    unsigned char *p;
    (void)entropy;
    (void)max_len;
    if (n == 0)
        n = 32;
    if ((p = OPENSSL_secure_malloc(n)) == NULL)
        return 0;
    if (!tg_rand_generate(vctx, p, n, 0, prediction_resistance, adin, adin_len)) {
        OPENSSL_secure_clear_free(p, n);
        return 0;
    }
    *buffer = p;
    return n;
}

static void tg_rand_clear_seed(void *vctx, unsigned char *buffer, size_t b_len)
{
    (void)vctx;
    OPENSSL_secure_clear_free(buffer, b_len);
}

static int tg_rand_enable_locking(void *vctx)
{
    struct tg_rand *r = vctx;
    if (r->lock == NULL)
        r->lock = CRYPTO_THREAD_lock_new();
    return r->lock != NULL;
}

static int tg_rand_lock(void *vctx)
{
    struct tg_rand *r = vctx;
    return r->lock == NULL || CRYPTO_THREAD_write_lock(r->lock);
}

static void tg_rand_unlock(void *vctx)
{
    struct tg_rand *r = vctx;
    if (r->lock != NULL)
        CRYPTO_THREAD_unlock(r->lock);
}

static int tg_rand_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    struct tg_rand *r = vctx;
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE)) != NULL &&
        !OSSL_PARAM_set_int(p, r->state))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH)) != NULL &&
        !OSSL_PARAM_set_uint(p, TG_STRENGTH))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST)) != NULL &&
        !OSSL_PARAM_set_size_t(p, TG_MAX_REQUEST))
        return 0;
    return 1;
}

static const OSSL_PARAM *tg_rand_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM known[] = {
        OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, NULL),
        OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, NULL),
        OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, NULL),
        OSSL_PARAM_END,
    };
    (void)vctx;
    (void)provctx;
    return known;
}

static int tg_rand_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    (void)vctx;
    (void)params;
    return 1;
}

static const OSSL_PARAM *tg_rand_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM none[] = {OSSL_PARAM_END};
    (void)vctx;
    (void)provctx;
    return none;
}

/* Casting to void (*)(void) is how OSSL_DISPATCH tables are written. */
#define TG_FN(f) ((void (*)(void))(f))

static const OSSL_DISPATCH tg_rand_functions[] = {
    {OSSL_FUNC_RAND_NEWCTX, TG_FN(tg_rand_newctx)},
    {OSSL_FUNC_RAND_FREECTX, TG_FN(tg_rand_freectx)},
    {OSSL_FUNC_RAND_INSTANTIATE, TG_FN(tg_rand_instantiate)},
    {OSSL_FUNC_RAND_UNINSTANTIATE, TG_FN(tg_rand_uninstantiate)},
    {OSSL_FUNC_RAND_GENERATE, TG_FN(tg_rand_generate)},
    {OSSL_FUNC_RAND_RESEED, TG_FN(tg_rand_reseed)},
    {OSSL_FUNC_RAND_GET_SEED, TG_FN(tg_rand_get_seed)},
    {OSSL_FUNC_RAND_CLEAR_SEED, TG_FN(tg_rand_clear_seed)},
    {OSSL_FUNC_RAND_ENABLE_LOCKING, TG_FN(tg_rand_enable_locking)},
    {OSSL_FUNC_RAND_LOCK, TG_FN(tg_rand_lock)},
    {OSSL_FUNC_RAND_UNLOCK, TG_FN(tg_rand_unlock)},
    {OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, TG_FN(tg_rand_gettable_ctx_params)},
    {OSSL_FUNC_RAND_GET_CTX_PARAMS, TG_FN(tg_rand_get_ctx_params)},
    {OSSL_FUNC_RAND_SETTABLE_CTX_PARAMS, TG_FN(tg_rand_settable_ctx_params)},
    {OSSL_FUNC_RAND_SET_CTX_PARAMS, TG_FN(tg_rand_set_ctx_params)},
    {0, NULL},
};

static const OSSL_ALGORITHM tg_rands[] = {
    {TG_RAND_NAME, "provider=" TG_PROV_NAME, tg_rand_functions,
     "ChaCha20 keystream keyed by the tlsgen seed"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *tg_prov_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_RAND ? tg_rands : NULL;
}

static void tg_prov_teardown(void *provctx)
{
    struct tg_prov *pv = provctx;
    if (pv == NULL)
        return;
    CRYPTO_THREAD_lock_free(pv->lock);
    OPENSSL_clear_free(pv, sizeof(*pv));
}

static const OSSL_DISPATCH tg_prov_functions[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, TG_FN(tg_prov_query)},
    {OSSL_FUNC_PROVIDER_TEARDOWN, TG_FN(tg_prov_teardown)},
    {0, NULL},
};

static int tg_prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                        const OSSL_DISPATCH **out, void **provctx)
{
    struct tg_prov *pv;
    (void)handle;
    (void)in;
    if ((pv = OPENSSL_zalloc(sizeof(*pv))) == NULL)
        return 0;
    if ((pv->lock = CRYPTO_THREAD_lock_new()) == NULL) {
        OPENSSL_free(pv);
        return 0;
    }
    *out = tg_prov_functions;
    *provctx = pv;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Library contexts                                                          */

/* One side's library context with its providers. */
struct tg_side {
    OSSL_LIB_CTX *lib;
    OSSL_PROVIDER *deflt;
    OSSL_PROVIDER *drbg;
};

static void tg_err(const char *what)
{
    fprintf(stderr, "tlsgen: %s\n", what);
    ERR_print_errors_fp(stderr);
}

static void tg_side_free(struct tg_side *s)
{
    if (s->drbg != NULL)
        OSSL_PROVIDER_unload(s->drbg);
    if (s->deflt != NULL)
        OSSL_PROVIDER_unload(s->deflt);
    OSSL_LIB_CTX_free(s->lib);
    memset(s, 0, sizeof(*s));
}

/* Creates a library context whose every DRBG is the keystream of
 * (seed, side).  Returns false (message on stderr) on failure. */
static bool tg_side_init(struct tg_side *s, uint64_t seed, uint8_t side)
{
    static const char label[16] = {'s', 'm', 't', 'p', 's', 'c', 'o', 'p',
                                   'e', '-', 't', 'l', 's', 'g', 'e', 'n'};
    struct tg_prov *pv;

    memset(s, 0, sizeof(*s));
    if ((s->lib = OSSL_LIB_CTX_new()) == NULL ||
        !OSSL_PROVIDER_add_builtin(s->lib, TG_PROV_NAME, tg_prov_init) ||
        (s->deflt = OSSL_PROVIDER_load(s->lib, "default")) == NULL ||
        (s->drbg = OSSL_PROVIDER_load(s->lib, TG_PROV_NAME)) == NULL ||
        (pv = OSSL_PROVIDER_get0_provider_ctx(s->drbg)) == NULL) {
        tg_err("cannot set up an OpenSSL library context");
        tg_side_free(s);
        return false;
    }
    /* key = label || seed (little endian) || zeros; the side goes into the
     * nonce of every stream. */
    memcpy(pv->key, label, sizeof(label));
    for (int i = 0; i < 8; i++)
        pv->key[16 + i] = (uint8_t)(seed >> (8 * i));
    pv->side = side;
    pv->keyed = true;
    /* Create the hierarchy now, in a fixed order, so each DRBG's stream index
     * does not depend on which OpenSSL function happens to draw first. */
    if (!RAND_set_seed_source_type(s->lib, TG_RAND_NAME, NULL) ||
        !RAND_set_DRBG_type(s->lib, TG_RAND_NAME, NULL, NULL, NULL) ||
        RAND_get0_primary(s->lib) == NULL || RAND_get0_public(s->lib) == NULL ||
        RAND_get0_private(s->lib) == NULL) {
        tg_err("cannot install the deterministic DRBG");
        tg_side_free(s);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Certificates                                                              */

struct tlsgen_ctx {
    struct tg_side cli;
    struct tg_side srv;
    SSL_CTX *cctx;
    SSL_CTX *sctx;
    X509 *leaf; /* own reference to the server certificate */
    uint8_t leaf_sha256[32];
    char *sni; /* owned copy of opts.sni, or NULL */
};

static EVP_PKEY *tg_keygen(OSSL_LIB_CTX *lib, bool ec)
{
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(lib, ec ? "EC" : "RSA", NULL);
    EVP_PKEY *k = NULL;
    if (kc == NULL || EVP_PKEY_keygen_init(kc) <= 0 ||
        (ec ? EVP_PKEY_CTX_set_group_name(kc, "P-256")
            : EVP_PKEY_CTX_set_rsa_keygen_bits(kc, 2048)) <= 0 ||
        EVP_PKEY_generate(kc, &k) <= 0) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    EVP_PKEY_CTX_free(kc);
    return k;
}

static bool tg_set_time(X509 *x, int64_t nb, int64_t na)
{
    ASN1_TIME *b = ASN1_TIME_set(NULL, (time_t)nb);
    ASN1_TIME *a = ASN1_TIME_set(NULL, (time_t)na);
    bool ok = b != NULL && a != NULL && X509_set1_notBefore(x, b) && X509_set1_notAfter(x, a);
    ASN1_TIME_free(b);
    ASN1_TIME_free(a);
    return ok;
}

static bool tg_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    bool ok;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value)) == NULL)
        return false;
    ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static bool tg_add_san(X509 *x, const char *dns)
{
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    bool ok = false;
    if (gens == NULL || gn == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, dns, -1))
        goto out;
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    ia5 = NULL;
    if (!sk_GENERAL_NAME_push(gens, gn))
        goto out;
    gn = NULL;
    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
out:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return ok;
}

/* Builds and signs one certificate.  issuer/issuer_key NULL: self-signed CA
 * (is_ca) or self-signed leaf. */
static X509 *tg_make_cert(OSSL_LIB_CTX *lib, const struct tlsgen_opts *o, const char *cn,
                          EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool is_ca)
{
    X509 *x = X509_new_ex(lib, NULL);
    X509_NAME *name = X509_NAME_new();
    uint8_t serial[TG_SERIAL_LEN];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    bool ok = false;

    if (x == NULL || name == NULL || !X509_set_version(x, X509_VERSION_3))
        goto out;
    if (RAND_bytes_ex(lib, serial, sizeof(serial), 0) != 1)
        goto out;
    serial[0] &= 0x7f;
    serial[0] |= 0x01; /* positive and exactly TG_SERIAL_LEN octets */
    if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
        (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL || !X509_set_serialNumber(x, sn))
        goto out;
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
        goto out;
    if (!tg_set_time(x, o->not_before, o->not_after) || !X509_set_pubkey(x, key))
        goto out;
    X509 *iss = issuer ? issuer : x;
    if (is_ca) {
        if (!tg_add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE") ||
            !tg_add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign") ||
            !tg_add_ext(x, iss, NID_subject_key_identifier, "hash"))
            goto out;
    } else {
        if (!tg_add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE") ||
            !tg_add_ext(x, iss, NID_key_usage,
                        o->ec ? "critical,digitalSignature"
                              : "critical,digitalSignature,keyEncipherment") ||
            !tg_add_ext(x, iss, NID_ext_key_usage, "serverAuth") ||
            !tg_add_ext(x, iss, NID_subject_key_identifier, "hash") || !tg_add_san(x, cn))
            goto out;
        if (issuer != NULL && !tg_add_ext(x, iss, NID_authority_key_identifier, "keyid:always"))
            goto out;
    }
    ok = X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
out:
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* Generates the server key and certificate (and CA) into sctx. */
static bool tg_generate(struct tlsgen_ctx *c, const struct tlsgen_opts *o)
{
    OSSL_LIB_CTX *lib = c->srv.lib;
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    bool ok = false;

    if (o->cn == NULL || o->cn[0] == 0) {
        fprintf(stderr, "tlsgen: a generated certificate needs a CN\n");
        return false;
    }
    if (o->not_before < TG_TIME_MIN || o->not_before > TG_TIME_MAX || o->not_after < TG_TIME_MIN ||
        o->not_after > TG_TIME_MAX) {
        fprintf(stderr, "tlsgen: validity outside years 1-9999\n");
        return false;
    }
    if (o->issuer_cn != NULL) {
        if ((cakey = tg_keygen(lib, o->ec)) == NULL ||
            (ca = tg_make_cert(lib, o, o->issuer_cn, cakey, NULL, NULL, true)) == NULL)
            goto out;
    }
    if ((key = tg_keygen(lib, o->ec)) == NULL ||
        (leaf = tg_make_cert(lib, o, o->cn, key, ca, cakey, false)) == NULL)
        goto out;
    if (SSL_CTX_use_certificate(c->sctx, leaf) != 1 || SSL_CTX_use_PrivateKey(c->sctx, key) != 1)
        goto out;
    if (ca != NULL && SSL_CTX_add1_chain_cert(c->sctx, ca) != 1)
        goto out;
    c->leaf = leaf;
    leaf = NULL;
    ok = true;
out:
    if (!ok)
        tg_err("cannot generate the server certificate");
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cakey);
    return ok;
}

/* Refuses to prompt for a passphrase: an encrypted key fails to load. */
static int tg_no_passwd(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static bool tg_load(struct tlsgen_ctx *c, const struct tlsgen_opts *o)
{
    X509 *leaf;
    if (o->key_pem == NULL) {
        fprintf(stderr, "tlsgen: cert_pem given without key_pem\n");
        return false;
    }
    SSL_CTX_set_default_passwd_cb(c->sctx, tg_no_passwd);
    if (SSL_CTX_use_certificate_chain_file(c->sctx, o->cert_pem) != 1) {
        fprintf(stderr, "tlsgen: cannot load certificate %s\n", o->cert_pem);
        ERR_print_errors_fp(stderr);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(c->sctx, o->key_pem, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->sctx) != 1) {
        fprintf(stderr, "tlsgen: cannot load key %s (or it does not match %s)\n", o->key_pem,
                o->cert_pem);
        ERR_print_errors_fp(stderr);
        return false;
    }
    if ((leaf = SSL_CTX_get0_certificate(c->sctx)) == NULL || !X509_up_ref(leaf))
        return false;
    c->leaf = leaf;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */

/* OpenSSL 3.0's built-in supported groups and signature algorithms, in its
 * order (what a ClientHello carries when nothing is configured).  Set
 * explicitly because a system openssl.cnf may change the defaults.  Not const:
 * OpenSSL's SSL_CTX_set1_*_list() macros cast their argument to char *
 * (SSL_CTX_ctrl() takes void *), which -Wcast-qual rejects for a const one;
 * OpenSSL only reads them. */
static char tg_groups[] =
    "x25519:secp256r1:x448:secp521r1:secp384r1:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192";
static char tg_sigalgs[] =
    "ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ecdsa_secp521r1_sha512:ed25519:ed448:"
    "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"
    "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"
    "rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512:"
    "ECDSA+SHA224:RSA+SHA224:DSA+SHA224:DSA+SHA256:DSA+SHA384:DSA+SHA512";

/* Settings both SSL_CTXs share, all explicit so a system-wide openssl.cnf
 * (its ssl_conf section is applied by SSL_CTX_new_ex) cannot change them. */
static bool tg_config(SSL_CTX *s, const struct tlsgen_opts *o)
{
    int v = o->version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    const char *list = OSSL_default_cipher_list();
    const char *suites = OSSL_default_ciphersuites();

    if (o->cipher != NULL) {
        if (o->version == 12)
            list = o->cipher;
        else
            suites = o->cipher;
    }
    SSL_CTX_clear_options(s, SSL_CTX_get_options(s));
    SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
    SSL_CTX_set_security_level(s, 2);
    SSL_CTX_set_mode(s, SSL_MODE_NO_AUTO_CHAIN); /* send exactly the configured chain */
    if (!SSL_CTX_set_min_proto_version(s, v) || !SSL_CTX_set_max_proto_version(s, v) ||
        !SSL_CTX_set_num_tickets(s, 0) || !SSL_CTX_set_block_padding(s, 1) ||
        SSL_CTX_set_cipher_list(s, list) != 1 || SSL_CTX_set_ciphersuites(s, suites) != 1 ||
        SSL_CTX_set1_groups_list(s, tg_groups) != 1 ||
        SSL_CTX_set1_sigalgs_list(s, tg_sigalgs) != 1) {
        fprintf(stderr, "tlsgen: bad version or cipher setting (%s)\n",
                o->cipher ? o->cipher : "defaults");
        ERR_print_errors_fp(stderr);
        return false;
    }
    return true;
}

/* Creates the pair of SSL_CTXs with the server's key and certificate: loaded
 * when cert_pem is set (cn, issuer_cn, ec and the validity are then unused),
 * else generated.  opts.cipher is a cipher list for TLS 1.2 and a TLS 1.3
 * ciphersuite list for 1.3.  Returns NULL on error (message on stderr); free
 * with tlsgen_ctx_free after every endpoint made from it.  The options'
 * strings are not referenced after the call. */
struct tlsgen_ctx *tlsgen_ctx_new(const struct tlsgen_opts *o)
{
    struct tlsgen_ctx *c;
    uint8_t *der = NULL;
    int len;

    if (o == NULL || (o->version != 12 && o->version != 13)) {
        fprintf(stderr, "tlsgen: version must be 12 or 13\n");
        return NULL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    if (o->sni != NULL && (c->sni = strdup(o->sni)) == NULL)
        goto fail;
    if (!tg_side_init(&c->cli, o->seed, 'c') || !tg_side_init(&c->srv, o->seed, 's'))
        goto fail;
    if ((c->cctx = SSL_CTX_new_ex(c->cli.lib, NULL, TLS_client_method())) == NULL ||
        (c->sctx = SSL_CTX_new_ex(c->srv.lib, NULL, TLS_server_method())) == NULL) {
        tg_err("cannot create SSL_CTX");
        goto fail;
    }
    if (!tg_config(c->cctx, o) || !tg_config(c->sctx, o))
        goto fail;
    SSL_CTX_set_verify(c->cctx, SSL_VERIFY_NONE, NULL);
    if (!(o->cert_pem != NULL ? tg_load(c, o) : tg_generate(c, o)))
        goto fail;
    if ((len = i2d_X509(c->leaf, &der)) <= 0 ||
        !EVP_Digest(der, (size_t)len, c->leaf_sha256, NULL, EVP_sha256(), NULL)) {
        tg_err("cannot hash the server certificate");
        goto fail;
    }
    OPENSSL_free(der);
    ERR_clear_error();
    return c;
fail:
    OPENSSL_free(der);
    tlsgen_ctx_free(c);
    ERR_clear_error();
    return NULL;
}

/* Frees the context (NULL is fine).  Its endpoints must be freed first. */
void tlsgen_ctx_free(struct tlsgen_ctx *c)
{
    if (c == NULL)
        return;
    X509_free(c->leaf);
    SSL_CTX_free(c->cctx);
    SSL_CTX_free(c->sctx);
    tg_side_free(&c->cli);
    tg_side_free(&c->srv);
    free(c->sni);
    free(c);
}

/* Copies the SHA-256 of the server certificate's DER encoding to out. */
void tlsgen_cert_sha256(const struct tlsgen_ctx *c, uint8_t out[32])
{
    memcpy(out, c->leaf_sha256, 32);
}

/* Writes the server (leaf) certificate as PEM to path; 0 on success, -1 on
 * any error (message on stderr). */
int tlsgen_write_cert(const struct tlsgen_ctx *c, const char *path)
{
    FILE *f = fopen(path, "w");
    int ok;
    if (f == NULL) {
        fprintf(stderr, "tlsgen: cannot write %s\n", path);
        return -1;
    }
    ok = PEM_write_X509(f, c->leaf);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "tlsgen: cannot write %s\n", path);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Endpoints                                                                 */

struct tlsgen_end {
    SSL *ssl;
    BIO *rbio; /* bytes from the peer (owned by ssl) */
    BIO *wbio; /* bytes to the peer (owned by ssl) */
    bool client;
    bool established;
    bool failed;
};

static struct tlsgen_end *tg_end_new(struct tlsgen_ctx *c, bool client)
{
    struct tlsgen_end *e;
    if (c == NULL || (e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->client = client;
    e->ssl = SSL_new(client ? c->cctx : c->sctx);
    e->rbio = BIO_new(BIO_s_mem());
    e->wbio = BIO_new(BIO_s_mem());
    if (e->ssl == NULL || e->rbio == NULL || e->wbio == NULL) {
        BIO_free(e->rbio);
        BIO_free(e->wbio);
        SSL_free(e->ssl);
        free(e);
        ERR_clear_error();
        return NULL;
    }
    /* An empty input BIO means "wait for more", never end of stream. */
    BIO_set_mem_eof_return(e->rbio, -1);
    SSL_set_bio(e->ssl, e->rbio, e->wbio);
    if (client) {
        SSL_set_connect_state(e->ssl);
        if (c->sni != NULL && !SSL_set_tlsext_host_name(e->ssl, c->sni)) {
            tlsgen_end_free(e);
            ERR_clear_error();
            return NULL;
        }
    } else {
        SSL_set_accept_state(e->ssl);
    }
    return e;
}

/* New client endpoint of c (NULL on error); free before c. */
struct tlsgen_end *tlsgen_client(struct tlsgen_ctx *c)
{
    return tg_end_new(c, true);
}

/* New server endpoint of c (NULL on error); free before c. */
struct tlsgen_end *tlsgen_server(struct tlsgen_ctx *c)
{
    return tg_end_new(c, false);
}

/* Frees an endpoint (NULL is fine). */
void tlsgen_end_free(struct tlsgen_end *e)
{
    if (e == NULL)
        return;
    SSL_free(e->ssl);
    free(e);
}

/* Internal, for tests: the endpoint's SSL object (owned by the endpoint). */
SSL *tlsgen__ssl(struct tlsgen_end *e);
SSL *tlsgen__ssl(struct tlsgen_end *e)
{
    return e->ssl;
}

/* Moves everything OpenSSL wrote to the peer into out (NULL: discard). */
static void tg_drain(struct tlsgen_end *e, struct sc_buf *out)
{
    uint8_t buf[TG_CHUNK];
    size_t got;
    while (BIO_ctrl_pending(e->wbio) > 0 && BIO_read_ex(e->wbio, buf, sizeof(buf), &got) &&
           got > 0) {
        if (out != NULL)
            sc_buf_append(out, buf, got);
    }
}

/* Classifies the result of an SSL call that returned ret: false and marks the
 * endpoint failed on a fatal error. */
static bool tg_check(struct tlsgen_end *e, int ret)
{
    switch (SSL_get_error(e->ssl, ret)) {
    case SSL_ERROR_NONE:
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_ZERO_RETURN:
        return true;
    default:
        e->failed = true;
        ERR_clear_error();
        return false;
    }
}

/* Advances the handshake, then reads whatever application data is complete. */
static void tg_pump(struct tlsgen_end *e, struct sc_buf *out, struct sc_buf *app)
{
    uint8_t buf[TG_CHUNK];
    size_t got;
    int r;

    if (!e->failed && !e->established) {
        ERR_clear_error();
        r = SSL_do_handshake(e->ssl);
        if (r == 1)
            e->established = true;
        else
            tg_check(e, r);
    }
    while (!e->failed && e->established) {
        ERR_clear_error();
        if (SSL_read_ex(e->ssl, buf, sizeof(buf), &got)) {
            if (app != NULL)
                sc_buf_append(app, buf, got);
            continue;
        }
        tg_check(e, 0);
        break;
    }
    tg_drain(e, out);
}

/* Client: starts the handshake, appending the ClientHello to out.  Does
 * nothing for a server endpoint or a started client. */
void tlsgen_start(struct tlsgen_end *e, struct sc_buf *out)
{
    if (e == NULL || !e->client || e->established || e->failed || SSL_in_before(e->ssl) == 0)
        return;
    tg_pump(e, out, NULL);
}

/* Feeds n peer bytes (any split) and appends this side's response to out and
 * decrypted application data to app (either may be NULL to discard).  Input
 * after a fatal error is ignored. */
void tlsgen_input(struct tlsgen_end *e, const uint8_t *p, size_t n, struct sc_buf *out,
                  struct sc_buf *app)
{
    if (e == NULL || e->failed)
        return;
    while (n > 0) {
        size_t put = 0;
        if (!BIO_write_ex(e->rbio, p, n, &put) || put == 0) {
            e->failed = true; /* out of memory: the stream is now incomplete */
            ERR_clear_error();
            return;
        }
        p += put;
        n -= put;
    }
    tg_pump(e, out, app);
}

/* True once this side completed the handshake. */
bool tlsgen_established(const struct tlsgen_end *e)
{
    return e != NULL && e->established;
}

/* True after a fatal error (an alert was sent or received). */
bool tlsgen_failed(const struct tlsgen_end *e)
{
    return e == NULL || e->failed;
}

/* Encrypts n bytes into records of at most max_record plaintext bytes each
 * (0: OpenSSL's maximum, 16384) and appends them to out.  Ignored unless the
 * handshake is complete and nothing failed. */
void tlsgen_write(struct tlsgen_end *e, const uint8_t *p, size_t n, size_t max_record,
                  struct sc_buf *out)
{
    if (e == NULL || !e->established || e->failed)
        return;
    if (max_record == 0 || max_record > TG_CHUNK)
        max_record = TG_CHUNK;
    while (n > 0) {
        size_t chunk = n < max_record ? n : max_record, put = 0;
        ERR_clear_error();
        int r = SSL_write_ex(e->ssl, p, chunk, &put);
        tg_drain(e, out);
        if (!r) {
            tg_check(e, r);
            return;
        }
        p += put;
        n -= put;
    }
}

/* Sends close_notify (once the handshake is complete), appending it to out. */
void tlsgen_close(struct tlsgen_end *e, struct sc_buf *out)
{
    if (e == NULL || !e->established || e->failed)
        return;
    ERR_clear_error();
    (void)SSL_shutdown(e->ssl);
    ERR_clear_error();
    tg_drain(e, out);
}

/* Negotiated protocol name ("TLSv1.2", "TLSv1.3"); static storage. */
const char *tlsgen_version(const struct tlsgen_end *e)
{
    return e != NULL ? SSL_get_version(e->ssl) : "";
}

/* Negotiated cipher's OpenSSL name, "" before the handshake; static storage. */
const char *tlsgen_cipher(const struct tlsgen_end *e)
{
    const SSL_CIPHER *ci = e != NULL ? SSL_get_current_cipher(e->ssl) : NULL;
    return ci != NULL ? SSL_CIPHER_get_name(ci) : "";
}
