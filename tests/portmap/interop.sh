# shellcheck shell=bash
# portmap interop: Go (/usr/lib/cni/portmap v1.1.1) and weft on one node. Whatever one ADDs,
# the other CHECKs and DELs, leaving nothing behind. Always uses both portmaps (the bridge
# comes from the plugin set under test); skipped until weft's portmap is built.

# shellcheck source=tests/portmap/pm.bash
source "$(dirname "${BASH_SOURCE[0]}")/pm.bash"

_need_both() { need_bin "$WEFT_BIN/portmap" "$GO_BIN/portmap"; }

# pm_as IMPL CALL ARGS...: runs a cni_* helper with IMPL's portmap.
pm_as() {
	local impl=$1 saved=$MAIN_DIR rc=0
	shift
	local bridge_dir=$MAIN_DIR
	[[ $impl == go ]] && MAIN_DIR=$GO_BIN || MAIN_DIR=$WEFT_BIN
	# The bridge binary must come from the plugin set under test.
	[[ -x $MAIN_DIR/bridge ]] || MAIN_DIR=$bridge_dir
	log "### portmap=$impl"
	"$@" || rc=$?
	MAIN_DIR=$saved
	return $rc
}

_cross() { # ADD_IMPL DEL_IMPL
	local pod res conf before
	_need_both
	pm_as "$1" pm_warm "$DUAL_RANGES"
	pm_pod pod res c1 "$DUAL_RANGES"
	before=$(pm_state)
	conf=$(pm_conf 1.0.0 "$THREE_MAPS")
	pm_as "$1" pm_add "$conf" c1 "$pod" "$res"
	[[ -n $(nat_rules | grep "$(dn_chain "$NET" c1)") ]] || fail "no rules after $1 ADD"
	# The other implementation's CHECK (Go 1.1.1's CHECK is broken for this pod: #819).
	[[ $2 == weft ]] && pm_as weft must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	pm_as "$2" must_del "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_eq "" "$(pm_traces c1)" "traces of c1 after $1 ADD + $2 DEL"
	assert_state_unchanged "$before" "state after $1 ADD + $2 DEL"
}

THREE_MAPS='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
             {"hostPort":8053,"containerPort":53,"protocol":"udp"},
             {"hostPort":8083,"containerPort":83,"protocol":"tcp","hostIP":"192.168.77.1"}]'

test_pm_interop_go_add_weft_del() { _cross go weft; }
test_pm_interop_weft_add_go_del() { _cross weft go; }

# Go ADD with other entry rules (conditions) than the DEL's conf would make, then a weft DEL
# with neither prevResult nor portMappings: the jumps are found by target.
test_pm_interop_go_add_with_conditions_weft_bare_del() {
	local pod res conf before
	_need_both
	pm_as go pm_warm
	pm_pod pod res c1
	before=$(pm_state)
	conf=$(pm_conf 1.0.0 "$THREE_MAPS" '.conditionsV4 = ["!", "-s", "192.0.2.0/24"]')
	pm_as go pm_add "$conf" c1 "$pod" "$res"
	assert_match '! -s 192.0.2.0/24' "$(nat_rules | grep CNI-HOSTPORT-DNAT)"
	pm_as weft must_del "$(pm_conf 1.0.0 '[{"hostPort":1,"containerPort":1,"protocol":"udp"}]')" c1 eth0 ""
	assert_eq "" "$(pm_traces c1)" "traces of c1"
	assert_state_unchanged "$before" "state after Go ADD + weft DEL"
	pm_as weft must_del '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"portmap"}' c1 eth0 ""
}

# Containers of both implementations side by side, with traffic to each, DELs crossed.
test_pm_interop_mixed_containers() {
	local client p1 r1 p2 r2 p3 r3 before
	_need_both
	pm_client client
	pm_as go pm_warm
	before=$(pm_state)
	pm_pod p1 r1 c1
	pm_pod p2 r2 c2
	pm_pod p3 r3 c3
	pm_serve "$p1" 80 pod1
	pm_serve "$p2" 80 pod2
	pm_serve "$p3" 80 pod3
	pm_as go pm_add "$(pm_conf 1.0.0 '[{"hostPort":8081,"containerPort":80,"protocol":"tcp"}]')" c1 "$p1" "$r1"
	pm_as weft pm_add "$(pm_conf 1.0.0 '[{"hostPort":8082,"containerPort":80,"protocol":"tcp"}]')" c2 "$p2" "$r2"
	pm_as go pm_add "$(pm_conf 1.0.0 '[{"hostPort":8083,"containerPort":80,"protocol":"tcp"}]')" c3 "$p3" "$r3"
	expect_answer "$client" tcp "$NODE_IP" 8081 '^pod1 '
	expect_answer "$client" tcp "$NODE_IP" 8082 '^pod2 '
	expect_answer "$client" tcp "$NODE_IP" 8083 '^pod3 '
	expect_answer "$NODE" tcp 127.0.0.1 8082 '^pod2 10\.88\.7\.1$'
	pm_as weft must_del "$(pm_conf 1.0.0 '[{"hostPort":8081,"containerPort":80,"protocol":"tcp"}]')" c1 eth0 "$p1"
	expect_no_answer "$client" tcp "$NODE_IP" 8081
	expect_answer "$client" tcp "$NODE_IP" 8082 '^pod2 '
	pm_as go must_del "$(pm_conf 1.0.0 '[{"hostPort":8082,"containerPort":80,"protocol":"tcp"}]')" c2 eth0 "$p2"
	expect_answer "$client" tcp "$NODE_IP" 8083 '^pod3 '
	pm_as weft must_del '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"portmap"}' c3 eth0 ""
	assert_state_unchanged "$before" "state after all DELs"
}
