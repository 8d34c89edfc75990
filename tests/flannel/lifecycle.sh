# shellcheck shell=bash
# The saved delegate config (<dataDir>/<containerID>): DEL replays it without subnet.env,
# failed ADDs leave nothing, failed delegate DELs keep it for the retry.

# shellcheck source=tests/flannel/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# flanneld down (subnet.env gone) must not block pod deletion.
test_del_without_subnet_env() {
	local pod conf
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	rm -f "$SUBNET_ENV"
	must_del "$conf" c1 eth0 "$pod"
	assert_no_saved c1
	pod_link_exists "$pod" eth0 && fail "pod eth0 left"
	assert_eq 0 "$(pod_veth_count)" "host veths"
	[[ -z $(ls "$DATA/$FL_NET" 2>/dev/null | grep -v -e lock -e last_reserved) ]] || fail "IP not released"
}

# DEL of a container flannel never saw (or already deleted) succeeds, with or without the
# dataDir; DEL twice succeeds.
test_del_unknown_and_twice() {
	local pod conf
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_del "$conf" never eth0 "$pod"
	[[ ! -e $FLDATA ]] || fail "DEL created $FLDATA"
	must_add "$conf" c1 eth0 "$pod"
	must_del "$conf" c1 eth0 "$pod"
	must_del "$conf" c1 eth0 "$pod"
	# and without CNI_NETNS, as runtimes send for a vanished sandbox
	must_del "$conf" c1 eth0 "" -CNI_NETNS
	assert_no_saved c1
}

# DEL replays the saved bytes exactly: a changed subnet.env, delegate or host-local dataDir
# in the current conf do not matter.
test_del_replays_saved_bytes() {
	local pod conf other
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	[[ -f $DATA/$FL_NET/10.244.7.2 ]] || fail "no reservation"
	write_subnet_env "$(default_env | sed 's#10.244.7.1/24#10.244.9.1/24#')"
	other=$(fl_conf 1.0.0 ".ipam.dataDir = \"$T/elsewhere\" | .delegate.type = \"nosuchplugin\"")
	must_del "$other" c1 eth0 "$pod"
	[[ ! -e $DATA/$FL_NET/10.244.7.2 ]] || fail "the reservation in the saved dataDir was not released"
	pod_link_exists "$pod" eth0 && fail "pod eth0 left"
	assert_no_saved c1
}

# The delegate rejects its config: the saved file is removed and nothing is left.
test_add_failure_removes_saved_file() {
	local pod conf before
	fl_setup
	new_pod pod
	before=$(snapshot)
	conf=$(fl_conf 1.0.0 '.delegate.vlan = 5000')
	cni_add "$conf" c1 eth0 "$pod"
	assert_error '7|999' 'failed to delegate add: .*VLAN'
	assert_no_saved c1
	assert_unchanged "$before" "node state after the failed ADD"
	# a delegate that does not exist at all
	conf=$(fl_conf 1.0.0 '.delegate.type = "nosuchplugin"')
	cni_add "$conf" c2 eth0 "$pod"
	assert_error 999 'failed to delegate add: failed to find plugin "nosuchplugin" in path'
	assert_no_saved c2
}

# The delegate fails half way (host-local's range is exhausted after the veth exists): the
# failed ADD is undone with a delegate DEL, so no veth, reservation or saved file stays.
# (Go's flannel leaves the saved file; Go bridge 1.1.1 alone leaves the veth.)
test_add_failure_after_delegate_state_is_undone() {
	local p1 p2 conf
	fl_setup
	# a /30: .1 is the gateway, .2 the only pod address
	write_subnet_env "$(default_env | sed 's#10.244.7.1/24#10.244.7.1/30#')"
	conf=$(fl_conf 1.0.0)
	new_pod p1
	new_pod p2
	must_add "$conf" c1 eth0 "$p1"
	cni_add "$conf" c2 eth0 "$p2"
	assert_error '.*' 'failed to delegate add: .*no IP addresses available'
	assert_no_saved c2
	[[ -f $(saved c1) ]] || fail "c1's saved config went away"
	assert_eq 1 "$(pod_veth_count)" "host veths (only c1's)"
	pod_link_exists "$p2" eth0 && fail "pod 2 eth0 left"
	must_del "$conf" c1 eth0 "$p1"
	assert_eq 0 "$(pod_veth_count)" "host veths"
}

# A failing delegate DEL keeps the saved file (Go removes it, so the retry could never clean
# up); the retry then succeeds and removes it.
test_delegate_del_failure_keeps_saved_file() {
	local pod conf
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	mkdir -p "$T/empty"
	cni_del "$conf" c1 eth0 "$pod" "CNI_PATH=$T/empty"
	assert_error 999 'failed to delegate del: failed to find plugin "bridge"'
	assert_saved c1 "$(expected_delegate 1.0.0)"
	pod_link_exists "$pod" eth0 || fail "pod eth0 gone although DEL failed"
	must_del "$conf" c1 eth0 "$pod"
	assert_no_saved c1
	pod_link_exists "$pod" eth0 && fail "pod eth0 left after the retried DEL"
	return 0
}

# An unparsable saved file: DEL logs it and succeeds (as Go), keeping the file.
test_del_unparsable_saved_file() {
	local pod conf
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	mkdir -p "$FLDATA"
	printf 'not json' >"$(saved c9)"
	must_del "$conf" c9 eth0 "$pod"
	grep -q "unparsable saved config" "$ERRF" || fail "nothing logged: $(cat "$ERRF")"
	assert_eq "not json" "$(cat "$(saved c9)")" "the unparsable file"
	# a saved "type" that would leave CNI_PATH is not run either
	printf '{"type":"../../bin/false","name":"cbr0"}' >"$(saved c8)"
	must_del "$conf" c8 eth0 "$pod"
	grep -q "unparsable saved config" "$ERRF" || fail "nothing logged: $(cat "$ERRF")"
}

# ADD saves before delegating: while the delegate runs, the file is already there. When the
# delegate then dies, the ADD fails and the file goes.
test_saved_before_delegating() {
	local pod conf pid i
	fl_setup
	mkdir -p "$T/bin"
	cat >"$T/bin/slowplugin" <<-EOF
		#!/bin/sh
		cat >/dev/null
		[ "\$CNI_COMMAND" = ADD ] || exit 0
		echo \$\$ >"$T/slow.pid"
		exec sleep 30
	EOF
	chmod +x "$T/bin/slowplugin"
	conf=$(fl_conf 1.0.0 '.delegate.type = "slowplugin"')
	new_pod pod
	cni_add "$conf" c1 eth0 "$pod" "CNI_PATH=$T/bin" &
	pid=$!
	track_pid "$pid"
	for i in $(seq 1 50); do
		[[ -s $T/slow.pid ]] && break
		sleep 0.1
	done
	[[ -s $T/slow.pid ]] || fail "the delegate did not start"
	[[ -f $(saved c1) ]] || fail "nothing saved while the delegate runs"
	assert_jq '.type == "slowplugin" and .name == "cbr0"' "$(cat "$(saved c1)")"
	kill "$(cat "$T/slow.pid")"
	wait "$pid"
	assert_no_saved c1
}
