/* config.h - the YAML configuration file (-c FILE.yaml).
 *
 * One mapping; every key is optional and unknown keys are errors (a typo
 * must not silently do nothing):
 *
 *   ports: [25, 587, 2525]            # or "25,587,2500-2510"
 *   tls_ports: [465]                  # implicit TLS (RFC 8314); [] for none
 *   fail_on: low                      # exit 1 at this severity or above;
 *                                     # info, low, medium, high or never
 *   rules:                            # per rule id
 *     starttls_failed: {enabled: false}
 *     banner_masked: {severity: high}
 *   thresholds:                       # SIGNATURES.md A7, the ASA's default map
 *     cmd_line_max: 512
 *     rcpt_max: 100
 *     header_line_max: 998
 *     sender_max: 320
 *     filename_max: 255
 *   timeouts:
 *     idle: 600                       # seconds of capture time
 *   limits:
 *     max_flows: 262144
 *     transcript_lines: 100000        # with --transcript
 *   signatures:                       # POSIX extended regular expressions
 *     - id: legacy_gateway
 *       target: banner                # banner, ehlo, reply or command
 *       pattern: "^220 .*MailGate"
 *       severity: medium
 *       explanation: "The old gateway answers instead of the server."
 *   no_tls_servers: ["192.0.2.25", "198.51.100.7:25"]
 *
 * Signature patterns are compiled by common/ere.h: POSIX extended
 * expressions matched in linear time; patterns it refuses (back-references,
 * bounds expanding past ERE_PROG_MAX instructions, ...) fail the load.
 *
 * Errors name the file, line and column: "FILE:LINE:COL: what is wrong".
 */
#ifndef SC_CLI_CONFIG_H
#define SC_CLI_CONFIG_H

#include <stddef.h>

#include "cli/analyze.h"

/* Bytes of an error message from cfg_load. */
#define CFG_ERR_MAX 512

/* Applies the file at path to o (whose defaults are already set).  Returns 0,
 * or -1 with a message in err. */
int cfg_load(const char *path, struct an_options *o, char *err, size_t errlen);

/* Same over the n bytes at p (not NUL-terminated, not retained); `name`
 * stands for the path in error messages.  Returns 0, or -1 with a message in
 * err.  Whatever was applied before an error stays in o (heur_config_free
 * releases it). */
int cfg_load_mem(const char *p, size_t n, const char *name, struct an_options *o, char *err,
                 size_t errlen);

/* Parses "25,587,2000-2010" into the port bitmap; false if malformed (the
 * bitmap is then unchanged).  An empty string is allowed when allow_empty. */
bool cfg_parse_ports(const char *s, uint8_t bitmap[CAP_PORTS_BITMAP_BYTES], bool allow_empty);

#endif
