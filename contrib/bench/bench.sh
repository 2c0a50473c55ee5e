#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2024 The mqlite authors.
#
# bench.sh BUILD_DIR: measures mqlite on loopback, in one run, with the load
# generator contrib/bench/mqbench, the counting HTTP receiver
# contrib/bench/hookrecv, the plain libcurl client contrib/bench/curlpost,
# the hand-written MQTT-to-SQLite pipeline contrib/bench/pipeline and the
# fsync-delay shim contrib/bench/slowsync.so ('make bench' builds them and
# runs this). Four parts, chosen with BENCH_PARTS:
#
#   compare  mqlite next to Mosquitto, like for like (contrib/bench/
#            compare.sh describes each row, BENCH_COMPARE chooses them);
#   rules    ingest with 1,000 rules loaded next to ingest with one (4);
#   webhook  webhook forwarding next to a hand-written libcurl loop, and
#            the drain of a backlog after an outage (5);
#   bridge   the mqtt action draining a backlog into a local Mosquitto next
#            to a plain Paho C MQTTAsync publisher with the same window (6).
#   flash    bytes and flushes written per stored message at 10, 100 and
#            1,000 msgs/s and flat out, QoS 0 and 1, against the row's
#            logical size (contrib/bench/flashbench.py; FLASH_SECONDS per
#            paced row, 20; FLASH_FLAT_N flat-out messages, 200000;
#            FLASH_ACK_WINDOWS, 50,100,200, and FLASH_INFLIGHT, 4: the
#            QoS 1 rows at 100 msgs/s with larger ack windows).
#
# Every phase starts a fresh broker on a free 127.0.0.1 port picked here,
# with a temporary config (and, for mqlite, a temporary database under
# TMPDIR, whose filesystem and measured fsync latency head the output with
# the versions of everything measured).
#
#   4. Rules: BENCH_RULES_N QoS 1 messages with a JSON payload on
#      site/s1/dev/<i>/telemetry, to mqlite with one rule (that topic into a
#      typed table 'readings' with seven columns, four from payload paths),
#      then with the same rule plus BENCH_RULES_OTHER - 1 rules with where
#      filters whose distinct patterns never match the load (siblings of
#      the matching path, other literal sites, other roots). PUBACKed msgs/s, best of
#      BENCH_RULES_RUNS alternating runs each; 'readings' must hold N rows at
#      the last PUBACK and the other rules' table none. The target
#      is a ratio of at least 0.8.
#      Then the store's own speed: BENCH_RULES_Q0_N QoS 0 messages of the
#      same payload, flat out, to mqlite without rules (the default
#      path: 'messages'), with the one rule and with the 1,000 rules; rows
#      committed/s from the load's start until the table's max(id) reached
#      the count (polled every 0.1 s), best of BENCH_RULES_RUNS, and the
#      CPU time per row of the broker and of its store thread (the one
#      that inserts), lowest of the runs: on a busy host CPU time per row
#      moves less than rows/s. Targets:
#      one rule at least 0.9 x the default path, 1,000 rules at least
#      0.8 x one rule.
#   5. Webhook: hookrecv answers 200 to every request on a free port.
#      a. curlpost POSTs BENCH_HOOK_N envelope-sized JSON bodies to it, one
#         per request, on one kept-alive connection: requests/s.
#         a, b and c run BENCH_HOOK_RUNS times in turn; the best counts.
#      b. mqlite with one webhook rule (default envelope, ordered route, one
#         request per message), BENCH_HOOK_N QoS 1 publishes: messages/s from
#         the start of the load until the receiver has counted N messages
#         and the outbox is empty (polled every 0.05 s).
#      c. The same with "batch": {"max_messages": 100}: messages/s.
#      d. Drain: the receiver is down while BENCH_DRAIN_N messages are
#         published (all must be in the outbox), then it starts; requests/s
#         from its first request to its last, and the wait before the first
#         (the rule's retry backoff is capped at 1 s). The target is
#         at least 2,000 requests/s.
#   6. Bridge: first the backlog, once: mqlite with one mqtt rule (QoS 1,
#      max_in_flight BENCH_BRIDGE_WINDOW) whose upstream is down takes
#      BENCH_BRIDGE_N QoS 1 publishes (all must be in the outbox); it is
#      stopped and its database kept. Then BENCH_BRIDGE_ROUNDS rounds, the
#      two sides in turn (a b a b ...), so that a change of load on the
#      host touches both:
#      a. tests/helpers/paho_pub (Paho C MQTTAsync, one connection, QoS 1,
#         the same window) publishes BENCH_BRIDGE_N messages to a fresh
#         Mosquitto: messages/s from start to exit. Its payloads are the
#         BENCH_PAYLOAD bytes mqbench published, on a topic as long as the
#         one the mqtt rule renders.
#      b. mqlite restarted on a copy of the backlog, then Mosquitto starts
#         on the upstream port: rows/s from the first row seen deleted to
#         the outbox seen empty (min(id) polled every 0.05 s, an index
#         lookup: a count(*) would scan the backlog at every poll and take
#         CPU from the drain).
#      Each round's ratio b/a is printed; the median of the rounds' ratios
#      is the figure, with a target of at least 0.8.
#
# Environment: BENCH_QOS0_N (1000000), BENCH_QOS1_N (300000), BENCH_CONNS (8),
# BENCH_PAYLOAD (64), BENCH_WINDOW (20), BENCH_TIMEOUT (120 s per load run),
# BENCH_DURABILITY (unset = mqlite's default; "normal" or "full"),
# BENCH_COMPARE ("qos1,qos1v5,qos1sub,qos0,rows,slow,idle"; also
# "ceiling"), BENCH_V5_RUNS (3 rounds of MQTT 3.1.1 and 5.0 in qos1v5),
# BENCH_ROWS_N (100000 typed rows), BENCH_SLOW_US (5000 us added per
# fsync), BENCH_SLOW_N (100000), BENCH_IDLE_CONNS (10000), MOSQUITTO
# (/usr/sbin/mosquitto), MQLITE (BUILD_DIR/src/mqlite), BENCH_PARTS
# ("compare,rules,webhook,bridge,flash"), BENCH_RULES_N (100000), BENCH_RULES_OTHER
# (1000: rules loaded in the second configuration), BENCH_RULES_RUNS (3),
# BENCH_RULES_Q0_N (300000 QoS 0 messages per flat-out rules run),
# BENCH_HOOK_N (20000), BENCH_HOOK_RUNS (2), BENCH_DRAIN_N (20000),
# BENCH_BRIDGE_N (1000000), BENCH_BRIDGE_WINDOW (64), BENCH_BRIDGE_ROUNDS
# (3; BENCH_QUICK keeps 3 rounds of 100,000 messages).
# BENCH_QUICK=1 divides the message counts and the idle connections by ten
# and runs everything once, to try it out. The exit status is 0 when every
# phase ran and nothing was lost, 1 otherwise (a refused row counts as a
# loss); a target missed is reported, not an error. Everything is removed on
# exit.

