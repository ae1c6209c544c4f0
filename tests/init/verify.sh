#!/bin/sh
# Installation test (ctest label "init"): install the build into a scratch DESTDIR, check that
# every file is where it belongs, then check the installed files with systemd's own tools:
#   systemd-analyze verify --root=DESTDIR   the three units, as installed (must print nothing)
#   systemd-analyze security --offline=yes  the services' sandboxing stays at its level
#   systemd-sysusers --root=DESTDIR         creates the user from the sysusers file
#   systemd-tmpfiles --root=DESTDIR         creates the directories with their owner and mode
#
# usage: verify.sh CMAKE BUILD_DIR
# The expected absolute paths come from the environment (computed in init/CMakeLists.txt):
# MON_BINDIR MON_UNITDIR MON_SYSUSERSDIR MON_TMPFILESDIR MON_SYSCONFDIR MON_DOCDIR MON_MANDIR
set -eu

cmake=$1
build=$2
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
die() { echo "FAIL: $*" >&2; exit 1; }

for v in MON_BINDIR MON_UNITDIR MON_SYSUSERSDIR MON_TMPFILESDIR MON_SYSCONFDIR MON_DOCDIR MON_MANDIR; do
	eval "test -n \"\${$v:-}\"" || die "$v is not set (run this test through ctest)"
done
command -v systemd-analyze >/dev/null 2>&1 ||
	die "systemd-analyze not found: install the Debian package systemd (scripts/install-deps.sh)"
command -v systemd-sysusers >/dev/null 2>&1 || die "systemd-sysusers not found (package systemd)"
command -v systemd-tmpfiles >/dev/null 2>&1 || die "systemd-tmpfiles not found (package systemd)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailcanary-init.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
root=$tmp/root

# --- (a) install and check the file list -----------------------------------------------------
if ! DESTDIR=$root "$cmake" --install "$build" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log" >&2
	die "cmake --install $build failed"
fi

unit_files="mailcanary.service mailcanary-due.service mailcanary-due.timer"
for f in \
	"$MON_BINDIR/mailcanary" \
	"$MON_UNITDIR/mailcanary.service" \
	"$MON_UNITDIR/mailcanary-due.service" \
	"$MON_UNITDIR/mailcanary-due.timer" \
	"$MON_SYSUSERSDIR/mailcanary.conf" \
	"$MON_TMPFILESDIR/mailcanary.conf" \
	"$MON_SYSCONFDIR/logrotate.d/mailcanary" \
	"$MON_DOCDIR/mailcanary.cron" \
	"$MON_DOCDIR/mailcanary.conf.example" \
	"$MON_MANDIR/man8/mailcanary.8" \
	"$MON_MANDIR/man5/mailcanary.conf.5"; do
	if [ ! -f "$root$f" ] || [ ! -s "$root$f" ]; then
		fail "not installed (or empty): $f"
	fi
done
[ -x "$root$MON_BINDIR/mailcanary" ] || fail "$MON_BINDIR/mailcanary is not executable"

# configure_file replaced every @VAR@, and the commands name the installed binary.
for f in "$MON_UNITDIR/mailcanary.service" "$MON_UNITDIR/mailcanary-due.service" "$MON_DOCDIR/mailcanary.cron"; do
	[ -f "$root$f" ] || continue
	if grep -n '@[A-Z_]*@' "$root$f" >&2; then fail "$f: unreplaced @VARIABLE@"; fi
	grep -q "$MON_BINDIR/mailcanary -c /etc/mailcanary/mailcanary.conf " "$root$f" ||
		fail "$f: does not run $MON_BINDIR/mailcanary -c /etc/mailcanary/mailcanary.conf"
done
[ "$fails" -eq 0 ] || die "$fails problem(s) with the installed files"
echo "ok: cmake --install put every file in place under DESTDIR"

# --- (b) systemd-analyze verify ----------------------------------------------------------------
# --root=DESTDIR: units are looked up in DESTDIR's unit directories (so MON_UNITDIR must be one
# systemd searches, and the timer must find its service there), and ExecStart= binaries in
# DESTDIR (so the installed binary must be where the units say). The units' default
# dependencies (sysinit.target, basic.target, ...) and network-online.target come from the
# host's systemd, copied into DESTDIR's lowest-priority unit directory.
hostunits=
for d in /usr/lib/systemd/system /lib/systemd/system; do
	if [ -f "$d/sysinit.target" ]; then hostunits=$d; break; fi
