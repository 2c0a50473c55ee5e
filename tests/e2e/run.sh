#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# End-to-end suite runner, called by 'make check' (TESTS) with top_srcdir and
# top_builddir in the environment. Runs every tests/e2e/test_*.py with
# /usr/bin/python3 -m unittest (verbose) and every tests/e2e/test_*.sh, each
# under 'timeout 300' (or the file's own "# e2e-timeout: N" line), and ends with one line 'e2e: N passed, M failed'.
# Exit status 0 only when nothing failed and something passed. These count
# as failures: a selection that matches no file, a module that runs no test
# or exits badly, and a skipped test, except, against Mosquitto, one marked
# mqlite only (mqlite_only, needs_db). Against mqlite nothing may skip.
#
# Environment:
#   E2E_TARGET=mosquitto  run the MQTT-only tests against /usr/sbin/mosquitto
#   MQLITE_BIN=PATH       daemon to test (default $top_builddir/src/mqlite)
#   E2E_ONLY=PATTERN      run only test files whose name contains PATTERN
#   E2E_KEEP=1            keep the per-test temporary directories

PY=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=$top_srcdir}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
export top_srcdir top_builddir
e2edir=$top_srcdir/tests/e2e

passed=0
failed=0
skipped=0
gaps=0

finish()
{
	echo "e2e: target ${E2E_TARGET:-mqlite}, $skipped skipped," \
	    "$gaps known gaps (expected failures)"
	if [ "$failed" -eq 0 ] && [ "$passed" -eq 0 ]; then
		echo "e2e: FAIL: no test passed"
		failed=1
	fi
	echo "e2e: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}

# Required tools: a missing one is a failure, never a skip.
missing=""
for tool in mosquitto_pub mosquitto_sub sqlite3 timeout; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -x "$PY" ] || missing="$missing $PY"
if [ -x "$PY" ] && ! "$PY" -c 'import paho.mqtt.client' 2>/dev/null; then
	missing="$missing python3-paho-mqtt(for $PY)"
fi
case "${E2E_TARGET:-mqlite}" in
mqlite|mosquitto) ;;
*)	missing="$missing E2E_TARGET=$E2E_TARGET(mqlite or mosquitto)" ;;
esac
if [ "${E2E_TARGET:-mqlite}" = mosquitto ]; then
	[ -x /usr/sbin/mosquitto ] || missing="$missing /usr/sbin/mosquitto"
else
	bin=${MQLITE_BIN:-$top_builddir/src/mqlite}
	[ -x "$bin" ] || missing="$missing $bin(daemon not built)"
fi
if [ -n "$missing" ]; then
	echo "e2e: FAIL: required tools missing:$missing" >&2
	echo "e2e: install: apt-get install mosquitto mosquitto-clients" \
	    "sqlite3 python3-paho-mqtt" >&2
	failed=1
	finish
fi

mosq=0
[ "${E2E_TARGET:-mqlite}" = mosquitto ] && mosq=1
out=$(mktemp "${TMPDIR:-/tmp}/mqlite-e2e-run.XXXXXX") || exit 99
trap 'rm -f "$out"' EXIT

files=0
for t in "$e2edir"/test_*.py "$e2edir"/test_*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t")
	case "$name" in
	*"${E2E_ONLY:-}"*) ;;
	*) continue ;;
	esac
	files=$((files + 1))
	echo "=== e2e: $name"
	start=$(date +%s)
	# A file may ask for a longer limit: "# e2e-timeout: SECONDS".
	limit=$(sed -n '1,5s/^# e2e-timeout: \([0-9][0-9]*\)$/\1/p' "$t")
	: "${limit:=300}"
	case "$name" in
	*.py)
		(cd "$e2edir" && PYTHONDONTWRITEBYTECODE=1 timeout -k 10 "$limit" \
		    "$PY" -m unittest -v "${name%.py}") >"$out" 2>&1
		rc=$?
		cat "$out"
		# unittest's summary: "Ran N tests" and "OK (skipped=S)" or
		# "FAILED (failures=F, errors=E, skipped=S, ...)".
		# A skip is fine only against Mosquitto and only for a test
		# marked mqlite only; any other skip is counted as a failure.
		counts=$(awk -v mosq="$mosq" '
			/^Ran [0-9]+ tests? in / { ran = $2 }
			/ \.\.\. skipped / {
				if (!mosq || ($0 !~ /skipped .mqlite only: / &&
				    $0 !~ /skipped .needs the mqlite database/))
					badskip++
			}
			/^(OK|FAILED)( \(|$)/ {
				s = $0
				gsub(/expected failures/, "expected_failures", s)
				gsub(/unexpected successes/, "unexpected_successes", s)
				while (match(s, /[a-z_]+=[0-9]+/)) {
					kv = substr(s, RSTART, RLENGTH)
					s = substr(s, RSTART + RLENGTH)
					split(kv, a, "=")
					c[a[1]] = a[2]
				}
				seen = 1
			}
			END {
				bad = c["failures"] + c["errors"] + \
				    c["unexpected_successes"]
				skip = c["skipped"]
				gap = c["expected_failures"]
				printf "%d %d %d %d %d %d %d\n", seen,
				    ran - bad - skip - gap, bad, skip, gap,
				    ran, badskip
			}' "$out")
		set -- $counts
		if [ "$1" -ne 1 ]; then
			echo "e2e: $name: no unittest summary (status $rc," \
			    "timed out or crashed)"
			failed=$((failed + 1))
		elif [ "$6" -eq 0 ]; then
			echo "e2e: $name: FAILED: ran no test"
			failed=$((failed + 1))
		else
			if [ "$7" -ne 0 ]; then
				echo "e2e: $name: FAILED: $7 tests skipped" \
				    "(only a test marked mqlite only may" \
				    "skip, and only against Mosquitto)"
				failed=$((failed + $7))
			fi
			passed=$((passed + $2))
			failed=$((failed + $3))
			skipped=$((skipped + $4))
			gaps=$((gaps + $5))
			if [ "$rc" -ne 0 ] && [ "$3" -eq 0 ]; then
				echo "e2e: $name: exit status $rc"
				failed=$((failed + 1))
			fi
		fi
		;;
	*.sh)
		(cd "$e2edir" && timeout -k 10 "$limit" sh "$t") 2>&1
		rc=$?
		if [ "$rc" -eq 0 ]; then
			passed=$((passed + 1))
		elif [ "$rc" -eq 77 ]; then
			echo "e2e: $name: FAILED: skipped (status 77)"
			skipped=$((skipped + 1))
			failed=$((failed + 1))
		else
			echo "e2e: $name: FAILED (status $rc)"
			failed=$((failed + 1))
		fi
		;;
	esac
	echo "=== e2e: $name done in $(( $(date +%s) - start )) s"
done

if [ "$files" -eq 0 ]; then
	echo "e2e: FAIL: no test file matches E2E_ONLY='${E2E_ONLY:-}'"
	failed=$((failed + 1))
fi
finish
