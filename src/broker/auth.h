/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Password logins without blocking the event loop. The loop looks the
 * (user, password) pair up in a cache of verified pairs, kept as keyed
 * hashes (HMAC-SHA256 under a random key chosen at each load, never the
 * password itself); on a miss it parks the login in one of a bounded
 * number of slots and hands the stored hash and a copy of the password to
 * one worker thread, which runs PBKDF2 and posts the answer back through
 * an eventfd. An unknown user is hashed against a dummy entry, so it costs
 * the same time as a wrong password and gets the same answer.
 *
 * Failed logins are counted per peer address in a bounded table (keyed
 * hash, oldest evicted): the first AUTH_FREE_FAILURES in a minute are
 * answered at once, each further one waits twice as long as the last,
 * from 250 ms up to 5 s. A success clears the address's count.
 *
 * Loop thread only, except the worker inside.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AUTH_MAX_PENDING	64	/* logins hashing at once */
#define AUTH_CACHE_SIZE		4096	/* verified pairs kept */
#define AUTH_FAIL_SLOTS		1024	/* peer addresses tracked */
#define AUTH_FREE_FAILURES	5	/* per address and minute */
#define AUTH_DELAY_MIN_MS	250
#define AUTH_DELAY_MAX_MS	5000

struct acl;
struct auth;
struct ev_loop;
struct gw_config;
struct gw_error;
struct passwd_db;

/* Called on the loop when a parked login is decided. */
typedef void (*auth_done_fn)(void *owner, bool ok, void *arg);

enum auth_verdict {
	AUTH_OK = 0,		/* accepted now (cache hit) */
	AUTH_PENDING,		/* parked: done() will be called */
	AUTH_BUSY,		/* every slot taken: refuse for now */
};

/* What the checks did, for /metrics. */
struct auth_stats {
	uint64_t	ok;		/* logins accepted by password */
	uint64_t	failed;		/* logins refused */
	uint64_t	cache_hits;	/* accepted without hashing */
	uint64_t	busy;		/* refused: every slot hashing */
	uint64_t	delayed;	/* refusals held back by the delay */
};

/* Returns a new login checker on loop (borrowed), NULL on ENOMEM. */
struct auth	*auth_new(struct ev_loop *loop, auth_done_fn done,
		    void *arg);

/* Stops the worker and frees everything. NULL ok. */
void		 auth_free(struct auth *a);

/*
 * Uses db (takes ownership; NULL: no password file) from now on, frees
 * the previous one and forgets every cached pair. Logins parked against
 * the old file finish with its entries. 0 or GW_ENOMEM.
 */
int		 auth_set_passwd(struct auth *a, struct passwd_db *db);

/* True when a password file is in force. */
bool		 auth_has_passwd(const struct auth *a);

/*
 * Starts checking user/pw for owner. AUTH_OK (nothing parked), AUTH_BUSY,
 * or AUTH_PENDING with *slot set (for auth_cancel); done() reports the
 * answer later, on the loop. Borrows user and pw (copied when parked).
 */
enum auth_verdict auth_begin(struct auth *a, void *owner, const char *user,
		    size_t ulen, const char *pw, size_t pwlen,
		    uint32_t *slot);

/* owner went away: its parked login's answer is dropped. */
void		 auth_cancel(struct auth *a, uint32_t slot);

/*
 * Records a refused login from peer ("ip:port"), logging it (rate
 * limited, user name escaped; user may be NULL). Returns how many ms the
 * refusal should wait.
 */
unsigned	 auth_failed(struct auth *a, const char *peer, const char *user,
		    long long now_ms);

/* A login from peer succeeded: forget its failures. */
void		 auth_succeeded(struct auth *a, const char *peer);

void		 auth_get_stats(const struct auth *a,
		    struct auth_stats *st);

/*
 * Reads cfg's password file and ACL file (NULL out for one not set),
 * reporting every error through report(file, err, ctx). A password file
 * also needs libcrypto, loaded here. 0 or GW_ECONFIG.
 */
int		 auth_load_files(const struct gw_config *cfg,
		    struct passwd_db **pw, struct acl **acl,
		    void (*report)(const char *, const struct gw_error *,
		    void *), void *ctx);

#endif
