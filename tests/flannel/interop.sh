# shellcheck shell=bash
# Interop. Debian's containernetworking-plugins has no Go flannel plugin, so the interop that
# always runs is weft's flannel delegating to Go's bridge and host-local (whatever --plugins
# says), and a pod added through one delegate set and deleted through the other. With a Go
# flannel binary in $GO_BIN (built from flannel-io/cni-plugin), the cross tests also run:
# Go ADD + weft DEL, weft ADD + Go DEL, and byte-identical saved configs.

# shellcheck source=tests/flannel/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

_go_delegates() {
	need_bin "$GO_BIN/bridge" "$GO_BIN/host-local"
	IPAM_DIR=$GO_BIN
	fl_setup
}

test_interop_weft_flannel_go_bridge() {
	local p1 p2 conf r1 r2
	_go_delegates
	conf=$(fl_conf 1.0.0)
	new_pod p1
	new_pod p2
	must_add "$conf" c1 eth0 "$p1"
	r1=$OUT
	must_add "$conf" c2 eth0 "$p2"
	r2=$OUT
	assert_json '.ips[0].address' 10.244.7.3/24
	assert_saved c1 "$(expected_delegate 1.0.0)"
	ping_ok "$p1" 10.244.7.3
	ping_ok "$NODE" 10.244.7.2
	# Go bridge 1.1.1's CHECK trips over flannel's gateway-less routes (tests/README.md);
	# weft's flannel relays the delegate's verdict unchanged
	cni_check "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	[[ $RC == 0 ]] || assert_error 999 'failed to delegate check: Expected Route .* not found in routing table'
	must_del "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	must_del "$(with_prev "$conf" "$r2")" c2 eth0 "$p2"
	assert_no_saved c1
	assert_no_saved c2
	assert_eq 0 "$(pod_veth_count)" "host veths"
}

# Delegates swapped between ADD and DEL (a node upgraded or rolled back under running pods):
# the saved config is all DEL needs.
_swap() { # ADD_SET DEL_SET
	local pod conf before
	need_bin "$GO_BIN/bridge" "$GO_BIN/host-local" "$WEFT_BIN/bridge" "$WEFT_BIN/host-local"
	[[ $1 == go ]] && IPAM_DIR=$GO_BIN || IPAM_DIR=$WEFT_BIN
	fl_setup
	conf=$(fl_conf 1.0.0 '.delegate.ipMasq = true')
	new_pod pod
	before=$(snapshot)
	must_add "$conf" c1 eth0 "$pod"
	[[ -n $(nat_rules) ]] || fail "no masquerade rules"
	[[ $2 == go ]] && IPAM_DIR=$GO_BIN || IPAM_DIR=$WEFT_BIN
	must_del "$(with_prev "$conf" "$OUT")" c1 eth0 "$pod"
	assert_no_saved c1
	pod_link_exists "$pod" eth0 && fail "pod eth0 left"
	assert_eq "" "$(nat_rules)" "nat rules"
	# everything but the bridge (which stays, as always) is back as before
	assert_eq "$(grep -v "$FL_BR" <<<"$before")" "$(snapshot | grep -v "$FL_BR")" "node state after ADD+DEL"
}

test_interop_add_go_delegates_del_weft_delegates() { _swap go weft; }
test_interop_add_weft_delegates_del_go_delegates() { _swap weft go; }

# With a Go flannel plugin: same saved bytes, and each DELs what the other added.
_go_flannel() {
	[[ -x $GO_BIN/flannel ]] ||
		skip "no Go flannel plugin in $GO_BIN (Debian ships none): set GO_BIN to a directory with flannel-io/cni-plugin's flannel and Go's bridge/host-local"
	need_bin "$GO_BIN/bridge" "$GO_BIN/host-local"
	IPAM_DIR=$GO_BIN
	fl_setup
}

test_interop_go_flannel_add_weft_del() {
	local p1 p2 conf go_saved
	_go_flannel
	conf=$(fl_conf 1.0.0)
	new_pod p1
	new_pod p2
	MAIN_DIR=$GO_BIN must_add "$conf" c1 eth0 "$p1"
	go_saved=$(cat "$(saved c1)")
	must_add "$conf" c2 eth0 "$p2"
	assert_eq "$go_saved" "$(cat "$(saved c2)")" "weft's saved config vs Go's"
	must_del "$conf" c1 eth0 "$p1"
	assert_no_saved c1
	MAIN_DIR=$GO_BIN must_del "$conf" c2 eth0 "$p2"
	assert_no_saved c2
	assert_eq 0 "$(pod_veth_count)" "host veths"
}

