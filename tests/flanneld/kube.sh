# shellcheck shell=bash
# flanneld's Kubernetes subnet manager (--kube-subnet-mgr) against the test
# API server (tests/kube/apiserver.py, proven against kubectl in
# tests/kube/apiserver.sh). The server runs in the underlay netns on
# 10.99.0.254:6443; each cluster node N is Node "nodeN" with podCIDR
# 10.244.N.0/24 and runs weft flanneld with NODE_NAME=nodeN.
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"
KAPI_ADDR=$FL_UNDERLAY_IP
# shellcheck source=tests/kube/helpers.bash
source "$TESTS_DIR/kube/helpers.bash"

KFL_P=flannel.alpha.coreos.com

# kfl_cluster [NET_CONF_JSON]: underlay, API server, net-conf.json.
kfl_cluster() {
	[[ -x $FLANNELD ]] || skip "flanneld not built ($FLANNELD)"
	kapi_need
	fl_underlay
	kapi_start --bookmark-interval 0 ${KFL_KAPI_ARGS:-}
	local cfg=${1:-}
	[[ -n $cfg ]] || cfg='{"Network":"'$FL_NET'","Backend":{"Type":"vxlan"}}'
	printf '%s\n' "$cfg" >"$T/net-conf.json"
}

# kfl_node N [POD_CIDR|none]: the netns and the Node object.
kfl_node() {
	local n=$1 cidr=${2:-10.244.$1.0/24}
	fl_node "$n"
	if [[ $cidr == none ]]; then
		kapi_node "node$n"
	else
		kapi_node "node$n" ".spec.podCIDR=\"$cidr\" | .spec.podCIDRs=[\"$cidr\"]"
	fi
}

# kfl_start N [ARGS...]: flanneld in kube mode on node N (not waiting).
kfl_start() {
	local n=$1
	shift
	FL_ENV="NODE_NAME=node$n ${KFL_ENV:-}" fl_start "$n" --kube-subnet-mgr --kube-api-url="$KAPI_URL" \
		--net-config-path="$T/net-conf.json" "$@"
}

kfl_up() { # N [ARGS...]
	kfl_start "$@"
	fl_wait_up "$1"
}

# kfl_ann N KEY: node N's annotation <prefix>/KEY.
kfl_ann_is() { [[ $(kfl_ann "$1" "$2") == "$3" ]]; } # N KEY VALUE
kfl_ann() { kapi_get "node$1" | jq -r --arg k "$KFL_P/$2" '.metadata.annotations[$k] // empty'; }

# kfl_ghost NAME CIDR IP MAC [TYPE]: a Node whose annotations are what Go
# flanneld writes, with no agent behind it.
kfl_ghost() {
	local name=$1 cidr=$2 ip=$3 mac=$4 type=${5:-vxlan}
	kapi_node "$name" ".spec.podCIDR=\"$cidr\" | .spec.podCIDRs=[\"$cidr\"] | .metadata.annotations={
		\"$KFL_P/backend-data\": \"{\\\"VNI\\\":1,\\\"VtepMAC\\\":\\\"$mac\\\"}\",
		\"$KFL_P/backend-type\": \"$type\", \"$KFL_P/kube-subnet-manager\": \"true\",
		\"$KFL_P/public-ip\": \"$ip\", \"node.alpha.kubernetes.io/ttl\": \"0\"}"
}

# Node N has the three entries for a peer (subnet, endpoint, MAC).
kfl_has_peer() { # N SUBNET IP MAC
	local n=$1 sn=$2 ip=$3 mac=$4
	fl_routes "$n" | grep -qx "$sn via ${sn%/*} onlink *" &&
		fl_neighs "$n" | grep -q "^${sn%/*} lladdr $mac PERMANENT" &&
		fl_fdbs "$n" | grep -q "^$mac dst $ip self permanent"
}
kfl_has_node() { kfl_has_peer "$1" "$(fl_subnet "$2")" "10.99.0.$2" "$(fl_mac "$2")"; } # N M
kfl_cond() { kapi_get "node$1" | jq -e '.status.conditions[]? | select(.type == "NetworkUnavailable")'; }
kfl_ready() { [[ $(fl_http_status 10257 /readyz) == 200 ]]; }
kfl_no_peer() { # N SUBNET
	! fl_routes "$1" | grep -q "^$2 " && ! fl_neighs "$1" | grep -q "^${2%/*} "
}

