# shellcheck shell=bash
# Dual stack: "&" lease keys, BackendV6Data, flannel-v6.1, IPv6 routes and
# NDP/FDB entries, subnet.env's IPv6 lines, ip6tables masquerade rules.
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

fl_dual_node() { # N: a node with fd99::N/64 too
	fl_node "$1"
	in_n "$1" ip addr add "fd99::$1/64" dev eth0 nodad
	in_n "$1" sysctl -qw net.ipv6.conf.all.forwarding=1
}

fl_subnet6() { # N
	local s
	s=$(sed -n 's/^FLANNEL_IPV6_SUBNET=//p' "$(fl_env "$1")")
	echo "${s%1/*}/${s#*/}"
}

test_flanneld_dual_stack_vxlan() {
	fl_cluster '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd44::/56","Backend":{"Type":"vxlan"}}'
	in_node ip addr add fd99::fe/64 dev fl-br0 nodad
	fl_dual_node 1
	fl_dual_node 2
	fl_up 1 --ip-masq
	fl_up 2
	local sn sn6 mac6 key
	sn=$(fl_subnet 1)
	sn6=$(fl_subnet6 1)
	assert_match '^fd44:0:0:[0-9a-f]+::/64$' "$sn6" "IPv6 lease subnet"
	printf 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=%s1/24\nFLANNEL_IPV6_NETWORK=fd44::/56\nFLANNEL_IPV6_SUBNET=%s1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n' \
		"${sn%0/24}" "${sn6%/64}" >"$T/expected.env"
	cmp "$T/expected.env" "$(fl_env 1)" || fail "subnet.env differs: $(cat "$(fl_env 1)")"

	key=$FL_PREFIX/subnets/${sn%/*}-24\&${sn6%/*}-64
	mac6=$(in_n 1 cat /sys/class/net/flannel-v6.1/address)
	assert_eq "{\"PublicIP\":\"10.99.0.1\",\"PublicIPv6\":\"fd99::1\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"$(fl_mac 1)\"},\"BackendV6Data\":{\"VNI\":1,\"VtepMAC\":\"$mac6\"}}" \
		"$(fl_etcdctl get --print-value-only "$key")" "dual-stack lease value"

	local j
	j=$(in_n 1 ip -d -j link show flannel-v6.1)
	assert_json '.[0].linkinfo.info_data | (.local6 // .local)' fd99::1 "$j"
	assert_json '.[0].mtu' 1430 "$j"
	assert_eq "${sn6%/*}/128" "$(in_n 1 ip -6 -j addr show dev flannel-v6.1 scope global | jq -r '.[0].addr_info[0] | "\(.local)/\(.prefixlen)"')" \
		"address of flannel-v6.1"

	# Node 1's entries for node 2, both families.
	local p6 m6
	p6=$(fl_subnet6 2)
	m6=$(in_n 2 cat /sys/class/net/flannel-v6.1/address)
	wait_for 5 "v4 entries" fl_peers_ok 1 2
	wait_for 5 "v6 route" bash -c "ip netns exec ${FL_NS[1]} ip -6 route show dev flannel-v6.1 | grep -q '^$p6 via ${p6%/*} '"
	assert_eq "${p6%/*} lladdr $m6 PERMANENT" "$(in_n 1 ip -6 neigh show dev flannel-v6.1 nud permanent | sed 's/ *$//')" "NDP entry"
	assert_eq "$m6 dst fd99::2 self permanent" "$(in_n 1 bridge fdb show dev flannel-v6.1 | grep ' dst ' | sed 's/ *$//')" "v6 FDB entry"

	# ip6tables masquerade rules with the IPv6 networks.
	in_n 1 ip6tables -t nat -S FLANNEL-POSTRTG | grep -q -- "-s fd44::/56 ! -d ff00::/8 .* -j MASQUERADE" ||
		fail "no IPv6 masquerade rule: $(in_n 1 ip6tables -t nat -S 2>&1)"

	# Pods with both families talk across nodes.
	local conf out a6 b6 n path id
	for n in 1 2; do
		new_pod path
		id=p$n
		FL_POD_NS[$id]=${path##*/}
		conf=$(jq -nc --arg s4 "$(fl_subnet $n)" --arg s6 "$(fl_subnet6 $n)" --arg data "$T/n$n/ipam" \
			'{cniVersion:"1.0.0",name:"cbr0",type:"bridge",bridge:"cni0",isGateway:true,mtu:1430,
			  ipam:{type:"host-local",ranges:[[{subnet:$s4}],[{subnet:$s6}]],
			        routes:[{dst:"10.244.0.0/16"},{dst:"fd44::/56"}],dataDir:$data}}')
		out=$(printf '%s' "$conf" | in_n $n env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=ADD \
			CNI_CONTAINERID=$id CNI_NETNS="$path" CNI_IFNAME=eth0 CNI_PATH="$IPAM_DIR" "$MAIN_DIR/bridge") ||
			fail "pod on node $n: $out"
		printf -v "ip6_$n" '%s' "$(result_ip6 "$out")"
	done
	wait_no_tentative "${FL_POD_NS[p1]}"
	wait_no_tentative "${FL_POD_NS[p2]}"
	wait_no_tentative "${FL_NS[1]}"
	wait_no_tentative "${FL_NS[2]}"
	# shellcheck disable=SC2154
	ping_ok "${FL_POD_NS[p1]}" "$ip6_2"
	# shellcheck disable=SC2154
	ping_ok "${FL_POD_NS[p2]}" "$ip6_1"
}
