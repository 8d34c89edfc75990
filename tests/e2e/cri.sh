# shellcheck shell=bash
# containerd's CRI plugin (the kubelet's path), driven by tests/e2e/cri.py:
# RunPodSandbox / StopPodSandbox / RemovePodSandbox.  It calls our loopback
# (conf 0.3.1, ifname lo) in parallel with the network's conflist, sends
# CNI_ARGS with IgnoreUnknown and the K8S_* keys in random order, PascalCase
# portMappings (HostPort, ContainerPort, Protocol, HostIP), CNI_NETNS
# /var/run/netns/cni-<uuid>, and on RemovePodSandbox a second DEL with an
# EMPTY netns and no prevResult.  The sandbox ("pause") image is our busybox
# image, whose command serves HTTP on 8080.
# shellcheck source=tests/e2e/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

# calls_for PLUGIN CMD SANDBOX_ID: recorded calls of one sandbox.
calls_for() {
	local c
	spy_calls "$1" "$2" | while read -r c; do
		[[ $(spy_env "$c" CNI_CONTAINERID) == "$3" ]] && echo "$c"
	done
}

# no_rules_for ID: no iptables rule in the node names the sandbox.
no_rules_for() {
	local r
	r=$(in_node iptables-save | grep -F -- "$1")
	[[ -z $r ]] || fail "rules naming $1 remain:"$'\n'"$r"
}

test_cri_hostport() {
	local sid1 ip1 ns1 sid2 ip2 ns2 c args
	e2e_env_up
	need_plugins bridge host-local portmap loopback
	e2e_uplink
	e2e_spy bridge host-local portmap loopback
	bridge_portmap_conflist e2e-cri >"$CNI_CONF/10-e2e-cri.conflist"
	ctd_up cri
	cri_ready

	cri_run pod1 8084:8080
	sid1=$SID ip1=$POD_IP ns1=$POD_NETNS
	cri_run pod2
	sid2=$SID ip2=$POD_IP ns2=$POD_NETNS
	assert_match '^10\.88\.7\.[0-9]+$' "$ip1" "pod1 IP"
	assert_ne "$ip1" "$ip2" "pod2 IP"

	assert_eq pod1 "$(http_get "$CLIENT" "$NODE_IP" 8084)" "hostPort from outside the node"
	assert_eq pod1 "$(http_get "" "$NODE_IP" 8084)" "hostPort from the node"
	assert_eq pod1 "$(http_get "$ns2" "$NODE_IP" 8084)" "hostPort from another pod"
	assert_eq pod1 "$(http_get "$ns1" "$NODE_IP" 8084)" "hostPort from the pod itself (hairpin)"
	assert_eq pod1 "$(http_get "$ns2" "$ip1" 8080)" "pod2 -> pod1"
	[[ $(in_netns "$ns1" ip -o link show lo) == *"<LOOPBACK,UP"* ]] || fail "lo is down in pod1 (loopback plugin)"

	# What the CRI sent, as runtimes.md says (so this test exercises it).
	c=$(calls_for portmap ADD "$sid1")
	assert_jq '.runtimeConfig.portMappings == [{"HostPort":8084,"ContainerPort":8080,"Protocol":"tcp","HostIP":""}]' \
		"$(cat "$c.in")"
	assert_match '^/var/run/netns/cni-' "$(spy_env "$c" CNI_NETNS)" "CNI_NETNS"
	args=$(spy_env "$c" CNI_ARGS)
	for kv in IgnoreUnknown=1 K8S_POD_NAMESPACE=e2e K8S_POD_NAME=pod1 "K8S_POD_INFRA_CONTAINER_ID=$sid1" "K8S_POD_UID=uid-pod1-$$"; do
		[[ ";$args;" == *";$kv;"* ]] || fail "CNI_ARGS lacks $kv: $args"
	done
	c=$(calls_for loopback ADD "$sid1")
	assert_eq lo "$(spy_env "$c" CNI_IFNAME)" "loopback CNI_IFNAME"
	assert_json .cniVersion 0.3.1 "$(cat "$c.in")"

	"${CRI[@]}" stop "$sid1" || fail "StopPodSandbox pod1"
	assert_eq 1 "$(node_veths | grep -cvx wtup0)" "veths after stopping pod1"
	[[ -f $VARLIB_CNI/networks/e2e-cri/$ip1 ]] && fail "pod1's IP file remains"
	no_rules_for "$sid1"
	HTTP_TRIES=1 http_get "$CLIENT" "$NODE_IP" 8084 >/dev/null && fail "hostPort answers after StopPodSandbox"
	"${CRI[@]}" rm "$sid1" || fail "RemovePodSandbox pod1"
	# The second DEL: empty netns, no prevResult; every plugin succeeded.
	for p in loopback portmap bridge; do
		mapfile -t c < <(calls_for $p DEL "$sid1")
		assert_eq 2 "${#c[@]}" "$p DEL calls for pod1"
		assert_eq "$ns1" "$(spy_env "${c[0]}" CNI_NETNS)" "$p first DEL netns"
		assert_eq "" "$(spy_env "${c[1]}" CNI_NETNS)" "$p second DEL netns"
		assert_jq 'has("prevResult") | not' "$(cat "${c[1]}.in")"
		assert_eq 00 "$(cat "${c[0]}.rc")$(cat "${c[1]}.rc")" "$p DEL exit codes"
	done

	"${CRI[@]}" stop "$sid2" || fail "StopPodSandbox pod2"
	"${CRI[@]}" rm "$sid2" || fail "RemovePodSandbox pod2"
	assert_eq "" "$("${CRI[@]}" list)" "sandboxes left"
	no_rules_for "$sid2"
	assert_node_clean
}

