/* `zdb --dump`: the index entries of every namespace, in append order, as text. */
#ifndef QSFS_ZDB_DUMP_H
#define QSFS_ZDB_DUMP_H

#include <stdio.h>

#include "store/store.h"

/* Writes every index entry of every namespace of st to out: one header line per
 * namespace, one line per entry (file and offset, state, key, length, crc, data
 * location, time, previous version). Returns 0, or a negative code (message set) when an
 * index file cannot be read; what was read is printed either way. */
int zdb_dump(struct zdb_store *st, FILE *out);

#endif
