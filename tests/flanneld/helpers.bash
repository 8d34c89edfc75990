# shellcheck shell=bash
# Helpers for the flanneld tests (sourced by tests/flanneld/*.sh; the
# ".bash" suffix keeps tests/run from collecting this file).
#
# Topology of every test, all inside namespaces the test owns:
#
#   $NODE (the lib's node netns) is the "underlay": bridge fl-br0 with
#   10.99.0.254/24, and etcd listening on 10.99.0.254:2379.
#   Cluster nodes are extra netns (made with new_pod, so tests/run sweeps
#   them): node N has eth0 = 10.99.0.N/24 on fl-br0, default route via
#   .254, and runs flanneld with its own subnet file $T/nN/subnet.env.
#   Pods (bridge + host-local, the delegate chain the flannel plugin
#   builds) are netns attached to a node's cni0.

FL_BIN=${WEFT_BIN:-$REPO_ROOT/target/x86_64-unknown-linux-gnu/release}
case $FL_BIN in /*) ;; *) FL_BIN=$REPO_ROOT/$FL_BIN ;; esac
FLANNELD=${FLANNELD:-$FL_BIN/flanneld}
FL_UNDERLAY_IP=10.99.0.254
FL_ETCD=http://$FL_UNDERLAY_IP:2379
FL_PREFIX=/coreos.com/network
FL_NET=10.244.0.0/16
declare -A FL_NS=() FL_PID=() FL_WROTE=()

# Skip unless flanneld is built and etcd is installed.
fl_need() {
	[[ -x $FLANNELD ]] || skip "flanneld not built ($FLANNELD): cargo build --release -p weft-flanneld"
	command -v etcd >/dev/null || skip "etcd not installed (Debian package etcd-server)"
	command -v etcdctl >/dev/null || skip "etcdctl not installed (Debian package etcd-client)"
}

fl_underlay() {
	in_node ip link add fl-br0 type bridge || fail "create underlay bridge"
	in_node ip link set fl-br0 up
	in_node ip addr add $FL_UNDERLAY_IP/24 dev fl-br0
}

# Start etcd in the underlay netns (data in $T/etcd, kept across restarts).
# Extra etcd flags (TLS files) are passed on; set FL_ETCD to an https:// URL
# for TLS, and ETCDCTL_CACERT/_CERT/_KEY/_USER for fl_etcdctl.
fl_etcd_start() { # [ETCD_FLAGS...]
	ip netns exec "$NODE" etcd --name fltest --data-dir "$T/etcd" \
		--listen-client-urls "$FL_ETCD" --advertise-client-urls "$FL_ETCD" \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster fltest=http://127.0.0.1:2380 "$@" >>"$T/etcd.log" 2>&1 &
	FL_ETCD_PID=$!
	track_pid $FL_ETCD_PID
	local i
	for i in $(seq 1 100); do
		fl_etcdctl endpoint health >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	tail -20 "$T/etcd.log" >&2
	fail "etcd did not come up"
}

fl_etcd_stop() {
	kill "$FL_ETCD_PID" 2>/dev/null
	wait "$FL_ETCD_PID" 2>/dev/null
}

fl_etcdctl() {
	ETCDCTL_API=3 ip netns exec "$NODE" etcdctl --endpoints "$FL_ETCD" "$@"
}

fl_config() { # JSON
	fl_etcdctl put "$FL_PREFIX/config" "$1" >/dev/null || fail "put config"
}

# Underlay + etcd + a config (default: vxlan on 10.244.0.0/16).
fl_cluster() { # [CONFIG_JSON]
	local cfg=${1:-}
	[[ -n $cfg ]] || cfg='{"Network":"'$FL_NET'","Backend":{"Type":"vxlan"}}'
	fl_need
	fl_underlay
	fl_etcd_start
	fl_config "$cfg"
}

# fl_node N: a node netns with eth0 = 10.99.0.N/24.
fl_node() {
	local n=$1 path ns
	new_pod path
	ns=${path##*/}
	FL_NS[$n]=$ns
	in_node ip link add "fl-v$n" type veth peer name eth0 netns "$ns" || fail "veth for node $n"
	in_node ip link set "fl-v$n" master fl-br0 up
	in_ns "$ns" ip addr add "10.99.0.$n/24" dev eth0
	in_ns "$ns" ip link set eth0 up
	in_ns "$ns" ip route add default via $FL_UNDERLAY_IP
	in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
	mkdir -p "$T/n$n"
}

in_n() { # N CMD...
	local n=$1
	shift
	ip netns exec "${FL_NS[$n]}" "$@"
}

fl_env() { # N: path of the node's subnet.env
	echo "$T/n$1/subnet.env"
}

