/* Reply helpers for command handlers: append to the client's output buffer; when the
 * buffer limit is hit the client is closed instead of getting a truncated stream. */
#ifndef QSFS_ZDB_REPLY_H
#define QSFS_ZDB_REPLY_H

/* A write refused because the file system under the namespace is full (0-db's text,
 * which clients match as a prefix, then why). */
#define ZDB_ERR_DISKFULL "Cannot write data right now: disk full"

/* A read whose stored bytes fail their CRC ("Internal Error", as 0-db answers a failed
 * read, then why): damaged bytes are never answered as the value. */
#define ZDB_ERR_DAMAGED "Internal Error: stored value is damaged (CRC mismatch)"

#include "resp/resp.h"
#include "zdb/server.h"

static inline void reply_check(struct zdb_client *c, int rc)
{
    if (rc < 0)
        c->closing = true;
}
static inline void reply_status(struct zdb_client *c, const char *s)
{
    reply_check(c, resp_add_status(&c->out, s));
}
static inline void reply_error(struct zdb_client *c, const char *s)
{
    reply_check(c, resp_add_error(&c->out, s));
}
static inline void reply_int(struct zdb_client *c, int64_t v)
{
    reply_check(c, resp_add_int(&c->out, v));
}
static inline void reply_bulk(struct zdb_client *c, const void *p, size_t n)
{
    reply_check(c, resp_add_bulk(&c->out, p, n));
}
static inline void reply_nil(struct zdb_client *c)
{
    reply_check(c, resp_add_nil(&c->out));
}
static inline void reply_array(struct zdb_client *c, size_t n)
{
    reply_check(c, resp_add_array(&c->out, n));
}

#endif
