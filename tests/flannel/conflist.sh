# shellcheck shell=bash
# The stock kube-flannel conflists (conf/kube-flannel.conflist at 0.3.1, and the 1.0.0 one)
# run the way libcni runs a list: flannel ADD, then portmap ADD with prevResult = flannel's
# result and runtimeConfig.portMappings (the portMappings capability); DEL in reverse order
# (prevResult = the cached result, from 0.4.0 on). A TCP connection from the node netns to
# the node's address on the hostPort must reach the pod.
#
# portmap: PORTMAP_BIN if set (e.g. PORTMAP_BIN=/usr/lib/cni/portmap to check the test with
# Go's), else $IPAM_DIR/portmap (weft's under --plugins weft, Go's under --plugins go). The
# test is skipped while that binary does not exist.

# shellcheck source=tests/flannel/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

NODE_IP=192.0.2.10
HOST_PORT=8080

# Runs a cni_* helper with the portmap binary.
_portmap() {
	local saved_main=$MAIN_DIR rc=0
	MAIN_DIR=$(dirname "$PORTMAP")
	CNI_TYPE=$(basename "$PORTMAP") "$@" || rc=$?
	MAIN_DIR=$saved_main
	return "$rc"
}

tcp_reply() { # ADDR PORT: what the server sends, empty if nothing answers
	in_node timeout 5 busybox nc -w 2 "$1" "$2" </dev/null 2>/dev/null
}

_conflist_portmap() { # VERSION
	local v=$1 list pod fl pm result final i got
	fl_setup
	PORTMAP=${PORTMAP_BIN:-$IPAM_DIR/portmap}
	need_bin "$PORTMAP"
	list=$(stock_conflist "$v")
	assert_eq "$v" "$(jq -r .cniVersion "$list")" "conflist version"

	# the node's own address, as eth0 has on a real node (a veth: no dummy module everywhere)
	in_node ip link add wtnode0 type veth peer name wtnode1 || fail "cannot create the node link"
	in_node ip addr add "$NODE_IP/24" dev wtnode0
	in_node ip link set wtnode1 up
	in_node ip link set wtnode0 up
	new_pod pod
	# the pod serves on containerPort 80
	in_ns "$pod" busybox nc -ll -p 80 -e /bin/echo weft-portmap-ok &
	track_pid $!

	# plugin 0: flannel, exactly the list's entry plus this test's paths
	fl=$(fl_conf "$v")
	assert_jq '.delegate == {hairpinMode: true, isDefaultGateway: true}' "$fl"
	must_add "$fl" c1 eth0 "$pod"
	result=$OUT
	for i in 1 2 3 4 5; do
		got=$(in_node timeout 3 busybox nc -w 1 10.244.7.2 80 </dev/null 2>/dev/null) && break
		sleep 0.2
	done
	assert_eq weft-portmap-ok "$got" "direct connection to the pod"
	assert_eq "" "$(tcp_reply "$NODE_IP" "$HOST_PORT")" "hostPort before portmap ADD"

	# plugin 1: portmap, prevResult = flannel's result, the runtime's port mappings
	pm=$(list_plugin "$list" 1 | jq -c --argjson prev "$result" --argjson hp "$HOST_PORT" \
		'. + {runtimeConfig: {portMappings: [{hostPort: $hp, containerPort: 80, protocol: "tcp"}]},
		      prevResult: $prev}')
	assert_jq '.capabilities.portMappings == true and .name == "cbr0"' "$pm"
	_portmap must_add "$pm" c1 eth0 "$pod"
	final=$OUT
	assert_json .cniVersion "$v"
	assert_json '.ips[0].address' 10.244.7.2/24
	assert_eq weft-portmap-ok "$(tcp_reply "$NODE_IP" "$HOST_PORT")" "node $NODE_IP:$HOST_PORT -> pod:80"
	assert_eq "" "$(tcp_reply "$NODE_IP" $((HOST_PORT + 1)))" "an unmapped port"

	# DEL in reverse order; libcni sends the cached result as prevResult from 0.4.0 on
	local pmdel=$pm fldel=$fl
	if [[ $v != 0.3.1 ]]; then
		pmdel=$(with_prev "$pm" "$final")
		fldel=$(with_prev "$fl" "$final")
	else
		pmdel=$(jq -c 'del(.prevResult)' <<<"$pm")
	fi
	_portmap must_del "$pmdel" c1 eth0 "$pod"
	assert_eq "" "$(tcp_reply "$NODE_IP" "$HOST_PORT")" "hostPort after portmap DEL"
	must_del "$fldel" c1 eth0 "$pod"
	assert_no_saved c1
	pod_link_exists "$pod" eth0 && fail "pod eth0 left"
	in_node iptables-save -t nat | grep -E '^-A .*(10\.244\.7\.2|dport 8080)' && fail "portmap rules left"
	return 0
}

test_conflist_0_3_1_flannel_portmap() { _conflist_portmap 0.3.1; }
test_conflist_1_0_0_flannel_portmap() { _conflist_portmap 1.0.0; }

# Both conflists parse as libcni expects: one network, flannel first, portmap second with
# the portMappings capability, nothing else.
test_conflists_shape() {
	local f
	for f in "$REPO_ROOT/conf/kube-flannel.conflist" "$REPO_ROOT/conf/kube-flannel-1.0.0.conflist"; do
		jq -e '.name == "cbr0" and (.plugins | length == 2)
			and .plugins[0] == {type: "flannel", delegate: {hairpinMode: true, isDefaultGateway: true}}
			and .plugins[1] == {type: "portmap", capabilities: {portMappings: true}}' "$f" >/dev/null ||
			fail "$f is not the stock kube-flannel conflist"
	done
	assert_eq 0.3.1 "$(jq -r .cniVersion "$REPO_ROOT/conf/kube-flannel.conflist")" "stock version"
	assert_eq 1.0.0 "$(jq -r .cniVersion "$REPO_ROOT/conf/kube-flannel-1.0.0.conflist")" "1.0.0 variant"
}