# fl_start N [flanneld args...]: run flanneld in node N (env FL_ENV=... adds
# environment variables). Logs to $T/n$N/flanneld.log.
fl_start() {
	local n=$1
	shift
	FL_WROTE[$n]=$(fl_writes "$n")
	# shellcheck disable=SC2086
	ip netns exec "${FL_NS[$n]}" env ${FL_ENV:-} "$FLANNELD" --etcd-endpoints="$FL_ETCD" --iface=eth0 \
		--subnet-file="$(fl_env "$n")" "$@" >>"$T/n$n/flanneld.log" 2>&1 &
	FL_PID[$n]=$!
	track_pid "${FL_PID[$n]}"
}

# How many times node N's flanneld logged writing subnet.env.
fl_writes() { # N
	local c
	c=$(grep -c "Wrote subnet file" "$T/n$1/flanneld.log" 2>/dev/null)
	echo "${c:-0}"
}

# True once node N's flanneld is gone (exited, possibly not yet reaped).
fl_exited() { # N
	local pid=${FL_PID[$1]}
	[[ ! -e /proc/$pid ]] || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]
}

# Wait until node N's flanneld (re)wrote subnet.env (and is therefore up).
fl_wait_up() { # N [TIMEOUT_S]
	local n=$1 i max=$((${2:-15} * 10))
	for ((i = 0; i < max; i++)); do
		(($(fl_writes "$n") > ${FL_WROTE[$n]:-0})) && return 0
		fl_exited "$n" && { tail -20 "$T/n$n/flanneld.log" >&2; fail "flanneld on node $n exited"; }
		sleep 0.1
	done
	tail -20 "$T/n$n/flanneld.log" >&2
	fail "flanneld on node $n did not write subnet.env"
}

fl_up() { # N [args]: start and wait
	local n=$1
	fl_start "$@"
	fl_wait_up "$n"
}

fl_stop() { # N: SIGTERM and wait
	local n=$1
	kill -TERM "${FL_PID[$n]}" 2>/dev/null
	wait "${FL_PID[$n]}" 2>/dev/null
	FL_RC=$?
}

