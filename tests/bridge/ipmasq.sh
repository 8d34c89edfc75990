# shellcheck shell=bash
# ipMasq: per-container masquerade rules, all inside the node netns.

# expected iptables-save lines for one container address
_masq_lines() { # CID ADDR/32 SUBNET MCAST
	local chain comment
	chain=$(chain_name "$NET" "$1")
	comment=$(masq_comment "$NET" "$1")
	printf -- '-A POSTROUTING -s %s -m comment --comment %s -j %s\n' "$2" "$comment" "$chain"
	printf -- '-A %s -d %s -m comment --comment %s -j ACCEPT\n' "$chain" "$3" "$comment"
	printf -- '-A %s ! -d %s -m comment --comment %s -j MASQUERADE\n' "$chain" "$4" "$comment"
}

test_ipmasq_chain_name_vector() {
	# the vector from the reference (utils_test.go)
	assert_eq CNI-2bbe0c48b91a7d1b8a6753a8 "$(chain_name test 1234)" "chain_name(test, 1234)"
}

test_ipmasq_iptables_add_del() {
	local p1 p2 conf r1 chain1 chain2
	new_pod p1
	new_pod p2
	conf=$(bridge_conf 1.0.0 '.ipMasq = true')
	must_add "$conf" c1 eth0 "$p1"
	r1=$OUT
	must_add "$conf" c2 eth0 "$p2"
	chain1=$(chain_name "$NET" c1)
	chain2=$(chain_name "$NET" c2)
	assert_eq 28 "${#chain1}" "chain name length"
	assert_eq "$({ _masq_lines c1 10.88.7.2/32 "$SUBNET4" 224.0.0.0/4
		_masq_lines c2 10.88.7.3/32 "$SUBNET4" 224.0.0.0/4; } | sort)" \
		"$(nat_rules | sort)" "nat rules after two ADDs"
	# POSTROUTING order: c1's jump first (appended)
	assert_match "^-A POSTROUTING -s 10.88.7.2/32 .*-j $chain1\$" "$(nat_rules | grep -m1 '^-A POSTROUTING')"
	assert_match "^:$chain1 - " "$(in_node iptables-save -t nat | grep "^:$chain1")" "chain declared"
	# CHECK does not look at masquerade, but must still pass
	must_check "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	# DEL removes exactly c1's rules and chain
	must_del "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	assert_eq "$(_masq_lines c2 10.88.7.3/32 "$SUBNET4" 224.0.0.0/4 | sort)" "$(nat_rules | sort)" "nat rules after DEL c1"
	in_node iptables-save -t nat | grep -q "^:$chain1 " && fail "chain $chain1 survived DEL"
	must_del "$conf" c2 eth0 "$p2"
	assert_eq "" "$(nat_rules)" "nat rules after DEL c2"
	in_node iptables-save -t nat | grep -q "^:$chain2 " && fail "chain $chain2 survived DEL"
	# and again: idempotent
	must_del "$conf" c2 eth0 "$p2"
}

test_ipmasq_dual_stack() {
	local pod conf
	new_pod pod
	conf=$(bridge_conf 1.0.0 '.ipMasq = true | '"$DUAL_RANGES")
	must_add "$conf" c1 eth0 "$pod"
	assert_eq "$(_masq_lines c1 10.88.7.2/32 "$SUBNET4" 224.0.0.0/4 | sort)" "$(nat_rules | sort)" "v4 nat rules"
	assert_eq "$(_masq_lines c1 2001:db8:7::2/128 "$SUBNET6" ff00::/8 | sort)" "$(nat6_rules | sort)" "v6 nat rules"
	must_del "$(with_prev "$conf" "$OUT")" c1 eth0 "$pod"
	assert_eq "" "$(nat_rules)$(nat6_rules)" "nat rules after DEL"
}

test_ipmasq_off_adds_nothing() {
	local pod
	new_pod pod
	must_add "$(bridge_conf 1.0.0)" c1 eth0 "$pod"
	assert_eq "" "$(nat_rules)$(nat6_rules)" "nat rules"
	assert_eq "" "$(nft_rules)" "nft rules"
}

