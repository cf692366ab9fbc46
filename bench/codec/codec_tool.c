/* codec_tool: encode a file into a directory of shard files and back, for manual tests,
 * the reference-reader cross-check (scripts/codec_ref_decode.py) and fuzz seeds.
 *
 *   codec_tool encode [opts] IN DIR      writes DIR/desc and DIR/CHUNK.SHARD
 *   codec_tool decode [opts] DIR OUT     missing shard files are erasures
 *   codec_tool fuzzseed [opts] IN FILE   one input for fuzz/codec_decode.c
 * opts: -k K -m M -c CHUNK -z none|snappy|zstd|lz4 -w WORKERS -K KEYHEX -I FILEIDHEX
 *       -d "i,j,.." (fuzzseed: drop these shards of every chunk)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/compress.h"
#include "codec/decoder.h"
#include "codec/encoder.h"
#include "util/mem.h"

/* The fuzz target's fixed key and file id (fuzz/codec_decode.c). */
static const uint8_t fuzz_key[32] = "qsfs fuzz key, not a secret....";
static const uint8_t fuzz_id[16] = "fuzz-file-id-01";

struct tool {
    const char *dir;
    FILE *seed;
    uint8_t drop[QS_CODEC_MAX_SHARDS];
};

static int hexbytes(const char *h, uint8_t *out, size_t n)
{
    if (strlen(h) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "codec_tool: cannot write %s: %s\n", path, strerror(errno));
        return QS_EIO;
    }
    return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

