/* fuzz_pcap.c - libFuzzer target for the whole offline pipeline: the input
 * is a pcap or pcapng file, analysed by an_run() (cli/analyze.h) from a
 * memory file, as `smtpscope analyze -q FILE` and then
 * `smtpscope analyze -q -f json --transcript FILE` would (with smaller
 * flow tables, and on the first pass a 4 KiB read buffer and at most 4
 * pcapng interfaces), output to /dev/null.
 *
 * Covers the capture reader, link/IP/TCP decoding, the flow tracker and
 * reassembly, the SMTP and TLS dissectors, the rules and both report
 * writers.  Checks the exit status is one of an_run()'s.
 */
#include <string.h>

#include "cli/analyze.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[FZ_PATH_MAX];
    int fd = fz_memfd(data, size, path);
    if (fd < 0)
        return 0;
    FILE *out = fopen("/dev/null", "w");
    if (!out) {
        close(fd);
        return 0;
    }
    char *files[1] = {path};
    for (int pass = 0; pass < 2; pass++) {
        struct an_options o;
        an_options_defaults(&o);
        o.quiet = true;
        /* The flow table is sized by max_flows: a few KiB of input hold a
         * few dozen flows, so a small table keeps each run cheap, and the
         * config file's minimum (16) on the first pass reaches eviction.
         * The first pass also reads through the smallest buffer (records
         * straddle refills) and allows few pcapng interfaces. */
        o.cap.max_flows = pass == 0 ? 16 : 4096;
        if (pass == 0) {
            o.reader.read_size = 4096;
            o.reader.max_interfaces = 4;
        }
        if (pass == 1) {
            /* What main() does for -f json --transcript. */
            o.rep.format = REP_JSON;
            o.rep.transcript = true;
            o.smtp.transcript_max = o.transcript_lines;
        }
        int rc = an_run(&o, files, 1, out);
        FZ_CHECK(rc >= 0 && rc <= 2);
        heur_config_free(&o.heur);
    }
    fclose(out);
    close(fd);
    return 0;
}
