# shellcheck shell=bash
# scripts/leakcheck itself: it finds every kind of leftover it promises to find, attributes
# it to the right attachment, says "clean" when there is none, and changes nothing.

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# The state, without packet counters (traffic of its own, IPv6 router solicitations, moves
# them).
_snap() { snapshot | sed -E 's/packets [0-9]+ bytes [0-9]+//'; }
# The state once it has settled (two snapshots 0.2 s apart agree, within 4 s): what the kernel
# still does on its own after the ADDs (IPv6 DAD, for one) must not pass for leakcheck's doing.
_settled_snap() {
	local a b i
	a=$(_snap)
	for ((i = 0; i < 20; i++)); do
		sleep 0.2
		b=$(_snap)
		[[ $b == "$a" ]] && break
		a=$b
	done
	printf '%s\n' "$a"
}

# iptables backends: IP files, veths, ipMasq and portmap chains (v4 + v6).
test_leakcheck_iptables_stack() {
	local p1 p2 before after
	hd_confs "$DUAL_RANGES"
	new_pod p1
	new_pod p2
	hd_add c1 "$p1" || fail "ADD c1: $OUT"
	hd_add c2 "$p2" || fail "ADD c2: $OUT"
	assert_no_leaks c1 c2
	assert_eq 0 "$(jq .total <<<"$LC_OUT")" "leaks with both valid"

	before=$(_settled_snap)
	leakcheck -- c1
	assert_eq 1 "$LC_RC" "exit status with leaks"
	assert_eq 2 "$(leak_count ip-file)" "c2's IP files (v4 + v6)"
	assert_eq 1 "$(leak_count veth)" "c2's host veth"
	# ipMasq chain and portmap chain, in both families
	assert_eq 4 "$(leak_count iptables-chain)" "c2's chains"
	assert_eq 7 "$(jq .total <<<"$LC_OUT")" "total"
	assert_jq '[.leaks[] | select(.containerID != null) | .containerID] | unique == ["c2"]' "$LC_OUT"
	assert_jq '[.leaks[] | select(.kind == "iptables-chain") | .what] | sort ==
		(["ipv4", "ipv6"] | map(. + " nat '"$(chain_name "$NET" c2)"'", . + " nat '"$(dn_chain "$NET" c2)"'") | sort)' "$LC_OUT"
	after=$(_snap)
	# A diff, not the two whole snapshots: the runner shows only the tail of a failure's log.
	[[ $after == "$before" ]] || fail "state changed across a read-only leakcheck:"$'\n'"$(diff <(echo "$before") <(echo "$after"))"

	# another network's view: nothing of wtnet is reported
	leakcheck --net othernet -- c1
	assert_eq 1 "$(jq .total <<<"$LC_OUT")" "leaks for --net othernet (only the veth)"
	assert_eq 1 "$(leak_count veth)" "veth"

	# text mode
	in_node python3 "$LEAKCHECK" --valid "$(valid_file c1)" --net "$NET" --data-dir "$DATA" \
		--bridge "$BR" >"$T/text" 2>&1
	assert_eq 1 "$?" "text mode exit status"
	grep -q "^7 leaks: 2 ip-file, 4 iptables-chain, 1 veth$" "$T/text" ||
		fail "text summary: $(cat "$T/text")"

	hd_del c2 "$p2"
	assert_no_leaks c1
	hd_del c1 "$p1"
	assert_no_leaks
	in_node python3 "$LEAKCHECK" --valid /dev/null --data-dir "$DATA" --bridge "$BR" >"$T/text" 2>&1
	assert_eq 0 "$?" "text mode exit status when clean"
	grep -qx "clean: no leaks" "$T/text" || fail "text when clean: $(cat "$T/text")"
}

# nftables backends: ipMasq rules, portmap rules and counters, macspoofchk chains.
test_leakcheck_nft_stack() {
	weft_only "Go 1.1.1 has neither ipMasqBackend nor portmap's nftables backend"
	local p1 p2
	hd_confs '.ipMasqBackend = "nftables" | .macspoofchk = true' '.backend = "nftables"'
	new_pod p1
	new_pod p2
	hd_add c1 "$p1" || fail "ADD c1: $OUT"
	hd_add c2 "$p2" || fail "ADD c2: $OUT"
	assert_no_leaks c1 c2
	leakcheck -- c1
	assert_eq 1 "$LC_RC" "exit status with leaks"
	assert_eq 1 "$(leak_count ip-file)" "ip files"
	assert_eq 1 "$(leak_count veth)" "veths"
	assert_eq 0 "$(leak_count iptables-chain)" "iptables chains"
	assert_eq 2 "$(leak_count nft-chain)" "macspoofchk chains"
	assert_eq 1 "$(leak_count nft-counter)" "portmap counter"
	# ipMasq rule, macspoofchk jump, 2 portmap DNAT rules, 2 masquerading rules (pod, localhost)
	assert_eq 6 "$(leak_count nft-rule)" "nft rules: $(jq -c '[.leaks[] | select(.kind == "nft-rule") | .what]' <<<"$LC_OUT")"
	hd_del c2 "$p2"
	assert_no_leaks c1
	hd_del c1 "$p1"
	assert_no_leaks
}

# A veth whose pod end never got an address, a reservation file nobody finished writing, a
# flannel temp file and a saved config of a dead container are all reported.
test_leakcheck_debris() {
	local pod
	new_pod pod
	in_node ip link add wtbr0 type bridge
	in_node ip link add vethdead type veth peer name eth0 netns "${pod##*/}"
	in_node ip link set vethdead master wtbr0
	in_node ip link add vethlone type veth peer name vethlone2
	in_node ip link set vethlone master wtbr0
	mkdir -p "$DATA/$NET" "$T/flannel"
	: >"$DATA/$NET/10.88.7.9"
	printf 'c1\r\neth0' >"$DATA/$NET/10.88.7.10"
	printf 'x' >"$T/flannel/.c7.123.tmp"
	printf '{"name":"%s","type":"bridge"}' "$NET" >"$T/flannel/c7"
	printf '{"name":"othernet","type":"bridge"}' >"$T/flannel/c8"
	FLDATA=$T/flannel leakcheck --net "$NET" -- c1
	assert_eq 1 "$LC_RC" "exit status"
	assert_eq 2 "$(leak_count veth)" "veths: $(jq -c '[.leaks[] | select(.kind == "veth")]' <<<"$LC_OUT")"
	assert_jq '[.leaks[] | select(.kind == "veth") | .reason] | sort ==
		["its peer is not in a pod netns", "its pod has no address"]' "$LC_OUT"
	assert_eq 1 "$(leak_count ip-file)" "ip files (the empty one)"
	assert_jq '.leaks[] | select(.kind == "ip-file") | .what | endswith("/10.88.7.9")' "$LC_OUT"
	assert_eq 2 "$(leak_count flannel-file)" "flannel files (temp file + c7, not othernet's c8)"
	printf 'not json' >"$T/v"
	in_node python3 "$LEAKCHECK" --valid "$T/v" >/dev/null 2>&1
	assert_eq 2 "$?" "exit status for a bad --valid file"
}
