/* Fuzz target for zstor's config loader.
 *
 * The input is a config file. Loading must either fail with QS_EINVAL (or QS_ENOMEM) and a
 * message that starts with the file name, or give a config that keeps every promise of
 * config.h: shard counts in range, the meta backend count equal to data + parity shards,
 * every group non-empty, every backend with a parsed address and a namespace, no
 * duplicate backend. The redundancy check must then give 0 or QS_ETOOFEW with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_backend(const struct zstor_backend *b)
{
    CHECK(b->address && b->address[0]);
    CHECK(b->ns && b->ns[0]);
    CHECK(b->ns_given || strcmp(b->ns, ZSTOR_DEFAULT_NS) == 0);
    CHECK(b->line >= 1);
    switch (b->kind) {
    case ZSTOR_ADDR_TCP:
        CHECK(b->host && b->port >= 1 && !b->path);
        break;
    case ZSTOR_ADDR_UNIX:
    case ZSTOR_ADDR_DIR:
        CHECK(!b->host && b->path && b->path[0] == '/');
        break;
    default:
        CHECK(!"bad kind");
    }
}

static int same_backend(const struct zstor_backend *a, const struct zstor_backend *b)
{
    return strcmp(a->address, b->address) == 0 && strcmp(a->ns, b->ns) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    CHECK(text);
    if (size)
        memcpy(text, data, size);
    struct zstor_config *cfg = NULL;
    int rc = zstor_config_parse(text, size, "fuzz.toml", &cfg);
    free(text);
    if (rc) {
        CHECK(rc == QS_EINVAL || rc == QS_ENOMEM);
        CHECK(cfg == NULL);
        CHECK(strncmp(qs_err_msg(), "fuzz.toml:", 10) == 0);
        return 0;
    }
    CHECK(cfg->minimal_shards >= 1 && cfg->minimal_shards < cfg->expected_shards);
    CHECK(cfg->expected_shards <= 255);
    CHECK(cfg->lines.minimal_shards >= 1 && cfg->lines.expected_shards >= 1);
    CHECK(cfg->meta.prefix && cfg->meta.prefix[0]);
    CHECK(cfg->meta.data_shards >= 1 && cfg->meta.parity_shards >= 1);
    CHECK(cfg->meta.nbackends == cfg->meta.data_shards + cfg->meta.parity_shards);
    for (size_t i = 0; i < cfg->meta.nbackends; i++) {
        check_backend(&cfg->meta.backends[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(!same_backend(&cfg->meta.backends[i], &cfg->meta.backends[j]));
    }
    CHECK(cfg->ngroups >= 1);
    for (size_t g = 0; g < cfg->ngroups; g++) {
        CHECK(cfg->groups[g].nbackends >= 1);
        for (size_t i = 0; i < cfg->groups[g].nbackends; i++) {
            const struct zstor_backend *b = &cfg->groups[g].backends[i];
            check_backend(b);
            for (size_t h = 0; h <= g; h++)
                for (size_t j = 0; j < (h == g ? i : cfg->groups[h].nbackends); j++)
                    CHECK(!same_backend(b, &cfg->groups[h].backends[j]));
        }
    }
    CHECK(cfg->chunk_size >= 4096 && cfg->chunk_size <= QS_CODEC_CHUNK_MAX);
    CHECK(!cfg->socket || (cfg->queue_path && cfg->queue_path[0]));
    rc = zstor_config_check_redundancy(cfg);
    CHECK(rc == 0 || rc == QS_ETOOFEW || rc == QS_ENOMEM);
    if (rc == QS_ETOOFEW)
        CHECK(strncmp(qs_err_msg(), "fuzz.toml:", 10) == 0);
    zstor_config_free(cfg);
    return 0;
}
