/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A damaged database moved aside and replaced by a fresh one that keeps
 * what could be read of the broker's own tables; see heal.c.
 */
#ifndef GW_HEAL_H
#define GW_HEAL_H

#include <stdbool.h>

#include "err.h"

/* Asked between retries of a fresh file on a full disk: true gives up. */
typedef bool (*heal_stop_fn)(void *ctx);

int	heal_check(const char *path, bool refuse, heal_stop_fn stop,
	    void *ctx, struct gw_error *err);
bool	heal_is_corrupt(int sqlite_rc);
int	heal_quarantine(const char *path, const char *why, heal_stop_fn stop,
	    void *ctx, struct gw_error *err);
void	heal_mark(const char *path);
void	heal_unmark(const char *path);

#endif
