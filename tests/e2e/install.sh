# shellcheck shell=bash
# scripts/install.sh (always with --destdir or DESTDIR into the test's temp
# dir: these tests never write to the real /opt or /etc).  The manifests
# conf/kube-flannel-weft*.yml are checked by tests/package/manifests.sh.
# shellcheck source=tests/e2e/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

INSTALL=$E2E_REPO/scripts/install.sh

# fake_build DIR NAME...: a build dir whose "binaries" are small scripts.
fake_build() {
	local d=$1 n
	shift
	mkdir -p "$d"
	for n in "$@"; do
		printf '#!/bin/sh\necho %s v1\n' "$n" >"$d/$n"
		chmod 755 "$d/$n"
	done
}

# run_install ARG...: sets RC, OUT (stdout+stderr).
run_install() {
	OUT=$("$INSTALL" "$@" 2>&1)
	RC=$?
	log "install.sh $*: rc=$RC"$'\n'"$OUT"
}

# Every file under DIR, relative, with its mode; every symlink with its target.
tree_of() { (cd "$1" && find . \( -type f -printf '%P %m\n' \) -o \( -type l -printf '%P -> %l\n' \) | sort); }

PLUGIN_NAMES=(bridge host-local portmap loopback flannel)

test_install_fresh_destdir() {
	local from=$T/build root=$T/root
	fake_build "$from" weft
	run_install --plugins --from "$from" --destdir "$root" --conf 10-weft-bridge.conflist
	assert_rc 0
	assert_eq "etc/cni/net.d/10-weft-bridge.conflist 644
opt/cni/bin/bridge -> weft
opt/cni/bin/flannel -> weft
opt/cni/bin/host-local -> weft
opt/cni/bin/loopback -> weft
opt/cni/bin/portmap -> weft
opt/cni/bin/weft 755" "$(tree_of "$root")" "installed tree"
	for p in weft "${PLUGIN_NAMES[@]}"; do
		[[ $OUT == *"installed $root/opt/cni/bin/$p"* ]] || fail "no 'installed' line for $p"
		cmp -s "$from/weft" "$root/opt/cni/bin/$p" || fail "$p is not the build's weft"
	done
	cmp -s "$E2E_REPO/conf/10-weft-bridge.conflist" "$root/etc/cni/net.d/10-weft-bridge.conflist" ||
		fail "conflist differs from conf/"
	[[ $OUT != *warning* ]] || fail "unexpected warning: $OUT"

	# The same with DESTDIR from the environment and --prefix/--conf-dir.
	OUT=$(DESTDIR=$T/root2 "$INSTALL" --plugins --from "$from" --prefix /usr/libexec/cni --conf-dir /etc/cni/other \
		--conf 10-weft-bridge 2>&1) || fail "install.sh with DESTDIR: $OUT"
	[[ -x $T/root2/usr/libexec/cni/bridge && -f $T/root2/etc/cni/other/10-weft-bridge.conflist ]] ||
		fail "DESTDIR/--prefix/--conf-dir not honoured: $(tree_of "$T/root2")"

	# A conf that another file shadows (runtimes take the lexically first),
	# then the same under a name that sorts first.
	mkdir -p "$T/root3/etc/cni/net.d"
	echo '{}' >"$T/root3/etc/cni/net.d/10-other.conflist"
	run_install --plugins --from "$from" --destdir "$T/root3" --conf 20-weft-dualstack
	assert_rc 0
	assert_match "warning: 10-other.conflist sorts before 20-weft-dualstack.conflist" "$OUT" "shadowing warning"
	assert_match "installed +$T/root3/etc/cni/net.d/20-weft-dualstack.conflist" "$OUT"
	run_install --plugins --from "$from" --destdir "$T/root3" --conf 20-weft-dualstack --conf-name 05-weft.conflist
	assert_rc 0
	assert_match "installed +$T/root3/etc/cni/net.d/05-weft.conflist" "$OUT"
	[[ $OUT != *"sorts before 05-weft"* ]] || fail "05-weft.conflist sorts first, no warning expected: $OUT"
	cmp -s "$E2E_REPO/conf/20-weft-dualstack.conflist" "$T/root3/etc/cni/net.d/05-weft.conflist" ||
		fail "--conf-name content"
}