test_kube_three_nodes() {
	kfl_cluster
	local n
	for n in 1 2 3; do kfl_node $n; done
	for n in 1 2 3; do kfl_up $n --ip-masq; done
	# subnet.env from the podCIDR, as Go writes it.
	assert_eq "FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.2.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true" "$(cat "$(fl_env 2)")" "subnet.env of node 2"
	# The annotations, byte for byte what Go flanneld writes.
	assert_eq "{\"VNI\":1,\"VtepMAC\":\"$(fl_mac 1)\"}" "$(kfl_ann 1 backend-data)" "backend-data"
	assert_eq vxlan "$(kfl_ann 1 backend-type)" "backend-type"
	assert_eq 10.99.0.1 "$(kfl_ann 1 public-ip)" "public-ip"
	assert_eq true "$(kfl_ann 1 kube-subnet-manager)" "kube-subnet-manager"
	assert_eq "" "$(kfl_ann 1 backend-v6-data)" "no backend-v6-data on a v4 cluster"
	# Written through nodes/status as a strategic merge patch with only the changed keys.
	local patch
	patch=$(kapi_requests 'map(select(.method == "PATCH" and .path == "/api/v1/nodes/node1/status")) | .[0]')
	assert_json .contentType application/strategic-merge-patch+json "$patch"
	assert_eq "[\"$KFL_P/backend-data\",\"$KFL_P/backend-type\",\"$KFL_P/kube-subnet-manager\",\"$KFL_P/public-ip\"]" \
		"$(jq -c '.body | fromjson | .metadata.annotations | keys' <<<"$patch")" "keys of the annotation patch"
	# The condition, once the peers are listed.
	wait_for 10 "NetworkUnavailable condition on node 3" kfl_cond 3
	cond=$(kapi_get node3 | jq -c '.status.conditions[] | select(.type == "NetworkUnavailable")')
	assert_json .status False "$cond"
	assert_json .reason FlannelIsUp "$cond"
	assert_json .message "Flannel is running on this node" "$cond"
	assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(jq -r .lastHeartbeatTime <<<"$cond")" "time format"
	# Per-peer entries, and pods across nodes.
	wait_for 5 "node 1 programs its peers" fl_peers_ok 1 2 3
	wait_for 5 "node 2 programs its peers" fl_peers_ok 2 1 3
	wait_for 5 "node 3 programs its peers" fl_peers_ok 3 1 2
	local a b c
	fl_pod a 1 pa
	fl_pod b 2 pb
	fl_pod c 3 pc
	ping_ok "${FL_POD_NS[pa]}" "$b"
	ping_ok "${FL_POD_NS[pb]}" "$c"
	ping_ok "${FL_POD_NS[pc]}" "$a"
	# Calls a node makes: no writes to the main resource, one list, watches with bookmarks.
	assert_eq 0 "$(kapi_requests 'map(select(.method == "PATCH" and (.path | endswith("/status") | not))) | length')" "patches outside nodes/status"
	assert_match 'allowWatchBookmarks=true' "$(kapi_requests 'map(select(.query | test("watch=true"))) | .[0].query')" "watch query"
}

