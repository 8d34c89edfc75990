# shellcheck shell=bash
# bridge error paths.  Each test asserts the CNI error code, that the message
# names the problem, and that nothing was left behind (node links and
# addresses, reservation files, iptables/ip6tables/nft rules).
#
# Codes: skel-level errors (env, container ID, ifname, network name, version,
# JSON) are 1/4/6/7 in Go and must stay identical.  Where Go 1.1.1 only has a
# plain Go error (999) the code is asserted under weft only (assert_error_w).

# A pod already on the bridge, so failures that happen after the bridge is
# created (Go creates it first) can be checked for leftovers.
warm_bridge() {
	local warm
	new_pod warm
	must_add "$(bridge_conf 1.0.0)" warm eth0 "$warm"
}

# _skel_err CODE ERE CONF CID IFNAME NETNS [env...]
_skel_err() {
	local before
	before=$(snapshot)
	cni_add "$3" "$4" "$5" "$6" "${@:7}"
	assert_error "$1" "$2"
	assert_go_layout
	assert_unchanged "$before"
}

test_err_malformed_json() {
	local pod
	new_pod pod
	_skel_err 6 'network config|json|unmarshal|parse|invalid' '{"cniVersion": "1.0.0", "name": "x", bad' c1 eth0 "$pod"
	_skel_err 6 '.' '' c1 eth0 "$pod"
	_skel_err 6 '.' '[1, 2]' c1 eth0 "$pod"
}

test_err_oversized_stdin() {
	local pod big
	new_pod pod
	# 4 MiB: an unterminated string
	big=$T/big.json
	{
		printf '{"cniVersion":"1.0.0","name":"wtnet","type":"bridge","pad":"'
		head -c 4194304 /dev/zero | tr '\0' a
	} >"$big"
	local before start
	before=$(snapshot)
	start=$SECONDS
	cni_add "$(cat "$big")" c1 eth0 "$pod"
	(( SECONDS - start < 10 )) || fail "plugin took $((SECONDS - start))s on a big stdin"
	if is_weft; then assert_error "6|7" '.'; else assert_error 6 'unexpected end of JSON input'; fi
	assert_unchanged "$before"
}

# A wrong JSON type must be reported with the key or the offending value
# (serde's "invalid type: string \"abc\", expected u32" names the value).
test_err_wrong_types() {
	local pod
	new_pod pod
	_skel_err 6 'name|string' "$(bridge_conf 1.0.0 '.name = 5')" c1 eth0 "$pod"
	local before
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0 '.mtu = "abc"')" c1 eth0 "$pod"
	assert_error_w "6|7" 999 'mtu|"abc"'
	cni_add "$(bridge_conf 1.0.0 '.ipMasq = "yes"')" c1 eth0 "$pod"
	assert_error_w "6|7" 999 'ipMasq|"yes"'
	cni_add "$(bridge_conf 1.0.0 '.hairpinMode = 1')" c1 eth0 "$pod"
	assert_error_w "6|7" 999 'hairpinMode|bool'
	cni_add "$(bridge_conf 1.0.0 '.bridge = ["x"]')" c1 eth0 "$pod"
	assert_error_w "6|7" 999 'bridge|sequence|array'
	assert_unchanged "$before"
}

test_err_missing_name() {
	local pod
	new_pod pod
	_skel_err 7 '^missing network name' "$(bridge_conf 1.0.0 'del(.name)')" c1 eth0 "$pod"
	_skel_err 7 '^missing network name' "$(bridge_conf 1.0.0 '.name = ""')" c1 eth0 "$pod"
}

test_err_bad_network_name() {
	local pod n
	new_pod pod
	for n in "../x" "a/b" ".hidden" "a b"; do
		_skel_err 7 '^invalid characters found in network name' \
			"$(bridge_conf 1.0.0 ".name = \"$n\"")" c1 eth0 "$pod"
	done
}

test_err_bad_container_id() {
	local pod c
	new_pod pod
	for c in "-bad" "a/b" "a b" "../x" "_x"; do
		_skel_err 4 '^invalid characters in containerID' "$(bridge_conf 1.0.0)" "$c" eth0 "$pod"
	done
}

