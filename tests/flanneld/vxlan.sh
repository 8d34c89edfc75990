# shellcheck shell=bash
# flanneld's VXLAN backend: the device, per-peer ARP/FDB/route entries,
# pod traffic across nodes, and recovery (device deleted, stale entries,
# changed peers, etcd outage, compaction).
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

test_flanneld_vxlan_device() {
	fl_cluster
	fl_node 1
	fl_up 1
	local j sn
	j=$(in_n 1 ip -d -j link show flannel.1)
	assert_json '.[0].mtu' 1450 "$j"
	assert_json '.[0].linkinfo.info_kind' vxlan "$j"
	assert_json '.[0].linkinfo.info_data.id' 1 "$j"
	assert_json '.[0].linkinfo.info_data.local' 10.99.0.1 "$j"
	assert_json '.[0].linkinfo.info_data.link' eth0 "$j"
	assert_json '.[0].linkinfo.info_data.port' 8472 "$j"
	assert_json '.[0].linkinfo.info_data.learning' false "$j"
	assert_json '.[0].flags | index("UP") != null' true "$j"
	sn=$(fl_subnet 1)
	assert_eq "${sn%/*}/32" "$(in_n 1 ip -4 -j addr show dev flannel.1 | jq -r '.[0].addr_info | map("\(.local)/\(.prefixlen)") | join(",")')" \
		"addresses of flannel.1"
	assert_eq 0 "$(in_n 1 cat /proc/sys/net/ipv6/conf/flannel.1/accept_ra)" "accept_ra"
	# The MAC is the one published in the lease.
	assert_eq "$(fl_mac 1)" "$(fl_etcdctl get --print-value-only "$(fl_key 1)" | jq -r .BackendData.VtepMAC)" "VtepMAC"
	assert_match '^[0-9a-f][2367abef]:' "$(fl_mac 1)" "locally administered unicast MAC"
}

test_flanneld_vxlan_backend_options() {
	fl_cluster '{"network":"10.244.0.0/16","subnetlen":25,"backend":{"type":"vxlan","VNI":42,"Port":4789,"MTU":1400}}'
	fl_node 1
	fl_node 2
	fl_up 1
	fl_up 2
	local j
	j=$(in_n 1 ip -d -j link show flannel.42)
	assert_json '.[0].mtu' 1350 "$j"
	assert_json '.[0].linkinfo.info_data.id' 42 "$j"
	assert_json '.[0].linkinfo.info_data.port' 4789 "$j"
	assert_eq 1350 "$(sed -n 's/^FLANNEL_MTU=//p' "$(fl_env 1)")" "FLANNEL_MTU"
	assert_match '/25$' "$(fl_subnet 1)" "subnet length"
	assert_json .BackendData.VNI 42 "$(fl_etcdctl get --print-value-only "$(fl_key 1)")"
	local sn2
	sn2=$(fl_subnet 2)
	wait_for 5 "route to node 2" bash -c "ip netns exec ${FL_NS[1]} ip route show dev flannel.42 | grep -q '^$sn2 via ${sn2%/*} onlink'"
	local a b
	fl_pod a 1 pa
	fl_pod b 2 pb
	ping_ok "${FL_POD_NS[pa]}" "$b"
}

test_flanneld_vxlan_three_nodes_pods() {
	fl_cluster
	local n
	for n in 1 2 3; do fl_node $n; done
	for n in 1 2 3; do fl_up $n; done
	wait_for 5 "node 1 programs its peers" fl_peers_ok 1 2 3
	wait_for 5 "node 2 programs its peers" fl_peers_ok 2 1 3
	wait_for 5 "node 3 programs its peers" fl_peers_ok 3 1 2
	# Pods through bridge + host-local with node-local subnets.
	local a1 a2 b1 c1
	fl_pod a1 1 pa1
	fl_pod a2 1 pa2
	fl_pod b1 2 pb1
	fl_pod c1 3 pc1
	ping_ok "${FL_POD_NS[pa1]}" "$b1"
	ping_ok "${FL_POD_NS[pa1]}" "$c1"
	ping_ok "${FL_POD_NS[pb1]}" "$c1"
	ping_ok "${FL_POD_NS[pa1]}" "$a2"
	# Node to remote pod: sourced from flannel.1's .0 address.
	ping_ok "${FL_NS[1]}" "$b1"
	if command -v python3 >/dev/null; then
		fl_tcp_ok pa1 pb1 "$b1"
		fl_tcp_ok pc1 pa2 "$a2"
	else
		log "python3 missing: TCP transfer not tested"
	fi
	# Nothing went through anything but the overlay: the pod's packets
	# cross the underlay as UDP 8472.
	local sent
	sent=$(in_n 1 ip -s -j link show flannel.1 | jq '.[0].stats64.tx.packets')
	((sent > 0)) || fail "no packets sent through flannel.1"
}

