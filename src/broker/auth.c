/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Password logins off the event loop (see auth.h).
 *
 * Slots: a login that must be hashed takes one of AUTH_MAX_PENDING slots
 * (owner, generation, the cache digest to remember on success). The
 * request carries slot and generation, a copy of the stored entry and of
 * the password; the worker answers (slot, generation, ok) on the result
 * queue and writes the eventfd. An answer whose generation no longer
 * matches (its owner was cancelled and the slot reused) is dropped. Both
 * queues hold twice the slots, so the worker never loses an answer for a
 * live slot. Passwords are wiped from memory as soon as they are hashed.
 *
 * The failure table is open-addressed (8 probes) under SipHash-2-4 with a
 * random key, so a peer choosing addresses cannot pile them on one
 * bucket; when every probe is live the least recently failed one goes.
 */
#include <sys/eventfd.h>
#include <sys/random.h>

#include <pthread.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "broker/acl.h"
#include "broker/auth.h"
#include "broker/passwd.h"
#include "config.h"
#include "log.h"
#include "mem.h"
#include "net/ev.h"
#include "queue.h"

#define DIGEST_LEN	32
#define CACHE_WAYS	4
#define FAIL_PROBES	8
#define FAIL_WINDOW_MS	60000

struct auth_req {
	uint32_t		slot;
	uint32_t		gen;
	struct passwd_entry	e;
	struct passwd_entry	pad;		/* checked too when padded */
	bool			padded;		/* e is cheaper than the dummy */
	char			*pw;		/* owned copy, wiped */
	size_t			pwlen;
};

struct auth_res {
	uint32_t		slot;
	uint32_t		gen;
	bool			ok;
};

struct auth_slot {
	void		*owner;		/* NULL: free or cancelled */
	uint32_t	 gen;
	bool		 busy;		/* a request is out */
	bool		 known;		/* user exists: cache success */
	uint8_t		 digest[DIGEST_LEN];
};

struct cache_ent {
	bool		 used;
	uint8_t		 digest[DIGEST_LEN];
};

struct fail_ent {
	char		 addr[64];	/* "" = free */
	long long	 window_ms;	/* start of the current minute */
	long long	 last_ms;	/* last failure */
	unsigned	 count;		/* failures in the window */
	unsigned	 delay_ms;	/* last delay given */
};

struct auth {
	struct ev_loop		*loop;
	auth_done_fn		 done;
	void			*arg;
	struct passwd_db	*db;
	struct queue		*req, *res;
	int			 efd;
	pthread_t		 worker;
	bool			 worker_on;
	atomic_bool		 stopping;	/* drop what is queued */
	struct auth_slot	 slots[AUTH_MAX_PENDING];
	uint8_t			 key[DIGEST_LEN]; /* cache HMAC key */
	struct cache_ent	*cache;		/* AUTH_CACHE_SIZE of them */
	unsigned		 cache_victim;
	uint64_t		 sipkey[2];
	struct fail_ent		*fails;		/* AUTH_FAIL_SLOTS */
	struct auth_stats	 stats;
	struct log_limit	 fail_log;
};

static void	*worker_main(void *);
static void	 result_cb(struct ev_loop *, int, unsigned, void *);

static void
random_fill(void *p, size_t n)
{
	if (getrandom(p, n, 0) != (ssize_t)n)
		memset(p, 0x3c, n);	/* no entropy: still bounded */
}

struct auth *
auth_new(struct ev_loop *loop, auth_done_fn done, void *arg)
{
	struct auth *a;

	if ((a = gw_calloc(1, sizeof *a)) == NULL)
		return NULL;
	a->loop = loop;
	a->done = done;
	a->arg = arg;
	a->efd = -1;
	random_fill(a->sipkey, sizeof a->sipkey);
	random_fill(a->key, sizeof a->key);
	if ((a->cache = gw_calloc(AUTH_CACHE_SIZE, sizeof *a->cache)) ==
	    NULL || (a->fails = gw_calloc(AUTH_FAIL_SLOTS,
	    sizeof *a->fails)) == NULL) {
		auth_free(a);
		return NULL;
	}
	return a;
}

