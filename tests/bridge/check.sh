# shellcheck shell=bash
# CHECK: passes on an intact attachment, fails when any piece of it is gone.

_setup_checked_pod() { # sets POD CONF RESULT
	new_pod POD
	CONF=$(bridge_conf 1.0.0 "$DUAL_RANGES")
	in_node sysctl -qw net.ipv6.conf.default.accept_dad=0
	must_add "$CONF" c1 eth0 "$POD"
	RESULT=$OUT
	must_check "$(with_prev "$CONF" "$RESULT")" c1 eth0 "$POD"
}

_check_fails() { # ERE
	cni_check "$(with_prev "$CONF" "$RESULT")" c1 eth0 "$POD"
	[[ $RC != 0 ]] || fail "CHECK passed on a broken attachment"
	assert_jq '.code | type == "number"'
	assert_msg "$1"
}

test_check_missing_prev_result() {
	_setup_checked_pod
	cni_check "$CONF" c1 eth0 "$POD"
	assert_error_w "7|999" 999 'prevResult'
}

test_check_missing_address() {
	_setup_checked_pod
	in_ns "$POD" ip addr del 10.88.7.2/24 dev eth0
	_check_fails '10\.88\.7\.2'
}

test_check_missing_v6_address() {
	_setup_checked_pod
	in_ns "$POD" ip addr del 2001:db8:7::2/64 dev eth0
	_check_fails '2001:db8:7::2'
}

test_check_missing_route() {
	_setup_checked_pod
	in_ns "$POD" ip route del default via "$GW4"
	_check_fails 'route|0\.0\.0\.0'
}

test_check_wrong_container_mac() {
	_setup_checked_pod
	in_ns "$POD" ip link set dev eth0 address 0a:58:0a:58:07:77
	_check_fails 'mac'
}

test_check_missing_host_veth() {
	_setup_checked_pod
	# deleting the host end deletes the pair
	in_node ip link del "$(jq -r '.interfaces[1].name' <<<"$RESULT")"
	_check_fails 'eth0|veth|not found'
}

test_check_host_veth_detached() {
	_setup_checked_pod
	in_node ip link set dev "$(jq -r '.interfaces[1].name' <<<"$RESULT")" nomaster
	_check_fails 'veth|bridge'
}

test_check_missing_reservation() {
	_setup_checked_pod
	rm -f "$DATA/$NET/10.88.7.2" "$DATA/$NET/2001:db8:7::2"
	_check_fails 'c1|10\.88\.7\.2|address'
}

test_check_bridge_mac_changed() {
	_setup_checked_pod
	in_node ip link set dev "$BR" address 0a:58:0a:58:07:78
	_check_fails 'mac'
}

test_check_wrong_sandbox() {
	local other
	_setup_checked_pod
	new_pod other
	cni_check "$(with_prev "$CONF" "$RESULT")" c1 eth0 "$other"
	[[ $RC != 0 ]] || fail "CHECK passed against another netns"
	assert_jq '.code | type == "number"'
}
