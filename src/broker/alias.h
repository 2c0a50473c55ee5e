/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inbound MQTT 5.0 topic aliases of one connection; see alias.c. Loop
 * thread only.
 */
#ifndef GW_ALIAS_H
#define GW_ALIAS_H

#include <stdint.h>

#include "mqtt/codec.h"

struct alias_table;

int	alias_resolve(struct alias_table **tp, uint16_t max, uint16_t alias,
	    struct codec_str *topic, uint8_t *reason);
void	alias_free(struct alias_table **tp);

#endif
