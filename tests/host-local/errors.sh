# shellcheck shell=bash
# host-local config errors, run directly (bridge would add its own veth
# leftovers in Go, see bridge/errors.sh).  Each asserts the code, that the
# message names the problem and that nothing was reserved.
# Go 1.1.1 reports these as plain errors (999); weft uses 7 (invalid config).

# _hl_err JQ_FILTER WEFT_CODES GO_CODE ERE [VERSION]
_hl_err() {
	local pod before
	new_pod pod
	before=$(snapshot)
	cni_add "$(hl_conf "${5:-1.0.0}" "$1")" c1 eth0 "$pod"
	assert_error_w "$2" "$3" "$4"
	assert_go_layout
	assert_unchanged "$before"
	assert_eq "" "$(ip_files)" "reservation files"
}

test_err_subnet_host_bits() {
	_hl_err '.ipam.subnet = "10.88.7.1/24"' 7 999 'host bits set.*10\.88\.7\.0'
}

test_err_subnet_slash31() {
	_hl_err '.ipam.subnet = "10.88.7.0/31"' 7 999 'Network 10\.88\.7\.0/31 too small to allocate from'
}

test_err_subnet_slash32() {
	_hl_err '.ipam.subnet = "10.88.7.0/32"' 7 999 'Network 10\.88\.7\.0/32 too small to allocate from'
}

test_err_subnet_v6_slash127() {
	_hl_err '.ipam.subnet = "2001:db8:7::/127"' 7 999 'too small to allocate from'
}

test_err_overlapping_ranges_in_set() {
	_hl_err '.ipam |= (del(.subnet) | .ranges = [[{subnet: "10.88.7.0/24"}, {subnet: "10.88.7.0/25"}]])' \
		7 999 'overlap'
}

test_err_overlapping_range_sets() {
	_hl_err '.ipam |= (del(.subnet) | .ranges = [[{subnet: "10.88.7.0/24"}], [{subnet: "10.88.7.0/25"}]])' \
		7 999 'range set 0 overlaps with 1'
}

test_err_mixed_families_in_set() {
	_hl_err '.ipam |= (del(.subnet) | .ranges = [[{subnet: "10.88.7.0/24"}, {subnet: "2001:db8:7::/64"}]])' \
		7 999 'mixed address families'
}

test_err_no_ranges() {
	_hl_err '.ipam |= del(.subnet)' 7 999 'no IP ranges specified'
}

test_err_range_start_outside_subnet() {
	_hl_err '.ipam.rangeStart = "10.88.9.10"' 7 999 'RangeStart 10\.88\.9\.10 not in network 10\.88\.7\.0/24'
}

test_err_bad_subnet_string() {
	_hl_err '.ipam.subnet = "10.88.7.0/33"' "6|7" 999 'invalid CIDR address: 10\.88\.7\.0/33'
}

test_err_two_v4_sets_below_0_3_0() {
	_hl_err '.ipam |= (del(.subnet) | .ranges = [[{subnet: "10.88.7.0/24"}], [{subnet: "10.88.8.0/24"}]])' \
		"1|7" 999 'CNI version 0\.2\.0 does not support more than 1 address per family' 0.2.0
}

test_err_exhausted_range() {
	local p1 p2 conf before
	new_pod p1
	new_pod p2
	# a /30: .1 is the gateway, .2 the only address
	conf=$(hl_conf 1.0.0 '.ipam.subnet = "10.88.7.0/30"')
	must_add "$conf" c1 eth0 "$p1"
	before=$(snapshot)
	cni_add "$conf" c2 eth0 "$p2"
	assert_error_w "999|11" 999 'no IP addresses available in range set: 10\.88\.7\.1-10\.88\.7\.2'
	assert_unchanged "$before"
}

test_err_exhausted_second_set_releases_first() {
	local pod conf
	new_pod pod
	conf=$(hl_conf 1.0.0 '.ipam |= (del(.subnet) | .ranges = [[{subnet: "10.88.7.0/24"}], [{subnet: "10.88.8.0/30"}]])')
	must_add "$conf" c1 eth0 "$pod"
	cni_add "$conf" c2 eth0 "$pod"
	assert_error_w "999|11" 999 'no IP addresses available in range set: 10\.88\.8\.1-10\.88\.8\.2'
	# c2 got .3 from set 0 first; it must have been released
	assert_eq "10.88.7.2 10.88.8.2" "$(ip_files | sort -V | tr '\n' ' ' | sed 's/ $//')" "files"
}

test_err_requested_gateway() {
	_hl_err '.args.cni.ips = ["10.88.7.1"]' "7|999|11" 999 'requested ip 10\.88\.7\.1 is subnet.s gateway'
}

test_err_bad_network_name_path_traversal() {
	local pod
	new_pod pod
	cni_add "$(hl_conf 1.0.0 '.name = "../x"')" c1 eth0 "$pod"
	assert_error 7 '^invalid characters found in network name'
	[[ -e $T/x || -e $DATA/../x ]] && fail "path traversal created a directory"
	return 0
}

test_err_data_dir_is_a_file() {
	local pod
	new_pod pod
	touch "$T/file"
	cni_add "$(hl_conf 1.0.0 '.ipam.dataDir = "'"$T/file"'/data"')" c1 eth0 "$pod"
	[[ $RC != 0 ]] || fail "ADD with an unusable dataDir must fail"
	assert_jq '.code | type == "number"'
	assert_msg 'not a directory|file'
}
