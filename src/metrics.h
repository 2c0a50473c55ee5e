/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint: a small HTTP/1.1 server on the daemon's event loop
 * that answers GET /metrics with the Prometheus text format (0.0.4), GET /
 * with the status page (status_page.h), GET /healthz with 200 or 503 and
 * GET /errors with the last warnings and errors. It knows nothing of the
 * broker or the store: the daemon registers callbacks that append a body to
 * a buffer (the exposition using the line writers below). Every connection
 * is bounded: METRICS_MAX_CONNS at once (more are closed at accept), a
 * request of at most METRICS_REQ_MAX bytes, and METRICS_DEADLINE_MS from
 * accept to close, so a slow or silent client cannot hold anything for
 * long. One request per connection; the answer always says Connection:
 * close. Loop thread only.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>

#include "err.h"

#define METRICS_MAX_CONNS	16	/* connections served at once */
#define METRICS_REQ_MAX		4096	/* request line and headers */
#define METRICS_DEADLINE_MS	5000	/* accept to close */

struct buf;
struct ev_loop;
struct metrics;

/*
 * Appends the whole exposition to out (borrowed). Returns 0, or a GW_E*
 * code: the request is then answered 500. Called on the loop thread.
 */
typedef int (*metrics_render_fn)(struct buf *out, void *ctx);

/*
 * Appends a one-line reason to out and returns 1 when the daemon is
 * healthy, 0 when it is not (answered 503), or a GW_E* code (500).
 */
typedef int (*metrics_health_fn)(struct buf *out, void *ctx);

/* What the server answers with; every pointer is borrowed. */
struct metrics_pages {
	metrics_render_fn	 metrics;	/* /metrics (required) */
	metrics_health_fn	 health;	/* /healthz; NULL: always 200 */
	metrics_render_fn	 errors;	/* /errors; NULL: empty body */
	void			*ctx;		/* passed to each */
};

/* The paths served. */
enum metrics_path {
	METRICS_PATH_METRICS = 0,	/* /metrics */
	METRICS_PATH_STATUS,		/* / */
	METRICS_PATH_HEALTH,		/* /healthz */
	METRICS_PATH_ERRORS		/* /errors */
};

/*
 * Listens on bind_addr:port (0: any free port) and serves the pages on
 * loop, calling a callback of pages (copied; its ctx is borrowed and must
 * outlive metrics_stop()) once per request. Returns a new server, or NULL
 * with err filled.
 */
struct metrics	*metrics_start(struct ev_loop *loop, const char *bind_addr,
		    int port, const struct metrics_pages *pages,
		    struct gw_error *err);

/*
 * Decides the answer to a request head: req holds hlen bytes ending with
 * the blank line (CR LF CR LF). Returns 200 for "GET PATH[?...] HTTP/1.x"
 * with PATH one of /metrics, /, /healthz, /errors (and sets *path when
 * path is not NULL), 405 for another method, 404 for another path, 400
 * when the request line is malformed. Reads nothing past req[hlen - 1].
 * Pure.
 */
int		 metrics_request_status(const char *req, size_t hlen,
		    enum metrics_path *path);

/* The port the server listens on (useful after port 0). */
int		 metrics_port(const struct metrics *m);

/* Closes the listener and every connection, frees m. NULL ok. */
void		 metrics_stop(struct metrics *m);

/*
 * Line writers for render callbacks. Names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]*
 * (GW_EMALFORMED otherwise, nothing appended); label values are escaped
 * (\\, \", \n) and help text too (\\, \n). All return 0, GW_EMALFORMED or
 * GW_ENOMEM.
 */

/* "# HELP name help" and "# TYPE name type" (counter, gauge, ...). */
int		 metrics_family(struct buf *out, const char *name,
		    const char *type, const char *help);

/* One sample: name{label="value"} v, or name v when label is NULL. */
int		 metrics_sample_u64(struct buf *out, const char *name,
		    const char *label, const char *value, uint64_t v);
int		 metrics_sample_double(struct buf *out, const char *name,
		    const char *label, const char *value, double v);

/* Appends s as a label value: the escaped text, without quotes. */
int		 metrics_escape_label(struct buf *out, const char *s);

#endif
