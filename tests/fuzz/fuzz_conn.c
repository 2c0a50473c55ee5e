/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for a whole client connection: the input is the byte
 * stream a client sends, run through the broker's real state machine
 * (reading, framing, dispatch, every packet handler, held acks released on
 * commit, fan-out, wills, closing).
 *
 * Set up once: a store on a database in a temporary folder with its thread
 * running (group commit as in mqlite, without fsync). Per input: a new
 * event loop and broker; one end of a socketpair is handed to the broker
 * as an accepted connection (broker_adopt), the input is written to the
 * other end, which is then shut for writing, and the loop runs until the
 * broker has closed the connection and the store has committed everything
 * the connection submitted. The target reads the broker's answers from
 * its end all along, so backpressure resolves as with a live client.
 *
 * Invariants: the broker closes the connection after the client's EOF
 * within a few seconds (no hang); what it sends is a well-formed packet
 * stream of server packets; the first packet is a CONNACK and there is at
 * most one; no answer comes without its request (PUBACKs at most the QoS 1
 * PUBLISHes sent, PUBRECs the QoS 2 ones, PUBCOMPs the PUBRELs, PUBRELs the
 * PUBRECs, SUBACKs the SUBSCRIBEs, UNSUBACKs the UNSUBSCRIBEs, PINGRESPs
 * the PINGREQs, counting the client's packets that frame correctly); a
 * DISCONNECT comes only to a client whose CONNECT says MQTT 5.0, once, as
 * the last packet; and ASan/UBSan/LSan see nothing.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "broker/broker_int.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "mqtt/codec.h"
#include "net/ev.h"
#include "store/store.h"

#include "fuzz_store.h"
#include "fuzz_tmpdir.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

#define CONN_MAX_INPUT	(64 * 1024)	/* fits a socketpair's buffer */
#define MAX_OUTPUT	(4 * 1024 * 1024)	/* kept for checking */
/* After the client's EOF; generous for a busy host. */
#define DEADLINE_MS	10000

static char		 tmpdir[] = "/tmp/mqlite-fuzz-conn-XXXXXX";
static struct gw_config	 cfg;
static struct store	*store;

struct run {
	struct broker	*b;
	int		 fd;		/* the client's end */
	struct buf	 out;		/* what the broker sent */
	bool		 truncated;	/* more than MAX_OUTPUT */
	bool		 eof;		/* the broker closed */
	long long	 deadline;
	bool		 timed_out;
	struct ev_timer	 tick;
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char			 path[96];

	(void)argc;
	(void)argv;
	if (getenv("FUZZ_CONN_LOG") == NULL)
		log_set_level(LOG_LVL_ERROR);
	fuzz_tmpdir_make(tmpdir);
	if (config_init(&cfg) != 0)
		abort();
	cfg.commit_max_ms = 1;
	snprintf(path, sizeof path, "%s/conn.db", tmpdir);
	store = fuzz_store_open(&cfg, path, 64 * 1024 * 1024);
	if (store_start(store) != 0)
		abort();
	return 0;
}

static void
peer_cb(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
	struct run	*r = arg;
	uint8_t		 chunk[16384];
	ssize_t		 n;

	(void)events;
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n > 0) {
			if (buf_used(&r->out) + (size_t)n > MAX_OUTPUT)
				r->truncated = true;
			else
				CHECK(buf_append(&r->out, chunk, (size_t)n) ==
				    0);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			r->eof = true;
			ev_del_fd(loop, fd);
		}
		return;
	}
}

static void
tick_cb(struct ev_loop *loop, void *arg)
{
	struct run	*r = arg;

	if (r->eof && r->b->nclients == 0 &&
	    store_committed_seq(store) >= r->b->last_seq) {
		ev_stop(loop);
		return;
	}
	if (ev_now(loop) > r->deadline) {
		r->timed_out = true;
		ev_stop(loop);
		return;
	}
	ev_timer_set(loop, &r->tick, ev_now(loop) + 1, tick_cb, r);
}

/*
 * Counts the packets that frame, by type (QoS 2 PUBLISH as 0, QoS 1 as
 * QOS1_PUBLISH); returns the type of the last one, 0 if none.
 */
