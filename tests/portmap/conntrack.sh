# shellcheck shell=bash
# portmap: stale UDP conntrack entries (plugins#123 on ADD, #1190 on DEL). A client keeps
# sending from the same source port; its conntrack entry still DNATs to the old pod until
# portmap deletes it. Checked with conntrack -L in the node netns.

# shellcheck source=tests/portmap/pm.bash
source "$(dirname "${BASH_SOURCE[0]}")/pm.bash"

UDP_MAP='[{"hostPort":8053,"containerPort":53,"protocol":"udp"}]'

# pod A mapped, one UDP flow from the client's port 40053; leaves POD_A, RES_A, CLIENT.
_flow_to_a() {
	pm_client CLIENT
	pm_pod POD_A RES_A c1
	pm_serve "$POD_A" 53 podA
	pm_add "$(pm_conf 1.0.0 "$UDP_MAP")" c1 "$POD_A" "$RES_A"
	expect_answer "$CLIENT" udp "$NODE_IP" 8053 '^podA ' 40053
	assert_match 'src=10\.88\.7\.2 ' "$(pm_ct 8053)" "conntrack entry towards pod A"
}

# ADD of a new pod on the same host port deletes the entry that still points at the old pod.
_flush_on_add() { # [ENV=VAL for the new pod's ADD]
	local pod_b res_b
	need_conntrack
	need_bin "$GO_BIN/portmap"
	_flow_to_a
	# Go's DEL does not flush: the entry survives and pod A would keep the flow.
	local saved=$MAIN_DIR
	MAIN_DIR=$GO_BIN
	[[ -x $MAIN_DIR/portmap ]] || fail "no Go portmap"
	must_del "$(with_prev "$(pm_conf 1.0.0 "$UDP_MAP")" "$RES_A")" c1 eth0 "$POD_A"
	MAIN_DIR=$saved
	assert_match 'src=10\.88\.7\.2 ' "$(pm_ct 8053)" "entry after Go's DEL"
	pm_pod pod_b res_b c2
	pm_serve "$pod_b" 53 podB
	must_add "$(with_prev "$(pm_conf 1.0.0 "$UDP_MAP")" "$res_b")" c2 eth0 "$pod_b" "$@"
	[[ $(pm_ct 8053) == *"src=10.88.7.2 "* ]] && fail "stale entry towards pod A survived ADD: $(pm_ct 8053)"
	expect_answer "$CLIENT" udp "$NODE_IP" 8053 '^podB ' 40053
	assert_match 'src=10\.88\.7\.3 ' "$(pm_ct 8053)" "new entry towards pod B"
}

test_pm_conntrack_flush_on_add() { _flush_on_add; }

test_pm_conntrack_flush_on_add_dump_path() {
	weft_only "weft's fallback for kernels without filtered conntrack flush"
	_flush_on_add WEFT_PORTMAP_CONNTRACK=dump
}

_flush_on_del() { # [ENV=VAL]
	weft_only "Go flushes only on ADD (plugins#1190)"
	need_conntrack
	_flow_to_a
	# DEL without portMappings: the UDP ports come from the rules it removes.
	must_del '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"portmap"}' c1 eth0 "" "$@"
	assert_eq "" "$(pm_ct 8053)" "conntrack entries for 8053 after DEL"
	# The flow no longer reaches the old pod.
	expect_no_answer "$CLIENT" udp "$NODE_IP" 8053
}

test_pm_conntrack_flush_on_del() { _flush_on_del; }
test_pm_conntrack_flush_on_del_dump_path() { _flush_on_del WEFT_PORTMAP_CONNTRACK=dump; }
