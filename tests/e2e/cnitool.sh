# shellcheck shell=bash
# cnitool (libcni 1.1.2, Debian's, driven by tests/e2e/cnitool/main.go) on
# the stock flannel conflist and on a bridge + portmap conflist: ADD, CHECK,
# DEL, DEL again; host ports, hairpin; plugin errors in cnitool's message.
# cnitool runs in the node (private mount namespace + node netns) and sees
# only our plugins (CNI_PATH=/opt/cni/bin, /usr/lib/cni hidden).
# shellcheck source=tests/e2e/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

# cnitool_run CMD NET NETNS [VAR=VAL...]: sets RC, OUT (stdout), ERR (stderr).
cnitool_run() {
	local cmd=$1 net=$2 netns=$3
	shift 3
	in_env env NETCONFPATH=/etc/cni/net.d CNI_PATH=/opt/cni/bin "$@" \
		"$CNITOOL" "$cmd" "$net" "$netns" >"$T/cnitool.out" 2>"$T/cnitool.err"
	RC=$?
	OUT=$(cat "$T/cnitool.out")
	ERR=$(cat "$T/cnitool.err")
	log "cnitool $cmd $net $netns: rc=$RC ${ERR:0:300}"
}

must_cnitool() {
	cnitool_run "$@"
	[[ $RC == 0 ]] || fail "cnitool $1 $2 failed (rc=$RC): $ERR"
}

# The container id cnitool derives from the netns path.
cnitool_cid() { printf 'cnitool-%s' "$(printf '%s' "$1" | sha512sum | cut -c1-20)"; }

# ip_file_owner NET IP: the container id line of host-local's file.
ip_file_owner() { head -n1 "$VARLIB_CNI/networks/$1/$2" 2>/dev/null | tr -d '\r'; }

