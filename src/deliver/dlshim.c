/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dlopen/dlsym for the library shims; see dlshim.h.
 */
#include <dlfcn.h>

#include "deliver/dlshim.h"
#include "log.h"

int
dlshim_load(const char *soname, const struct dlshim_sym *syms, size_t n,
    const char *consequence)
{
	void *h;
	size_t i;

	if ((h = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		log_error("cannot load %s (%s): %s", soname, dlerror(),
		    consequence);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((*syms[i].slot = dlsym(h, syms[i].name)) == NULL) {
			log_error("%s lacks %s, which mqlite needs: %s", soname,
			    syms[i].name, consequence);
			return -1;
		}
	}
	return 0;
}
