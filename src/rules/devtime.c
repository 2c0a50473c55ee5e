/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device time for the |time transform.
 *
 * DESIGN
 *
 * Devices stamp readings in whatever their firmware found convenient: Unix
 * seconds, milliseconds, microseconds or nanoseconds, an ISO 8601 string,
 * or a layout of their own. Everything here ends as Unix milliseconds.
 *
 * Numbers are told apart by magnitude (devtime.h): a value below 1e11 is
 * seconds (up to the year 5138), below 1e14 milliseconds, below 1e17
 * microseconds, else nanoseconds. The price is that a device time before
 * 1973-03-03 written in ms, us or ns reads as the next unit up; no device
 * clock worth storing is set that early, and one that is (a box booted
 * without its clock) is what max_time_skew flags.
 *
 * Calendar fields become days with our own days-from-civil arithmetic
 * (proleptic Gregorian, what timegm() computes) after every field has been
 * range-checked, so 2024-02-30 is an error rather than March 1st, and the
 * process TZ is never consulted: a time without an offset is UTC.
 *
 * The format parser is a small strptime of our own rather than the C
 * library's: the library's reads month names from the locale, cannot read
 * fractional seconds, and leaves the %z offset to the caller. Formats are
 * checked at load (devtime_format_check), so a bad directive is a --check
 * error, never a run-time surprise.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "build_config.h"
#include "rules/devtime.h"

/* Parse state of one date-time. */
struct dt {
	int64_t	 year;
	int	 mon;		/* 1..12 */
	int	 mday;		/* 1..31 */
	int	 yday;		/* 1..366 from %j, 0 = unset */
	int	 hour;		/* 0..23 */
	int	 min;
	int	 sec;		/* 0..60 */
	int	 msec;		/* fraction in ms */
	int	 pm;		/* %p: -1 unset, 0 AM, 1 PM */
	int	 hour12;	/* %I given */
	int	 off;		/* offset east of UTC, seconds */
	int	 has_epoch;	/* %s given */
	int64_t	 epoch;		/* %s value */
};

static const char *const months[] = { "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october",
    "november", "december" };
static const char *const wdays[] = { "sunday", "monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday" };

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t	q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* See devtime.h. */
int
devtime_from_int(int64_t v, int64_t *ms)
{
	uint64_t	a = v < 0 ? -(uint64_t)v : (uint64_t)v;

	if (a < (uint64_t)DEVTIME_S_LIMIT)
		*ms = v * 1000;
	else if (a < (uint64_t)DEVTIME_MS_LIMIT)
		*ms = v;
	else if (a < (uint64_t)DEVTIME_US_LIMIT)
		*ms = floor_div(v, 1000);
	else
		*ms = floor_div(v, 1000000);
	return 0;
}

/* See devtime.h. */
int
devtime_from_real(double v, int64_t *ms)
{
	double	a = fabs(v), x;

	if (!isfinite(v) || a >= 9223372036854775808.0)
		return GW_EMALFORMED;
	if (a < (double)DEVTIME_S_LIMIT)
		x = v * 1000.0;
	else if (a < (double)DEVTIME_MS_LIMIT)
		x = v;
	else if (a < (double)DEVTIME_US_LIMIT)
		x = v / 1000.0;
	else
		x = v / 1000000.0;
	*ms = (int64_t)floor(x + 0.5);
	return 0;
}

