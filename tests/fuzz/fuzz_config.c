/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the config loader (src/config.c). The input is
 * written as config.json into a temporary folder made at start (the only
 * file the loader reads; relative paths inside resolve against that folder
 * and nothing is created) and loaded over the defaults, as mqlite -c does.
 *
 * Invariants: the load succeeds without a report, or fails with
 * GW_ECONFIG and at least one report, each naming the file and a reason;
 * a loaded config holds 1 to CONFIG_MAX_LISTENERS listeners with valid
 * ports, at most one of a rules path and inline rules, inline rules and
 * sources as JSON arrays (as many sources as counted), and dumps. The input
 * is also read as one size and one duration ("10MB", "250ms"): a value that
 * parses must parse to the same number when written back as a plain
 * number, and with the largest unit that divides it.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "err.h"
#include "units.h"

#include "fuzz_tmpdir.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static char	 tmpdir[] = "/tmp/mqlite-fuzz-config-XXXXXX";
static char	 path[64];
static int	 nreports;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir_make(tmpdir);
	snprintf(path, sizeof path, "%s/config.json", tmpdir);
	return 0;
}

static void
report(const char *file, const struct gw_error *e, void *ctx)
{
	(void)ctx;
	CHECK(file != NULL && strcmp(file, path) == 0);
	CHECK(e->msg[0] != '\0');
	nreports++;
}

static void
check_json_array(const char *text, size_t n, bool counted)
{
	cJSON	*j;

	if (text == NULL)
		return;
	j = cJSON_Parse(text);
	CHECK(j != NULL && cJSON_IsArray(j));
	if (counted)
		CHECK((size_t)cJSON_GetArraySize(j) == n);
	cJSON_Delete(j);
}

/* Round trips of a size or duration written back in a unit. */
static void
units(const uint8_t *data, size_t size)
{
	static const struct {
		const char	*unit;
		uint64_t	 mul;
		bool		 dur;
	} u[] = {
		{ "", 1, false }, { "B", 1, false }, { "KB", 1024, false },
		{ "MB", 1024 * 1024, false }, { "gb", 1024 * 1024 * 1024,
		false }, { "", 1, true }, { "ms", 1, true },
		{ "s", 1000, true }, { "m", 60000, true },
		{ "H", 3600000, true }, { "d", 86400000, true },
	};
	char		 s[64], back[64];
	uint64_t	 v, w;
	size_t		 i;
	int		 rc;
	bool		 dur;

	if (size >= sizeof s || memchr(data, '\0', size) != NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	for (dur = false; ; dur = true) {
		rc = dur ? units_parse_duration(s, &v) :
		    units_parse_size(s, &v);
		CHECK(rc == 0 || rc == GW_EMALFORMED || rc == GW_ETOOBIG);
		if (rc == 0) {
			for (i = 0; i < sizeof u / sizeof u[0]; i++) {
				if (u[i].dur != dur || v % u[i].mul != 0)
					continue;
				snprintf(back, sizeof back, "%" PRIu64 "%s",
				    v / u[i].mul, u[i].unit);
				rc = dur ? units_parse_duration(back, &w) :
				    units_parse_size(back, &w);
				CHECK(rc == 0 && w == v);
			}
		}
		if (dur)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_config	 cfg;
	FILE			*f;
	char			*dump = NULL;
	size_t			 dlen = 0, i;
	int			 rc;

	units(data, size);
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	if (fwrite(data, 1, size, f) != size) {
		fclose(f);
		return 0;
	}
	fclose(f);
	if (config_init(&cfg) != 0)
		return 0;
	nreports = 0;
	rc = config_load_file(&cfg, path, report, NULL);
	CHECK(rc == 0 || rc == GW_ECONFIG);
	CHECK((rc == 0) == (nreports == 0));
	if (rc == 0) {
		CHECK(cfg.nlisteners >= 1 &&
		    cfg.nlisteners <= CONFIG_MAX_LISTENERS);
		for (i = 0; i < cfg.nlisteners; i++)
			CHECK(cfg.listeners[i].port >= 0 &&
			    cfg.listeners[i].port <= 65535);
		CHECK(cfg.rules_path == NULL || cfg.rules_inline == NULL);
		check_json_array(cfg.rules_inline, 0, false);
		check_json_array(cfg.sources_json, cfg.nsources, true);
		CHECK(cfg.metrics_port >= 0 && cfg.metrics_port <= 65535);
		if ((f = open_memstream(&dump, &dlen)) != NULL) {
			config_dump(&cfg, f);
			fclose(f);
			CHECK(dlen > 0);
			free(dump);
		}
	}
	config_free(&cfg);
	return 0;
}