done
[ -n "$hostunits" ] || die "no sysinit.target in /usr/lib/systemd/system or /lib/systemd/system"
mkdir -p "$root/usr/lib/systemd/system"
for t in "$hostunits"/*.target; do
	n=$(basename "$t")
	[ -e "$root/usr/lib/systemd/system/$n" ] || cp "$t" "$root/usr/lib/systemd/system/$n"
done

# Commands of the system that the units run (ExecReload=/bin/kill): from the host, like the
# targets; only mailcanary itself must come from the installation.
for u in $unit_files; do
	sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$root$MON_UNITDIR/$u"
done | sort -u | while read -r cmd; do
	case $cmd in
	"$MON_BINDIR"/*) ;;
	/*)
		if [ ! -e "$root$cmd" ] && [ -x "$cmd" ]; then
			mkdir -p "$root$(dirname "$cmd")"
			cp "$cmd" "$root$cmd"
		fi
		;;
	esac
done

# Documentation=man:... is checked with man(1): against the installed pages.
man_opt=--man=yes
if ! command -v man >/dev/null 2>&1; then
	echo "note: man(1) not installed: Documentation= links not checked"
	man_opt=--man=no
fi

# $1: root; rest: unit names. Prints systemd-analyze's output; fails on any output or status.
analyze() {
	r=$1
	shift
	rc=0
	MANPATH=$r$MON_MANDIR SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$man_opt" --root="$r" "$@" \
		>"$tmp/verify.out" 2>&1 || rc=$?
	cat "$tmp/verify.out"
	[ "$rc" -eq 0 ] && [ ! -s "$tmp/verify.out" ]
}

# shellcheck disable=SC2086 # word splitting of the unit list is intended
if analyze "$root" $unit_files; then
	echo "ok: systemd-analyze verify: $unit_files"
else
	fail "systemd-analyze verify reported problems (above) in $unit_files"
fi

# The hardening, scored offline (no running manager needed). Both services score 1.6
# ("OK"); the threshold catches a lost block of sandboxing settings.
for u in mailcanary.service mailcanary-due.service; do
	if ! systemd-analyze security --offline=yes --root="$root" --threshold=20 --no-pager "$u" \
		>"$tmp/security.out" 2>&1; then
		grep -E 'Overall|✗' "$tmp/security.out" >&2 || cat "$tmp/security.out" >&2
		fail "systemd-analyze security: $u is exposed above 2.0"
	else
		echo "ok: systemd-analyze security $u: $(sed -n 's/.*Overall exposure level for [^:]*: //p' "$tmp/security.out")"
	fi
done

# The check must be able to fail: a copy of the daemon unit with a misspelled setting, in a
# root of its own, must make systemd-analyze complain.
neg=$tmp/neg
mkdir -p "$neg$MON_UNITDIR" "$neg/usr/lib/systemd/system" "$neg$MON_BINDIR"
cp "$root/usr/lib/systemd/system/"*.target "$neg/usr/lib/systemd/system/"
cp "$root$MON_BINDIR/mailcanary" "$neg$MON_BINDIR/"
sed 's/^ProtectSystem=/ProtectSytsem=/' "$root$MON_UNITDIR/mailcanary.service" \
	>"$neg$MON_UNITDIR/mailcanary.service"
if analyze "$neg" mailcanary.service >/dev/null; then
	fail "systemd-analyze verify accepted a unit with a misspelled setting: the check is not working"
elif ! grep -q ProtectSytsem "$tmp/verify.out"; then
	cat "$tmp/verify.out" >&2
	fail "systemd-analyze verify failed on the broken copy, but not because of the misspelled setting"
else
	echo "ok: systemd-analyze verify rejects a broken copy of mailcanary.service"
fi

# --- sysusers and tmpfiles -----------------------------------------------------------------
# systemd-sysusers creates the user in DESTDIR/etc/passwd; systemd-tmpfiles then creates the
# directories in DESTDIR with that user (chown needs root: skipped otherwise).
mkdir -p "$root/etc"
if ! systemd-sysusers --root="$root" "$root$MON_SYSUSERSDIR/mailcanary.conf" >"$tmp/sysusers.out" 2>&1; then
	cat "$tmp/sysusers.out" >&2
	fail "systemd-sysusers failed on $MON_SYSUSERSDIR/mailcanary.conf"
elif ! grep -q '^mailcanary:x:[0-9]*:[0-9]*:mailcanary deliverability monitor:/var/lib/mailcanary:' "$root/etc/passwd"; then
	cat "$root/etc/passwd" >&2
	fail "systemd-sysusers did not create the user mailcanary as expected"
else
	echo "ok: systemd-sysusers creates the user mailcanary"
	if [ "$(id -u)" -ne 0 ]; then
		echo "note: not root: systemd-tmpfiles --create not tried (it needs to chown)"
	elif ! systemd-tmpfiles --root="$root" --create "$root$MON_TMPFILESDIR/mailcanary.conf" \
		>"$tmp/tmpfiles.out" 2>&1 || [ -s "$tmp/tmpfiles.out" ]; then
		cat "$tmp/tmpfiles.out" >&2
		fail "systemd-tmpfiles reported problems with $MON_TMPFILESDIR/mailcanary.conf"
	else
		uid=$(grep '^mailcanary:' "$root/etc/passwd" | cut -d: -f3)
		gid=$(grep '^mailcanary:' "$root/etc/group" | cut -d: -f3)
		got=$(stat -c '%a %u %g' "$root/var/lib/mailcanary" "$root/etc/mailcanary" | tr '\n' ' ')
		want="750 $uid $gid 750 0 $gid "
		if [ "$got" = "$want" ]; then
			echo "ok: systemd-tmpfiles creates /var/lib/mailcanary and /etc/mailcanary"
		else
			fail "systemd-tmpfiles: mode uid gid of /var/lib/mailcanary /etc/mailcanary: got '$got', want '$want'"
		fi
	fi
fi

[ "$fails" -eq 0 ] || die "$fails problem(s)"
echo "init: all checks passed"
