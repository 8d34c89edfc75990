# shellcheck shell=bash
# CNI 1.1 GC and STATUS (Go's flannel: no-ops). They need 1.1.0 delegates, which Go 1.1.1's
# bridge and host-local are not, hence weft-only.

# shellcheck source=tests/flannel/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

_gc() { # CONF VALID_IDS...
	local conf=$1 valid='[]' id
	shift
	for id in "$@"; do
		valid=$(jq -c --arg id "$id" '. + [{containerID: $id, ifname: "eth0"}]' <<<"$valid")
	done
	cni_call GC "$(jq -c --argjson v "$valid" '.["cni.dev/valid-attachments"] = $v' <<<"$conf")" \
		"" "" "" "${FL_V11_UNSET[@]}"
}

reservations() { ls -1 "$DATA/$FL_NET" 2>/dev/null | grep -vE '^(lock|last_reserved_ip\..*)$' | tr '\n' ' '; }

# Saved files of containers that are gone are removed (only this network's), and GC reaches
# the delegate (bridge -> host-local), which releases their addresses.
test_gc_removes_stale_saved_files_and_forwards() {
	weft_only "GC is CNI 1.1.0; Go 1.1.1 delegates stop at 1.0.0"
	local p1 p2 conf
	fl_setup
	conf=$(fl_conf 1.1.0)
	new_pod p1
	new_pod p2
	must_add "$conf" c1 eth0 "$p1"
	must_add "$conf" c2 eth0 "$p2"
	assert_eq "10.244.7.2 10.244.7.3 " "$(reservations)" "reservations before GC"
	# another flannel network sharing the dataDir, and a file nobody can parse
	printf '{"name":"othernet","type":"bridge"}' >"$(saved c9)"
	printf 'junk' >"$(saved c8)"
	_gc "$conf" c1
	assert_rc 0
	[[ -f $(saved c1) ]] || fail "live container's saved config removed"
	assert_no_saved c2
	[[ -f $(saved c9) ]] || fail "another network's saved config removed"
	[[ -f $(saved c8) ]] || fail "unparsable file removed"
	grep -q "removed the saved config of container c2" "$ERRF" || fail "GC did not log the removal"
	assert_eq "10.244.7.2 " "$(reservations)" "reservations after GC (c2's released by the delegate)"
	must_del "$conf" c1 eth0 "$p1"
}

# No live container: the delegate config comes from subnet.env; without subnet.env either,
# GC still removes the stale files but cannot tell the delegate anything.
test_gc_without_live_containers() {
	weft_only "GC is CNI 1.1.0; Go 1.1.1 delegates stop at 1.0.0"
	local p1 p2 conf
	fl_setup
	conf=$(fl_conf 1.1.0)
	new_pod p1
	new_pod p2
	must_add "$conf" c1 eth0 "$p1"
	_gc "$conf"
	assert_rc 0
	assert_no_saved c1
	assert_eq "" "$(reservations)" "reservations after GC (built from subnet.env)"
	must_add "$conf" c2 eth0 "$p2"
	rm -f "$SUBNET_ENV"
	_gc "$conf"
	assert_rc 0
	assert_no_saved c2
	grep -q "not forwarded to the delegate" "$ERRF" || fail "no log about the skipped forwarding"
	assert_eq "10.244.7.3 " "$(reservations)" "reservations (GC not forwarded)"
}

# GC without cni.dev/valid-attachments is refused (code 7) before anything is touched: it once
# removed the saved config of every live container of the network.
test_gc_without_valid_attachments_touches_nothing() {
	weft_only "GC is CNI 1.1.0; Go 1.1.1 delegates stop at 1.0.0"
	local p1 conf
	fl_setup
	conf=$(fl_conf 1.1.0)
	new_pod p1
	must_add "$conf" c1 eth0 "$p1"
	cni_call GC "$conf" "" "" "" "${FL_V11_UNSET[@]}"
	assert_error 7 '^GC needs cni.dev/valid-attachments'
	[[ -f $(saved c1) ]] || fail "live container's saved config removed"
	assert_eq "10.244.7.2 " "$(reservations)" "reservations after a refused GC"
	must_del "$conf" c1 eth0 "$p1"
}

test_gc_version_gate() {
	fl_setup
	_gc "$(fl_conf 1.0.0)"
	assert_error 1 'config version does not allow GC'
}

test_status() {
	weft_only "STATUS is CNI 1.1.0; Go 1.1.1 delegates stop at 1.0.0"
	local conf
	fl_setup
	conf=$(fl_conf 1.1.0)
	cni_call STATUS "$conf" "" "" "" "${FL_V11_UNSET[@]}"
	assert_rc 0
	assert_eq "" "$OUT" "STATUS stdout"
	# flanneld has not written subnet.env: the network is not available
	mv "$SUBNET_ENV" "$SUBNET_ENV.off"
	cni_call STATUS "$conf" "" "" "" "${FL_V11_UNSET[@]}"
	assert_error 50 "^flanneld has not written $SUBNET_ENV yet: the flannel network is not ready on this node \(open $SUBNET_ENV: no such file or directory\)"
	write_subnet_env "FLANNEL_MTU=1450"
	cni_call STATUS "$conf" "" "" "" "${FL_V11_UNSET[@]}"
	assert_error 50 "^flannel cannot use $SUBNET_ENV: $SUBNET_ENV is missing FLANNEL_NETWORK"
	mv "$SUBNET_ENV.off" "$SUBNET_ENV"
	# the delegate's STATUS counts: host-local's dataDir unusable
	printf 'x' >"$T/file"
	cni_call STATUS "$(jq -c --arg d "$T/file/data" '.ipam.dataDir = $d' <<<"$conf")" "" "" "" "${FL_V11_UNSET[@]}"
	assert_error 50 '^delegate bridge STATUS: '
	cni_call STATUS "$(fl_conf 1.0.0)" "" "" "" "${FL_V11_UNSET[@]}"
	assert_error 1 'config version does not allow STATUS'
}