set -u

BUILD=${1:-.}
MQBENCH=$BUILD/contrib/bench/mqbench
PIPELINE=$BUILD/contrib/bench/pipeline
SLOWSYNC=$(cd "$BUILD/contrib/bench" 2>/dev/null && pwd)/slowsync.so
FSYNCLAT=$BUILD/contrib/bench/fsynclat
HERE=$(dirname "$0")
HOOKRECV=$BUILD/contrib/bench/hookrecv
CURLPOST=$BUILD/contrib/bench/curlpost
PAHOPUB=$BUILD/tests/helpers/paho_pub
MQLITE=${MQLITE:-$BUILD/src/mqlite}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
# q N: N, or N / 10 with BENCH_QUICK=1.
q() {
	if [ "${BENCH_QUICK:-0}" = 1 ]; then
		echo $(($1 / 10))
	else
		echo "$1"
	fi
}
QOS0_N=${BENCH_QOS0_N:-$(q 1000000)}
QOS1_N=${BENCH_QOS1_N:-$(q 300000)}
CONNS=${BENCH_CONNS:-8}
PAYLOAD=${BENCH_PAYLOAD:-64}
WINDOW=${BENCH_WINDOW:-20}
TIMEOUT=${BENCH_TIMEOUT:-120}
DURABILITY=${BENCH_DURABILITY:-}
PARTS=$(echo "${BENCH_PARTS:-compare,rules,webhook,bridge,flash}" | tr ',' ' ')
COMPARE=$(echo "${BENCH_COMPARE:-qos1,qos1v5,qos1sub,qos0,rows,slow,idle}" |
    tr ',' ' ')
V5_RUNS=${BENCH_V5_RUNS:-3}
ROWS_N=${BENCH_ROWS_N:-$(q 100000)}
SLOW_US=${BENCH_SLOW_US:-5000}
SLOW_N=${BENCH_SLOW_N:-$(q 100000)}
IDLE_CONNS=${BENCH_IDLE_CONNS:-$(($(q 50000) / 5))}
RULES_N=${BENCH_RULES_N:-$(q 100000)}
RULES_OTHER=${BENCH_RULES_OTHER:-1000}
RULES_RUNS=${BENCH_RULES_RUNS:-3}
RULES_Q0_N=${BENCH_RULES_Q0_N:-$(q 300000)}
HOOK_N=${BENCH_HOOK_N:-$(q 20000)}
HOOK_RUNS=${BENCH_HOOK_RUNS:-2}
DRAIN_N=${BENCH_DRAIN_N:-$(q 20000)}
BRIDGE_N=${BENCH_BRIDGE_N:-$(q 1000000)}
BRIDGE_WINDOW=${BENCH_BRIDGE_WINDOW:-64}
BRIDGE_ROUNDS=${BENCH_BRIDGE_ROUNDS:-3}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	RULES_RUNS=${BENCH_RULES_RUNS:-1}
	HOOK_RUNS=${BENCH_HOOK_RUNS:-1}
fi
FSYNC_SLOW_US=-
# The JSON payload of the rules and webhook parts.
JSON_PAYLOAD='{"temp":21.5,"hum":40,"status":"ok","seq":123456}'

TMP=
PIDS=
MQ_RULES=
MQ_EXTRA=
MOSQ_EXTRA=
PRELOAD=
SYNC_COUNT=/dev/null
FAILED=0
NOTES=

die() {
	echo "bench: $*" >&2
	exit 1
}

note() {
	echo "bench: $*" >&2
	NOTES="$NOTES
  - $*"
}

