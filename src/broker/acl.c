/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic ACLs (see acl.h): the JSON loader and the matcher. Entries keep
 * their file order in three lists (one per user, anonymous, patterns);
 * users are sorted for binary search. A check walks the client's own list
 * and then the patterns, stopping at the first matching deny; %u and %c
 * are substituted into a stack buffer per pattern (heap only for very long
 * ones), so a check allocates nothing in the common case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/acl.h"
#include "broker/share.h"
#include "broker/topic.h"
#include "jsonfile.h"
#include "mem.h"

#define ACL_FILE_MAX	(16 * 1024 * 1024)

struct acl_entry {
	char		*topic;		/* owned, NUL-terminated */
	size_t		 len;
	int		 access;	/* ACL_READ|ACL_WRITE or ACL_DENY */
	bool		 subst;		/* contains %u or %c */
};

struct acl_list {
	struct acl_entry *e;
	size_t		  n;
};

struct acl_user {
	char		*name;		/* owned */
	struct acl_list	 list;
};

struct acl {
	struct acl_user	*users;		/* sorted by name */
	size_t		 nusers;
	struct acl_list	 anonymous;
	struct acl_list	 patterns;
};

/* Next level of s[0..len) from *pos; false past the last level. */
static bool
next_level(const char *s, size_t len, size_t *pos, const char **lp,
    size_t *ll)
{
	const char *slash;

	if (*pos > len)
		return false;
	*lp = s + *pos;
	slash = memchr(*lp, '/', len - *pos);
	*ll = slash != NULL ? (size_t)(slash - *lp) : len - *pos;
	*pos += *ll + 1;
	return true;
}

bool
acl_pattern_covers(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t pp = 0, sp = 0, pl, sl;
	const char *pv, *sv;

	if (plen == 0 || slen == 0)
		return false;
	if (s[0] == '$' && (p[0] == '+' || p[0] == '#'))
		return false;
	for (;;) {
		if (!next_level(p, plen, &pp, &pv, &pl))
			return !next_level(s, slen, &sp, &sv, &sl);
		if (pl == 1 && pv[0] == '#')
			return true;	/* the rest, zero levels included */
		if (!next_level(s, slen, &sp, &sv, &sl))
			return false;
		if (pl == 1 && pv[0] == '+') {
			if (sl == 1 && sv[0] == '#')
				return false;	/* "+" cannot cover "#" */
			continue;
		}
		if (pl != sl || memcmp(pv, sv, pl) != 0)
			return false;
	}
}

/*
 * Writes e's topic with %u / %c replaced into buf (cap bytes, or a new
 * allocation in *heap when larger). Returns its length, or (size_t)-1 when
 * a value is missing or holds a wildcard (the entry does not apply).
 */
static size_t
substitute(const struct acl_entry *e, const char *user, const char *cid,
    char *buf, size_t cap, char **heap)
{
	const char *v, *t = e->topic;
	size_t n = 0, i, vl, need = 0;
	int pass;

	*heap = NULL;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0, n = 0; i < e->len; i++) {
			if (t[i] == '%' && i + 1 < e->len &&
			    (t[i + 1] == 'u' || t[i + 1] == 'c')) {
				v = t[i + 1] == 'u' ? user : cid;
				if (v == NULL || strpbrk(v, "+#") != NULL)
					return (size_t)-1;
				vl = strlen(v);
				if (pass == 1)
					memcpy(buf + n, v, vl);
				n += vl;
				i++;
				continue;
			}
			if (pass == 1)
				buf[n] = t[i];
			n++;
		}
		if (pass == 0) {
			need = n;
			if (need > cap &&
			    (buf = *heap = gw_malloc(need)) == NULL)
				return (size_t)-1;
		}
	}
	return need;
}

/*
 * Walks list for subject s: sets *allowed when an entry with one of the
 * want bits covers it; returns true when a deny entry covers it.
 */
static bool
walk(const struct acl_list *l, const char *user, const char *cid,
    const char *s, size_t slen, int want, bool *allowed)
{
	const struct acl_entry *e;
	char buf[512], *heap;
	const char *p;
	size_t i, plen;
	bool hit;

	for (i = 0; i < l->n; i++) {
		e = &l->e[i];
		if (e->access != ACL_DENY && (e->access & want) == 0)
			continue;
		if (e->access != ACL_DENY && *allowed)
			continue;	/* only a deny can change the answer */
		heap = NULL;
		p = e->topic;
		plen = e->len;
		if (e->subst) {
			plen = substitute(e, user, cid, buf, sizeof buf, &heap);
			if (plen == (size_t)-1)
				continue;
			p = heap != NULL ? heap : buf;
		}
		hit = acl_pattern_covers(p, plen, s, slen);
		gw_free(heap);
		if (!hit)
			continue;
		if (e->access == ACL_DENY)
			return true;
		*allowed = true;
	}
	return false;
}

