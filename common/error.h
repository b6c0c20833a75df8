/* error.h - the one table of error codes shared by every module.
 *
 * Functions that can fail return 0 or a positive count on success and one of
 * these negative codes on failure (libuv style).  "Need more input" is never
 * an error: incremental parsers report it through their own return value.
 */
#ifndef SC_COMMON_ERROR_H
#define SC_COMMON_ERROR_H

enum sc_err {
    SC_OK = 0,
    SC_ENOMEM = -1,    /* an allocation failed */
    SC_EIO = -2,       /* read or write failed; errno has the detail */
    SC_EFORMAT = -3,   /* input is not in a format we read */
    SC_ETRUNC = -4,    /* input ends in the middle of a record */
    SC_ECORRUPT = -5,  /* a record is malformed beyond recovery */
    SC_ELIMIT = -6,    /* a named limit was exceeded */
    SC_EINVAL = -7,    /* invalid argument or option value */
    SC_EUNSUPP = -8,   /* valid input using a feature we do not implement */
    SC_ERR_COUNT_ = 9, /* number of codes including SC_OK */
};

/* Returns a static, human-readable sentence fragment for err (never NULL). */
const char *sc_strerror(int err);

#endif
