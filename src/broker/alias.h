/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MQTT 5.0 topic aliases of one connection, inbound and outbound; see
 * alias.c. Loop thread only.
 */
#ifndef GW_ALIAS_H
#define GW_ALIAS_H

#include <stdbool.h>
#include <stdint.h>

#include "mqtt/codec.h"

struct alias_table;
struct alias_out;

int	alias_resolve(struct alias_table **tp, uint16_t max, uint16_t alias,
	    struct codec_str *topic, uint8_t *reason);
void	alias_free(struct alias_table **tp);

uint16_t alias_out_find(struct alias_out **tp, uint16_t max,
	    const char *topic, uint16_t len, bool *known);
int	alias_out_add(struct alias_out *t, uint16_t alias, const char *topic,
	    uint16_t len);
void	alias_out_free(struct alias_out **tp);

#endif