test_install_unchanged_conflict_force() {
	local from=$T/build root=$T/root before
	fake_build "$from" weft
	run_install --plugins --from "$from" --destdir "$root"
	assert_rc 0
	before=$(cd "$root" && find . -printf '%P %i %Y\n' | sort)

	# Same again: weft and every link "unchanged", none rewritten (same inode).
	run_install --plugins --from "$from" --destdir "$root"
	assert_rc 0
	assert_eq 6 "$(grep -c '^unchanged ' <<<"$OUT")" "unchanged lines"
	assert_eq "$before" "$(cd "$root" && find . -printf '%P %i %Y\n' | sort)" "files after a no-op install"

	# A plugin that is another file (Go's, say), a link elsewhere and a
	# rebuilt weft: refused, nothing changes, not even the removed link.
	rm "$root/opt/cni/bin/bridge" "$root/opt/cni/bin/loopback" "$root/opt/cni/bin/portmap"
	printf '#!/bin/sh\necho go bridge\n' >"$root/opt/cni/bin/bridge"
	ln -s /usr/lib/cni/loopback "$root/opt/cni/bin/loopback"
	printf '#!/bin/sh\necho weft v2\n' >"$from/weft"
	before=$(cd "$root" && find . -printf '%P %i %s %l\n' | sort)
	run_install --plugins --from "$from" --destdir "$root"
	assert_rc 1
	assert_match "conflict +$root/opt/cni/bin/bridge" "$OUT" "bridge conflict"
	assert_match "conflict +$root/opt/cni/bin/loopback" "$OUT" "loopback conflict"
	assert_match "conflict +$root/opt/cni/bin/weft" "$OUT" "weft conflict"
	assert_match "nothing was changed" "$OUT"
	assert_eq "$before" "$(cd "$root" && find . -printf '%P %i %s %l\n' | sort)" "files after a refused install"
	[[ -z $(find "$root" -name '.*weft-install*') ]] || fail "temp files left"

	# --force: replaced, installed, unchanged.
	run_install --plugins --from "$from" --destdir "$root" --force
	assert_rc 0
	assert_match "replaced +$root/opt/cni/bin/weft" "$OUT"
	assert_match "replaced +$root/opt/cni/bin/bridge" "$OUT"
	assert_match "replaced +$root/opt/cni/bin/loopback" "$OUT"
	assert_match "installed +$root/opt/cni/bin/portmap" "$OUT"
	assert_match "unchanged +$root/opt/cni/bin/host-local" "$OUT"
	for p in weft "${PLUGIN_NAMES[@]}"; do
		cmp -s "$from/weft" "$root/opt/cni/bin/$p" || fail "$p is not the build's weft after --force"
	done
	assert_eq "opt/cni/bin/bridge -> weft
opt/cni/bin/flannel -> weft
opt/cni/bin/host-local -> weft
opt/cni/bin/loopback -> weft
opt/cni/bin/portmap -> weft
opt/cni/bin/weft 755" "$(tree_of "$root")" "tree after --force"
	[[ -z $(find "$root" -name '.*weft-install*') ]] || fail "temp files left"
}

