#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# contrib/man-section.sh PAGE.8 SECTION TEMPLATE > OUT
#
# Writes TEMPLATE with its line '.\" @SECTION@' replaced by the body of the
# '.SH SECTION' section of PAGE.8 (up to the next .SH), so that a section
# page such as mqlite.json(5) is the same text as the section of mqlite(8)
# and cannot drift from it. Fails when the section is missing or empty.
set -eu
page=$1
section=$2
template=$3
awk -v sec="$section" '
	FNR == NR {
		if ($0 == ".SH " sec) { on = 1; next }
		if (on && $0 ~ /^\.SH /) on = 0
		if (on) { body = body $0 "\n"; n++ }
		next
	}
	$0 == ".\\\" @SECTION@" {
		if (n == 0) {
			print "man-section.sh: no section " sec " in " \
			    ARGV[1] > "/dev/stderr"
			exit 1
		}
		printf "%s", body
		done = 1
		next
	}
	{ print }
	END { if (!done) exit 1 }
' "$page" "$template"
