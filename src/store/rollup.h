/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rollups: the store thread aggregates each closed time window of a rule
 * table into the rollup tables its rules declare (rules/README.md,
 * "rollups"), exactly once per window, including after downtime.
 *
 * A window [t, t + every) (t a multiple of every in Unix ms) is computed
 * once the wall clock has passed t + every + grace. Its rows and the
 * rollup's progress (mqlite_rollup_state.last_end_ms) are committed in one
 * transaction, so a crash loses or doubles no window. Windows without raw
 * rows are skipped (nothing written). Rows that arrive for a window
 * already computed are not added to it.
 */
#ifndef GW_ROLLUP_H
#define GW_ROLLUP_H

#include <stdatomic.h>
#include <stdint.h>

#include "err.h"

struct rollup;
struct rule_set;
struct sqlite3;

/*
 * Counters, owned by the store (they outlive a rollup state replaced after
 * a heal) and read by any thread.
 */
struct rollup_counters {
	atomic_uint_fast64_t	windows;	/* windows written (with rows) */
	atomic_uint_fast64_t	rows;		/* rollup rows written */
	atomic_uint_fast64_t	errors;		/* failed turns (retried) */
	atomic_uint_fast64_t	skipped;	/* windows given up */
};

/*
 * Creates, for every rollup of set (borrowed), its table (ADD COLUMN for
 * columns added since) and window index; the state table is part of the
 * schema. Called with the rule tables' preparation, between batches,
 * outside a transaction.
 * 0, GW_EIO or GW_ECONFIG (err filled), GW_ENOMEM. Store thread.
 */
int		 rollup_prepare(struct sqlite3 *db, const struct rule_set *set,
		    struct gw_error *err);

/*
 * New rollup state on db (borrowed writer connection), counting into c
 * (borrowed, must outlive it). NULL: no memory.
 */
struct rollup	*rollup_new(struct sqlite3 *db, struct rollup_counters *c);

/*
 * Computes what is due now, a few windows at most (one transaction), for
 * set (borrowed, may be NULL: nothing to do); when set changed since the
 * last call its statements are prepared again. Must be called outside any
 * transaction. Failures are logged (rate-limited) and retried a second
 * later. Returns 0 or the error of this turn. Store thread.
 */
int		 rollup_run(struct rollup *ru, const struct rule_set *set);

/*
 * Milliseconds until rollup_run() has work: 0 while catching up, -1 when
 * there is no rollup, else the time until the next window is due (at most
 * 60 s: the wall clock may jump). Store thread.
 */
int		 rollup_timeout_ms(struct rollup *ru);

/* Finalizes the statements, drops the set reference, frees. NULL ok. */
void		 rollup_free(struct rollup *ru);

#endif
