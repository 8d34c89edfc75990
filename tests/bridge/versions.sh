# shellcheck shell=bash
# bridge + host-local ADD / CHECK / DEL at every cniVersion: result shape,
# kernel state, CHECK gating, DEL idempotency.  Mirrors bridge_test.go's
# per-version cases (3 interfaces, veth*, sandbox, 17-char MACs, gateway on
# the bridge, default route in the pod, DEL removes both veth ends).

ALL_VERSIONS="0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0"

version_ge() { # A B: A >= B
	[[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$2" ]]
}

MAC_RE='^([0-9a-f]{2}:){5}[0-9a-f]{2}$'

_check_result_shape() {
	local v=$1 pod=$2
	assert_json .cniVersion "$v"
	assert_json '.dns | tojson' '{}' # always printed, even empty
	if ! version_ge "$v" 0.3.0; then
		assert_json 'keys_unsorted | join(",")' "cniVersion,ip4,dns"
		assert_json .ip4.ip 10.88.7.2/24
		assert_json .ip4.gateway "$GW4"
		assert_json '.ip4.routes | tojson' '[{"dst":"0.0.0.0/0","gw":"'$GW4'"}]'
		return
	fi
	assert_json 'keys_unsorted | join(",")' "cniVersion,interfaces,ips,routes,dns"
	assert_json '.interfaces | length' 3
	assert_json '.interfaces[0].name' "$BR"
	assert_match '^veth[0-9a-f]{8}$' "$(jq -r '.interfaces[1].name' <<<"$OUT")" "host veth name"
	assert_json '.interfaces[2].name' eth0
	assert_json '.interfaces[2].sandbox' "$pod"
	assert_json '[.interfaces[0,1] | has("sandbox")] | any' false
	local i
	for i in 0 1 2; do
		assert_match "$MAC_RE" "$(jq -r ".interfaces[$i].mac" <<<"$OUT")" "interfaces[$i].mac"
	done
	assert_json '.ips | length' 1
	assert_json '.ips[0].address' 10.88.7.2/24
	assert_json '.ips[0].gateway' "$GW4"
	assert_json '.ips[0].interface' 2
	if version_ge "$v" 1.0.0; then
		assert_json '.ips[0] | has("version")' false
	else
		assert_json '.ips[0].version' 4
	fi
	assert_json '.routes | tojson' '[{"dst":"0.0.0.0/0","gw":"'$GW4'"}]' \
		"$(jq '.routes |= map({dst, gw})' <<<"$OUT")"
	if ! version_ge "$v" 1.1.0; then
		# fields that only exist from 1.1.0 must not appear below it
		assert_json '[.interfaces[] | keys[]] | unique | join(",")' "mac,name,sandbox"
		assert_json '[.routes[] | keys[]] | unique | join(",")' "dst,gw"
	fi
}

_check_kernel_state() {
	local v=$1 pod=$2
	# bridge exists, is a bridge, holds the gateway
	assert_json '.[0].linkinfo.info_kind' bridge "$(in_node ip -d -j link show dev "$BR")"
	assert_match "inet $GW4/24 " "$(in_node ip -4 -o addr show dev "$BR")" "bridge address"
	# the node netns holds exactly lo, the bridge and one veth
	local links veth
	links=$(node_links | sort | tr '\n' ' ')
	veth=$(node_veths)
	assert_match "^veth[0-9a-f]{8}$" "$veth" "host veth"
	assert_eq "$(printf '%s\n' lo "$BR" "$veth" | sort | tr '\n' ' ')" "$links" "node links"
	assert_json '.[0].master' "$BR" "$(in_node ip -j link show dev "$veth")"
	# pod side: a veth named eth0 with the address and a default route
	assert_json '.[0].linkinfo.info_kind' veth "$(in_ns "$pod" ip -d -j link show dev eth0)"
	assert_match "inet 10.88.7.2/24 " "$(in_ns "$pod" ip -4 -o addr show dev eth0)" "pod address"
	assert_match "^default via $GW4 dev eth0" "$(in_ns "$pod" ip -4 route show default)" "pod default route"
	if version_ge "$v" 0.3.0; then
		assert_json '.interfaces[0].mac' "$(in_node cat /sys/class/net/"$BR"/address)"
		assert_json '.interfaces[1].name' "$veth"
		assert_json '.interfaces[1].mac' "$(in_node cat /sys/class/net/"$veth"/address)"
		assert_json '.interfaces[2].mac' "$(in_ns "$pod" cat /sys/class/net/eth0/address)"
		assert_ne "$(jq -r '.interfaces[0].mac' <<<"$OUT")" "$(jq -r '.interfaces[1].mac' <<<"$OUT")" "bridge MAC vs veth MAC"
	fi
}

_version_case() {
	local v=$1 pod conf result veth
	new_pod pod
	conf=$(bridge_conf "$v")
	must_add "$conf" c1 eth0 "$pod"
	assert_go_layout
	result=$OUT
	_check_result_shape "$v" "$pod"
	_check_kernel_state "$v" "$pod"
	veth=$(node_veths)
	[[ -f $DATA/$NET/10.88.7.2 ]] || fail "no reservation file"

	# CHECK exists from 0.4.0 only
	if version_ge "$v" 0.4.0; then
		must_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
		assert_eq "" "$OUT" "CHECK stdout"
	else
		cni_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
		assert_error 1 '^config version does not allow CHECK'
		assert_go_layout
	fi

	# DEL (libcni passes prevResult from 0.4.0 on)
	local delconf=$conf
	version_ge "$v" 0.4.0 && delconf=$(with_prev "$conf" "$result")
	must_del "$delconf" c1 eth0 "$pod"
	assert_eq "" "$OUT" "DEL stdout"
	link_exists "$veth" && fail "host veth $veth still exists after DEL"
	pod_link_exists "$pod" eth0 && fail "pod eth0 still exists after DEL"
	[[ -e $DATA/$NET/10.88.7.2 ]] && fail "reservation file survived DEL"
	link_exists "$BR" || fail "DEL must not remove the bridge"
	# DEL is idempotent
	must_del "$delconf" c1 eth0 "$pod"
}

for _v in $ALL_VERSIONS; do
	eval "test_version_${_v//./_}() { _version_case $_v; }"
done
unset _v

# Debian's Go plugins are v1.1.1: they stop at 1.0.0.
test_version_1_1_0() {
	weft_only "cniVersion 1.1.0 (Go v1.1.1 supports up to 1.0.0)"
	_version_case 1.1.0
}

test_version_missing_means_0_1_0() {
	local pod
	new_pod pod
	must_add "$(bridge_conf 1.0.0 'del(.cniVersion)')" c1 eth0 "$pod"
	assert_json .cniVersion 0.1.0
	assert_json .ip4.ip 10.88.7.2/24
}

test_del_without_add() {
	local pod before
	new_pod pod
	before=$(snapshot)
	must_del "$(bridge_conf 1.0.0)" nosuch eth0 "$pod"
	assert_eq "" "$OUT"
	must_del "$(bridge_conf 0.4.0)" nosuch eth0 "$pod"
	assert_unchanged "$before"
}

test_del_empty_netns() {
	local pod conf
	new_pod pod
	conf=$(bridge_conf 1.0.0)
	must_add "$conf" c1 eth0 "$pod"
	must_del "$(with_prev "$conf" "$OUT")" c1 eth0 ""
	[[ -e $DATA/$NET/10.88.7.2 ]] && fail "IPAM DEL did not run with an empty CNI_NETNS"
	# CNI_NETNS unset altogether is also valid for DEL
	must_del "$conf" c1 eth0 "" -CNI_NETNS
}

test_del_vanished_netns() {
	local pod conf result veth i
	new_pod pod
	conf=$(bridge_conf 1.0.0)
	must_add "$conf" c1 eth0 "$pod"
	result=$OUT
	veth=$(node_veths)
	ip netns del "${pod##*/}"
	[[ -e $pod ]] && fail "netns path still exists"
	must_del "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	[[ -e $DATA/$NET/10.88.7.2 ]] && fail "IPAM DEL did not run for a vanished netns"
	# the host end goes away with the netns (asynchronously)
	for i in $(seq 1 30); do
		link_exists "$veth" || return 0
		sleep 0.1
	done
	fail "host veth $veth survived its netns"
}

test_del_after_failed_add() {
	local p1 p2 conf
	new_pod p1
	new_pod p2
	# a /30 holds one pod (.1 is the gateway): the second ADD fails in IPAM
	conf=$(bridge_conf 1.0.0 '.ipam.subnet="10.88.7.0/30"')
	must_add "$conf" c1 eth0 "$p1"
	cni_add "$conf" c2 eth0 "$p2"
	[[ $RC != 0 ]] || fail "second ADD on a /30 should fail"
	must_del "$conf" c2 eth0 "$p2"
	must_del "$conf" c2 eth0 "$p2"
	[[ -f $DATA/$NET/10.88.7.2 ]] || fail "DEL of c2 released c1's address"
	if pod_link_exists "$p2" eth0; then fail "eth0 of the failed pod survived DEL"; fi
}

test_second_add_same_ifname_fails() {
	local pod conf before
	new_pod pod
	conf=$(bridge_conf 1.0.0)
	must_add "$conf" c1 eth0 "$pod"
	before=$(snapshot)
	cni_add "$conf" c2 eth0 "$pod"
	# no standard code fits: any code under weft, Go's is 999
	assert_error_w "[0-9]+" 999 'eth0.*already exists|already exists.*eth0'
	assert_unchanged "$before"
}

test_existing_bridge_is_reused() {
	local p1 p2 idx
	new_pod p1
	new_pod p2
	must_add "$(bridge_conf 1.0.0)" c1 eth0 "$p1"
	idx=$(in_node cat /sys/class/net/"$BR"/ifindex)
	mac=$(in_node cat /sys/class/net/"$BR"/address)
	must_add "$(bridge_conf 1.0.0)" c2 eth0 "$p2"
	assert_eq "$idx" "$(in_node cat /sys/class/net/"$BR"/ifindex)" "bridge ifindex"
	assert_eq "$mac" "$(in_node cat /sys/class/net/"$BR"/address)" "bridge MAC is stable"
	assert_json '.interfaces[0].mac' "$mac"
	assert_json '.ips[0].address' 10.88.7.3/24
	assert_eq 2 "$(node_veths | wc -l)" "veth count"
}

test_version_command() {
	local p want
	for p in bridge host-local; do
		cni_call VERSION "{\"cniVersion\":\"0.3.1\",\"type\":\"$p\"}" "" "" ""
		assert_rc 0
		want='["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]'
		assert_jq "(.supportedVersions | contains($want))"
		# byte for byte: compact JSON plus a newline (Go's json.Encoder)
		local expect
		if is_weft; then
			expect='{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}'
		else
			expect='{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]}'
		fi
		cmp -s "$OUTF" <(printf '%s\n' "$expect") || fail "VERSION output: expected [$expect\\n], got [$(od -An -c "$OUTF" | tr -s ' ')]"
		# stdin is ignored, even garbage
		CNI_TYPE=$p cni_call VERSION "garbage" "" "" ""
		assert_rc 0
		cmp -s "$OUTF" <(printf '%s\n' "$expect") || fail "VERSION with garbage stdin"
	done
}

test_about_without_command() {
	local p
	for p in bridge host-local; do
		cni_call "" "{\"type\":\"$p\"}" c1 eth0 "" -CNI_COMMAND
		assert_rc 0
		assert_eq "" "$OUT" "stdout"
		assert_match "^CNI $p plugin " "$(head -n1 "$ERRF")" "about line"
		# weft's names itself and its build (tests/scripts/version.sh checks
		# it against each binary's --version).
		! is_weft || assert_match "^CNI $p plugin v[0-9.]+ \(weft, commit ([0-9a-f]{12}(-dirty)?|unknown)\)$" \
			"$(head -n1 "$ERRF")" "weft about line"
		assert_match "CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0" \
			"$(cat "$ERRF")" "about versions"
	done
}