test_flanneld_peer_with_new_mac_replaces_old_fdb() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_up 1
	fl_up 2
	wait_for 5 "node 1 programs node 2" fl_peers_ok 1 2
	local key id old new sn2
	key=$(fl_key 2)
	sn2=$(fl_subnet 2)
	old=$(fl_mac 2)
	new=02:11:22:33:44:55
	id=$(fl_lease_id "$key")
	# Node 2 re-registers with another VTEP MAC and public IP.
	fl_etcdctl put --lease="$(printf '%x' "$id")" "$key" \
		"{\"PublicIP\":\"10.99.0.22\",\"PublicIPv6\":null,\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"$new\"}}" >/dev/null
	wait_for 5 "node 1 switches to the new MAC" bash -c \
		"ip netns exec ${FL_NS[1]} bridge fdb show dev flannel.1 | grep -q '^$new dst 10.99.0.22 self permanent'"
	assert_eq "$new dst 10.99.0.22 self permanent" "$(fl_fdbs 1 | sed 's/ *$//')" "FDB of node 1 (old entry gone)"
	assert_eq "${sn2%/*} lladdr $new PERMANENT" "$(fl_neighs 1 | sed 's/ *$//')" "ARP of node 1"
	assert_eq "$sn2 via ${sn2%/*} onlink" "$(fl_routes 1 | sed 's/ *$//')" "routes of node 1"
	[[ $old != "$new" ]] || fail "test needs a different MAC"
}

test_flanneld_deleted_device_is_recreated_and_replayed() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_node 3
	fl_up 1
	fl_up 2
	fl_up 3
	wait_for 5 "node 1 programs its peers" fl_peers_ok 1 2 3
	local mac sn a b
	mac=$(fl_mac 1)
	sn=$(fl_subnet 1)
	fl_pod a 1 pa
	fl_pod b 2 pb
	ping_ok "${FL_POD_NS[pa]}" "$b"
	in_n 1 ip link del flannel.1
	wait_for 5 "flannel.1 recreated with its peers" fl_peers_ok 1 2 3
	assert_eq "$mac" "$(fl_mac 1)" "MAC of the recreated device"
	assert_eq "${sn%/*}/32" "$(in_n 1 ip -4 -j addr show dev flannel.1 | jq -r '.[0].addr_info[0] | "\(.local)/\(.prefixlen)"')" \
		"address of the recreated device"
	ping_ok "${FL_POD_NS[pa]}" "$b"
	ping_ok "${FL_POD_NS[pb]}" "$a"
	grep -q "is gone or changed; recreating it" "$T/n1/flanneld.log" || fail "recreation not logged"
}

test_flanneld_stale_entries_are_removed() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_up 1
	fl_up 2
	wait_for 5 "node 1 programs node 2" fl_peers_ok 1 2
	# Entries of a node that vanished while flanneld was down (#2554).
	fl_stop 1
	in_n 1 ip route add 10.244.250.0/24 via 10.244.250.0 dev flannel.1 onlink
	in_n 1 ip neigh add 10.244.250.0 lladdr 02:00:00:00:02:50 dev flannel.1 nud permanent
	in_n 1 bridge fdb add 02:00:00:00:02:50 dev flannel.1 dst 10.99.0.250 self permanent
	FL_ENV=WEFT_FLANNELD_RECONCILE_SECS=1 fl_up 1
	wait_for 5 "stale entries removed at start" fl_peers_ok 1 2
	# ... and while running (periodic reconcile).
	in_n 1 ip neigh add 10.244.251.0 lladdr 02:00:00:00:02:51 dev flannel.1 nud permanent
	in_n 1 bridge fdb add 02:00:00:00:02:51 dev flannel.1 dst 10.99.0.251 self permanent
	in_n 1 ip route add 10.244.251.0/24 via 10.244.251.0 dev flannel.1 onlink
	# ... and a missing one comes back.
	in_n 1 ip route del "$(fl_subnet 2)"
	wait_for 5 "periodic reconcile" fl_peers_ok 1 2
}