cleanup() {
	if [ -n "$TMP" ] && [ -f "$TMP/load.pids" ]; then
		for p in $(cat "$TMP/load.pids"); do
			kill -TERM "$p" 2>/dev/null
		done
	fi
	for p in $PIDS; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null
			i=0
			while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			kill -KILL "$p" 2>/dev/null
		fi
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now_ms() {
	date +%s%3N
}

# Value of "key" in the one-line JSON object in file $2: a number, or a
# string without its quotes (escapes kept).
jget() {
	sed -n -e 's/.*"'"$1"'":"\(\([^"\\]\|\\.\)*\)".*/\1/p;t' \
	    -e 's/.*"'"$1"'":\([^,}]*\).*/\1/p' "$2"
}

# kB from a /proc/PID/status field, or '-'.
proc_kb() {
	v=$(awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" \
	    2>/dev/null)
	echo "${v:--}"
}

# Every local TCP port in use, one decimal number a line.
used_ports() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
	    awk 'NR > 1 { split($2, a, ":"); print a[2] }' |
	    while read -r h; do
		[ -n "$h" ] && printf '%d\n' "0x$h"
	    done
}

# A port in 20000..59999 nothing on this host is using.
pick_port() {
	used=$(used_ports)
	while :; do
		p=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		p=$((20000 + p % 40000))
		echo "$used" | grep -qx "$p" || break
	done
	echo "$p"
}

# True once something listens on 127.0.0.1:$1.
listening() {
	hex=$(printf '%04X' "$1")
	awk -v a="0100007F:$hex" '$2 == a && $4 == "0A" { f = 1 }
	    END { exit !f }' /proc/net/tcp
}

# wait_listen PID PORT NAME LOG: waits up to 10 s for the broker's port.
wait_listen() {
	i=0
	while ! listening "$2"; do
		if ! kill -0 "$1" 2>/dev/null; then
			echo "bench: $3 exited at start; its log:" >&2
			tail -n 20 "$4" >&2
			return 1
		fi
		[ $i -ge 100 ] && { echo "bench: $3 not listening on" \
		    "port $2 after 10 s" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# with_preload CMD...: execs CMD, under the slowsync shim when PRELOAD is
# set (SYNC_COUNT names the file the shim writes its fsync count to). Only
# in a subshell ('&' or '$(...)'), so that $! is the program itself.
with_preload() {
	if [ -n "$PRELOAD" ]; then
		exec env LD_PRELOAD="$PRELOAD" SLOWSYNC_US="$SLOW_US" \
		    SLOWSYNC_COUNT="$SYNC_COUNT" \
		    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		    "$@"
	fi
	exec "$@"
}

# start_broker NAME PHASE: sets BPID, BPORT, BLOG, BDB; tries 3 ports.
# mqlite loads the rules file $MQ_RULES when it is set and adds $MQ_EXTRA
# (', "key": value' text) to its config; Mosquitto adds the $MOSQ_EXTRA
# lines. With PRELOAD set the broker runs under that shim.
start_broker() {
	dir=$TMP/$1-$2
	mkdir -p "$dir"
	BLOG=$dir/log
	BDB=
	tries=0
	while [ $tries -lt 3 ]; do
		tries=$((tries + 1))
		BPORT=$(pick_port)
		case $1 in
		mosquitto)
			cat > "$dir/mosquitto.conf" <<-EOF
			listener $BPORT 127.0.0.1
			allow_anonymous true
			persistence false
			max_queued_messages 10000000
			max_queued_bytes 0
			max_connections -1
			set_tcp_nodelay true
			log_dest stderr
			log_type error
			log_type warning
			EOF
			[ -n "$MOSQ_EXTRA" ] &&
			    echo "$MOSQ_EXTRA" >> "$dir/mosquitto.conf"
			with_preload "$MOSQUITTO" -c "$dir/mosquitto.conf" \
			    > "$BLOG" 2>&1 &
			BPID=$!
			;;
		mqlite)
			BDB=$dir/db/telemetry.db
			mkdir -p "$dir/db"
			dur=
			[ -n "$DURABILITY" ] &&
			    dur=", \"durability\": \"$DURABILITY\""
			rules=
			[ -n "$MQ_RULES" ] && rules=", \"rules\": \"$MQ_RULES\""
			cat > "$dir/mqlite.json" <<-EOF
			{
			  "listeners": [ { "port": $BPORT, "bind": "127.0.0.1" } ],
			  "database": { "path": "$BDB"$dur },
			  "metrics": { "port": 0 },
			  "log": { "level": "warn" }$rules$MQ_EXTRA
			}
			EOF
			with_preload "$MQLITE" -c "$dir/mqlite.json" \
			    > "$BLOG" 2>&1 &
			BPID=$!
			;;
		esac
		PIDS="$PIDS $BPID"
		if wait_listen "$BPID" "$BPORT" "$1" "$BLOG"; then
			return 0
		fi
		kill -KILL "$BPID" 2>/dev/null
		wait "$BPID" 2>/dev/null
		# A port lost to a race is worth another try; a crash is not.
		grep -qi 'address already in use' "$BLOG" || break
	done
	return 1
}

# stop_broker NAME: SIGTERM, then up to 30 s for a clean exit.
stop_broker() {
	if ! kill -0 "$BPID" 2>/dev/null; then
		wait "$BPID" 2>/dev/null
		note "$1 died during the run (exit status $?): see log below"
		tail -n 20 "$BLOG" >&2
		FAILED=1
		return 1
	fi
	kill -TERM "$BPID"
	i=0
	while kill -0 "$BPID" 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$BPID" 2>/dev/null; then
		note "$1 still running 30 s after SIGTERM: killed"
		kill -KILL "$BPID"
		wait "$BPID" 2>/dev/null
		FAILED=1
		return 1
	fi
	wait "$BPID"
	st=$?
	if [ $st -ne 0 ]; then
		note "$1 exited with status $st after SIGTERM"
		tail -n 20 "$BLOG" >&2
		FAILED=1
	fi
	return 0
}

# Rows in the messages table (max(id) when $2 = fast), or '-'.
db_rows() {
	[ -f "$1" ] || { echo 0; return; }
	if [ "${2:-}" = fast ]; then
		q='select coalesce(max(id), 0) from messages'
	else
		q='select count(*) from messages'
	fi
	v=$(sqlite3 -cmd '.timeout 5000' "$1" "$q" 2>/dev/null)
	echo "${v:-0}"
}

# run_load NAME ARGS...: runs one load, its JSON line into $TMP/NAME.json
# (the caller sets OUT to that name first); returns mqbench's status.
run_load() {
	out=$TMP/$1.json
	shift
	to=
	command -v timeout > /dev/null &&
	    to="timeout -k 5 $((TIMEOUT + 30))"
	# In the background, so a signal to this script is handled at once.
	$to "$MQBENCH" -j -h 127.0.0.1 -p "$BPORT" -T "$TIMEOUT" -c "$CONNS" \
	    -s "$PAYLOAD" -w "$WINDOW" "$@" > "$out" 2> "$out.err" &
	echo $! >> "$TMP/load.pids"
	wait $!
	st=$?
	cat "$out.err" >&2
	return $st
}

# Messages per second until the broker had read everything and closed the
# publishers after their DISCONNECT (QoS 0 writes end in socket buffers).
drain_rate() {
	awk -v n="$(jget sent "$1")" -v s="$(jget drain_s "$1")" 'BEGIN {
	    if (s + 0 > 0) printf "%.0f\n", n / s; else print "-" }'
}

# ratio A B: A/B with two decimals, '-' when either is missing.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
	    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0)
		print "-"; else printf "%.2f\n", a / b }'
}

# db_q DB SQL: the one value SQL returns, or '-'.
db_q() {
	v=$(sqlite3 -cmd '.timeout 5000' "$1" "$2" 2>/dev/null)
	echo "${v:--}"
}

# better A B: the larger of two numbers, either of which may be '-'.
better() {
	awk -v a="$1" -v b="$2" 'BEGIN {
	    if (a !~ /^[0-9.]+$/) print b; else if (b !~ /^[0-9.]+$/) print a
	    else print (a + 0 >= b + 0 ? a : b) }'
}

# per_s N MS: N events in MS milliseconds as a rate, or '-'.
per_s() {
	awk -v n="$1" -v ms="$2" 'BEGIN {
	    if (ms !~ /^[0-9]+$/ || ms + 0 <= 0) print "-"
	    else printf "%.0f\n", n * 1000 / ms }'
}

# gen_rules FILE N: the rule the load matches, then N - 1 rules with
# distinct patterns that never match site/s1/dev/<i>/telemetry, each with
# a where filter and transforms (|mul in the where, |round in a column),
# into one table 'other': siblings of the matching path at
# its last and third levels, other literal sites, other roots.
gen_rules() {
	awk -v n="$2" 'BEGIN {
	    q = "\""
	    print "{ \"rules\": ["
	    printf "  { \"name\": \"readings\", \"topic\": \"site/{site}/dev/" \
		"{device}/telemetry\",\n    \"sqlite\": { \"table\": " \
		"\"readings\", \"columns\": { \"ts\": \"{received_ms}\", " \
		"\"site\": \"{site}\", \"device\": \"{device}\",\n      " \
		"\"temp\": \"{payload.temp}\", \"hum\": \"{payload.hum}\", " \
		"\"status\": \"{payload.status}\", \"seq\": " \
		"\"{payload.seq}\" },\n      \"types\": { \"temp\": " \
		"\"REAL\", \"hum\": \"INTEGER\", \"status\": \"TEXT\", " \
		"\"seq\": \"INTEGER\" } } }"
	    for (i = 1; i < n; i++) {
		k = i % 4
		if (k == 0)
			t = "site/{site}/dev/{device}/m" i
		else if (k == 1)
			t = "site/x" i "/dev/+/telemetry"
		else if (k == 2)
			t = "plant" i "/{line}/#"
		else
			t = "site/{site}/gw" i "/{device}/telemetry"
		printf ",\n  { \"name\": \"other%d\", \"topic\": \"%s\", " \
		    "\"where\": { \"value\": \"{payload.temp|mul:0.1}\", " \
		    "\"op\": \">\", \"to\": %d },\n    " \
		    "\"sqlite\": { \"table\": \"other\", \"columns\": { " \
		    "\"ts\": \"{received_ms}\", \"topic\": \"{topic}\", " \
		    "\"v\": \"{payload.temp|round:1}\" }, \"types\": { \"v\": " \
		    "\"REAL\" } } }", i, t, i
	    }
	    print "\n] }"
	}' > "$1"
}

