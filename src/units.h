/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sizes and durations as users write them, parsed and printed in one
 * place for the config file and the rules (retention ages, webhook
 * timeouts): "10MB" / "512" are bytes, "10s" / "250ms" / "3d" are
 * milliseconds. A low module: it depends on nothing but err.h.
 */
#ifndef GW_UNITS_H
#define GW_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define UNITS_KIB	1024ULL
#define UNITS_MIB	(1024ULL * 1024)
#define UNITS_GIB	(1024ULL * 1024 * 1024)

/*
 * Parses a size: a plain number of bytes or a number with a B, KB, MB or
 * GB suffix (1024-based, any case). Returns 0, or GW_EMALFORMED for an
 * empty, negative, fractional or unknown-unit value and GW_ETOOBIG on
 * overflow.
 */
int	units_parse_size(const char *s, uint64_t *out);
/*
 * Parses a duration: a plain number of milliseconds or a number with a
 * ms, s, m, h or d suffix (any case). Returns as units_parse_size().
 */
int	units_parse_duration(const char *s, uint64_t *out);

/* Writes v bytes in the largest unit that divides it ("1MB", "512B"). */
void	units_format_size(char *buf, size_t len, uint64_t v);
/* Writes v ms in the largest unit that divides it ("10s", "250ms"). */
void	units_format_duration(char *buf, size_t len, uint64_t v);

#endif
