/* The config loader's generic getters and messages (see private.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/private.h"

/* ---- messages ------------------------------------------------------------------------- */

/* "name:line: key: what" (no line when 0). */
int zcfg_bad(const struct ctx *c, unsigned line, const char *key, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line)
        return qs_err_set(QS_EINVAL, "%s:%u: %s: %s", c->name, line, key, msg);
    return qs_err_set(QS_EINVAL, "%s: %s: %s", c->name, key, msg);
}

int zcfg_nomem(void)
{
    return qs_err_set(QS_ENOMEM, "config: out of memory");
}

/* A key path for messages: path.key (or key at the root). */
const char *zcfg_join(char *buf, size_t size, const char *path, const char *key)
{
    snprintf(buf, size, "%s%s%s", path, *path ? "." : "", key);
    return buf;
}

/* A key from the file made safe for a one-line message. */
const char *zcfg_printable(const char *key, size_t len, char *buf, size_t size)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < size; i++) {
        unsigned char ch = (unsigned char)key[i];
        buf[k++] = ch >= 0x20 && ch != 0x7F ? (char)ch : '?';
    }
    if (len && k + 4 >= size)
        memcpy(buf + k, "...", 3), k += 3;
    buf[k] = '\0';
    return buf;
}

const char *zcfg_article(enum toml_type t)
{
    return t == TOML_ARRAY || t == TOML_INTEGER ? "an" : "a";
}

char *zcfg_dup_mem(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- generic getters ------------------------------------------------------------------ */

/* Every key of t must be in allowed (NULL-terminated). */
int zcfg_check_keys(const struct ctx *c, const struct toml_table *t, const char *path,
                    const char *const *allowed)
{
    for (size_t i = 0; i < t->len; i++) {
        const struct toml_kv *kv = &t->items[i];
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strlen(*a) == kv->keylen && memcmp(*a, kv->key, kv->keylen) == 0;
        if (!ok) {
            char pk[80], full[160];
            zcfg_printable(kv->key, kv->keylen, pk, sizeof(pk));
            return zcfg_bad(c, kv->value.line, zcfg_join(full, sizeof(full), path, pk),
                            "unknown key");
        }
    }
    return 0;
}

/* Looks key up in t; *v is NULL when absent (an error when required; table_line is the
 * line of t for that message). */
int zcfg_lookup(const struct ctx *c, const struct toml_table *t, const char *path,
                unsigned table_line, const char *key, bool required, enum toml_type type,
                const struct toml_value **v)
{
    char full[160];
    *v = toml_table_get(t, key);
    if (!*v) {
        if (required)
            return zcfg_bad(c, table_line, zcfg_join(full, sizeof(full), path, key),
                            "required key is missing");
        return 0;
    }
    if ((*v)->type != type)
        return zcfg_bad(c, (*v)->line, zcfg_join(full, sizeof(full), path, key),
                        "expected %s %s, got %s %s", zcfg_article(type), toml_type_name(type),
                        zcfg_article((*v)->type), toml_type_name((*v)->type));
    return 0;
}

/* An integer in [min, max]; *line is 0 when absent and not required (then *out is kept). */
int zcfg_get_int(const struct ctx *c, const struct toml_table *t, const char *path,
                 unsigned table_line, const char *key, bool required, int64_t min, int64_t max,
                 int64_t *out, unsigned *line)
{
    const struct toml_value *v;
    int rc = zcfg_lookup(c, t, path, table_line, key, required, TOML_INTEGER, &v);
    if (line)
        *line = v ? v->line : 0;
    if (rc || !v)
        return rc;
    char full[160];
    zcfg_join(full, sizeof(full), path, key);
    if (v->u.i < min) {
        if (min == 1)
            return zcfg_bad(c, v->line, full, "must be at least 1 (got %lld)", (long long)v->u.i);
        return zcfg_bad(c, v->line, full, "must be between %lld and %lld (got %lld)",
                        (long long)min, (long long)max, (long long)v->u.i);
    }
    if (v->u.i > max)
        return zcfg_bad(c, v->line, full, "must be at most %lld (got %lld)", (long long)max,
                        (long long)v->u.i);
    *out = v->u.i;
    return 0;
}

int zcfg_get_unsigned(const struct ctx *c, const struct toml_table *t, const char *path,
                      unsigned table_line, const char *key, bool required, int64_t min, int64_t max,
                      unsigned *out, unsigned *line)
{
    int64_t v = *out;
    int rc = zcfg_get_int(c, t, path, table_line, key, required, min, max, &v, line);
    if (!rc)
        *out = (unsigned)v;
    return rc;
}

/* A string without NUL bytes, non-empty unless allow_empty, at most maxlen bytes; *out is a
 * new copy (left alone when absent and not required). */
int zcfg_get_string(const struct ctx *c, const struct toml_table *t, const char *path,
                    unsigned table_line, const char *key, bool required, bool allow_empty,
                    size_t maxlen, char **out, unsigned *line)
{
    const struct toml_value *v;
    int rc = zcfg_lookup(c, t, path, table_line, key, required, TOML_STRING, &v);
    if (line)
        *line = v ? v->line : 0;
    if (rc || !v)
        return rc;
    char full[160];
    zcfg_join(full, sizeof(full), path, key);
    if (!allow_empty && v->u.str.len == 0)
        return zcfg_bad(c, v->line, full, "must not be empty");
    if (memchr(v->u.str.ptr, '\0', v->u.str.len))
        return zcfg_bad(c, v->line, full, "must not contain a NUL character");
    if (v->u.str.len > maxlen)
        return zcfg_bad(c, v->line, full, "is too long (%zu bytes, at most %zu)", v->u.str.len,
                        maxlen);
    char *s = zcfg_dup_mem(v->u.str.ptr, v->u.str.len);
    if (!s)
        return zcfg_nomem();
    free(*out);
    *out = s;
    return 0;
}

int zcfg_get_table(const struct ctx *c, const struct toml_table *t, const char *path,
                   unsigned table_line, const char *key, const struct toml_value **out)
{
    return zcfg_lookup(c, t, path, table_line, key, true, TOML_TABLE, out);
}
