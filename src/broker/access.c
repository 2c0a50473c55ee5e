/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may connect, publish, subscribe and receive: the broker's side of
 * auth.c (passwords) and acl.c (topic ACLs).
 *
 * CONNECT: a client without a user name is refused (CONNACK 5, as
 * Mosquitto 2 answers) unless allow_anonymous; with a password file every
 * user name must come with its password. Unknown user, wrong password and
 * a refused anonymous client all get the same CONNACK 5. A login that
 * must be hashed parks the connection: the CONNECT body is kept, reading
 * stops (client_should_pause), and when the worker answers the CONNECT is
 * decoded again and finished (handle_connect_resume). Refusals past the
 * free failures per address wait on the client's timer before the CONNACK
 * goes out; reading stays stopped meanwhile.
 *
 * Topics: once an ACL file is set, a PUBLISH the client may not write is
 * acknowledged like any other (3.1.1 has no refusal) but not stored,
 * retained, fanned out or forwarded; "$SYS/" is never writable by clients,
 * ACL or not. A SUBSCRIBE filter the client may not read gets 0x80, and
 * every delivery is checked again against the receiving session's read
 * and deny rules, so a "#" subscription sees only what its client may
 * read. A session remembers its last client's user name for this; one
 * loaded from the database before its client came back is checked when
 * its queued messages are sent. Reloading the ACL re-checks every
 * subscription and drops those no longer allowed.
 */
#include <stdio.h>
#include <string.h>

#include "broker/acl.h"
#include "broker/auth.h"
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/passwd.h"
#include "broker/subs.h"
#include "config.h"
#include "mem.h"
#include "mqtt/reason.h"

static void	auth_done(void *, bool, void *);

/* The login checker, created on first need. */
static struct auth *
get_auth(struct broker *b)
{
	if (b->auth == NULL)
		b->auth = auth_new(b->loop, auth_done, b);
	return b->auth;
}

/* Drops s's subscriptions that acl no longer grants. */
static void
recheck_session(struct session *s, void *arg)
{
	struct broker *b = arg;
	const char *user = s->username;
	size_t i = 0, dropped = 0;

	if (!s->ident_known)
		return;		/* checked when its messages are sent */
	while (i < s->nsubs) {
		if (acl_check_subscribe(b->acl, user, s->client_id,
		    s->subs[i].filter, s->subs[i].len)) {
			i++;
			continue;
		}
		log_info("client %s: subscription to %s removed: the reloaded "
		    "ACL does not allow it", s->client_id, s->subs[i].filter);
		subs_remove(b->subs, s->subs[i].filter, s->subs[i].len, s);
		session_sub_remove(s, s->subs[i].filter, s->subs[i].len);
		dropped++;
	}
	if (dropped > 0 && !s->clean)
		persist_session_save(b, s);
}

int
broker_set_access(struct broker *b, struct passwd_db *pw, struct acl *acl)
{
	struct auth *a = NULL;

	if ((pw != NULL || !b->cfg->allow_anonymous) &&
	    (a = get_auth(b)) == NULL) {
		passwd_free(pw);
		acl_free(acl);
		return GW_ENOMEM;
	}
	if (a != NULL)
		auth_set_passwd(a, pw);
	else if (b->auth != NULL)
		auth_set_passwd(b->auth, NULL);
	acl_free(b->acl);
	b->acl = acl;
	if (acl != NULL)
		session_foreach(b->sessions, recheck_session, b);
	return 0;
}

void
broker_get_access_stats(const struct broker *b,
    struct broker_access_stats *st)
{
	struct auth_stats as;

	auth_get_stats(b->auth, &as);
	*st = b->access_stats;
	st->logins_ok = as.ok;
	st->logins_failed = as.failed;
	st->login_cache_hits = as.cache_hits;
	st->logins_busy = as.busy;
	st->logins_delayed = as.delayed;
}

static void
refuse_timer_cb(struct ev_loop *loop, void *arg)
{
	struct client *c = arg;

	(void)loop;
	c->auth_wait = false;
	/* 5.0: a wrong password is 0x86, no user name where one is due 0x87. */
	proto5_connack_refuse(c, CODEC_CONNACK_NOT_AUTHORIZED,
	    c->username != NULL ? REASON_BAD_CREDENTIALS :
	    REASON_NOT_AUTHORIZED, "not authorized");
}

/* Answers CONNACK 5, at once or after the failure delay. */
static void
refuse(struct client *c, const char *user)
{
	struct broker *b = c->b;
	struct auth *a = get_auth(b);
	unsigned delay = 0;

	if (a != NULL)
		delay = auth_failed(a, c->conn.peer, user, ev_now(b->loop));
	if (delay == 0) {
		refuse_timer_cb(b->loop, c);
		return;
	}
	c->auth_wait = true;
	ev_timer_set(b->loop, &c->timer, ev_now(b->loop) + delay,
	    refuse_timer_cb, c);
}