# A delegate (as "fake" and as "bridge") that answers ADD in the conf's version (1.0.0 layout).
_fake_delegate() {
	mkdir -p "$T/fakebin"
	cat >"$T/fakebin/fake" <<-'EOF2'
		#!/bin/sh
		v=$(jq -r '.cniVersion // "1.0.0"')
		[ "$CNI_COMMAND" = ADD ] || exit 0
		printf '{"cniVersion":"%s","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[{"interface":0,"address":"10.244.7.2/24","gateway":"10.244.7.1"}],"routes":[{"dst":"10.244.0.0/16"}],"dns":{"nameservers":["10.96.0.10"]}}' "$v" "$CNI_NETNS"
	EOF2
	chmod +x "$T/fakebin/fake"
	cp "$T/fakebin/fake" "$T/fakebin/bridge"
}

# Go's and weft's flannel, same conf and subnet.env: the saved delegate configs must be the
# same bytes (and so must the printed results), for every shape of input.
test_interop_go_flannel_same_bytes() {
	local pod n=0 env filter out_go out_weft
	_go_flannel
	_fake_delegate
	new_pod pod
	local -a cases=(
		"$(default_env)|."
		"$(dual_env)|."
		"$(printf 'FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16,10.244.1.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n')|."
		"$(printf 'FLANNEL_IPV6_NETWORK=fd44::/48\nFLANNEL_IPV6_SUBNET=fd44:0:7::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')|."
		"$(printf 'FLANNEL_NETWORK=::ffff:10.244.0.0/112\nFLANNEL_SUBNET=10.244.7.1/024\r\nFLANNEL_MTU=0001450\nFLANNEL_IPMASQ="true"\nexport FLANNEL_MTU=9000\nFLANNEL_IPMASQ=true\n')|."
		"$(default_env)|.ipam = {type: \"my-ipam\", \"unknown-param\": \"x\", ranges: [[{subnet: \"1.2.3.0/24\"}]], routes: [{dst: \"10.96.0.0/12\"}, {DST: \"192.168.244.5/24\", gw: \"::ffff:10.1.17.20\", junk: 1}]}"
		"$(default_env)|.runtimeConfig = {portMappings: [{hostPort: 8080, containerPort: 80, protocol: \"tcp\"}], z: {b: 1, a: [1.0, 1e3, 0.1, 1e21, 1e-7, 12345678901234567890]}}"
		"$(default_env)|.delegate = {type: \"fake\", master: \"eth0\", mtu: 1400, ipMasq: true, IPMasq: false, x: \"<a&b>\", runtimeConfig: {lost: true}}"
		"$(default_env)|.delegate = {isGateway: false, Name: \"n\"} | del(.cniVersion)"
		"$(default_env)|.delegate = null | .ipam = null | .RuntimeConfig = {}"
	)
	local c
	for c in "${cases[@]}"; do
		n=$((n + 1))
		env=${c%%|*}
		filter=${c#*|}
		write_subnet_env "$env"
		local conf
		conf=$(fl_conf 1.0.0 "$filter")
		MAIN_DIR=$GO_BIN must_add "$conf" "g$n" eth0 "$pod" "CNI_PATH=$T/fakebin"
		out_go=$OUT
		must_add "$conf" "w$n" eth0 "$pod" "CNI_PATH=$T/fakebin"
		out_weft=$OUT
		assert_eq "$(cat "$(saved "g$n")")" "$(cat "$(saved "w$n")")" "case $n: saved config, Go vs weft"
		[[ $(jq -r '.cniVersion // ""' <<<"$conf") == 1.0.0 ]] &&
			assert_eq "$out_go" "$out_weft" "case $n: printed result, Go vs weft"
		# each deletes the other's
		must_del "$conf" "g$n" eth0 "$pod" "CNI_PATH=$T/fakebin"
		MAIN_DIR=$GO_BIN must_del "$conf" "w$n" eth0 "$pod" "CNI_PATH=$T/fakebin"
		assert_no_saved "g$n"
		assert_no_saved "w$n"
	done
}
