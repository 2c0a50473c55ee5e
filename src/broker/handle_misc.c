/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PINGREQ and DISCONNECT: the two packets without a body.
 */
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "err.h"

int
handle_pingreq(struct client *c, size_t len)
{
	int rc;

	if ((rc = codec_decode_empty(len)) != 0)
		return rc;
	if ((rc = codec_encode_empty(&c->conn.out, CODEC_PINGRESP)) != 0)
		return rc;
	client_want_flush(c);
	return 0;
}

int
handle_disconnect(struct client *c, size_t len)
{
	int rc;

	if ((rc = codec_decode_empty(len)) != 0)
		return rc;
	c->clean_disconnect = true;
	msg_unref(&c->will);
	client_close_after_write(c, NULL);
	return 0;
}
