#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Byte-exact checks with the C helper tests/helpers/mqtt_raw: CONNECT gets
# exactly 20 02 00 00, PINGREQ gets d0 00, a first packet other than CONNECT
# is closed without a reply, a 5-byte remaining length is closed. Starts the
# broker through the Python harness's conventions (free port, readiness).
set -u

: "${top_builddir:?}"
raw=$top_builddir/tests/helpers/mqtt_raw
[ -x "$raw" ] || { echo "test_raw.sh: $raw not built"; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/mqlite-e2e-raw.XXXXXX") || exit 1
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); \
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "${E2E_TARGET:-mqlite}" = mosquitto ]; then
	printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\n' \
	    "$port" > "$dir/m.conf"
	/usr/sbin/mosquitto -c "$dir/m.conf" 2>"$dir/log" &
else
	printf '{"listeners":[{"port":%s,"bind":"127.0.0.1"}],"database":{"path":"%s/t.db"}}\n' \
	    "$port" "$dir" > "$dir/c.json"
	"${MQLITE_BIN:-$top_builddir/src/mqlite}" -c "$dir/c.json" \
	    2>"$dir/log" &
fi
pid=$!
fails=0

cleanup() {
	kill -TERM "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	st=$?
	if [ $fails -ne 0 ] || [ $st -ne 0 ]; then
		echo "--- broker log (exit status $st) ---"
		cat "$dir/log"
		[ $st -ne 0 ] && fails=$((fails + 1))
	fi
	rm -rf "$dir"
}

i=0
until "$raw" 127.0.0.1 "$port" "" 50 >/dev/null 2>&1 || \
    [ $? -eq 3 ]; do
	i=$((i + 1))
	[ $i -ge 100 ] && { echo "broker not ready"; fails=1; cleanup; exit 1; }
	sleep 0.05
done

# check NAME HEX WANT_STATUS WANT_REPLY (a shell pattern)
check() {
	got=$("$raw" 127.0.0.1 "$port" "$2" 700)
	st=$?
	# shellcheck disable=SC2254
	case "$got" in
	$4) ok=1 ;;
	*) ok=0 ;;
	esac
	if [ "$st" -ne "$3" ] || [ $ok -ne 1 ]; then
		echo "FAIL $1: status $st reply '$got' (want $3 '$4')"
		fails=$((fails + 1))
	else
		echo "ok   $1"
	fi
}

connect=100d00044d5154540402003c000172	# CONNECT client id "r", clean
check connack "$connect" 3 20020000
check pingresp "${connect}c000" 3 20020000d000
check publish_qos1_puback "${connect}3206000174000778" 3 2002000040020007
check first_not_connect c000 0 ""
# Closed; the CONNACK before the bad header may or may not get out.
check varint_5_bytes "${connect}30ffffffff01" 0 "*"
check disconnect "${connect}e000" 0 20020000

cleanup
[ $fails -eq 0 ]