/* Starts the worker, its queues and eventfd on first need. */
static int
worker_start(struct auth *a)
{
	if (a->worker_on)
		return 0;
	if ((a->req = queue_new(sizeof(struct auth_req),
	    2 * AUTH_MAX_PENDING)) == NULL ||
	    (a->res = queue_new(sizeof(struct auth_res),
	    2 * AUTH_MAX_PENDING)) == NULL)
		return GW_ENOMEM;
	if ((a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return GW_EIO;
	if (ev_add_fd(a->loop, a->efd, EV_READ, result_cb, a) != 0)
		return GW_EIO;
	if (pthread_create(&a->worker, NULL, worker_main, a) != 0) {
		ev_del_fd(a->loop, a->efd);
		return GW_EIO;
	}
	a->worker_on = true;
	return 0;
}

static void
req_wipe(struct auth_req *r)
{
	if (r->pw != NULL) {
		explicit_bzero(r->pw, r->pwlen);
		gw_free(r->pw);
		r->pw = NULL;
	}
}

void
auth_free(struct auth *a)
{
	struct auth_req r;

	if (a == NULL)
		return;
	if (a->worker_on) {
		atomic_store(&a->stopping, true);
		queue_close(a->req);
		pthread_join(a->worker, NULL);
		ev_del_fd(a->loop, a->efd);
	}
	while (a->req != NULL && queue_pop(a->req, &r, 1, 0) == 1)
		req_wipe(&r);
	if (a->efd != -1)
		close(a->efd);
	queue_free(a->req);
	queue_free(a->res);
	passwd_free(a->db);
	gw_free(a->cache);
	gw_free(a->fails);
	explicit_bzero(a->key, sizeof a->key);
	gw_free(a);
}

int
auth_set_passwd(struct auth *a, struct passwd_db *db)
{
	passwd_free(a->db);
	a->db = db;
	memset(a->cache, 0, AUTH_CACHE_SIZE * sizeof *a->cache);
	random_fill(a->key, sizeof a->key);
	return 0;
}

bool
auth_has_passwd(const struct auth *a)
{
	return a != NULL && a->db != NULL;
}

/* The worker: hashes one request at a time until the queue closes. */
static void *
worker_main(void *arg)
{
	struct auth *a = arg;
	struct auth_req r;
	struct auth_res res;
	uint64_t one = 1;

	while (queue_pop(a->req, &r, 1, -1) == 1) {
		if (atomic_load(&a->stopping)) {
			req_wipe(&r);	/* shutting down: nobody waits */
			continue;
		}
		res.slot = r.slot;
		res.gen = r.gen;
		res.ok = passwd_verify(&r.e, r.pw, r.pwlen);
		/* Known or not, every check costs what the dummy costs. */
		if (r.padded)
			(void)passwd_verify(&r.pad, r.pw, r.pwlen);
		req_wipe(&r);
		/* A full counter only means the loop is awake already. */
		if (queue_push(a->res, &res) == 0 &&
		    write(a->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_warn("auth: cannot wake the loop: %s",
			    strerror(errno));
	}
	return NULL;
}

/* HMAC-SHA256(key, user NUL pw): what the cache remembers. */
static int
pair_digest(struct auth *a, const char *user, size_t ulen, const char *pw,
    size_t pwlen, uint8_t *out)
{
	unsigned int olen = 0;
	const EVP_MD *md;
	uint8_t *buf;
	size_t n = ulen + 1 + pwlen;
	int rc = GW_EIO;

	if ((md = EVP_sha256()) == NULL || (buf = gw_malloc(n)) == NULL)
		return GW_EIO;
	memcpy(buf, user, ulen);
	buf[ulen] = '\0';
	memcpy(buf + ulen + 1, pw, pwlen);
	if (HMAC(md, a->key, sizeof a->key, buf, n, out, &olen) != NULL &&
	    olen == DIGEST_LEN)
		rc = 0;
	explicit_bzero(buf, n);
	gw_free(buf);
	return rc;
}

static struct cache_ent *
cache_set(struct auth *a, const uint8_t *d)
{
	uint32_t h;

	memcpy(&h, d, sizeof h);	/* keyed digest: already uniform */
	return &a->cache[(h % (AUTH_CACHE_SIZE / CACHE_WAYS)) * CACHE_WAYS];
}

static bool
cache_has(struct auth *a, const uint8_t *d)
{
	struct cache_ent *set = cache_set(a, d);
	int i;

	for (i = 0; i < CACHE_WAYS; i++)
		if (set[i].used && memcmp(set[i].digest, d, DIGEST_LEN) == 0)
			return true;
	return false;
}

static void
cache_add(struct auth *a, const uint8_t *d)
{
	struct cache_ent *set = cache_set(a, d);
	int i;

	for (i = 0; i < CACHE_WAYS; i++) {
		if (!set[i].used)
			break;
	}
	if (i == CACHE_WAYS)
		i = (int)(a->cache_victim++ % CACHE_WAYS);
	set[i].used = true;
	memcpy(set[i].digest, d, DIGEST_LEN);
}

enum auth_verdict
auth_begin(struct auth *a, void *owner, const char *user, size_t ulen,
    const char *pw, size_t pwlen, uint32_t *slot)
{
	const struct passwd_entry *e;
	struct auth_slot *s = NULL;
	struct auth_req r;
	uint8_t d[DIGEST_LEN];
	bool have_d;
	uint32_t i;

	have_d = pair_digest(a, user, ulen, pw, pwlen, d) == 0;
	if (have_d && cache_has(a, d)) {
		a->stats.cache_hits++;
		a->stats.ok++;
		return AUTH_OK;
	}
	for (i = 0; i < AUTH_MAX_PENDING; i++) {
		if (!a->slots[i].busy) {
			s = &a->slots[i];
			break;
		}
	}
	if (s == NULL || worker_start(a) != 0) {
		a->stats.busy++;
		return AUTH_BUSY;
	}
	memset(&r, 0, sizeof r);
	e = passwd_find(a->db, user, ulen);
	s->known = e != NULL && have_d;
	if (e == NULL)
		e = passwd_dummy(a->db);
	r.e = *e;
	r.padded = passwd_pad(a->db, e, &r.pad);
	r.slot = i;
	r.gen = ++s->gen;
	r.pwlen = pwlen;
	if ((r.pw = gw_malloc(pwlen + 1)) == NULL) {
		a->stats.busy++;
		return AUTH_BUSY;
	}
	memcpy(r.pw, pw, pwlen);
	if (queue_push(a->req, &r) != 0) {
		req_wipe(&r);
		a->stats.busy++;
		return AUTH_BUSY;
	}
	s->busy = true;
	s->owner = owner;
	memcpy(s->digest, d, sizeof d);
	*slot = i;
	return AUTH_PENDING;
}

void
auth_cancel(struct auth *a, uint32_t slot)
{
	if (slot < AUTH_MAX_PENDING)
		a->slots[slot].owner = NULL;
}

static void
result_cb(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
	struct auth *a = arg;
	struct auth_res res;
	struct auth_slot *s;
	uint64_t v;
	void *owner;

	(void)loop;
	(void)events;
	while (read(fd, &v, sizeof v) == (ssize_t)sizeof v)
		;
	while (queue_pop(a->res, &res, 1, 0) == 1) {
		if (res.slot >= AUTH_MAX_PENDING)
			continue;
		s = &a->slots[res.slot];
		if (!s->busy || s->gen != res.gen)
			continue;
		s->busy = false;
		owner = s->owner;
		s->owner = NULL;
		if (res.ok && s->known)
			cache_add(a, s->digest);
		explicit_bzero(s->digest, sizeof s->digest);
		if (res.ok)
			a->stats.ok++;
		if (owner != NULL)
			a->done(owner, res.ok, a->arg);
	}
}

/* SipHash-2-4 of s[0..len) under k (the failure table's keyed hash). */
#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

static uint64_t
siphash(const uint64_t k[2], const char *s, size_t len)
{
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k[1] ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k[1] ^ 0x7465646279746573ULL;
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, j;

	for (i = 0; i + 8 <= len; i += 8) {
		for (m = 0, j = 0; j < 8; j++)
			m |= (uint64_t)(uint8_t)s[i + j] << (8 * j);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (j = 0; i + j < len; j++)
		b |= (uint64_t)(uint8_t)s[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* "ip:port" -> "ip" into out. */
static void
peer_addr(const char *peer, char *out, size_t outlen)
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);

	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, peer, n);
	out[n] = '\0';
}

/* The entry for addr, a fresh one (evicting) when create, else NULL. */
static struct fail_ent *
fail_find(struct auth *a, const char *addr, bool create)
{
	struct fail_ent *f, *victim = NULL;
	uint64_t h = siphash(a->sipkey, addr, strlen(addr));
	unsigned i;

	for (i = 0; i < FAIL_PROBES; i++) {
		f = &a->fails[(h + i) % AUTH_FAIL_SLOTS];
		if (strcmp(f->addr, addr) == 0)
			return f;
		if (victim == NULL || f->addr[0] == '\0' ||
		    (victim->addr[0] != '\0' && f->last_ms < victim->last_ms))
			victim = f;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	snprintf(victim->addr, sizeof victim->addr, "%s", addr);
	return victim;
}

/* Copies s into out with control characters and quotes escaped. */
static void
escape(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *s != '\0' && n + 5 < outlen; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' ||
		    *s == '\\')
			n += (size_t)snprintf(out + n, outlen - n, "\\x%02x",
			    (unsigned char)*s);
		else
			out[n++] = *s;
	}
	out[n] = '\0';
}

unsigned
auth_failed(struct auth *a, const char *peer, const char *user,
    long long now_ms)
{
	char addr[64], ubuf[128];
	struct fail_ent *f;

	a->stats.failed++;
	peer_addr(peer, addr, sizeof addr);
	f = fail_find(a, addr, true);
	if (f->count == 0 || now_ms - f->window_ms > FAIL_WINDOW_MS) {
		f->window_ms = now_ms;
		f->count = 0;
		f->delay_ms = 0;
	}
	f->count++;
	f->last_ms = now_ms;
	if (f->count > AUTH_FREE_FAILURES) {
		f->delay_ms = f->delay_ms == 0 ? AUTH_DELAY_MIN_MS :
		    f->delay_ms * 2;
		if (f->delay_ms > AUTH_DELAY_MAX_MS)
			f->delay_ms = AUTH_DELAY_MAX_MS;
		a->stats.delayed++;
	}
	if (log_ratelimited(&a->fail_log, 10, 10000)) {
		escape(user != NULL ? user : "", ubuf, sizeof ubuf);
		log_warn("login refused from %s (user %s%s%s): %u failures "
		    "from this address in the last minute%s", addr,
		    user != NULL ? "\"" : "", user != NULL ? ubuf :
		    "anonymous", user != NULL ? "\"" : "", f->count,
		    f->delay_ms > 0 ? ", answer delayed" : "");
	}
	return f->delay_ms;
}

void
auth_succeeded(struct auth *a, const char *peer)
{
	char addr[64];
	struct fail_ent *f;

	peer_addr(peer, addr, sizeof addr);
	if ((f = fail_find(a, addr, false)) != NULL)
		memset(f, 0, sizeof *f);
}

void
auth_get_stats(const struct auth *a, struct auth_stats *st)
{
	if (a == NULL)
		memset(st, 0, sizeof *st);
	else
		*st = a->stats;
}

/* Reports err with its path ("FILE:LINE" or "FILE") as the file name. */
static void
emit(void (*report)(const char *, const struct gw_error *, void *),
    void *ctx, struct gw_error *err)
{
	char where[sizeof err->path];

	memcpy(where, err->path, sizeof where);
	err->path[0] = '\0';
	report(where, err, ctx);
}

int
auth_load_files(const struct gw_config *cfg, struct passwd_db **pw,
    struct acl **acl, void (*report)(const char *, const struct gw_error *,
    void *), void *ctx)
{
	struct gw_error err;
	int rc = 0;

	*pw = NULL;
	*acl = NULL;
	memset(&err, 0, sizeof err);
	if (cfg->password_file != NULL) {
		if ((*pw = passwd_load(cfg->password_file, &err)) == NULL) {
			emit(report, ctx, &err);
			rc = GW_ECONFIG;
		} else if (EVP_sha512() == NULL) {
			gw_error_set(&err, cfg->password_file, "libcrypto "
			    "(libcrypto.so.3) is needed to check passwords");
			emit(report, ctx, &err);
			rc = GW_ECONFIG;
		}
	}
	memset(&err, 0, sizeof err);
	if (cfg->acl_file != NULL &&
	    (*acl = acl_load(cfg->acl_file, &err)) == NULL) {
		emit(report, ctx, &err);
		rc = GW_ECONFIG;
	}
	if (rc != 0) {
		passwd_free(*pw);
		acl_free(*acl);
		*pw = NULL;
		*acl = NULL;
	}
	return rc;
}
