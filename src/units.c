/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sizes and durations: one table of units each, a parser that refuses
 * anything but digits followed by at most one known unit (no sign, no
 * fraction, no space, no overflow), and a printer that picks the largest
 * unit dividing the value exactly, so a printed value parses back to the
 * same number.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "err.h"
#include "units.h"

struct unit {
	const char	*name;
	uint64_t	 mult;
};

static const struct unit size_units[] = {
	{ "GB", UNITS_GIB }, { "MB", UNITS_MIB }, { "KB", UNITS_KIB },
	{ "B", 1 }, { NULL, 0 }
};

static const struct unit duration_units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	{ "ms", 1 }, { NULL, 0 }
};

static int
parse_with_units(const char *s, const struct unit *units, uint64_t *out)
{
	const char	*p = s;
	uint64_t	 v = 0, d;
	int		 i;

	if (s == NULL || !isdigit((unsigned char)*p))
		return GW_EMALFORMED;
	while (isdigit((unsigned char)*p)) {
		d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return GW_ETOOBIG;
		v = v * 10 + d;
		p++;
	}
	if (*p == '\0') {
		*out = v;
		return 0;
	}
	for (i = 0; units[i].name != NULL; i++) {
		if (strcasecmp(p, units[i].name) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult)
			return GW_ETOOBIG;
		*out = v * units[i].mult;
		return 0;
	}
	return GW_EMALFORMED;
}

int
units_parse_size(const char *s, uint64_t *out)
{
	return parse_with_units(s, size_units, out);
}

int
units_parse_duration(const char *s, uint64_t *out)
{
	return parse_with_units(s, duration_units, out);
}

/* Writes v in the largest unit that divides it exactly. */
static void
format_units(char *buf, size_t len, uint64_t v, const struct unit *units,
    const char *base)
{
	int	i;

	if (v != 0) {
		for (i = 0; units[i].name != NULL; i++) {
			if (units[i].mult > 1 && v % units[i].mult == 0) {
				snprintf(buf, len, "%" PRIu64 "%s",
				    v / units[i].mult, units[i].name);
				return;
			}
		}
	}
	snprintf(buf, len, "%" PRIu64 "%s", v, v == 0 ? "" : base);
}

void
units_format_size(char *buf, size_t len, uint64_t v)
{
	format_units(buf, len, v, size_units, "B");
}

void
units_format_duration(char *buf, size_t len, uint64_t v)
{
	format_units(buf, len, v, duration_units, "ms");
}