test_cnitool_bridge_portmap() {
	local pod ip cid www=$T/www calls prev
	local caps='{"portMappings":[{"hostPort":8083,"containerPort":8080,"protocol":"tcp"}]}'
	e2e_env_up
	need_plugins bridge host-local portmap
	e2e_build_cnitool
	e2e_uplink
	e2e_spy bridge host-local portmap
	bridge_portmap_conflist e2e-bp >"$CNI_CONF/10-e2e-bp.conflist"
	env_pod pod
	cid=$(cnitool_cid "$pod")
	mkdir -p "$www" && echo pod-one >"$www/index.html"

	# CNI_ARGS in a random order, with unknown keys under IgnoreUnknown
	# (not first), as containerd's CRI sends them.
	# CAP_ARGS on every call, as a runtime passes the same capability args
	# to ADD, CHECK and DEL (Go's portmap does nothing on a DEL without them).
	must_cnitool add e2e-bp "$pod" CAP_ARGS="$caps" \
		CNI_ARGS='K8S_POD_NAME=p1;FOO=bar;IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_UID=u1'
	ip=$(result_ip4)
	assert_match '^10\.88\.7\.[0-9]+$' "$ip" "pod IP"
	assert_json '.ips[0].gateway' 10.88.7.1
	assert_eq "$cid" "$(ip_file_owner e2e-bp "$ip")" "host-local file of $ip"
	[[ $(in_netns "$pod" ip -4 -o addr show eth0) == *"$ip/24"* ]] || fail "eth0 in the pod lacks $ip"

	serve "$pod" "$www"
	assert_eq pod-one "$(http_get "$CLIENT" "$NODE_IP" 8083 /)" "host port from outside (PREROUTING)"
	assert_eq pod-one "$(http_get "" "$NODE_IP" 8083 /)" "host port from the node (OUTPUT)"
	assert_eq pod-one "$(http_get "$pod" "$NODE_IP" 8083 /)" "host port from the pod itself (hairpin)"

	cnitool_run check e2e-bp "$pod" CAP_ARGS="$caps"
	if is_weft; then
		assert_eq 0 "$RC" "CHECK exit code"
	else
		# Go 1.1.1's portmap CHECK looks for the v6 DNAT chain of a v4-only pod.
		assert_match 'could not check ipv6 dnat' "$ERR" "Go portmap's CHECK error"
	fi
	must_cnitool del e2e-bp "$pod" CAP_ARGS="$caps"
	assert_node_clean
	HTTP_TRIES=1 http_get "$CLIENT" "$NODE_IP" 8083 / >/dev/null && fail "host port still answers after DEL"
	# DEL again: libcni's cache is gone, so no prevResult this time.
	must_cnitool del e2e-bp "$pod" CAP_ARGS="$caps"
	assert_node_clean

	# What libcni sent: camelCase port mappings, CNI_ARGS verbatim, the
	# cached prevResult on the first DEL only.
	calls=$(spy_calls portmap ADD)
	assert_jq '.runtimeConfig.portMappings == [{"hostPort":8083,"containerPort":8080,"protocol":"tcp"}]' \
		"$(cat "$calls.in")"
	assert_eq 'K8S_POD_NAME=p1;FOO=bar;IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_UID=u1' \
		"$(spy_env "$calls" CNI_ARGS)" "CNI_ARGS"
	assert_eq "$pod" "$(spy_env "$calls" CNI_NETNS)" "CNI_NETNS"
	mapfile -t calls < <(spy_calls bridge DEL)
	assert_eq 2 "${#calls[@]}" "bridge DEL calls"
	prev=$(jq -c '.prevResult.ips[0].address' "${calls[0]}.in")
	assert_eq "\"$ip/24\"" "$prev" "prevResult of the first DEL"
	assert_jq 'has("prevResult") | not' "$(cat "${calls[1]}.in")"

	# A runtime that lost the capability args: DEL without portMappings.
	# weft's portmap finds the rules by container id; Go 1.1.1's does
	# nothing and leaves the DNAT chain behind.
	must_cnitool add e2e-bp "$pod" CAP_ARGS="$caps"
	must_cnitool del e2e-bp "$pod"
	if is_weft; then
		assert_node_clean
	else
		in_node iptables-save -t nat | grep -q "dport 8083" || fail "expected Go's portmap to leave its rules"
	fi
}

