/* `resprop imagenet-convert SRC DST --size S`. */
#include <stdio.h>
#include <string.h>

#include "bench/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "datasets/imagenet.h"

static void usage(FILE *f) {
    fprintf(f, "usage: resprop imagenet-convert SRC DST [--size S] [--shard-images N]\n"
               "  Converts the ILSVRC-2012 JPEG tree SRC (train/<wnid>/*.JPEG; val/ in class folders or flat with\n"
               "  LOC_val_solution.csv or val_labels.txt) into HDF5 shards DST/train-NNNNN.h5 and DST/val-NNNNN.h5:\n"
               "  shorter side resized to S, centre crop S x S, uint8 NHWC. Undecodable files are reported and\n"
               "  skipped with a count. Train on the result with --dataset imagenet --data-dir DST.\n"
               "  --size S           image size (default 64; 32, 64 or 256 are typical)\n"
               "  --shard-images N   images per shard (default 10000)\n");
}

int cmd_imagenet_convert(int argc, char **argv) {
    const char *src = NULL, *dst = NULL;
    long size = 64, shard = 10000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 < argc && strcmp(argv[i], "--size") == 0) {
            if (cli_parse_int("--size", argv[++i], 1, IMAGENET_MAX_SIZE, &size)) return EXIT_BAD_INPUT;
        } else if (i + 1 < argc && strcmp(argv[i], "--shard-images") == 0) {
            if (cli_parse_int("--shard-images", argv[++i], 1, 100000000, &shard)) return EXIT_BAD_INPUT;
        } else if (argv[i][0] != '-' && !src) src = argv[i];
        else if (argv[i][0] != '-' && !dst) dst = argv[i];
        else {
            log_msg(LOG_ERROR, "imagenet-convert: unexpected argument '%s'", argv[i]);
            usage(stderr);
            return EXIT_BAD_INPUT;
        }
    }
    if (!src || !dst) {
        log_msg(LOG_ERROR, "imagenet-convert: SRC and DST are required");
        usage(stderr);
        return EXIT_BAD_INPUT;
    }
    int skipped = 0;
    int rc = imagenet_convert(src, dst, (int)size, (int)shard, &skipped);
    if (rc) return rc == ERR_CONFIG || rc == ERR_IO || rc == ERR_FORMAT ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
    printf("converted %s -> %s at %ldx%ld (%d files skipped)\n", src, dst, size, size, skipped);
    return 0;
}
