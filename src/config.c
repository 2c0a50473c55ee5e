/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway configuration: defaults, the JSON config file and the command
 * line.
 *
 * Every plain setting is one row of an option table (Fluent Bit config_map):
 * its key path, its type, where it lives in struct gw_config (offset and
 * size), its range or choices, its default written in config-file syntax and
 * a one-line doc. config_init() applies the defaults from the table,
 * config_load_file() walks the JSON object against it and config_dump()
 * prints it back, so a new setting is one new row. Keys the table cannot
 * express (the listener array, sources, inline rules) are rows of type
 * OPT_SPECIAL with a handler; listener objects are walked with a second
 * table whose offsets point into struct config_listener.
 *
 * Loading never stops at the first problem: each unknown key, wrong type,
 * bad value or out-of-range number goes to the caller's report callback with
 * its full JSON path, and loading goes on with the next key.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "build_config.h"
#include "config.h"
#include "jsonfile.h"
#include "mem.h"
#include "config_int.h"
#include "units.h"

#define CONFIG_MAX_FILE		(4 * 1024 * 1024)	/* config file size cap */


/* Stores v into an integer or bool field of the given size. */
static void
field_store_int(void *p, size_t size, int64_t v)
{
	int32_t	i32;

	if (size == sizeof(bool))
		*(bool *)p = v != 0;
	else if (size == sizeof(int32_t)) {
		i32 = (int32_t)v;
		memcpy(p, &i32, sizeof i32);
	} else
		memcpy(p, &v, sizeof v);
}

static int64_t
field_fetch_int(const void *p, size_t size, int is_unsigned)
{
	int32_t		i32;
	uint32_t	u32;
	int64_t		i64;

	if (size == sizeof(bool))
		return *(const bool *)p;
	if (size == sizeof(int32_t)) {
		if (is_unsigned) {
			memcpy(&u32, p, sizeof u32);
			return u32;
		}
		memcpy(&i32, p, sizeof i32);
		return i32;
	}
	memcpy(&i64, p, sizeof i64);
	return i64;
}

/* Replaces the string in a char * field; takes ownership of s. */
void
cfgload_store_str(void *p, char *s)
{
	char	**pp = p;

	gw_free(*pp);
	*pp = s;
}

static int
choice_index(const char *const *choices, const char *s)
{
	int	i;

	for (i = 0; choices[i] != NULL; i++) {
		if (strcmp(choices[i], s) == 0)
			return i;
	}
	return -1;
}

/* Reports one problem at the JSON path and counts it. */
void
cfgload_error(struct load *ld, const char *path, const char *fmt, ...)
{
	struct gw_error	e;
	va_list		ap;

	snprintf(e.path, sizeof e.path, "%s", path);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	ld->nerrors++;
	if (ld->report != NULL)
		ld->report(ld->file, &e, ld->ctx);
}

/* Reports running out of memory; the load then fails with GW_ENOMEM. */
void
cfgload_oom(struct load *ld, const char *path)
{
	ld->oom = 1;
	cfgload_error(ld, path, "out of memory");
}

/* Returns a new copy of s, prefixed with the config folder if relative. */
char *
cfgload_resolve_path(const struct load *ld, const char *s)
{
	size_t	 dl, sl;
	char	*p;

	if (ld == NULL || ld->dir == NULL || s[0] == '/')
		return gw_strdup(s);
	dl = strlen(ld->dir);
	sl = strlen(s);
	if ((p = gw_malloc(dl + sl + 1)) == NULL)
		return NULL;
	memcpy(p, ld->dir, dl);
	memcpy(p + dl, s, sl + 1);
	return p;
}

/*
 * Reads a JSON number that must be an integer. Returns 0, -1 if it has a
 * fraction, -2 if it does not fit in an int64_t.
 */
static int
json_integer(const cJSON *it, int64_t *out)
{
	double	v = it->valuedouble;

	if (!isfinite(v) || v != floor(v))
		return -1;
	if (v >= 9223372036854775808.0 || v < -9223372036854775808.0)
		return -2;
	*out = (int64_t)v;
	return 0;
}

