/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WAL checkpointer: a thread with its own connection that copies the
 * write-ahead log back into the database when the store thread asks,
 * so checkpoints never stall a commit (and never sit on the path of a
 * PUBACK). PASSIVE checkpoints only: they never block the writer; once one
 * completes, the writer's next transaction starts the WAL over, which keeps
 * its size bounded. Under sustained ingest the writer appends while one
 * runs, so none completes: checkpointer_runs() tells the store thread how
 * far the last one got, and it finishes the little that is left itself.
 * A checkpoint that a long-running reader keeps from completing is retried
 * a second later.
 */
#ifndef GW_CHECKPOINT_H
#define GW_CHECKPOINT_H

#include <stdint.h>

struct checkpointer;

/* Opens path and starts the thread; NULL on failure (logged). */
struct checkpointer *checkpointer_start(const char *path);

/* Asks for a checkpoint soon. Never blocks. Any thread. */
void		 checkpointer_request(struct checkpointer *c);

/* Completed checkpoints so far. Any thread. */
uint64_t	 checkpointer_count(struct checkpointer *c);

/*
 * Checkpoints run so far, complete or not; *copied is the number of WAL
 * frames the last one left backfilled (0 when it failed). Any thread.
 */
uint64_t	 checkpointer_runs(struct checkpointer *c, long long *copied);

/* Stops and joins the thread, closes its connection. NULL ok. */
void		 checkpointer_stop(struct checkpointer *c);

#endif
