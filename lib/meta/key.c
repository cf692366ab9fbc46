/* Metadata keys and path names (key.h). */
#include "key.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/hash.h"

/* Strict UTF-8 as Rust's str accepts it: no overlong forms, no surrogates, nothing above
 * U+10FFFF. 0-stor_v2 refuses to key a path that is not valid UTF-8. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1, min = 0x80, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2, min = 0x800, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (size_t j = 1; j <= need; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

int zstor_meta_utf8_ok(const void *s, size_t n)
{
    return memchr(s, 0, n) == NULL && utf8_valid(s, n);
}

int zstor_meta_name_check(const char *name, int absolute)
{
    const char *p = name;
    if (*p == '/') {
        if (!absolute)
            return qs_err_set(QS_EINVAL, "name '%s' is absolute", name);
        p++;
    }
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
            return qs_err_set(QS_EINVAL, "name '%s' has an empty component", name);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return qs_err_set(QS_EINVAL, "name '%s' has a '%.*s' component", name, (int)n, p);
        if (!e)
            return 0;
        p = e + 1;
    }
}

static int check_text(const char *what, const char *s, size_t *len)
{
    size_t n = strnlen(s, ZSTOR_META_PATH_MAX + 1);
    if (n > ZSTOR_META_PATH_MAX)
        return qs_err_set(QS_EINVAL, "%s is longer than %d bytes", what, ZSTOR_META_PATH_MAX);
    if (!utf8_valid((const unsigned char *)s, n))
        return qs_err_set(QS_EINVAL, "%s '%s' is not valid UTF-8", what, s);
    *len = n;
    return 0;
}

/* Lexical cleaning into out (room for n + 2 bytes); the algorithm of Plan 9's cleanname
 * and Go's path.Clean, which the path-clean crate ports. */
static void clean_into(const char *p, size_t n, char *out)
{
    int rooted = n > 0 && p[0] == '/';
    size_t w = 0, r = 0, dotdot = 0;
    if (rooted) {
        out[w++] = '/';
        r = 1;
        dotdot = 1;
    }
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                /* drop the last element */
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                /* a leading .. of a relative path stays */
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            while (r < n && p[r] != '/')
                out[w++] = p[r++];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
}

int zstor_meta_path_clean(const char *path, char **out)
{
    *out = NULL;
    size_t n = 0;
    if (!path || !path[0])
        return qs_err_set(QS_EINVAL, "empty path");
    int rc = check_text("path", path, &n);
    if (rc)
        return rc;
    char *c = malloc(n + 2);
    if (!c)
        return qs_err_set(QS_ENOMEM, "path: out of memory");
    clean_into(path, n, c);
    *out = c;
    return 0;
}

int zstor_meta_path_rel(const char *root, const char *path, char **out)
{
    *out = NULL;
    char *cp, *cr = NULL;
    int rc = zstor_meta_path_clean(path, &cp);
    if (rc)
        return rc;
    if (!root || !root[0]) {
        *out = cp;
        return 0;
    }
    size_t rl = 0;
    if ((rc = check_text("root", root, &rl)) != 0)
        goto fail;
    if ((cr = malloc(rl + 2)) == NULL) {
        rc = qs_err_set(QS_ENOMEM, "path: out of memory");
        goto fail;
    }
    clean_into(root, rl, cr);
    rl = strlen(cr);
    /* Whole components only: root /mnt/a holds /mnt/a/x but not /mnt/ab. */
    const char *rest = NULL;
    if (strcmp(cr, "/") == 0) {
        if (cp[0] == '/')
            rest = cp + 1;
    } else if (strncmp(cp, cr, rl) == 0 && (cp[rl] == '/' || cp[rl] == '\0')) {
        rest = cp[rl] ? cp + rl + 1 : cp + rl;
    }
    if (!rest) {
        rc = qs_err_set(QS_EINVAL, "path '%s' is outside root '%s'%s", cp, cr,
                        cp[0] != '/' && cr[0] == '/' ? " (give an absolute path)" : "");
        goto fail;
    }
    if (!*rest) {
        rc =
            qs_err_set(QS_EINVAL, "path '%s' is the root '%s' itself, not a file below it", cp, cr);
        goto fail;
    }
    memmove(cp, rest, strlen(rest) + 1);
    free(cr);
    *out = cp;
    return 0;
fail:
    free(cp);
    free(cr);
    return rc;
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void zstor_meta_path_hash(const char *rel, char out[2 * ZSTOR_META_HASH_LEN + 1])
{
    uint8_t h[ZSTOR_META_HASH_LEN];
    qs_hash128(h, rel, strlen(rel));
    hex_encode(h, sizeof(h), out);
}

static int check_prefix(const char *prefix, size_t *len)
{
    if (!prefix)
        return qs_err_set(QS_EINVAL, "meta prefix missing");
    size_t n = strnlen(prefix, ZSTOR_META_KEY_MAX + 1);
    /* "/" prefix "/meta/" and 32 hex digits */
    if (n + 7 + 2 * ZSTOR_META_HASH_LEN > ZSTOR_META_KEY_MAX)
        return qs_err_set(QS_EINVAL,
                          "meta prefix is too long (%zu bytes): keys would pass %d bytes",
                          strlen(prefix), ZSTOR_META_KEY_MAX);
    if (!utf8_valid((const unsigned char *)prefix, n))
        return qs_err_set(QS_EINVAL, "meta prefix '%s' is not valid UTF-8", prefix);
    *len = n;
    return 0;
}

int zstor_meta_key_scan_prefix(const char *prefix, char out[ZSTOR_META_KEY_MAX + 1])
{
    size_t n;
    out[0] = '\0';
    int rc = check_prefix(prefix, &n);
    if (rc)
        return rc;
    snprintf(out, ZSTOR_META_KEY_MAX + 1, "/%s/meta/", prefix);
    return 0;
}

int zstor_meta_key_rel(const char *prefix, const char *rel, char out[ZSTOR_META_KEY_MAX + 1])
{
    char hex[2 * ZSTOR_META_HASH_LEN + 1];
    size_t n;
    out[0] = '\0';
    int rc = check_prefix(prefix, &n);
    if (rc)
        return rc;
    zstor_meta_path_hash(rel, hex);
    snprintf(out, ZSTOR_META_KEY_MAX + 1, "/%s/meta/%s", prefix, hex);
    return 0;
}

int zstor_meta_key(const char *prefix, const char *root, const char *path,
                   char out[ZSTOR_META_KEY_MAX + 1])
{
    char *rel;
    out[0] = '\0';
    int rc = zstor_meta_path_rel(root, path, &rel);
    if (rc)
        return rc;
    rc = zstor_meta_key_rel(prefix, rel, out);
    free(rel);
    return rc;
}

int zstor_meta_key_check(const char *prefix, const char *key)
{
    char start[ZSTOR_META_KEY_MAX + 1];
    int rc = zstor_meta_key_scan_prefix(prefix, start);
    if (rc)
        return rc;
    size_t n = strlen(start);
    if (strncmp(key, start, n) != 0)
        return qs_err_set(QS_EINVAL, "key '%s' does not start with '%s'", key, start);
    const char *h = key + n;
    for (int i = 0; i < 2 * ZSTOR_META_HASH_LEN; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return qs_err_set(QS_EINVAL, "key '%s': expected %d lowercase hex digits after '%s'",
                              key, 2 * ZSTOR_META_HASH_LEN, start);
    }
    if (h[2 * ZSTOR_META_HASH_LEN] != '\0')
        return qs_err_set(QS_EINVAL, "key '%s': trailing characters after the hash", key);
    return 0;
}

/* The last component as Rust's Path::file_name sees it: empty and `.` components do not
 * count, and a path ending in `..` (or with no component at all) has no name. */
static int file_name(const char *path, const char **name, size_t *len)
{
    const char *last = NULL;
    size_t last_len = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t l = (size_t)(p - s);
        if (l == 0 || (l == 1 && s[0] == '.'))
            continue;
        last = s;
        last_len = l;
    }
    if (!last || (last_len == 2 && last[0] == '.' && last[1] == '.'))
        return qs_err_set(QS_EINVAL, "'%s' does not name a file", path);
    *name = last;
    *len = last_len;
    return 0;
}