test_err_bad_ifname() {
	local pod
	new_pod pod
	_skel_err 4 '^interface name is too long' "$(bridge_conf 1.0.0)" c1 eth0123456789abc "$pod"
	_skel_err 4 '^interface name contains / or : or whitespace characters' "$(bridge_conf 1.0.0)" c1 a/b "$pod"
	_skel_err 4 '^interface name contains / or : or whitespace characters' "$(bridge_conf 1.0.0)" c1 a:b "$pod"
	_skel_err 4 '^interface name contains / or : or whitespace characters' "$(bridge_conf 1.0.0)" c1 "a b" "$pod"
	_skel_err 4 '^interface name is \. or \.\.' "$(bridge_conf 1.0.0)" c1 .. "$pod"
	# 15 characters is the kernel's limit and fine
	must_add "$(bridge_conf 1.0.0)" c1 eth0123456789ab "$pod"
}

test_err_missing_env() {
	local pod conf v
	new_pod pod
	conf=$(bridge_conf 1.0.0)
	for v in CNI_CONTAINERID CNI_NETNS CNI_IFNAME CNI_PATH; do
		_skel_err 4 "^required env variables \\[$v\\] missing" "$conf" c1 eth0 "$pod" "-$v"
	done
	cni_del "$conf" c1 eth0 "$pod" -CNI_IFNAME
	assert_error 4 '^required env variables \[CNI_IFNAME\] missing'
	cni_check "$(with_prev "$conf" '{"cniVersion":"1.0.0"}')" c1 eth0 "$pod" -CNI_NETNS
	assert_error 4 '^required env variables \[CNI_NETNS\] missing'
	cni_call FOO "$conf" c1 eth0 "$pod"
	assert_error 4 '^unknown CNI_COMMAND: FOO'
}

test_err_unsupported_version() {
	local pod v
	new_pod pod
	for v in 0.5.0 2.0.0 abc; do
		_skel_err 1 "^incompatible CNI versions.*$v" "$(bridge_conf "$v")" c1 eth0 "$pod"
	done
}

test_err_check_below_0_4_0() {
	local pod conf
	new_pod pod
	conf=$(bridge_conf 0.3.1)
	must_add "$conf" c1 eth0 "$pod"
	cni_check "$(with_prev "$conf" "$OUT")" c1 eth0 "$pod"
	assert_error 1 '^config version does not allow CHECK'
}

test_err_netns_is_plain_file() {
	local before
	warm_bridge
	touch "$T/plain"
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0)" c1 eth0 "$T/plain"
	assert_error_w "4|8" 999 "failed to open netns \"$T/plain\""
	assert_unchanged "$before"
}

test_err_netns_missing_path() {
	local before
	warm_bridge
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0)" c1 eth0 "$T/nonexistent"
	assert_error_w "4|8" 999 "failed to open netns \"$T/nonexistent\""
	assert_unchanged "$before"
}

test_err_bridge_name_taken_by_non_bridge() {
	local pod before
	new_pod pod
	# (this kernel has no dummy driver; a veth is just as much "not a bridge")
	in_node ip link add "$BR" type veth peer name wtbrpeer || fail "cannot create veth"
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0)" c1 eth0 "$pod"
	assert_error_w "7|999" 999 "\"$BR\" already exists but is not a bridge"
	assert_unchanged "$before"
	assert_json '.[0].linkinfo.info_kind' veth "$(in_node ip -d -j link show dev "$BR")"
}

test_err_mtu_out_of_range() {
	local pod before
	new_pod pod
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0 '.mtu = 100000')" c1 eth0 "$pod"
	# Go passes it to the kernel: could not add "wtbr0": invalid argument
	assert_error_w 7 999 'mtu|invalid argument'
	is_weft && assert_msg 'mtu'
	assert_unchanged "$before"
	if is_weft; then
		cni_add "$(bridge_conf 1.0.0 '.mtu = -1')" c1 eth0 "$pod"
		assert_error "6|7" 'mtu'
		assert_unchanged "$before"
	fi
	# (Go 1.1.1 accepts a negative mtu as "unset")
	return 0
}

test_err_vlan_out_of_range() {
	local pod
	new_pod pod
	_skel_err_w() {
		local before
		before=$(snapshot)
		cni_add "$1" c1 eth0 "$pod"
		assert_error_w 7 999 "$2"
		assert_unchanged "$before"
	}
	_skel_err_w "$(bridge_conf 1.0.0 '.vlan = 5000')" 'invalid VLAN ID 5000 \(must be between 0 and 4094\)'
	_skel_err_w "$(bridge_conf 1.0.0 '.vlan = -1')" 'invalid VLAN ID -1 \(must be between 0 and 4094\)'
}