test_install_with_flanneld() {
	local from=$T/build root=$T/root
	fake_build "$from" weft flanneld
	run_install --plugins --from "$from" --destdir "$root" --with-flanneld --network 10.50.0.0/16 --backend host-gw \
		--conf 10-weft-bridge.conflist
	assert_rc 0
	assert_eq "etc/cni/net.d/10-weft-bridge.conflist 644
etc/default/weft-flanneld 644
etc/kube-flannel/net-conf.json 644
etc/systemd/system/weft-flanneld.service 644
opt/cni/bin/bridge -> weft
opt/cni/bin/flannel -> weft
opt/cni/bin/host-local -> weft
opt/cni/bin/loopback -> weft
opt/cni/bin/portmap -> weft
opt/cni/bin/weft 755
usr/local/bin/flanneld 755" "$(tree_of "$root")" "installed tree"
	[[ $OUT != *missing* ]] || fail "nothing should be missing: $OUT"
	assert_jq '.Network == "10.50.0.0/16" and .Backend.Type == "host-gw"' "$(cat "$root/etc/kube-flannel/net-conf.json")"
	# No --net-config-path: in etcd mode flanneld reads <prefix>/config (Go does too).
	grep -qx 'ExecStart=/usr/local/bin/flanneld $FLANNELD_ARGS' \
		"$root/etc/systemd/system/weft-flanneld.service" || fail "unit ExecStart"
	assert_match 'etcdctl put /coreos.com/network/config "\$\(cat /etc/kube-flannel/net-conf.json\)"' "$OUT" "how to put the config in etcd"
	grep -qx 'Type=notify' "$root/etc/systemd/system/weft-flanneld.service" || fail "unit Type"
	grep -qx 'EnvironmentFile=-/etc/default/weft-flanneld' "$root/etc/systemd/system/weft-flanneld.service" ||
		fail "unit EnvironmentFile"
	grep -q '^FLANNELD_ETCD_ENDPOINTS=' "$root/etc/default/weft-flanneld" || fail "env file lacks the etcd endpoints"
	assert_match 'systemctl daemon-reload' "$OUT" "next steps"

	# Another network: the net-conf.json differs -> conflict, unless --force.
	run_install --plugins --from "$from" --destdir "$root" --with-flanneld
	assert_rc 1
	assert_match "conflict +$root/etc/kube-flannel/net-conf.json" "$OUT"
	run_install --plugins --from "$from" --destdir "$root" --with-flanneld --force
	assert_rc 0
	assert_jq '.Network == "10.244.0.0/16" and .Backend.Type == "vxlan"' "$(cat "$root/etc/kube-flannel/net-conf.json")"
}

test_install_bad_usage() {
	local from=$T/build root=$T/root
	fake_build "$from" weft
	run_install --from "$from" --destdir "$root" --conf no-such-conf
	assert_rc 2
	assert_match "no conf/no-such-conf" "$OUT"
	assert_match "10-weft-bridge.conflist" "$OUT" "list of available confs"
	run_install --from "$from" --destdir "$root" --with-flanneld
	assert_rc 2
	assert_match "flanneld is not built" "$OUT"
	run_install --plugins --from "$from" --destdir "$root" --backend udp
	assert_rc 2
	run_install --plugins --from "$from" --destdir "$root" --prefix opt/cni/bin
	assert_rc 2
	run_install --plugins --from "$T/empty" --destdir "$root"
	assert_rc 2
	mkdir -p "$T/empty"
	run_install --plugins --from "$T/empty" --destdir "$root"
	assert_rc 2
	assert_match "no plugin binary" "$OUT"
	run_install --bogus
	assert_rc 2
	# Options but nothing to install: the usage, and nothing written.
	run_install --from "$from" --destdir "$root" --force
	assert_rc 2
	assert_match "--plugins +the CNI plugins" "$OUT" "usage"
	run_install --plugins --from "$from" --destdir "$root" --conf-name x.conflist
	assert_rc 2
	assert_match "needs --conf" "$OUT"
	run_install --plugins --from "$from" --destdir "$root" --conf 10-weft-bridge --conf-name ../x.conflist
	assert_rc 2
	[[ ! -e $root ]] || fail "a failed install wrote $(tree_of "$root")"
	# --dry-run writes nothing.
	run_install --plugins --from "$from" --destdir "$root" --dry-run
	assert_rc 0
	assert_match "\(dry run\) installed +$root/opt/cni/bin/bridge" "$OUT"
	[[ ! -e $root ]] || fail "--dry-run wrote $(tree_of "$root")"
}

# The real build: what is built gets installed and runs.
test_install_release_build() {
	local root=$T/root p n=0
	run_install --plugins --from "$WEFT_BIN" --destdir "$root" --conf 10-weft-bridge.conflist
	assert_rc 0
	for p in "${PLUGIN_NAMES[@]}"; do
		n=$((n + 1))
		assert_eq weft "$(readlink "$root/opt/cni/bin/$p")" "$p link"
		cmp -s "$WEFT_BIN/weft" "$root/opt/cni/bin/$p" || fail "$p is not the build's weft"
		OUT=$(env -i CNI_COMMAND=VERSION "$root/opt/cni/bin/$p" <<<'{"cniVersion":"1.0.0"}') ||
			fail "installed $p does not run: $OUT"
		assert_jq '.supportedVersions | index("1.0.0") != null'
		OUT=$(env -i "$root/opt/cni/bin/$p" --version) || fail "$p --version"
		assert_match "^$p \(weft\) " "$OUT" "installed $p acts as $p"
	done
	assert_eq 5 "$n" "plugins installed"
}
