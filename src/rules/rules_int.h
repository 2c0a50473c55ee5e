/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the rules engine files (load.c, match.c, extract.c,
 * template.c, where.c): the rule and rule set structs, compiled templates
 * and placeholders, where trees and the payload document. Nothing outside
 * src/rules includes this; rules.h is the interface.
 */
#ifndef GW_RULES_INT_H
#define GW_RULES_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "jsonfile.h"
#include "rules/rules.h"

struct loader;
struct subs;

/* What a placeholder names. */
enum rule_ph_kind {
	PH_CAPTURE,		/* {name}: a topic level */
	PH_TOPIC,
	PH_CLIENT_ID,
	PH_USERNAME,
	PH_SOURCE,		/* {source}: NULL for a local publish */
	PH_QOS,
	PH_RETAIN,
	PH_RECEIVED_MS,
	PH_PAYLOAD,		/* {payload} */
	PH_PAYLOAD_RAW,		/* {payload_raw} */
	PH_PAYLOAD_PATH,	/* {payload.a[0]...} */
	PH_ITEM,		/* {item}, {item.a[0]...}: foreach element */
	PH_ITEM_INDEX,		/* {item_index} */
	PH_TIME_SKEW,		/* {time_skew_ms} (transform.c) */
	PH_CONTENT_TYPE,	/* {content_type}: MQTT 5.0 property */
	PH_RESPONSE_TOPIC,	/* {response_topic} */
	PH_CORRELATION_DATA,	/* {correlation_data}: TEXT or BLOB */
	PH_USER_PROPERTY,	/* {user_properties.NAME}: steps[0].key */
};

/* One step of a payload path. */
struct rule_step {
	char		*key;		/* object key (decoded), or NULL */
	size_t		 keylen;	/* bytes in key */
	uint32_t	 index;		/* array index when key is NULL */
};

struct transform_step;

struct rule_ph {
	uint8_t		 kind;		/* enum rule_ph_kind */
	uint32_t	 level;		/* PH_CAPTURE: topic level number */
	struct rule_step *steps;	/* PH_PAYLOAD_PATH */
	size_t		 nsteps;
	struct transform_step *xf;	/* |transforms, in order (owned) */
	size_t		 nxf;
};

enum rule_seg_kind {
	SEG_TEXT,		/* literal text */
	SEG_ENV,		/* text from ${NAME}: a secret */
	SEG_PH,			/* a placeholder */
};

struct rule_seg {
	uint8_t		 kind;		/* enum rule_seg_kind */
	char		*text;		/* SEG_TEXT/SEG_ENV bytes (owned) */
	size_t		 len;
	char		*env;		/* SEG_ENV: the variable name */
	struct rule_ph	 ph;		/* SEG_PH */
};

struct rule_tmpl {
	struct rule_seg	*segs;
	size_t		 nsegs;
	bool		 secret;	/* has a SEG_ENV segment */
	char		*text;		/* the template as written (errors) */
};

/* The capture names of a pattern, used to compile templates. */
struct rule_caps {
	char		**names;	/* capture names */
	uint32_t	*levels;	/* their topic level numbers */
	size_t		 n;
	bool		 items;		/* {item...} allowed (load time) */
};

/* A where tree node. */
enum rule_where_op {
	WOP_ALL, WOP_ANY, WOP_NOT,
	WOP_EQ, WOP_NE, WOP_LT, WOP_LE, WOP_GT, WOP_GE, WOP_EXISTS, WOP_IN,
};

struct rule_where {
	uint8_t			 op;	/* enum rule_where_op */
	struct rule_where	**kids;	/* ALL/ANY/NOT operands */
	size_t			 nkids;
	struct rule_tmpl	*value;	/* comparison left side */
	struct rule_value	*to;	/* constants (owned TEXT) */
	size_t			 nto;	/* 1, or the "in" list length */
};

/* Body template of a webhook: a string template or a JSON value. */
struct rule_body {
	struct rule_tmpl	*str;	/* string body, or NULL */
	cJSON			*json;	/* JSON value (string leaves are
					 * templates), or NULL */
	struct rule_tmpl	**leaves; /* templates, JSON tree order */
	size_t			 nleaves;
};

struct rule {
	char			*name;
	char			*topic;		/* pattern as written */
	char			*filter;	/* captures turned into '+' */
	size_t			 id;		/* position in the file */
	struct rule_caps	 caps;
	struct rule_where	*where;		/* NULL = always */
	struct rule_sqlite	*sqlite;	/* actions, NULL if absent */
	struct rule_webhook	*webhook;
	struct rule_mqtt	*mqtt;
	struct rule_foreach	*foreach[RULE_NACTIONS]; /* or NULL */
	bool			 where_items;	/* where tests {item...} */
	const struct rule_ph	*time_ph;	/* device time: the first
						 * |time placeholder, or NULL */
	size_t			 time_nxf;	/* its steps up to |time */
	uint64_t		 max_time_skew_ms; /* "max_time_skew" */
	bool			 has_max_skew;	/* max_time_skew given */
	atomic_uint_fast64_t	 counters[RULE_NCOUNTERS];
};

struct match_slot;

struct rule_set {
	atomic_uint		 refs;
	char			*origin;
	struct rule		**rules;	/* file order */
	size_t			 nrules;
	struct subs		*trie;		/* filter -> rule */
	struct match_slot	*mcache;	/* recent topics' matches: the
						 * loop thread's (match.c) */
	enum rules_unmatched	 unmatched;	/* "unmatched", UNSET if absent */
};

/* The values one evaluation may read. */
struct rule_ctx {
	const struct rule	*r;
	const struct msg	*m;
	struct rule_payload	*pc;
};