/* Formats the allowed range of o for an "out of range" message. */
static void
range_text(const struct config_option *o, char *buf, size_t len)
{
	char	lo[32], hi[32];

	switch (o->type) {
	case OPT_SIZE:
		units_format_size(lo, sizeof lo, (uint64_t)o->min);
		units_format_size(hi, sizeof hi, (uint64_t)o->max);
		break;
	case OPT_DURATION:
		units_format_duration(lo, sizeof lo, (uint64_t)o->min);
		units_format_duration(hi, sizeof hi, (uint64_t)o->max);
		break;
	default:
		snprintf(lo, sizeof lo, "%" PRId64, o->min);
		snprintf(hi, sizeof hi, "%" PRId64, o->max);
		break;
	}
	if (o->max == INT64_MAX)
		snprintf(buf, len, "must be at least %s", lo);
	else
		snprintf(buf, len, "must be between %s and %s", lo, hi);
}

/* Loads a size or duration: a non-negative integer or a string with unit. */
static int
load_quantity(struct load *ld, const struct config_option *o,
    const cJSON *it, const char *path, uint64_t *out)
{
	const char	*what, *example;
	int64_t		 v;
	int		 rc;

	if (o->type == OPT_SIZE) {
		what = "size";
		example = "\"512\", \"64KB\", \"1MB\" or \"2GB\"";
	} else {
		what = "duration";
		example = "\"250ms\", \"10s\", \"5m\", \"2h\" or \"30d\"";
	}
	if (cJSON_IsNumber(it)) {
		if ((rc = json_integer(it, &v)) == 0 && v >= 0) {
			*out = (uint64_t)v;
			return 0;
		}
		cfgload_error(ld, path, "bad %s %g: expected a non-negative "
		    "integer or a string like %s", what, it->valuedouble,
		    example);
		return -1;
	}
	if (!cJSON_IsString(it)) {
		cfgload_error(ld, path, "expected a %s (integer or string like "
		    "%s), got %s", what, example, jsonfile_type_name(it));
		return -1;
	}
	if (o->type == OPT_SIZE)
		rc = units_parse_size(it->valuestring, out);
	else
		rc = units_parse_duration(it->valuestring, out);
	if (rc == GW_ETOOBIG) {
		cfgload_error(ld, path, "%s \"%s\" is too large", what,
		    it->valuestring);
		return -1;
	}
	if (rc != 0) {
		cfgload_error(ld, path, "bad %s \"%s\": expected a number with "
		    "an optional unit, like %s", what, it->valuestring,
		    example);
		return -1;
	}
	return 0;
}

static void
choices_text(const char *const *choices, char *buf, size_t len)
{
	size_t	off = 0;
	int	i;

	buf[0] = '\0';
	for (i = 0; choices[i] != NULL && off < len; i++) {
		off += (size_t)snprintf(buf + off, len - off, "%s\"%s\"",
		    i == 0 ? "" : ", ", choices[i]);
	}
}

/* Checks it against o and stores it at base + o->offset. */
static void
load_value(struct load *ld, const struct config_option *o, const cJSON *it,
    void *base, const char *path)
{
	void		*p = (char *)base + o->offset;
	char		 text[160], *s;
	int64_t		 v;
	uint64_t	 u;
	int		 i = 0;

	switch (o->type) {
	case OPT_INT:
	case OPT_UINT:
		if (!cJSON_IsNumber(it)) {
			cfgload_error(ld, path, "expected an integer, got %s",
			    jsonfile_type_name(it));
			return;
		}
		if (json_integer(it, &v) == -1) {
			cfgload_error(ld, path, "expected an integer, got %g",
			    it->valuedouble);
			return;
		}
		if (json_integer(it, &v) != 0 || v < o->min || v > o->max) {
			range_text(o, text, sizeof text);
			cfgload_error(ld, path, "%g is out of range: %s",
			    it->valuedouble, text);
			return;
		}
		field_store_int(p, o->size, v);
		break;
	case OPT_BOOL:
		if (!cJSON_IsBool(it)) {
			cfgload_error(ld, path, "expected true or false, got %s",
			    jsonfile_type_name(it));
			return;
		}
		field_store_int(p, o->size, cJSON_IsTrue(it));
		break;
	case OPT_STRING:
	case OPT_PATH:
	case OPT_ENUM:
		if (!cJSON_IsString(it)) {
			cfgload_error(ld, path, "expected a string, got %s",
			    jsonfile_type_name(it));
			return;
		}
		if (o->choices != NULL &&
		    (i = choice_index(o->choices, it->valuestring)) < 0) {
			choices_text(o->choices, text, sizeof text);
			cfgload_error(ld, path, "bad value \"%s\": expected one "
			    "of %s", it->valuestring, text);
			return;
		}
		if (o->type == OPT_ENUM) {
			field_store_int(p, o->size, i);
			return;
		}
		if (o->type == OPT_PATH && it->valuestring[0] == '\0') {
			cfgload_error(ld, path, "expected a file name, got an "
			    "empty string");
			return;
		}
		if (o->type == OPT_PATH)
			s = cfgload_resolve_path(ld, it->valuestring);
		else
			s = gw_strdup(it->valuestring);
		if (s == NULL) {
			cfgload_oom(ld, path);
			return;
		}
		cfgload_store_str(p, s);
		break;
	case OPT_SIZE:
	case OPT_DURATION:
		if (load_quantity(ld, o, it, path, &u) != 0)
			return;
		if (u < (uint64_t)o->min || u > (uint64_t)o->max) {
			range_text(o, text, sizeof text);
			if (cJSON_IsString(it))
				cfgload_error(ld, path, "\"%s\" is out of range: "
				    "%s", it->valuestring, text);
			else
				cfgload_error(ld, path, "%" PRIu64 " is out of "
				    "range: %s", u, text);
			return;
		}
		field_store_int(p, o->size, (int64_t)u);
		break;
	case OPT_SPECIAL:
		o->handler(ld, it, path);
		break;
	}
}

