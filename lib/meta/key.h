/* Metadata keys and path names, keyed exactly as 0-stor_v2 keys them.
 *
 * A file's metadata lives under `/{prefix}/meta/{hex(BLAKE2b-128(path))}` on every meta
 * backend, where path is the file's path cleaned lexically (Plan 9 cleanname rules, as the
 * Rust path-clean 0.1 crate that 0-stor_v2 uses) with the configured `root` stripped
 * component-wise (so no leading slash), BLAKE2b-128 has its digest length set to 16 in the
 * parameter block, and hex is lowercase. With no root the whole cleaned path is hashed.
 * docs/meta-format.md (section 1) lists the rules and the cases where qsfs refuses what
 * 0-stor_v2 accepted.
 *
 * Pure string functions, no global state, thread-safe; only zstor_meta_resolve looks at
 * the file system.
 */
#ifndef QSFS_META_KEY_H
#define QSFS_META_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define ZSTOR_META_HASH_LEN 16   /* BLAKE2b-128 of the relative path */
#define ZSTOR_META_KEY_MAX  255  /* longest key a zdb accepts */
#define ZSTOR_META_PATH_MAX 4096 /* longest path (bytes) accepted anywhere here */

/* Cleans path lexically: repeated slashes become one, `.` elements go, `x/..` pairs go,
 * `..` right after the root of an absolute path goes, leading `..` of a relative path
 * stay, trailing slashes go; an empty result is "." (or "/" for an absolute path).
 * *out is malloc'ed (free()). QS_EINVAL for an empty path, a path over
 * ZSTOR_META_PATH_MAX bytes or not valid UTF-8 (the message names it); QS_ENOMEM. */
int zstor_meta_path_clean(const char *path, char **out) QS_MUST_CHECK;

/* The name a file is keyed by: path cleaned, then root (cleaned too) stripped as whole
 * components, without a leading slash. root NULL or "" means no root: the cleaned path
 * itself. QS_EINVAL when path is not below root ("path 'P' is outside root 'R'"), is root
 * itself, or is invalid as for zstor_meta_path_clean. *out is malloc'ed. */
int zstor_meta_path_rel(const char *root, const char *path, char **out) QS_MUST_CHECK;

/* 0 when name is safe to join onto a directory as a stored file's name: components
 * separated by single slashes, none of them empty, "." or ".."; a leading slash (the
 * whole path of a file stored without a root) is allowed only when absolute is true.
 * QS_EINVAL saying why otherwise (a record's name is never trusted as a path). */
int zstor_meta_name_check(const char *name, int absolute) QS_MUST_CHECK;

/* 1 when s[0..n) is valid UTF-8 without NUL bytes (the rule for every name here). */
int zstor_meta_utf8_ok(const void *s, size_t n);

/* out = hex(BLAKE2b-128(rel)), 32 lowercase hex digits and a NUL. */
void zstor_meta_path_hash(const char *rel, char out[2 * ZSTOR_META_HASH_LEN + 1]);

/* out = "/{prefix}/meta/{hash(rel)}" for an already relative name (e.g. from a record).
 * QS_EINVAL when the key would pass ZSTOR_META_KEY_MAX bytes (prefix too long) or the
 * prefix holds a NUL-free but non-UTF-8 string. */
int zstor_meta_key_rel(const char *prefix, const char *rel,
                       char out[ZSTOR_META_KEY_MAX + 1]) QS_MUST_CHECK;

/* out = the metadata key of path: zstor_meta_path_rel, then zstor_meta_key_rel.
 * Errors as those two. */
int zstor_meta_key(const char *prefix, const char *root, const char *path,
                   char out[ZSTOR_META_KEY_MAX + 1]) QS_MUST_CHECK;

/* out = "/{prefix}/meta/", the common start of every metadata key (for scans). */
int zstor_meta_key_scan_prefix(const char *prefix, char out[ZSTOR_META_KEY_MAX + 1]) QS_MUST_CHECK;

/* 0 when key is "/{prefix}/meta/" followed by 32 lowercase hex digits, else QS_EINVAL
 * with a message saying what is wrong (for `rebuild --key`). */
int zstor_meta_key_check(const char *prefix, const char *key) QS_MUST_CHECK;

/* `store --key-path DIR`: the path a file is keyed as. With key_dir, key_dir joined with
 * the file's name (its last component); without, file itself. Lexical only: pass the
 * result through zstor_meta_resolve to get what 0-stor_v2 hashes at store time.
 * QS_EINVAL when file has no name ("/", ".", or ending in ".."). *out is malloc'ed. */
int zstor_meta_key_path(const char *file, const char *key_dir, char **out) QS_MUST_CHECK;

/* Absolute path with symbolic links resolved (realpath), also for a path that does not
 * exist yet as long as its parent directory does (then the parent is resolved and the
 * name appended). QS_ENOTFOUND when the parent directory is missing, QS_EIO for other
 * system errors, QS_EINVAL for a path without a name. *out is malloc'ed. */
int zstor_meta_resolve(const char *path, char **out) QS_MUST_CHECK;

#endif
