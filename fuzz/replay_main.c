/* replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput() once per
 * file, for builds without libFuzzer, so the seed corpora and the
 * reproducers of past crashes run as ordinary tests (and under ASan/UBSan
 * in the sanitizer build).
 *
 * Usage: fuzz_TARGET [--max-size N] FILE|DIR...
 * Directories are walked recursively in byte order of their entries' names
 * (names starting with "." are skipped); with --max-size, files larger than
 * N bytes are skipped.  Each input is read into a buffer of exactly its size,
 * as libFuzzer does, so a read past the end is caught by ASan.  Exit status:
 * 0 when at least one input ran and every path could be read, 1 otherwise
 * (a crash ends the process as the crash does).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"

/* Files larger than this are refused whatever --max-size says: libFuzzer's
 * own default -max_len is far below it, and a corpus never holds such files. */
#define REPLAY_HARD_MAX (64u * 1024 * 1024)

/* Directory depth followed; a corpus is flat, pcaps/ one level deep. */
#define REPLAY_DEPTH_MAX 16

struct replay {
    size_t max_size;
    unsigned long ran;
    unsigned long skipped;
    int errors;
};

static int replay_file(struct replay *r, const char *path, size_t size)
{
    if (size > r->max_size) {
        r->skipped++;
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* Exactly `size` bytes, so ASan sees a read past the input's end; one
     * byte for the empty input, which must still be a valid pointer. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        fprintf(stderr, "replay: %s: out of memory\n", path);
        return -1;
    }
    size_t got = size ? fread(buf, 1, size, f) : 0;
    int rc = ferror(f) || got != size ? -1 : 0;
    fclose(f);
    if (rc != 0) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(buf);
        return -1;
    }
    printf("replay: %s (%zu bytes)\n", path, size);
    fflush(stdout);
    (void)LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    r->ran++;
    return 0;
}

static int replay_names(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int replay_path(struct replay *r, const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > REPLAY_HARD_MAX) {
            r->skipped++;
            return 0;
        }
        return replay_file(r, path, (size_t)st.st_size);
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    if (depth >= REPLAY_DEPTH_MAX) {
        fprintf(stderr, "replay: %s: directories nested too deep\n", path);
        return -1;
    }
    struct dirent **ents;
    int n = scandir(path, &ents, replay_names, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path) + 1 + strlen(ents[i]->d_name) + 1;
        char *sub = malloc(len);
        if (!sub) {
            rc = -1;
        } else {
            snprintf(sub, len, "%s/%s", path, ents[i]->d_name);
            if (replay_path(r, sub, depth + 1) != 0)
                rc = -1;
            free(sub);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int main(int argc, char **argv)
{
    struct replay r = {REPLAY_HARD_MAX, 0, 0, 0};
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--max-size") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[i + 1], &end, 10);
        if (errno || end == argv[i + 1] || *end || v > REPLAY_HARD_MAX) {
            fprintf(stderr, "replay: --max-size: \"%s\" is not a size up to %u\n", argv[i + 1],
                    REPLAY_HARD_MAX);
            return 1;
        }
        r.max_size = (size_t)v;
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [--max-size N] FILE|DIR...\n", argv[0]);
        return 1;
    }
    for (; i < argc; i++)
        if (replay_path(&r, argv[i], 0) != 0)
            r.errors++;
    printf("replay: %lu inputs ran, %lu skipped (over the size limit)\n", r.ran, r.skipped);
    if (r.ran == 0)
        fprintf(stderr, "replay: no input ran\n");
    return r.errors || r.ran == 0 ? 1 : 0;
}
