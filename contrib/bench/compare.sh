# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2024 The mqlite authors.
#
# The 'compare' part of bench.sh (sourced by it, using its helpers and
# those of lib.sh): mqlite next to Mosquitto, like for like. Every row runs
# the same load against both sides in the same run, and a row whose either
# side lost a message it should have delivered (or stored) is printed as
# REFUSED with the reason, without a ratio.
#
#   qos1      QoS 1 ingest, no subscriber on either side: PUBACKed msgs/s;
#             mqlite must hold every row at the last PUBACK (it acks after
#             the commit). CPU microseconds (utime + stime from
#             /proc/PID/stat) and bytes written to disk (write_bytes from
#             /proc/PID/io) per message over the load; database bytes per
#             row after the stop.
#   qos1v5    the qos1 load in MQTT 3.1.1 and in 5.0 (mqbench -V 5), on
#             both sides: BENCH_V5_RUNS (3) rounds of the two back to back,
#             the order swapped each round; best msgs/s, its latencies,
#             lowest CPU per message, and the ratio 5.0 / 3.1.1 for each
#             broker (mqlite must hold every row in both). The target is
#             mqlite 5.0 at >= 0.9 x 3.1.1.
#   qos1sub   QoS 1 with a QoS 1 subscriber on '#' on both sides: msgs/s
#             received by the subscriber, which must get all of them.
#   qos0      QoS 0, rows committed/s by mqlite (polled) next to
#             Mosquitto's ingest with no subscriber (until it read every
#             byte and closed the publishers) and next to Mosquitto
#             publish->subscribe with a QoS 0 subscriber that must get all.
#   rows      typed rows from JSON: mqlite with one rule into a typed table
#             next to contrib/bench/pipeline (Mosquitto + a Paho C QoS 1
#             subscriber + cJSON + SQLite in batched transactions, WAL,
#             synchronous=FULL): rows committed/s, both durable; CPU and
#             bytes written per row (Mosquitto + pipeline together), and
#             database bytes per row.
#   slow      'qos1' and 'rows' again with contrib/bench/slowsync.so adding
#             BENCH_SLOW_US (5000) to every fsync/fdatasync of both sides,
#             the flush latency of an SD card; then mqlite alone with 8
#             publishers of window 100 (default settings): msgs/s next to
#             the group-commit ceiling window x publishers / fsync time,
#             at the nominal 5 ms and at the fsync time measured under the
#             shim on this disk. ('ceiling' runs only this last row.)
#   idle      BENCH_IDLE_CONNS (10000) idle connections: resident memory per
#             connection, (VmRSS with them - VmRSS before) / connections.

# Bytes of database file $1 (with its WAL) per row, $2 rows.
db_bytes_per_row() {
	s=0
	for f in "$1" "$1-wal"; do
		[ -f "$f" ] && s=$((s + $(stat -c %s "$f")))
	done
	awk -v s="$s" -v n="$2" 'BEGIN {
	    if (n !~ /^[0-9]+$/ || n + 0 == 0) print "-"
	    else printf "%.0f\n", s / n }'
}

# cmp_row LABEL REF MQLITE [REASON]: one comparison row; REASON set
# refuses it.
cmp_row() {
	if [ -n "${4:-}" ]; then
		printf '%-44s %11s %11s  REFUSED: %s\n' "$1" "$2" "$3" "$4" \
		    >> "$TMP/cmp.rows"
		FAILED=1
	else
		printf '%-44s %11s %11s %8s\n' "$1" "$2" "$3" \
		    "$(ratio "$3" "$2")" >> "$TMP/cmp.rows"
	fi
}

# cmp_head TITLE REFNAME: a heading line in the table.
cmp_head() {
	printf '\n%-44s %11s %11s %8s\n' "$1" "$2" mqlite ratio \
	    >> "$TMP/cmp.rows"
}

# loss WHO GOT WANT: a refusal reason when GOT != WANT, else nothing.
loss() {
	[ "$2" = "$3" ] || echo "$1 has $2 of $3"
}

