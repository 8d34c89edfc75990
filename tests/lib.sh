# shellcheck shell=bash
# Shared helpers for weft's CNI conformance tests.
#
# Every test runs in its own bash process (see tests/run).  It gets:
#   - a "node" netns ($NODE) in which the plugins run, so the machine's root
#     netns links, routes, sysctls and firewall rules are never touched;
#   - pod netns made on demand with new_pod;
#   - a temp dir ($T) holding the host-local dataDir ($DATA);
#   - an EXIT trap that deletes every netns and dir the test created.
#
# Plugin selection (set by tests/run):
#   PLUGINS=weft  -> $WEFT_BIN (default <repo>/target/x86_64-unknown-linux-gnu/release)
#   PLUGINS=go    -> $GO_BIN   (default /usr/lib/cni)
# MAIN_DIR is where the invoked plugin (conf "type") is taken from, IPAM_DIR
# is CNI_PATH (where bridge finds host-local).  Interop tests change them.

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TESTS_DIR/.." && pwd)

export LC_ALL=C
PLUGINS=${PLUGINS:-weft}
WEFT_BIN=${WEFT_BIN:-target/x86_64-unknown-linux-gnu/release}
case $WEFT_BIN in /*) ;; *) WEFT_BIN=$REPO_ROOT/$WEFT_BIN ;; esac
GO_BIN=${GO_BIN:-/usr/lib/cni}

case $PLUGINS in
weft) PLUGIN_DIR=$WEFT_BIN ;;
go) PLUGIN_DIR=$GO_BIN ;;
*)
	echo "lib.sh: PLUGINS must be weft or go, got '$PLUGINS'" >&2
	exit 2
	;;
esac
MAIN_DIR=$PLUGIN_DIR
IPAM_DIR=$PLUGIN_DIR

# Every netns this suite makes starts with this prefix (tests/run sweeps
# leftovers of dead test processes by it).
NS_PREFIX=wtst
SKIP_RC=77

# Defaults used by the conf generators.  Everything lives in the node netns,
# so fixed names and subnets cannot collide between parallel tests.
NET=wtnet
BR=wtbr0
SUBNET4=10.88.7.0/24
GW4=10.88.7.1
SUBNET6=2001:db8:7::/64
GW6=2001:db8:7::1

_NS_LIST=()
_PID_LIST=()
_POD_N=0

log() { printf '%s\n' "$*" >&2; }

fail() {
	log "FAIL: $*"
	local i
	for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
		log "  ${FUNCNAME[i]} called from ${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]}"
	done
	exit 1
}

skip() {
	log "SKIP: $*"
	exit $SKIP_RC
}

# Tests whose behaviour deliberately differs from (improves on) Go 1.1.1.
# FORCE_WEFT_ONLY=1 runs them anyway (to see them fail against Go).
weft_only() {
	[[ $PLUGINS == weft || ${FORCE_WEFT_ONLY:-0} == 1 ]] || skip "weft-only: $*"
}

is_weft() { [[ $PLUGINS == weft ]]; }

need_bin() {
	local d
	for d in "$@"; do
		[[ -x $d ]] || skip "plugin binary $d not built"
	done
}

# ---------------------------------------------------------------- lifecycle

_cleanup() {
	local rc=$? p n
	trap - EXIT INT TERM
	for p in "${_PID_LIST[@]}"; do kill "$p" 2>/dev/null; done
	for n in "${_NS_LIST[@]}"; do ip netns del "$n" 2>/dev/null; done
	[[ -n ${T:-} && -d $T ]] && rm -rf "$T"
	exit "$rc"
}

# Called by tests/run through `bash lib.sh FILE FUNC`.
_lib_main() {
	local file=$1 fn=$2
	trap _cleanup EXIT
	trap 'exit 143' INT TERM
	T=$(mktemp -d "${TMPDIR:-/tmp}/$NS_PREFIX.$$.XXXX") || fail "mktemp"
	DATA=$T/data
	NODE=$NS_PREFIX$$n
	_new_ns "$NODE"
	NODE_NS=/var/run/netns/$NODE
	# shellcheck disable=SC1090
	source "$file" || fail "cannot source $file"
	declare -F "$fn" >/dev/null || fail "no test function $fn in $file"
	log "=== $fn ($PLUGINS: main=$MAIN_DIR ipam=$IPAM_DIR)"
	"$fn"
	log "=== PASS"
	exit 0
}

_new_ns() {
	ip netns add "$1" || fail "ip netns add $1"
	_NS_LIST+=("$1")
	ip netns exec "$1" ip link set lo up || fail "lo up in $1"
}

# new_pod VAR: creates a pod netns and stores its path in VAR.
new_pod() {
	_POD_N=$((_POD_N + 1))
	local name=$NS_PREFIX$$p$_POD_N
	_new_ns "$name"
	printf -v "$1" '%s' "/var/run/netns/$name"
}

# Runs a command in a netns given by name or path.
in_ns() {
	local ns=${1##*/}
	shift
	ip netns exec "$ns" "$@"
}
in_node() { ip netns exec "$NODE" "$@"; }