test_kube_go_peer_and_bad_input() {
	kfl_cluster
	kfl_node 1
	kfl_node 2
	kfl_up 1
	kfl_up 2
	wait_for 5 "node 1 programs node 2" fl_peers_ok 1 2
	# A node written the way Go flanneld writes it, with no agent behind it.
	kfl_ghost ghost 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91
	wait_for 5 "node 1 programs the Go-written node" kfl_has_peer 1 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91
	wait_for 5 "node 2 programs the Go-written node" kfl_has_peer 2 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91
	# Bad input on other nodes: logged, skipped, no crash, no good peer lost.
	kapi_node bad-json '.spec.podCIDR="10.244.20.0/24" | .metadata.annotations={"'$KFL_P'/kube-subnet-manager":"true","'$KFL_P'/backend-type":"vxlan","'$KFL_P'/public-ip":"10.99.0.20","'$KFL_P'/backend-data":"{not json"}'
	kapi_node bad-mac '.spec.podCIDR="10.244.21.0/24" | .metadata.annotations={"'$KFL_P'/kube-subnet-manager":"true","'$KFL_P'/backend-type":"vxlan","'$KFL_P'/public-ip":"10.99.0.21","'$KFL_P'/backend-data":"{\"VNI\":1,\"VtepMAC\":\"zz:zz\"}"}'
	kapi_node bad-ip '.spec.podCIDR="10.244.22.0/24" | .metadata.annotations={"'$KFL_P'/kube-subnet-manager":"true","'$KFL_P'/backend-type":"vxlan","'$KFL_P'/public-ip":"not-an-ip","'$KFL_P'/backend-data":"{\"VNI\":1,\"VtepMAC\":\"5a:1e:7c:0b:22:95\"}"}'
	# A peer of another backend type, and a node that is not flannel's.
	kfl_ghost hostgw-peer 10.244.23.0/24 10.99.0.23 5a:1e:7c:0b:22:96 host-gw
	kapi_node plain '.spec.podCIDR="10.244.24.0/24"'
	wait_for 5 "bad public-ip logged" grep -q 'Error turning node "bad-ip" to lease' "$T/n1/flanneld.log"
	wait_for 5 "bad JSON logged" grep -q 'Error turning node "bad-json" to lease' "$T/n1/flanneld.log"
	wait_for 5 "other backend logged" grep -q 'non-vxlan' "$T/n1/flanneld.log"
	sleep 0.5
	fl_exited 1 && fail "flanneld on node 1 exited: $(fl_log 1)"
	kfl_has_peer 1 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91 || fail "the Go-written peer was lost"
	kfl_has_node 1 2 || fail "node 2 was lost: $(fl_routes 1)"
	local sn
	for sn in 10.244.20.0/24 10.244.21.0/24 10.244.22.0/24 10.244.23.0/24 10.244.24.0/24; do
		kfl_no_peer 1 "$sn" || fail "node 1 programmed $sn: $(fl_routes 1)"
	done
	# A good peer whose annotation turns bad keeps its last good entries.
	kapi_patch ghost application/merge-patch+json '{"metadata":{"annotations":{"'$KFL_P'/public-ip":"bogus"}}}' >/dev/null
	wait_for 5 "bad update logged" grep -q 'Error turning node "ghost" to lease.*keeping its last good subnet' "$T/n1/flanneld.log"
	kfl_has_peer 1 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91 || fail "the peer was dropped on a bad update"
	# A real change (new MAC and endpoint) is applied.
	kapi_patch ghost application/merge-patch+json '{"metadata":{"annotations":{"'$KFL_P'/public-ip":"10.99.0.19","'$KFL_P'/backend-data":"{\"VNI\":1,\"VtepMAC\":\"5a:1e:7c:0b:22:99\"}"}}}' >/dev/null
	wait_for 5 "node 1 follows the changed peer" kfl_has_peer 1 10.244.9.0/24 10.99.0.19 5a:1e:7c:0b:22:99
	# Deleting nodes removes their entries.
	kapi_curl -X DELETE /api/v1/nodes/ghost >/dev/null
	wait_for 5 "ghost removed on node 1" kfl_no_peer 1 10.244.9.0/24
	kapi_curl -X DELETE /api/v1/nodes/node2 >/dev/null
	wait_for 5 "node 2 removed on node 1" fl_peers_ok 1
}