# load_on BROKER NAME N ARGS...: a fresh broker, one load of N messages.
# Sets L_OK (1 when the load ran), L_OUT (its JSON), L_CPU and L_WB
# (per message), L_ROWS (mqlite: rows in 'messages' right after the last
# PUBACK), L_STOP (rows after the stop), L_DBROW (db bytes per row), L_SYNC
# (fsyncs counted by the shim), L_ERR.
load_on() {
	b=$1
	name=$2
	n=$3
	shift 3
	L_OK=0 L_CPU=- L_WB=- L_ROWS=- L_STOP=- L_DBROW=- L_SYNC=- L_ERR=
	SYNC_COUNT=$TMP/$name.syncs
	if ! start_broker "$b" "$name"; then
		L_ERR="$b did not start"
		return
	fi
	c0=$(proc_ticks "$BPID")
	w0=$(proc_wbytes "$BPID")
	L_OUT=$TMP/$name.json
	if run_load "$name" -n "$n" "$@"; then
		L_OK=1
		[ "$b" = mqlite ] && L_ROWS=$(db_rows "$BDB")
	else
		L_ERR="load failed: $(jget error "$L_OUT")"
	fi
	L_CPU=$(per_msg cpu "$c0:$(proc_ticks "$BPID")" "$n")
	L_WB=$(per_msg bytes "$w0:$(proc_wbytes "$BPID")" "$n")
	stop_broker "$b" || L_ERR="${L_ERR:-$b did not stop cleanly}"
	if [ "$b" = mqlite ]; then
		L_STOP=$(db_rows "$BDB")
		L_DBROW=$(db_bytes_per_row "$BDB" "$L_STOP")
	fi
	[ -f "$SYNC_COUNT" ] && L_SYNC=$(cat "$SYNC_COUNT")
	SYNC_COUNT=/dev/null
}

# QoS 1 ingest, no subscriber; TAG names the run ("" or "slow"), LABEL
# is added to its title.
cmp_qos1() {
	tag=$1
	label=$2
	echo "== QoS 1 ingest$label: $QOS1_N messages, window $WINDOW," \
	    "no subscriber"
	load_on mosquitto "mosq-qos1$tag" "$QOS1_N" -q 1
	m_ok=$L_OK m_err=$L_ERR m_out=$L_OUT m_cpu=$L_CPU m_wb=$L_WB
	m_sync=$L_SYNC
	load_on mqlite "mql-qos1$tag" "$QOS1_N" -q 1
	why=
	[ "$m_ok" = 1 ] || why="mosquitto: $m_err"
	[ "$L_OK" = 1 ] || why="${why:-mqlite: $L_ERR}"
	[ -n "$why" ] || why=$(loss "mqlite at the last PUBACK" "$L_ROWS" \
	    "$QOS1_N")
	[ -n "$why" ] || why=$(loss "mqlite after the stop" "$L_STOP" \
	    "$QOS1_N")
	cmp_head "QoS 1 ingest, no subscriber$label" mosquitto
	cmp_row "msgs/s PUBACKed (mqlite: committed)" \
	    "$(jget msgs_per_s "$m_out")" "$(jget msgs_per_s "$L_OUT")" "$why"
	cmp_row "p50 publish->PUBACK us" "$(jget p50_us "$m_out")" \
	    "$(jget p50_us "$L_OUT")" "$why"
	cmp_row "p99 publish->PUBACK us" "$(jget p99_us "$m_out")" \
	    "$(jget p99_us "$L_OUT")" "$why"
	cmp_row "CPU us per message" "$m_cpu" "$L_CPU" "$why"
	cmp_row "bytes written to disk per message" "$m_wb" "$L_WB" "$why"
	[ -n "$tag" ] && cmp_row "fsync/fdatasync calls (shim count)" \
	    "$m_sync" "$L_SYNC"
	[ -z "$tag" ] && cmp_row "database bytes per row (mqlite)" - \
	    "$L_DBROW"
	[ -n "$tag" ] && Q1_SLOW=$(jget msgs_per_s "$L_OUT")
	[ -z "$tag" ] && Q1_FAST=$(jget msgs_per_s "$L_OUT")
}

