#include "format.h"

#include <string.h>

#include "util/mem.h"

void zdb_idx_header_encode(uint8_t out[ZDB_IDX_HEADER_SIZE], const struct zdb_idx_header *h)
{
    memcpy(out, ZDB_IDX_MAGIC, 4);
    qs_put32(out + 4, h->version);
    qs_put64(out + 8, h->created);
    qs_put64(out + 16, h->opened);
    qs_put32(out + 24, h->fileid);
    out[28] = h->mode;
}

int zdb_idx_header_decode(struct zdb_idx_header *h, const uint8_t *in, size_t len)
{
    if (len < ZDB_IDX_HEADER_SIZE)
        return qs_err_set(QS_ECORRUPT, "index header truncated (%zu bytes)", len);
    if (memcmp(in, ZDB_IDX_MAGIC, 4) != 0)
        return qs_err_set(QS_ECORRUPT, "index header magic mismatch");
    h->version = qs_le32(in + 4);
    if (h->version != ZDB_IDX_VERSION)
        return qs_err_set(QS_ECORRUPT, "unsupported index version %u", h->version);
    h->created = qs_le64(in + 8);
    h->opened = qs_le64(in + 16);
    h->fileid = qs_le32(in + 24);
    h->mode = in[28];
    if (h->mode > ZDB_MODE_SEQ)
        return qs_err_set(QS_ECORRUPT, "unknown index mode %u", h->mode);
    return 0;
}

void zdb_idx_entry_encode(uint8_t out[ZDB_IDX_ENTRY_SIZE], const struct zdb_idx_entry *e)
{
    out[0] = e->keylen;
    qs_put32(out + 1, e->offset);
    qs_put32(out + 5, e->length);
    qs_put32(out + 9, e->previous);
    out[13] = e->flags;
    qs_put32(out + 14, e->dataid);
    qs_put32(out + 18, e->timestamp);
    qs_put32(out + 22, e->crc);
    qs_put32(out + 26, e->parentid);
    qs_put32(out + 30, e->parentoff);
}

int zdb_idx_entry_decode(struct zdb_idx_entry *e, const uint8_t *in, size_t len)
{
    if (len < ZDB_IDX_ENTRY_SIZE)
        return QS_EAGAIN;
    e->keylen = in[0];
    e->offset = qs_le32(in + 1);
    e->length = qs_le32(in + 5);
    e->previous = qs_le32(in + 9);
    e->flags = in[13];
    e->dataid = qs_le32(in + 14);
    e->timestamp = qs_le32(in + 18);
    e->crc = qs_le32(in + 22);
    e->parentid = qs_le32(in + 26);
    e->parentoff = qs_le32(in + 30);
    if (e->length > ZDB_MAX_PAYLOAD)
        return qs_err_set(QS_ECORRUPT, "index entry payload length %u too large", e->length);
    if (e->flags & ~ZDB_IDX_DELETED)
        return qs_err_set(QS_ECORRUPT, "index entry has unknown flags 0x%x", e->flags);
    return 0;
}

void zdb_dat_header_encode(uint8_t out[ZDB_DAT_HEADER_SIZE], const struct zdb_dat_header *h)
{
    memcpy(out, ZDB_DAT_MAGIC, 4);
    qs_put32(out + 4, h->version);
    qs_put64(out + 8, h->created);
    qs_put64(out + 16, h->opened);
    qs_put32(out + 24, h->fileid);
}

int zdb_dat_header_decode(struct zdb_dat_header *h, const uint8_t *in, size_t len)
{
    if (len < ZDB_DAT_HEADER_SIZE)
        return qs_err_set(QS_ECORRUPT, "data header truncated (%zu bytes)", len);
    if (memcmp(in, ZDB_DAT_MAGIC, 4) != 0)
        return qs_err_set(QS_ECORRUPT, "data header magic mismatch");
    h->version = qs_le32(in + 4);
    if (h->version != ZDB_DAT_VERSION)
        return qs_err_set(QS_ECORRUPT, "unsupported data version %u", h->version);
    h->created = qs_le64(in + 8);
    h->opened = qs_le64(in + 16);
    h->fileid = qs_le32(in + 24);
    return 0;
}

void zdb_dat_entry_encode(uint8_t out[ZDB_DAT_ENTRY_SIZE], const struct zdb_dat_entry *e)
{
    out[0] = e->keylen;
    qs_put32(out + 1, e->length);
    qs_put32(out + 5, e->previous);
    qs_put32(out + 9, e->crc);
    out[13] = e->flags;
    qs_put32(out + 14, e->timestamp);
}

int zdb_dat_entry_decode(struct zdb_dat_entry *e, const uint8_t *in, size_t len)
{
    if (len < ZDB_DAT_ENTRY_SIZE)
        return QS_EAGAIN;
    e->keylen = in[0];
    e->length = qs_le32(in + 1);
    e->previous = qs_le32(in + 5);
    e->crc = qs_le32(in + 9);
    e->flags = in[13];
    e->timestamp = qs_le32(in + 14);
    if (e->length > ZDB_MAX_PAYLOAD)
        return qs_err_set(QS_ECORRUPT, "data entry payload length %u too large", e->length);
    if (e->flags & ~(ZDB_DAT_DELETED | ZDB_DAT_TRUNCATED))
        return qs_err_set(QS_ECORRUPT, "data entry has unknown flags 0x%x", e->flags);
    return 0;
}

size_t zdb_nsfile_encode(uint8_t *out, size_t cap, const struct zdb_nsfile *f)
{
    size_t need = ZDB_NSFILE_HEADER_SIZE + f->namelen + f->passlen;
    if (cap < need)
        return 0;
    qs_put32(out, ZDB_NSFILE_VERSION);
    out[4] = f->namelen;
    out[5] = f->passlen;
    qs_put64(out + 6, f->maxsize);
    out[14] = f->flags | ZDB_NS_EXTENDED;
    memcpy(out + 15, f->name, f->namelen);
    memcpy(out + 15 + f->namelen, f->password, f->passlen);
    return need;
}

int zdb_nsfile_decode(struct zdb_nsfile *f, const uint8_t *in, size_t len)
{
    memset(f, 0, sizeof(*f));
    if (len < ZDB_NSFILE_HEADER_SIZE)
        return qs_err_set(QS_ECORRUPT, "namespace file truncated (%zu bytes)", len);
    uint32_t version = qs_le32(in);
    if (version != ZDB_NSFILE_VERSION)
        return qs_err_set(QS_ECORRUPT, "unsupported namespace file version %u", version);
    f->namelen = in[4];
    f->passlen = in[5];
    f->maxsize = qs_le64(in + 6);
    f->flags = in[14];
    if (len < (size_t)ZDB_NSFILE_HEADER_SIZE + f->namelen + f->passlen)
        return qs_err_set(QS_ECORRUPT, "namespace file shorter than its name and password");
    memcpy(f->name, in + 15, f->namelen);
    memcpy(f->password, in + 15 + f->namelen, f->passlen);
    f->name[f->namelen] = '\0';
    f->password[f->passlen] = '\0';
    return 0;
}