test_err_vlan_trunk_out_of_range() {
	weft_only "vlanTrunk exists from Go v1.3.0; Debian's v1.1.1 ignores the key"
	local pod before
	new_pod pod
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0 '.vlanTrunk = [{id: 5000}]')" c1 eth0 "$pod"
	assert_error 7 'incorrect trunk id parameter'
	cni_add "$(bridge_conf 1.0.0 '.vlanTrunk = [{minID: 10, maxID: 5}]')" c1 eth0 "$pod"
	assert_error 7 'minID is greater than maxID in trunk parameter'
	cni_add "$(bridge_conf 1.0.0 '.vlanTrunk = [{minID: 10}]')" c1 eth0 "$pod"
	assert_error 7 'minID and maxID should be configured simultaneously, maxID is missing'
	assert_unchanged "$before"
}

test_err_hairpin_and_promisc() {
	local pod before
	new_pod pod
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0 '.hairpinMode = true | .promiscMode = true')" c1 eth0 "$pod"
	assert_error_w 7 999 'cannot set hairpin mode and promiscuous mode at the same time'
	assert_unchanged "$before"
}

# IPAM fails after the veth exists: the address must not stay reserved.
# Go 1.1.1 leaves both veth ends behind (its ADD has no veth rollback), weft
# must leave nothing.
test_err_ipam_failure_rolls_back() {
	local p1 p2 conf before
	new_pod p1
	new_pod p2
	conf=$(bridge_conf 1.0.0 '.ipam.subnet = "10.88.7.0/30" | .ipMasq = true')
	must_add "$conf" c1 eth0 "$p1"
	before=$(snapshot)
	cni_add "$conf" c2 eth0 "$p2"
	assert_error_w "999|11" 999 'no IP addresses available in range set: 10\.88\.7\.1-10\.88\.7\.2'
	assert_eq "10.88.7.2" "$(ip_files)" "reservation files"
	if is_weft; then
		assert_unchanged "$before"
		pod_link_exists "$p2" eth0 && fail "pod interface left behind"
	else
		log "note: Go 1.1.1 leaves veth(s) behind: $(node_veths | tr '\n' ' ')"
	fi
	return 0
}

test_err_ipam_plugin_missing() {
	local pod before
	new_pod pod
	warm_bridge
	before=$(snapshot)
	cni_add "$(bridge_conf 1.0.0 '.ipam.type = "nosuch"')" c1 eth0 "$pod"
	assert_error_w "7|999" 999 'failed to find plugin "nosuch" in path'
	if is_weft; then assert_unchanged "$before"; fi
	return 0
}

test_err_ipam_plugin_path_traversal() {
	local pod
	new_pod pod
	# must never exec something outside CNI_PATH
	printf '#!/bin/sh\ntouch %s/pwned\n' "$T" >"$T/evil"
	chmod +x "$T/evil"
	cni_add "$(bridge_conf 1.0.0 ".ipam.type = \"../../../../../..$T/evil\"")" c1 eth0 "$pod"
	[[ $RC != 0 ]] || fail "ADD with a path-like ipam type succeeded"
	[[ -e $T/pwned ]] && fail "bridge executed an IPAM plugin outside CNI_PATH"
	assert_jq '.code | type == "number"'
	assert_msg 'plugin'
}

# DEL keeps going past errors and reports every one: the first one's code and message, the
# others in details (Go and weft before reported only the first).
test_err_del_reports_every_error() {
	weft_only "Go's DEL reports only its first error"
	local pod conf details
	new_pod pod
	conf=$(bridge_conf 1.0.0 '.ipMasq = true | .ipMasqBackend = "iptables"')
	must_add "$conf" c1 eth0 "$pod"
	failing_writes "$T/fw"
	cni_del "$(jq '.ipam.type = "nosuch"' <<<"$conf")" c1 eth0 "$pod" "${FAILING_ENV[@]}"
	assert_error 999 'failed to find plugin "nosuch" in path'
	details=$(jq -r '.details // ""' <<<"$OUT")
	[[ $details == *"failed to tear down ipMasq"*"injected failure"*"(code 999)"* ]] ||
		fail "the ipMasq teardown error is missing from details: $OUT"
	pod_link_exists "$pod" eth0 && fail "DEL stopped before removing the pod's interface"
	# a DEL that can do its work cleans up the rest
	must_del "$conf" c1 eth0 "$pod"
	assert_eq "" "$(ip_files)" "reservation files"
	assert_eq "" "$(nat_rules | grep -- "$(chain_name "$NET" c1)")" "c1's masquerade rules"
}
