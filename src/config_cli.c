/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The command line: -c/-p/-d/-r/--check/-v/--version/--help parsed with
 * getopt_long into struct gw_config, and the overrides applied after the
 * config file has been read (command-line values win). Split from config.c,
 * which owns the file format.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "config.h"
#include "mem.h"

/* Replaces *dst with a copy of src (NULL clears); keeps *dst on failure. */
static void
replace_str(char **dst, const char *src)
{
	char	*s = NULL;

	if (src != NULL && (s = gw_strdup(src)) == NULL)
		return;
	gw_free(*dst);
	*dst = s;
}

/* See config.h. */
void
config_apply_cli(struct gw_config *cfg)
{
	size_t	i;

	if (cfg->cli_port >= 0) {
		/* -p is the first plain listener; added if all are TLS. */
		for (i = 0; i < cfg->nlisteners; i++) {
			if (!cfg->listeners[i].tls)
				break;
		}
		if (i == cfg->nlisteners && i < CONFIG_MAX_LISTENERS) {
			replace_str(&cfg->listeners[i].bind, "0.0.0.0");
			cfg->nlisteners++;
		}
		if (i < cfg->nlisteners)
			cfg->listeners[i].port = cfg->cli_port;
	}
	if (cfg->cli_db_path != NULL)
		replace_str(&cfg->db_path, cfg->cli_db_path);
	if (cfg->cli_rules_path != NULL) {
		replace_str(&cfg->rules_path, cfg->cli_rules_path);
		if (cfg->rules_path != NULL)
			replace_str(&cfg->rules_inline, NULL);
	}
	if (cfg->verbose > 0)
		replace_str(&cfg->log_level, "debug");
}

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: mqlite [OPTION]...\n"
"       mqlite passwd [-c] [-b] [-D] FILE USER [PASSWORD]\n"
"MQTT 3.1.1 broker that stores every publish in an SQLite database.\n"
"\n"
"  -c, --config=FILE     read settings from the JSON configuration FILE\n"
"  -p, --port=PORT       listen on PORT (0-65535; overrides the first "
"plain listener)\n"
"  -d, --database=FILE   use the SQLite database FILE (default "
"telemetry.db)\n"
"  -r, --rules=FILE      load rules from the JSON FILE (replaces the "
"default rule)\n"
"      --check           validate the configuration and rules, then exit\n"
"  -v, --verbose         log debug messages; with --check, print the "
"settings\n"
"      --version         print the version and exit\n"
"  -h, --help            print this help and exit\n"
"\n"
"Without options mqlite listens on 0.0.0.0:1883 and stores every publish\n"
"in the table \"messages\" of ./telemetry.db.\n"
"See 'man mqlite' for the configuration file, rules and signals.\n");
}

static int
parse_port(const char *s, int *out)
{
	char	*end;
	long	 v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

/* See config.h. getopt_long state is reset, so this may run repeatedly. */
int
config_parse_args(struct gw_config *cfg, int argc, char **argv)
{
	enum { ARG_CHECK = 256, ARG_VERSION };
	static const struct option long_opts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "port",	required_argument,	NULL, 'p' },
		{ "database",	required_argument,	NULL, 'd' },
		{ "rules",	required_argument,	NULL, 'r' },
		{ "check",	no_argument,		NULL, ARG_CHECK },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "version",	no_argument,		NULL, ARG_VERSION },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	char	**dst;
	int	  c;

	optind = 0;	/* glibc: full reinitialisation */
	opterr = 1;
	while ((c = getopt_long(argc, argv, "c:p:d:r:vh", long_opts,
	    NULL)) != -1) {
		dst = NULL;
		switch (c) {
		case 'c':
			dst = &cfg->config_path;
			break;
		case 'd':
			dst = &cfg->cli_db_path;
			break;
		case 'r':
			dst = &cfg->cli_rules_path;
			break;
		case 'p':
			if (parse_port(optarg, &cfg->cli_port) != 0) {
				fprintf(stderr, "mqlite: invalid port '%s': "
				    "expected a number from 0 to 65535\n",
				    optarg);
				return -1;
			}
			break;
		case ARG_CHECK:
			cfg->check_only = true;
			break;
		case 'v':
			cfg->verbose++;
			break;
		case ARG_VERSION:
			printf("mqlite %s\n", PACKAGE_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, "Try 'mqlite --help' for more "
			    "information.\n");
			return -1;
		}
		if (dst != NULL) {
			if (optarg[0] == '\0') {
				fprintf(stderr, "mqlite: option -%c needs a "
				    "file name\n", c);
				return -1;
			}
			replace_str(dst, optarg);
			if (*dst == NULL) {
				fprintf(stderr, "mqlite: out of memory\n");
				return -1;
			}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mqlite: unexpected argument '%s'\n"
		    "Try 'mqlite --help' for more information.\n",
		    argv[optind]);
		return -1;
	}
	return 0;
}