# The stock flannel conflist as shipped (cniVersion 0.3.1) and as bumped
# to 1.0.0 (flannel PR #2526).
test_cnitool_flannel() {
	local pod ip cid www=$T/www saved v
	local caps='{"portMappings":[{"hostPort":8086,"containerPort":8080,"protocol":"tcp"}]}'
	e2e_env_up
	need_plugins flannel bridge host-local portmap
	e2e_build_cnitool
	e2e_uplink
	printf '%s' "$FLANNEL_SUBNET_ENV" >"$RUN_FLANNEL/subnet.env"
	env_pod pod
	cid=$(cnitool_cid "$pod")
	mkdir -p "$www" && echo flannel-pod >"$www/index.html"
	serve "$pod" "$www"

	for v in 0.3.1 1.0.0; do
		jq --arg v $v '.cniVersion = $v' <<<"$FLANNEL_CONFLIST" >"$CNI_CONF/10-flannel.conflist"
		must_cnitool add cbr0 "$pod" CAP_ARGS="$caps"
		ip=$(result_ip4)
		assert_match '^10\.244\.7\.[0-9]+$' "$ip" "pod IP from FLANNEL_SUBNET"
		assert_json .cniVersion $v
		assert_eq "$cid" "$(ip_file_owner cbr0 "$ip")" "host-local file in /var/lib/cni/networks/cbr0"
		# flannel's delegate: mtu from FLANNEL_MTU, isGateway, the route to
		# FLANNEL_NETWORK, ipMasq = !FLANNEL_IPMASQ (flanneld masquerades).
		saved=$VARLIB_CNI/flannel/$cid
		[[ -f $saved ]] || fail "flannel did not save the delegate conf in /var/lib/cni/flannel/$cid"
		assert_jq '.type == "bridge" and .mtu == 1450 and .ipMasq == false and .isGateway == true and .name == "cbr0"' \
			"$(cat "$saved")"
		[[ $(in_netns "$pod" ip -o link show eth0) == *"mtu 1450 "* ]] || fail "pod eth0 mtu is not 1450"
		[[ $(in_netns "$pod" ip route show 10.244.0.0/16) == *"via 10.244.7.1"* ]] ||
			fail "no route to FLANNEL_NETWORK in the pod: $(in_netns "$pod" ip route)"
		[[ $(in_node ip -4 -o addr show cni0) == *10.244.7.1/24* ]] || fail "cni0 lacks 10.244.7.1/24"
		in_node iptables-save -t nat | grep -q -- "-s $ip/32 .*-j CNI-" &&
			fail "bridge masquerades although FLANNEL_IPMASQ=true"
		assert_eq flannel-pod "$(http_get "$CLIENT" "$NODE_IP" 8086 /)" "host port through the flannel conflist ($v)"

		cnitool_run check cbr0 "$pod" CAP_ARGS="$caps"
		if [[ $v == 0.3.1 ]]; then
			# libcni itself refuses CHECK below 0.4.0, before any plugin runs.
			assert_match 'configuration version "0.3.1" does not support the CHECK command' "$ERR" "CHECK at 0.3.1"
		else
			assert_eq 0 "$RC" "CHECK at $v: $ERR"
		fi
		must_cnitool del cbr0 "$pod" CAP_ARGS="$caps"
		assert_node_clean
		must_cnitool del cbr0 "$pod" CAP_ARGS="$caps"
		assert_node_clean
	done

	# flanneld not running: the runtime's error carries flannel's message.
	rm -f "$RUN_FLANNEL/subnet.env"
	cnitool_run add cbr0 "$pod"
	assert_ne 0 "$RC" "cnitool add without subnet.env"
	assert_match "failed to load flannel 'subnet.env' file: open /run/flannel/subnet.env: no such file or directory" \
		"$ERR" "cnitool's error"
	assert_node_clean
}

# Plugin errors show up in cnitool's own error message, and a failed ADD
# leaves nothing behind.
test_cnitool_plugin_errors() {
	local pod1 pod2 ip
	e2e_env_up
	need_plugins bridge host-local portmap
	e2e_build_cnitool
	# A /30: host-local can hand out 10.88.7.2 only (.1 is the gateway).
	bridge_portmap_conflist tiny '.plugins[0].ipam.ranges = [[{subnet: "10.88.7.0/30"}]]' \
		>"$CNI_CONF/10-tiny.conflist"
	bridge_portmap_conflist badvlan '.plugins[0].vlan = 5000 | .plugins[0].bridge = "cni1"' \
		>"$CNI_CONF/20-badvlan.conflist"
	env_pod pod1
	env_pod pod2

	must_cnitool add tiny "$pod1"
	ip=$(result_ip4)
	assert_eq 10.88.7.2 "$ip" "only address of the /30"
	cnitool_run add tiny "$pod2"
	assert_ne 0 "$RC" "ADD in an exhausted range"
	assert_match 'no IP addresses available in range set: 10\.88\.7\.1-10\.88\.7\.2' "$ERR" "cnitool's error"
	# Go 1.1.1 leaves the veth of a failed ADD behind (see tests/README.md).
	if is_weft; then
		assert_eq 1 "$(node_veths | grep -cvx wtup0)" "veths after the failed ADD"
	fi
	assert_eq "$ip" "$(ls "$VARLIB_CNI/networks/tiny" | grep -vE '^(lock|last_reserved_ip)')" "IP files"
	must_cnitool del tiny "$pod2"

	cnitool_run add badvlan "$pod2"
	assert_ne 0 "$RC" "ADD with vlan 5000"
	assert_match 'invalid VLAN ID 5000' "$ERR" "cnitool's error"

	must_cnitool del tiny "$pod1"
	assert_node_clean
}
