# shellcheck shell=bash
# --ip-masq and the forward rules: flannel's golden iptables and nftables
# rule sets (e2e/rules.go), resync, SNAT of pod traffic leaving the cluster.
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

fl_golden_nat() { # POD_CIDR
	cat <<EOF
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-N FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s $1 -d $FL_NET -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s $FL_NET -d $1 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s $FL_NET -d $1 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s $FL_NET ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s $FL_NET -d $FL_NET -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
EOF
}

fl_golden_fwd() {
	cat <<EOF
-P FORWARD ACCEPT
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-N FLANNEL-FWD
-A FLANNEL-FWD -s $FL_NET -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d $FL_NET -m comment --comment "flanneld forward" -j ACCEPT
EOF
}

# What e2e/rules.go reads: FLANNEL lines of POSTROUTING, then the chain.
fl_nat_now() { # N
	{
		in_n "$1" iptables -t nat -S POSTROUTING | grep FLANNEL
		in_n "$1" iptables -t nat -S FLANNEL-POSTRTG
	} 2>/dev/null
}

fl_fwd_now() { # N
	{
		in_n "$1" iptables -t filter -S FORWARD
		in_n "$1" iptables -t filter -S FLANNEL-FWD
	} 2>/dev/null
}

fl_rules_golden() { # N
	[[ $(fl_nat_now "$1") == "$(fl_golden_nat "$(fl_subnet "$1")")" && $(fl_fwd_now "$1") == "$(fl_golden_fwd)" ]]
}

test_flanneld_ipmasq_iptables_golden() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_up 1 --ip-masq --iptables-resync=1
	fl_up 2
	assert_eq "$(fl_golden_nat "$(fl_subnet 1)")" "$(fl_nat_now 1)" "nat rules"
	assert_eq "$(fl_golden_fwd)" "$(fl_fwd_now 1)" "filter FORWARD rules"
	assert_eq true "$(sed -n 's/^FLANNEL_IPMASQ=//p' "$(fl_env 1)")" "FLANNEL_IPMASQ"
	# Node 2 runs without --ip-masq: forward rules only.
	assert_eq "" "$(fl_nat_now 2)" "nat rules without --ip-masq"
	assert_eq "$(fl_golden_fwd)" "$(fl_fwd_now 2)" "forward rules without --ip-masq"

	# Resync: a deleted rule brings the whole set back, in order.
	in_n 1 iptables -t nat -D FLANNEL-POSTRTG -s "$(fl_subnet 1)" -d $FL_NET -m comment --comment "flanneld masq" -j RETURN
	in_n 1 iptables -t filter -D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
	wait_for 5 "rules restored" fl_rules_golden 1

	# Pod to outside the cluster is masqueraded to the node's address;
	# pod to pod is not.
	local a b
	fl_pod a 1 pa
	fl_pod b 2 pb
	ping_ok "${FL_POD_NS[pa]}" $FL_UNDERLAY_IP
	in_n 1 conntrack -L -p icmp 2>/dev/null | grep "src=$a dst=$FL_UNDERLAY_IP" | grep -q "dst=10.99.0.1 " ||
		fail "pod -> outside not masqueraded: $(in_n 1 conntrack -L -p icmp 2>&1)"
	ping_ok "${FL_POD_NS[pa]}" "$b"
	in_n 1 conntrack -L -p icmp 2>/dev/null | grep "src=$a dst=$b" | grep -q "src=$b dst=$a " ||
		fail "pod -> pod was masqueraded: $(in_n 1 conntrack -L -p icmp 2>&1)"
}

test_flanneld_ipmasq_nftables_golden() {
	command -v nft >/dev/null || skip "nft not installed"
	fl_cluster '{"Network":"10.244.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}'
	fl_node 1
	fl_up 1 --ip-masq
	local p
	p=$(fl_subnet 1)
	local want
	want=$(printf '%s\n' \
		'table ip flannel-ipv4 {' \
		$'\tchain postrtg {' \
		$'\t\tcomment "chain to manage traffic masquerading by flannel"' \
		$'\t\ttype nat hook postrouting priority srcnat; policy accept;' \
		$'\t\tmeta mark 0x00004000 return' \
		$'\t\tip saddr '"$p"' ip daddr 10.244.0.0/16 return' \
		$'\t\tip saddr 10.244.0.0/16 ip daddr '"$p"' return' \
		$'\t\tip saddr != '"$p"' ip daddr 10.244.0.0/16 return' \
		$'\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random' \
		$'\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random' \
		$'\t}' \
		'}')
	assert_eq "$want" "$(in_n 1 nft list chain ip flannel-ipv4 postrtg)" "nft postrtg chain"
	want=$(printf '%s\n' \
		'table ip flannel-ipv4 {' \
		$'\tchain forward {' \
		$'\t\tcomment "chain to accept flannel traffic"' \
		$'\t\ttype filter hook forward priority filter; policy accept;' \
		$'\t\tip saddr 10.244.0.0/16 accept' \
		$'\t\tip daddr 10.244.0.0/16 accept' \
		$'\t}' \
		'}')
	assert_eq "$want" "$(in_n 1 nft list chain ip flannel-ipv4 forward)" "nft forward chain"
	in_n 1 nft list table ip6 flannel-ipv6 >/dev/null || fail "no ip6 flannel-ipv6 table"
	# No iptables rules in nftables mode.
	assert_eq "" "$(fl_nat_now 1)" "iptables nat rules in nftables mode"
}

# A node without iptables (nftables-only distributions, kubespray#13291): flanneld takes nftables
# by itself and says so, instead of failing every resync. WEFT_IPTABLES* point at missing binaries.
test_flanneld_no_iptables_uses_nftables() {
	command -v nft >/dev/null || skip "nft not installed"
	fl_cluster
	fl_node 1
	FL_ENV="WEFT_IPTABLES=/nonexistent/iptables WEFT_IPTABLES_RESTORE=/nonexistent/iptables-restore" fl_up 1 --ip-masq --iptables-resync=1
	grep -q 'no iptables on this node (/nonexistent/iptables, /nonexistent/iptables-restore not found): using nftables' \
		"$T/n1/flanneld.log" || fail "switch to nftables not logged: $(fl_log 1)"
	assert_match "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade" "$(in_n 1 nft list chain ip flannel-ipv4 postrtg)" \
		"nft masquerade rules"
	in_n 1 nft list chain ip flannel-ipv4 forward >/dev/null || fail "no nft forward chain"
	assert_eq "" "$(fl_nat_now 1)" "iptables nat rules"
	grep -q "Failed to set up the masquerade/forward rules" "$T/n1/flanneld.log" && fail "rules failed: $(fl_log 1)"
	# The resyncs find the rules in place (no repair logged).
	sleep 2
	grep -q "rules were missing" "$T/n1/flanneld.log" && fail "resync keeps repairing: $(fl_log 1)"
	return 0
}
