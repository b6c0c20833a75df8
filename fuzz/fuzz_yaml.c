/* fuzz_yaml.c - libFuzzer target for the configuration loader: the input is
 * a YAML configuration file (cli/config.h) read through cfg_load_mem(), and
 * so through common/jv.h's YAML loader and libyaml.
 *
 * Checks that an error message names the file, as config.h promises, and
 * that everything a partial load kept is released by heur_config_free().
 * The input's first line, NUL-terminated, also goes to cfg_parse_ports().
 */
#include <string.h>

#include "cli/config.h"
#include "fuzz/fuzz.h"

#define FZ_NAME "fuzz.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct an_options o;
    an_options_defaults(&o);
    char err[CFG_ERR_MAX];
    err[0] = 0;
    if (cfg_load_mem((const char *)data, size, FZ_NAME, &o, err, sizeof(err)) != 0) {
        FZ_CHECK(memchr(err, 0, sizeof(err)) != NULL);
        FZ_CHECK(strncmp(err, FZ_NAME, strlen(FZ_NAME)) == 0);
    }
    heur_config_free(&o.heur);

    char line[64];
    size_t n = 0;
    while (n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n] != 0) {
        line[n] = (char)data[n];
        n++;
    }
    line[n] = 0;
    uint8_t bitmap[CAP_PORTS_BITMAP_BYTES];
    memset(bitmap, 0, sizeof(bitmap));
    bool ok = cfg_parse_ports(line, bitmap, true);
    FZ_CHECK(ok || (bitmap[0] == 0 && memcmp(bitmap, bitmap + 1, sizeof(bitmap) - 1) == 0));
    return 0;
}