# plugins#810: Go's DEL with an empty CNI_NETNS only runs IPAM DEL, so the
# masquerade chain leaks.  weft tears it down from prevResult.
test_ipmasq_del_empty_netns_removes_rules() {
	weft_only "Go leaks masquerade rules on DEL with an empty CNI_NETNS (plugins#810)"
	local pod conf
	new_pod pod
	conf=$(bridge_conf 1.0.0 '.ipMasq = true | '"$DUAL_RANGES")
	must_add "$conf" c1 eth0 "$pod"
	[[ -n $(nat_rules) ]] || fail "no rules after ADD"
	must_del "$(with_prev "$conf" "$OUT")" c1 eth0 ""
	assert_eq "" "$(nat_rules)$(nat6_rules)" "nat rules after DEL with empty CNI_NETNS"
	assert_eq "" "$(ip_files)" "reservation files"
}

# Same leak when the netns is already gone (the interface can't be read).
test_ipmasq_del_vanished_netns_removes_rules() {
	weft_only "Go leaks masquerade rules when the netns is gone (no addresses to read)"
	local pod conf result
	new_pod pod
	conf=$(bridge_conf 1.0.0 '.ipMasq = true')
	must_add "$conf" c1 eth0 "$pod"
	result=$OUT
	ip netns del "${pod##*/}"
	must_del "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	assert_eq "" "$(nat_rules)" "nat rules after DEL"
}

test_ipmasq_nftables_backend() {
	weft_only "ipMasqBackend=nftables exists from Go v1.6.0"
	local p1 p2 conf r1 rules
	new_pod p1
	new_pod p2
	conf=$(bridge_conf 1.1.0 '.ipMasq = true | .ipMasqBackend = "nftables" | '"$DUAL_RANGES")
	must_add "$conf" c1 eth0 "$p1"
	r1=$OUT
	must_add "$conf" c2 eth0 "$p2"
	assert_eq "" "$(nat_rules)$(nat6_rules)" "iptables rules with the nft backend"
	rules=$(in_node nft list chain inet cni_plugins_masquerade masq_checks) || fail "no masq_checks chain"
	log "$rules"
	assert_match "ip saddr 10\\.88\\.7\\.2 ip daddr != 10\\.88\\.7\\.0/24 masquerade comment \"$(nft_masq_comment "$NET" eth0 c1)\"" "$rules" "c1 v4 rule"
	assert_match "ip6 saddr 2001:db8:7::2 ip6 daddr != 2001:db8:7::/64 masquerade comment \"$(nft_masq_comment "$NET" eth0 c1)\"" "$rules" "c1 v6 rule"
	assert_match "ip saddr 10\\.88\\.7\\.3 .* masquerade comment \"$(nft_masq_comment "$NET" eth0 c2)\"" "$rules" "c2 v4 rule"
	rules=$(in_node nft list chain inet cni_plugins_masquerade postrouting) || fail "no postrouting chain"
	assert_match "type nat hook postrouting priority srcnat" "$rules" "postrouting hook"
	assert_match "ip daddr 224\\.0\\.0\\.0/4 return" "$rules" "v4 multicast return"
	assert_match "ip6 daddr ff00::/8 return" "$rules" "v6 multicast return"
	assert_match "goto masq_checks" "$rules" "goto"
	must_check "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	must_del "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
	rules=$(in_node nft list chain inet cni_plugins_masquerade masq_checks)
	[[ $rules == *"id: c1"* ]] && fail "c1's nft rules survived DEL: $rules"
	[[ $rules == *"id: c2"* ]] || fail "DEL of c1 removed c2's rules: $rules"
	must_del "$conf" c2 eth0 "$p2"
	assert_eq 0 "$(in_node nft list chain inet cni_plugins_masquerade masq_checks | grep -c " masquerade comment")" "masquerade rules after DEL"
}