# v5_load BROKER VER RUN: one QoS 1 load in MQTT version VER (3.1.1 or 5)
# on a fresh BROKER; keeps its msgs/s in V5_<broker>_<ver>_r<RUN>, the best
# msgs/s (with that run's latencies) and the lowest CPU per message in
# V5_<broker>_<ver>_*, or the first refusal in V5_<broker>_<ver>_why.
v5_load() {
	k=$(echo "$1_$2" | tr -d .)
	load_on "$1" "v5-$1-$2-$3" "$QOS1_N" -q 1 -V "$2"
	why=
	[ "$L_OK" = 1 ] || why="$1: $L_ERR"
	if [ -z "$why" ] && [ "$1" = mqlite ]; then
		why=$(loss "mqlite at the last PUBACK" "$L_ROWS" "$QOS1_N")
		[ -n "$why" ] || why=$(loss "mqlite after the stop" \
		    "$L_STOP" "$QOS1_N")
	fi
	rate=$(jget msgs_per_s "$L_OUT")
	[ "$2" = 5 ] && lbl=5.0 || lbl=$2
	echo "   $1 MQTT $lbl, run $3: ${rate:--} msgs/s${why:+ ($why)}"
	if [ -n "$why" ]; then
		eval "[ -n \"\$V5_${k}_why\" ] || V5_${k}_why=\$why"
		return
	fi
	eval "V5_${k}_r$3=\$rate"
	eval "prev=\$V5_${k}_rate"
	if [ "$(better "$prev" "$rate")" = "$rate" ]; then
		eval "V5_${k}_rate=\$rate"
		eval "V5_${k}_p50=\$(jget p50_us \"\$L_OUT\")"
		eval "V5_${k}_p99=\$(jget p99_us \"\$L_OUT\")"
	fi
	eval "V5_${k}_cpu=\$(lower \"\$V5_${k}_cpu\" \"\$L_CPU\")"
}

# v5_ratios BROKER: the ratio 5.0 / 3.1.1 of each round BROKER measured
# both in, one a line.
v5_ratios() {
	run=1
	while [ "$run" -le "$V5_RUNS" ]; do
		eval "ratio \"\${V5_$1_5_r$run:--}\" \"\${V5_$1_311_r$run:--}\""
		run=$((run + 1))
	done | grep -v '^-$'
}

# QoS 1 ingest in MQTT 5.0 next to 3.1.1, on both brokers: BENCH_V5_RUNS
# rounds, each running 3.1.1 and 5.0 back to back (the order swapped every
# round, so a drift of the host's load touches both alike); best msgs/s
# and lowest CPU per message of each, and the ratio 5.0 / 3.1.1 of each
# round, whose median is the figure.
cmp_qos1v5() {
	echo "== QoS 1 ingest, MQTT 3.1.1 and 5.0: $QOS1_N messages, window" \
	    "$WINDOW, no subscriber, $V5_RUNS rounds"
	for k in mosquitto_311 mosquitto_5 mqlite_311 mqlite_5; do
		eval "V5_${k}_rate=- V5_${k}_p50=- V5_${k}_p99=-" \
		    "V5_${k}_cpu=- V5_${k}_why="
		run=1
		while [ "$run" -le "$V5_RUNS" ]; do
			eval "V5_${k}_r$run=-"
			run=$((run + 1))
		done
	done
	run=1
	while [ "$run" -le "$V5_RUNS" ]; do
		for b in mosquitto mqlite; do
			if [ $((run % 2)) = 1 ]; then
				v5_load "$b" 3.1.1 "$run"
				v5_load "$b" 5 "$run"
			else
				v5_load "$b" 5 "$run"
				v5_load "$b" 3.1.1 "$run"
			fi
		done
		run=$((run + 1))
	done
	printf '\n%-44s %11s %11s %8s\n' "QoS 1 ingest, MQTT 5.0 vs 3.1.1 (3)" \
	    3.1.1 5.0 ratio >> "$TMP/cmp.rows"
	for b in mosquitto mqlite; do
		eval "why=\${V5_${b}_311_why:-\$V5_${b}_5_why}"
		eval "r311=\$V5_${b}_311_rate r5=\$V5_${b}_5_rate"
		cmp_row "$b msgs/s PUBACKed, best of $V5_RUNS" "$r311" "$r5" \
		    "$why"
		eval "cmp_row \"$b p50 publish->PUBACK us\"" \
		    "\$V5_${b}_311_p50 \$V5_${b}_5_p50 \"\$why\""
		eval "cmp_row \"$b p99 publish->PUBACK us\"" \
		    "\$V5_${b}_311_p99 \$V5_${b}_5_p99 \"\$why\""
		eval "cmp_row \"$b CPU us per message, lowest\"" \
		    "\$V5_${b}_311_cpu \$V5_${b}_5_cpu \"\$why\""
		r=$(v5_ratios "$b" | tr '\n' ' ')
		m=$(v5_ratios "$b" | median)
		[ -n "$why" ] && m=-
		eval "V5_${b}_median=\$m"
		printf '%-44s %20s %8s\n' "$b ratio, median of the rounds" \
		    "(${r% })" "$m" >> "$TMP/cmp.rows"
	done
	V5_RATIO=$V5_mqlite_median
	V5_MOSQ_RATIO=$V5_mosquitto_median
	V5_CPU_RATIO=$(ratio "$V5_mqlite_5_cpu" "$V5_mqlite_311_cpu")
}

