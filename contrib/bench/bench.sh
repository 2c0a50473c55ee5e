#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2024 The mqlite authors.
#
# bench.sh BUILD_DIR: compares mqlite with Mosquitto on loopback, in one run,
# with the load generator contrib/bench/mqbench ('make bench' runs this).
#
# Every phase starts a fresh broker on a free 127.0.0.1 port picked here,
# with a temporary config (and, for mqlite, a temporary database):
#
#   1. QoS 0, BENCH_QOS0_N messages from BENCH_CONNS connections.
#      Mosquitto: with a subscriber on bench/#, publish-to-subscribe rate.
#      mqlite: rows committed per second, from the start of the load to the
#      moment 'select max(id) from messages' reaches N (polled every 0.1 s),
#      then the row count after a clean stop (SIGTERM).
#   2. QoS 1, BENCH_QOS1_N messages, window BENCH_WINDOW per connection:
#      PUBACKed msgs/s and p50/p99 publish-to-PUBACK latency. mqlite acks
#      after commit, so the row count must equal N as soon as the last
#      PUBACK is in (zero loss), and again after the stop.
#   3. Idle RSS (VmRSS about a second after start, before load) and peak
#      RSS (VmHWM at the end of each phase) of each broker.
#
# Environment: BENCH_QOS0_N (1000000), BENCH_QOS1_N (300000), BENCH_CONNS (8),
# BENCH_PAYLOAD (64), BENCH_WINDOW (20), BENCH_TIMEOUT (120 s per load run),
# BENCH_DURABILITY (unset = mqlite's default; "normal" or "full"),
# BENCH_BROKERS ("mosquitto mqlite"), MOSQUITTO (/usr/sbin/mosquitto),
# MQLITE (BUILD_DIR/src/mqlite). The exit status is 0 when every phase ran
# and nothing was lost, 1 otherwise. Everything is removed on exit.

set -u

BUILD=${1:-.}
MQBENCH=$BUILD/contrib/bench/mqbench
MQLITE=${MQLITE:-$BUILD/src/mqlite}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
QOS0_N=${BENCH_QOS0_N:-1000000}
QOS1_N=${BENCH_QOS1_N:-300000}
CONNS=${BENCH_CONNS:-8}
PAYLOAD=${BENCH_PAYLOAD:-64}
WINDOW=${BENCH_WINDOW:-20}
TIMEOUT=${BENCH_TIMEOUT:-120}
DURABILITY=${BENCH_DURABILITY:-}
BROKERS=${BENCH_BROKERS:-mosquitto mqlite}

TMP=
PIDS=
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

# start_broker NAME PHASE: sets BPID, BPORT, BLOG, BDB; tries 3 ports.
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
			set_tcp_nodelay true
			log_dest stderr
			log_type error
			log_type warning
			EOF
			"$MOSQUITTO" -c "$dir/mosquitto.conf" > "$BLOG" 2>&1 &
			BPID=$!
			;;
		mqlite)
			BDB=$dir/db/telemetry.db
			mkdir -p "$dir/db"
			dur=
			[ -n "$DURABILITY" ] &&
			    dur=", \"durability\": \"$DURABILITY\""
			cat > "$dir/mqlite.json" <<-EOF
			{
			  "listeners": [ { "port": $BPORT, "bind": "127.0.0.1" } ],
			  "database": { "path": "$BDB"$dur },
			  "log": { "level": "warn" }
			}
			EOF
			"$MQLITE" -c "$dir/mqlite.json" > "$BLOG" 2>&1 &
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

# Results: R_<broker>_<metric>, '-' when not measured.
for b in mosquitto mqlite; do
	for m in idle peak0 peak1 pub0 read0 e2e0 recv0 rows0 pub1 p50 p99 \
	    rows1; do
		eval "R_${b}_$m=-"
	done
done

