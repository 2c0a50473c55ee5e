#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The Debian package, end to end: builds it from the source tree with
# dpkg-buildpackage, installs it with apt into a fresh Debian 12 chroot
# (debootstrap), checks the unit with systemd-analyze (verify, and the
# security exposure at most 2.0; systemd does not run as PID 1 here), runs
# the daemon as the user mqlite with the shipped config and umask, publishes
# with QoS 1, reads the row back with sqlite3 as a member of the group
# mqlite (and is refused as a user outside it), runs it once as root by
# hand, upgrades to a higher version and reinstalls (rows, local config
# edits, user and folder mode kept), then removes and purges (database
# kept). The daemon runs in a network namespace of its own, so the shipped
# port 1883 never meets another process on this machine.
#
# Called by 'make check' (TESTS) with top_srcdir and top_builddir set. Needs
# root, debootstrap, dpkg-buildpackage, debhelper, unshare, systemd-analyze,
# mosquitto_pub and a Debian mirror. The chroot base (about 200 MB, several
# minutes to make) is kept as a tarball in the build folder,
# tests/pkg-work/bookworm-base.tar, and reused; delete it to start afresh.
#
# Environment: DEB_MIRROR (default http://deb.debian.org/debian);
# MQLITE_PKG_DEB=FILE tests that .deb instead of building one.
set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
mirror=${DEB_MIRROR:-http://deb.debian.org/debian}
work=$top_builddir/tests/pkg-work
root=$work/root
self=$top_srcdir/tests/pkg/deb.sh
export top_srcdir top_builddir

fail()
{
	echo "pkg: FAIL: $*"
	exit 1
}

say()
{
	echo "pkg: $*"
}

# In the chroot, as root or with chroot's --userspec and --groups.
inroot()
{
	chroot "$@"
}

# ---------------------------------------------------------------------------
# The part that runs the daemon: inside 'unshare --net', loopback only.

wait_port()
{
	i=0
	while [ $i -lt 100 ]; do
		if mosquitto_pub -h 127.0.0.1 -p 1883 -t probe/ready -n \
		    -q 0 2>/dev/null; then
			return 0
		fi
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# start USERSPEC: the shipped config, the unit's umask. Sets $daemon.
start_daemon()
{
	(umask 0027 && exec chroot ${1:+--userspec=$1} "$root" \
	    /usr/sbin/mqlite -c /etc/mqlite/mqlite.json) \
	    >>"$work/daemon.log" 2>&1 &
	daemon=$!
	wait_port "$daemon" || fail "mqlite not accepting on 1883" \
	    "(see $work/daemon.log)"
}

stop_daemon()
{
	kill -TERM "$daemon"
	i=0
	while kill -0 "$daemon" 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$daemon" 2>/dev/null; then
		kill -KILL "$daemon"
		fail "mqlite did not stop within 30 s of SIGTERM"
	fi
	wait "$daemon" || fail "mqlite exited with status $? after SIGTERM"
	daemon=""
}

# read_as USER SQL: sqlite3 in the chroot as USER with its groups.
read_as()
{
	groups=$(inroot "$root" id -Gn "$1" | tr ' ' ,)
	inroot --userspec="$1:$1" --groups="$groups" "$root" \
	    sqlite3 /var/lib/mqlite/telemetry.db "$2"
}

publish()
{
	mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t "$1" -m "$2" ||
	    fail "publish to $1"
}

expect_row()
{
	got=$(read_as reader "SELECT payload FROM messages WHERE topic = '$1'
	    ORDER BY id DESC LIMIT 1" 2>&1) ||
	    fail "group member cannot read the database: $got"
	[ "$got" = "$2" ] || fail "row for $1 is '$got', not '$2'"
}

run_phase()
{
	daemon=""
	trap '[ -z "$daemon" ] || kill -KILL "$daemon" 2>/dev/null || :' EXIT
	ip link set lo up

	say "daemon as mqlite with /etc/mqlite/mqlite.json"
	start_daemon mqlite:mqlite
	publish site/pkg/temp '{"t":21.5}'
	expect_row site/pkg/temp '{"t":21.5}'
	for f in telemetry.db telemetry.db-wal telemetry.db-shm; do
		[ -e "$root/var/lib/mqlite/$f" ] || continue
		m=$(inroot "$root" stat -c '%a %U %G' "/var/lib/mqlite/$f")
		case "$m" in
		"640 mqlite mqlite") ;;
		*) fail "$f is '$m', not '640 mqlite mqlite'" ;;
		esac
	done
	if out=$(read_as outsider "SELECT count(*) FROM messages" 2>&1); then
		fail "a user outside the group mqlite read the database: $out"
	fi
	stop_daemon
	say "stopped; the group still reads it"
	expect_row site/pkg/temp '{"t":21.5}'

	say "started by hand as root with the same config"
	start_daemon ""
	publish site/pkg/root 'by-root'
	stop_daemon
	expect_row site/pkg/root 'by-root'
	say "as mqlite again after the root run"
	start_daemon mqlite:mqlite
	publish site/pkg/after 'after-root'
	expect_row site/pkg/after 'after-root'
	stop_daemon
}

# ---------------------------------------------------------------------------

setup_root()
{
	if [ ! -s "$work/bookworm-base.tar" ]; then
		say "debootstrap bookworm (once; kept in $work)"
		rm -rf "$work/base"
		timeout 1800 debootstrap --variant=minbase bookworm \
		    "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		    fail "debootstrap (see $work/debootstrap.log)"
		tar -C "$work/base" -cf "$work/bookworm-base.tar.tmp" .
		mv "$work/bookworm-base.tar.tmp" "$work/bookworm-base.tar"
		rm -rf "$work/base"
	fi
	rm -rf "$root"
	mkdir -p "$root"
	tar -C "$root" -xf "$work/bookworm-base.tar"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	mount -t proc proc "$root/proc"
	# No daemon may start from a maintainer script in the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
}

dpkg_build()
{
	rm -rf "$work/src"
	mkdir -p "$work/src/mqlite"
	if git -C "$top_srcdir" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$top_srcdir" && git ls-files -co --exclude-standard |
		    tar -cf - -T -) | tar -C "$work/src/mqlite" -xf -
	else
		(cd "$top_srcdir" && tar -cf - --exclude='./build*' .) |
		    tar -C "$work/src/mqlite" -xf -
	fi
	(cd "$work/src/mqlite" && timeout 1800 nice dpkg-buildpackage \
	    -us -uc -b) >"$work/build.log" 2>&1 ||
	    fail "dpkg-buildpackage (see $work/build.log)"
	deb=$(ls "$work"/src/mqlite_*.deb)
}

