/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage wear counters of the whole process: bytes the kernel was made to
 * write (/proc/self/io) and flushes of the database files (counted by a
 * VFS that wraps SQLite's default one). iostat_init() before the first
 * database is opened; the readers from any thread.
 */
#ifndef GW_STORE_IOSTAT_H
#define GW_STORE_IOSTAT_H

#include <stdint.h>

int		 iostat_init(void);
uint64_t	 iostat_fsyncs(void);
uint64_t	 iostat_write_bytes(void);

#endif /* GW_STORE_IOSTAT_H */
