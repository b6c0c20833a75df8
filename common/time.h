/* time.h - capture timestamps as signed nanoseconds since the Unix epoch.
 *
 * int64_t nanoseconds cover the years 1678..2262, which is every timestamp a
 * pcap or pcapng file can sensibly hold; readers clamp anything outside.
 */
#ifndef SC_COMMON_TIME_H
#define SC_COMMON_TIME_H

#include <stdint.h>

typedef int64_t sc_time;

#define SC_NS_PER_SEC INT64_C(1000000000)

/* Where a piece of data came from in the capture: the 1-based frame number
 * (as Wireshark counts) and that frame's timestamp. */
struct sc_meta {
    uint64_t frame;
    sc_time ts;
};

static inline double sc_time_to_double(sc_time t)
{
    return (double)t / 1e9;
}

static inline sc_time sc_time_from_sec(double s)
{
    return (sc_time)(s * 1e9);
}

#endif
