# shellcheck shell=bash
# Helpers shared by tests/portmap/*.sh (sourced by them; defines functions only).
#
# Topology, all inside the test's own namespaces:
#
#   client netns  eth0 192.168.77.2/24, 192.168.78.2/24, fd77::2/64
#        |  veth
#   node netns    wtcl0 192.168.77.1/24, 192.168.78.1/24, fd77::1/64   (the "node IPs")
#                 wtbr0 10.88.7.1/24, 2001:db8:7::1/64                  (weft/Go bridge)
#        |  veth (bridge plugin, hairpinMode on)
#   pod netns     eth0 10.88.7.x/24 (+ 2001:db8:7::x/64), servers from pm_echo.py
#
# Traffic never leaves these namespaces.

PM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PM_ECHO=$PM_DIR/pm_echo.py
NODE_IP=192.168.77.1
NODE_IP2=192.168.78.1
NODE_IP6=fd77::1

# pm_conf VERSION MAPPINGS_JSON [JQ]: a portmap conf for network $NET.
pm_conf() {
	local v=$1 maps=$2 f=${3:-.}
	jq -n --arg v "$v" --arg net "$NET" --argjson maps "$maps" \
		'{cniVersion: $v, name: $net, type: "portmap",
		  runtimeConfig: {portMappings: $maps}}' | jq "$f"
}

# The mappings most tests use: tcp 8080->80 and udp 8053->53.
PM_MAPS='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":8053,"containerPort":53,"protocol":"udp"}]'

# pm_pod VAR_POD VAR_RESULT CID [BRIDGE_JQ]: a pod on the bridge (hairpin on), as
# libcni's first plugin; the bridge's result goes to VAR_RESULT.
pm_pod() {
	local -n _pod=$1 _res=$2
	local cid=$3 f=${4:-.}
	new_pod _pod
	must_add "$(bridge_conf 1.0.0 ".hairpinMode = true | $f")" "$cid" eth0 "$_pod"
	_res=$OUT
}

# pm_add CONF CID POD RESULT: portmap ADD chained after the bridge (prevResult = RESULT).
pm_add() {
	must_add "$(with_prev "$1" "$4")" "$2" eth0 "$3"
}

# pm_client VAR: the client netns, wired to the node with a veth.
pm_client() {
	local -n _cl=$1
	new_pod _cl
	local name=${_cl##*/}
	in_node ip link add wtcl0 type veth peer name eth0 netns "$name" || fail "client veth"
	in_node ip addr add "$NODE_IP/24" dev wtcl0
	in_node ip addr add "$NODE_IP2/24" dev wtcl0
	in_node ip addr add "$NODE_IP6/64" dev wtcl0 nodad
	in_node ip link set wtcl0 up
	in_ns "$_cl" ip addr add 192.168.77.2/24 dev eth0
	in_ns "$_cl" ip addr add 192.168.78.2/24 dev eth0
	in_ns "$_cl" ip addr add fd77::2/64 dev eth0 nodad
	in_ns "$_cl" ip link set eth0 up
}

# pm_serve POD PORT TAG: answers TCP and UDP on PORT in POD with "TAG <peer>".
pm_serve() {
	local pod=$1 port=$2 tag=$3 ready i
	ready=$T/ready.$tag.$port
	in_ns "$pod" python3 "$PM_ECHO" serve "$port" "$tag" "$ready" >/dev/null 2>&1 &
	track_pid $!
	for i in $(seq 1 50); do
		[[ -s $ready ]] && return 0
		sleep 0.05
	done
	fail "server $tag on port $port did not start"
}

# pm_ask NS PROTO ADDR PORT [SRCPORT]: the answer (empty if none).
pm_ask() {
	in_ns "$1" python3 "$PM_ECHO" ask "$2" "$3" "$4" "${5:-}" 2>/dev/null
}

# expect_answer NS PROTO ADDR PORT ERE [SRCPORT]
expect_answer() {
	local got
	got=$(pm_ask "$1" "$2" "$3" "$4" "${6:-}")
	[[ $got =~ $5 ]] || fail "$2 $3:$4 from ${1##*/}: expected /$5/, got '$got'"
	log "answer $2 $3:$4 from ${1##*/}: $got"
}

# expect_no_answer NS PROTO ADDR PORT
expect_no_answer() {
	local got
	got=$(PM_TIMEOUT=0.7 pm_ask "$1" "$2" "$3" "$4")
	[[ -z $got ]] || fail "$2 $3:$4 from ${1##*/}: expected no answer, got '$got'"
}

# Go's per-container chain: CNI-DN- + 21 hex of sha512(net + cid).
dn_chain() { printf 'CNI-DN-%s' "$(printf '%s%s' "$1" "$2" | sha512sum | cut -c1-21)"; }

# Everything of the nat tables (v4 and v6) that mentions the container.
pm_traces() { # CID
	local ch
	ch=$(dn_chain "$NET" "$1")
	{
		in_node iptables-save -t nat
		in_node ip6tables-save -t nat
	} 2>/dev/null | grep -E -- "$ch|id: \\\\\"$1\\\\\"" || true
	in_node nft list ruleset 2>/dev/null | grep -E "\"$1\"|weft_[0-9a-f]{16}_$(sha16 "$1")" || true
}

# The iptables-save lines of the shared chains (they stay after DEL, as in Go).
pm_shared_lines() {
	cat <<-'EOF'
		-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
		-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
		-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
		-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
		-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
	EOF
}

# conntrack entries (conntrack -L lines) of UDP flows to PORT in the node netns.
pm_ct() { in_node conntrack -L -p udp --orig-port-dst "$1" 2>/dev/null; }

need_conntrack() { command -v conntrack >/dev/null || skip "conntrack (conntrack-tools) not installed"; }

# The firewall state portmap touches, without packet counters: nat rules and chains of both
# families, the cni_hostport tables and the route_localnet settings.
pm_state() {
	{
		echo "# nat"
		in_node iptables-save -t nat | grep -E '^(-A|:)' | sed 's/ \[[0-9]*:[0-9]*\]$//'
		echo "# nat6"
		in_node ip6tables-save -t nat | grep -E '^(-A|:)' | sed 's/ \[[0-9]*:[0-9]*\]$//'
		echo "# nft"
		in_node nft list table ip cni_hostport
		in_node nft list table ip6 cni_hostport
	} 2>/dev/null | grep -vE '^\s*packets [0-9]+ bytes [0-9]+$'
}

assert_state_unchanged() { # STATE WHAT
	local now
	now=$(pm_state)
	if [[ $now != "$1" ]]; then
		log "state diff (- before, + after):"
		diff <(echo "$1") <(echo "$now") >&2
		fail "$2"
	fi
}

# A container that stays, so the shared chains exist before the snapshot.
pm_warm() {
	local wp wr
	pm_pod wp wr c0 "${1:-.}"
	pm_add "$(pm_conf 1.0.0 '[{"hostPort":7000,"containerPort":70,"protocol":"tcp"}]')" c0 "$wp" "$wr"
}
