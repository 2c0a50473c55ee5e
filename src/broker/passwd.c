/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Password files (see passwd.h). The file is read whole, each user line
 * parsed into a fixed-size entry, and the entries sorted by user name for
 * binary search: a reconnect storm of thousands of devices looks users up
 * in O(log n) without touching the file again. Hash checks go through
 * libcrypto, loaded on first use by deliver/crypto_auth_shim.c.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "broker/passwd.h"
#include "mem.h"

#define PASSWD_FILE_MAX		(64 * 1024 * 1024)

struct passwd_user {
	char			*name;		/* owned */
	size_t			 len;
	struct passwd_entry	 e;
};

struct passwd_db {
	struct passwd_user	*users;		/* sorted by name */
	size_t			 n, cap;
	struct passwd_entry	 dummy;
};

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64val(char ch)
{
	const char *p;

	if (ch == '\0' || (p = strchr(b64chars, ch)) == NULL)
		return -1;
	return (int)(p - b64chars);
}

/* Decodes padded base64 s[0..len) into out; returns bytes or -1. */
static int
b64_decode(const char *s, size_t len, uint8_t *out, size_t outmax)
{
	size_t i, n = 0, pad = 0;
	uint32_t acc;
	int v, k;

	if (len == 0 || len % 4 != 0)
		return -1;
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	for (i = 0; i < len; i += 4) {
		acc = 0;
		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == len &&
			    (size_t)k >= 4 - pad)
				v = 0;
			else if ((v = b64val(s[i + k])) < 0)
				return -1;
			acc = acc << 6 | (uint32_t)v;
		}
		for (k = 0; k < 3; k++) {
			if (i + 4 == len && (size_t)k >= 3 - pad)
				break;
			if (n == outmax)
				return -1;
			out[n++] = (uint8_t)(acc >> (16 - 8 * k));
		}
	}
	return (int)n;
}

/* Encodes in[0..len) as padded base64 into out (NUL-terminated). */
static void
b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t i;
	uint32_t acc;

	for (i = 0; i < len; i += 3) {
		acc = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			acc |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			acc |= in[i + 2];
		*out++ = b64chars[acc >> 18 & 63];
		*out++ = b64chars[acc >> 12 & 63];
		*out++ = i + 1 < len ? b64chars[acc >> 6 & 63] : '=';
		*out++ = i + 2 < len ? b64chars[acc & 63] : '=';
	}
	*out = '\0';
}

int
passwd_parse_hash(const char *s, size_t len, struct passwd_entry *e,
    const char **why)
{
	const char *end = s + len, *p, *q;
	unsigned long it;
	char num[16];
	int n;

	memset(e, 0, sizeof *e);
	if (len > 3 && memcmp(s, "$7$", 3) == 0) {
		e->kind = 7;
		p = s + 3;
		if ((q = memchr(p, '$', (size_t)(end - p))) == NULL ||
		    q == p || (size_t)(q - p) >= sizeof num) {
			*why = "expected $7$ITERATIONS$SALT$HASH";
			return GW_EMALFORMED;
		}
		memcpy(num, p, (size_t)(q - p));
		num[q - p] = '\0';
		if (strspn(num, "0123456789") != strlen(num) ||
		    (it = strtoul(num, NULL, 10)) == 0 ||
		    it > PASSWD_MAX_ITERATIONS) {
			*why = "iterations must be 1 to 10000000";
			return GW_EMALFORMED;
		}
		e->iterations = (uint32_t)it;
		p = q + 1;
	} else if (len > 3 && memcmp(s, "$6$", 3) == 0) {
		e->kind = 6;
		p = s + 3;
	} else {
		*why = "unsupported password hash (expected $7$ or $6$, as "
		    "mosquitto_passwd writes)";
		return GW_EMALFORMED;
	}
	if ((q = memchr(p, '$', (size_t)(end - p))) == NULL ||
	    (n = b64_decode(p, (size_t)(q - p), e->salt,
	    sizeof e->salt)) <= 0) {
		*why = "bad salt (expected base64)";
		return GW_EMALFORMED;
	}
	e->salt_len = (size_t)n;
	q++;
	if (b64_decode(q, (size_t)(end - q), e->hash, sizeof e->hash) !=
	    PASSWD_HASH_LEN) {
		*why = "bad hash (expected 64 bytes in base64)";
		return GW_EMALFORMED;
	}
	return 0;
}