# rules_run CONF RUN: one QoS 1 load against mqlite with rules-CONF.json
# (CONF is 1 or many); keeps the best rate of CONF in R_rules_CONF_*.
rules_run() {
	name=rules$1-$2
	echo "== mqlite, QoS 1: $RULES_N JSON messages," \
	    "$(jget nrules "$TMP/rules-$1.info") rule(s), run $2"
	MQ_RULES=$TMP/rules-$1.json
	if ! start_broker mqlite "$name"; then
		MQ_RULES=
		FAILED=1
		return
	fi
	MQ_RULES=
	OUT=$TMP/$name.json
	if run_load "$name" -q 1 -n "$RULES_N" -t site/s1/dev -x telemetry \
	    -P "$JSON_PAYLOAD"; then
		n=$(db_q "$BDB" 'select count(*) from readings')
		o=$(db_q "$BDB" 'select count(*) from other')
		rate=$(jget msgs_per_s "$OUT")
		echo "   $rate msgs/s, p50 $(jget p50_us "$OUT") us," \
		    "p99 $(jget p99_us "$OUT") us, $n rows"
		eval "prev=\$R_rules_$1_pub"
		if [ "$(better "$prev" "$rate")" = "$rate" ]; then
			eval "R_rules_$1_pub=\$rate"
			eval "R_rules_$1_p50=\$(jget p50_us \"\$OUT\")"
			eval "R_rules_$1_p99=\$(jget p99_us \"\$OUT\")"
		fi
		eval "R_rules_$1_rows=\$n"
		if [ "$n" != "$RULES_N" ]; then
			note "rules ($1): $n rows in readings right after the" \
			    "last PUBACK, expected $RULES_N"
			FAILED=1
		fi
		if [ "$o" != 0 ] && [ "$o" != - ]; then
			note "rules ($1): $o rows in 'other', whose rules" \
			    "should match nothing"
			FAILED=1
		fi
	else
		note "rules ($1) load failed: $(jget error "$OUT")"
		FAILED=1
	fi
	stop_broker mqlite
	n=$(db_q "$BDB" 'select count(*) from readings')
	[ "$n" = "$RULES_N" ] || { note "rules ($1): $n rows in readings" \
	    "after stop, expected $RULES_N"; FAILED=1; }
}

# lower A B: the smaller of two numbers, either of which may be '-'.
lower() {
	awk -v a="$1" -v b="$2" 'BEGIN {
	    if (a !~ /^[0-9.]+$/) print b; else if (b !~ /^[0-9.]+$/) print a
	    else print (a + 0 <= b + 0 ? a : b) }'
}

# store_ticks PID: CPU ticks of mqlite's store thread (mqlite-store), or '-'.
store_ticks() {
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = mqlite-store ] || continue
		sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{ print $12 + $13 }'
		return
	done
	echo -
}

# The broker's and its store thread's CPU ticks as the last row lands.
rules_q0_end() {
	c1=$(proc_ticks "$BPID")
	s1=$(store_ticks "$BPID")
}

# rules_q0 CONF RUN: BENCH_RULES_Q0_N QoS 0 messages flat out to mqlite
# with rules-CONF.json (CONF 1 or many) or none (CONF default, rows into
# messages); keeps the best rows committed/s of CONF in R_q0_CONF.
rules_q0() {
	name=q0$1-$2
	table=readings
	MQ_RULES=
	if [ "$1" = default ]; then
		table=messages
		echo "== mqlite, QoS 0 flat out: $RULES_Q0_N JSON messages," \
		    "no rules (messages), run $2"
	else
		MQ_RULES=$TMP/rules-$1.json
		echo "== mqlite, QoS 0 flat out: $RULES_Q0_N JSON messages," \
		    "$(jget nrules "$TMP/rules-$1.info") rule(s), run $2"
	fi
	if ! start_broker mqlite "$name"; then
		MQ_RULES=
		FAILED=1
		return
	fi
	MQ_RULES=
	c0=$(proc_ticks "$BPID")
	s0=$(store_ticks "$BPID")
	c1=- s1=-
	poll_load "$BDB" "$table" "$RULES_Q0_N" rules_q0_end "$name" -q 0 \
	    -n "$RULES_Q0_N" -t site/s1/dev -x telemetry -P "$JSON_PAYLOAD"
	if [ "$PL_RC" -ne 0 ]; then
		note "rules QoS 0 ($1): load failed:" \
		    "$(jget error "$TMP/$name.json")"
		FAILED=1
	elif [ -z "$PL_END" ]; then
		note "rules QoS 0 ($1): $PL_ROWS of $RULES_Q0_N rows, no" \
		    "progress for 15 s"
		FAILED=1
	else
		rate=$(per_s "$RULES_Q0_N" \
		    $((PL_END - $(jget start_ms "$TMP/$name.json"))))
		cpu=$(per_msg cpu "$c0:$c1" "$RULES_Q0_N")
		scpu=$(per_msg cpu "$s0:$s1" "$RULES_Q0_N")
		echo "   $rate rows/s, CPU us per row: broker $cpu," \
		    "store thread $scpu"
		eval "prev=\$R_q0_$1"
		eval "R_q0_$1=\$(better \"\$prev\" \"\$rate\")"
		eval "prev=\$R_q0cpu_$1"
		eval "R_q0cpu_$1=\$(lower \"\$prev\" \"\$cpu\")"
		eval "prev=\$R_q0st_$1"
		eval "R_q0st_$1=\$(lower \"\$prev\" \"\$scpu\")"
	fi
	stop_broker mqlite
	n=$(db_q "$BDB" "select count(*) from $table")
	[ "$n" = "$RULES_Q0_N" ] || { note "rules QoS 0 ($1): $n rows in" \
	    "$table after stop, expected $RULES_Q0_N"; FAILED=1; }
}

