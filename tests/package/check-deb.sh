#!/usr/bin/env bash
# Installs a weft .deb with apt-get, checks it, removes it and purges it:
#
#   tests/package/check-deb.sh dist/weft_<version>_amd64.deb
#
# Meant for a throwaway Debian 12 root, as root (CI, or
# ../shared/tools/fresh-machine, see docs/packaging.md): it runs apt-get
# update and install (the package's dependencies stay installed afterwards),
# and fails if weft is already installed.  It checks:
#   - every file is where expected, with its mode, and dpkg --verify is clean;
#   - flanneld --version, /opt/cni/bin/bridge --version name weft, the
#     package version and a commit; every plugin answers a CNI VERSION call;
#   - the unit (no systemctl needed): Type=notify, ExecStart=/usr/sbin/flanneld,
#     EnvironmentFile=-/etc/default/flanneld, not enabled, and
#     systemd-analyze verify if it is there;
#   - /etc/default/flanneld is a conffile;
#   - apt-get remove deletes every file dpkg -L listed except the conffile,
#     and every directory it created, and no directory that was there before;
#   - apt-get purge deletes the conffile and forgets the package.
# Prints one line per check and a last line "N checks passed" (exit 0) or
# "FAIL: ..." (exit 1).  Not part of tests/run (which sources tests/*/*.sh:
# sourcing this file does nothing).
set -euo pipefail
# Sourced (by tests/run's test collector): define nothing, do nothing.
# shellcheck disable=SC2317 # reached only when executed
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

PLUGINS=(bridge host-local portmap loopback flannel)
CONFFILE=/etc/default/flanneld
UNIT=/lib/systemd/system/flanneld.service
# path mode: the files the package must install (and each plugin a symlink
# to /opt/cni/bin/weft).
EXPECTED="/opt/cni/bin/weft 755
/usr/sbin/flanneld 755
$UNIT 644
$CONFFILE 644
/usr/share/doc/weft/copyright 644"
COMMIT_ERE='([0-9a-f]{12}(-dirty)?|unknown)'
N=0

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	N=$((N + 1))
	echo "ok  $*"
}

# ------------------------------------------------------------- install
install_deb() {
	local deb=$1
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "$deb" >/dev/null || fail "apt-get install $deb"
	[[ $(dpkg-query -W -f='${Status}' weft) == "install ok installed" ]] || fail "weft is not installed"
	ok "apt-get install $deb"
}

check_files() {
	local path mode got
	while read -r path mode; do
		[[ -f $path && ! -L $path ]] || fail "$path is not a file"
		got=$(stat -c '%a %U:%G' "$path")
		[[ $got == "$mode root:root" ]] || fail "$path: mode/owner $got, expected $mode root:root"
		dpkg-query -S "$path" >/dev/null 2>&1 || fail "$path is not owned by a package"
	done <<<"$EXPECTED"
	ok "$(wc -l <<<"$EXPECTED") files in place with their modes"
	local p
	for p in "${PLUGINS[@]}"; do
		[[ -L /opt/cni/bin/$p && $(readlink "/opt/cni/bin/$p") == weft ]] || fail "/opt/cni/bin/$p is not a symlink to weft"
		dpkg-query -S "/opt/cni/bin/$p" >/dev/null 2>&1 || fail "/opt/cni/bin/$p is not owned by a package"
	done
	ok "${PLUGINS[*]}: symlinks to weft"
	# Nothing shipped that is not expected.
	local listed
	listed=$(dpkg -L weft | while read -r p; do [[ -d $p ]] || echo "$p"; done | sort)
	[[ $listed == "$({ cut -d' ' -f1 <<<"$EXPECTED"; printf '/opt/cni/bin/%s\n' "${PLUGINS[@]}"; } | sort)" ]] ||
		fail "dpkg -L weft files: $listed"
	ok "dpkg -L weft lists exactly those files"
	dpkg --verify weft || fail "dpkg --verify weft"
	ok "dpkg --verify weft (md5sums) is clean"
	[[ $(dpkg-query -W -f='${Conffiles}' weft) == *"$CONFFILE "* ]] || fail "$CONFFILE is not a conffile"
	ok "$CONFFILE is a conffile"
}