static int enc_sink(void *ud, const struct qs_enc_chunk *c)
{
    struct tool *t = ud;
    for (unsigned i = 0; i < c->nshards; i++) {
        if (t->seed) {
            uint8_t l[2];
            if (t->drop[i]) {
                qs_put16(l, 0xffff);
                fwrite(l, 1, 2, t->seed);
                continue;
            }
            qs_put16(l, (uint16_t)c->shard_len);
            fwrite(l, 1, 2, t->seed);
            fwrite(c->shard[i], 1, c->shard_len, t->seed);
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%llu.%u", t->dir, (unsigned long long)c->index, i);
        int rc = write_file(path, c->shard[i], c->shard_len);
        if (rc)
            return rc;
    }
    return 0;
}

static int dec_sink(void *ud, const struct qs_dec_chunk *c)
{
    FILE *out = ud;
    if (c->len && fwrite(c->data, 1, c->len, out) != c->len)
        return QS_EIO;
    for (unsigned i = 0; i < c->nshards; i++)
        if (c->state[i] == QS_SHARD_CORRUPT)
            fprintf(stderr, "chunk %llu: shard %u corrupt\n", (unsigned long long)c->index, i);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: codec_tool encode|decode|fuzzseed [-k K] [-m M] [-c CHUNK] "
                    "[-z METHOD] [-w WORKERS] [-K KEYHEX] [-I IDHEX] [-d LIST] A B\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    struct qs_encoder_opts o;
    qs_encoder_opts_default(&o);
    uint8_t key[32], id[16];
    memcpy(key, fuzz_key, 32);
    memcpy(id, fuzz_id, 16);
    int have_id = 0;
    struct tool t = {0};
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "k:m:c:z:w:K:I:d:")) != -1) {
        switch (c) {
        case 'k':
            o.k = (unsigned)atoi(optarg);
            break;
        case 'm':
            o.m = (unsigned)atoi(optarg);
            break;
        case 'c':
            o.chunk_size = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'z':
            if (qs_compress_parse(optarg, &o.compress) != 0)
                usage();
            break;
        case 'w':
            o.workers = atoi(optarg);
            break;
        case 'K':
            if (hexbytes(optarg, key, 32) != 0)
                usage();
            break;
        case 'I':
            if (hexbytes(optarg, id, 16) != 0)
                usage();
            have_id = 1;
            break;
        case 'd':
            for (char *p = optarg; *p;) {
                unsigned long v = strtoul(p, &p, 10);
                if (v < QS_CODEC_MAX_SHARDS)
                    t.drop[v] = 1;
                if (*p == ',')
                    p++;
                else
                    break;
            }
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 2)
        usage();
    const char *a = argv[optind], *b = argv[optind + 1];
    int rc;
    if (strcmp(cmd, "encode") == 0 || strcmp(cmd, "fuzzseed") == 0) {
        int seed = cmd[0] == 'f';
        if (seed || have_id)
            o.file_id = id;
        size_t len;
        uint8_t *in = read_file(a, &len);
        if (!in) {
            fprintf(stderr, "codec_tool: cannot read %s\n", a);
            return 1;
        }
        if (seed) {
            if (!(t.seed = fopen(b, "wb")))
                return 1;
            /* Header: mode, k, m, chunk size (see fuzz/codec_decode.c). */
            uint8_t h[5] = {1, (uint8_t)(o.k - 1), (uint8_t)(o.m - 1), 0, 0};
            qs_put16(h + 3, (uint16_t)(o.chunk_size - 16));
            fwrite(h, 1, 5, t.seed);
        } else {
            t.dir = b;
        }
        struct qs_encoder *e;
        struct qs_codec_summary sum;
        rc = qs_encoder_new(&e, &o, key, enc_sink, &t);
        if (!rc) {
            uint8_t d[QS_CODEC_DESC_LEN];
            qs_codec_desc_encode(qs_encoder_desc(e), d);
            char path[4096];
            snprintf(path, sizeof(path), "%s/desc", b);
            if (!seed)
                rc = write_file(path, d, sizeof(d));
            if (!rc)
                rc = qs_encoder_write(e, in, len);
            int frc = qs_encoder_finish(e, &sum);
            rc = rc ? rc : frc;
            qs_encoder_free(e);
        }
        free(in);
        if (t.seed && fclose(t.seed) != 0)
            rc = QS_EIO;
        if (rc) {
            fprintf(stderr, "codec_tool: %s\n", qs_err_msg());
            return 1;
        }
        for (int i = 0; i < 16; i++)
            printf("%02x", sum.digest[i]);
        printf(" %llu bytes %llu chunks\n", (unsigned long long)sum.size,
               (unsigned long long)sum.chunks);
        return 0;
    }
    if (strcmp(cmd, "decode") == 0) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/desc", a);
        size_t dlen;
        uint8_t *draw = read_file(path, &dlen);
        struct qs_codec_desc desc;
        if (!draw || qs_codec_desc_decode(&desc, draw, dlen) != 0) {
            fprintf(stderr, "codec_tool: bad descriptor %s: %s\n", path, qs_err_msg());
            return 1;
        }
        free(draw);
        FILE *out = fopen(b, "wb");
        if (!out)
            return 1;
        struct qs_decoder_opts dopt;
        qs_decoder_opts_default(&dopt);
        dopt.workers = o.workers;
        struct qs_decoder *d;
        rc = qs_decoder_new(&d, &desc, key, &dopt, dec_sink, out);
        unsigned n = desc.k + desc.m;
        for (unsigned long long j = 0; !rc; j++) {
            uint8_t *sh[QS_CODEC_MAX_SHARDS];
            size_t len[QS_CODEC_MAX_SHARDS];
            unsigned found = 0;
            for (unsigned i = 0; i < n; i++) {
                snprintf(path, sizeof(path), "%s/%llu.%u", a, j, i);
                sh[i] = read_file(path, &len[i]);
                found += sh[i] != NULL;
            }
            if (found)
                rc = qs_decoder_feed(d, (const uint8_t *const *)sh, len);
            for (unsigned i = 0; i < n; i++)
                free(sh[i]);
            if (!found)
                break;
        }
        struct qs_codec_summary sum;
        if (!rc)
            rc = qs_decoder_finish(d, &sum);
        qs_decoder_free(d);
        fclose(out);
        if (rc) {
            fprintf(stderr, "codec_tool: %s: %s\n", qs_err_name(rc), qs_err_msg());
            return 1;
        }
        for (int i = 0; i < 16; i++)
            printf("%02x", sum.digest[i]);
        printf(" %llu bytes %llu chunks\n", (unsigned long long)sum.size,
               (unsigned long long)sum.chunks);
        return 0;
    }
    usage();
    return 2;
}
