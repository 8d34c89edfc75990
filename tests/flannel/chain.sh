# shellcheck shell=bash
# The full chain flannel -> bridge -> host-local with the stock kube-flannel conflist entry:
# two pods, connectivity, the saved delegate config byte for byte, CHECK, DEL, DEL again.

# shellcheck source=tests/flannel/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

_chain() { # VERSION
	local v=$1 p1 p2 conf r1 r2 before
	fl_setup
	conf=$(fl_conf "$v")
	before=$(snapshot)
	new_pod p1
	new_pod p2

	must_add "$conf" c1 eth0 "$p1"
	r1=$OUT
	assert_json .cniVersion "$v"
	assert_json '.ips[0].address' "10.244.7.2/24"
	assert_json '.ips[0].gateway' "$FL_GW"
	# flannel's network route from ipam.routes, and the default route (isDefaultGateway)
	assert_jq '.routes | any(.dst == "10.244.0.0/16")'
	assert_jq '.routes | any(.dst == "0.0.0.0/0" and .gw == "10.244.7.1")'
	assert_go_layout
	# saved before delegating, exactly what Go saves: dir 0700, file 0600
	assert_saved c1 "$(expected_delegate "$v")"

	must_add "$conf" c2 eth0 "$p2"
	r2=$OUT
	assert_json '.ips[0].address' "10.244.7.3/24"
	assert_saved c2 "$(expected_delegate "$v")"

	# delegate options: MTU from subnet.env, hairpin from the conflist's delegate
	assert_eq "$FL_MTU" "$(in_ns "$p1" cat /sys/class/net/eth0/mtu)" "pod eth0 MTU"
	local veth
	veth=$(in_node ip -o link show master "$FL_BR" type veth | awk -F': ' 'NR==1 {print $2}' | sed 's/@.*//')
	assert_eq 1 "$(in_node cat "/sys/class/net/$veth/brport/hairpin_mode")" "hairpin on $veth"
	# ipMasq = !FLANNEL_IPMASQ: flanneld masquerades, so the bridge must not
	assert_eq "" "$(nat_rules)" "nat rules"

	ping_ok "$p1" 10.244.7.3
	ping_ok "$p2" 10.244.7.2
	ping_ok "$p1" "$FL_GW"
	ping_ok "$NODE" 10.244.7.2
	# the pod's route to the whole flannel network goes via the bridge gateway
	assert_match "^10\\.244\\.0\\.0/16 via $FL_GW dev eth0" "$(in_ns "$p1" ip -4 route show 10.244.0.0/16)" "pod route"

	if [[ $v != 0.3.1 ]]; then
		# Go bridge 1.1.1's CHECK fails on every flannel pod (it compares gateway-less routes
		# against the kernel's, see tests/README.md), so only with weft delegates.
		is_weft && must_check "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	else
		# skel refuses CHECK below 0.4.0, Go's and weft's alike
		cni_check "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
		assert_error 1 'config version does not allow CHECK'
	fi

	must_del "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	assert_no_saved c1
	pod_link_exists "$p1" eth0 && fail "pod 1 eth0 left after DEL"
	ping_ok "$p2" "$FL_GW"
	must_del "$(with_prev "$conf" "$r2")" c2 eth0 "$p2"
	assert_no_saved c2
	# DEL twice: nothing saved any more, still success
	must_del "$(with_prev "$conf" "$r2")" c2 eth0 "$p2"
	assert_eq "" "$(ip_files_fl)" "host-local reservations"
	# only the bridge itself (and its address) remain from the whole lifecycle
	local now
	now=$(snapshot | grep -v "$FL_BR")
	assert_eq "$(grep -v "$FL_BR" <<<"$before")" "$now" "node state after ADD+DEL"
}

# host-local's store for the flannel network (name cbr0)
ip_files_fl() {
	[[ -d $DATA/$FL_NET ]] || return 0
	(cd "$DATA/$FL_NET" && ls -1 | grep -vE '^(lock|last_reserved_ip\..*)$')
}

