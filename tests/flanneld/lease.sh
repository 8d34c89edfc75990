# shellcheck shell=bash
# flanneld's etcd lease: subnet.env, key, value and TTL, reuse across
# restarts, renewal, expiry and deletion.
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

test_flanneld_subnet_env_and_etcd_lease() {
	fl_cluster
	fl_node 1
	# subnet.env is 0644 whatever the umask.
	umask 077
	fl_start 1
	umask 022
	fl_wait_up 1

	local sn ip3 key
	sn=$(fl_subnet 1)
	ip3=${sn%.0/24}
	assert_match '^10\.244\.[0-9]+\.0/24$' "$sn" "lease subnet"
	printf 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=%s.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n' "$ip3" >"$T/expected.env"
	cmp "$T/expected.env" "$(fl_env 1)" || fail "subnet.env differs: $(cat "$(fl_env 1)")"
	assert_eq 644 "$(stat -c %a "$(fl_env 1)")" "subnet.env mode"
	assert_eq 1 "$(find "$T/n1" -maxdepth 1 -name '*.env*' | wc -l)" "files next to subnet.env (no temp file left)"

	# One key, named like Go names it, with Go's JSON.
	key=$FL_PREFIX/subnets/$ip3.0-24
	assert_eq "$key" "$(fl_etcdctl get --prefix --keys-only "$FL_PREFIX/subnets" | sed '/^$/d')" "lease keys"
	assert_eq "{\"PublicIP\":\"10.99.0.1\",\"PublicIPv6\":null,\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"$(fl_mac 1)\"}}" \
		"$(fl_etcdctl get --print-value-only "$key")" "lease value"

	# Attached to a 24 h etcd lease.
	local id ttl
	id=$(fl_lease_id "$key")
	[[ $id =~ ^[0-9]+$ && $id != 0 ]] || fail "key has no etcd lease: $id"
	ttl=$(fl_etcdctl lease timetolive "$(printf '%x' "$id")" -w json)
	assert_json '."granted-ttl"' 86400 "$ttl"
	assert_jq '.ttl > 86300' "$ttl"
}

test_flanneld_restart_keeps_subnet_mac_and_dataplane() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_up 1
	fl_up 2
	wait_for 5 "node 2 programs node 1" fl_peers_ok 2 1
	local sn mac a b
	sn=$(fl_subnet 1)
	mac=$(fl_mac 1)
	fl_pod a 1 pa
	fl_pod b 2 pb
	ping_ok "${FL_POD_NS[pb]}" "$a"

	# A ping from node 2's pod runs across the restart of node 1's flanneld.
	in_pod pb ping -n -i 0.1 -c 40 -W 1 "$a" >"$T/ping.out" 2>&1 &
	local pinger=$!
	sleep 0.5
	fl_stop 1
	assert_eq 0 "$FL_RC" "flanneld exit status after SIGTERM"
	# SIGTERM leaves the dataplane in place.
	in_n 1 ip link show flannel.1 >/dev/null || fail "flannel.1 removed on SIGTERM"
	fl_assert_peers 1 2
	fl_up 1
	wait $pinger
	local lost
	lost=$(sed -n 's/.* \([0-9]*\)% packet loss.*/\1/p' "$T/ping.out")
	log "ping across restart: $(grep 'packet loss' "$T/ping.out")"
	[[ -n $lost && $lost -le 10 ]] || fail "ping lost ${lost:-all}% across the restart"

	assert_eq "$sn" "$(fl_subnet 1)" "subnet after restart"
	assert_eq "$mac" "$(fl_mac 1)" "VTEP MAC after restart"
	fl_assert_peers 1 2
	fl_assert_peers 2 1
	grep -q "Found lease (ip: $sn" "$T/n1/flanneld.log" || fail "restart did not reuse the lease by public IP"
	assert_eq 2 "$(fl_etcdctl lease list | grep -c '^[0-9a-f]\+$')" \
		"etcd leases of nodes 1 and 2 after the restart (the superseded one is revoked)"
}

test_flanneld_previous_subnet_reused_only_if_free() {
	fl_cluster
	fl_node 1
	fl_up 1
	local sn key
	sn=$(fl_subnet 1)
	key=$(fl_key 1)
	fl_stop 1
	# The lease expired while flanneld was down: subnet.env's subnet is reused.
	fl_etcdctl del "$key" >/dev/null
	fl_up 1
	assert_eq "$sn" "$(fl_subnet 1)" "subnet after the key vanished"
	grep -q "Found previously leased subnet ($sn)" "$T/n1/flanneld.log" || fail "previous subnet not reused"
	# ... but not when another node took it meanwhile (flannel#1289).
	fl_stop 1
	fl_etcdctl del "$key" >/dev/null
	fl_etcdctl put "$key" '{"PublicIP":"10.99.0.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:09"}}' >/dev/null
	fl_up 1
	assert_ne "$sn" "$(fl_subnet 1)" "subnet when the previous one is taken"
	assert_eq 2 "$(fl_etcdctl get --prefix --keys-only "$FL_PREFIX/subnets" | sed '/^$/d' | wc -l)" "lease keys"
}

test_flanneld_lease_deleted_owner_exits_peers_clean_up() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_node 3
	fl_up 1
	fl_up 2
	fl_up 3
	wait_for 5 "full mesh" fl_peers_ok 1 2 3
	wait_for 5 "full mesh" fl_peers_ok 3 1 2
	fl_etcdctl del "$(fl_key 2)" >/dev/null
	wait_for 5 "node 2's flanneld exits" fl_exited 2
	wait "${FL_PID[2]}"
	assert_eq 0 $? "exit status of the revoked node (Go exits 0 too)"
	grep -q "Lease has been revoked. Shutting down daemon." "$T/n2/flanneld.log" || fail "no revocation message"
	wait_for 5 "node 1 drops node 2" fl_peers_ok 1 3
	wait_for 5 "node 3 drops node 2" fl_peers_ok 3 1
}

test_flanneld_lease_renewal() {
	fl_cluster
	fl_node 1
	# A 4 s etcd lease (test knob), renewed halfway since the margin is longer.
	FL_ENV=WEFT_FLANNELD_LEASE_TTL=4 fl_up 1 --subnet-lease-renew-margin=1
	fl_assert_renewed 1 6
	assert_eq 1 "$(fl_etcdctl lease list | grep -c '^[0-9a-f]\+$')" "etcd leases (superseded ones revoked)"
	fl_exited 1 && fail "flanneld died"
}

test_flanneld_expired_peer_is_removed() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_up 1
	FL_ENV=WEFT_FLANNELD_LEASE_TTL=3 fl_up 2
	wait_for 5 "node 1 programs node 2" fl_peers_ok 1 2
	# Node 2 hangs: it cannot renew, its lease expires.
	kill -STOP "${FL_PID[2]}"
	wait_for 10 "node 2's key expires" fl_key_absent "$(fl_key 2)"
	wait_for 5 "node 1 drops node 2" fl_peers_ok 1
	kill -CONT "${FL_PID[2]}"
	wait_for 5 "node 2 notices and exits" fl_exited 2
}