check_binaries() {
	local version=$1 out p
	for p in /usr/sbin/flanneld /opt/cni/bin/bridge; do
		out=$("$p" --version) || fail "$p --version"
		[[ $out =~ ^${p##*/}\ \(weft\)\ ${version//./\\.}\ \(commit\ $COMMIT_ERE\)$ ]] ||
			fail "$p --version: '$out'"
		ok "$p --version: $out"
	done
	for p in "${PLUGINS[@]}"; do
		out=$(env -i CNI_COMMAND=VERSION "/opt/cni/bin/$p" </dev/null) || fail "$p VERSION: $out"
		[[ $out == *'"supportedVersions":['*'"1.0.0"'* ]] || fail "$p VERSION: $out"
	done
	ok "CNI_COMMAND=VERSION answered by ${PLUGINS[*]}: $out"
}

check_unit() {
	local line out
	for line in '[Unit]' '[Service]' '[Install]' 'Type=notify' "EnvironmentFile=-$CONFFILE"; do
		grep -qxF "$line" "$UNIT" || fail "$UNIT lacks '$line'"
	done
	grep -qE '^ExecStart=/usr/sbin/flanneld( |$)' "$UNIT" || fail "$UNIT: ExecStart is not /usr/sbin/flanneld"
	[[ $(grep -c '^ExecStart=' "$UNIT") == 1 ]] || fail "$UNIT: more than one ExecStart"
	ok "unit: Type=notify, ExecStart=/usr/sbin/flanneld, EnvironmentFile=-$CONFFILE"
	# Debian 12's "important" set has systemd; its offline verifier needs no
	# running systemd.
	if command -v systemd-analyze >/dev/null; then
		out=$(systemd-analyze verify "$UNIT" 2>&1) || fail "systemd-analyze verify $UNIT: $out"
		ok "systemd-analyze verify $UNIT${out:+: $out}"
	fi
	[[ -z $(find /etc/systemd/system -name flanneld.service 2>/dev/null) ]] || fail "flanneld.service is enabled"
	[[ ! -e /var/lib/dpkg/info/weft.postinst ]] || fail "weft has a postinst"
	ok "unit not enabled, no postinst"
}

# ------------------------------------------------------ remove, purge
# Every directory in the package that was there before the install.
dirs_before() {
	local deb=$1 d
	dpkg-deb --contents "$deb" | awk '{print $6}' | sed -n 's#^\./\(.*[^/]\)/$#/\1#p' | while read -r d; do
		if [[ -d $d ]]; then echo "$d"; fi
	done
}

check_remove() {
	local listed=$1 before=$2 p
	apt-get remove -y -qq weft >/dev/null || fail "apt-get remove weft"
	[[ $(dpkg-query -W -f='${Status}' weft) == "deinstall ok config-files" ]] ||
		fail "after remove: status $(dpkg-query -W -f='${Status}' weft)"
	while read -r p; do
		[[ $p == / || $p == /. ]] && continue
		if [[ $p == "$CONFFILE" ]]; then
			[[ -f $p ]] || fail "remove deleted the conffile $p"
		elif grep -qxF "$p" <<<"$before"; then
			[[ -d $p ]] || fail "remove deleted $p, which was there before"
		else
			[[ ! -e $p && ! -L $p ]] || fail "remove left $p"
		fi
	done <<<"$listed"
	ok "apt-get remove: $(grep -vcxF -e / -e /. -e "$CONFFILE" <<<"$listed") paths gone (or there before), $CONFFILE kept"
	apt-get purge -y -qq weft >/dev/null || fail "apt-get purge weft"
	[[ ! -e $CONFFILE ]] || fail "purge left $CONFFILE"
	[[ -z $(dpkg-query -W -f='${Status}' weft 2>/dev/null) || $(dpkg-query -W -f='${Status}' weft 2>/dev/null) == "unknown ok not-installed" ]] ||
		fail "after purge: status $(dpkg-query -W -f='${Status}' weft)"
	ok "apt-get purge: $CONFFILE gone, weft forgotten"
}

main() {
	[[ $# == 1 && $1 != -* ]] || usage
	[[ $(id -u) == 0 ]] || fail "run as root, in a throwaway Debian root"
	[[ -f $1 ]] || fail "no file $1"
	local deb version before listed
	deb=$(realpath "$1")
	! dpkg-query -W weft >/dev/null 2>&1 || [[ $(dpkg-query -W -f='${Status}' weft) == "unknown ok not-installed" ]] ||
		fail "weft is already installed here: use a throwaway root"
	version=$(dpkg-deb --field "$deb" Version)
	[[ $(dpkg-deb --field "$deb" Package) == weft && $(dpkg-deb --field "$deb" Architecture) == amd64 ]] ||
		fail "$deb is not weft for amd64"
	before=$(dirs_before "$deb")

	install_deb "$deb"
	listed=$(dpkg -L weft)
	check_files
	check_binaries "$version"
	check_unit
	check_remove "$listed" "$before"
	echo "$N checks passed"
}

main "$@"