bench_mosquitto() {
	echo "== mosquitto, QoS 0: $QOS0_N messages, subscriber on bench/#"
	if start_broker mosquitto qos0; then
		sleep 1
		R_mosquitto_idle=$(proc_kb "$BPID" VmRSS)
		OUT=$TMP/mosquitto-qos0.json
		if run_load mosquitto-qos0 -q 0 -n "$QOS0_N" -S; then
			R_mosquitto_pub0=$(jget msgs_per_s "$OUT")
			R_mosquitto_read0=$(drain_rate "$OUT")
			R_mosquitto_e2e0=$(jget sub_msgs_per_s "$OUT")
			R_mosquitto_recv0=$(jget sub_received "$OUT")
			[ "$R_mosquitto_recv0" = "$QOS0_N" ] ||
			    note "mosquitto QoS 0: subscriber received" \
			    "$R_mosquitto_recv0 of $QOS0_N (QoS 0 may drop)"
		else
			note "mosquitto QoS 0 load failed: $(jget error "$OUT")"
			FAILED=1
		fi
		R_mosquitto_peak0=$(proc_kb "$BPID" VmHWM)
		stop_broker mosquitto
	else
		FAILED=1
	fi

	echo "== mosquitto, QoS 1: $QOS1_N messages, window $WINDOW"
	if start_broker mosquitto qos1; then
		OUT=$TMP/mosquitto-qos1.json
		if run_load mosquitto-qos1 -q 1 -n "$QOS1_N"; then
			R_mosquitto_pub1=$(jget msgs_per_s "$OUT")
			R_mosquitto_p50=$(jget p50_us "$OUT")
			R_mosquitto_p99=$(jget p99_us "$OUT")
		else
			note "mosquitto QoS 1 load failed: $(jget error "$OUT")"
			FAILED=1
		fi
		R_mosquitto_peak1=$(proc_kb "$BPID" VmHWM)
		stop_broker mosquitto
	else
		FAILED=1
	fi
}

bench_mqlite() {
	[ -x "$MQLITE" ] || { note "no daemon at $MQLITE"; FAILED=1; return; }
	echo "== mqlite, QoS 0: $QOS0_N messages, rows committed/s"
	if start_broker mqlite qos0; then
		sleep 1
		R_mqlite_idle=$(proc_kb "$BPID" VmRSS)
		OUT=$TMP/mqlite-qos0.json
		run_load mqlite-qos0 -q 0 -n "$QOS0_N" &
		lpid=$!
		# Poll the row count while the load runs and after it, until
		# all N rows are there or nothing moves for 15 s.
		rows=0
		last=0
		t_last=
		t_move=$(now_ms)
		lrc=
		while :; do
			rows=$(db_rows "$BDB" fast)
			t=$(now_ms)
			if [ "$rows" != "$last" ]; then
				last=$rows
				t_move=$t
			fi
			if [ "$rows" -ge "$QOS0_N" ] 2>/dev/null; then
				t_last=$t
				break
			fi
			if [ -z "$lrc" ] && ! kill -0 "$lpid" 2>/dev/null; then
				wait "$lpid"
				lrc=$?
			fi
			[ $((t - t_move)) -gt 15000 ] && break
			kill -0 "$BPID" 2>/dev/null || break
			sleep 0.1
		done
		if [ -z "$lrc" ]; then
			wait "$lpid"
			lrc=$?
		fi
		if [ "$lrc" -eq 0 ]; then
			R_mqlite_pub0=$(jget msgs_per_s "$OUT")
			R_mqlite_read0=$(drain_rate "$OUT")
			start=$(jget start_ms "$OUT")
			if [ -n "$t_last" ]; then
				R_mqlite_rows0=$(awk -v n="$QOS0_N" \
				    -v ms="$((t_last - start))" \
				    'BEGIN { printf "%.0f\n", n * 1000 / ms }')
			else
				note "mqlite QoS 0: only $rows of $QOS0_N" \
				    "rows after 15 s without progress"
				FAILED=1
			fi
		else
			note "mqlite QoS 0 load failed: $(jget error "$OUT")"
			FAILED=1
		fi
		R_mqlite_peak0=$(proc_kb "$BPID" VmHWM)
		stop_broker mqlite
		n=$(db_rows "$BDB")
		[ "$n" = "$QOS0_N" ] || { note "mqlite QoS 0: $n rows after" \
		    "stop, expected $QOS0_N"; FAILED=1; }
	else
		FAILED=1
	fi

	echo "== mqlite, QoS 1: $QOS1_N messages, window $WINDOW"
	if start_broker mqlite qos1; then
		OUT=$TMP/mqlite-qos1.json
		if run_load mqlite-qos1 -q 1 -n "$QOS1_N"; then
			n=$(db_rows "$BDB")
			R_mqlite_pub1=$(jget msgs_per_s "$OUT")
			R_mqlite_p50=$(jget p50_us "$OUT")
			R_mqlite_p99=$(jget p99_us "$OUT")
			R_mqlite_rows1=$n
			if [ "$n" != "$QOS1_N" ]; then
				note "mqlite QoS 1: $n rows right after the" \
				    "last PUBACK, expected $QOS1_N (ack before" \
				    "commit, or loss)"
				FAILED=1
			fi
		else
			note "mqlite QoS 1 load failed: $(jget error "$OUT")"
			FAILED=1
		fi
		R_mqlite_peak1=$(proc_kb "$BPID" VmHWM)
		stop_broker mqlite
		n=$(db_rows "$BDB")
		[ "$n" = "$QOS1_N" ] || { note "mqlite QoS 1: $n rows after" \
		    "stop, expected $QOS1_N"; FAILED=1; }
	else
		FAILED=1
	fi
}

