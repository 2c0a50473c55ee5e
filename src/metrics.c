/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics HTTP server; see metrics.h.
 *
 * A connection goes through three states. READING: bytes are read into a
 * buffer bounded by METRICS_REQ_MAX until the blank line that ends the
 * headers; a request that does not fit is answered 431. WRITING: the whole
 * response (status line, headers, body) is built once into the output
 * buffer and written as the socket accepts it, with EV_WRITE interest
 * while it does not. DRAINING: the write side is shut down and whatever
 * the client still sends is read and discarded until it closes, so that
 * closing a socket with unread input (an oversized request) cannot reset
 * the connection before the client has read the answer. One deadline timer
 * per connection, armed at accept, closes it in any state. Nothing here
 * blocks and nothing a client sends can make it allocate more than
 * METRICS_REQ_MAX plus one response.
 */
#include <sys/socket.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "net/ev.h"
#include "net/listen.h"
#include "status_page.h"

#define METRICS_DRAIN_MAX	65536	/* discarded after answering */

enum mconn_state {
	MCONN_READING,
	MCONN_WRITING,
	MCONN_DRAINING
};

struct mconn {
	struct metrics	*m;
	int		 fd;
	size_t		 slot;		/* index in m->conns */
	enum mconn_state state;
	struct buf	 in;		/* request, <= METRICS_REQ_MAX */
	struct buf	 out;		/* response being written */
	size_t		 drained;	/* bytes discarded while draining */
	struct ev_timer	 deadline;
	char		 peer[64];
};

struct metrics {
	struct ev_loop	*loop;
	int		 lfd;
	int		 port;
	struct metrics_pages pages;
	struct mconn	*conns[METRICS_MAX_CONNS];
	size_t		 nconns;
	struct log_limit lim;
};

static void	mconn_close(struct mconn *);
static void	mconn_io_cb(struct ev_loop *, int, unsigned, void *);
static void	mconn_respond(struct mconn *, int, const char *,
		    const char *, const char *, struct buf *);

/* ---- Line writers. ---- */

static bool
valid_name(const char *s, bool colon)
{
	const char *p;

	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (p = s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' ||
		    (colon && *p == ':'))
			continue;
		return false;
	}
	return true;
}

static int
append_str(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s));
}

/* Appends s with \ and newline escaped, and " too when quote. */
static int
append_escaped(struct buf *out, const char *s, bool quote)
{
	const char *p, *run = s;
	const char *esc;
	int rc;

	for (p = s; *p != '\0'; p++) {
		if (*p == '\\')
			esc = "\\\\";
		else if (*p == '\n')
			esc = "\\n";
		else if (*p == '"' && quote)
			esc = "\\\"";
		else
			continue;
		if ((rc = buf_append(out, run, (size_t)(p - run))) != 0 ||
		    (rc = append_str(out, esc)) != 0)
			return rc;
		run = p + 1;
	}
	return buf_append(out, run, (size_t)(p - run));
}

int
metrics_escape_label(struct buf *out, const char *s)
{
	return append_escaped(out, s != NULL ? s : "", true);
}

int
metrics_family(struct buf *out, const char *name, const char *type,
    const char *help)
{
	int rc;

	if (!valid_name(name, true) || !valid_name(type, false))
		return GW_EMALFORMED;
	if ((rc = append_str(out, "# HELP ")) != 0 ||
	    (rc = append_str(out, name)) != 0 ||
	    (rc = append_str(out, " ")) != 0 ||
	    (rc = append_escaped(out, help != NULL ? help : "", false)) != 0 ||
	    (rc = append_str(out, "\n# TYPE ")) != 0 ||
	    (rc = append_str(out, name)) != 0 ||
	    (rc = append_str(out, " ")) != 0 ||
	    (rc = append_str(out, type)) != 0)
		return rc;
	return append_str(out, "\n");
}

