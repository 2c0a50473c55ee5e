/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the configuration loader (config.c, config_sections.c): the
 * option table's row type, the state of one load and the helpers that
 * report, walk and store values. Nothing else includes this.
 */
#ifndef CONFIG_INT_H
#define CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"

#define CONFIG_PATH_MAX		256			/* shown key paths */

enum opt_type {
	OPT_INT,	/* JSON integer within [min, max] */
	OPT_UINT,	/* JSON non-negative integer within [min, max] */
	OPT_BOOL,	/* true or false */
	OPT_STRING,	/* string; one of choices when choices is set */
	OPT_PATH,	/* file name, relative to the config file's folder */
	OPT_SIZE,	/* bytes: integer or "64KB" */
	OPT_DURATION,	/* milliseconds: integer or "10s" */
	OPT_ENUM,	/* string in choices, stored as its index */
	OPT_SPECIAL,	/* parsed by handler */
};

struct load;
typedef void (*opt_handler)(struct load *, const cJSON *, const char *);

struct config_option {
	const char		*key;		/* dotted path within its table */
	enum opt_type		 type;
	size_t			 offset;	/* into the table's struct */
	size_t			 size;		/* sizeof the field */
	int64_t			 min;		/* numeric range */
	int64_t			 max;
	const char *const	*choices;	/* NULL-terminated, or NULL */
	const char		*def;		/* default, config syntax, or NULL */
	opt_handler		 handler;	/* OPT_SPECIAL only */
	const char		*doc;
};

/* State of one config_load_file() call. */
struct load {
	struct gw_config	*cfg;
	const char		*file;		/* as given, for reports */
	char			*dir;		/* folder with '/', NULL = cwd */
	config_report_fn	 report;
	void			*ctx;
	int			 nerrors;
	int			 oom;
};

/* config_sections.c: the tables. */
extern const struct config_option config_root_options[];
extern const size_t config_nroot;
extern const struct config_option config_listener_options[];
extern const size_t config_nlistener;
void	config_listener_clear(struct config_listener *);

/* config_sources.c: the "sources" array. */
void	config_sources_load(struct load *, const cJSON *, const char *);
void	config_source_clear(struct config_source *);

/* config.c: the machinery the section handlers use. */
void	cfgload_error(struct load *, const char *, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	cfgload_oom(struct load *, const char *);
char	*cfgload_resolve_path(const struct load *, const char *);
int	cfgload_join_path(char *, size_t, const char *, const char *);
void	cfgload_object(struct load *, const cJSON *,
	    const struct config_option *, size_t, void *, const char *,
	    const char *);
int	cfgload_apply_defaults(const struct config_option *, size_t, void *);
void	cfgload_free_strings(const struct config_option *, size_t, void *);
void	cfgload_store_str(void *, char *);

#endif /* CONFIG_INT_H */