# QoS 1 with a QoS 1 subscriber on '#' on both sides.
cmp_qos1sub() {
	echo "== QoS 1 with a QoS 1 '#' subscriber: $QOS1_N messages"
	MQ_EXTRA=', "limits": { "max_queued": 10000000 }'
	load_on mosquitto mosq-qos1sub "$QOS1_N" -q 1 -S -Q 1 -F '#' -I 10
	m_ok=$L_OK m_err=$L_ERR m_out=$L_OUT
	load_on mqlite mql-qos1sub "$QOS1_N" -q 1 -S -Q 1 -F '#' -I 10
	MQ_EXTRA=
	why=
	[ "$m_ok" = 1 ] || why="mosquitto: $m_err"
	[ "$L_OK" = 1 ] || why="${why:-mqlite: $L_ERR}"
	[ -n "$why" ] || why=$(loss "mosquitto's subscriber" \
	    "$(jget sub_received "$m_out")" "$QOS1_N")
	[ -n "$why" ] || why=$(loss "mqlite's subscriber" \
	    "$(jget sub_received "$L_OUT")" "$QOS1_N")
	[ -n "$why" ] || why=$(loss "mqlite at the last PUBACK" "$L_ROWS" \
	    "$QOS1_N")
	cmp_head "QoS 1, QoS 1 subscriber on #" mosquitto
	cmp_row "msgs/s received by the subscriber" \
	    "$(jget sub_msgs_per_s "$m_out")" \
	    "$(jget sub_msgs_per_s "$L_OUT")" "$why"
	cmp_row "msgs/s PUBACKed to the publishers" \
	    "$(jget msgs_per_s "$m_out")" "$(jget msgs_per_s "$L_OUT")" "$why"
	cmp_row "messages received by the subscriber" \
	    "$(jget sub_received "$m_out")" "$(jget sub_received "$L_OUT")"
}

# QoS 0: mqlite rows committed/s, polled until max(id) reaches the count.
mqlite_qos0() {
	Q0_RATE=- Q0_ERR=
	if ! start_broker mqlite mql-qos0; then
		Q0_ERR="mqlite did not start"
		return
	fi
	poll_load "$BDB" messages "$QOS0_N" : mql-qos0 -q 0 -n "$QOS0_N"
	if [ "$PL_RC" -ne 0 ]; then
		Q0_ERR="load failed: $(jget error "$TMP/mql-qos0.json")"
	elif [ -z "$PL_END" ]; then
		Q0_ERR="$PL_ROWS of $QOS0_N rows, no progress for 15 s"
	else
		Q0_RATE=$(per_s "$QOS0_N" \
		    $((PL_END - $(jget start_ms "$TMP/mql-qos0.json"))))
	fi
	stop_broker mqlite
	n=$(db_rows "$BDB")
	[ -n "$Q0_ERR" ] || Q0_ERR=$(loss "mqlite after the stop" "$n" \
	    "$QOS0_N")
}

cmp_qos0() {
	echo "== QoS 0: $QOS0_N messages; Mosquitto without, then with a" \
	    "QoS 0 subscriber"
	load_on mosquitto mosq-qos0 "$QOS0_N" -q 0
	m_ok=$L_OK m_err=$L_ERR m_out=$L_OUT
	load_on mosquitto mosq-qos0sub "$QOS0_N" -q 0 -S -I 10
	s_ok=$L_OK s_err=$L_ERR s_out=$L_OUT
	mqlite_qos0
	cmp_head "QoS 0, mqlite rows committed/s" mosquitto
	why=
	[ "$m_ok" = 1 ] || why="mosquitto: $m_err"
	[ -n "$why" ] || why=$Q0_ERR
	cmp_row "vs Mosquitto ingest, no subscriber" \
	    "$(drain_rate "$m_out")" "$Q0_RATE" "$why"
	why=
	[ "$s_ok" = 1 ] || why="mosquitto: $s_err"
	[ -n "$why" ] || why=$(loss "mosquitto's subscriber" \
	    "$(jget sub_received "$s_out")" "$QOS0_N")
	[ -n "$why" ] || why=$Q0_ERR
	cmp_row "vs Mosquitto publish->subscribe" \
	    "$(jget sub_msgs_per_s "$s_out")" "$Q0_RATE" "$why"
}

