# shellcheck shell=bash
# CNI 1.1.0 GC and STATUS for host-local (upstream has neither: plugins#1047,
# #1013).  Go v1.1.1 stops at cniVersion 1.0.0, so these are weft-only.

# libcni sends GC and STATUS without a container, netns or ifname
_v11_unset=(-CNI_CONTAINERID -CNI_NETNS -CNI_IFNAME)

_gc() { # CONF VALID_JSON
	cni_call GC "$(jq --argjson v "$2" '.["cni.dev/valid-attachments"] = $v' <<<"$1")" "" "" "" "${_v11_unset[@]}"
}

test_host_local_gc() {
	weft_only "GC is CNI 1.1.0 (Go v1.1.1 supports up to 1.0.0, upstream host-local has no GC)"
	local pod conf
	new_pod pod
	conf=$(hl_conf 1.1.0 "$DUAL_RANGES")
	must_add "$conf" c1 eth0 "$pod" # .2
	must_add "$conf" c2 eth0 "$pod" # .3
	must_add "$conf" c1 eth1 "$pod" # .4
	must_add "$conf" c3 eth0 "$pod" # .5
	_gc "$conf" '[{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c3", "ifname": "eth0"}]'
	assert_rc 0
	assert_eq "" "$OUT" "GC stdout"
	assert_eq "10.88.7.2 10.88.7.5 2001:db8:7::2 2001:db8:7::5" "$(ip_files | sort | tr '\n' ' ' | sed 's/ $//')" "files kept"
	[[ -f $DATA/$NET/lock && -f $DATA/$NET/last_reserved_ip.0 && -f $DATA/$NET/last_reserved_ip.1 ]] ||
		fail "GC removed lock or last_reserved_ip.N"
	assert_eq "10.88.7.5" "$(cat "$DATA/$NET/last_reserved_ip.0")" "last_reserved_ip.0 untouched"
	# the kept attachments still CHECK
	must_check "$(with_prev "$conf" '{"cniVersion":"1.1.0","ips":[{"address":"10.88.7.2/24"}]}')" c1 eth0 "$pod"
	# an empty list removes everything
	_gc "$conf" '[]'
	assert_rc 0
	assert_eq "" "$(ip_files)" "files after GC of everything"
	# GC of a network that never allocated anything is fine
	_gc "$(jq '.name = "othernet"' <<<"$conf")" '[]'
	assert_rc 0
}

test_host_local_gc_version_gate() {
	weft_only "GC is CNI 1.1.0"
	local pod
	new_pod pod
	must_add "$(hl_conf 1.0.0)" c1 eth0 "$pod"
	_gc "$(hl_conf 1.0.0)" '[]'
	assert_error 1 '^config version does not allow GC'
	assert_eq "10.88.7.2" "$(ip_files)" "files"
}

test_host_local_gc_bad_attachments() {
	weft_only "GC is CNI 1.1.0"
	local pod
	new_pod pod
	must_add "$(hl_conf 1.1.0)" c1 eth0 "$pod"
	cni_call GC "$(hl_conf 1.1.0 '.["cni.dev/valid-attachments"] = "nope"')" "" "" "" "${_v11_unset[@]}"
	assert_error "6|7" '.'
	assert_eq "10.88.7.2" "$(ip_files)" "a bad GC request must delete nothing"
}

test_host_local_gc_without_valid_attachments() {
	weft_only "GC is CNI 1.1.0"
	local pod
	new_pod pod
	must_add "$(hl_conf 1.1.0)" c1 eth0 "$pod"
	cni_call GC "$(hl_conf 1.1.0)" "" "" "" "${_v11_unset[@]}"
	assert_error 7 '^GC needs cni.dev/valid-attachments'
	assert_eq "10.88.7.2" "$(ip_files)" "a GC without the list must delete nothing"
}

test_host_local_status() {
	weft_only "STATUS is CNI 1.1.0 (Go v1.1.1 supports up to 1.0.0)"
	cni_call STATUS "$(hl_conf 1.1.0)" "" "" "" "${_v11_unset[@]}"
	assert_rc 0
	assert_eq "" "$OUT" "STATUS stdout"
	# dataDir below a regular file: cannot ever allocate
	touch "$T/file"
	cni_call STATUS "$(hl_conf 1.1.0 '.ipam.dataDir = "'"$T/file/data"'"')" "" "" "" "${_v11_unset[@]}"
	assert_error 50 '.'
	# a dataDir that cannot be created (below /proc) is just as unusable
	cni_call STATUS "$(hl_conf 1.1.0 '.ipam.dataDir = "/proc/version/wtst"')" "" "" "" "${_v11_unset[@]}"
	assert_error 50 '.'
	cni_call STATUS "$(hl_conf 1.0.0)" "" "" "" "${_v11_unset[@]}"
	assert_error 1 '^config version does not allow STATUS'
}
