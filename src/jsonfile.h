/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the config and rules loaders share about JSON files: reading a
 * whole file with a size bound, locating a syntax error as line and column,
 * and naming a value's JSON type in messages ("expected a string, got an
 * array").
 */
#ifndef GW_JSONFILE_H
#define GW_JSONFILE_H

#include <stddef.h>

struct cJSON;

/*
 * Reads the regular file at path (at most max bytes) into a new
 * NUL-terminated buffer (gw_free it); *len (may be NULL) gets its length.
 * On failure returns NULL with a reason in err ("cannot open: ...", "file
 * is larger than N bytes"); *oom is set (may be NULL) when the reason was
 * an allocation failure.
 */
char		*jsonfile_read(const char *path, size_t max, size_t *len,
		    char *err, size_t errlen, int *oom);

/*
 * Line and column (1-based) of position end in text[0..len), as cJSON
 * reports a parse error; returns 0, or -1 when end is not inside text.
 */
int		 jsonfile_position(const char *text, size_t len,
		    const char *end, int *line, int *col);

/* "a string", "a number", "a boolean", "null", "an array", "an object". */
const char	*jsonfile_type_name(const struct cJSON *j);

#endif
