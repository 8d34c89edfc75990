#!/usr/bin/env bash
# weft demo: a three-node flannel cluster in network namespaces.
#
#   scripts/demo.sh [--kube] [--keep]   (as root)
#   scripts/demo.sh -h|--help      this text (runs nothing)
#
# Builds the release binaries, then creates, all inside namespaces (the
# machine's own links, routes and firewall rules are never touched):
#   wdemo-ul           the "underlay": a bridge (10.99.0.254/24) and etcd, or with
#                      --kube the test Kubernetes API server (tests/kube/apiserver.py)
#                      holding Nodes node1..3 with podCIDRs 10.244.N.0/24
#   wdemo-n1..3        three nodes, eth0 = 10.99.0.N/24 on the underlay,
#                      each running weft flanneld (VXLAN backend; with --kube
#                      `--kube-subnet-mgr`, the lease being the Node's podCIDR)
#   wdemo-p1a..p3b     two pods per node, attached through the CNI chain
#                      weft flannel -> weft bridge -> weft host-local
# proves pod-to-pod traffic across nodes and on one node (ping and a TCP
# transfer), shows what flanneld programmed on node 1 and what it stored in
# etcd (or wrote on the Nodes: annotations and the NetworkUnavailable condition), then tears everything down (--keep leaves it for you to explore:
# `ip netns exec wdemo-n1 bash`).
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/${0##*/}
cd "$(dirname "$0")/.."

# usage [STATUS]: the header comment; on stderr when STATUS says misuse.
usage() {
	local text
	text=$(sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//')
	if [ "${1:-0}" = 0 ]; then echo "$text"; else echo "$text" >&2; fi
	exit "${1:-0}"
}

# Arguments first: asking for help or mistyping must never start the demo.
KEEP=0
KUBE=0
for arg in "$@"; do
	case $arg in
	--keep) KEEP=1 ;;
	--kube) KUBE=1 ;;
	-h | --help) usage 0 ;;
	*) echo "scripts/demo.sh: unknown argument '$arg'" >&2; usage 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

scripts/install-deps.sh
say "building weft (release)"
scripts/build --quiet  # weft and its plugin links, flanneld
BIN=$PWD/target/x86_64-unknown-linux-gnu/release

P=wdemo
UL=$P-ul
ETCD_IP=10.99.0.254
ETCD=http://$ETCD_IP:2379
API=http://$ETCD_IP:6443
NETWORK=10.244.0.0/16
D=$(mktemp -d /tmp/weft-demo.XXXXXX)
PIDS=()

nodes() { echo 1 2 3; }
all_ns() {
	echo $UL
	for n in $(nodes); do echo $P-n$n $P-p${n}a $P-p${n}b; done
}

cleanup() {
	local rc=$?
	if [ $KEEP = 1 ]; then
		echo
		echo "kept: namespaces $(all_ns | tr '\n' ' ')"
		echo "      flanneld, etcd and API server pids ${PIDS[*]}, logs and state in $D"
		echo "      remove with: kill ${PIDS[*]}; for ns in \$(ip netns list | grep -o '^$P-[^ ]*'); do ip netns del \$ns; done; rm -rf $D"
		return
	fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for ns in $(all_ns); do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$D"
	[ $rc = 0 ] && echo "demo OK (everything removed)"
}
trap cleanup EXIT

for ns in $(all_ns); do
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	ip netns exec "$ns" ip link set lo up
done

# flanneld needs br_netfilter (pods on cni0 must traverse iptables) unless
# the network uses nftables; the sysctl is per netns on current kernels.
modprobe br_netfilter 2>/dev/null || true
NFT=false
if ! ip netns exec $UL test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
	echo "br_netfilter is not available: using flannel's nftables mode (EnableNFTables)"
	NFT=true
fi

