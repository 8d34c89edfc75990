# shellcheck shell=bash
# host-local's on-disk store, byte for byte (podman and Antrea read it):
#   <dataDir>/<net>/<ip>                 "<cid>\r\n<ifname>", no newline
#   <dataDir>/<net>/last_reserved_ip.<N> the last IP handed out by set N
#   <dataDir>/<net>/lock                 flock(2) target
# Mirrors host_local_test.go and backend/disk tests.

# Go v1.1.1 creates the files 0644; upstream HEAD (and weft) 0600.
ip_file_mode() { if is_weft; then echo 600; else echo 644; fi; }

# assert_file_bytes FILE EXPECTED_PRINTF_FORMAT
assert_file_bytes() {
	[[ -f $1 ]] || fail "missing file $1"
	if ! cmp -s "$1" <(printf "$2"); then
		fail "$1: expected bytes [$(printf "$2" | od -An -c | tr -s ' ')], got [$(od -An -c "$1" | tr -s ' ')]"
	fi
}

test_files_dual_stack() {
	local pod conf d
	new_pod pod
	conf=$(hl_conf 1.0.0 "$DUAL_RANGES")
	must_add "$conf" dummy eth0 "$pod"
	assert_go_layout
	# an IPAM result: no interfaces, no ips[].interface
	assert_json 'keys_unsorted | join(",")' "cniVersion,ips,dns"
	assert_json '[.ips[] | .address + "@" + .gateway] | join(" ")' \
		"10.88.7.2/24@$GW4 2001:db8:7::2/64@$GW6"
	assert_json '[.ips[] | has("interface")] | any' false
	d=$DATA/$NET
	assert_file_bytes "$d/10.88.7.2" 'dummy\r\neth0'
	assert_file_bytes "$d/2001:db8:7::2" 'dummy\r\neth0'
	assert_file_bytes "$d/last_reserved_ip.0" '10.88.7.2'
	assert_file_bytes "$d/last_reserved_ip.1" '2001:db8:7::2'
	assert_eq "$(ip_file_mode)" "$(stat -c %a "$d/10.88.7.2")" "mode of the IP file"
	assert_eq "$(ip_file_mode)" "$(stat -c %a "$d/last_reserved_ip.0")" "mode of last_reserved_ip.0"
	[[ -f $d/lock ]] || fail "no lock file"
	assert_eq 750 "$(stat -c %a "$d/lock")" "mode of lock"
	assert_eq 755 "$(stat -c %a "$d")" "mode of the network dir"
	# od -c view, for the log
	od -c "$d/10.88.7.2" >&2

	# CHECK finds the reservation, DEL removes both files
	must_check "$(with_prev "$conf" "$OUT")" dummy eth0 "$pod"
	must_del "$conf" dummy eth0 "$pod"
	assert_eq "" "$(ip_files)" "IP files after DEL"
	# last_reserved_ip.N stays, so the next ADD continues round robin
	assert_file_bytes "$d/last_reserved_ip.0" '10.88.7.2'
}

test_legacy_subnet_form_and_versions() {
	local pod v
	new_pod pod
	for v in 0.2.0 0.3.1 0.4.0; do
		must_add "$(hl_conf "$v")" "c${v//./}" eth0 "$pod"
		assert_json .cniVersion "$v"
		case $v in
		0.2.0) assert_json '.ip4.gateway' "$GW4" ;;
		*) assert_json '.ips[0].version' 4 ;;
		esac
	done
	assert_eq "10.88.7.2 10.88.7.3 10.88.7.4" "$(ip_files | sort -V | tr '\n' ' ' | sed 's/ $//')" "files"
}

test_duplicate_add_and_next_container() {
	local pod conf before
	new_pod pod
	conf=$(hl_conf 1.0.0)
	must_add "$conf" c1 eth0 "$pod"
	assert_json '.ips[0].address' 10.88.7.2/24
	before=$(snapshot)
	# same cid + ifname again: refused, nothing new reserved
	cni_add "$conf" c1 eth0 "$pod"
	assert_error_w "[0-9]+" 999 '10\.88\.7\.2 has been allocated to c1, duplicate allocation is not allowed'
	assert_unchanged "$before"
	# the next container gets .3
	must_add "$conf" c2 eth0 "$pod"
	assert_json '.ips[0].address' 10.88.7.3/24
	# same cid, another ifname is a different attachment
	must_add "$conf" c1 eth1 "$pod"
	assert_json '.ips[0].address' 10.88.7.4/24
	assert_file_bytes "$DATA/$NET/10.88.7.4" 'c1\r\neth1'
	# DEL of one attachment leaves the other
	must_del "$conf" c1 eth0 "$pod"
	assert_eq "10.88.7.3 10.88.7.4" "$(ip_files | sort -V | tr '\n' ' ' | sed 's/ $//')" "files"
	# round robin: the freed .2 is not reused before the range wraps
	must_add "$conf" c3 eth0 "$pod"
	assert_json '.ips[0].address' 10.88.7.5/24
}

test_del_id_only_file_and_unknown_id() {
	local pod conf d
	new_pod pod
	conf=$(hl_conf 1.0.0)
	must_add "$conf" c1 eth0 "$pod"
	d=$DATA/$NET
	# files written by old host-local versions hold only the container ID
	printf 'old' >"$d/10.88.7.9"
	must_del "$conf" old eth0 "$pod"
	[[ -e $d/10.88.7.9 ]] && fail "ID-only file not removed"
	# unknown IDs are fine
	must_del "$conf" unknown eth0 "$pod"
	[[ -f $d/10.88.7.2 ]] || fail "c1's file removed by a foreign DEL"
}

