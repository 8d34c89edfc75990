# shellcheck shell=bash
# portmap: real TCP and UDP through the mappings (client netns -> node IP, node -> 127.0.0.1,
# pod -> its own host port), hostIP, PascalCase keys, IPv6 and the nftables backend.

# shellcheck source=tests/portmap/pm.bash
source "$(dirname "${BASH_SOURCE[0]}")/pm.bash"

test_pm_traffic_client_tcp_udp() {
	local pod res client
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	pm_serve "$pod" 53 podA
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS")" c1 "$pod" "$res"
	assert_json '.ips[0].address' 10.88.7.2/24
	# The client's own address reaches the pod unchanged (no masquerade from outside).
	expect_answer "$client" tcp "$NODE_IP" 8080 '^podA 192\.168\.77\.2$'
	expect_answer "$client" udp "$NODE_IP" 8053 '^podA 192\.168\.77\.2$'
	# Only the mapped protocol/port pairs.
	expect_no_answer "$client" udp "$NODE_IP" 8080
	expect_no_answer "$client" tcp "$NODE_IP" 8053
}

test_pm_traffic_localhost() {
	local pod res
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	pm_serve "$pod" 53 podA
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS")" c1 "$pod" "$res"
	assert_eq 1 "$(in_node sysctl -n net.ipv4.conf.$BR.route_localnet)" "route_localnet on $BR"
	# 127.0.0.1 is masqueraded to the bridge address on the way to the pod.
	expect_answer "$NODE" tcp 127.0.0.1 8080 '^podA 10\.88\.7\.1$'
	expect_answer "$NODE" udp 127.0.0.1 8053 '^podA 10\.88\.7\.1$'
	# Any local address of the node works too.
	expect_answer "$NODE" tcp "$GW4" 8080 '^podA '
}

test_pm_traffic_hairpin() {
	local pod res client
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	pm_serve "$pod" 53 podA
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS")" c1 "$pod" "$res"
	# The pod reaches itself through the node IP; masqueraded, or the answer would not
	# come back through the node.
	expect_answer "$pod" tcp "$NODE_IP" 8080 '^podA 10\.88\.7\.1$'
	expect_answer "$pod" udp "$NODE_IP" 8053 '^podA 10\.88\.7\.1$'
	# Another pod too (its source is in the pod subnet, so it is marked as well).
	local pod2 res2
	pm_pod pod2 res2 c2
	expect_answer "$pod2" tcp "$NODE_IP" 8080 '^podA 10\.88\.7\.1$'
}

test_pm_traffic_host_ip() {
	local pod res client maps
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	maps='[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"'$NODE_IP'"},
	       {"hostPort":8081,"containerPort":80,"protocol":"tcp","hostIP":"0.0.0.0"},
	       {"hostPort":8082,"containerPort":80,"protocol":"tcp","hostIP":"2001:db8:ffff::1"}]'
	pm_add "$(pm_conf 1.0.0 "$maps")" c1 "$pod" "$res"
	expect_answer "$client" tcp "$NODE_IP" 8080 '^podA '
	expect_no_answer "$client" tcp "$NODE_IP2" 8080
	# 0.0.0.0 means every address.
	expect_answer "$client" tcp "$NODE_IP" 8081 '^podA '
	expect_answer "$client" tcp "$NODE_IP2" 8081 '^podA '
	# A hostIP of the other family maps nothing for this IPv4 pod.
	expect_no_answer "$client" tcp "$NODE_IP" 8082
	assert_match "-d $NODE_IP/32 -p tcp -m tcp --dport 8080 -j DNAT" "$(nat_rules)"
}

# containerd's CRI sends PascalCase keys; Go's decoder matches them case-insensitively.
test_pm_traffic_pascal_case_keys() {
	local pod res client camel pascal
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	pm_serve "$pod" 53 podA
	pascal='[{"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""},
	         {"HostPort":8053,"ContainerPort":53,"Protocol":"udp"}]'
	pm_add "$(pm_conf 1.0.0 "$pascal")" c1 "$pod" "$res"
	pascal=$(nat_rules | sort)
	expect_answer "$client" tcp "$NODE_IP" 8080 '^podA '
	expect_answer "$client" udp "$NODE_IP" 8053 '^podA '
	must_del "$(pm_conf 1.0.0 "$PM_MAPS")" c1 eth0 "$pod"
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS")" c1 "$pod" "$res"
	camel=$(nat_rules | sort)
	assert_eq "$camel" "$pascal" "rules from PascalCase and camelCase keys"
	[[ $pascal == *"--dports 8080"* ]] || fail "no entry rule for 8080: $pascal"
}

test_pm_traffic_ipv6() {
	local pod res client
	in_node sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	pm_client client
	pm_pod pod res c1 "$DUAL_RANGES"
	wait_no_tentative "$pod"
	pm_serve "$pod" 80 podA
	pm_serve "$pod" 53 podA
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS")" c1 "$pod" "$res"
	assert_match "DNAT --to-destination \[2001:db8:7::2\]:80" "$(nat6_rules)"
	expect_answer "$client" tcp "$NODE_IP6" 8080 '^podA fd77::2$'
	expect_answer "$client" udp "$NODE_IP6" 8053 '^podA fd77::2$'
	expect_answer "$client" tcp "$NODE_IP" 8080 '^podA 192\.168\.77\.2$'
	# hairpin over IPv6: masqueraded to the bridge's v6 address
	expect_answer "$pod" tcp "$NODE_IP6" 8080 '^podA 2001:db8:7::1$'
}