test_chain_0_3_1_stock_conflist() { _chain 0.3.1; }
test_chain_1_0_0_conflist() { _chain 1.0.0; }

test_chain_dual_stack() {
	local pod conf
	fl_setup
	write_subnet_env "$(dual_env)"
	in_node sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	conf=$(fl_conf 1.0.0)
	new_pod pod
	in_ns "$pod" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	must_add "$conf" c1 eth0 "$pod"
	local result=$OUT
	assert_json '[.ips[].address] | join(" ")' "10.244.7.2/24 fd44:0:7::2/64"
	assert_saved c1 "$(printf '{"cniVersion":"1.0.0","hairpinMode":true,"ipMasq":false,"ipam":{"dataDir":"%s","ranges":[[{"subnet":"%s"}],[{"subnet":"%s"}]],"routes":[{"dst":"%s"},{"dst":"%s"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":%s,"name":"cbr0","type":"bridge"}' \
		"$DATA" "$FL_SUBNET" "$FL_SUBNET6" "$FL_NETWORK" "$FL_NETWORK6" "$FL_MTU")"
	assert_match "^fd44::/48 via $FL_GW6 dev eth0" "$(in_ns "$pod" ip -6 route show fd44::/48)" "pod v6 route"
	wait_no_tentative "$NODE"
	wait_no_tentative "$pod"
	ping_ok "$pod" "$FL_GW6"
	ping_ok "$NODE" fd44:0:7::2
	is_weft && must_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	must_del "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	assert_no_saved c1
	pod_link_exists "$pod" eth0 && fail "pod eth0 left"
	return 0
}

# FLANNEL_IPMASQ=false (flanneld does not masquerade): the bridge must, ipMasq=true.
test_chain_bridge_masquerades_when_flanneld_does_not() {
	local pod conf
	fl_setup
	write_subnet_env "$(default_env | sed 's/FLANNEL_IPMASQ=true/FLANNEL_IPMASQ=false/')"
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	assert_saved c1 "$(expected_delegate 1.0.0 true)"
	local chain
	chain=$(chain_name "$FL_NET" c1)
	nat_rules | grep -q -- "-A POSTROUTING -s 10.244.7.2/32 .*-j $chain" || fail "no masquerade rule: $(nat_rules)"
	must_del "$(with_prev "$conf" "$OUT")" c1 eth0 "$pod"
	assert_eq "" "$(nat_rules)" "nat rules after DEL"
}

# Two CIDRs in FLANNEL_NETWORK (duplicates dropped), a custom delegate type, explicit
# overrides: the saved bytes follow Go's map ordering and the pod gets both routes.
test_chain_two_networks_and_overrides() {
	local pod conf
	fl_setup
	write_subnet_env "$(printf 'FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16,10.244.1.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')"
	conf=$(fl_conf 1.0.0 '.delegate = {type: "bridge", bridge: "wtfl0", mtu: 1400, isGateway: true, ipMasq: false, isDefaultGateway: false}')
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	assert_saved c1 "$(printf '{"bridge":"wtfl0","cniVersion":"1.0.0","ipMasq":false,"ipam":{"dataDir":"%s","ranges":[[{"subnet":"10.244.7.0/24"}]],"routes":[{"dst":"10.244.0.0/16"},{"dst":"10.245.0.0/16"}],"type":"host-local"},"isDefaultGateway":false,"isGateway":true,"mtu":1400,"name":"cbr0","type":"bridge"}' "$DATA")"
	link_exists wtfl0 || fail "bridge wtfl0 not created"
	assert_eq 1400 "$(in_ns "$pod" cat /sys/class/net/eth0/mtu)" "pod MTU"
	assert_match "via $FL_GW" "$(in_ns "$pod" ip -4 route show 10.245.0.0/16)" "route to the second network"
	must_del "$conf" c1 eth0 "$pod"
	assert_no_saved c1
}

test_version() {
	fl_setup
	cni_call VERSION "$(fl_conf 1.0.0)" "" "" ""
	assert_rc 0
	assert_json .cniVersion 1.1.0
	assert_json '.supportedVersions | join(" ")' "0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0"
}