# Background job whose pid the trap kills.
track_pid() { _PID_LIST+=("$1"); }

# ------------------------------------------------------------- conf makers

# bridge_conf VERSION [JQ_FILTER]: a bridge + host-local conf at VERSION.
bridge_conf() {
	local v=$1 f=${2:-.}
	jq -n --arg v "$v" --arg net "$NET" --arg br "$BR" --arg sub "$SUBNET4" \
		--arg data "$DATA" '{cniVersion: $v, name: $net, type: "bridge",
		bridge: $br, isDefaultGateway: true,
		ipam: {type: "host-local", subnet: $sub, dataDir: $data}}' | jq "$f"
}

# hl_conf VERSION [JQ_FILTER]: a host-local-only conf ("type" host-local so
# the cni_* helpers run host-local directly).
hl_conf() {
	local v=$1 f=${2:-.}
	jq -n --arg v "$v" --arg net "$NET" --arg sub "$SUBNET4" --arg data "$DATA" \
		'{cniVersion: $v, name: $net, type: "host-local",
		ipam: {type: "host-local", subnet: $sub, dataDir: $data}}' | jq "$f"
}

# dual-stack ranges filter for either maker
DUAL_RANGES='.ipam |= (del(.subnet) | .ranges = [[{subnet: "'$SUBNET4'"}], [{subnet: "'$SUBNET6'"}]])'

# with_prev CONF RESULT: conf with prevResult set.
with_prev() {
	jq --argjson r "$2" '.prevResult = $r' <<<"$1"
}

# ------------------------------------------------------------ plugin calls

# cni_call CMD CONF CID IFNAME NETNS [NAME=VAL | -NAME ...]
# Runs the plugin named by CONF's "type" from $MAIN_DIR inside the node netns
# with a clean environment.  Sets OUT (stdout), RC (exit code), ERRF (stderr
# file) and OUTF (raw stdout file, to check bytes).
CALL_N=0
cni_call() {
	local cmd=$1 conf=$2 cid=$3 ifn=$4 netns=$5
	shift 5
	# the binary: $CNI_TYPE if set, else the conf's "type", else bridge
	local type=${CNI_TYPE:-}
	[[ -n $type ]] || type=$(jq -r '.type // empty' <<<"$conf" 2>/dev/null | head -n1)
	[[ -n $type ]] || type=bridge
	local -A env=(
		[PATH]=/usr/sbin:/usr/bin:/sbin:/bin
		[CNI_COMMAND]=$cmd [CNI_CONTAINERID]=$cid [CNI_NETNS]=$netns
		[CNI_IFNAME]=$ifn [CNI_PATH]=$IPAM_DIR
	)
	local a
	for a in "$@"; do
		case $a in
		-*) unset "env[${a#-}]" ;;
		*=*) env[${a%%=*}]=${a#*=} ;;
		esac
	done
	local envv=() k
	for k in "${!env[@]}"; do envv+=("$k=${env[$k]}"); done
	CALL_N=$((CALL_N + 1))
	[[ -x $MAIN_DIR/$type ]] || fail "plugin binary $MAIN_DIR/$type not found (weft: scripts/build)"
	# BASHPID: calls may run in parallel subshells
	local tag=$BASHPID.$CALL_N
	OUTF=$T/out.$tag
	ERRF=$T/err.$tag
	printf '%s' "$conf" >"$T/in.$tag"
	ip netns exec "$NODE" env -i "${envv[@]}" "$MAIN_DIR/$type" \
		<"$T/in.$tag" >"$OUTF" 2>"$ERRF"
	RC=$?
	OUT=$(cat "$OUTF")
	log "--- $cmd $type cid=$cid if=$ifn netns=$netns $* -> rc=$RC"
	[[ -n $OUT ]] && log "$OUT"
	[[ -s $ERRF ]] && log "stderr: $(head -c 2000 "$ERRF")"
	return 0
}

cni_add() { cni_call ADD "$@"; }
cni_del() { cni_call DEL "$@"; }
cni_check() { cni_call CHECK "$@"; }