# The typed-rows rule, as in the rules part.
rows_rule() {
	gen_rules "$TMP/rows-rule.json" 1
}

# pipeline_run NAME N: Mosquitto plus contrib/bench/pipeline, N JSON
# messages at QoS 1. Sets P_RATE, P_ROWS, P_CPU, P_WB, P_DBROW, P_SYNC,
# P_ERR.
pipeline_run() {
	P_RATE=- P_ROWS=- P_CPU=- P_WB=- P_DBROW=- P_SYNC=- P_ERR=
	SYNC_COUNT=$TMP/$1.msyncs
	if ! start_broker mosquitto "$1"; then
		P_ERR="mosquitto did not start"
		return
	fi
	pdb=$TMP/$1.db
	ready=$TMP/$1.ready
	SYNC_COUNT=$TMP/$1.syncs
	with_preload "$PIPELINE" -p "$BPORT" -d "$pdb" -n "$2" \
	    -T $((TIMEOUT * 2)) -R "$ready" > "$TMP/$1.pipe" \
	    2> "$TMP/$1.pipe.err" &
	ppid=$!
	PIDS="$PIDS $ppid"
	i=0
	while [ ! -f "$ready" ] && [ $i -lt 100 ] &&
	    kill -0 "$ppid" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	c0=$(proc_ticks "$BPID")
	w0=$(proc_wbytes "$BPID")
	if [ ! -f "$ready" ]; then
		P_ERR="pipeline not subscribed: $(cat "$TMP/$1.pipe.err")"
	elif ! run_load "$1" -q 1 -n "$2" -t site/s1/dev -x telemetry \
	    -P "$JSON_PAYLOAD"; then
		P_ERR="load failed: $(jget error "$TMP/$1.json")"
	fi
	# The pipeline exits by itself once it committed every row.
	i=0
	while kill -0 "$ppid" 2>/dev/null && [ $i -lt $((TIMEOUT * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -TERM "$ppid" 2>/dev/null
	wait "$ppid"
	out=$TMP/$1.pipe
	# Mosquitto's share plus the pipeline's own (it reports at exit).
	P_CPU=$(awk -v hz="$(getconf CLK_TCK)" -v a="$c0" \
	    -v b="$(proc_ticks "$BPID")" -v p="$(jget cpu_us "$out")" \
	    -v n="$2" 'BEGIN { if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/ ||
	    p !~ /^[0-9]+$/) print "-"
	    else printf "%.1f\n", ((b - a) * 1e6 / hz + p) / n }')
	P_WB=$(awk -v a="$w0" -v b="$(proc_wbytes "$BPID")" \
	    -v p="$(jget write_bytes "$out")" -v n="$2" 'BEGIN {
	    if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/ || p !~ /^[0-9]+$/)
		print "-"; else printf "%.0f\n", (b - a + p) / n }')
	P_SYNC=$(cat "$TMP/$1.syncs" 2>/dev/null)
	stop_broker mosquitto
	P_ROWS=$(db_q "$pdb" 'select count(*) from readings')
	[ -n "$P_ERR" ] || P_ERR=$(loss "the pipeline's table" "$P_ROWS" "$2")
	[ -n "$P_ERR" ] || [ "$(jget status "$out")" = ok ] ||
	    P_ERR="pipeline: $(jget error "$out") $(cat "$out.err")"
	if [ -z "$P_ERR" ]; then
		P_RATE=$(per_s "$2" $(($(jget last_ms "$out") - \
		    $(jget start_ms "$TMP/$1.json"))))
	fi
	P_DBROW=$(db_bytes_per_row "$pdb" "$P_ROWS")
}

# Typed rows from JSON: mqlite's rule next to the pipeline; TAG and LABEL
# as for cmp_qos1.
cmp_rows() {
	tag=$1
	label=$2
	echo "== typed rows from JSON$label: $ROWS_N QoS 1 messages;" \
	    "Mosquitto + pipeline, then mqlite with one rule"
	pipeline_run "pipe$tag" "$ROWS_N"
	rows_rule
	MQ_RULES=$TMP/rows-rule.json
	load_on mqlite "mql-rows$tag" "$ROWS_N" -q 1 -t site/s1/dev \
	    -x telemetry -P "$JSON_PAYLOAD"
	MQ_RULES=
	n=$(db_q "$BDB" 'select count(*) from readings')
	why=$P_ERR
	[ "$L_OK" = 1 ] || why="${why:-mqlite: $L_ERR}"
	[ -n "$why" ] || why=$(loss "mqlite's readings" "$n" "$ROWS_N")
	cmp_head "typed rows from JSON, durable$label" pipeline
	cmp_row "rows committed/s" "$P_RATE" "$(jget msgs_per_s "$L_OUT")" \
	    "$why"
	cmp_row "CPU us per row (pipeline: + Mosquitto)" "$P_CPU" "$L_CPU" \
	    "$why"
	cmp_row "bytes written to disk per row" "$P_WB" "$L_WB" "$why"
	[ -n "$tag" ] && cmp_row "fsync/fdatasync calls (shim count)" \
	    "$P_SYNC" "$L_SYNC"
	[ -z "$tag" ] && cmp_row "database bytes per row (1)" "$P_DBROW" \
	    "$(db_bytes_per_row "$BDB" "$n")"
}

# Durable throughput on slow flash: 8 publishers, window 100, the shim.
cmp_ceiling() {
	echo "== slow flash: $SLOW_N QoS 1 messages, 8 publishers x window" \
	    "100, +$SLOW_US us per fsync"
	CONNS_SAVE=$CONNS WINDOW_SAVE=$WINDOW
	CONNS=8 WINDOW=100
	load_on mqlite mql-ceiling "$SLOW_N" -q 1
	CONNS=$CONNS_SAVE WINDOW=$WINDOW_SAVE
	why=
	[ "$L_OK" = 1 ] || why="mqlite: $L_ERR"
	[ -n "$why" ] || why=$(loss "mqlite at the last PUBACK" "$L_ROWS" \
	    "$SLOW_N")
	nominal=$(awk -v us="$SLOW_US" 'BEGIN {
	    if (us + 0 > 0) printf "%.0f\n", 800 * 1e6 / us; else print "-" }')
	measured=$(awk -v us="$FSYNC_SLOW_US" 'BEGIN {
	    if (us + 0 > 0) printf "%.0f\n", 800 * 1e6 / us; else print "-" }')
	cmp_head "slow flash, 8 x window 100 (2)" ceiling
	cmp_row "msgs/s vs ceiling at $SLOW_US us" "$nominal" \
	    "$(jget msgs_per_s "$L_OUT")" "$why"
	cmp_row "msgs/s vs ceiling at measured fsync" "$measured" \
	    "$(jget msgs_per_s "$L_OUT")" "$why"
	cmp_row "messages per fsync" - "$(awk -v n="$SLOW_N" \
	    -v s="$L_SYNC" 'BEGIN { if (s + 0 > 0) printf "%.1f\n", n / s;
	    else print "-" }')"
	cmp_row "p99 publish->PUBACK us" - "$(jget p99_us "$L_OUT")"
}