/* name{label="value"} text\n, text already formatted. */
static int
sample(struct buf *out, const char *name, const char *label,
    const char *value, const char *text)
{
	int rc;

	if (!valid_name(name, true) ||
	    (label != NULL && !valid_name(label, false)))
		return GW_EMALFORMED;
	if ((rc = append_str(out, name)) != 0)
		return rc;
	if (label != NULL &&
	    ((rc = append_str(out, "{")) != 0 ||
	    (rc = append_str(out, label)) != 0 ||
	    (rc = append_str(out, "=\"")) != 0 ||
	    (rc = metrics_escape_label(out, value)) != 0 ||
	    (rc = append_str(out, "\"}")) != 0))
		return rc;
	if ((rc = append_str(out, " ")) != 0 ||
	    (rc = append_str(out, text)) != 0)
		return rc;
	return append_str(out, "\n");
}

int
metrics_sample_u64(struct buf *out, const char *name, const char *label,
    const char *value, uint64_t v)
{
	char text[32];

	snprintf(text, sizeof text, "%llu", (unsigned long long)v);
	return sample(out, name, label, value, text);
}

int
metrics_sample_double(struct buf *out, const char *name, const char *label,
    const char *value, double v)
{
	char text[40];

	if (isnan(v))
		snprintf(text, sizeof text, "NaN");
	else if (isinf(v))
		snprintf(text, sizeof text, "%cInf", v > 0 ? '+' : '-');
	else {
		/* The shortest of 15 or 17 digits that reads back exactly. */
		snprintf(text, sizeof text, "%.15g", v);
		if (strtod(text, NULL) != v)
			snprintf(text, sizeof text, "%.17g", v);
	}
	return sample(out, name, label, value, text);
}

/* ---- The server. ---- */

static void
deadline_cb(struct ev_loop *loop, void *arg)
{
	struct mconn *c = arg;

	(void)loop;
	log_debug("metrics: %s: closed at the %d ms deadline", c->peer,
	    METRICS_DEADLINE_MS);
	mconn_close(c);
}

static void
accept_cb(struct ev_loop *loop, int lfd, unsigned events, void *arg)
{
	struct metrics *m = arg;
	struct mconn *c;
	char peer[64];
	size_t i;
	int fd, n;

	(void)events;
	for (n = 0; n < METRICS_MAX_CONNS * 2; n++) {
		if ((fd = listen_accept(lfd, peer, sizeof peer)) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    log_ratelimited(&m->lim, 5, 10000))
				log_warn("metrics: accept: %s",
				    strerror(errno));
			return;
		}
		if (m->nconns >= METRICS_MAX_CONNS) {
			if (log_ratelimited(&m->lim, 5, 10000))
				log_warn("metrics: refusing %s: %d connections "
				    "already open", peer, METRICS_MAX_CONNS);
			close(fd);
			continue;
		}
		if ((c = gw_calloc(1, sizeof *c)) == NULL) {
			close(fd);
			continue;
		}
		for (i = 0; m->conns[i] != NULL; i++)
			;
		c->m = m;
		c->fd = fd;
		c->slot = i;
		c->state = MCONN_READING;
		snprintf(c->peer, sizeof c->peer, "%s", peer);
		if (ev_add_fd(loop, fd, EV_READ, mconn_io_cb, c) != 0 ||
		    ev_timer_set(loop, &c->deadline, ev_now(loop) +
		    METRICS_DEADLINE_MS, deadline_cb, c) != 0) {
			ev_del_fd(loop, fd);
			close(fd);
			gw_free(c);
			continue;
		}
		m->conns[i] = c;
		m->nconns++;
	}
}

static void
mconn_close(struct mconn *c)
{
	struct metrics *m = c->m;

	ev_timer_cancel(m->loop, &c->deadline);
	ev_del_fd(m->loop, c->fd);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	m->conns[c->slot] = NULL;
	m->nconns--;
	gw_free(c);
}

/* Writes what the socket takes; then shuts the write side and drains. */
static void
mconn_write(struct mconn *c)
{
	ssize_t n;

	while (buf_used(&c->out) > 0) {
		n = write(c->fd, buf_head(&c->out), buf_used(&c->out));
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (ev_mod_fd(c->m->loop, c->fd, EV_WRITE) != 0)
				mconn_close(c);
			return;
		}
		mconn_close(c);
		return;
	}
	buf_free(&c->out);
	buf_free(&c->in);
	if (shutdown(c->fd, SHUT_WR) != 0 ||
	    ev_mod_fd(c->m->loop, c->fd, EV_READ) != 0) {
		mconn_close(c);
		return;
	}
	c->state = MCONN_DRAINING;
}

