/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic ACLs from a JSON file:
 *
 *	{ "users":     { "alice": [ {"topic": "site/alice/#",
 *	                             "access": "readwrite"} ] },
 *	  "anonymous": [ {"topic": "public/#", "access": "read"} ],
 *	  "patterns":  [ {"topic": "dev/%c/#", "access": "write"} ] }
 *
 * access is "read", "write", "readwrite" or "deny". "users" entries apply
 * to that user, "anonymous" entries to clients without a user name,
 * "patterns" to everyone, with %u replaced by the user name and %c by the
 * client id (an entry whose value is missing or contains '+' or '#' never
 * matches: a chosen id cannot widen a rule). Once a file is loaded
 * everything not allowed is denied, and a matching "deny" entry wins over
 * every allow. A topic is checked by matching; a SUBSCRIBE filter is
 * granted when an entry allowing read covers it (every topic the filter
 * can match, the entry matches too) and no deny entry covers it.
 * Immutable once loaded: reload builds a new one.
 */
#ifndef GW_ACL_H
#define GW_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define ACL_READ	0x01
#define ACL_WRITE	0x02
#define ACL_DENY	0x04

struct acl;

/*
 * Parses an ACL from text[0..len); origin names it in errors. Returns a
 * new ACL, or NULL with err filled (err->path "FILE: JSON.PATH" or
 * "FILE:LINE:COL" for a syntax error).
 */
struct acl	*acl_parse(const char *text, size_t len, const char *origin,
		    struct gw_error *err);

/* Reads and parses the ACL file at path (see acl_parse). */
struct acl	*acl_load(const char *path, struct gw_error *err);

/* Frees acl. NULL ok. */
void		 acl_free(struct acl *acl);

/*
 * May the client (user NULL when anonymous, client id cid) read (access
 * ACL_READ) or write (ACL_WRITE) topic[0..len)? Borrows everything.
 */
bool		 acl_check(const struct acl *acl, const char *user,
		    const char *cid, const char *topic, size_t len,
		    int access);

/* May the client subscribe to filter[0..len)? For "$share/GROUP/FILTER"
 * the answer is FILTER's. */
bool		 acl_check_subscribe(const struct acl *acl,
		    const char *user, const char *cid, const char *filter,
		    size_t len);

/*
 * Does ACL pattern p cover subject s (a topic name, or a filter whose
 * wildcard levels only p's wildcards match)? Exposed for the unit tests.
 */
bool		 acl_pattern_covers(const char *p, size_t plen,
		    const char *s, size_t slen);

#endif
