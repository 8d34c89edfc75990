#!/usr/bin/env bash
# weft demo. Today: one node (a private netns) with pods on a weft bridge, talking to each other
# and to the node. The multi-node flannel demo (flanneld + VXLAN across three node netns) arrives
# with flanneld; this script will grow into it.
#
#   sudo scripts/demo.sh [--keep]     (--keep leaves the namespaces for you to explore)
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=0; [ "${1:-}" = "--keep" ] && KEEP=1
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root" >&2; exit 1; }
scripts/install-deps.sh
cargo build --release --quiet -p weft-bridge -p weft-host-local
BIN=$PWD/target/x86_64-unknown-linux-gnu/release
P=wdemo
DATA=$(mktemp -d /tmp/weft-demo.XXXXXX)
cleanup() {
  [ $KEEP = 1 ] && { echo "kept: ip netns list | grep $P; data in $DATA"; return; }
  for ns in ${P}node ${P}pod1 ${P}pod2; do ip netns del $ns 2>/dev/null || true; done
  rm -rf "$DATA"
}
trap cleanup EXIT
for ns in ${P}node ${P}pod1 ${P}pod2; do ip netns del $ns 2>/dev/null || true; ip netns add $ns; done
ip netns exec ${P}node ip link set lo up
cat > "$DATA/net.json" <<JSON
{"cniVersion":"1.0.0","name":"demo","type":"bridge","bridge":"cni0","isDefaultGateway":true,
 "ipMasq":true,"hairpinMode":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]],"dataDir":"$DATA/ipam"}}
JSON
add() { ip netns exec ${P}node env CNI_COMMAND=ADD CNI_CONTAINERID=$1 CNI_NETNS=/var/run/netns/$2 \
          CNI_IFNAME=eth0 CNI_PATH=$BIN $BIN/bridge < "$DATA/net.json"; }
echo "== ADD pod1"; add demo-pod1 ${P}pod1 | tee "$DATA/pod1.json"
echo "== ADD pod2"; add demo-pod2 ${P}pod2 > "$DATA/pod2.json"
ip1=$(jq -r '.ips[0].address' "$DATA/pod1.json" | cut -d/ -f1)
ip2=$(jq -r '.ips[0].address' "$DATA/pod2.json" | cut -d/ -f1)
echo "== pod1 ($ip1) -> pod2 ($ip2)"; ip netns exec ${P}pod1 ping -c 2 -W 1 "$ip2"
echo "== node -> pod1"; ip netns exec ${P}node ping -c 2 -W 1 "$ip1"
echo "== node: ip -br addr; bridge link"; ip netns exec ${P}node ip -br addr; ip netns exec ${P}node bridge link
echo "== host-local state"; ls -l "$DATA/ipam/demo"
echo "== ipMasq rules"; ip netns exec ${P}node iptables -t nat -S | grep -E 'CNI-|POSTROUTING' || true
for n in 1 2; do
  ip netns exec ${P}node env CNI_COMMAND=DEL CNI_CONTAINERID=demo-pod$n CNI_NETNS=/var/run/netns/${P}pod$n \
    CNI_IFNAME=eth0 CNI_PATH=$BIN $BIN/bridge < "$DATA/net.json"
done
echo "== after DEL: links and rules left on the node:"; ip netns exec ${P}node ip -br link
ip netns exec ${P}node iptables -t nat -S | grep -c 'CNI-' || true
echo "demo OK"