int
access_login(struct client *c, const struct codec_connect *cc,
    const uint8_t *body, size_t len)
{
	struct broker *b = c->b;
	const char *user = c->username;
	uint32_t slot = 0;

	if (user == NULL) {
		if (b->cfg->allow_anonymous)
			return ACCESS_GO;
		refuse(c, NULL);
		return ACCESS_WAIT;
	}
	if (c->cert_identity || !auth_has_passwd(b->auth))
		return ACCESS_GO;
	switch (auth_begin(b->auth, c, user, strlen(user),
	    cc->has_password ? (const char *)cc->password.ptr : "",
	    cc->has_password ? cc->password.len : 0, &slot)) {
	case AUTH_OK:
		auth_succeeded(b->auth, c->conn.peer);
		return ACCESS_GO;
	case AUTH_BUSY:
		if (log_ratelimited(&b->err_log, 5, 10000))
			log_warn("refusing a login from %s: %d logins are "
			    "being checked already", c->conn.peer,
			    AUTH_MAX_PENDING);
		proto5_connack_refuse(c, CODEC_CONNACK_UNAVAILABLE,
		    REASON_SERVER_BUSY, NULL);
		return ACCESS_WAIT;
	case AUTH_PENDING:
		break;
	}
	if ((c->parked = gw_malloc(len > 0 ? len : 1)) == NULL) {
		auth_cancel(b->auth, slot);
		return GW_ENOMEM;
	}
	memcpy(c->parked, body, len);
	c->parked_len = len;
	c->auth_slot = slot;
	c->auth_wait = true;
	c->auth_parked = true;
	return ACCESS_WAIT;
}

/* The worker's answer for a parked CONNECT. */
static void
auth_done(void *owner, bool ok, void *arg)
{
	struct client *c = owner;
	int rc;

	(void)arg;
	c->auth_parked = false;
	c->auth_wait = false;
	if (c->state != CLIENT_NEW) {
		gw_free(c->parked);
		c->parked = NULL;
		return;
	}
	if (!ok) {
		gw_free(c->parked);
		c->parked = NULL;
		refuse(c, c->username);
		return;
	}
	auth_succeeded(c->b->auth, c->conn.peer);
	rc = handle_connect_resume(c, c->parked, c->parked_len);
	gw_free(c->parked);
	c->parked = NULL;
	if (rc != 0) {
		client_close_now(c, gw_strerror(rc));
		return;
	}
	client_resume(c);
}

void
access_client_gone(struct client *c)
{
	if (c->auth_parked && c->b->auth != NULL)
		auth_cancel(c->b->auth, c->auth_slot);
	c->auth_parked = false;
	gw_free(c->parked);
	c->parked = NULL;
}

/* Is topic under $SYS/, which only the broker may publish to? */
static bool
is_sys(const char *t, size_t len)
{
	return len >= 4 && memcmp(t, "$SYS", 4) == 0 &&
	    (len == 4 || t[4] == '/');
}

bool
access_may_publish(struct broker *b, const char *user, const char *cid,
    const char *topic, size_t len)
{
	if (is_sys(topic, len))
		return false;
	return acl_check(b->acl, user, cid, topic, len, ACL_WRITE);
}

bool
access_publish(struct client *c, const char *topic, size_t len)
{
	struct broker *b = c->b;

	if (access_may_publish(b, c->username, c->sess->client_id, topic,
	    len))
		return true;
	b->access_stats.publish_denied++;
	if (log_ratelimited(&b->acl_log, 10, 10000))
		client_log(LOG_LVL_WARN, c, "publish to %.*s denied%s",
		    (int)(len > 200 ? 200 : len), topic, is_sys(topic, len) ?
		    " ($SYS is the broker's)" : " by the ACL");
	return false;
}

bool
access_subscribe(struct client *c, const char *filter, size_t len)
{
	struct broker *b = c->b;

	if (acl_check_subscribe(b->acl, c->username, c->sess->client_id,
	    filter, len))
		return true;
	b->access_stats.subscribe_denied++;
	if (log_ratelimited(&b->acl_log, 10, 10000))
		client_log(LOG_LVL_WARN, c, "subscription to %.*s denied by "
		    "the ACL", (int)(len > 200 ? 200 : len), filter);
	return false;
}

bool
access_deliver(struct broker *b, struct session *s, const struct msg *m,
    bool when_unknown)
{
	const char *user;

	if (b->acl == NULL)
		return true;
	if (s->client != NULL && s->client->state == CLIENT_CONNECTED)
		user = s->client->username;
	else if (s->ident_known)
		user = s->username;
	else
		return when_unknown;
	if (acl_check(b->acl, user, s->client_id, m->topic, m->topic_len,
	    ACL_READ))
		return true;
	b->access_stats.deliver_denied++;
	return false;
}

int
access_session_ident(struct session *s, const char *user)
{
	char *u = NULL;

	if (user != NULL && (u = gw_strdup(user)) == NULL)
		return GW_ENOMEM;
	gw_free(s->username);
	s->username = u;
	s->ident_known = true;
	return 0;
}

void
access_free(struct broker *b)
{
	auth_free(b->auth);
	b->auth = NULL;
	acl_free(b->acl);
	b->acl = NULL;
}