static bool
leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
mdays(int64_t y, int m)
{
	static const int	n[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	return m == 2 && leap(y) ? 29 : n[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
civil_days(int64_t y, int m, int d)
{
	int64_t	era, yoe, doy, doe;

	if (m <= 2)
		y--;
	era = floor_div(y, 400);
	yoe = y - era * 400;				/* 0..399 */
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;	/* 0..146096 */
	return era * 146097 + doe - 719468;
}

/* Checks the fields of t and turns them into Unix ms. */
static int
dt_finish(struct dt *t, int64_t *ms)
{
	int64_t	days, secs;
	int	m, d;

	if (t->has_epoch) {
		if (t->epoch > INT64_MAX / 1000 || t->epoch < INT64_MIN / 1000)
			return GW_EMALFORMED;
		/* Unix seconds are UTC whatever %z says. */
		*ms = t->epoch * 1000 + t->msec;
		return 0;
	}
	if (t->year < -99999 || t->year > 99999)
		return GW_EMALFORMED;
	if (t->hour12) {
		if (t->hour < 1 || t->hour > 12)
			return GW_EMALFORMED;
		if (t->pm >= 0)
			t->hour = t->hour % 12 + (t->pm ? 12 : 0);
	}
	if (t->yday != 0) {
		if (t->yday > (leap(t->year) ? 366 : 365))
			return GW_EMALFORMED;
		for (m = 1, d = t->yday; d > mdays(t->year, m); m++)
			d -= mdays(t->year, m);
		t->mon = m;
		t->mday = d;
	}
	if (t->mon < 1 || t->mon > 12 || t->mday < 1 ||
	    t->mday > mdays(t->year, t->mon) || t->hour > 23 ||
	    t->min > 59 || t->sec > 60)
		return GW_EMALFORMED;
	days = civil_days(t->year, t->mon, t->mday);
	secs = days * 86400 + t->hour * 3600 + t->min * 60 + t->sec - t->off;
	*ms = secs * 1000 + t->msec;
	return 0;
}

static void
dt_init(struct dt *t)
{
	memset(t, 0, sizeof *t);
	t->year = 1970;
	t->mon = 1;
	t->mday = 1;
	t->pm = -1;
}

/* Reads min..max digits at s[*i]; false when fewer than min. */
static bool
digits(const char *s, size_t len, size_t *i, int min, int max, int64_t *out)
{
	int64_t	v = 0;
	int	n = 0;

	while (*i < len && n < max && isdigit((unsigned char)s[*i])) {
		v = v * 10 + (s[(*i)++] - '0');
		n++;
	}
	*out = v;
	return n >= min;
}

/* Reads a fraction after the separator: ms, extra digits dropped. */
static bool
fraction(const char *s, size_t len, size_t *i, int *msec)
{
	int	n = 0, v = 0;

	while (*i < len && isdigit((unsigned char)s[*i])) {
		if (n < 3)
			v = v * 10 + (s[*i] - '0');
		n++;
		(*i)++;
	}
	while (n < 3 && n > 0) {
		v *= 10;
		n++;
	}
	*msec = v;
	return n > 0;
}

/*
 * An offset: Z / z, or +hh, +hhmm, +hh:mm (and '-'). colon: the ':' may
 * be left out. Sets t->off.
 */
static bool
offset(const char *s, size_t len, size_t *i, struct dt *t)
{
	int64_t	h, m = 0;
	int	sign;

	if (*i < len && (s[*i] == 'Z' || s[*i] == 'z')) {
		(*i)++;
		t->off = 0;
		return true;
	}
	if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
		return false;
	sign = s[(*i)++] == '-' ? -1 : 1;
	if (!digits(s, len, i, 2, 2, &h) || h > 23)
		return false;
	if (*i < len && s[*i] == ':') {
		(*i)++;
		if (!digits(s, len, i, 2, 2, &m))
			return false;
	} else if (*i < len && isdigit((unsigned char)s[*i]) &&
	    !digits(s, len, i, 2, 2, &m))
		return false;
	if (m > 59)
		return false;
	t->off = sign * (int)(h * 3600 + m * 60);
	return true;
}

/* See devtime.h. */
int
devtime_parse_iso(const char *s, size_t len, int64_t *ms)
{
	struct dt	t;
	size_t		i = 0;
	int64_t		v;

	dt_init(&t);
	if (!digits(s, len, &i, 4, 4, &t.year) || i >= len || s[i++] != '-' ||
	    !digits(s, len, &i, 2, 2, &v) || i >= len || s[i++] != '-')
		return GW_EMALFORMED;
	t.mon = (int)v;
	if (!digits(s, len, &i, 2, 2, &v))
		return GW_EMALFORMED;
	t.mday = (int)v;
	if (i == len)
		return dt_finish(&t, ms);
	if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
		return GW_EMALFORMED;
	i++;
	if (!digits(s, len, &i, 2, 2, &v) || i >= len || s[i++] != ':')
		return GW_EMALFORMED;
	t.hour = (int)v;
	if (!digits(s, len, &i, 2, 2, &v))
		return GW_EMALFORMED;
	t.min = (int)v;
	if (i < len && s[i] == ':') {
		i++;
		if (!digits(s, len, &i, 2, 2, &v))
			return GW_EMALFORMED;
		t.sec = (int)v;
		if (i < len && (s[i] == '.' || s[i] == ',')) {
			i++;
			if (!fraction(s, len, &i, &t.msec))
				return GW_EMALFORMED;
		}
	}
	if (i < len && !offset(s, len, &i, &t))
		return GW_EMALFORMED;
	if (i != len)
		return GW_EMALFORMED;
	return dt_finish(&t, ms);
}

/* Matches an English month or weekday name, full or 3 letters. */
static int
name_at(const char *s, size_t len, size_t *i, const char *const *names,
    int n)
{
	size_t	fl;
	int	k;

	for (k = 0; k < n; k++) {
		fl = strlen(names[k]);
		if (len - *i >= fl && strncasecmp(s + *i, names[k], fl) == 0) {
			*i += fl;
			return k;
		}
	}
	for (k = 0; k < n; k++) {
		if (len - *i >= 3 && strncasecmp(s + *i, names[k], 3) == 0) {
			*i += 3;
			return k;
		}
	}
	return -1;
}

/*
 * One directive c at s[*i] into t (s NULL: only check that c is known).
 * Returns 1 matched, 0 no match, -1 unknown directive.
 */
static int
directive(char c, const char *s, size_t len, size_t *i, struct dt *t)
{
	int64_t	v;
	int	k;
	bool	neg;

	if (strchr("YmdejHMSIyfzZsbBhaApTDFRnt%", c) == NULL || c == '\0')
		return -1;
	if (s == NULL)
		return 1;
	switch (c) {
	case 'Y':
		neg = *i < len && s[*i] == '-';
		if (neg || (*i < len && s[*i] == '+'))
			(*i)++;
		if (!digits(s, len, i, 1, 4, &v))
			return 0;
		t->year = neg ? -v : v;
		return 1;
	case 'y':
		if (!digits(s, len, i, 2, 2, &v))
			return 0;
		t->year = v < 69 ? 2000 + v : 1900 + v;
		return 1;
	case 'm': case 'd': case 'e': case 'H': case 'M': case 'S':
	case 'I':
		if (c == 'e' && *i < len && s[*i] == ' ')
			(*i)++;
		if (!digits(s, len, i, 1, 2, &v))
			return 0;
		if (c == 'm')
			t->mon = (int)v;
		else if (c == 'd' || c == 'e')
			t->mday = (int)v;
		else if (c == 'H' || c == 'I')
			t->hour = (int)v;
		else if (c == 'M')
			t->min = (int)v;
		else
			t->sec = (int)v;
		if (c == 'I')
			t->hour12 = 1;
		return 1;
	case 'j':
		if (!digits(s, len, i, 1, 3, &v) || v < 1)
			return 0;
		t->yday = (int)v;
		return 1;
	case 'f':
		return fraction(s, len, i, &t->msec) ? 1 : 0;
	case 'z':
		return offset(s, len, i, t) ? 1 : 0;
	case 'Z':
		if (len - *i >= 3 && (strncasecmp(s + *i, "UTC", 3) == 0 ||
		    strncasecmp(s + *i, "GMT", 3) == 0)) {
			*i += 3;
			return 1;
		}
		if (*i < len && (s[*i] == 'Z' || s[*i] == 'z')) {
			(*i)++;
			return 1;
		}
		return 0;
	case 's':
		neg = *i < len && s[*i] == '-';
		if (neg)
			(*i)++;
		if (!digits(s, len, i, 1, 15, &v))
			return 0;
		t->epoch = neg ? -v : v;
		t->has_epoch = 1;
		return 1;
	case 'b': case 'B': case 'h':
		if ((k = name_at(s, len, i, months, 12)) < 0)
			return 0;
		t->mon = k + 1;
		return 1;
	case 'a': case 'A':
		return name_at(s, len, i, wdays, 7) >= 0 ? 1 : 0;
	case 'p':
		if (len - *i >= 2 && strncasecmp(s + *i, "AM", 2) == 0)
			t->pm = 0;
		else if (len - *i >= 2 && strncasecmp(s + *i, "PM", 2) == 0)
			t->pm = 1;
		else
			return 0;
		*i += 2;
		return 1;
	case 'n': case 't':
		while (*i < len && isspace((unsigned char)s[*i]))
			(*i)++;
		return 1;
	case '%':
		if (*i >= len || s[*i] != '%')
			return 0;
		(*i)++;
		return 1;
	default:
		return 0;
	}
}

/* Expands the composite directives %T, %D, %F, %R. */
static const char *
composite(char c)
{
	switch (c) {
	case 'T':
		return "%H:%M:%S";
	case 'D':
		return "%m/%d/%y";
	case 'F':
		return "%Y-%m-%d";
	case 'R':
		return "%H:%M";
	default:
		return NULL;
	}
}

/* Runs fmt over s (NULL: check only). 0, GW_EMALFORMED, or -1 unknown. */
static int
run_format(const char *fmt, const char *s, size_t len, size_t *i,
    struct dt *t, char *bad)
{
	const char	*sub;
	int		 rc;

	for (; *fmt != '\0'; fmt++) {
		if (*fmt == '%') {
			fmt++;
			if ((sub = composite(*fmt)) != NULL) {
				if ((rc = run_format(sub, s, len, i, t,
				    bad)) != 0)
					return rc;
				continue;
			}
			rc = directive(*fmt, s, len, i, t);
			if (rc < 0) {
				*bad = *fmt;
				return -1;
			}
			if (rc == 0)
				return GW_EMALFORMED;
			if (*fmt == '\0')
				break;
		} else if (isspace((unsigned char)*fmt)) {
			while (s != NULL && *i < len &&
			    isspace((unsigned char)s[*i]))
				(*i)++;
		} else if (s != NULL) {
			if (*i >= len || s[*i] != *fmt)
				return GW_EMALFORMED;
			(*i)++;
		}
	}
	return 0;
}

/* See devtime.h. */
int
devtime_format_check(const char *fmt, struct gw_error *err)
{
	struct dt	t;
	size_t		i = 0;
	char		bad = 0;

	dt_init(&t);
	if (fmt[0] == '\0')
		return gw_error_set(err, NULL, "|time: an empty format");
	if (run_format(fmt, NULL, 0, &i, &t, &bad) != 0) {
		if (bad == '\0')
			return gw_error_set(err, NULL, "|time: the format "
			    "ends with a lone %%");
		return gw_error_set(err, NULL, "|time: unknown directive %%%c "
		    "(known: %%Y %%y %%m %%d %%e %%j %%H %%I %%M %%S %%f %%p "
		    "%%z %%Z %%s %%b %%B %%a %%A %%T %%D %%F %%R %%%%)", bad);
	}
	return 0;
}

/* See devtime.h. */
int
devtime_parse_format(const char *fmt, const char *s, size_t len,
    int64_t *ms)
{
	struct dt	t;
	size_t		i = 0;
	char		bad = 0;

	dt_init(&t);
	if (run_format(fmt, s, len, &i, &t, &bad) != 0)
		return GW_EMALFORMED;
	while (i < len && isspace((unsigned char)s[i]))
		i++;
	if (i != len)
		return GW_EMALFORMED;
	return dt_finish(&t, ms);
}

/* See devtime.h. */
int64_t
devtime_build_ms(void)
{
#ifdef MQLITE_BUILD_EPOCH
	return (int64_t)MQLITE_BUILD_EPOCH * 1000;
#else
	return 0;
#endif
}

/* See devtime.h. */
bool
devtime_clock_behind(int64_t now_ms, int64_t build_ms)
{
	return build_ms > 0 && now_ms < build_ms;
}
