/* Shared by the config loader's files: the parse context, "file:line: key: what"
 * messages and typed getters over the TOML tree. Not part of the library's interface. */
#ifndef QSFS_CONFIG_PRIVATE_H
#define QSFS_CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "toml/toml.h"

#define MAX_PATH_LEN 4095

struct ctx {
    const char *name;
    struct zstor_config *cfg;
};

/* QS_EINVAL with "name:line: key: what" (no line when 0). */
int zcfg_bad(const struct ctx *c, unsigned line, const char *key, const char *fmt, ...)
    QS_PRINTF(4, 5);
int zcfg_nomem(void);
/* path.key (or key at the root) into buf. */
const char *zcfg_join(char *buf, size_t size, const char *path, const char *key);
/* key made safe for a one-line message. */
const char *zcfg_printable(const char *key, size_t len, char *buf, size_t size);
const char *zcfg_article(enum toml_type t);
char *zcfg_dup_mem(const char *s, size_t n);

/* Every key of t must be in allowed (NULL-terminated). */
int zcfg_check_keys(const struct ctx *c, const struct toml_table *t, const char *path,
                    const char *const *allowed);
/* *v is NULL when absent (an error when required; table_line is t's line for that). */
int zcfg_lookup(const struct ctx *c, const struct toml_table *t, const char *path,
                unsigned table_line, const char *key, bool required, enum toml_type type,
                const struct toml_value **v);
/* An integer in [min, max]; *line is 0 when absent and not required (*out is kept). */
int zcfg_get_int(const struct ctx *c, const struct toml_table *t, const char *path,
                 unsigned table_line, const char *key, bool required, int64_t min, int64_t max,
                 int64_t *out, unsigned *line);
int zcfg_get_unsigned(const struct ctx *c, const struct toml_table *t, const char *path,
                      unsigned table_line, const char *key, bool required, int64_t min, int64_t max,
                      unsigned *out, unsigned *line);
/* A string without NUL bytes, non-empty unless allow_empty, at most maxlen bytes; *out is
 * a new copy (left alone when absent and not required). */
int zcfg_get_string(const struct ctx *c, const struct toml_table *t, const char *path,
                    unsigned table_line, const char *key, bool required, bool allow_empty,
                    size_t maxlen, char **out, unsigned *line);
int zcfg_get_table(const struct ctx *c, const struct toml_table *t, const char *path,
                   unsigned table_line, const char *key, const struct toml_value **out);

/* The [qsfs] table (config/qsfs.c): parsed when present; then fills the zstor keys it
 * derives (root, socket, zdb_data_dir_path, ...) that the file leaves out. */
int zcfg_parse_qsfs(const struct ctx *c, const struct toml_table *root);

#endif