static int
user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct acl_user *)a)->name,
	    ((const struct acl_user *)b)->name);
}

static const struct acl_list *
own_list(const struct acl *acl, const char *user)
{
	struct acl_user key, *u;

	if (user == NULL)
		return &acl->anonymous;
	if (acl->nusers == 0)
		return NULL;	/* bsearch() may not be given a NULL array */
	key.name = (char *)(uintptr_t)user;
	u = bsearch(&key, acl->users, acl->nusers, sizeof *acl->users,
	    user_cmp);
	return u != NULL ? &u->list : NULL;
}

static bool
check(const struct acl *acl, const char *user, const char *cid,
    const char *s, size_t len, int want)
{
	const struct acl_list *own = own_list(acl, user);
	bool allowed = false;

	if (own != NULL && walk(own, user, cid, s, len, want, &allowed))
		return false;
	if (walk(&acl->patterns, user, cid, s, len, want, &allowed))
		return false;
	return allowed;
}

bool
acl_check(const struct acl *acl, const char *user, const char *cid,
    const char *topic, size_t len, int access)
{
	if (acl == NULL)
		return true;
	return check(acl, user, cid, topic, len, access);
}

bool
acl_check_subscribe(const struct acl *acl, const char *user,
    const char *cid, const char *filter, size_t len)
{
	if (acl == NULL)
		return true;
	/* A shared subscription is checked by its filter, not its group. */
	filter = share_acl_filter(filter, len, &len);
	return check(acl, user, cid, filter, len, ACL_READ);
}

static void
list_free(struct acl_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		gw_free(l->e[i].topic);
	gw_free(l->e);
	l->e = NULL;
	l->n = 0;
}

void
acl_free(struct acl *acl)
{
	size_t i;

	if (acl == NULL)
		return;
	for (i = 0; i < acl->nusers; i++) {
		gw_free(acl->users[i].name);
		list_free(&acl->users[i].list);
	}
	gw_free(acl->users);
	list_free(&acl->anonymous);
	list_free(&acl->patterns);
	gw_free(acl);
}

static int
parse_access(const char *s)
{
	if (strcmp(s, "read") == 0)
		return ACL_READ;
	if (strcmp(s, "write") == 0)
		return ACL_WRITE;
	if (strcmp(s, "readwrite") == 0)
		return ACL_READ | ACL_WRITE;
	if (strcmp(s, "deny") == 0)
		return ACL_DENY;
	return 0;
}

/* Parses one entries array at path into l; 0 or GW_E* with err. */
static int
parse_list(const cJSON *arr, const char *origin, const char *path,
    struct acl_list *l, struct gw_error *err)
{
	const cJSON *it, *t, *a, *k;
	char where[128];
	size_t i = 0, n;

	if (!cJSON_IsArray(arr))
		return gw_error_set(err, origin, "%s: expected an array of "
		    "{\"topic\", \"access\"} objects, got %s", path,
		    jsonfile_type_name(arr));
	n = (size_t)cJSON_GetArraySize(arr);
	if (n > 0 && (l->e = gw_calloc(n, sizeof *l->e)) == NULL)
		return gw_error_set(err, origin, "out of memory");
	cJSON_ArrayForEach(it, arr) {
		snprintf(where, sizeof where, "%s[%zu]", path, i);
		if (!cJSON_IsObject(it))
			return gw_error_set(err, origin, "%s: expected an "
			    "object, got %s", where, jsonfile_type_name(it));
		cJSON_ArrayForEach(k, it) {
			if (strcmp(k->string, "topic") != 0 &&
			    strcmp(k->string, "access") != 0)
				return gw_error_set(err, origin, "%s.%s: "
				    "unknown key", where, k->string);
		}
		t = cJSON_GetObjectItemCaseSensitive(it, "topic");
		a = cJSON_GetObjectItemCaseSensitive(it, "access");
		if (!cJSON_IsString(t) || !topic_filter_valid(t->valuestring,
		    strlen(t->valuestring)))
			return gw_error_set(err, origin, "%s.topic: expected "
			    "a topic filter", where);
		if (!cJSON_IsString(a) || parse_access(a->valuestring) == 0)
			return gw_error_set(err, origin, "%s.access: expected "
			    "\"read\", \"write\", \"readwrite\" or \"deny\"",
			    where);
		if ((l->e[i].topic = gw_strdup(t->valuestring)) == NULL)
			return gw_error_set(err, origin, "out of memory");
		l->e[i].len = strlen(t->valuestring);
		l->e[i].access = parse_access(a->valuestring);
		l->e[i].subst = strstr(t->valuestring, "%u") != NULL ||
		    strstr(t->valuestring, "%c") != NULL;
		l->n = ++i;
	}
	return 0;
}