test_kube_apiserver_down_relist_and_restart() {
	kfl_cluster
	local n
	for n in 1 2 3; do kfl_node $n; done
	for n in 1 2 3; do kfl_up $n; done
	kfl_ghost ghost 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91
	wait_for 5 "node 1 programs its peers" kfl_has_peer 1 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91
	wait_for 5 "node 1 programs nodes 2 and 3" kfl_has_peer 1 "$(fl_subnet 3)" 10.99.0.3 "$(fl_mac 3)"
	local a b
	fl_pod a 1 pa
	fl_pod b 2 pb
	# The API server goes away: the network keeps working.
	kapi_stop
	sleep 1
	ping_ok "${FL_POD_NS[pa]}" "$b"
	fl_exited 1 && fail "flanneld exited with the API server down"
	# While it is down, a node is deleted and the history is lost (the
	# server comes back with a newer resourceVersion and no events): the
	# watch gets 410 Gone, relists, and the diff removes the deleted node.
	jq -c 'del(.nodes.ghost) | .rv += 1' "$T/kapi.state" >"$T/kapi.state.new" && mv "$T/kapi.state.new" "$T/kapi.state"
	kapi_start --bookmark-interval 0
	wait_for 15 "node 1 removes the node deleted while the server was down" kfl_no_peer 1 10.244.9.0/24
	grep -q "listing again" "$T/n1/flanneld.log" || fail "no relist after 410: $(fl_log 1)"
	fl_peers_ok 1 2 3 || fail "peers lost after the relist: $(fl_routes 1)"
	# A compaction under a live watch: relist again, nothing lost.
	kapi_curl -X POST /weft-test/compact >/dev/null
	kapi_curl -X POST /weft-test/close-watches >/dev/null
	kapi_node node7 '.spec.podCIDR="10.244.7.0/24"'
	sleep 1
	fl_peers_ok 1 2 3 || fail "peers lost after compaction: $(fl_routes 1)"
	# An agent restart: no ping lost (the dataplane stays in place).
	in_pod pa ping -q -i 0.1 -c 40 -W 1 "$b" >"$T/ping.out" 2>&1 &
	local pinger=$!
	sleep 0.5
	fl_stop 2
	kfl_up 2
	wait $pinger
	assert_match ' 0% packet loss' "$(cat "$T/ping.out")" "pings during the restart"
	# A restart that finds flannel.1 gone: the same VTEP MAC, from our backend-data.
	local mac
	mac=$(fl_mac 2)
	fl_stop 2
	in_n 2 ip link del flannel.1
	kfl_up 2
	assert_eq "$mac" "$(fl_mac 2)" "VTEP MAC of node 2 after a restart that recreated flannel.1"
	wait_for 5 "node 1 still reaches node 2" ping_ok "${FL_POD_NS[pa]}" "$b"
}

test_kube_late_pod_cidr_and_bad_pod_cidr() {
	kfl_cluster
	kfl_node 1 none
	kfl_start 1 --healthz-ip=127.0.0.1 --healthz-port=10257
	wait_for 10 "the wait is logged" grep -q 'node "node1" pod cidr not assigned: waiting for spec.podCIDR' "$T/n1/flanneld.log"
	wait_for 5 "healthz listening" fl_http_status 10257 /healthz
	assert_eq 200 "$(fl_http_status 10257 /healthz)" "/healthz while waiting"
	assert_eq 503 "$(fl_http_status 10257 /readyz)" "/readyz while waiting"
	assert_eq "" "$(kfl_ann 1 kube-subnet-manager)" "nothing written before the podCIDR"
	[[ -e $(fl_env 1) ]] && fail "subnet.env written without a podCIDR"
	# The podCIDR arrives (kube-controller-manager patches the spec).
	kapi_patch node1 application/merge-patch+json '{"spec":{"podCIDR":"10.244.5.0/24","podCIDRs":["10.244.5.0/24"]}}' >/dev/null
	fl_wait_up 1
	assert_eq 10.244.5.0/24 "$(fl_subnet 1)" "lease from the late podCIDR"
	wait_for 5 "/readyz 200" kfl_ready
	assert_eq true "$(kfl_ann 1 kube-subnet-manager)" "annotations once the lease is taken"
	fl_stop 1
	# A podCIDR outside Network: exit 1, a message naming both, nothing written.
	kfl_node 2 10.250.2.0/24
	kfl_start 2
	wait_for 10 "flanneld on node 2 exits" fl_exited 2
	wait "${FL_PID[2]}"
	assert_eq 1 "$?" "exit code"
	assert_match 'subnet "10.244.0.0/16" specified in the flannel net config doesn.t contain "10.250.2.0/24" PodCIDR of the "node2" node' \
		"$(fl_log 2)" "the message names both"
	assert_eq "" "$(kfl_ann 2 kube-subnet-manager)" "nothing written for a podCIDR outside Network"
}

