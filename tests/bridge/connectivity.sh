# shellcheck shell=bash
# Traffic between the node netns and pods, and between pods on one bridge.
# Traffic never leaves this test's namespaces.

test_ping_node_pod_and_pod_pod() {
	local p1 p2 ip1 ip2
	new_pod p1
	new_pod p2
	must_add "$(bridge_conf 1.0.0)" c1 eth0 "$p1"
	ip1=$(result_ip4)
	must_add "$(bridge_conf 1.0.0)" c2 eth0 "$p2"
	ip2=$(result_ip4)
	assert_eq 10.88.7.2 "$ip1"
	assert_eq 10.88.7.3 "$ip2"
	ping_ok "$NODE" "$ip1"
	ping_ok "$NODE" "$ip2"
	ping_ok "$p1" "$GW4"
	ping_ok "$p1" "$ip2"
	ping_ok "$p2" "$ip1"
	# after DEL the pod is unreachable
	must_del "$(bridge_conf 1.0.0)" c2 eth0 "$p2"
	ping_fails "$p1" "$ip2"
}

# isGateway without isDefaultGateway: gateway on the bridge, no default route.
test_is_gateway_without_default_route() {
	local pod
	new_pod pod
	must_add "$(bridge_conf 1.0.0 'del(.isDefaultGateway) | .isGateway = true')" c1 eth0 "$pod"
	assert_json '.routes // [] | length' 0
	assert_json '.ips[0].gateway' "$GW4"
	assert_eq "" "$(in_ns "$pod" ip -4 route show default)" "pod default route"
	assert_match "inet $GW4/24 " "$(in_node ip -4 -o addr show dev "$BR")" "bridge address"
	assert_eq 1 "$(in_node cat /proc/sys/net/ipv4/ip_forward)" "node ip_forward"
	ping_ok "$pod" "$GW4"
}

# Neither isGateway nor isDefaultGateway: the bridge gets no address.
test_no_gateway() {
	local p1 p2
	new_pod p1
	new_pod p2
	must_add "$(bridge_conf 1.0.0 'del(.isDefaultGateway)')" c1 eth0 "$p1"
	assert_json '.ips[0] | has("gateway")' true # host-local still reports it
	assert_eq "" "$(in_node ip -4 -o addr show dev "$BR")" "bridge IPv4 addresses"
	must_add "$(bridge_conf 1.0.0 'del(.isDefaultGateway)')" c2 eth0 "$p2"
	ping_ok "$p1" 10.88.7.3
}

test_dual_stack() {
	local p1 p2 conf
	new_pod p1
	new_pod p2
	# no DAD on the bridge's own addresses: keeps the test fast
	in_node sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	conf=$(bridge_conf 1.0.0 "$DUAL_RANGES")
	must_add "$conf" c1 eth0 "$p1"
	assert_json '[.ips[].address] | join(" ")' "10.88.7.2/24 2001:db8:7::2/64"
	assert_json '[.ips[].gateway] | join(" ")' "$GW4 $GW6"
	assert_json '[.ips[].interface] | join(" ")' "2 2"
	assert_json '[.routes[] | .dst + ">" + .gw] | join(" ")' "0.0.0.0/0>$GW4 ::/0>$GW6"
	must_check "$(with_prev "$conf" "$OUT")" c1 eth0 "$p1"
	must_add "$conf" c2 eth0 "$p2"
	# bridge has both gateways, pod has both addresses and default routes
	assert_match "inet $GW4/24 " "$(in_node ip -4 -o addr show dev "$BR")"
	assert_match "inet6 $GW6/64 " "$(in_node ip -6 -o addr show dev "$BR")"
	assert_match "inet6 2001:db8:7::2/64 " "$(in_ns "$p1" ip -6 -o addr show dev eth0)"
	assert_match "^default via $GW6 dev eth0" "$(in_ns "$p1" ip -6 route show default)"
	assert_match "^default via $GW4 dev eth0" "$(in_ns "$p1" ip -4 route show default)"
	assert_eq 1 "$(in_node cat /proc/sys/net/ipv6/conf/all/forwarding)" "node v6 forwarding"
	# pod addresses are usable at once (no DAD inside the pod unless enabledad)
	[[ -z $(in_ns "$p1" ip -6 addr show dev eth0 tentative) ]] || fail "pod address still tentative after ADD"
	wait_no_tentative "$NODE"
	ping_ok "$p1" 2001:db8:7::3
	ping_ok "$p2" 2001:db8:7::2
	ping_ok "$p1" "$GW6"
	ping_ok "$NODE" 2001:db8:7::2
	ping_ok "$p1" 10.88.7.3
	# DEL releases both families
	must_del "$conf" c1 eth0 "$p1"
	assert_eq "10.88.7.3 2001:db8:7::3" "$(ip_files | sort | tr '\n' ' ' | sed 's/ $//')" "remaining files"
}

test_ipv6_only() {
	local pod conf
	new_pod pod
	in_node sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	conf=$(bridge_conf 0.3.1 '.ipam.subnet = "'$SUBNET6'"')
	must_add "$conf" c1 eth0 "$pod"
	assert_json '.ips[0].version' 6
	assert_json '.ips[0].address' 2001:db8:7::2/64
	assert_json '.routes[0].dst' ::/0
	assert_match "inet6 $GW6/64 " "$(in_node ip -6 -o addr show dev "$BR")"
	wait_no_tentative "$NODE"
	ping_ok "$NODE" 2001:db8:7::2
}