/*
 * Builds the response into c->out and starts writing it. body (may be
 * NULL: the reason is the body) is borrowed; ctype is its Content-Type
 * (NULL: plain text); extra is one more header line with its CRLF, or NULL.
 */
static void
mconn_respond(struct mconn *c, int status, const char *reason,
    const char *ctype, const char *extra, struct buf *body)
{
	char head[384];
	size_t blen = body != NULL ? buf_used(body) : 0;
	int hlen;

	hlen = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n%s"
	    "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	    status, reason, ctype != NULL ? ctype :
	    "text/plain; charset=utf-8",
	    body != NULL ? blen : strlen(reason) + 1,
	    extra != NULL ? extra : "");
	buf_reset(&c->out);
	if (hlen < 0 || (size_t)hlen >= sizeof head ||
	    buf_append(&c->out, head, (size_t)hlen) != 0 ||
	    (body != NULL && buf_append(&c->out, buf_head(body), blen) != 0) ||
	    (body == NULL && (append_str(&c->out, reason) != 0 ||
	    append_str(&c->out, "\n") != 0))) {
		mconn_close(c);
		return;
	}
	log_debug("metrics: %s: %d %s", c->peer, status, reason);
	c->state = MCONN_WRITING;
	mconn_write(c);
}

/* See metrics.h. */
int
metrics_request_status(const char *req, size_t hlen, enum metrics_path *out)
{
	static const struct {
		const char		*path;
		enum metrics_path	 id;
	} paths[] = {
		{ "/metrics", METRICS_PATH_METRICS },
		{ "/", METRICS_PATH_STATUS },
		{ "/healthz", METRICS_PATH_HEALTH },
		{ "/errors", METRICS_PATH_ERRORS },
	};
	const char *eol, *sp1, *sp2, *path;
	size_t plen, i;

	eol = memchr(req, '\r', hlen);
	if (eol == NULL || (sp1 = memchr(req, ' ', (size_t)(eol - req))) ==
	    NULL || (sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1))) ==
	    NULL || sp1 == req || sp2 == sp1 + 1 ||
	    (size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) !=
	    0)
		return 400;
	if (sp1 - req != 3 || memcmp(req, "GET", 3) != 0)
		return 405;
	path = sp1 + 1;
	plen = (size_t)(sp2 - path);
	if (memchr(path, '?', plen) != NULL)
		plen = (size_t)((const char *)memchr(path, '?', plen) - path);
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		if (plen == strlen(paths[i].path) &&
		    memcmp(path, paths[i].path, plen) == 0) {
			if (out != NULL)
				*out = paths[i].id;
			return 200;
		}
	}
	return 404;
}

/* Renders the body of path into body; returns the status (or GW_E*). */
static int
mconn_render(struct mconn *c, enum metrics_path path, struct buf *body,
    const char **ctype)
{
	const struct metrics_pages *p = &c->m->pages;
	int rc;

	*ctype = NULL;
	switch (path) {
	case METRICS_PATH_STATUS:
		*ctype = "text/html; charset=utf-8";
		rc = buf_append(body, status_page_html(), status_page_len());
		return rc != 0 ? rc : 200;
	case METRICS_PATH_HEALTH:
		if (p->health == NULL)
			return buf_append(body, "ok\n", 3) != 0 ? GW_ENOMEM :
			    200;
		rc = p->health(body, p->ctx);
		return rc < 0 ? rc : rc == 1 ? 200 : 503;
	case METRICS_PATH_ERRORS:
		rc = p->errors != NULL ? p->errors(body, p->ctx) : 0;
		return rc != 0 ? rc : 200;
	case METRICS_PATH_METRICS:
		break;
	}
	*ctype = "text/plain; version=0.0.4; charset=utf-8";
	rc = p->metrics(body, p->ctx);
	return rc != 0 ? rc : 200;
}

