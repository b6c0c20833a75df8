/* error.c - names for the shared error codes. */
#include "common/error.h"

static const char *const sc__errnames[SC_ERR_COUNT_] = {
    "success",     "out of memory", "input/output error", "not a pcap or pcapng file",
    "truncated",   "corrupt",       "limit exceeded",     "invalid argument",
    "unsupported",
};

const char *sc_strerror(int err)
{
    int i = -err;
    if (i < 0 || i >= SC_ERR_COUNT_)
        return "unknown error";
    return sc__errnames[i];
}