# Sets $deb (MQLITE_PKG_DEB: an already built one), $version and $updeb.
build_deb()
{
	if [ -n "${MQLITE_PKG_DEB:-}" ]; then
		deb=$MQLITE_PKG_DEB
	else
		say "dpkg-buildpackage -us -uc -b"
		dpkg_build
	fi
	version=$(dpkg-deb -f "$deb" Version)
	# The same package at a higher version, to test an upgrade.
	rm -rf "$work/up" && mkdir -p "$work/up"
	dpkg-deb -R "$deb" "$work/up/tree"
	sed -i "s/^Version: .*/Version: $version+1/" \
	    "$work/up/tree/DEBIAN/control"
	dpkg-deb -b "$work/up/tree" "$work/up/mqlite_up.deb" >/dev/null
	updeb=$work/up/mqlite_up.deb
}

apt_in_root()
{
	inroot "$root" env DEBIAN_FRONTEND=noninteractive timeout 900 \
	    apt-get -o Dpkg::Options::=--force-confold -y -q \
	    --no-install-recommends "$@" >>"$work/apt.log" 2>&1 ||
	    fail "apt-get $* (see $work/apt.log)"
}

main_phase()
{
	mkdir -p "$work"
	: >"$work/daemon.log"
	: >"$work/apt.log"
	build_deb
	setup_root

	say "apt-get install ./$(basename "$deb") into a fresh bookworm"
	cp "$deb" "$updeb" "$root/tmp/"
	apt_in_root update
	apt_in_root install "/tmp/$(basename "$deb")" sqlite3 systemd
	inroot "$root" getent passwd mqlite >/dev/null || fail "no user mqlite"
	inroot "$root" getent group mqlite >/dev/null || fail "no group mqlite"
	m=$(inroot "$root" stat -c '%a %U %G' /var/lib/mqlite)
	[ "$m" = "2750 mqlite mqlite" ] ||
	    fail "/var/lib/mqlite is '$m', not '2750 mqlite mqlite'"
	m=$(stat -c '%a' "$root/etc/default/mqlite")
	[ "$m" = 600 ] || fail "/etc/default/mqlite is mode $m, not 600"
	for p in /usr/sbin/mqlite /usr/share/man/man8/mqlite.8.gz \
	    /usr/share/man/man5/mqlite.json.5.gz \
	    /usr/share/man/man5/mqlite-rules.5.gz \
	    /usr/share/man/man1/mqlite-passwd.1.gz \
	    /etc/mqlite/site.json.example; do
		[ -e "$root$p" ] || fail "$p not installed"
	done
	# dlopen'ed on first use, so invisible to shlibs: Depends brings them.
	for so in libcurl.so.4 libssl.so.3 libcrypto.so.3; do
		inroot "$root" ldconfig -p | grep -q "$so " ||
		    fail "$so not installed by the package's Depends"
	done
	inroot "$root" /usr/sbin/mqlite --check -c /etc/mqlite/mqlite.json \
	    >/dev/null || fail "the shipped config does not pass --check"
	inroot "$root" sh -c 'adduser --disabled-password --gecos "" \
	    --quiet reader && adduser --quiet reader mqlite &&
	    adduser --disabled-password --gecos "" --quiet outsider' ||
	    fail "test users"
	[ -L "$root/etc/systemd/system/multi-user.target.wants/mqlite.service" ] ||
	    fail "mqlite.service not enabled by the package"

	say "systemd-analyze verify and security"
	systemd-analyze verify --man=no --root="$root" mqlite.service \
	    >"$work/verify.log" 2>&1 ||
	    fail "systemd-analyze verify: $(cat "$work/verify.log")"
	systemd-analyze security --offline=true --root="$root" \
	    mqlite.service >"$work/security.log" 2>&1 || true
	exposure=$(sed -n 's/.*Overall exposure level for mqlite.service: \([0-9.]*\).*/\1/p' \
	    "$work/security.log")
	[ -n "$exposure" ] || fail "no exposure level in $work/security.log"
	say "exposure level $exposure"
	awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' ||
	    fail "exposure $exposure > 2.0"

	unshare --net sh "$self" run-phase || exit 1

	say "upgrade to $version+1, local config edit kept"
	sed -i 's/"level": "info"/"level": "warn"/' \
	    "$root/etc/mqlite/mqlite.json"
	apt_in_root install "/tmp/$(basename "$updeb")"
	[ "$(inroot "$root" dpkg-query -W -f '${Version}' mqlite)" = \
	    "$version+1" ] || fail "not upgraded"
	grep -q '"level": "warn"' "$root/etc/mqlite/mqlite.json" ||
	    fail "the upgrade replaced a locally edited conffile"
	expect_row site/pkg/after 'after-root'
	say "reinstall the same version"
	apt_in_root install --reinstall "/tmp/$(basename "$updeb")"
	expect_row site/pkg/after 'after-root'
	m=$(inroot "$root" stat -c '%a %U %G' /var/lib/mqlite)
	[ "$m" = "2750 mqlite mqlite" ] ||
	    fail "/var/lib/mqlite is '$m' after the upgrade"

	say "remove, then purge: the database stays"
	apt_in_root remove mqlite
	[ ! -e "$root/usr/sbin/mqlite" ] || fail "daemon left after remove"
	[ -e "$root/etc/mqlite/mqlite.json" ] || fail "conffile gone on remove"
	expect_row site/pkg/after 'after-root'
	apt_in_root purge mqlite
	[ ! -e "$root/etc/mqlite/mqlite.json" ] ||
	    fail "conffile left after purge"
	[ -s "$root/var/lib/mqlite/telemetry.db" ] ||
	    fail "purge deleted the database"
	[ "$(sqlite3 -readonly "$root/var/lib/mqlite/telemetry.db" \
	    "SELECT count(*) FROM messages WHERE topic LIKE 'site/pkg/%'")" = 3 ] ||
	    fail "rows lost"
	umount "$root/proc"
	rm -rf "$root"
	say "1 passed, 0 failed"
}

case "${1:-}" in
run-phase)
	run_phase
	;;
main)
	main_phase
	;;
"")
	[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot)"
	missing=""
	for t in debootstrap dpkg-buildpackage dh unshare chroot \
	    systemd-analyze mosquitto_pub sqlite3 ip; do
		command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
	done
	[ -z "$missing" ] || fail "missing:$missing (apt-get install" \
	    "debootstrap dpkg-dev debhelper systemd mosquitto-clients" \
	    "sqlite3 iproute2)"
	# A mount namespace of its own: /proc in the chroot goes with it.
	exec unshare --mount --propagation private sh "$self" main
	;;
*)
	fail "usage: deb.sh"
	;;
esac