bench_rules() {
	[ -x "$MQLITE" ] || { note "no daemon at $MQLITE"; FAILED=1; return; }
	gen_rules "$TMP/rules-1.json" 1
	echo '{"nrules":1}' > "$TMP/rules-1.info"
	gen_rules "$TMP/rules-many.json" "$RULES_OTHER"
	echo "{\"nrules\":$RULES_OTHER}" > "$TMP/rules-many.info"
	for f in 1 many; do
		if ! "$MQLITE" --check -r "$TMP/rules-$f.json" \
		    > "$TMP/check.log" 2>&1; then
			note "generated rules-$f.json fails --check:" \
			    "$(head -n 3 "$TMP/check.log")"
			FAILED=1
			return
		fi
	done
	run=0
	while [ "$run" -lt "$RULES_RUNS" ]; do
		run=$((run + 1))
		rules_run 1 "$run"
		rules_run many "$run"
	done
	run=0
	while [ "$run" -lt "$RULES_RUNS" ]; do
		run=$((run + 1))
		rules_q0 default "$run"
		rules_q0 1 "$run"
		rules_q0 many "$run"
	done
}

# hook_rules FILE PORT [BATCH]: one webhook rule for the bench topics to
# hookrecv on PORT, default envelope, retries capped at 1 s; BATCH is the
# batch's max_messages, none when empty.
hook_rules() {
	batch=
	if [ -n "${3:-}" ]; then
		batch=", \"batch\": { \"max_messages\": $3,"
		batch="$batch \"max_delay_ms\": 100 }"
	fi
	cat > "$1" <<-EOF
	{ "rules": [
	  { "name": "hook", "topic": "site/{site}/dev/{device}/telemetry",
	    "webhook": { "url": "http://127.0.0.1:$2/hook/{site}",
	                 "retry": { "base_ms": 100, "cap_ms": 1000 }$batch } }
	] }
	EOF
}

# start_recv PHASE TARGET [PORT]: starts hookrecv, counting "received_ms"
# keys as messages and noting when TARGET are in, on PORT or a free port
# (3 tries); sets RPID, RPORT, RSTATS, RLOG.
start_recv() {
	RSTATS=$TMP/recv-$1.json
	RLOG=$TMP/recv-$1.log
	tries=0
	while [ $tries -lt 3 ]; do
		tries=$((tries + 1))
		RPORT=${3:-$(pick_port)}
		"$HOOKRECV" -p "$RPORT" -o "$RSTATS" -m '"received_ms"' \
		    -n "$2" -T $((TIMEOUT * 3)) > "$RLOG" 2>&1 &
		RPID=$!
		PIDS="$PIDS $RPID"
		wait_listen "$RPID" "$RPORT" hookrecv "$RLOG" && return 0
		kill -KILL "$RPID" 2>/dev/null
		wait "$RPID" 2>/dev/null
		[ -z "${3:-}" ] && grep -qi 'address already in use' "$RLOG" ||
		    break
	done
	return 1
}

stop_recv() {
	kill -TERM "$RPID" 2>/dev/null
	wait "$RPID" 2>/dev/null
}

# wait_forward N LOADPID: polls the receiver's counters and the outbox
# until the receiver has counted N messages and the outbox is empty, or
# nothing moved for 15 s, or the broker died. Sets FW_END (ms, or empty
# when it did not finish), FW_LEFT (outbox rows) and LRC (the load's exit
# status; LOADPID '-' when the load is already over).
wait_forward() {
	FW_END=
	LRC=
	[ "$2" = - ] && LRC=0
	last=
	t_move=$(now_ms)
	while :; do
		msgs=$(jget messages "$RSTATS")
		FW_LEFT=$(db_q "$BDB" 'select count(*) from outbox')
		t=$(now_ms)
		if [ "$msgs/$FW_LEFT" != "$last" ]; then
			last=$msgs/$FW_LEFT
			t_move=$t
		fi
		if [ -z "$LRC" ] && ! kill -0 "$2" 2>/dev/null; then
			wait "$2"
			LRC=$?
		fi
		if [ -n "$LRC" ] && [ "$(jget target_ms "$RSTATS")" != 0 ] &&
		    [ "$FW_LEFT" = 0 ]; then
			FW_END=$t
			break
		fi
		[ $((t - t_move)) -gt 15000 ] && break
		kill -0 "$BPID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$LRC" ]; then
		wait "$2"
		LRC=$?
	fi
}

# hook_curl RUN: phase 5a.
hook_curl() {
	echo "== libcurl loop: $HOOK_N POSTs, one message per request, run $1"
	body="{\"topic\":\"site/s1/dev/0/telemetry\",\"payload\":$JSON_PAYLOAD"
	body="$body,\"received_ms\":1700000000000,\"client_id\":"
	body="$body\"mqbench-100000-0\",\"username\":null,\"qos\":1,"
	body="$body\"retain\":false}"
	start_recv "curl-$1" "$HOOK_N" || { FAILED=1; return; }
	out=$TMP/curlpost-$1.json
	to=
	command -v timeout > /dev/null &&
	    to="timeout -k 5 $((TIMEOUT + 30))"
	$to "$CURLPOST" -j -T "$TIMEOUT" -n "$HOOK_N" -P "$body" \
	    -u "http://127.0.0.1:$RPORT/hook/s1" > "$out" 2>&1 &
	echo $! >> "$TMP/load.pids"
	if wait $!; then
		echo "   $(jget req_per_s "$out") requests/s"
		R_hook_curl=$(better "$R_hook_curl" "$(jget req_per_s "$out")")
	else
		note "curlpost failed: $(jget error "$out")"
		FAILED=1
	fi
	sleep 0.1
	n=$(jget requests "$RSTATS")
	[ "$n" = "$HOOK_N" ] || { note "curlpost: the receiver counted $n" \
	    "requests of $HOOK_N"; FAILED=1; }
	stop_recv
}