# cmp_slow [ceiling]: the slow-flash rows, or only the ceiling row.
cmp_slow() {
	PRELOAD=$SLOWSYNC
	FSYNC_SLOW_US=$(with_preload "$FSYNCLAT" "$TMP" 50 |
	    awk '{ print $3 }')
	echo "== fsync under the shim: ${FSYNC_SLOW_US:--} us (p50)"
	if [ "${1:-}" != ceiling ]; then
		cmp_qos1 -slow ", fsync +${SLOW_US}us"
		cmp_rows -slow ", fsync +${SLOW_US}us"
	fi
	cmp_ceiling
	PRELOAD=
}

# idle_on BROKER: sets I_PER (kB per connection) or I_ERR.
idle_on() {
	I_PER=- I_ERR=
	MQ_EXTRA=', "limits": { "max_connections": 1000000 }'
	start_broker "$1" "idle-$1" || { I_ERR="$1 did not start";
	    MQ_EXTRA=; return; }
	MQ_EXTRA=
	sleep 1
	r0=$(proc_kb "$BPID" VmRSS)
	rf=$TMP/idle-$1.ready
	"$MQBENCH" -j -h 127.0.0.1 -p "$BPORT" -c "$IDLE_CONNS" -n 0 \
	    -H "$TIMEOUT" -R "$rf" -T $((TIMEOUT * 2)) \
	    > "$TMP/idle-$1.json" 2> "$TMP/idle-$1.err" &
	lp=$!
	echo "$lp" >> "$TMP/load.pids"
	i=0
	while [ ! -f "$rf" ] && kill -0 "$lp" 2>/dev/null &&
	    [ $i -lt $((TIMEOUT * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ -f "$rf" ]; then
		sleep 1
		r1=$(proc_kb "$BPID" VmRSS)
		I_PER=$(awk -v a="$r0" -v b="$r1" -v n="$IDLE_CONNS" 'BEGIN {
		    printf "%.2f\n", (b - a) / n }')
		echo "   $1: VmRSS $r0 kB idle, $r1 kB with $IDLE_CONNS" \
		    "connections"
		rm -f "$rf"
	else
		I_ERR="$1: the connections did not all come up:"
		I_ERR="$I_ERR $(cat "$TMP/idle-$1.err")"
	fi
	wait "$lp"
	[ -n "$I_ERR" ] || [ "$(jget status "$TMP/idle-$1.json")" = ok ] ||
	    I_ERR="$1: $(jget error "$TMP/idle-$1.json")"
	stop_broker "$1"
}

cmp_idle() {
	echo "== $IDLE_CONNS idle connections"
	ulimit -n "$(ulimit -Hn)" 2>/dev/null
	idle_on mosquitto
	m_per=$I_PER m_err=$I_ERR
	idle_on mqlite
	cmp_head "$IDLE_CONNS idle connections" mosquitto
	cmp_row "resident kB per connection" "$m_per" "$I_PER" \
	    "$m_err$I_ERR"
}

bench_compare() {
	[ -x "$MOSQUITTO" ] || { note "no mosquitto at $MOSQUITTO" \
	    "(apt-get install mosquitto)"; FAILED=1; return; }
	[ -x "$MQLITE" ] || { note "no daemon at $MQLITE"; FAILED=1; return; }
	: > "$TMP/cmp.rows"
	for c in $COMPARE; do
		case $c in
		qos1) cmp_qos1 "" "" ;;
		qos1v5) cmp_qos1v5 ;;
		qos1sub) cmp_qos1sub ;;
		qos0) cmp_qos0 ;;
		rows) cmp_rows "" "" ;;
		slow) cmp_slow ;;
		ceiling) cmp_slow ceiling ;;
		idle) cmp_idle ;;
		*) note "unknown comparison '$c' in BENCH_COMPARE"; FAILED=1 ;;
		esac
	done
}

