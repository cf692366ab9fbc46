/* Fuzz target for the zdb client's parsers of untrusted text: NSINFO replies (from any
 * server the config points at), backend addresses (from config files) and server error
 * texts. The first input byte picks the parser, the rest is its input. Checked:
 *   - NSINFO: a parsed reply has the required fields; the free space never exceeds what
 *     any reported bound allows; parsing the same bytes twice gives the same struct;
 *   - addresses: an accepted address re-formatted in canonical form parses to the same
 *     result;
 *   - error texts map to one of the documented codes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdbclient/zdbclient.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_nsinfo(const uint8_t *data, size_t size)
{
    /* exact-size copy: a read past the end is caught by ASan */
    char *text = malloc(size ? size : 1);
    if (!text)
        return;
    memcpy(text, data, size);
    struct qs_zdb_nsinfo a, b;
    int rc = qs_zdb_nsinfo_parse(text, size, &a);
    CHECK(rc == 0 || rc == QS_EPROTO);
    CHECK(qs_zdb_nsinfo_parse(text, size, &b) == rc);
    if (rc == 0) {
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        CHECK(memchr(a.name, '\0', sizeof(a.name)) != NULL);
        CHECK(a.mode == QS_ZDB_MODE_UNKNOWN || a.mode == QS_ZDB_MODE_USER ||
              a.mode == QS_ZDB_MODE_SEQ);
        uint64_t f = qs_zdb_nsinfo_free(&a);
        CHECK(f <= a.data_disk_freespace_bytes);
        CHECK(f <= a.index_disk_freespace_bytes);
        if (a.data_limits_bytes != 0)
            CHECK(f <= a.data_limits_bytes);
    } else {
        CHECK(strstr(qs_err_msg(), "NSINFO") != NULL);
    }
    free(text);
}

static void fuzz_addr(const uint8_t *data, size_t size)
{
    char in[1024];
    size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;
    memcpy(in, data, n);
    in[n] = '\0';
    struct qs_zdb_addr a, b;
    int rc = qs_zdb_addr_parse(in, &a);
    CHECK(rc == 0 || rc == QS_EINVAL);
    if (rc != 0)
        return;
    char again[600];
    if (a.is_unix) {
        CHECK(a.path[0] == '/');
        snprintf(again, sizeof(again), "unix://%s", a.path);
    } else {
        CHECK(a.port >= 1 && a.port <= 65535);
        CHECK(a.host[0] != '\0');
        if (strchr(a.host, ':'))
            snprintf(again, sizeof(again), "[%s]:%u", a.host, a.port);
        else
            snprintf(again, sizeof(again), "%s:%u", a.host, a.port);
    }
    CHECK(qs_zdb_addr_parse(again, &b) == 0);
    CHECK(b.is_unix == a.is_unix && b.port == a.port);
    CHECK(strcmp(a.host, b.host) == 0 && strcmp(a.path, b.path) == 0);
}

static void fuzz_error(const uint8_t *data, size_t size)
{
    int code = qs_zdb_error_code((const char *)data, size);
    CHECK(code == QS_EFULL || code == QS_EDENIED || code == QS_EBUSY || code == QS_ENOTFOUND ||
          code == QS_EIO || code == QS_EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_nsinfo(data + 1, size - 1);
        break;
    case 1:
        fuzz_addr(data + 1, size - 1);
        break;
    default:
        fuzz_error(data + 1, size - 1);
        break;
    }
    return 0;
}
