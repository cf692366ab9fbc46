/* PING TIME AUTH INFO STOP DBSIZE */
#include <inttypes.h>
#include <stdbool.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "util/mem.h"
#include "zdb/commands.h"
#include "zdb/reply.h"

#define ZDB_PASS_MAX 128

int cmd_ping(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    reply_status(c, "PONG");
    return CMD_OK;
}

int cmd_time(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char s[32], us[32];
    int ns = snprintf(s, sizeof(s), "%lld", (long long)tv.tv_sec);
    int nu = snprintf(us, sizeof(us), "%lld", (long long)tv.tv_usec);
    reply_array(c, 2);
    reply_bulk(c, s, (size_t)ns);
    reply_bulk(c, us, (size_t)nu);
    return CMD_OK;
}

/* hex SHA-1 of "<nonce>:<password>" */
static void secure_hash(const char *nonce, const char *password, char out[41])
{
    char buf[17 + 1 + 256];
    int n = snprintf(buf, sizeof(buf), "%s:%s", nonce, password);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)buf, (size_t)n, md);
    qs_wipe(buf, sizeof(buf));
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Checks a SECURE hash against password using (and consuming) the client's nonce.
 * Returns 0 ok, or sends the error and returns CMD_FAILED / CMD_DENIED. */
int zdb_secure_check(struct zdb_client *c, const struct resp_arg *hash, const char *password);
int zdb_secure_check(struct zdb_client *c, const struct resp_arg *hash, const char *password)
{
    if (!c->nonce_set) {
        reply_error(c, "No CHALLENGE requested, secure authentication not available");
        return CMD_FAILED;
    }
    c->nonce_set = false; /* single use, right or wrong */
    if (hash->len != 40) {
        reply_error(c, "Invalid hash length");
        return CMD_FAILED;
    }
    char expect[41];
    secure_hash(c->nonce, password, expect);
    if (memcmp(expect, hash->ptr, 40) != 0) {
        reply_error(c, "Access denied");
        return CMD_DENIED;
    }
    return CMD_OK;
}

int cmd_auth(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    if (r->argc != 2 && r->argc != 3) {
        reply_error(c, "Unexpected arguments");
        return CMD_FAILED;
    }
    const struct resp_arg *a = r->argc == 3 ? &r->argv[2] : NULL;
    bool secure = r->argc == 3 && r->argv[1].len == 6 &&
                  strncasecmp((const char *)r->argv[1].ptr, "SECURE", 6) == 0;
    bool challenge =
        secure && a->len == 9 && strncasecmp((const char *)a->ptr, "CHALLENGE", 9) == 0;
    /* A challenge is also what SELECT ns SECURE needs: 0-db hands it out without --admin. */
    if (!srv->cfg->admin && !challenge) {
        reply_error(c, "Authentication disabled");
        return CMD_FAILED;
    }
    if (r->argc == 3) {
        if (!secure) {
            reply_error(c, "Unexpected arguments");
            return CMD_FAILED;
        }
        if (challenge) {
            uint8_t rnd[8];
            if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
                reply_error(c, "Internal Error");
                return CMD_FAILED;
            }
            for (int i = 0; i < 8; i++)
                snprintf(c->nonce + 2 * i, 3, "%02x", rnd[i]);
            c->nonce_set = true;
            reply_status(c, c->nonce);
            return CMD_OK;
        }
        int rc = zdb_secure_check(c, a, srv->cfg->admin);
        if (rc != CMD_OK)
            return rc;
        c->admin = true;
        reply_status(c, "OK");
        return CMD_OK;
    }
    const struct resp_arg *p = &r->argv[1];
    if (p->len > ZDB_PASS_MAX) {
        reply_error(c, "Password too long");
        return CMD_FAILED;
    }
    if (p->len != strlen(srv->cfg->admin) || memcmp(p->ptr, srv->cfg->admin, p->len) != 0) {
        reply_error(c, "Access denied");
        return CMD_DENIED;
    }
    c->admin = true;
    reply_status(c, "OK");
    return CMD_OK;
}