static int
user_cmp(const void *a, const void *b)
{
	const struct passwd_user *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);

	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Parses one line (no newline) into db; 0 or GW_E* with why. */
static int
parse_line(struct passwd_db *db, const char *line, size_t len,
    const char **why)
{
	struct passwd_user *u;
	const char *colon;
	size_t n;
	int rc;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
	    line[len - 1] == '\t'))
		len--;
	if (len == 0 || line[0] == '#')
		return 0;
	if ((colon = memchr(line, ':', len)) == NULL || colon == line) {
		*why = "expected USER:HASH";
		return GW_EMALFORMED;
	}
	if (db->n == db->cap) {
		n = db->cap ? db->cap * 2 : 16;
		if ((u = gw_realloc(db->users, n * sizeof *u)) == NULL) {
			*why = "out of memory";
			return GW_ENOMEM;
		}
		db->users = u;
		db->cap = n;
	}
	u = &db->users[db->n];
	if ((rc = passwd_parse_hash(colon + 1, len - (size_t)(colon - line) - 1,
	    &u->e, why)) != 0)
		return rc;
	u->len = (size_t)(colon - line);
	if ((u->name = gw_strndup(line, u->len)) == NULL) {
		*why = "out of memory";
		return GW_ENOMEM;
	}
	db->n++;
	return 0;
}