test_kube_kubeconfig_tls_token() {
	command -v openssl >/dev/null || skip "openssl not installed"
	[[ -x $FLANNELD ]] || skip "flanneld not built ($FLANNELD)"
	kapi_need
	fl_underlay
	kapi_tls
	kapi_start --bookmark-interval 0 --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" --token "$KAPI_TOKEN"
	printf '{"Network":"%s","Backend":{"Type":"vxlan"}}\n' "$FL_NET" >"$T/net-conf.json"
	kfl_node 1
	mkdir -p "$T/kc"
	cp "$T/ca.pem" "$T/kc/ca.pem"
	printf '%s\n' "$KAPI_TOKEN" >"$T/kc/token"
	cat >"$T/kc/config" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: test
		  cluster:
		    server: $KAPI_URL
		    certificate-authority: ca.pem
		users:
		- name: flannel
		  user:
		    tokenFile: token
		contexts:
		- name: test
		  context: {cluster: test, user: flannel}
		current-context: test
	EOF
	FL_ENV="NODE_NAME=node1" fl_start 1 --kube-subnet-mgr --kubeconfig-file="$T/kc/config" \
		--net-config-path="$T/net-conf.json"
	fl_wait_up 1
	assert_eq 10.244.1.0/24 "$(fl_subnet 1)" "lease over https with a bearer token"
	assert_eq true "$(kfl_ann 1 kube-subnet-manager)" "annotations written over https"
	# A wrong token is a clear error, retried (not a crash).
	fl_stop 1
	printf 'wrong\n' >"$T/kc/token"
	FL_ENV="NODE_NAME=node1" fl_start 1 --kube-subnet-mgr --kubeconfig-file="$T/kc/config" \
		--net-config-path="$T/net-conf.json"
	wait_for 10 "401 logged" grep -q '401' "$T/n1/flanneld.log"
	fl_exited 1 && fail "flanneld exited on a 401: $(fl_log 1)"
	true
}

test_kube_host_gw_and_node_name_from_pod() {
	KFL_KAPI_ARGS="--pod kube-flannel/kube-flannel-ds-x7k2p=node1" kfl_cluster \
		'{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}'
	kfl_node 1
	kfl_node 2
	# Node 1 finds its name through its Pod (the shipped manifest sets no NODE_NAME).
	FL_ENV="POD_NAME=kube-flannel-ds-x7k2p POD_NAMESPACE=kube-flannel" fl_start 1 --kube-subnet-mgr \
		--kube-api-url="$KAPI_URL" --net-config-path="$T/net-conf.json"
	fl_wait_up 1
	kfl_up 2 --set-node-network-unavailable=false
	assert_eq 10.244.1.0/24 "$(fl_subnet 1)" "node 1's lease (name from its Pod)"
	wait_for 10 "the condition on node 1" kfl_cond 1
	sleep 0.5
	kfl_cond 2 >/dev/null && fail "node 2 got the condition with --set-node-network-unavailable=false"
	assert_match 'Kubernetes Subnet Manager - node1' "$(fl_log 1)" "manager name"
	assert_eq 1 "$(kapi_requests 'map(select(.path == "/api/v1/namespaces/kube-flannel/pods/kube-flannel-ds-x7k2p")) | length')" "GET pod"
	# host-gw: backend-data null, as Go writes it; routes via the peers' public IPs.
	assert_eq null "$(kfl_ann 1 backend-data)" "host-gw backend-data"
	assert_eq host-gw "$(kfl_ann 1 backend-type)" "backend-type"
	wait_for 5 "node 1 routes node 2's podCIDR via 10.99.0.2" bash -c \
		"ip netns exec ${FL_NS[1]} ip -4 route show 10.244.2.0/24 | grep -q 'via 10.99.0.2 dev eth0'"
	wait_for 5 "node 2 routes node 1's podCIDR via 10.99.0.1" bash -c \
		"ip netns exec ${FL_NS[2]} ip -4 route show 10.244.1.0/24 | grep -q 'via 10.99.0.1 dev eth0'"
	local a b
	fl_pod a 1 pa
	fl_pod b 2 pb
	ping_ok "${FL_POD_NS[pa]}" "$b"
	# A vxlan peer is not a host-gw peer.
	kfl_ghost vx 10.244.9.0/24 10.99.0.9 5a:1e:7c:0b:22:91
	wait_for 5 "other backend logged" grep -q 'non-host-gw' "$T/n1/flanneld.log"
	[[ -z $(in_n 1 ip -4 route show 10.244.9.0/24) ]] || fail "a vxlan peer got a host-gw route"
	# A Pod that does not exist: a clear error, retried (the Pod may not be visible yet).
	fl_node 3
	FL_ENV="POD_NAME=nope POD_NAMESPACE=kube-flannel" fl_start 3 --kube-subnet-mgr \
		--kube-api-url="$KAPI_URL" --net-config-path="$T/net-conf.json"
	wait_for 10 "the missing Pod is logged" grep -q 'Failed to get pod kube-flannel/nope for its node name.*404' "$T/n3/flanneld.log"
	fl_exited 3 && fail "flanneld exited on a missing Pod: $(fl_log 3)"
	true
}

