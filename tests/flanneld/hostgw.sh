# shellcheck shell=bash
# flanneld's host-gw backend: one route per peer via its public IP.
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

fl_gw_routes() { # N: routes into the cluster network via eth0
	in_n "$1" ip -4 route show dev eth0 | grep '^10\.244\.' | sed 's/ *$//' | sort
}

fl_gw_ok() { # N M...: node N has exactly the routes to peers M...
	local n=$1 m want=""
	shift
	for m in "$@"; do
		want+="$(fl_subnet "$m") via 10.99.0.$m"$'\n'
	done
	[[ $(sort <<<"${want%$'\n'}" | sed '/^$/d') == "$(fl_gw_routes "$n")" ]]
}

test_flanneld_hostgw() {
	fl_cluster '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}'
	local n
	for n in 1 2 3; do fl_node $n; done
	for n in 1 2 3; do FL_ENV=WEFT_FLANNELD_RECONCILE_SECS=1 fl_up $n; done
	assert_eq "{\"PublicIP\":\"10.99.0.1\",\"PublicIPv6\":null,\"BackendType\":\"host-gw\"}" \
		"$(fl_etcdctl get --print-value-only "$(fl_key 1)")" "host-gw lease value"
	assert_eq 1500 "$(sed -n 's/^FLANNEL_MTU=//p' "$(fl_env 1)")" "FLANNEL_MTU (no encapsulation)"
	in_n 1 ip link show flannel.1 >/dev/null 2>&1 && fail "host-gw created flannel.1"
	wait_for 5 "node 1 routes" fl_gw_ok 1 2 3
	wait_for 5 "node 2 routes" fl_gw_ok 2 1 3
	local a b c
	fl_pod a 1 pa
	fl_pod b 2 pb
	fl_pod c 3 pc
	ping_ok "${FL_POD_NS[pa]}" "$b"
	ping_ok "${FL_POD_NS[pc]}" "$a"
	# A route deleted by hand comes back; a foreign one into the cluster
	# network via eth0 is removed.
	in_n 1 ip route del "$(fl_subnet 2)"
	in_n 1 ip route add 10.244.250.0/24 via 10.99.0.250 dev eth0
	wait_for 5 "routes reconciled" fl_gw_ok 1 2 3
	ping_ok "${FL_POD_NS[pa]}" "$b"
	# A node that leaves loses its route everywhere.
	fl_etcdctl del "$(fl_key 3)" >/dev/null
	wait_for 5 "node 3's route removed" fl_gw_ok 1 2
	wait_for 5 "node 3's route removed" fl_gw_ok 2 1
}
