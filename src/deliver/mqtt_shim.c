/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * Paho C loaded on first use; see mqtt_shim.h. DESIGN: the same as
 * curl_shim.c (dlshim.c does the dlopen), but the functions are reached
 * through a table instead of being redefined under Paho's names.
 */
#include <pthread.h>
#include <stddef.h>

#include "deliver/dlshim.h"
#include "deliver/mqtt_shim.h"

#define PAHO_SONAME	"libpaho-mqtt3as.so.1"

static struct mqtt_shim	api;
static pthread_once_t	api_once = PTHREAD_ONCE_INIT;
static int		api_ok;

#define SYM(field, name)	{ name, (void **)&api.field }

static const struct dlshim_sym syms[] = {
	SYM(create, "MQTTAsync_create"),
	SYM(set_callbacks, "MQTTAsync_setCallbacks"),
	SYM(connect, "MQTTAsync_connect"),
	SYM(send_message, "MQTTAsync_sendMessage"),
	SYM(disconnect, "MQTTAsync_disconnect"),
	SYM(destroy, "MQTTAsync_destroy"),
	SYM(free_message, "MQTTAsync_freeMessage"),
	SYM(free, "MQTTAsync_free"),
	SYM(strerror, "MQTTAsync_strerror"),
	SYM(create_opts, "MQTTAsync_createWithOptions"),
	SYM(props_add, "MQTTProperties_add"),
	SYM(props_free, "MQTTProperties_free"),
};

static void
api_load(void)
{
	api_ok = dlshim_load(PAHO_SONAME, syms, sizeof syms / sizeof syms[0],
	    "mqtt actions cannot forward (install libpaho-mqtt1.3)") == 0;
}

/* See mqtt_shim.h. Any thread. */
const struct mqtt_shim *
mqtt_shim_api(void)
{
	pthread_once(&api_once, api_load);
	return api_ok ? &api : NULL;
}