test_kube_dual_stack() {
	kfl_cluster '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd44::/56","Backend":{"Type":"vxlan"}}'
	in_node ip addr add fd99::fe/64 dev fl-br0 nodad
	local n
	for n in 1 2; do
		fl_node $n
		in_n $n ip addr add "fd99::$n/64" dev eth0 nodad
		in_n $n sysctl -qw net.ipv6.conf.all.forwarding=1
		kapi_node "node$n" ".spec.podCIDR=\"10.244.$n.0/24\" | .spec.podCIDRs=[\"fd44:0:0:$n::/64\", \"10.244.$n.0/24\"]"
	done
	kfl_up 1
	kfl_up 2
	# Families picked by family, not by position (IPv6 listed first).
	printf 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd44::/56\nFLANNEL_IPV6_SUBNET=fd44:0:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n' >"$T/expected.env"
	cmp "$T/expected.env" "$(fl_env 1)" || fail "subnet.env differs: $(cat "$(fl_env 1)")"
	local mac6
	mac6=$(in_n 1 cat /sys/class/net/flannel-v6.1/address)
	assert_eq "{\"VNI\":1,\"VtepMAC\":\"$mac6\"}" "$(kfl_ann 1 backend-v6-data)" "backend-v6-data"
	assert_eq fd99::1 "$(kfl_ann 1 public-ipv6)" "public-ipv6"
	wait_for 5 "v4 entries" kfl_has_node 1 2
	wait_for 5 "v6 route to node 2" bash -c \
		"ip netns exec ${FL_NS[1]} ip -6 route show dev flannel-v6.1 | grep -q '^fd44:0:0:2::/64 via fd44:0:0:2:: '"
	local m6
	m6=$(in_n 2 cat /sys/class/net/flannel-v6.1/address)
	assert_eq "$m6 dst fd99::2 self permanent" "$(in_n 1 bridge fdb show dev flannel-v6.1 | grep ' dst ' | sed 's/ *$//')" "v6 FDB entry"
	# A v4-only node in a dual-stack cluster: refused before anything is written (Go writes, then fails).
	fl_node 3
	in_n 3 ip addr add fd99::3/64 dev eth0 nodad
	kapi_node node3 '.spec.podCIDR="10.244.3.0/24" | .spec.podCIDRs=["10.244.3.0/24"]'
	kfl_start 3
	wait_for 10 "flanneld on node 3 exits" fl_exited 3
	assert_match 'IPv6 is enabled but node "node3" has no IPv6 podCIDR' "$(fl_log 3)" "message"
	assert_eq "" "$(kfl_ann 3 kube-subnet-manager)" "nothing written for node 3"
}

# flannel#2554: a peer deleted while our flanneld was down keeps its routes in Go until a reboot.
test_kube_peer_deleted_while_down() {
	kfl_cluster
	local n
	for n in 1 2 3; do kfl_node $n; done
	for n in 1 2 3; do kfl_up $n; done
	wait_for 5 "node 1 programs its peers" fl_peers_ok 1 2 3
	fl_stop 1
	kapi_curl -X DELETE /api/v1/nodes/node3 >/dev/null
	kfl_up 1
	wait_for 5 "node 1 forgets node 3 and keeps node 2" fl_peers_ok 1 2
}