CONFIG="{\"Network\":\"$NETWORK\",\"EnableNFTables\":$NFT,\"Backend\":{\"Type\":\"vxlan\"}}"
ip netns exec $UL ip link add br0 type bridge
ip netns exec $UL ip link set br0 up
ip netns exec $UL ip addr add $ETCD_IP/24 dev br0
ectl() { ETCDCTL_API=3 ip netns exec $UL etcdctl --endpoints $ETCD "$@"; }
api() { ip netns exec $UL curl -sS --fail-with-body "$@"; } # [CURL_OPTIONS] URL
if [ $KUBE = 1 ]; then
	say "underlay: bridge + the test Kubernetes API server in netns $UL"
	ip netns exec $UL python3 tests/kube/apiserver.py --listen $ETCD_IP --port 6443 >"$D/apiserver.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do api -o /dev/null $API/weft-test/ready 2>/dev/null && break; sleep 0.1; done
	for n in $(nodes); do
		api -o /dev/null -X POST -H 'Content-Type: application/json' $API/api/v1/nodes --data-binary \
			"{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"node$n\"},\"spec\":{\"podCIDR\":\"10.244.$n.0/24\",\"podCIDRs\":[\"10.244.$n.0/24\"]}}"
		echo "Node node$n: spec.podCIDR 10.244.$n.0/24"
	done
	echo "$CONFIG" >"$D/net-conf.json"
	echo "net-conf.json: $CONFIG"
else
	say "underlay: bridge + etcd in netns $UL"
	ip netns exec $UL etcd --name demo --data-dir "$D/etcd" \
		--listen-client-urls $ETCD --advertise-client-urls $ETCD \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster demo=http://127.0.0.1:2380 >"$D/etcd.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do ectl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
	ectl endpoint health
	ectl put /coreos.com/network/config "$CONFIG" >/dev/null
	echo "network config: $CONFIG"
fi

say "nodes: 10.99.0.{1,2,3} on the underlay, weft flanneld on each"
for n in $(nodes); do
	ns=$P-n$n
	mkdir -p "$D/n$n"
	ip netns exec $UL ip link add veth-n$n type veth peer name eth0 netns $ns
	ip netns exec $UL ip link set veth-n$n master br0 up
	ip netns exec $ns ip addr add 10.99.0.$n/24 dev eth0
	ip netns exec $ns ip link set eth0 up
	ip netns exec $ns ip route add default via $ETCD_IP
	ip netns exec $ns sysctl -qw net.ipv4.ip_forward=1
	if [ $KUBE = 1 ]; then
		mode=(--kube-subnet-mgr --kube-api-url=$API --net-config-path="$D/net-conf.json")
	else
		mode=(--etcd-endpoints=$ETCD)
	fi
	ip netns exec $ns env NODE_NAME=node$n "$BIN/flanneld" "${mode[@]}" --iface=eth0 --ip-masq \
		--subnet-file="$D/n$n/subnet.env" >"$D/n$n/flanneld.log" 2>&1 &
	PIDS+=($!)
done
for n in $(nodes); do
	for _ in $(seq 1 100); do [ -s "$D/n$n/subnet.env" ] && break; sleep 0.1; done
	[ -s "$D/n$n/subnet.env" ] || { tail "$D/n$n/flanneld.log"; exit 1; }
	echo "node $n: $(grep FLANNEL_SUBNET "$D/n$n/subnet.env")"
done

say "pods: two per node, through weft flannel -> bridge -> host-local (plugin stderr: $D/cni.log)"
declare -A IP
for n in $(nodes); do
	for x in a b; do
		pod=$P-p$n$x
		conf=$(printf '{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","subnetFile":"%s","dataDir":"%s","ipam":{"dataDir":"%s"},"delegate":{"hairpinMode":true,"isDefaultGateway":true}}' \
			"$D/n$n/subnet.env" "$D/n$n/flannel" "$D/n$n/ipam")
		out=$(ip netns exec $P-n$n env CNI_COMMAND=ADD CNI_CONTAINERID=demo-$n$x CNI_NETNS=/var/run/netns/$pod \
			CNI_IFNAME=eth0 CNI_PATH="$BIN" "$BIN/flannel" <<<"$conf" 2>>"$D/cni.log")
		IP[$n$x]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
		echo "pod p$n$x on node $n: ${IP[$n$x]}"
	done
done

# Give each node a moment to program its peers.
for n in $(nodes); do
	for _ in $(seq 1 50); do
		[ "$(ip netns exec $P-n$n ip route show dev flannel.1 | wc -l)" -ge 2 ] && break
		sleep 0.1
	done
done

