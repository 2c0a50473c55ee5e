/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UTF-8 validation: the MQTT string rules (well-formed, no surrogates, no
 * U+0000) and the payload rule the store uses to pick TEXT or BLOB.
 */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * If allow_nul is false, U+0000 makes it invalid. */
bool	utf8_valid(const void *p, size_t len, bool allow_nul);

#endif
