# shellcheck shell=bash
# A node running Debian's Go plugins switches to weft's, the way a DaemonSet
# upgrade (or scripts/install.sh --force) does it: binaries replaced in place
# in /opt/cni/bin while containerd's CRI keeps running.  The Go plugins
# (from the real /usr/lib/cni, bound at $GO_CNI) are used ONLY to make the
# starting state: pods, host-local files, iptables chains.  Afterwards the
# Go-made pods must be deleted cleanly by weft, pods that stay must keep
# working, and new pods must get addresses that do not collide.
# shellcheck source=tests/e2e/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

test_mixed_go_node_switches_to_weft() {
	local p sida ipa sidb ipb nsb sidc ipc nsc out
	weft_only "switches a Go-made node to weft's binaries"
	e2e_env_up
	need_plugins bridge host-local portmap loopback
	e2e_uplink
	# The node starts on Go: weft's binaries go aside, Go's take their place.
	mkdir -p "$T/weft-bin"
	mv "$CNI_BIN"/* "$T/weft-bin/"
	for p in bridge host-local portmap loopback; do
		in_env cp "$GO_CNI/$p" "$CNI_BIN/$p" || fail "no Go $p in /usr/lib/cni (containernetworking-plugins)"
	done
	bridge_portmap_conflist e2e-mix >"$CNI_CONF/10-e2e-mix.conflist"
	ctd_up cri
	cri_ready

	cri_run goa 8091:8080
	sida=$SID ipa=$POD_IP
	cri_run gob 8092:8080
	sidb=$SID ipb=$POD_IP nsb=$POD_NETNS
	assert_eq gob "$(http_get "$CLIENT" "$NODE_IP" 8092)" "Go-made pod B through its hostPort"
	[[ -f $VARLIB_CNI/networks/e2e-mix/$ipa && -f $VARLIB_CNI/networks/e2e-mix/$ipb ]] ||
		fail "Go's host-local files are missing"
	in_node iptables-save -t nat | grep -qF "id: \\\"$sida\\\"" || fail "Go's rules for pod A are missing"

	# The upgrade, with our installer.
	out=$("$E2E_REPO/scripts/install.sh" --plugins --from "$T/weft-bin" --prefix "$CNI_BIN" --force 2>&1) ||
		fail "install.sh failed: $out"
	log "$out"
	for p in bridge host-local portmap loopback; do
		[[ $out == *"replaced  $CNI_BIN/$p"* ]] || fail "install.sh did not replace $p: $out"
		cmp -s "$T/weft-bin/$p" "$CNI_BIN/$p" || fail "$CNI_BIN/$p is not weft's"
	done

	# weft deletes the Go-made pod A: veth, IP file, masquerade and DNAT
	# chains, the second (netns-less, prevResult-less) DEL.
	"${CRI[@]}" stop "$sida" || fail "StopPodSandbox A (Go-made, weft DEL)"
	"${CRI[@]}" rm "$sida" || fail "RemovePodSandbox A (second DEL by weft)"
	[[ -f $VARLIB_CNI/networks/e2e-mix/$ipa ]] && fail "pod A's IP file remains"
	out=$(in_node iptables-save | grep -F -- "$sida")
	[[ -z $out ]] || fail "rules of the Go-made pod A remain after weft's DEL:"$'\n'"$out"
	assert_eq 1 "$(node_veths | grep -cvx wtup0)" "veths (pod B's only)"
	HTTP_TRIES=1 http_get "$CLIENT" "$NODE_IP" 8091 >/dev/null && fail "pod A's hostPort still answers"
	assert_eq gob "$(http_get "$CLIENT" "$NODE_IP" 8092)" "Go-made pod B after the switch"

	# A new pod by weft: no collision with B, reachable, and B from it.
	cri_run wc 8093:8080
	sidc=$SID ipc=$POD_IP nsc=$POD_NETNS
	assert_ne "$ipb" "$ipc" "new pod's IP (pod B holds $ipb)"
	assert_eq "$sidb" "$(head -n1 "$VARLIB_CNI/networks/e2e-mix/$ipb" | tr -d '\r')" "owner of $ipb"
	assert_eq "$sidc" "$(head -n1 "$VARLIB_CNI/networks/e2e-mix/$ipc" | tr -d '\r')" "owner of $ipc"
	assert_eq wc "$(http_get "$CLIENT" "$NODE_IP" 8093)" "weft pod C through its hostPort"
	assert_eq gob "$(http_get "$nsc" "$ipb" 8080)" "C -> B"
	assert_eq wc "$(http_get "$nsb" "$NODE_IP" 8093)" "B -> C's hostPort"

	for p in "$sidb" "$sidc"; do
		"${CRI[@]}" stop "$p" || fail "StopPodSandbox $p"
		"${CRI[@]}" rm "$p" || fail "RemovePodSandbox $p"
	done
	assert_eq "" "$("${CRI[@]}" list)" "sandboxes left"
	assert_node_clean
}