test_pm_traffic_nftables_backend() {
	weft_only "Go 1.1.1 has no nftables backend (v1.6.0+)"
	local pod res client conf before
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	pm_serve "$pod" 53 podA
	before=$(nat_rules)
	conf=$(pm_conf 1.0.0 "$PM_MAPS" '.backend = "nftables"')
	pm_add "$conf" c1 "$pod" "$res"
	# Go's tables and chains, nothing in iptables.
	local table
	table=$(in_node nft list table ip cni_hostport)
	for c in hostports hostip_hostports hostports_all prerouting output masquerading; do
		grep -q "chain $c {" <<<"$table" || fail "chain $c missing: $table"
	done
	grep -q 'tcp dport 8080 counter name "weft_' <<<"$table" || fail "no tcp rule: $table"
	grep -q 'comment "c1"' <<<"$table" || fail "rules not commented with the cid: $table"
	assert_eq "$before" "$(nat_rules)" "iptables nat rules"
	expect_answer "$client" tcp "$NODE_IP" 8080 '^podA 192\.168\.77\.2$'
	expect_answer "$client" udp "$NODE_IP" 8053 '^podA 192\.168\.77\.2$'
	expect_answer "$NODE" tcp 127.0.0.1 8080 '^podA 10\.88\.7\.1$'
	expect_answer "$pod" tcp "$NODE_IP" 8080 '^podA 10\.88\.7\.1$'
	must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	# A second container with the same cid on another network keeps its rules.
	local other
	other=$(pm_conf 1.0.0 '[{"hostPort":9090,"containerPort":80}]' '.backend = "nftables" | .name = "othernet"')
	must_add "$(with_prev "$other" "$res")" c1 eth0 "$pod"
	must_del "$conf" c1 eth0 "$pod"
	expect_no_answer "$client" tcp "$NODE_IP" 8080
	expect_answer "$client" tcp "$NODE_IP" 9090 '^podA '
	must_del "$other" c1 eth0 "$pod"
	assert_eq "" "$(pm_traces c1)" "traces of c1 after DEL"
	assert_eq "" "$(in_node nft list table ip cni_hostport | grep -E 'dnat|masquerade|counter')" "nft rules after DEL"
}

test_pm_traffic_snat_off() {
	local pod res client
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS" '.snat = false')" c1 "$pod" "$res"
	expect_answer "$client" tcp "$NODE_IP" 8080 '^podA 192\.168\.77\.2$'
	# No mark chains without snat; hairpin then cannot work (the answer bypasses the node).
	assert_eq "" "$(nat_rules | grep -E 'SETMARK|MASQ')" "mark rules"
	expect_no_answer "$pod" tcp "$NODE_IP" 8080
}

test_pm_traffic_masq_all() {
	weft_only "masqAll is Go v1.2.0+"
	local pod res client backend
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	for backend in iptables nftables; do
		pm_add "$(pm_conf 1.0.0 "$PM_MAPS" ".masqAll = true | .backend = \"$backend\"")" c1 "$pod" "$res"
		# Every source is masqueraded, the client's included.
		expect_answer "$client" tcp "$NODE_IP" 8080 '^podA 10\.88\.7\.1$'
		expect_answer "$NODE" tcp 127.0.0.1 8080 '^podA 10\.88\.7\.1$'
		must_del "$(pm_conf 1.0.0 "$PM_MAPS")" c1 eth0 "$pod"
		expect_no_answer "$client" tcp "$NODE_IP" 8080
	done
}

# No backend key and no usable iptables: Go's auto-selection picks nftables.
test_pm_traffic_auto_backend_without_iptables() {
	weft_only "Go 1.1.1 has no nftables backend"
	local pod res client conf
	local -a noipt=(WEFT_IPTABLES=/nonexistent/iptables WEFT_IP6TABLES=/nonexistent/ip6tables
		WEFT_IPTABLES_RESTORE=/nonexistent/iptables-restore WEFT_IP6TABLES_RESTORE=/nonexistent/ip6tables-restore)
	pm_client client
	pm_pod pod res c1
	pm_serve "$pod" 80 podA
	conf=$(pm_conf 1.0.0 "$PM_MAPS")
	must_add "$(with_prev "$conf" "$res")" c1 eth0 "$pod" "${noipt[@]}"
	assert_match 'tcp dport 8080' "$(in_node nft list table ip cni_hostport)" "nft rules"
	assert_eq "" "$(nat_rules | grep CNI-DN-)" "iptables rules"
	expect_answer "$client" tcp "$NODE_IP" 8080 '^podA '
	must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod" "${noipt[@]}"
	must_del "$conf" c1 eth0 "$pod" "${noipt[@]}"
	assert_eq "" "$(pm_traces c1)" "traces after DEL"
}