# The stock flannel conflist under the CRI: the kubelet's path on a flannel
# node; and flanneld's absence in the CRI's error.
test_cri_flannel() {
	local out
	e2e_env_up
	need_plugins flannel bridge host-local portmap loopback
	e2e_uplink
	printf '%s\n' "$FLANNEL_CONFLIST" >"$CNI_CONF/10-flannel.conflist"
	printf '%s' "$FLANNEL_SUBNET_ENV" >"$RUN_FLANNEL/subnet.env"
	ctd_up cri
	cri_ready

	cri_run fpod 8087:8080
	assert_match '^10\.244\.7\.[0-9]+$' "$POD_IP" "pod IP from FLANNEL_SUBNET"
	[[ -f $VARLIB_CNI/flannel/$SID ]] || fail "no /var/lib/cni/flannel/$SID"
	assert_eq fpod "$(http_get "$CLIENT" "$NODE_IP" 8087)" "hostPort through flannel + portmap"
	assert_eq fpod "$(http_get "" "$POD_IP" 8080)" "pod from the node"
	"${CRI[@]}" stop "$SID" || fail "StopPodSandbox"
	"${CRI[@]}" rm "$SID" || fail "RemovePodSandbox"
	no_rules_for "$SID"
	assert_node_clean

	rm -f "$RUN_FLANNEL/subnet.env"
	out=$("${CRI[@]}" run nopod uid-nopod e2e nopod "/$CGROUP_PARENT" 2>&1) &&
		fail "RunPodSandbox succeeded without subnet.env: $out"
	log "CRI said: $out"
	assert_match "failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory" \
		"$out" "the CRI's error"
	assert_eq "" "$("${CRI[@]}" list)" "sandboxes left"
	assert_node_clean
}

# A plugin error (exhausted range) is in RunPodSandbox's error, and the
# failed sandbox leaves nothing (the CRI DELs it and removes its netns).
test_cri_plugin_error() {
	local out sid1
	e2e_env_up
	need_plugins bridge host-local portmap loopback
	bridge_portmap_conflist e2e-cri '.plugins[0].ipam.ranges = [[{subnet: "10.88.7.0/30"}]]' \
		>"$CNI_CONF/10-e2e-cri.conflist"
	ctd_up cri
	cri_ready
	cri_run pod1 8088:8080
	sid1=$SID
	assert_eq 10.88.7.2 "$POD_IP" "the /30's only address"

	out=$("${CRI[@]}" run pod2 uid-pod2 e2e pod2 "/$CGROUP_PARENT" 8089:8080 2>&1) &&
		fail "RunPodSandbox succeeded in a full range: $out"
	log "CRI said: $out"
	assert_match 'no IP addresses available in range set: 10\.88\.7\.1-10\.88\.7\.2' "$out" "the CRI's error"
	assert_eq "$sid1 READY" "$("${CRI[@]}" list)" "sandboxes after the failure"
	assert_eq 1 "$(node_veths | wc -l)" "veths after the failure"
	assert_eq 1 "$(in_env ls /run/netns | wc -l)" "netns after the failure"
	assert_eq "10.88.7.2" "$(ls "$VARLIB_CNI/networks/e2e-cri" | grep -vE '^(lock|last_reserved_ip)')" "IP files"
	in_node iptables-save | grep -q 'dport 8089' && fail "portmap rules of the failed sandbox remain"

	"${CRI[@]}" stop "$sid1" || fail "StopPodSandbox"
	"${CRI[@]}" rm "$sid1" || fail "RemovePodSandbox"
	assert_node_clean
}