# The in-cluster config (what the DaemonSet uses): KUBERNETES_SERVICE_HOST/PORT and the
# service-account token and CA files, mounted here in a private mount namespace over a tmpfs
# /run (/var/run is a link to it), so the machine's own /run is never touched.
test_kube_in_cluster_config() {
	command -v openssl >/dev/null || skip "openssl not installed"
	command -v unshare >/dev/null || skip "unshare not installed"
	[[ -L /var/run ]] || skip "/var/run is not a link to /run"
	[[ -x $FLANNELD ]] || skip "flanneld not built ($FLANNELD)"
	kapi_need
	fl_underlay
	kapi_tls
	kapi_start --bookmark-interval 0 --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" --token "$KAPI_TOKEN"
	printf '{"Network":"%s","Backend":{"Type":"vxlan"}}\n' "$FL_NET" >"$T/net-conf.json"
	kfl_node 1
	printf '%s' "$KAPI_TOKEN" >"$T/token"
	FL_WROTE[1]=0
	ip netns exec "${FL_NS[1]}" unshare -m --propagation private sh -c '
		sa=/run/secrets/kubernetes.io/serviceaccount
		mount -t tmpfs tmpfs /run && mkdir -p $sa && cp "$1" $sa/ca.crt && cp "$2" $sa/token || exit 1
		shift 2
		exec env KUBERNETES_SERVICE_HOST=10.99.0.254 KUBERNETES_SERVICE_PORT=6443 NODE_NAME=node1 "$@"' \
		sh "$T/ca.pem" "$T/token" "$FLANNELD" --kube-subnet-mgr --net-config-path="$T/net-conf.json" \
		--iface=eth0 --subnet-file="$(fl_env 1)" >>"$T/n1/flanneld.log" 2>&1 &
	FL_PID[1]=$!
	track_pid "${FL_PID[1]}"
	fl_wait_up 1
	assert_eq 10.244.1.0/24 "$(fl_subnet 1)" "lease through the in-cluster config"
	assert_eq true "$(kfl_ann 1 kube-subnet-manager)" "annotations written with the service-account token"
}

# Our own annotations: public-ip-overwrite and node-public-ip honoured, no patch loop on the
# node's own updates, and flannel's keys put back when something removes them.
test_kube_own_annotations() {
	kfl_cluster
	kfl_node 1
	kapi_patch node1 application/merge-patch+json '{"metadata":{"annotations":{"'$KFL_P'/public-ip-overwrite":"192.0.2.10"}}}' >/dev/null
	kfl_node 2
	in_n 2 ip addr add 10.99.0.102/24 dev eth0
	kapi_patch node2 application/merge-patch+json '{"metadata":{"annotations":{"'$KFL_P'/node-public-ip":"10.99.0.102"}}}' >/dev/null
	kfl_up 1
	kfl_up 2
	assert_eq 192.0.2.10 "$(kfl_ann 1 public-ip)" "public-ip from public-ip-overwrite"
	assert_eq 10.99.0.102 "$(kfl_ann 2 public-ip)" "public-ip from node-public-ip"
	assert_eq 10.99.0.102 "$(in_n 2 ip -d -j link show flannel.1 | jq -r '.[0].linkinfo.info_data.local')" \
		"node 2's VXLAN source address from node-public-ip"
	wait_for 10 "the condition on node 1" kfl_cond 1
	# The node's own updates (a kubelet's label or status change) send no patch.
	local i before
	before=$(kapi_requests 'map(select(.method == "PATCH" and .path == "/api/v1/nodes/node1/status")) | length')
	for i in 1 2 3; do
		kapi_patch node1 application/merge-patch+json '{"metadata":{"labels":{"x":"'$i'"}}}' >/dev/null
	done
	sleep 1
	assert_eq "$before" "$(kapi_requests 'map(select(.method == "PATCH" and .path == "/api/v1/nodes/node1/status")) | length')" \
		"patches after the node's own updates"
	# Something removes flannel's keys: they are written again.
	kapi_patch node1 application/merge-patch+json '{"metadata":{"annotations":{"'$KFL_P'/kube-subnet-manager":null,"'$KFL_P'/backend-data":null}}}' >/dev/null
	wait_for 10 "kube-subnet-manager written again" kfl_ann_is 1 kube-subnet-manager true
	assert_eq "{\"VNI\":1,\"VtepMAC\":\"$(fl_mac 1)\"}" "$(kfl_ann 1 backend-data)" "backend-data written again"
	grep -q "annotations changed underneath" "$T/n1/flanneld.log" || fail "the repair is not logged"
}