test_v6_compressed_names() {
	local pod conf
	new_pod pod
	conf=$(hl_conf 0.3.1 '.ipam.subnet = "2001:db8:7:0::/64" | .ipam.rangeStart = "2001:0db8:0007:0000:0000:0000:00ff:0000"')
	must_add "$conf" c1 eth0 "$pod"
	assert_json '.ips[0].address' 2001:db8:7::ff:0/64
	assert_json '.ips[0].gateway' 2001:db8:7::1
	assert_file_bytes "$DATA/$NET/2001:db8:7::ff:0" 'c1\r\neth0'
	assert_file_bytes "$DATA/$NET/last_reserved_ip.0" '2001:db8:7::ff:0'
}

test_range_end_wraps_and_skips_gateway() {
	local pod conf i
	new_pod pod
	conf=$(hl_conf 1.0.0 '.ipam.subnet = "10.88.7.0/29"')
	# .1 gateway, .2-.6 usable, .7 broadcast never handed out
	for i in 2 3 4 5 6; do
		must_add "$conf" "c$i" eth0 "$pod"
		assert_json '.ips[0].address' "10.88.7.$i/29"
	done
	cni_add "$conf" c7 eth0 "$pod"
	assert_error_w "999|11" 999 'no IP addresses available in range set: 10\.88\.7\.1-10\.88\.7\.6'
	must_del "$conf" c3 eth0 "$pod"
	must_add "$conf" c8 eth0 "$pod"
	assert_json '.ips[0].address' 10.88.7.3/29
}

test_range_start_end_and_gateway() {
	local pod conf
	new_pod pod
	conf=$(hl_conf 1.0.0 '.ipam |= (del(.subnet) | .ranges = [[
		{subnet: "10.88.7.0/24", rangeStart: "10.88.7.10", rangeEnd: "10.88.7.11", gateway: "10.88.7.254"},
		{subnet: "10.88.8.0/24", rangeStart: "10.88.8.20", rangeEnd: "10.88.8.20"}]])')
	must_add "$conf" c1 eth0 "$pod"
	assert_json '.ips[0].address + " " + .ips[0].gateway' "10.88.7.10/24 10.88.7.254"
	must_add "$conf" c2 eth0 "$pod"
	assert_json '.ips[0].address' 10.88.7.11/24
	# the end of one range continues into the next range of the set
	must_add "$conf" c3 eth0 "$pod"
	assert_json '.ips[0].address + " " + .ips[0].gateway' "10.88.8.20/24 10.88.8.1"
	assert_file_bytes "$DATA/$NET/last_reserved_ip.0" '10.88.8.20'
}

test_requested_ips() {
	local pod conf
	new_pod pod
	conf=$(hl_conf 1.0.0 "$DUAL_RANGES")
	# CNI_ARGS IP= (IP is a known key, no IgnoreUnknown needed)
	must_add "$conf" c1 eth0 "$pod" CNI_ARGS=IP=10.88.7.50
	assert_json '[.ips[].address] | join(" ")' "10.88.7.50/24 2001:db8:7::2/64"
	# args.cni.ips: one per set
	must_add "$(jq '.args.cni.ips = ["10.88.7.60", "2001:db8:7::60"]' <<<"$conf")" c2 eth0 "$pod"
	assert_json '[.ips[].address] | join(" ")' "10.88.7.60/24 2001:db8:7::60/64"
	# runtimeConfig.ips (capability "ips")
	must_add "$(jq '.runtimeConfig.ips = ["10.88.7.70"]' <<<"$conf")" c3 eth0 "$pod"
	assert_json '.ips[0].address' 10.88.7.70/24
	assert_file_bytes "$DATA/$NET/10.88.7.70" 'c3\r\neth0'
	# an IP already taken
	cni_add "$conf" c4 eth0 "$pod" CNI_ARGS=IP=10.88.7.50
	assert_error_w "999|11" 999 'requested IP address 10\.88\.7\.50 is not available in range set'
	# an IP that fits no set
	cni_add "$(jq '.args.cni.ips = ["10.99.0.5"]' <<<"$conf")" c5 eth0 "$pod"
	[[ $RC != 0 ]] || fail "requesting an IP outside every range must fail"
	assert_msg '10\.99\.0\.5'
	[[ -e $DATA/$NET/10.99.0.5 ]] && fail "out-of-range request reserved a file"
	assert_eq "" "$(cd "$DATA/$NET" && grep -l c5 -- * 2>/dev/null)" "files of c5"
}

test_cni_args_unknown_key() {
	local pod conf
	new_pod pod
	conf=$(hl_conf 1.0.0)
	cni_add "$conf" c1 eth0 "$pod" "CNI_ARGS=K8S_POD_NAME=x;IP=10.88.7.9"
	assert_error_w "4|7|999" 999 'unknown args.*K8S_POD_NAME'
	assert_eq "" "$(ip_files)" "files"
	must_add "$conf" c1 eth0 "$pod" "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.88.7.9"
	assert_json '.ips[0].address' 10.88.7.9/24
}

test_routes_and_dns_pass_through() {
	local pod conf
	new_pod pod
	printf 'nameserver 192.0.2.53\nnameserver 2001:db8::53\ndomain example.test\nsearch a.test b.test\noptions ndots:2\n' >"$T/resolv.conf"
	conf=$(hl_conf 1.0.0 '.ipam.routes = [{dst: "0.0.0.0/0"}, {dst: "192.168.0.0/16", gw: "10.88.7.254"}] | .ipam.resolvConf = "'"$T/resolv.conf"'"')
	must_add "$conf" c1 eth0 "$pod"
	assert_json '.routes | tojson' '[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.88.7.254"}]'
	assert_json '.dns | tojson' '{"nameservers":["192.0.2.53","2001:db8::53"],"domain":"example.test","search":["a.test","b.test"],"options":["ndots:2"]}'
}