# hook_sustained KIND BATCH RUN: phases 5b and 5c; KIND is one or batch.
hook_sustained() {
	if [ -n "$2" ]; then
		echo "== mqlite webhook, batch $2: $HOOK_N QoS 1 messages," \
		    "run $3"
	else
		echo "== mqlite webhook, one message per request:" \
		    "$HOOK_N QoS 1 messages, run $3"
	fi
	start_recv "$1-$3" "$HOOK_N" || { FAILED=1; return; }
	hook_rules "$TMP/hook-$1.json" "$RPORT" "$2"
	MQ_RULES=$TMP/hook-$1.json
	if ! start_broker mqlite "hook-$1-$3"; then
		MQ_RULES=
		stop_recv
		FAILED=1
		return
	fi
	MQ_RULES=
	OUT=$TMP/hook-$1-$3-load.json
	run_load "hook-$1-$3-load" -q 1 -n "$HOOK_N" -t site/s1/dev \
	    -x telemetry -P "$JSON_PAYLOAD" &
	wait_forward "$HOOK_N" $!
	reqs=$(jget requests "$RSTATS")
	msgs=$(jget messages "$RSTATS")
	if [ "$LRC" -ne 0 ]; then
		note "webhook ($1) load failed: $(jget error "$OUT")"
		FAILED=1
	elif [ -z "$FW_END" ]; then
		note "webhook ($1): the receiver counted $msgs of $HOOK_N" \
		    "messages, $FW_LEFT left in the outbox, no progress" \
		    "for 15 s"
		FAILED=1
	else
		tgt=$(jget target_ms "$RSTATS")
		start=$(jget start_ms "$OUT")
		rate=$(per_s "$HOOK_N" $((tgt - start)))
		echo "   $rate messages/s in $reqs requests, outbox empty" \
		    "$((FW_END - tgt)) ms after the last"
		eval "prev=\$R_hook_$1"
		if [ "$(better "$prev" "$rate")" = "$rate" ]; then
			eval "R_hook_$1=\$rate"
			eval "R_hook_$1_reqs=\$reqs"
			eval "R_hook_$1_lag=\$((FW_END - tgt))"
		fi
		[ "$msgs" = "$HOOK_N" ] || note "webhook ($1): the receiver" \
		    "counted $msgs messages for $HOOK_N published (retries?)"
	fi
	stop_broker mqlite
	stop_recv
}

# hook_drain: phase 5d.
hook_drain() {
	echo "== mqlite webhook drain: $DRAIN_N QoS 1 messages while the" \
	    "receiver is down, then it starts"
	port=$(pick_port)
	hook_rules "$TMP/hook-drain.json" "$port"
	MQ_RULES=$TMP/hook-drain.json
	if ! start_broker mqlite hook-drain; then
		MQ_RULES=
		FAILED=1
		return
	fi
	MQ_RULES=
	OUT=$TMP/hook-drain-load.json
	if ! run_load hook-drain-load -q 1 -n "$DRAIN_N" -t site/s1/dev \
	    -x telemetry -P "$JSON_PAYLOAD"; then
		note "webhook drain load failed: $(jget error "$OUT")"
		FAILED=1
		stop_broker mqlite
		return
	fi
	left=$(db_q "$BDB" 'select count(*) from outbox')
	R_hook_backlog=$left
	[ "$left" = "$DRAIN_N" ] || note "webhook drain: $left rows in the" \
	    "outbox after the load, expected $DRAIN_N"
	t_up=$(now_ms)
	if ! start_recv drain "$left" "$port"; then
		note "webhook drain: cannot start the receiver on port $port"
		FAILED=1
		stop_broker mqlite
		return
	fi
	wait_forward "$left" -
	if [ -z "$FW_END" ]; then
		note "webhook drain: the receiver counted" \
		    "$(jget messages "$RSTATS") of $left messages, $FW_LEFT" \
		    "left in the outbox, no progress for 15 s"
		FAILED=1
	else
		first=$(jget first_ms "$RSTATS")
		tgt=$(jget target_ms "$RSTATS")
		R_hook_drain=$(per_s "$(jget requests "$RSTATS")" \
		    $((tgt - first)))
		R_hook_wait=$((first - t_up))
		echo "   $R_hook_drain requests/s, first request" \
		    "$R_hook_wait ms after the receiver started"
	fi
	stop_broker mqlite
	stop_recv
}

bench_webhook() {
	[ -x "$MQLITE" ] || { note "no daemon at $MQLITE"; FAILED=1; return; }
	run=0
	while [ "$run" -lt "$HOOK_RUNS" ]; do
		run=$((run + 1))
		hook_curl "$run"
		hook_sustained one "" "$run"
		hook_sustained batch 100 "$run"
	done
	hook_drain
}

# bridge_paho ROUND: (a) once, its messages/s into R_bp_ROUND.
bridge_paho() {
	echo "== round $1a: Paho C MQTTAsync loop, $BRIDGE_N QoS 1" \
	    "publishes, window $BRIDGE_WINDOW, into Mosquitto"
	eval "R_bp_$1=-"
	start_broker mosquitto "bridge-ref$1" || { FAILED=1; return; }
	t0=$(now_ms)
	if "$PAHOPUB" 127.0.0.1 "$BPORT" bench/site/s1/dev/0/telemetry \
	    "$BRIDGE_N" 1 m "$BRIDGE_WINDOW" "$PAYLOAD" \
	    > "$TMP/pahopub.out" 2>&1; then
		rate=$(per_s "$BRIDGE_N" $(($(now_ms) - t0)))
		eval "R_bp_$1=$rate"
		echo "   $rate messages/s"
	else
		note "paho_pub failed: $(tail -n 1 "$TMP/pahopub.out")"
		FAILED=1
	fi
	stop_broker mosquitto
}

# bridge_rules PORT: the one mqtt rule, its upstream on PORT.
bridge_rules() {
	cat > "$TMP/bridge-rules.json" <<-EOF
	{ "rules": [ { "name": "up", "topic": "site/#",
	  "mqtt": { "url": "tcp://127.0.0.1:$1", "topic": "bench/{topic}",
	            "qos": 1, "max_in_flight": $BRIDGE_WINDOW } } ] }
	EOF
	MQ_RULES=$TMP/bridge-rules.json
}

# bridge_fill: the backlog, once: mqlite with the mqtt rule, its upstream
# down, takes BRIDGE_N QoS 1 publishes (all must be in the outbox); it is
# stopped and its database kept in $TMP/backlog for every round.
bridge_fill() {
	echo "== backlog: $BRIDGE_N QoS 1 messages published to mqlite" \
	    "while its upstream is down"
	bridge_rules "$(pick_port)"
	if ! start_broker mqlite bridge-fill; then
		MQ_RULES=
		FAILED=1
		return 1
	fi
	MQ_RULES=
	OUT=$TMP/bridge-load.json
	if ! run_load bridge-load -q 1 -n "$BRIDGE_N" -t site/s1/dev \
	    -x telemetry; then
		note "bridge load failed: $(jget error "$OUT")"
		FAILED=1
		stop_broker mqlite
		return 1
	fi
	stop_broker mqlite || return 1
	R_bridge_backlog=$(db_q "$BDB" 'select count(*) from outbox')
	if [ "$R_bridge_backlog" != "$BRIDGE_N" ]; then
		note "bridge: $R_bridge_backlog rows in the outbox after the" \
		    "load, expected $BRIDGE_N"
		FAILED=1
		return 1
	fi
	mkdir -p "$TMP/backlog"
	cp "$BDB"* "$TMP/backlog/"
}