# Same, failing the test unless the call succeeds.
must_add() {
	cni_call ADD "$@"
	[[ $RC == 0 ]] || fail "ADD failed (rc=$RC): $OUT"
}
must_del() {
	cni_call DEL "$@"
	[[ $RC == 0 ]] || fail "DEL failed (rc=$RC): $OUT"
}
must_check() {
	cni_call CHECK "$@"
	[[ $RC == 0 ]] || fail "CHECK failed (rc=$RC): $OUT"
}

# ---------------------------------------------------------------- asserts

assert_eq() { # EXPECTED ACTUAL [WHAT]
	[[ $1 == "$2" ]] || fail "${3:-value}: expected '$1', got '$2'"
}

assert_ne() { # UNEXPECTED ACTUAL [WHAT]
	[[ $1 != "$2" ]] || fail "${3:-value}: did not expect '$1'"
}

assert_match() { # ERE STRING [WHAT]
	[[ $2 =~ $1 ]] || fail "${3:-value}: '$2' does not match /$1/"
}

assert_rc() { # EXPECTED (exit code of the last cni call)
	[[ $RC == "$1" ]] || fail "exit code: expected $1, got $RC; stdout: $OUT"
}

# assert_json FILTER EXPECTED [JSON]: jq -r FILTER on OUT (or JSON) equals EXPECTED.
assert_json() {
	local got
	got=$(jq -r "$1" <<<"${3-$OUT}" 2>&1) || fail "jq '$1' failed on: ${3-$OUT}"
	[[ $got == "$2" ]] || fail "jq '$1': expected '$2', got '$got'"
}

# assert_jq FILTER [JSON]: FILTER must evaluate to true.
assert_jq() {
	jq -e "$1" <<<"${2-$OUT}" >/dev/null 2>&1 || fail "jq -e '$1' is not true for: ${2-$OUT}"
}

# The last call failed with a CNI error whose code matches CODES ("4" or
# "6|7") and whose msg+details match the case-insensitive ERE.
assert_error() { # CODES ERE
	[[ $RC != 0 ]] || fail "expected failure with code $1, but the call succeeded: $OUT"
	jq -e 'type == "object" and (.code | type == "number") and (.msg | type == "string")' \
		<<<"$OUT" >/dev/null 2>&1 || fail "stdout is not a CNI error object: $OUT"
	local code
	code=$(jq -r .code <<<"$OUT")
	[[ $code =~ ^($1)$ ]] || fail "error code: expected $1, got $code ($OUT)"
	assert_msg "$2"
}

assert_msg() { # ERE
	local text
	text=$(jq -r '(.msg // "") + " | " + (.details // "")' <<<"$OUT" 2>/dev/null)
	grep -qiE -- "$1" <<<"$text" || fail "error message does not match /$1/: $text"
}

# For errors where Go 1.1.1 only has a plain Go error (999) and weft uses a
# precise code: assert the code under weft, only the message under go.
#   assert_error_w WEFT_CODES GO_CODE ERE
assert_error_w() {
	if is_weft; then
		assert_error "$1" "$3"
	else
		assert_error "$2" "$3"
	fi
}

# CNI result / error JSON is printed with Go's 4-space indent, no trailing newline.
assert_go_layout() {
	local first second last
	first=$(head -n1 "$OUTF")
	second=$(sed -n 2p "$OUTF")
	last=$(tail -c1 "$OUTF" | od -An -c | tr -d ' ')
	assert_eq "{" "$first" "first output line"
	assert_match '^    "[a-zA-Z]+": ' "$second" "second output line (4-space indent)"
	assert_eq "}" "$last" "last output byte (no trailing newline)"
}

# ------------------------------------------------------ state snapshots

# Everything a failed call could leave behind: links in the node netns, IP
# reservation files, iptables/ip6tables rules and nft rules.
snapshot() {
	{
		echo "# links"
		in_node ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
		echo "# addrs"
		in_node ip -o addr show | awk '{print $2, $4}' | grep -v '^lo ' | grep -v ' fe80:' | sort
		echo "# files"
		[[ -d $DATA ]] && (cd "$DATA" && find . -type f ! -name lock ! -name 'last_reserved_ip.*' | sort)
		echo "# iptables"
		in_node iptables-save 2>/dev/null | grep '^-A' | sort
		echo "# ip6tables"
		in_node ip6tables-save 2>/dev/null | grep '^-A' | sort
		echo "# nft"
		nft_rules
	} 2>/dev/null
}

# nft rules only (table/chain skeletons may legitimately appear on listing).
nft_rules() {
	in_node nft list ruleset 2>/dev/null |
		grep -vE '^\s*(table|chain|type|policy|comment|\}|$)' | sed 's/^\s*//' | sort
}