report_compare() {
	cat "$TMP/cmp.rows"
	echo
	echo "Ratios are mqlite / reference. Each row ran both sides in this" \
	    "run; a REFUSED row lost"
	echo "messages on one side and has no ratio. QoS 0: $QOS0_N" \
	    "messages; QoS 1: $QOS1_N, window"
	echo "$WINDOW per connection, $CONNS connections, payload $PAYLOAD" \
	    "bytes; typed rows: $ROWS_N"
	echo "JSON messages of ${#JSON_PAYLOAD} bytes. CPU and bytes written" \
	    "are the broker's (and the pipeline's)"
	echo "over the load; Mosquitto keeps nothing on disk (persistence" \
	    "false), so it writes nothing."
	echo "(1) mqlite's file also holds every message in 'messages'; the" \
	    "pipeline's only the typed rows."
	echo "(2) ceiling = 100 x 8 / fsync time: one group commit per full" \
	    "window of every publisher."
	case " $COMPARE " in
	*" qos1v5 "*)
		echo "(3) ratio = 5.0 / 3.1.1, the same load in both versions" \
		    "(5.0: no properties, empty"
		echo "    property blocks), in each round (the two back to" \
		    "back); the median of the rounds"
		echo "    is the figure. Target, mqlite 5.0 >= 0.9 x 3.1.1:" \
		    "$(verdict "$V5_RATIO" 0.9) ($V5_RATIO; Mosquitto" \
		    "$V5_MOSQ_RATIO)."
		echo "    CPU per message moves less than msgs/s on a busy" \
		    "host: mqlite 5.0 / 3.1.1 $V5_CPU_RATIO."
		;;
	esac
}
