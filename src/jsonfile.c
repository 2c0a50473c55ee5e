/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON file helpers for the loaders; see jsonfile.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonfile.h"
#include "mem.h"

char *
jsonfile_read(const char *path, size_t max, size_t *len, char *err,
    size_t errlen, int *oom)
{
	struct stat st;
	FILE *f;
	char *text = NULL;
	size_t n;

	if (oom != NULL)
		*oom = 0;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
		snprintf(err, errlen, "not a regular file");
	else if ((size_t)st.st_size > max)
		snprintf(err, errlen, "file is larger than %zu bytes", max);
	else if ((text = gw_malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		if (oom != NULL)
			*oom = 1;
	} else {
		n = fread(text, 1, (size_t)st.st_size, f);
		if (ferror(f)) {
			snprintf(err, errlen, "cannot read: %s",
			    strerror(errno));
			gw_free(text);
			text = NULL;
		} else {
			text[n] = '\0';
			if (len != NULL)
				*len = n;
		}
	}
	fclose(f);
	return text;
}

int
jsonfile_position(const char *text, size_t len, const char *end, int *line,
    int *col)
{
	const char *p, *line_start = text;

	*line = 1;
	if (end == NULL || end < text || end > text + len)
		return -1;
	for (p = text; p < end; p++) {
		if (*p == '\n') {
			(*line)++;
			line_start = p + 1;
		}
	}
	*col = (int)(end - line_start) + 1;
	return 0;
}

const char *
jsonfile_type_name(const cJSON *j)
{
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsNumber(j))
		return "a number";
	if (cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsNull(j))
		return "null";
	if (cJSON_IsArray(j))
		return "an array";
	if (cJSON_IsObject(j))
		return "an object";
	return "an invalid value";
}