# The node's lease subnet (from subnet.env: FLANNEL_SUBNET=10.244.5.1/24 -> 10.244.5.0/24).
fl_subnet() { # N
	local s
	s=$(sed -n 's/^FLANNEL_SUBNET=//p' "$(fl_env "$1")")
	local ip=${s%/*} len=${s#*/}
	local last=${ip##*.}
	echo "${ip%.*}.$((last - 1))/$len"
}

fl_key() { # N: the etcd key of node N's lease
	local sn
	sn=$(fl_subnet "$1")
	echo "$FL_PREFIX/subnets/${sn%/*}-${sn#*/}"
}

fl_mac() { # N: MAC of flannel.1 on node N
	in_n "$1" cat /sys/class/net/flannel.1/address
}

# The etcd lease id (decimal) a key is attached to; 0 for none. (JSON
# output loses precision in jq: ids are 64-bit.)
fl_lease_id() { # KEY
	fl_etcdctl get "$1" -w fields | sed -n 's/^"Lease" : //p'
}

fl_key_absent() { # KEY
	[[ -z $(fl_etcdctl get --keys-only "$1") ]]
}

# Poll CMD until it succeeds.
wait_for() { # TIMEOUT_S DESCRIPTION CMD...
	local t=$1 what=$2 i
	shift 2
	for ((i = 0; i < t * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "timed out after ${t}s waiting for: $what"
}

# Everything node N has programmed for its peers, normalised.
fl_routes() { in_n "$1" ip -4 route show dev flannel.1 | sort; }
fl_neighs() { in_n "$1" ip -4 neigh show dev flannel.1 nud permanent | sort; }
fl_fdbs() { in_n "$1" bridge fdb show dev flannel.1 | grep ' dst ' | sort; }

# The lines node N must have for peer M.
fl_expect_peer() { # N M -> sets EXP_ROUTE EXP_NEIGH EXP_FDB
	local m=$2 sn mac
	sn=$(fl_subnet "$m")
	mac=$(fl_mac "$m")
	EXP_ROUTE="$sn via ${sn%/*} onlink"
	EXP_NEIGH="${sn%/*} lladdr $mac PERMANENT"
	EXP_FDB="$mac dst 10.99.0.$m self permanent"
}

# Node N has exactly the entries for peers M...
fl_assert_peers() { # N M...
	local n=$1 m
	shift
	local routes="" neighs="" fdbs=""
	for m in "$@"; do
		fl_expect_peer "$n" "$m"
		routes+="$EXP_ROUTE"$'\n'
		neighs+="$EXP_NEIGH"$'\n'
		fdbs+="$EXP_FDB"$'\n'
	done
	assert_eq "$(sort <<<"${routes%$'\n'}" | sed '/^$/d')" "$(fl_routes "$n" | sed 's/ *$//')" "routes on flannel.1 of node $n"
	assert_eq "$(sort <<<"${neighs%$'\n'}" | sed '/^$/d')" "$(fl_neighs "$n" | sed 's/ *$//')" "ARP entries on flannel.1 of node $n"
	assert_eq "$(sort <<<"${fdbs%$'\n'}" | sed '/^$/d')" "$(fl_fdbs "$n" | sed 's/ *$//')" "FDB entries on flannel.1 of node $n"
}

fl_peers_ok() { # N M...: like fl_assert_peers, as a predicate
	(fl_assert_peers "$@") >/dev/null 2>&1
}

# fl_pod VAR N ID: a pod on node N through bridge + host-local, configured
# from node N's subnet.env the way the flannel plugin does it. Sets VAR to
# the pod's IPv4 address. The plugins are the ones under test (weft, or Go's
# with --plugins go: weft flanneld then serves Go's bridge/host-local).
fl_pod() {
	local var=$1 n=$2 id=$3 path sub mtu net conf out
	new_pod path
	FL_POD_NS[$id]=${path##*/}
	sub=$(fl_subnet "$n")
	mtu=$(sed -n 's/^FLANNEL_MTU=//p' "$(fl_env "$n")")
	net=$(sed -n 's/^FLANNEL_NETWORK=//p' "$(fl_env "$n")")
	conf=$(jq -nc --arg sub "$sub" --arg net "$net" --argjson mtu "$mtu" --arg data "$T/n$n/ipam" \
		'{cniVersion:"1.0.0",name:"cbr0",type:"bridge",bridge:"cni0",isGateway:true,isDefaultGateway:true,ipMasq:false,mtu:$mtu,
		  ipam:{type:"host-local",ranges:[[{subnet:$sub}]],routes:[{dst:$net}],dataDir:$data}}')
	out=$(printf '%s' "$conf" | in_n "$n" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=ADD \
		CNI_CONTAINERID="$id" CNI_NETNS="$path" CNI_IFNAME=eth0 CNI_PATH="$IPAM_DIR" "$MAIN_DIR/bridge") ||
		fail "pod $id on node $n: $out"
	printf -v "$var" '%s' "$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
}
declare -A FL_POD_NS=()

in_pod() { # ID CMD...
	local id=$1
	shift
	ip netns exec "${FL_POD_NS[$id]}" "$@"
}

# TCP transfer from pod A to pod B's IP (python3 on both ends): 1 MiB, checked.
fl_tcp_ok() { # FROM_ID TO_ID TO_IP
	local from=$1 to=$2 ip=$3
	in_pod "$to" python3 -c '
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001)); s.listen(1); s.settimeout(10)
c,_=s.accept(); n=0
while True:
    b=c.recv(65536)
    if not b: break
    n+=len(b)
c.sendall(str(n).encode()); c.close()' >"$T/tcp.$to" 2>&1 &
	local srv=$!
	sleep 0.3
	local got
	got=$(in_pod "$from" python3 -c '
import socket,sys
s=socket.create_connection((sys.argv[1], 5001), timeout=10)
s.sendall(b"x"*1048576); s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode())' "$ip" 2>&1)
	wait $srv
	assert_eq 1048576 "$got" "bytes received by $to over TCP"
}

# fl_assert_renewed N SECONDS: within SECONDS, node N renewed its lease: the key is still there,
# attached to a new etcd lease, and the renewal is logged.
fl_assert_renewed() {
	local n=$1 key id1 id2
	key=$(fl_key "$n")
	id1=$(fl_lease_id "$key")
	sleep "$2"
	id2=$(fl_lease_id "$key")
	[[ $id2 =~ ^[0-9]+$ && $id2 != 0 ]] || fail "key expired: renewal failed (lease '$id2'): $(fl_log "$n")"
	assert_ne "$id1" "$id2" "etcd lease after renewals"
	grep -q "Lease renewed" "$T/n$n/flanneld.log" || fail "no renewal logged: $(fl_log "$n")"
}

fl_log() { cat "$T/n$1/flanneld.log"; } # N: node N's flanneld log

# HTTP GET inside node 1 with bash's /dev/tcp: prints the status code.
fl_http_status() { # PORT PATH: the status code; fails while nothing answers (so wait_for waits)
	local status
	status=$(in_n 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET $2 HTTP/1.1\r\nHost: x\r\n\r\n' >&3 && head -n1 <&3" |
		awk '{print $2}')
	[[ -n $status ]] && echo "$status"
}
