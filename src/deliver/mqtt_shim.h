/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * Eclipse Paho C (MQTTAsync), loaded on first use: the table of the
 * functions the bridge calls, resolved with dlopen() from
 * libpaho-mqtt3as.so.1 the first time mqtt_shim_api() is called. The
 * daemon does not link Paho, so a gateway without an mqtt action never
 * maps it (nor OpenSSL through it). The table's members carry no Paho
 * names, so test helpers that link Paho itself do not clash with it.
 */
#ifndef GW_MQTT_SHIM_H
#define GW_MQTT_SHIM_H

#include <MQTTAsync.h>

/* Paho's functions, as the bridge uses them. */
struct mqtt_shim {
	int	(*create)(MQTTAsync *, const char *, const char *, int,
		    void *);
	int	(*set_callbacks)(MQTTAsync, void *, MQTTAsync_connectionLost *,
		    MQTTAsync_messageArrived *, MQTTAsync_deliveryComplete *);
	int	(*connect)(MQTTAsync, const MQTTAsync_connectOptions *);
	int	(*send_message)(MQTTAsync, const char *,
		    const MQTTAsync_message *, MQTTAsync_responseOptions *);
	int	(*disconnect)(MQTTAsync, const MQTTAsync_disconnectOptions *);
	void	(*destroy)(MQTTAsync *);
	void	(*free_message)(MQTTAsync_message **);
	void	(*free)(void *);
	const char *(*strerror)(int);
	/* MQTT 5.0 routes. */
	int	(*create_opts)(MQTTAsync *, const char *, const char *, int,
		    void *, MQTTAsync_createOptions *);
	int	(*props_add)(MQTTProperties *, const MQTTProperty *);
	void	(*props_free)(MQTTProperties *);
};

/*
 * The loaded table, or NULL when Paho cannot be loaded (logged once, with
 * the consequence). Thread-safe; the first call loads.
 */
const struct mqtt_shim *mqtt_shim_api(void);

#endif
