/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The temporary folder a fuzz target works in (a database, a config file):
 * made once at start from a mkdtemp() template, emptied and removed when
 * the target exits, so repeated fuzz runs leave nothing behind in /tmp.
 * The folder holds plain files only.
 */
#ifndef FUZZ_TMPDIR_H
#define FUZZ_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char	*fuzz_tmpdir_path;

static void
fuzz_tmpdir_remove(void)
{
	struct dirent	*e;
	DIR		*d;
	char		 p[512];

	if (fuzz_tmpdir_path == NULL ||
	    (d = opendir(fuzz_tmpdir_path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", fuzz_tmpdir_path, e->d_name);
		(void)unlink(p);
	}
	closedir(d);
	(void)rmdir(fuzz_tmpdir_path);
}

/* mkdtemp(tmpl) and removal at exit; aborts when it cannot be made. */
static inline void
fuzz_tmpdir_make(char *tmpl)
{
	if (mkdtemp(tmpl) == NULL)
		abort();
	fuzz_tmpdir_path = tmpl;
	atexit(fuzz_tmpdir_remove);
}

#endif /* FUZZ_TMPDIR_H */
