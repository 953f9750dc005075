/* fuzz_replay: runs a fuzz target's LLVMFuzzerTestOneInput on each file
 * named on the command line: the corpus seeds and the inputs that once
 * crashed a target replay as ordinary tests in every build, sanitizers
 * included, without libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replays one file. @return 0, or -1 when it cannot be read. */
static int replay(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
        return -1;
    }
    {
        uint8_t *buf = NULL;
        size_t size = 0, cap = 0, n;
        uint8_t chunk[65536];
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (size + n > cap) {
                cap = (size + n) * 2;
                uint8_t *grown = realloc(buf, cap);
                if (grown == NULL) {
                    free(buf);
                    fclose(f);
                    return -1;
                }
                buf = grown;
            }
            memcpy(buf + size, chunk, n);
            size += n;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, size);
        free(buf);
    }
    return 0;
}

/* Each argument is an input file, or a directory of them. */
int main(int argc, char **argv) {
    int done = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d != NULL && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.') continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                if (replay(path) != 0) return 1;
                done++;
            }
            if (d != NULL) closedir(d);
        } else {
            if (replay(argv[i]) != 0) return 1;
            done++;
        }
    }
    printf("fuzz_replay: %d input(s) replayed without a crash\n", done);
    return done > 0 ? 0 : 1;
}