# bridge_drain ROUND: (b) once: mqlite restarted on a copy of the backlog,
# its upstream down until it runs; then Mosquitto starts on the upstream
# port. Rows/s from the first row seen deleted to the outbox seen empty
# (min(id) polled every 0.05 s: an index lookup, not a scan) into
# R_bd_ROUND.
bridge_drain() {
	echo "== round $1b: mqlite mqtt action, drain of the $BRIDGE_N-row" \
	    "backlog once the upstream Mosquitto starts"
	eval "R_bd_$1=-"
	up=$(pick_port)
	bridge_rules "$up"
	mkdir -p "$TMP/mqlite-bridge$1/db"
	cp "$TMP/backlog/"* "$TMP/mqlite-bridge$1/db/"
	if ! start_broker mqlite "bridge$1"; then
		MQ_RULES=
		FAILED=1
		return
	fi
	MQ_RULES=
	mkdir -p "$TMP/upstream$1"
	printf 'listener %s 127.0.0.1\nallow_anonymous true\n%s\n' "$up" \
	    "persistence false" > "$TMP/upstream$1/mosquitto.conf"
	"$MOSQUITTO" -c "$TMP/upstream$1/mosquitto.conf" \
	    > "$TMP/upstream$1/log" 2>&1 &
	upid=$!
	PIDS="$PIDS $upid"
	wait_listen "$upid" "$up" upstream "$TMP/upstream$1/log" ||
	    { FAILED=1; stop_broker mqlite; return; }
	q_min='select coalesce(min(id), 0) from outbox'
	start=$(db_q "$BDB" "$q_min")
	t_first= c_first= t_end= last=$start t_last=$(now_ms)
	while :; do
		m=$(db_q "$BDB" "$q_min")
		t=$(now_ms)
		if [ "$m" != "$last" ]; then
			last=$m
			t_last=$t
		fi
		[ "$m" = 0 ] && { t_end=$t; break; }
		if [ -z "$t_first" ] && [ "$m" != "$start" ]; then
			t_first=$t
			c_first=$(db_q "$BDB" 'select count(*) from outbox')
			t=$(now_ms)
		fi
		[ $((t - t_last)) -gt 15000 ] && break
		sleep 0.05
	done
	if [ -z "$t_end" ] || [ -z "$t_first" ]; then
		note "bridge: round $1: outbox min(id) $last, no progress" \
		    "for 15 s: see logs below"
		tail -n 20 "$BLOG" "$TMP/upstream$1/log" >&2
		FAILED=1
	else
		rate=$(per_s "$c_first" $((t_end - t_first)))
		eval "R_bd_$1=$rate"
		echo "   $rate rows/s"
	fi
	stop_broker mqlite
	kill -TERM "$upid" 2>/dev/null
	wait "$upid" 2>/dev/null
}

# median: the median of the numbers on stdin, or '-' without any.
median() {
	sort -n | awk '{ v[NR] = $1 } END {
	    if (NR == 0) print "-"
	    else if (NR % 2) print v[(NR + 1) / 2]
	    else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bridge_vals NAME: the rounds' values of R_NAME_1, R_NAME_2 ..., one a
# line, those measured only.
bridge_vals() {
	n=1
	while [ $n -le "$BRIDGE_ROUNDS" ]; do
		eval "echo \$R_$1_$n"
		n=$((n + 1))
	done | grep -v '^-$'
}

# bench_bridge: phase 6, the two sides in turn (a b a b ...), so that a
# change of the host's load touches both alike.
bench_bridge() {
	round=1
	while [ $round -le "$BRIDGE_ROUNDS" ]; do
		eval "R_bp_$round=- R_bd_$round=- R_br_$round=-" \
		    "R_bl_$round=-"
		round=$((round + 1))
	done
	[ -x "$MQLITE" ] || { note "no daemon at $MQLITE"; FAILED=1; return; }
	bridge_fill || return
	round=1
	while [ $round -le "$BRIDGE_ROUNDS" ]; do
		eval "R_bl_$round=\$(cut -d' ' -f1 /proc/loadavg)"
		bridge_paho $round
		bridge_drain $round
		eval "R_br_$round=\$(ratio \$R_bd_$round \$R_bp_$round)"
		round=$((round + 1))
	done
	R_bridge_paho=$(bridge_vals bp | median)
	R_bridge_drain=$(bridge_vals bd | median)
	R_bridge_ratio=$(bridge_vals br | median)
}

report_bridge() {
	echo
	printf '%-38s %12s %12s %12s\n' \
	    "upstream MQTT, QoS 1, window $BRIDGE_WINDOW" "Paho loop" mqlite \
	    "mqlite/Paho"
	round=1
	while [ $round -le "$BRIDGE_ROUNDS" ]; do
		eval "row \"msgs/s, round $round (load \$R_bl_$round)\"" \
		    "\$R_bp_$round \$R_bd_$round"
		round=$((round + 1))
	done
	printf '%-38s %12s %12s %12s\n' "median of the rounds" \
	    "$R_bridge_paho" "$R_bridge_drain" "$R_bridge_ratio"
	row "drain backlog, rows" "-" "$R_bridge_backlog"
	echo
	echo "(a) paho_pub, window $BRIDGE_WINDOW; (b) drain of the outbox" \
	    "after an outage; both $BRIDGE_N messages of $PAYLOAD bytes on" \
	    "bench/site/s1/dev/N/telemetry;"
	echo "a and b alternate, $BRIDGE_ROUNDS rounds; the ratio is the" \
	    "median of the rounds' ratios."
	echo "Target, drain >= 0.8x the Paho loop:" \
	    "$(verdict "$R_bridge_ratio" 0.8)."
}

for part in $PARTS; do
	case $part in
	bridge)
		[ -x "$PAHOPUB" ] ||
		    die "no $PAHOPUB (make bench builds it)"
		;;
	compare)
		for t in "$PIPELINE" "$FSYNCLAT" "$SLOWSYNC"; do
			[ -x "$t" ] || [ -f "$t" ] ||
			    die "no $t (make bench builds it)"
		done
		;;
	rules) ;;
	flash)
		command -v python3 > /dev/null ||
		    die "the flash part needs python3"
		;;
	webhook)
		[ -x "$HOOKRECV" ] && [ -x "$CURLPOST" ] ||
		    die "no $HOOKRECV or $CURLPOST (make bench builds them)"
		;;
	*)
		die "unknown part '$part' in BENCH_PARTS" \
		    "(compare, rules, webhook, bridge, flash)"
		;;
	esac
done
[ -x "$MQBENCH" ] || die "no load generator at $MQBENCH (make bench builds it)"
command -v sqlite3 > /dev/null || die "the sqlite3 shell is required"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqlite-bench.XXXXXX") || die "mktemp failed"

for c in 1 many; do
	for m in pub p50 p99 rows; do
		eval "R_rules_${c}_$m=-"
	done
done
for m in curl one one_reqs one_lag batch batch_reqs batch_lag backlog drain \
    wait; do
	eval "R_hook_$m=-"