test_flanneld_etcd_outage() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_node 3
	fl_up 1
	fl_up 2
	wait_for 5 "mesh" fl_peers_ok 1 2
	local a b
	fl_pod a 1 pa
	fl_pod b 2 pb
	fl_etcd_stop
	sleep 1
	# The kernel datapath does not need etcd.
	ping_ok "${FL_POD_NS[pa]}" "$b"
	fl_exited 1 && fail "flanneld 1 died without etcd"
	fl_etcd_start
	# Watches recover: a node that joins now is programmed on the others.
	fl_up 3
	wait_for 10 "node 1 sees node 3 after the outage" fl_peers_ok 1 2 3
	wait_for 10 "node 2 sees node 3 after the outage" fl_peers_ok 2 1 3
	ping_ok "${FL_POD_NS[pa]}" "$b"
}

test_flanneld_watch_recovers_after_compaction() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_node 3
	fl_up 1
	fl_up 2
	wait_for 5 "node 1 programs node 2" fl_peers_ok 1 2
	# Cut node 1 off etcd (the reset breaks its watch stream at once).
	in_n 1 iptables -I OUTPUT -p tcp --dport 2379 -j REJECT --reject-with tcp-reset
	sleep 6
	# Meanwhile: node 3 joins, node 2 changes its MAC, history is compacted.
	fl_up 3
	local key2 id2 rev
	key2=$(fl_key 2)
	id2=$(fl_lease_id "$key2")
	fl_etcdctl put --lease="$(printf '%x' "$id2")" "$key2" \
		'{"PublicIP":"10.99.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:22"}}' >/dev/null
	rev=$(fl_etcdctl endpoint status -w json | jq '.[0].Status.header.revision')
	fl_etcdctl compact "$rev" >/dev/null || fail "compact"
	in_n 1 iptables -D OUTPUT -p tcp --dport 2379 -j REJECT --reject-with tcp-reset
	wait_for 15 "node 1 re-lists and sees node 3" bash -c \
		"ip netns exec ${FL_NS[1]} ip route show dev flannel.1 | grep -q '^$(fl_subnet 3) '"
	wait_for 5 "node 1 has node 2's new MAC" bash -c \
		"ip netns exec ${FL_NS[1]} bridge fdb show dev flannel.1 | grep -q '^02:00:00:00:00:22 dst 10.99.0.2 '"
	# Exactly two peers: node 2 (new MAC, old FDB entry gone) and node 3.
	assert_eq 2 "$(fl_fdbs 1 | wc -l)" "FDB entries on node 1"
	assert_eq 2 "$(fl_neighs 1 | wc -l)" "ARP entries on node 1"
	grep -q "fell behind compaction" "$T/n1/flanneld.log" || fail "the compaction path was not taken"
}