say "pod-to-pod ping"
for pair in "1a 2a" "1a 3b" "2b 3a" "3a 1b" "1a 1b"; do
	set -- $pair
	where="across nodes"
	[ "${1:0:1}" = "${2:0:1}" ] && where="same node"
	printf 'p%s (%s) -> p%s (%s), %s: ' "$1" "${IP[$1]}" "$2" "${IP[$2]}" "$where"
	ip netns exec $P-p$1 ping -c 2 -i 0.2 -W 2 -q "${IP[$2]}" | grep 'packets transmitted'
done

say "pod-to-pod TCP: 4 MiB from p1a (node 1) to p3b (node 3)"
if ! command -v python3 >/dev/null; then
	apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null 2>&1 || true
fi
if command -v python3 >/dev/null; then
	ip netns exec $P-p3b python3 -c '
import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001)); s.listen(1); s.settimeout(20)
c,a=s.accept(); n=0
while True:
    b=c.recv(65536)
    if not b: break
    n+=len(b)
c.sendall(("%d bytes from %s" % (n, a[0])).encode()); c.close()' &
	srv=$!
	sleep 0.5
	ip netns exec $P-p1a python3 -c '
import socket,sys,time
t=time.time(); s=socket.create_connection((sys.argv[1], 5001), timeout=20)
s.sendall(b"x"*(4<<20)); s.shutdown(socket.SHUT_WR)
print("server received %s in %.0f ms" % (s.recv(200).decode(), (time.time()-t)*1000))' "${IP[3b]}"
	wait $srv
else
	echo "(python3 not available: TCP transfer skipped)"
fi

say "node 1: ip -d link show flannel.1"
ip netns exec $P-n1 ip -d link show flannel.1
say "node 1: ip route"
ip netns exec $P-n1 ip route
say "node 1: ip neigh show dev flannel.1"
ip netns exec $P-n1 ip neigh show dev flannel.1
say "node 1: bridge fdb show dev flannel.1"
ip netns exec $P-n1 bridge fdb show dev flannel.1
say "node 1: subnet.env"
cat "$D/n1/subnet.env"
if [ $NFT = true ]; then
	say "node 1: nft list table ip flannel-ipv4"
	ip netns exec $P-n1 nft list table ip flannel-ipv4
else
	say "node 1: iptables -t nat -S FLANNEL-POSTRTG"
	ip netns exec $P-n1 iptables -t nat -S FLANNEL-POSTRTG
fi

if [ $KUBE = 1 ]; then
	say "API server: the Nodes' flannel annotations and NetworkUnavailable condition"
	for _ in $(seq 1 50); do
		api $API/api/v1/nodes | jq -e '[.items[].status.conditions[]? | select(.type == "NetworkUnavailable")] | length == 3' >/dev/null && break
		sleep 0.1
	done
	api $API/api/v1/nodes | jq -r '.items[] | "\(.metadata.name) podCIDR \(.spec.podCIDR)",
		(.metadata.annotations | to_entries[] | "  \(.key)=\(.value)"),
		(.status.conditions[]? | "  condition \(.type)=\(.status) (\(.reason): \(.message))")'
else
	say "etcd: etcdctl get --prefix /coreos.com/network"
	ectl get --prefix /coreos.com/network
	say "etcd: lease TTLs"
	for key in $(ectl get --prefix --keys-only /coreos.com/network/subnets); do
		id=$(ectl get "$key" -w fields | sed -n 's/^"Lease" : //p')
		printf '%s: ' "$key"
		ectl lease timetolive "$(printf '%x' "$id")"
	done
fi

say "teardown"
for n in $(nodes); do
	for x in a b; do
		conf=$(printf '{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","subnetFile":"%s","dataDir":"%s","ipam":{"dataDir":"%s"},"delegate":{"hairpinMode":true,"isDefaultGateway":true}}' \
			"$D/n$n/subnet.env" "$D/n$n/flannel" "$D/n$n/ipam")
		[ $KEEP = 1 ] || ip netns exec $P-n$n env CNI_COMMAND=DEL CNI_CONTAINERID=demo-$n$x \
			CNI_NETNS=/var/run/netns/$P-p$n$x CNI_IFNAME=eth0 CNI_PATH="$BIN" "$BIN/flannel" <<<"$conf" 2>>"$D/cni.log"
	done
done
