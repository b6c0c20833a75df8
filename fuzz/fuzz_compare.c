/* fuzz_compare.c - libFuzzer target for `smtpscope compare` (cli/compare.h):
 * two small captures analysed, paired and diffed, JSON output to /dev/null.
 *
 * Input: a little-endian u16 k, then the rest R; the first capture is the
 * first k % (|R| + 1) bytes of R, the second what follows.  Covers
 * everything fuzz_pcap does for each side, plus session pairing, dialogue
 * alignment and the difference classes of compare/cmp.h.
 */
#include <string.h>

#include "cli/compare.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t rest = size - 2;
    size_t cut = (size_t)(data[0] | data[1] << 8) % (rest + 1);
    char path[2][FZ_PATH_MAX];
    int fd0 = fz_memfd(data + 2, cut, path[0]);
    if (fd0 < 0)
        return 0;
    int fd1 = fz_memfd(data + 2 + cut, rest - cut, path[1]);
    if (fd1 < 0) {
        close(fd0);
        return 0;
    }
    /* getopt_long may permute argv: give it writable copies. */
    char a0[] = "compare", a1[] = "-q", a2[] = "-f", a3[] = "json", a4[] = "-o", a5[] = "/dev/null";
    char *argv[] = {a0, a1, a2, a3, a4, a5, path[0], path[1], NULL};
    int rc = cli_compare(8, argv);
    FZ_CHECK(rc >= 0 && rc <= 2);
    close(fd0);
    close(fd1);
    return 0;
}