static const struct config_option *
find_option(const struct config_option *tab, size_t n, const char *key)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (strcmp(tab[i].key, key) == 0)
			return &tab[i];
	}
	return NULL;
}

/* Returns 1 if some option of tab lives under the section key. */
static int
is_section(const struct config_option *tab, size_t n, const char *key)
{
	size_t	i, kl = strlen(key);

	for (i = 0; i < n; i++) {
		if (strncmp(tab[i].key, key, kl) == 0 && tab[i].key[kl] == '.')
			return 1;
	}
	return 0;
}

/* Writes prefix.key into buf; -1 when it does not fit. */
int
cfgload_join_path(char *buf, size_t len, const char *prefix,
    const char *key)
{
	int	n;

	if (prefix[0] == '\0')
		n = snprintf(buf, len, "%s", key);
	else
		n = snprintf(buf, len, "%s.%s", prefix, key);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/*
 * Walks the members of obj against tab. key_prefix is the dotted key of obj
 * within tab ("" at the table's root); shown_prefix is the JSON path of obj
 * used in reports ("listeners[2]").
 */
void
cfgload_object(struct load *ld, const cJSON *obj,
    const struct config_option *tab, size_t ntab, void *base,
    const char *key_prefix, const char *shown_prefix)
{
	const struct config_option	*o;
	const cJSON			*it, *prev;
	char				 key[CONFIG_PATH_MAX];
	char				 shown[CONFIG_PATH_MAX];
	int				 dup;

	cJSON_ArrayForEach(it, obj) {
		cfgload_join_path(shown, sizeof shown, shown_prefix, it->string);
		dup = 0;
		for (prev = obj->child; prev != it; prev = prev->next) {
			if (strcmp(prev->string, it->string) == 0)
				dup = 1;
		}
		if (dup) {
			cfgload_error(ld, shown, "duplicate key");
			continue;
		}
		if (strchr(it->string, '.') != NULL ||
		    cfgload_join_path(key, sizeof key, key_prefix, it->string) != 0) {
			cfgload_error(ld, shown, "unknown key");
			continue;
		}
		if ((o = find_option(tab, ntab, key)) != NULL)
			load_value(ld, o, it, base, shown);
		else if (!is_section(tab, ntab, key))
			cfgload_error(ld, shown, "unknown key");
		else if (!cJSON_IsObject(it)) {
			cfgload_error(ld, shown, "expected an object, got %s",
			    jsonfile_type_name(it));
		} else
			cfgload_object(ld, it, tab, ntab, base, key, shown);
	}
}

/* Sets the field of o to its default; returns 0 or GW_ENOMEM. */
static int
apply_default(const struct config_option *o, void *base)
{
	void		*p = (char *)base + o->offset;
	char		*s;
	uint64_t	 u = 0;

	if (o->def == NULL)
		return 0;
	switch (o->type) {
	case OPT_INT:
	case OPT_UINT:
		field_store_int(p, o->size, strtoll(o->def, NULL, 10));
		break;
	case OPT_BOOL:
		field_store_int(p, o->size, strcmp(o->def, "true") == 0);
		break;
	case OPT_STRING:
	case OPT_PATH:
		if ((s = gw_strdup(o->def)) == NULL)
			return GW_ENOMEM;
		cfgload_store_str(p, s);
		break;
	case OPT_SIZE:
		units_parse_size(o->def, &u);
		field_store_int(p, o->size, (int64_t)u);
		break;
	case OPT_DURATION:
		units_parse_duration(o->def, &u);
		field_store_int(p, o->size, (int64_t)u);
		break;
	case OPT_ENUM:
		field_store_int(p, o->size, choice_index(o->choices, o->def));
		break;
	case OPT_SPECIAL:
		break;
	}
	return 0;
}

/* Applies every row's default to base; 0 or GW_ENOMEM. */
int
cfgload_apply_defaults(const struct config_option *tab, size_t n,
    void *base)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (apply_default(&tab[i], base) != 0)
			return GW_ENOMEM;
	}
	return 0;
}