done
R_bridge_paho=- R_bridge_drain=- R_bridge_backlog=- R_bridge_ratio=-
R_q0_default=- R_q0_1=- R_q0_many=-
R_q0cpu_default=- R_q0cpu_1=- R_q0cpu_many=-
R_q0st_default=- R_q0st_1=- R_q0st_many=-

echo "mqlite bench: $(nproc 2>/dev/null || echo ?) CPUs, $CONNS connections," \
    "payload $PAYLOAD bytes, loopback, parts: $PARTS; load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
rev=$(git -C "$HERE" describe --always --dirty 2>/dev/null || echo unknown)
san=
ldd "$MQLITE" 2>/dev/null | grep -q libasan &&
    san=", built with the sanitizers: figures not representative"
echo "versions: mqlite $rev ($MQLITE$san); $("$MOSQUITTO" -h 2>/dev/null |
    head -n 1);" \
    "SQLite $(sqlite3 --version | cut -d' ' -f1) (shell); kernel" \
    "$(uname -r); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "database filesystem: $(df -T "$TMP" | awk 'NR == 2 {
    print $2 " on " $1 }') ($TMP); write+fdatasync of 4 KB:" \
    "$("$FSYNCLAT" "$TMP" 100 2>&1 || echo unknown)"
. "$HERE/lib.sh"
. "$HERE/compare.sh"

# Wear: bytes and flushes per stored message (flashbench.py says how).
bench_flash() {
	echo "== wear: bytes and flushes per stored message," \
	    "${FLASH_SECONDS:-20} s per paced row"
	FLASH_FLAT_N=${FLASH_FLAT_N:-$(q 200000)} python3 \
	    "$HERE/flashbench.py" "$MQLITE" "$MQBENCH" > "$TMP/flash.txt" \
	    2>&1 || {
		FAILED=1
		note "flash: a row lost messages or the run failed" \
		    "($(tail -n 1 "$TMP/flash.txt"))"
	}
}

report_flash() {
	echo
	echo "wear: bytes written (the daemon's whole-life ru_oublock, an" \
	    "idle start+stop subtracted) per stored message"
	cat "$TMP/flash.txt"
}

for part in $PARTS; do
	bench_$part
done

row() {
	printf '%-38s %12s %12s %12s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"
}

# 'met' or 'NOT met' for a value against a minimum, '-' when missing.
verdict() {
	awk -v v="$1" -v min="$2" 'BEGIN {
	    if (v !~ /^[0-9.]+$/) print "not measured"
	    else if (v + 0 >= min + 0) print "met"; else print "NOT met" }'
}

report_rules() {
	r=$(ratio "$R_rules_many_pub" "$R_rules_1_pub")
	echo
	printf '%-38s %12s %12s %12s\n' "mqlite ingest, JSON payload" "1 rule" \
	    "$RULES_OTHER rules" "ratio"
	row "QoS 1 msgs/s (PUBACKed), best of $RULES_RUNS" \
	    "$R_rules_1_pub" "$R_rules_many_pub"
	row "QoS 1 p50 publish->PUBACK us" "$R_rules_1_p50" "$R_rules_many_p50"
	row "QoS 1 p99 publish->PUBACK us" "$R_rules_1_p99" "$R_rules_many_p99"
	row "rows in readings at last PUBACK" "$R_rules_1_rows" \
	    "$R_rules_many_rows"
	echo
	echo "$RULES_N QoS 1 messages of ${#JSON_PAYLOAD} bytes per run," \
	    "window $WINDOW per connection; the other rules never match."
	echo "Best runs compared; every run is listed above, and on a busy" \
	    "host they spread widely."
	echo "Target, $RULES_OTHER rules at >= 0.8 x one rule:" \
	    "$(verdict "$r" 0.8) ($r)."
	r1=$(ratio "$R_q0_1" "$R_q0_default")
	rm=$(ratio "$R_q0_many" "$R_q0_1")
	echo
	printf '%-38s %12s %12s %12s\n' "mqlite QoS 0 flat out, rows/s" \
	    "reference" "measured" "ratio"
	row "1 rule vs default path (messages)" "$R_q0_default" "$R_q0_1"
	row "$RULES_OTHER rules vs 1 rule" "$R_q0_1" "$R_q0_many"
	row "broker CPU us/row: 1 rule vs default" "$R_q0cpu_default" \
	    "$R_q0cpu_1"
	row "broker CPU us/row: $RULES_OTHER vs 1 rule" "$R_q0cpu_1" \
	    "$R_q0cpu_many"
	row "store thread CPU us/row: 1 rule vs dflt" "$R_q0st_default" \
	    "$R_q0st_1"
	row "store thread CPU us/row: $RULES_OTHER vs 1" "$R_q0st_1" \
	    "$R_q0st_many"
	echo
	echo "$RULES_Q0_N QoS 0 messages of ${#JSON_PAYLOAD} bytes per run," \
	    "rows committed/s, best of $RULES_RUNS; CPU per row, lowest of" \
	    "$RULES_RUNS (a CPU ratio below 1 is cheaper)."
	echo "Target, 1 rule at >= 0.9 x the default path:" \
	    "$(verdict "$r1" 0.9) ($r1)."
	echo "Target, $RULES_OTHER rules at >= 0.8 x one rule (QoS 0):" \
	    "$(verdict "$rm" 0.8) ($rm)."
}

report_webhook() {
	echo
	printf '%-38s %12s %12s %12s\n' "webhook forwarding" "curl loop" \
	    mqlite "mqlite/curl"
	row "msgs/s, one per request (a, b)" "$R_hook_curl" "$R_hook_one"
	row "msgs/s, batch 100 (c)" "$R_hook_curl" "$R_hook_batch"
	row "requests received, batch 100" "-" "$R_hook_batch_reqs"
	row "outbox empty ms after last request" "-" \
	    "$R_hook_one_lag/$R_hook_batch_lag"
	row "drain req/s after an outage (d)" "-" "$R_hook_drain"
	row "drain backlog, messages" "-" "$R_hook_backlog"
	row "receiver up -> first request ms" "-" "$R_hook_wait"
	echo
	echo "(a) curlpost: one handle, keep-alive, $HOOK_N sequential POSTs;" \
	    "a, b, c: best of $HOOK_RUNS."
	echo "(b, c) from the start of $HOOK_N QoS 1 publishes until the" \
	    "receiver counted them all;"
	echo "    the outbox row is then seen empty within the time shown" \
	    "(b/c, 0.05 s polls)."
	echo "(d) requests/s from the receiver's first request to its last;" \
	    "retries capped at 1 s."
	echo "Target, drain >= 2,000 requests/s unbatched:" \
	    "$(verdict "$R_hook_drain" 2000) ($R_hook_drain)."
}

for part in $PARTS; do
	report_$part
done
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work" \
    "on the host skews the figures)"
if [ -n "$NOTES" ]; then
	echo "Problems:$NOTES"
fi
exit $FAILED