# IPv6 only (EnableIPv4 false): the lease is the IPv6 podCIDR; no flannel.1, no v4 annotations,
# no v4 lines in subnet.env; the v6 overlay carries traffic between the nodes.
test_kube_ipv6_only() {
	kfl_cluster '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd44::/56","Backend":{"Type":"vxlan"}}'
	in_node ip addr add fd99::fe/64 dev fl-br0 nodad
	local n
	for n in 1 2; do
		fl_node $n
		in_n $n ip addr add "fd99::$n/64" dev eth0 nodad
		in_n $n sysctl -qw net.ipv6.conf.all.forwarding=1
		kapi_node "node$n" ".spec.podCIDR=\"fd44:0:0:$n::/64\" | .spec.podCIDRs=[\"fd44:0:0:$n::/64\"]"
	done
	kfl_up 1 --ip-masq
	kfl_up 2
	printf 'FLANNEL_IPV6_NETWORK=fd44::/56\nFLANNEL_IPV6_SUBNET=fd44:0:0:1::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n' >"$T/expected.env"
	cmp "$T/expected.env" "$(fl_env 1)" || fail "subnet.env differs: $(cat "$(fl_env 1)")"
	[[ -e /proc/sys/net/ipv4/conf/flannel.1 ]] && in_n 1 ip link show flannel.1 >/dev/null 2>&1 && fail "flannel.1 exists"
	assert_eq "{\"VNI\":1,\"VtepMAC\":\"$(in_n 1 cat /sys/class/net/flannel-v6.1/address)\"}" "$(kfl_ann 1 backend-v6-data)" "backend-v6-data"
	assert_eq fd99::1 "$(kfl_ann 1 public-ipv6)" "public-ipv6"
	assert_eq "" "$(kfl_ann 1 backend-data)" "no v4 backend-data"
	wait_for 5 "v6 route to node 2" bash -c \
		"ip netns exec ${FL_NS[1]} ip -6 route show dev flannel-v6.1 | grep -q '^fd44:0:0:2::/64 via fd44:0:0:2:: '"
	assert_eq "" "$(in_n 1 ip -4 route show | grep -v -e '10.99.0.0/24' -e '^default via 10.99.0.254' || true)" "IPv4 routes besides the underlay's"
	in_n 1 ip6tables -t nat -S FLANNEL-POSTRTG | grep -q -- "-s fd44::/56 ! -d ff00::/8 .* -j MASQUERADE" ||
		fail "no IPv6 masquerade rule: $(in_n 1 ip6tables -t nat -S 2>&1)"
	# (the devices' addresses go through DAD first)
	wait_for 10 "node 1 reaches node 2's flannel-v6.1 over the overlay" in_n 1 ping -c1 -W1 fd44:0:0:2::
	# Pods through the flannel chain (flannel -> bridge -> host-local) from the v6-only subnet.env.
	local a b
	kfl_flannel_pod a 1 pa
	kfl_flannel_pod b 2 pb
	assert_match '^fd44:0:0:1::' "$a" "pod address on node 1"
	wait_for 10 "pod on node 1 reaches the pod on node 2" in_pod pa ping -c1 -W1 "$b"
}

# kfl_flannel_pod VAR N ID: a pod on node N through the flannel plugin (delegating to bridge and
# host-local); VAR gets its first address.
kfl_flannel_pod() {
	local var=$1 n=$2 id=$3 path conf out
	new_pod path
	FL_POD_NS[$id]=${path##*/}
	conf=$(jq -nc --arg env "$(fl_env "$n")" --arg d "$T/n$n" \
		'{cniVersion:"1.0.0",name:"cbr0",type:"flannel",subnetFile:$env,dataDir:($d+"/flannel"),
		  ipam:{dataDir:($d+"/ipam")},delegate:{isDefaultGateway:true}}')
	out=$(printf '%s' "$conf" | in_n "$n" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=ADD \
		CNI_CONTAINERID="$id" CNI_NETNS="$path" CNI_IFNAME=eth0 CNI_PATH="$MAIN_DIR" "$MAIN_DIR/flannel") ||
		fail "pod $id on node $n: $out"
	printf -v "$var" '%s' "$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
}