test_flanneld_vxlan_direct_routing() {
	fl_cluster '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}'
	fl_node 1
	fl_node 2
	# Node 3 is on another L2 segment, routed through the underlay netns.
	in_node ip link add fl-br1 type bridge
	in_node ip link set fl-br1 up
	in_node ip addr add 10.98.0.254/24 dev fl-br1
	in_node sysctl -qw net.ipv4.ip_forward=1
	local path ns3
	new_pod path
	ns3=${path##*/}
	FL_NS[3]=$ns3
	in_node ip link add fl-v3 type veth peer name eth0 netns "$ns3"
	in_node ip link set fl-v3 master fl-br1 up
	in_ns "$ns3" ip addr add 10.98.0.3/24 dev eth0
	in_ns "$ns3" ip link set eth0 up
	in_ns "$ns3" ip route add default via 10.98.0.254
	in_ns "$ns3" sysctl -qw net.ipv4.ip_forward=1
	mkdir -p "$T/n3"
	fl_up 1
	fl_up 2
	fl_up 3
	local sn2 sn3 mac3
	sn2=$(fl_subnet 2)
	sn3=$(fl_subnet 3)
	mac3=$(fl_mac 3)
	# Same L2: a plain route via the peer's address, nothing on flannel.1.
	wait_for 5 "direct route to node 2" bash -c \
		"ip netns exec ${FL_NS[1]} ip -4 route show $sn2 | grep -q '^$sn2 via 10.99.0.2 dev eth0'"
	# Behind a router: VXLAN as usual.
	wait_for 5 "vxlan route to node 3" bash -c \
		"ip netns exec ${FL_NS[1]} ip -4 route show dev flannel.1 | grep -q '^$sn3 via ${sn3%/*} onlink'"
	assert_eq "${sn3%/*} lladdr $mac3 PERMANENT" "$(fl_neighs 1 | sed 's/ *$//')" "ARP entries on node 1"
	assert_eq "$mac3 dst 10.98.0.3 self permanent" "$(fl_fdbs 1 | sed 's/ *$//')" "FDB entries on node 1"
	local a b c
	fl_pod a 1 pa
	fl_pod b 2 pb
	fl_pod c 3 pc
	ping_ok "${FL_POD_NS[pa]}" "$b"
	ping_ok "${FL_POD_NS[pa]}" "$c"
	ping_ok "${FL_POD_NS[pc]}" "$b"
	# Node 2 leaves: its direct route goes.
	fl_etcdctl del "$(fl_key 2)" >/dev/null
	wait_for 5 "direct route removed" bash -c "[[ -z \$(ip netns exec ${FL_NS[1]} ip -4 route show $sn2) ]]"
}

test_flanneld_blackhole_route() {
	fl_cluster
	fl_node 1
	FL_ENV=WEFT_FLANNELD_RECONCILE_SECS=1 fl_up 1 --ip-blackhole-route
	local sn
	sn=$(fl_subnet 1)
	wait_for 5 "blackhole route" bash -c "ip netns exec ${FL_NS[1]} ip route show type blackhole | grep -q '^blackhole $sn'"
	in_n 1 ip route del blackhole "$sn"
	wait_for 5 "blackhole route restored" bash -c "ip netns exec ${FL_NS[1]} ip route show type blackhole | grep -q '^blackhole $sn'"
}

test_flanneld_mac_survives_device_loss_while_down() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_up 1
	fl_up 2
	wait_for 5 "node 2 programs node 1" fl_peers_ok 2 1
	local mac
	mac=$(fl_mac 1)
	# A reboot loses flannel.1; the restarted flanneld recreates it with the
	# VtepMAC of its lease in etcd (Go picks a new random MAC), so the peers'
	# entries stay valid.
	fl_stop 1
	in_n 1 ip link del flannel.1
	fl_up 1
	assert_eq "$mac" "$(fl_mac 1)" "MAC of the recreated flannel.1"
	assert_eq 1 "$(in_n 1 ip -o link show type vxlan | wc -l)" "vxlan devices on node 1"
	wait_for 5 "node 2 still programmed for node 1" fl_peers_ok 2 1
	wait_for 5 "node 1 programs node 2" fl_peers_ok 1 2
}

# Backend.DisableTxChecksumOffload (weft only, flannel#2152): tx-checksum-ip-generic off on
# flannel.1 through the kernel's ethtool netlink interface, again on a recreated device; a node
# without the key keeps the kernel's default (on). Pods still talk across the nodes.
test_flanneld_vxlan_tx_checksum_offload_off() {
	command -v ethtool >/dev/null || fail "ethtool is not installed (Debian package ethtool; scripts/install-deps.sh)"
	fl_cluster '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DisableTxChecksumOffload":true}}'
	fl_node 1
	fl_node 2
	fl_up 1
	assert_match 'tx-checksum-ip-generic: off' "$(in_n 1 ethtool -k flannel.1)" "node 1 (key set)"
	grep -q "tx checksum offload off" "$T/n1/flanneld.log" || fail "not logged: $(fl_log 1)"
	fl_config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
	fl_up 2
	assert_match 'tx-checksum-ip-generic: on' "$(in_n 2 ethtool -k flannel.1)" "node 2 (no key)"
	wait_for 5 "mesh" fl_peers_ok 1 2
	local a b
	fl_pod a 1 pa
	fl_pod b 2 pb
	ping_ok "${FL_POD_NS[pa]}" "$b"
	in_n 1 ip link del flannel.1
	wait_for 10 "flannel.1 recreated with its peers" fl_peers_ok 1 2
	assert_match 'tx-checksum-ip-generic: off' "$(in_n 1 ethtool -k flannel.1)" "node 1 after the device was recreated"
	ping_ok "${FL_POD_NS[pa]}" "$b"
	# A restart adopts the existing device and applies it again.
	in_n 1 ethtool -K flannel.1 tx-checksum-ip-generic on
	fl_stop 1
	fl_config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DisableTxChecksumOffload":true}}'
	fl_up 1
	assert_match 'tx-checksum-ip-generic: off' "$(in_n 1 ethtool -k flannel.1)" "node 1 after a restart"
}