/* Answers the complete request head in c->in (hlen bytes). */
static void
mconn_handle(struct mconn *c, size_t hlen)
{
	struct buf body = BUF_INIT;
	enum metrics_path path = METRICS_PATH_METRICS;
	const char *ctype;
	int rc;

	switch (metrics_request_status((const char *)buf_head(&c->in),
	    hlen, &path)) {
	case 400:
		mconn_respond(c, 400, "Bad Request", NULL, NULL, NULL);
		return;
	case 405:
		mconn_respond(c, 405, "Method Not Allowed", NULL,
		    "Allow: GET\r\n", NULL);
		return;
	case 404:
		mconn_respond(c, 404, "Not Found", NULL, NULL, NULL);
		return;
	}
	rc = mconn_render(c, path, &body, &ctype);
	if (rc < 0) {
		if (log_ratelimited(&c->m->lim, 5, 10000))
			log_warn("metrics: rendering failed: %s",
			    gw_strerror(rc));
		mconn_respond(c, 500, "Internal Server Error", NULL, NULL,
		    NULL);
	} else if (rc == 503)
		mconn_respond(c, 503, "Service Unavailable", ctype, NULL,
		    &body);
	else
		mconn_respond(c, 200, "OK", ctype, NULL, &body);
	buf_free(&body);
}

/* Reads the request; answers once the head is complete or too long. */
static void
mconn_read(struct mconn *c)
{
	const uint8_t *end;
	size_t room;
	ssize_t n;

	for (;;) {
		if ((room = METRICS_REQ_MAX - buf_used(&c->in)) == 0) {
			mconn_respond(c, 431,
			    "Request Header Fields Too Large", NULL, NULL,
			    NULL);
			return;
		}
		if (buf_reserve(&c->in, room, METRICS_REQ_MAX) != 0) {
			mconn_close(c);
			return;
		}
		n = read(c->fd, buf_tail(&c->in), room);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			mconn_close(c);
			return;
		}
		buf_commit(&c->in, (size_t)n);
		end = memmem(buf_head(&c->in), buf_used(&c->in), "\r\n\r\n", 4);
		if (end != NULL) {
			mconn_handle(c, (size_t)(end - buf_head(&c->in)) + 4);
			return;
		}
	}
}

/* Discards input after the answer until EOF, an error or the cap. */
static void
mconn_drain(struct mconn *c)
{
	char scratch[4096];
	ssize_t n;

	for (;;) {
		n = read(c->fd, scratch, sizeof scratch);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || (c->drained += (size_t)n) > METRICS_DRAIN_MAX) {
			mconn_close(c);
			return;
		}
	}
}

static void
mconn_io_cb(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
	struct mconn *c = arg;

	(void)loop;
	(void)fd;
	switch (c->state) {
	case MCONN_READING:
		if (events & (EV_READ | EV_ERROR))
			mconn_read(c);
		break;
	case MCONN_WRITING:
		if (events & (EV_WRITE | EV_ERROR))
			mconn_write(c);
		break;
	case MCONN_DRAINING:
		if (events & (EV_READ | EV_ERROR))
			mconn_drain(c);
		break;
	}
}

struct metrics *
metrics_start(struct ev_loop *loop, const char *bind_addr, int port,
    const struct metrics_pages *pages, struct gw_error *err)
{
	struct metrics *m;
	char ebuf[256];

	if ((m = gw_calloc(1, sizeof *m)) == NULL) {
		gw_error_set(err, "metrics", "out of memory");
		return NULL;
	}
	m->loop = loop;
	m->pages = *pages;
	m->lfd = listen_tcp(bind_addr, port, 64, ebuf, sizeof ebuf);
	if (m->lfd == -1) {
		gw_error_set(err, "metrics", "%s", ebuf);
		goto fail;
	}
	if (ev_add_fd(loop, m->lfd, EV_READ, accept_cb, m) != 0) {
		gw_error_set(err, "metrics", "cannot watch the listener");
		goto fail;
	}
	m->port = listen_port(m->lfd);
	return m;

fail:
	if (m->lfd != -1)
		close(m->lfd);
	gw_free(m);
	return NULL;
}

int
metrics_port(const struct metrics *m)
{
	return m->port;
}

void
metrics_stop(struct metrics *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < METRICS_MAX_CONNS; i++)
		if (m->conns[i] != NULL)
			mconn_close(m->conns[i]);
	ev_del_fd(m->loop, m->lfd);
	close(m->lfd);
	gw_free(m);
}