/* Frees every string field of base that the table names. */
void
cfgload_free_strings(const struct config_option *tab, size_t n,
    void *base)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (tab[i].type == OPT_STRING || tab[i].type == OPT_PATH)
			cfgload_store_str((char *)base + tab[i].offset, NULL);
	}
}

/*
 * Fills cfg with the defaults of the option table plus one listener on
 * 0.0.0.0:1883. Returns 0 or GW_ENOMEM (cfg is then empty but freeable).
 */
int
config_init(struct gw_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->cli_port = -1;
	if (cfgload_apply_defaults(config_root_options, config_nroot, cfg) != 0)
		goto fail;
	if (cfgload_apply_defaults(config_listener_options, config_nlistener,
	    &cfg->listeners[0]) != 0)
		goto fail;
	cfg->nlisteners = 1;
	return 0;

fail:
	config_free(cfg);
	cfg->cli_port = -1;
	return GW_ENOMEM;
}

/*
 * Frees every string cfg owns and leaves it zeroed; safe on a config that
 * config_init() failed on.
 */
void
config_free(struct gw_config *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	cfgload_free_strings(config_root_options, config_nroot, cfg);
	for (i = 0; i < CONFIG_MAX_LISTENERS; i++)
		config_listener_clear(&cfg->listeners[i]);
	for (i = 0; i < CONFIG_MAX_SOURCES; i++)
		config_source_clear(&cfg->sources[i]);
	gw_free(cfg->config_path);
	gw_free(cfg->rules_path);
	gw_free(cfg->rules_inline);
	gw_free(cfg->sources_json);
	gw_free(cfg->cli_db_path);
	gw_free(cfg->cli_rules_path);
	memset(cfg, 0, sizeof *cfg);
}

/* Reads the whole file; returns a new NUL-terminated buffer or NULL. */
static char *
read_file(struct load *ld, const char *path)
{
	char	 err[256], *text;
	int	 oom;

	text = jsonfile_read(path, CONFIG_MAX_FILE, NULL, err, sizeof err,
	    &oom);
	if (text == NULL && oom)
		cfgload_oom(ld, "");
	else if (text == NULL)
		cfgload_error(ld, "", "%s", err);
	return text;
}

static void
report_syntax(struct load *ld, const char *text, const char *end)
{
	int	 line, col;

	if (jsonfile_position(text, strlen(text), end, &line, &col) != 0)
		cfgload_error(ld, "", "JSON syntax error");
	else
		cfgload_error(ld, "", "JSON syntax error at line %d, column %d",
		    line, col);
}

/*
 * Loads the JSON config file at path over cfg (which holds defaults or
 * earlier values). Every problem goes to report (which may be NULL); the
 * return value is 0, GW_ECONFIG if anything was reported, or GW_ENOMEM.
 * Borrows path; cfg->config_path becomes a copy of it.
 */