int zstor_meta_key_path(const char *file, const char *key_dir, char **out)
{
    *out = NULL;
    const char *name;
    size_t nl = 0, fl = 0, dl = 0;
    int rc;
    if (!file || !file[0])
        return qs_err_set(QS_EINVAL, "empty file path");
    if ((rc = check_text("path", file, &fl)) != 0 || (rc = file_name(file, &name, &nl)) != 0)
        return rc;
    if (!key_dir) {
        if ((*out = strdup(file)) == NULL)
            return qs_err_set(QS_ENOMEM, "path: out of memory");
        return 0;
    }
    if (!key_dir[0])
        return qs_err_set(QS_EINVAL, "empty key path");
    if ((rc = check_text("key path", key_dir, &dl)) != 0)
        return rc;
    if (dl + 1 + nl > ZSTOR_META_PATH_MAX)
        return qs_err_set(QS_EINVAL, "key path '%s' plus file name is longer than %d bytes",
                          key_dir, ZSTOR_META_PATH_MAX);
    char *p = malloc(dl + nl + 2);
    if (!p)
        return qs_err_set(QS_ENOMEM, "path: out of memory");
    memcpy(p, key_dir, dl);
    size_t w = dl;
    if (p[w - 1] != '/')
        p[w++] = '/';
    memcpy(p + w, name, nl);
    p[w + nl] = '\0';
    *out = p;
    return 0;
}

int zstor_meta_resolve(const char *path, char **out)
{
    *out = NULL;
    size_t n;
    int rc;
    if (!path || !path[0])
        return qs_err_set(QS_EINVAL, "empty path");
    if ((rc = check_text("path", path, &n)) != 0)
        return rc;
    char *r = realpath(path, NULL);
    if (r) {
        *out = r;
        return 0;
    }
    if (errno != ENOENT)
        return qs_err_sys(QS_EIO, errno, "resolve %s", path);
    /* Not there (yet): resolve the directory, keep the name. */
    const char *name;
    size_t nl;
    if ((rc = file_name(path, &name, &nl)) != 0)
        return rc;
    char *dir = strndup(path, (size_t)(name - path));
    if (!dir)
        return qs_err_set(QS_ENOMEM, "path: out of memory");
    char *rd = realpath(dir[0] ? dir : ".", NULL);
    if (!rd) {
        int e = errno;
        rc = e == ENOENT || e == ENOTDIR
                 ? qs_err_set(QS_ENOTFOUND, "directory '%s' of '%s' does not exist",
                              dir[0] ? dir : ".", path)
                 : qs_err_sys(QS_EIO, e, "resolve %s", dir[0] ? dir : ".");
        free(dir);
        return rc;
    }
    free(dir);
    size_t dl = strlen(rd);
    char *p = malloc(dl + nl + 2);
    if (!p) {
        free(rd);
        return qs_err_set(QS_ENOMEM, "path: out of memory");
    }
    memcpy(p, rd, dl);
    size_t w = dl;
    if (w == 0 || p[w - 1] != '/')
        p[w++] = '/';
    memcpy(p + w, name, nl);
    p[w + nl] = '\0';
    free(rd);
    *out = p;
    return 0;
}