int cmd_dbsize(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    reply_int(c, (int64_t)c->ns->entries);
    return CMD_OK;
}

int cmd_stop(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    reply_error(c, "Unauthorized");
    return CMD_DENIED;
}

int cmd_info(struct zdb_server *srv, struct zdb_client *c, const struct resp_request *r)
{
    struct qs_buf b;
    qs_buf_init(&b, 64 * 1024);
    time_t now = time(NULL);
    const struct zdb_stats *s = &srv->stats;
    struct zdb_ns_stats t = {0};
    for (size_t i = 0; i < srv->store->nns; i++) {
        const struct zdb_ns_stats *n = &srv->store->ns[i]->stats;
        t.index_read_failed += n->index_read_failed;
        t.index_write_failed += n->index_write_failed;
        t.data_read_failed += n->data_read_failed;
        t.data_write_failed += n->data_write_failed;
        t.index_read_bytes += n->index_read_bytes;
        t.index_write_bytes += n->index_write_bytes;
        t.data_read_bytes += n->data_read_bytes;
        t.data_write_bytes += n->data_write_bytes;
    }
#define MB(x) ((double)(x) / 1048576.0)
    int rc = qs_buf_appendf(
        &b,
        "# server\n"
        "server_name: 0-db (zdb)\n"
        "server_revision: qsfs-" QSFS_VERSION "\n"
        "engine_revision: qsfs-" QSFS_VERSION "\n"
        "instance_id: %s\n"
        "boot_time: %lld\n"
        "uptime: %lld\n"
        "\n# clients\n"
        "clients_lifetime: %" PRIu64 "\n"
        "\n# internals\n"
        "sequential_key_size: 8\n"
        "data_version: 3\n"
        "index_version: 4\n"
        "\n# stats\n"
        "commands_executed: %" PRIu64 "\n"
        "commands_failed: %" PRIu64 "\n"
        "commands_unauthorized: %" PRIu64 "\n"
        "index_disk_read_failed: %" PRIu64 "\n"
        "index_disk_write_failed: %" PRIu64 "\n"
        "data_disk_read_failed: %" PRIu64 "\n"
        "data_disk_write_failed: %" PRIu64 "\n"
        "index_disk_read_bytes: %" PRIu64 "\n"
        "index_disk_read_mb: %.2f\n"
        "index_disk_write_bytes: %" PRIu64 "\n"
        "index_disk_write_mb: %.2f\n"
        "data_disk_read_bytes: %" PRIu64 "\n"
        "data_disk_read_mb: %.2f\n"
        "data_disk_write_bytes: %" PRIu64 "\n"
        "data_disk_write_mb: %.2f\n"
        "network_rx_bytes: %" PRIu64 "\n"
        "network_rx_mb: %.2f\n"
        "network_tx_bytes: %" PRIu64 "\n"
        "network_tx_mb: %.2f\n",
        srv->instance_id, (long long)srv->boot_time, (long long)(now - srv->boot_time),
        s->clients_lifetime, s->commands_executed, s->commands_failed, s->commands_unauthorized,
        t.index_read_failed, t.index_write_failed, t.data_read_failed, t.data_write_failed,
        t.index_read_bytes, MB(t.index_read_bytes), t.index_write_bytes, MB(t.index_write_bytes),
        t.data_read_bytes, MB(t.data_read_bytes), t.data_write_bytes, MB(t.data_write_bytes),
        s->net_rx, MB(s->net_rx), s->net_tx, MB(s->net_tx));
#undef MB
    if (rc < 0)
        reply_error(c, "Internal Error");
    else
        reply_bulk(c, qs_buf_ptr(&b), b.len);
    qs_buf_free(&b);
    return rc < 0 ? CMD_FAILED : CMD_OK;
}