int
config_load_file(struct gw_config *cfg, const char *path,
    config_report_fn report, void *ctx)
{
	struct load	 ld;
	const cJSON	*auth;
	const char	*slash, *end = NULL;
	char		*text, *copy;
	cJSON		*root = NULL;

	memset(&ld, 0, sizeof ld);
	ld.cfg = cfg;
	ld.file = path;
	ld.report = report;
	ld.ctx = ctx;

	if (cfg->config_path == NULL || strcmp(cfg->config_path, path) != 0) {
		if ((copy = gw_strdup(path)) == NULL) {
			cfgload_oom(&ld, "");
			return GW_ENOMEM;
		}
		cfgload_store_str(&cfg->config_path, copy);
	}
	if ((slash = strrchr(path, '/')) != NULL &&
	    (ld.dir = gw_strndup(path, (size_t)(slash - path) + 1)) == NULL) {
		cfgload_oom(&ld, "");
		return GW_ENOMEM;
	}
	if ((text = read_file(&ld, path)) == NULL)
		goto out;
	root = cJSON_ParseWithOpts(text, &end, 1);
	if (root == NULL) {
		report_syntax(&ld, text, end);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		cfgload_error(&ld, "", "expected a JSON object at the top level, "
		    "got %s", jsonfile_type_name(root));
		goto out;
	}
	cfgload_object(&ld, root, config_root_options, config_nroot, cfg, "", "");

	/* Anonymous access defaults to on only without a password file. */
	auth = cJSON_GetObjectItemCaseSensitive(root, "auth");
	if (cJSON_GetObjectItemCaseSensitive(auth, "allow_anonymous") == NULL)
		cfg->allow_anonymous = cfg->password_file == NULL;
	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "metrics")))
		cfg->metrics_enabled = true;
	/* SQLite pages are a power of 2 (the range was checked above). */
	if ((cfg->db_page_size & (cfg->db_page_size - 1)) != 0)
		cfgload_error(&ld, "database.page_size", "must be a power of "
		    "2, got %llu", (unsigned long long)cfg->db_page_size);

out:
	cJSON_Delete(root);
	gw_free(text);
	gw_free(ld.dir);
	if (ld.oom)
		return GW_ENOMEM;
	return ld.nerrors > 0 ? GW_ECONFIG : 0;
}

static void
dump_option(const struct config_option *o, const void *base,
    const char *prefix, FILE *out)
{
	const void	*p = (const char *)base + o->offset;
	const char	*s;
	char		 buf[64];
	int64_t		 v;

	if (o->type == OPT_SPECIAL)
		return;
	fprintf(out, "%s%s = ", prefix, o->key);
	v = o->type == OPT_STRING || o->type == OPT_PATH ? 0 :
	    field_fetch_int(p, o->size, o->type != OPT_INT);
	switch (o->type) {
	case OPT_INT:
	case OPT_UINT:
		fprintf(out, "%" PRId64 "\n", v);
		break;
	case OPT_BOOL:
		fprintf(out, "%s\n", v ? "true" : "false");
		break;
	case OPT_STRING:
	case OPT_PATH:
		s = *(char *const *)p;
		if (s == NULL)
			fprintf(out, "null\n");
		else
			fprintf(out, "\"%s\"\n", s);
		break;
	case OPT_SIZE:
	case OPT_DURATION:
		if (o->type == OPT_SIZE)
			units_format_size(buf, sizeof buf, (uint64_t)v);
		else
			units_format_duration(buf, sizeof buf, (uint64_t)v);
		if (v == 0)
			fprintf(out, "0\n");
		else
			fprintf(out, "\"%s\"\n", buf);
		break;
	case OPT_ENUM:
		fprintf(out, "\"%s\"\n", o->choices[v]);
		break;
	case OPT_SPECIAL:
		break;
	}
}

/* See config.h. */
void
config_dump(const struct gw_config *cfg, FILE *out)
{
	char	prefix[32];
	size_t	i, j;

	if (cfg->config_path != NULL)
		fprintf(out, "# config file: %s\n", cfg->config_path);
	for (i = 0; i < cfg->nlisteners && i < CONFIG_MAX_LISTENERS; i++) {
		snprintf(prefix, sizeof prefix, "listeners[%zu].", i);
		/* port, bind, then the tls.* keys of a TLS listener */
		for (j = 0; j < config_nlistener; j++) {
			if (j < 2 || cfg->listeners[i].tls)
				dump_option(&config_listener_options[j],
				    &cfg->listeners[i], prefix, out);
		}
	}
	for (i = 0; i < config_nroot; i++) {
		if (!cfg->metrics_enabled &&
		    strncmp(config_root_options[i].key, "metrics.", 8) == 0)
			continue;
		dump_option(&config_root_options[i], cfg, "", out);
	}
	if (!cfg->metrics_enabled)
		fprintf(out, "# metrics: off\n");
	if (cfg->rules_path != NULL)
		fprintf(out, "rules = \"%s\"\n", cfg->rules_path);
	else if (cfg->rules_inline != NULL)
		fprintf(out, "rules = %s\n", cfg->rules_inline);
	else
		fprintf(out, "# rules: built-in default rule (every publish "
		    "into table messages)\n");
	fprintf(out, "# sources: %zu\n", cfg->nsources);
}
