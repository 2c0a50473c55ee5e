/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MQTT over WebSockets (RFC 6455), server side. A struct ws sits between a
 * connection's socket (or TLS session) and its MQTT byte streams: conn.c
 * reads raw bytes into ws_rbuf(), ws_feed() turns them into MQTT bytes in
 * the connection's input buffer, and ws_frame_out() wraps the connection's
 * output buffer into binary frames in ws_wbuf(), which conn.c writes. The
 * broker never sees a frame: it parses and writes the same MQTT bytes as on
 * a TCP listener, whatever the protocol version.
 */
#ifndef GW_WS_H
#define GW_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Close codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL		1000
#define WS_CLOSE_PROTOCOL	1002
#define WS_CLOSE_UNSUPPORTED	1003
#define WS_CLOSE_TOO_BIG	1009

/* Largest HTTP upgrade request accepted, headers included. */
#define WS_MAX_REQUEST		8192
/* Largest payload of one frame the server sends. */
#define WS_MAX_OUT_FRAME	65536

struct ws;

/*
 * Returns a new WebSocket endpoint that answers the upgrade request for
 * path (copied), or NULL when out of memory.
 */
struct ws	*ws_new(const char *path);

/* Frees w and its buffers. NULL is fine. */
void		 ws_free(struct ws *w);

/* Raw bytes read from the peer, not yet decoded (conn.c appends here). */
struct buf	*ws_rbuf(struct ws *w);

/* Raw bytes (HTTP answer, frames) to write to the peer, in order. */
struct buf	*ws_wbuf(struct ws *w);

/*
 * Decodes what ws_rbuf() holds: the upgrade request first, then frames,
 * appending the payload of binary frames to in while in holds less than
 * limit bytes (0: no limit); limit also bounds one frame's payload. Pings
 * are answered into ws_wbuf(). Returns the raw bytes consumed (>= 0);
 * GW_EPROTO when the peer broke the protocol or its request was refused
 * (ws_wbuf() then holds the HTTP error answer or the close frame, and
 * ws_failure() says why); GW_ENOMEM. After the peer's close frame it
 * returns 0 and ws_closed() is true (the answering close frame is queued).
 */
int		 ws_feed(struct ws *w, struct buf *in, size_t limit);

/*
 * When ws_wbuf() is empty, drops from out the bytes of the frame last
 * written, then frames up to WS_MAX_OUT_FRAME bytes of out into
 * ws_wbuf(); out keeps them until they are written, so output limits see
 * them. Does nothing before the upgrade. 0 or GW_ENOMEM.
 */
int		 ws_frame_out(struct ws *w, struct buf *out);

/* The upgrade is done: frames flow. */
bool		 ws_open(const struct ws *w);

/* The peer sent a close frame or the endpoint failed. */
bool		 ws_closed(const struct ws *w);

/* Why the endpoint failed ("websocket: ..."), or NULL. */
const char	*ws_failure(const struct ws *w);

/*
 * Sec-WebSocket-Accept for key (nul-terminated): base64 of the SHA-1 of
 * key and the RFC's GUID, written with its nul into out (29 bytes).
 */
void		 ws_accept_key(const char *key, char out[29]);

/* SHA-1 of len bytes of p into md (ws_sha1.c). */
void		 ws_sha1(const void *p, size_t len, uint8_t md[20]);

#endif