/* Reads path whole into a new NUL-terminated buffer. */
static char *
read_file(const char *path, size_t *lenp, struct gw_error *err)
{
	struct stat st;
	FILE *f;
	char *buf;
	size_t n;

	if ((f = fopen(path, "r")) == NULL) {
		gw_error_set(err, path, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size > PASSWD_FILE_MAX) {
		gw_error_set(err, path, "cannot read (or larger than 64MB)");
		fclose(f);
		return NULL;
	}
	if ((buf = gw_malloc((size_t)st.st_size + 1)) == NULL) {
		gw_error_set(err, path, "out of memory");
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	buf[n] = '\0';
	*lenp = n;
	return buf;
}

struct passwd_db *
passwd_load(const char *path, struct gw_error *err)
{
	struct passwd_db *db;
	char *buf;
	size_t len;

	if ((buf = read_file(path, &len, err)) == NULL)
		return NULL;
	db = passwd_parse(buf, len, path, err);
	gw_free(buf);
	return db;
}

struct passwd_db *
passwd_parse(const char *buf, size_t len, const char *path,
    struct gw_error *err)
{
	struct passwd_db *db;
	const char *why = NULL, *p, *nl, *end;
	char where[128];
	size_t i, lineno = 0;

	if ((db = gw_calloc(1, sizeof *db)) == NULL) {
		gw_error_set(err, path, "out of memory");
		return NULL;
	}
	end = buf + len;
	for (p = buf; p < end; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((size_t)(nl - p) > PASSWD_LINE_MAX)
			why = "line too long";
		else if (memchr(p, '\0', (size_t)(nl - p)) != NULL)
			why = "NUL byte in line";
		else
			(void)parse_line(db, p, (size_t)(nl - p), &why);
		if (why != NULL)
			break;
	}
	if (why == NULL && db->n > 0) {
		qsort(db->users, db->n, sizeof *db->users, user_cmp);
		for (i = 1; i < db->n; i++) {
			if (user_cmp(&db->users[i - 1], &db->users[i]) == 0) {
				gw_error_set(err, path, "user \"%s\" appears "
				    "twice", db->users[i].name);
				passwd_free(db);
				return NULL;
			}
		}
	}
	if (why != NULL) {
		snprintf(where, sizeof where, "%s:%zu", path, lineno);
		gw_error_set(err, where, "%s", why);
		passwd_free(db);
		return NULL;
	}
	/* The dummy costs what the most expensive line costs. */
	db->dummy.kind = 7;
	db->dummy.iterations = PASSWD_ITERATIONS;
	if (db->n > 0) {
		db->dummy.kind = 6;
		db->dummy.iterations = 0;
	}
	for (i = 0; i < db->n; i++) {
		if (passwd_cost(&db->users[i].e) > passwd_cost(&db->dummy)) {
			db->dummy.kind = 7;
			db->dummy.iterations = db->users[i].e.iterations;
		}
	}
	db->dummy.salt_len = PASSWD_SALT_LEN;
	/* Random hash: no password is known to match it. */
	if (getrandom(db->dummy.hash, sizeof db->dummy.hash, 0) !=
	    (ssize_t)sizeof db->dummy.hash)
		memset(db->dummy.hash, 0x5a, sizeof db->dummy.hash);
	return db;
}

void
passwd_free(struct passwd_db *db)
{
	size_t i;

	if (db == NULL)
		return;
	for (i = 0; i < db->n; i++)
		gw_free(db->users[i].name);
	gw_free(db->users);
	gw_free(db);
}

size_t
passwd_count(const struct passwd_db *db)
{
	return db != NULL ? db->n : 0;
}

const struct passwd_entry *
passwd_find(const struct passwd_db *db, const char *user, size_t len)
{
	struct passwd_user key, *u;

	if (db == NULL || db->n == 0)
		return NULL;
	key.name = (char *)(uintptr_t)user;
	key.len = len;
	u = bsearch(&key, db->users, db->n, sizeof *db->users, user_cmp);
	return u != NULL ? &u->e : NULL;
}

const struct passwd_entry *
passwd_dummy(const struct passwd_db *db)
{
	return &db->dummy;
}

uint64_t
passwd_cost(const struct passwd_entry *e)
{
	/* One PBKDF2 round is two HMACs; one $6$ check is one digest. */
	return e->kind == 7 ? (uint64_t)e->iterations * 4 : 1;
}

bool
passwd_pad(const struct passwd_db *db, const struct passwd_entry *e,
    struct passwd_entry *pad)
{
	const struct passwd_entry *d = &db->dummy;

	if (passwd_cost(e) >= passwd_cost(d))
		return false;
	*pad = *d;
	/* $6$ costs about a PBKDF2 round: pad with the whole dummy. */
	if (e->kind == 7)
		pad->iterations = d->iterations - e->iterations;
	return true;
}

bool
passwd_verify(const struct passwd_entry *e, const char *pw, size_t pwlen)
{
	uint8_t out[PASSWD_HASH_LEN], *buf;
	unsigned int olen = 0;
	const EVP_MD *md;
	bool ok = false;

	if ((md = EVP_sha512()) == NULL || pwlen > 65535)
		return false;
	if (e->kind == 7) {
		if (PKCS5_PBKDF2_HMAC(pw, (int)pwlen, e->salt,
		    (int)e->salt_len, (int)e->iterations, md, sizeof out,
		    out) != 1)
			return false;
	} else {
		if ((buf = gw_malloc(pwlen + e->salt_len + 1)) == NULL)
			return false;
		memcpy(buf, pw, pwlen);
		memcpy(buf + pwlen, e->salt, e->salt_len);
		if (EVP_Digest(buf, pwlen + e->salt_len, out, &olen, md,
		    NULL) != 1 || olen != sizeof out) {
			explicit_bzero(buf, pwlen + e->salt_len);
			gw_free(buf);
			return false;
		}
		explicit_bzero(buf, pwlen + e->salt_len);
		gw_free(buf);
	}
	ok = CRYPTO_memcmp(out, e->hash, sizeof out) == 0;
	explicit_bzero(out, sizeof out);
	return ok;
}

int
passwd_make_line(const char *user, const char *pw, size_t pwlen,
    uint32_t iterations, char *out, size_t outlen)
{
	uint8_t salt[PASSWD_SALT_LEN], hash[PASSWD_HASH_LEN];
	char salt64[4 * sizeof salt / 3 + 4], hash64[4 * sizeof hash / 3 + 4];
	const EVP_MD *md;
	int n;

	if ((md = EVP_sha512()) == NULL ||
	    RAND_bytes(salt, sizeof salt) != 1 || pwlen > 65535 ||
	    PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, sizeof salt,
	    (int)iterations, md, sizeof hash, hash) != 1)
		return GW_EIO;
	b64_encode(salt, sizeof salt, salt64);
	b64_encode(hash, sizeof hash, hash64);
	explicit_bzero(hash, sizeof hash);
	n = snprintf(out, outlen, "%s:$7$%u$%s$%s", user, (unsigned)iterations,
	    salt64, hash64);
	if (n < 0 || (size_t)n >= outlen)
		return GW_ETOOBIG;
	return 0;
}
