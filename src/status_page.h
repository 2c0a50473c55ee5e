/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The self-contained HTML status page (no external assets) that the
 * metrics listener serves at /; it reads /metrics, /healthz and /errors
 * itself and refreshes every few seconds.
 */
#ifndef GW_STATUS_PAGE_H
#define GW_STATUS_PAGE_H

#include <stddef.h>

/* The page (a constant, NUL-terminated) and its length in bytes. */
const char	*status_page_html(void);
size_t		 status_page_len(void);

#endif
