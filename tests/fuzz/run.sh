#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# tests/fuzz/run.sh SECONDS SEEDDIR TARGET...   ('make fuzz' calls it)
#
# Runs each libFuzzer target for SECONDS from its seed corpus
# SEEDDIR/<name> plus the inputs earlier runs kept in fuzz-corpus/<name>
# (in the current directory; the seed directory is never written). A crash,
# a leak, a sanitizer report, a failed invariant or a hang (one input taking
# more than 25 s) stops that target with its input saved in
# fuzz-findings/<name>-*; the script runs the remaining targets and exits 1
# if any target had a finding.
set -u

secs=$1
seeds=$2
shift 2
status=0
mkdir -p fuzz-corpus fuzz-findings
for t in "$@"; do
	name=$(basename "$t")
	mkdir -p "fuzz-corpus/$name"
	log="fuzz-findings/$name.log"
	echo "fuzz: $name for ${secs}s"
	if "$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="fuzz-findings/$name-" \
	    "fuzz-corpus/$name" "$seeds/$name" >"$log" 2>&1; then
		grep -E '^#[0-9]+.*DONE' \
		    "$log" | tail -1
	else
		echo "fuzz: $name FAILED; input and log in fuzz-findings/"
		tail -40 "$log"
		status=1
	fi
done
exit $status
