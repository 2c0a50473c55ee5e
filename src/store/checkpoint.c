/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Background WAL checkpoints; see checkpoint.h. The request is a flag
 * under a mutex with a condition variable; requests that arrive while a
 * checkpoint runs fold into one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"
#include "mem.h"
#include "store/checkpoint.h"

#define CKPT_RETRY_MS	1000	/* after an incomplete checkpoint */
#define CKPT_BUSY_MS	100	/* wait for a lock at most */

struct checkpointer {
	sqlite3			*db;
	pthread_t		 thread;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	bool			 want;
	bool			 stop;
	bool			 retry;		/* last one was incomplete */
	atomic_uint_fast64_t	 done;
	atomic_uint_fast64_t	 runs;		/* finished, complete or not */
	atomic_llong		 copied;	/* frames backfilled, last run */
	struct log_limit	 errlim;
};

/*
 * A connection learns that the database is in WAL mode, and opens the WAL,
 * on its first read; until then a checkpoint on it copies nothing and
 * still returns SQLITE_OK (with -1 frames). So: one read.
 */
static void
ckpt_read(struct checkpointer *c)
{
	if (sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", NULL,
	    NULL, NULL) != SQLITE_OK && log_ratelimited(&c->errlim, 5, 60000))
		log_warn("store: checkpointer cannot read the database: %s",
		    sqlite3_errmsg(c->db));
}

/* Runs one PASSIVE checkpoint; true when it copied the whole WAL. */
static bool
ckpt_once(struct checkpointer *c)
{
	int rc, log_frames = 0, copied = 0;

	rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log_frames, &copied);
	/* Before runs, so a reader that sees the run sees its count. */
	atomic_store_explicit(&c->copied, rc == SQLITE_OK && copied > 0 ?
	    copied : 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->runs, 1, memory_order_release);
	if (rc == SQLITE_OK && log_frames < 0) {
		ckpt_read(c);	/* the WAL is not open here yet */
		return false;
	}
	if (rc == SQLITE_OK && copied >= log_frames) {
		atomic_fetch_add_explicit(&c->done, 1, memory_order_relaxed);
		return true;
	}
	if (rc != SQLITE_OK && rc != SQLITE_BUSY &&
	    log_ratelimited(&c->errlim, 5, 60000))
		log_warn("store: checkpoint failed: %s", sqlite3_errmsg(c->db));
	return false;
}

static void *
ckpt_main(void *arg)
{
	struct checkpointer *c = arg;
	struct timespec ts;
	bool run;

	pthread_setname_np(pthread_self(), "mqlite-ckpt");
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		if (!c->want && c->retry) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += CKPT_RETRY_MS % 1000 * 1000000L;
			ts.tv_sec += CKPT_RETRY_MS / 1000 + ts.tv_nsec /
			    1000000000L;
			ts.tv_nsec %= 1000000000L;
			if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) ==
			    ETIMEDOUT)
				c->want = true;
			continue;
		}
		if (!c->want) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		c->want = false;
		pthread_mutex_unlock(&c->mu);
		run = ckpt_once(c);
		pthread_mutex_lock(&c->mu);
		c->retry = !run;
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

struct checkpointer *
checkpointer_start(const char *path)
{
	struct checkpointer *c;

	if ((c = gw_calloc(1, sizeof *c)) == NULL)
		return NULL;
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_warn("store: checkpointer cannot open %s: %s", path,
		    c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		gw_free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, CKPT_BUSY_MS);
	ckpt_read(c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
		log_warn("store: cannot start the checkpointer: %s",
		    strerror(errno));
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		sqlite3_close(c->db);
		gw_free(c);
		return NULL;
	}
	return c;
}

void
checkpointer_request(struct checkpointer *c)
{
	pthread_mutex_lock(&c->mu);
	if (!c->want) {
		c->want = true;
		pthread_cond_signal(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

uint64_t
checkpointer_count(struct checkpointer *c)
{
	return atomic_load_explicit(&c->done, memory_order_relaxed);
}

uint64_t
checkpointer_runs(struct checkpointer *c, long long *copied)
{
	uint64_t runs;

	runs = atomic_load_explicit(&c->runs, memory_order_acquire);
	*copied = atomic_load_explicit(&c->copied, memory_order_relaxed);
	return runs;
}

void
checkpointer_stop(struct checkpointer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	sqlite3_close(c->db);
	gw_free(c);
}
