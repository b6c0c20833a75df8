/* rng.h - the synthesizer's deterministic pseudo-random numbers
 * (splitmix64 for seeding, xoshiro256** for the stream).
 *
 * Every random choice in a scenario (segment loss, think times, body text,
 * ports) comes from one of these generators seeded from the scenario's seed,
 * so the same scenario always produces byte-identical captures.  Not for
 * cryptography.
 */
#ifndef SC_SYNTH_RNG_H
#define SC_SYNTH_RNG_H

#include <stdint.h>

struct syn_rng {
    uint64_t s[4];
};

static inline uint64_t syn_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Seeds a generator; `stream` separates independent generators drawn from
 * the same scenario seed (one per session, per link...). */
static inline void syn_rng_seed(struct syn_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = syn_splitmix64(&x);
}

static inline uint64_t syn_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t syn_rng_next(struct syn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = syn_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = syn_rotl(s[3], 45);
    return result;
}

/* Uniform integer in [0, n) (n > 0). */
static inline uint64_t syn_rng_below(struct syn_rng *r, uint64_t n)
{
    return n ? syn_rng_next(r) % n : 0;
}

/* Uniform double in [0, 1). */
static inline double syn_rng_unit(struct syn_rng *r)
{
    return (double)(syn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* True with probability p. */
static inline int syn_rng_chance(struct syn_rng *r, double p)
{
    return p > 0 && syn_rng_unit(r) < p;
}

#endif