/* template.c */
#define TMPL_URL	0x1	/* percent-encode interpolated values */
#define TMPL_SEAL	0x2	/* secrets as ${NAME}, '$' doubled */

int	tmpl_compile(const char *text, const struct rule_caps *caps,
	    bool allow_env, struct rule_tmpl **out, struct gw_error *err);
void	tmpl_free(struct rule_tmpl *t);
int	tmpl_eval(const struct rule_tmpl *t, const struct rule_ctx *c,
	    struct rule_value *out);
int	tmpl_render(const struct rule_tmpl *t, const struct rule_ctx *c,
	    int flags, struct rule_rendered *out);
int	tmpl_render_buf(const struct rule_tmpl *t, const struct rule_ctx *c,
	    int flags, struct buf *b);
const char *tmpl_infer_type(const struct rule_tmpl *t);
bool	tmpl_is_literal(const struct rule_tmpl *t);
int	value_append_text(struct buf *b, const struct rule_value *v);
int	buf_take_string(struct buf *b, char **out, size_t *len);
void	ph_free(struct rule_ph *ph);

int	tmpl_append_encoded(struct buf *b, const char *p, size_t len,
	    int flags);
int	value_append_base64(struct buf *b, const void *p, size_t len);

/* One action's "foreach": the array and the bound on its elements. */
struct rule_foreach {
	struct rule_tmpl	*path;	/* one {payload...} placeholder */
	unsigned		 max_items;	/* default 1000 */
};

/* extract.c */
int	extract_array(struct rule_payload *pc, const struct rule_ph *ph,
	    uint32_t *first, uint32_t *count, const char **what);
uint32_t extract_next(const struct rule_payload *pc, uint32_t node);
int	extract_item_json(struct rule_payload *pc, struct buf *b);
int	extract_ph(const struct rule_ph *ph, const struct rule_ctx *c,
	    struct rule_value *out);
int	extract_payload_json(struct rule_payload *pc, struct buf *b,
	    int *is_json);

/* transform.c */
size_t	transform_split(const char *s, size_t len);
int	transform_compile(const char *s, size_t len, struct rule_ph *ph,
	    struct gw_error *err);
void	transform_free(struct rule_ph *ph);
int	transform_ph_eval(const struct rule_ph *ph, const struct rule_ctx *c,
	    struct rule_value *out);
const char *transform_decl(const struct rule_ph *ph);
void	transform_rule_time(struct loader *ld, struct rule *r,
	    const char *path);
int	transform_count_skew(const struct rule_ctx *c);

/* extract.c, for |json */
int	extract_json_text(const char *s, size_t len,
	    const struct rule_step *steps, size_t nsteps,
	    struct rule_value *out, bool *is_json);

/* where.c */
int	where_compile(const cJSON *j, const struct rule_caps *caps,
	    const char *path, int depth, struct rule_where **out,
	    void (*error)(void *, const char *, const char *), void *ectx);
void	where_free(struct rule_where *w);
int	where_eval(const struct rule_where *w, const struct rule_ctx *c);

/* load.c: the loader state and its checking helpers. */
#define PATH_LEN	256

struct loader {
	const char	*file;		/* origin, for reports */
	const char	*dir;		/* folder for relative paths or NULL */
	rules_report_fn	 report;
	void		*ctx;
	int		 nerrors;
	int		 oom;
	struct rule_set	*set;
};

void	load_err(struct loader *ld, const char *path, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	load_oom(struct loader *ld, const char *path);
void	load_pathf(char *buf, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	load_path(char *buf, const char *base, const char *key);
const cJSON *load_item(const cJSON *obj, const char *key);
bool	load_keys(struct loader *ld, const cJSON *obj, const char *path,
	    const char *const *allowed);
bool	load_str(struct loader *ld, const cJSON *obj, const char *key,
	    const char *path, bool required, struct rule_str *out);
void	load_uint(struct loader *ld, const cJSON *obj, const char *key,
	    const char *path, double min, double max, unsigned *out);
void	load_bool(struct loader *ld, const cJSON *obj, const char *key,
	    const char *path, bool *out);
bool	load_duration(struct loader *ld, const cJSON *obj, const char *key,
	    const char *path, bool required, uint64_t *out);
void	load_rule(struct loader *ld, const cJSON *j, const char *path,
	    size_t id);
void	load_set_free(struct rule_set *set);
struct rule_tmpl *load_tmpl(struct loader *ld, const cJSON *j,
	    const char *path, const struct rule_caps *caps);
void	load_resolve(struct loader *ld, struct rule_str *s, const char *path);
bool	load_is_ident(const char *s);
bool	load_is_reserved(const char *s);
struct rule_column *load_find_col(const struct rule_sqlite *sq,
	    const char *name);

/* rollup_load.c */
void	rollup_load(struct loader *ld, struct rule *r, const cJSON *j,
	    const char *path);
void	rollup_load_free(struct rule_sqlite *sq);

/* action.c */
void	action_webhook_load(struct loader *ld, struct rule *r, const cJSON *j,
	    const char *path);
void	action_webhook_free(struct rule_webhook *w);
void	action_mqtt_load(struct loader *ld, struct rule *r, const cJSON *j,
	    const char *path);
void	action_mqtt_free(struct rule_mqtt *mq);

/* match.c */
int	match_build(struct rule_set *set);

/* foreach.c */
void	foreach_load(struct loader *ld, struct rule *r, int action,
	    const cJSON *j, const char *path);
void	foreach_free(struct rule *r);
bool	foreach_all(const cJSON *j);
bool	foreach_tmpl_item(const struct rule_tmpl *t);
bool	foreach_where_item(const struct rule_where *w);
int	foreach_envelope(cJSON *o, struct rule_payload *pc);
int	foreach_render_item(struct rule_payload *pc,
	    struct rule_rendered *out);

#endif