[ -x "$MQBENCH" ] || die "no load generator at $MQBENCH (make bench builds it)"
command -v sqlite3 > /dev/null || die "the sqlite3 shell is required"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqlite-bench.XXXXXX") || die "mktemp failed"

echo "mqlite bench: $(nproc 2>/dev/null || echo ?) CPUs, $CONNS connections," \
    "payload $PAYLOAD bytes, loopback; load average $(cut -d' ' -f1-3 \
    /proc/loadavg)"
for b in $BROKERS; do
	case $b in
	mosquitto)
		if [ -x "$MOSQUITTO" ]; then
			bench_mosquitto
		else
			note "no mosquitto at $MOSQUITTO"
			FAILED=1
		fi
		;;
	mqlite)
		bench_mqlite
		;;
	*)
		die "unknown broker '$b' in BENCH_BROKERS"
		;;
	esac
done

row() {
	printf '%-38s %12s %12s %12s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"
}
echo
printf '%-38s %12s %12s %12s\n' "" mosquitto mqlite "mqlite/mosq"
row "QoS 0 publish msgs/s, last write (3)" \
    "$R_mosquitto_pub0" "$R_mqlite_pub0"
row "QoS 0 msgs/s read by broker (1)" \
    "$R_mosquitto_read0" "$R_mqlite_read0"
row "QoS 0 end-to-end msgs/s (2)" "$R_mosquitto_e2e0" "$R_mqlite_rows0"
row "QoS 0 subscriber received" "$R_mosquitto_recv0" "-"
row "QoS 1 msgs/s (PUBACKed)" "$R_mosquitto_pub1" "$R_mqlite_pub1"
row "QoS 1 p50 publish->PUBACK us" "$R_mosquitto_p50" "$R_mqlite_p50"
row "QoS 1 p99 publish->PUBACK us" "$R_mosquitto_p99" "$R_mqlite_p99"
row "QoS 1 rows at last PUBACK" "-" "$R_mqlite_rows1"
row "idle RSS kB" "$R_mosquitto_idle" "$R_mqlite_idle"
row "peak RSS kB, QoS 0 phase" "$R_mosquitto_peak0" "$R_mqlite_peak0"
row "peak RSS kB, QoS 1 phase" "$R_mosquitto_peak1" "$R_mqlite_peak1"
echo
echo "(1) until the broker closed the last publisher after its DISCONNECT."
echo "(2) mosquitto: publish->subscriber rate (in memory, persistence off);"
echo "    mqlite: rows committed/s to SQLite (durability:" \
    "${DURABILITY:-default})."
echo "(3) until the last byte went to the kernel: meaningless unless the"
echo "    messages far exceed the socket buffers."
echo "QoS 0: $QOS0_N messages; QoS 1: $QOS1_N messages, window $WINDOW" \
    "per connection. Load average at the end: $(cut -d' ' -f1-3 \
    /proc/loadavg) (other work on the host skews the figures)"
if [ -n "$NOTES" ]; then
	echo "Problems:$NOTES"
fi
exit $FAILED
