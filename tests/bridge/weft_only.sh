# shellcheck shell=bash
# Behaviours where weft deliberately does better than Go 1.1.1
# (reference cni-plugins.md §7).  Skipped under --plugins go.

# Go's CHECK compares a route without "gw" against the kernel route, which
# always has the gateway bridge filled in, and fails.
test_check_route_without_gateway() {
	weft_only "Go 1.1.1 CHECK fails on prevResult routes without a gateway"
	local pod conf
	new_pod pod
	conf=$(bridge_conf 1.0.0 '.ipam.routes = [{dst: "10.99.0.0/16"}]')
	must_add "$conf" c1 eth0 "$pod"
	assert_jq '.routes | any(.dst == "10.99.0.0/16" and (has("gw") | not))'
	assert_match "^10\\.99\\.0\\.0/16 via $GW4 dev eth0" "$(in_ns "$pod" ip -4 route show 10.99.0.0/16)" "route in the pod"
	must_check "$(with_prev "$conf" "$OUT")" c1 eth0 "$pod"
	# and it still notices when that route is gone
	local result=$OUT
	in_ns "$pod" ip route del 10.99.0.0/16
	cni_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	[[ $RC != 0 ]] || fail "CHECK passed without the route"
}

# Go runs IPAM CHECK even without an IPAM type: "no plugin name provided".
test_check_layer2_only() {
	weft_only "Go 1.1.1 L2-only CHECK fails with 'no plugin name provided'"
	local pod conf result
	new_pod pod
	conf=$(bridge_conf 1.0.0 '.ipam = {} | del(.isDefaultGateway)')
	must_add "$conf" c1 eth0 "$pod"
	result=$OUT
	must_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	in_node ip link del "$(jq -r '.interfaces[1].name' <<<"$result")"
	cni_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	[[ $RC != 0 ]] || fail "L2 CHECK passed without the veth"
}

# A path that exists but is not a netns: Go's DEL fails ("unknown FS magic")
# and the runtime retries forever; weft treats it as gone.
test_del_netns_plain_file_is_gone() {
	weft_only "Go 1.1.1 DEL fails when CNI_NETNS is not a netns"
	local pod conf
	new_pod pod
	conf=$(bridge_conf 1.0.0 '.ipMasq = true')
	must_add "$conf" c1 eth0 "$pod"
	touch "$T/plain"
	must_del "$(with_prev "$conf" "$OUT")" c1 eth0 "$T/plain"
	assert_eq "" "$(ip_files)" "reservation files"
	assert_eq "" "$(nat_rules)" "nat rules"
}

_v11_unset=(-CNI_CONTAINERID -CNI_NETNS -CNI_IFNAME)

test_bridge_status() {
	weft_only "STATUS is CNI 1.1.0 (Go v1.1.1 stops at 1.0.0)"
	local conf
	conf=$(bridge_conf 1.1.0)
	cni_call STATUS "$conf" "" "" "" "${_v11_unset[@]}"
	assert_rc 0
	assert_eq "" "$OUT" "STATUS stdout"
	# STATUS is delegated to IPAM: an unusable dataDir makes the network unavailable
	touch "$T/file"
	cni_call STATUS "$(jq --arg d "$T/file/data" '.ipam.dataDir = $d' <<<"$conf")" "" "" "" "${_v11_unset[@]}"
	assert_error 50 '.'
	cni_call STATUS "$(bridge_conf 1.0.0)" "" "" "" "${_v11_unset[@]}"
	assert_error 1 '^config version does not allow STATUS'
}

test_bridge_gc() {
	weft_only "GC is CNI 1.1.0 (Go v1.1.1 stops at 1.0.0; upstream bridge has no GC)"
	local p1 p2 conf c1chain c2chain
	new_pod p1
	new_pod p2
	conf=$(bridge_conf 1.1.0 '.ipMasq = true')
	must_add "$conf" c1 eth0 "$p1"
	must_add "$conf" c2 eth0 "$p2"
	c1chain=$(chain_name "$NET" c1)
	c2chain=$(chain_name "$NET" c2)
	cni_call GC "$(jq '.["cni.dev/valid-attachments"] = [{containerID: "c1", ifname: "eth0"}]' <<<"$conf")" \
		"" "" "" "${_v11_unset[@]}"
	assert_rc 0
	assert_eq "" "$OUT" "GC stdout"
	# c2's reservation and masquerade rules are gone, c1's stay
	assert_eq "10.88.7.2" "$(ip_files)" "reservation files"
	nat_rules | grep -q -- "-j $c1chain" || fail "GC removed c1's masquerade jump"
	nat_rules | grep -q -- "$c2chain" && fail "GC left c2's masquerade rules"
	ping_ok "$NODE" 10.88.7.2
	cni_call GC "$(bridge_conf 1.0.0)" "" "" "" "${_v11_unset[@]}"
	assert_error 1 '^config version does not allow GC'
}

# GC without cni.dev/valid-attachments is refused (code 7) before anything is touched: it once
# removed the masquerade rules of a live pod first (all of them), and only then did host-local
# refuse the same request.
test_bridge_gc_without_valid_attachments_touches_nothing() {
	weft_only "GC is CNI 1.1.0"
	local p1 conf chain before
	new_pod p1
	conf=$(bridge_conf 1.1.0 '.ipMasq = true')
	must_add "$conf" c1 eth0 "$p1"
	chain=$(chain_name "$NET" c1)
	before=$(nat_rules | grep -c -- "$chain")
	[[ $before -gt 0 ]] || fail "expected c1's masquerade rules after ADD, got $before"
	cni_call GC "$conf" "" "" "" "${_v11_unset[@]}"
	assert_error 7 '^GC needs cni.dev/valid-attachments'
	assert_eq "$before" "$(nat_rules | grep -c -- "$chain")" "c1's masquerade rules after a refused GC"
	assert_eq "10.88.7.2" "$(ip_files)" "reservation files"
	ping_ok "$NODE" 10.88.7.2
}

test_bridge_gc_nft_backend() {
	weft_only "GC of nft masquerade rules (Go v1.6.0+ only)"
	local p1 p2 conf rules
	new_pod p1
	new_pod p2
	conf=$(bridge_conf 1.1.0 '.ipMasq = true | .ipMasqBackend = "nftables"')
	must_add "$conf" c1 eth0 "$p1"
	must_add "$conf" c2 eth0 "$p2"
	cni_call GC "$(jq '.["cni.dev/valid-attachments"] = [{containerID: "c2", ifname: "eth0"}]' <<<"$conf")" \
		"" "" "" "${_v11_unset[@]}"
	assert_rc 0
	rules=$(in_node nft list chain inet cni_plugins_masquerade masq_checks)
	[[ $rules == *"id: c1"* ]] && fail "GC left c1's nft rule: $rules"
	[[ $rules == *"id: c2"* ]] || fail "GC removed c2's nft rule: $rules"
	assert_eq "10.88.7.3" "$(ip_files)" "reservation files"
}