assert_unchanged() { # SNAPSHOT [WHAT]
	local now
	now=$(snapshot)
	if [[ $now != "$1" ]]; then
		log "state diff (- before, + after):"
		diff <(echo "$1") <(echo "$now") >&2
		fail "${2:-state} changed"
	fi
}

# ------------------------------------------------------------- net helpers

node_links() { in_node ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'; }
link_exists() { in_node ip link show dev "$1" >/dev/null 2>&1; }
pod_link_exists() { in_ns "$1" ip link show dev "$2" >/dev/null 2>&1; }

# host-side veth names in the node netns
node_veths() { in_node ip -o link show type veth | awk -F': ' '{print $2}' | sed 's/@.*//'; }

ip_files() { # ip reservation files in $DATA/$NET
	[[ -d $DATA/$NET ]] || return 0
	(cd "$DATA/$NET" && ls -1 | grep -vE '^(lock|last_reserved_ip\..*)$')
}

# ping_ok NS ADDR: a few attempts (neighbour resolution, DAD).
ping_ok() {
	local ns=$1 addr=$2 i
	for i in 1 2 3 4 5; do
		if in_ns "$ns" ping -n -c1 -W1 "$addr" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	fail "ping from ${ns##*/} to $addr failed"
}

ping_fails() { # NS ADDR: must NOT be reachable
	if in_ns "$1" ping -n -c1 -W1 "$2" >/dev/null 2>&1; then
		fail "ping from ${1##*/} to $2 unexpectedly succeeded"
	fi
}

# Wait until no address on NS (all devices) is tentative (IPv6 DAD).
wait_no_tentative() {
	local ns=$1 i
	for i in $(seq 1 40); do
		[[ -z $(in_ns "$ns" ip -6 addr show tentative) ]] && return 0
		sleep 0.1
	done
	fail "addresses in ${ns##*/} still tentative"
}

# Go's utils.FormatChainName: "CNI-" + hex(sha512(name+id)), 28 chars.
chain_name() { printf 'CNI-%s' "$(printf '%s' "$1$2" | sha512sum | cut -c1-24)"; }
# Go's utils.FormatComment for ipMasq rules, as iptables-save prints it.
masq_comment() { printf '"name: \\"%s\\" id: \\"%s\\""' "$1" "$2"; }
# nft ipMasq comment prefix: hash16(net) "-" hash16(ifname:cid)
sha16() { printf '%s' "$1" | sha512sum | cut -c1-16; }
nft_masq_comment() { printf '%s-%s, net: %s, if: %s, id: %s' "$(sha16 "$1")" "$(sha16 "$2:$3")" "$1" "$2" "$3"; }

# Rules of the nat table (iptables-save -A lines) in the node netns.
# failing_writes DIR: iptables/ip6tables(-restore) and nft wrappers in DIR that run the real
# tools but fail every call that deletes something (-D, -X, nft "delete"), as a broken
# firewall would; listings work. FAILING_ENV then points the WEFT_* overrides at them.
failing_writes() {
	local d=$1 t real
	mkdir -p "$d"
	for t in iptables ip6tables iptables-restore ip6tables-restore nft; do
		real=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$t") || fail "$t not found"
		cat >"$d/$t" <<EOF
#!/bin/sh
in=""
case "$t" in *-restore) in=\$(cat) ;; nft) [ "\$1" = "-f" ] && in=\$(cat) ;; esac
case " \$* \$in" in
*"-D "*|*"-X "*|*"delete "*) echo "weft-test: injected failure" >&2; exit 1 ;;
esac
if [ -n "\$in" ]; then printf '%s\n' "\$in" | exec "$real" "\$@"; fi
exec "$real" "\$@"
EOF
		chmod +x "$d/$t"
	done
	FAILING_ENV=(WEFT_IPTABLES="$d/iptables" WEFT_IP6TABLES="$d/ip6tables"
		WEFT_IPTABLES_RESTORE="$d/iptables-restore" WEFT_IP6TABLES_RESTORE="$d/ip6tables-restore"
		WEFT_NFT="$d/nft")
}

nat_rules() { in_node iptables-save -t nat 2>/dev/null | grep '^-A' ; }
nat6_rules() { in_node ip6tables-save -t nat 2>/dev/null | grep '^-A' ; }

# Container id helper: address of the pod's eth0 from a result.
result_ip4() { jq -r '[.ips[] | select(.address | contains(".")) | .address][0] | split("/")[0]' <<<"${1-$OUT}"; }
result_ip6() { jq -r '[.ips[] | select(.address | contains(":")) | .address][0] | split("/")[0]' <<<"${1-$OUT}"; }

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	_lib_main "$@"
fi