static int
parse_root(struct acl *acl, const cJSON *root, const char *origin,
    struct gw_error *err)
{
	const cJSON *k, *users, *u;
	char where[160];
	size_t i = 0;
	int rc;

	if (!cJSON_IsObject(root))
		return gw_error_set(err, origin, "expected an object, got %s",
		    jsonfile_type_name(root));
	cJSON_ArrayForEach(k, root) {
		if (strcmp(k->string, "users") != 0 &&
		    strcmp(k->string, "anonymous") != 0 &&
		    strcmp(k->string, "patterns") != 0)
			return gw_error_set(err, origin, "%s: unknown key "
			    "(expected users, anonymous, patterns)",
			    k->string);
	}
	if ((k = cJSON_GetObjectItemCaseSensitive(root, "anonymous")) !=
	    NULL && (rc = parse_list(k, origin, "anonymous", &acl->anonymous,
	    err)) != 0)
		return rc;
	if ((k = cJSON_GetObjectItemCaseSensitive(root, "patterns")) !=
	    NULL && (rc = parse_list(k, origin, "patterns", &acl->patterns,
	    err)) != 0)
		return rc;
	if ((users = cJSON_GetObjectItemCaseSensitive(root, "users")) == NULL)
		return 0;
	if (!cJSON_IsObject(users))
		return gw_error_set(err, origin, "users: expected an object "
		    "of user name to entries, got %s",
		    jsonfile_type_name(users));
	acl->nusers = (size_t)cJSON_GetArraySize(users);
	if (acl->nusers > 0 && (acl->users = gw_calloc(acl->nusers,
	    sizeof *acl->users)) == NULL) {
		acl->nusers = 0;
		return gw_error_set(err, origin, "out of memory");
	}
	cJSON_ArrayForEach(u, users) {
		if ((acl->users[i].name = gw_strdup(u->string)) == NULL)
			return gw_error_set(err, origin, "out of memory");
		snprintf(where, sizeof where, "users.%s", u->string);
		if ((rc = parse_list(u, origin, where, &acl->users[i].list,
		    err)) != 0)
			return rc;
		i++;
	}
	if (acl->nusers > 1)
		qsort(acl->users, acl->nusers, sizeof *acl->users, user_cmp);
	for (i = 1; i < acl->nusers; i++)
		if (strcmp(acl->users[i - 1].name, acl->users[i].name) == 0)
			return gw_error_set(err, origin, "users.%s: appears "
			    "twice", acl->users[i].name);
	return 0;
}

struct acl *
acl_parse(const char *text, size_t len, const char *origin,
    struct gw_error *err)
{
	const char *end = NULL;
	struct acl *acl;
	cJSON *root;
	char where[160];
	int line, col;

	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL) {
		if (jsonfile_position(text, len, end, &line, &col) == 0) {
			snprintf(where, sizeof where, "%s:%d:%d", origin,
			    line, col);
			gw_error_set(err, where, "JSON syntax error");
		} else
			gw_error_set(err, origin, "JSON syntax error");
		return NULL;
	}
	if ((acl = gw_calloc(1, sizeof *acl)) == NULL) {
		cJSON_Delete(root);
		gw_error_set(err, origin, "out of memory");
		return NULL;
	}
	if (parse_root(acl, root, origin, err) != 0) {
		acl_free(acl);
		acl = NULL;
	}
	cJSON_Delete(root);
	return acl;
}

struct acl *
acl_load(const char *path, struct gw_error *err)
{
	struct acl *acl;
	char why[200], *text;
	size_t len;

	if ((text = jsonfile_read(path, ACL_FILE_MAX, &len, why, sizeof why,
	    NULL)) == NULL) {
		gw_error_set(err, path, "%s", why);
		return NULL;
	}
	acl = acl_parse(text, len, path, err);
	gw_free(text);
	return acl;
}