#define QOS1_PUBLISH	16
static uint8_t
count(const uint8_t *p, size_t len, size_t n[17], bool server)
{
	struct codec_header	h;
	size_t			off = 0;
	uint8_t			last = 0;

	while (off < len && codec_parse_frame(p + off, len - off, 0, &h) ==
	    0) {
		if (h.type == CODEC_PUBLISH && ((h.flags >> 1) & 3) == 2)
			n[0]++;
		else if (h.type == CODEC_PUBLISH && ((h.flags >> 1) & 3) == 1)
			n[QOS1_PUBLISH]++;
		else
			n[h.type]++;
		last = h.type;
		off += h.header_len + h.remaining;
	}
	if (server)
		CHECK(off == len);
	return last;
}

/* The protocol level the client's CONNECT names, 0 if it names none. */
static uint8_t
connect_level(const uint8_t *in, size_t len)
{
	struct codec_header	h;
	const uint8_t		*b;
	size_t			 nl;

	if (codec_parse_frame(in, len, 0, &h) != 0 ||
	    h.type != CODEC_CONNECT || h.remaining < 2)
		return 0;
	b = in + h.header_len;
	nl = (size_t)b[0] << 8 | b[1];
	if (h.remaining < 2 + nl + 1)
		return 0;
	return b[2 + nl];
}

/* Checks what the broker sent against what the client sent. */
static void
check_output(const uint8_t *in, size_t inlen, const struct buf *out,
    bool truncated)
{
	struct codec_header	h;
	size_t			ci[17] = { 0 }, so[17] = { 0 };
	uint8_t			last;

	count(in, inlen, ci, false);
	if (buf_used(out) == 0)
		return;
	CHECK(codec_parse_frame(buf_head(out), buf_used(out), 0, &h) == 0 ||
	    truncated);
	CHECK(h.type == CODEC_CONNACK);
	if (truncated)
		return;
	last = count(buf_head(out), buf_used(out), so, true);
	CHECK(so[CODEC_CONNECT] == 0 && so[CODEC_SUBSCRIBE] == 0 &&
	    so[CODEC_UNSUBSCRIBE] == 0 && so[CODEC_PINGREQ] == 0 &&
	    so[15] == 0);
	/* Only a 5.0 client is told why it is closed, once, last. */
	CHECK(so[CODEC_DISCONNECT] == 0 ||
	    (connect_level(in, inlen) == 5 && so[CODEC_DISCONNECT] == 1 &&
	    last == CODEC_DISCONNECT));
	CHECK(so[CODEC_CONNACK] == 1);
	CHECK(so[CODEC_PUBACK] <= ci[QOS1_PUBLISH]);
	CHECK(so[CODEC_PUBREC] <= ci[0]);
	CHECK(so[CODEC_PUBCOMP] <= ci[CODEC_PUBREL]);
	CHECK(so[CODEC_PUBREL] <= ci[CODEC_PUBREC]);
	CHECK(so[CODEC_SUBACK] <= ci[CODEC_SUBSCRIBE]);
	CHECK(so[CODEC_UNSUBACK] <= ci[CODEC_UNSUBSCRIBE]);
	CHECK(so[CODEC_PINGRESP] <= ci[CODEC_PINGREQ]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ev_loop	*loop;
	struct run	 r;
	int		 sv[2];
	ssize_t		 n;
	size_t		 off = 0;

	if (size > CONN_MAX_INPUT)
		return 0;
	memset(&r, 0, sizeof r);
	CHECK((loop = ev_new()) != NULL);
	CHECK((r.b = broker_new(loop, &cfg, store)) != NULL);
	CHECK(broker_attach_store(r.b) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == 0);
	CHECK(broker_adopt(r.b, sv[0], "fuzz") == 0);
	r.fd = sv[1];
	while (off < size) {
		n = write(r.fd, data + off, size - off);
		CHECK(n > 0);
		off += (size_t)n;
	}
	CHECK(shutdown(r.fd, SHUT_WR) == 0);
	CHECK(ev_add_fd(loop, r.fd, EV_READ, peer_cb, &r) == 0);
	r.deadline = ev_now(loop) + DEADLINE_MS;
	ev_timer_set(loop, &r.tick, ev_now(loop) + 1, tick_cb, &r);
	CHECK(ev_run(loop) == 0);
	CHECK(!r.timed_out);
	check_output(data, size, &r.out, r.truncated);
	ev_timer_cancel(loop, &r.tick);
	broker_finish(r.b, UINT64_MAX);
	broker_free(r.b);
	close(r.fd);
	ev_free(loop);
	buf_free(&r.out);
	return 0;
}
