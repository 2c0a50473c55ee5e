# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 The mqlite authors.
#
# What the parts of bench.sh share beyond its own helpers (sourced by it,
# before compare.sh): the counters of a process read from /proc, and the
# flat-out QoS 0 load that is timed by polling the database until the
# last row is committed, which the rules part and the compare part both
# run. Uses bench.sh's run_load, db_q, now_ms and BPID.

# Counters of process $1: CPU ticks (utime + stime), or '-'.
proc_ticks() {
	v=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null |
	    awk '{ print $12 + $13 }')
	echo "${v:--}"
}

# Bytes process $1 caused to be written to storage, or '-'.
proc_wbytes() {
	v=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io" 2>/dev/null)
	echo "${v:--}"
}

# per_msg KIND DELTA... N: CPU ticks (KIND cpu) as microseconds, or bytes
# (KIND bytes), summed over the deltas "a:b", per message.
per_msg() {
	kind=$1
	shift
	awk -v kind="$kind" -v hz="$(getconf CLK_TCK)" -v args="$*" 'BEGIN {
	    n = split(args, a, " "); tot = 0
	    for (i = 1; i < n; i++) {
		if (split(a[i], d, ":") != 2 || d[1] !~ /^[0-9]+$/ ||
		    d[2] !~ /^[0-9]+$/) { print "-"; exit }
		tot += d[2] - d[1]
	    }
	    if (a[n] + 0 <= 0) { print "-"; exit }
	    if (kind == "cpu") printf "%.1f\n", tot * 1e6 / hz / a[n]
	    else printf "%.0f\n", tot / a[n] }'
}

# poll_load DB TABLE N HOOK NAME ARGS...: runs the load NAME ARGS...
# (run_load) against the broker $BPID in the background and polls
# max(id) of TABLE in DB (an index lookup, unlike count(*)) every 0.1 s
# until it reaches N, then runs HOOK (a command, ':' for none) at once, so
# that counters it reads end where the rows did. The poll also ends when
# the count stalls for 15 s or the broker dies. Sets PL_END (now_ms when N
# was seen, empty if never), PL_ROWS (the last count) and PL_RC (the
# load's exit status, once it ended).
poll_load() {
	pl_db=$1 pl_table=$2 pl_n=$3 pl_hook=$4
	shift 4
	run_load "$@" &
	pl_pid=$!
	PL_ROWS=0 PL_END= PL_RC=
	pl_last=0 pl_move=$(now_ms)
	while :; do
		PL_ROWS=$(db_q "$pl_db" \
		    "select coalesce(max(id), 0) from $pl_table")
		pl_t=$(now_ms)
		[ "$PL_ROWS" != "$pl_last" ] && { pl_last=$PL_ROWS;
		    pl_move=$pl_t; }
		if [ "$PL_ROWS" -ge "$pl_n" ] 2>/dev/null; then
			PL_END=$pl_t
			$pl_hook
			break
		fi
		if [ -z "$PL_RC" ] && ! kill -0 "$pl_pid" 2>/dev/null; then
			wait "$pl_pid"
			PL_RC=$?
		fi
		[ $((pl_t - pl_move)) -gt 15000 ] && break
		kill -0 "$BPID" 2>/dev/null || break
		sleep 0.1
	done
	[ -z "$PL_RC" ] && { wait "$pl_pid"; PL_RC=$?; }
}
