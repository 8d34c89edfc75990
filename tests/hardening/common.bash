# shellcheck shell=bash
# Helpers for tests/hardening/*.sh (function definitions only: sourcing has no side effects).
#
# The "stack" most hardening tests drive is what a runtime runs for the stock bridge
# conflist: bridge (+ host-local, ipMasq) then portmap chained after it, ADD in order and DEL
# in reverse order, each with the previous result, exactly as libcni does.  Leaks are judged
# by scripts/leakcheck, run inside the node netns with the test's dataDirs.

HD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/portmap/pm.bash
source "$HD_DIR/../portmap/pm.bash"
# shellcheck source=tests/flannel/common.bash
source "$HD_DIR/../flannel/common.bash"

LEAKCHECK=$REPO_ROOT/scripts/leakcheck
HD_MAPS='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":8053,"containerPort":53,"protocol":"udp"}]'

# figure NAME VALUE: records a figure for scripts/reliability (FIGURES_OUT) and the log.
figure() {
	log "FIGURE $1 = $2"
	[[ -n ${FIGURES_OUT:-} ]] && printf '%s\t%s\n' "$1" "$2" >>"$FIGURES_OUT"
	return 0
}

# hd_confs [BRIDGE_JQ] [PORTMAP_JQ]: sets HD_BR_CONF and HD_PM_CONF (bridge with ipMasq,
# portmap with two mappings), cniVersion 1.0.0.
hd_confs() {
	HD_BR_CONF=$(bridge_conf 1.0.0 ".ipMasq = true | ${1:-.}")
	HD_PM_CONF=$(pm_conf 1.0.0 "$HD_MAPS" "${2:-.}")
}

# hd_add CID POD: bridge ADD then portmap ADD (prevResult); the final result is saved in
# $T/res.CID.  Returns non-zero (without failing the test) if a step fails.
hd_add() {
	local cid=$1 pod=$2
	cni_call ADD "$HD_BR_CONF" "$cid" eth0 "$pod"
	[[ $RC == 0 ]] || return 1
	cni_call ADD "$(with_prev "$HD_PM_CONF" "$OUT")" "$cid" eth0 "$pod"
	[[ $RC == 0 ]] || return 1
	printf '%s' "$OUT" >"$T/res.$cid"
}

# hd_del CID POD: portmap DEL then bridge DEL, with the saved result as prevResult when
# there is one (a runtime that lost it passes none).  Fails the test if either DEL fails.
hd_del() {
	local cid=$1 pod=$2 pm=$HD_PM_CONF br=$HD_BR_CONF
	if [[ -s $T/res.$cid ]]; then
		pm=$(with_prev "$pm" "$(cat "$T/res.$cid")")
		br=$(with_prev "$br" "$(cat "$T/res.$cid")")
	fi
	must_del "$pm" "$cid" eth0 "$pod"
	must_del "$br" "$cid" eth0 "$pod"
	rm -f "$T/res.$cid"
}

# valid_file CID...: a cni.dev/valid-attachments list (ifname eth0) in a file; prints its path.
valid_file() {
	local f=$T/valid.$BASHPID.$RANDOM
	printf '%s\n' "$@" | jq -R 'select(length > 0) | {containerID: ., ifname: "eth0"}' |
		jq -s . >"$f"
	printf '%s' "$f"
}

# leakcheck [--opts...] -- CID...: scripts/leakcheck --json inside the node netns for this
# test's network, dataDirs and bridge; valid attachments CID/eth0.  Sets LC_OUT and LC_RC.
leakcheck() {
	local opts=()
	while [[ $# -gt 0 && $1 != -- ]]; do opts+=("$1"); shift; done
	[[ ${1:-} == -- ]] && shift
	LC_OUT=$(in_node python3 "$LEAKCHECK" --json --valid "$(valid_file "$@")" \
		--data-dir "$DATA" --flannel-dir "${FLDATA:-$T/flannel}" --bridge "$BR" --bridge cni0 \
		"${opts[@]}" 2>"$T/leakcheck.err")
	LC_RC=$?
	[[ $LC_RC == 0 || $LC_RC == 1 ]] || fail "leakcheck failed (rc=$LC_RC): $(cat "$T/leakcheck.err")"
}

# assert_no_leaks [CID...]: leakcheck finds nothing beyond the valid attachments.
assert_no_leaks() {
	leakcheck -- "$@"
	if [[ $LC_RC != 0 ]]; then
		log "$LC_OUT"
		fail "leakcheck found $(jq -r .total <<<"$LC_OUT") leaks: $(jq -c .counts <<<"$LC_OUT")"
	fi
}

# leak_count KIND: leaks of KIND in the last leakcheck.
leak_count() { jq --arg k "$1" '[.leaks[] | select(.kind == $k)] | length' <<<"$LC_OUT"; }

# Leftover counts for the churn/crash figures: links (besides lo and the bridge), IP files,
# CNI iptables rules, per-pod nft rules, conntrack entries.
count_links() { in_node ip -o link show | awk -F': ' '{print $2}' | grep -cvE "^(lo|$BR|cni0)(@|$)"; }
count_ip_files() { ip_files | wc -l; }
count_ipt_rules() {
	{ in_node iptables-save -t nat; in_node ip6tables-save -t nat; } 2>/dev/null |
		grep -E '^-A' | grep -cE 'CNI-[0-9a-f]{24}|CNI-DN-|id: '
}
count_nft_rules() {
	in_node nft -j list ruleset 2>/dev/null |
		jq '[.nftables[] | select(.rule) | .rule | select(.comment != null)] | length'
}
# (UDP and TCP flows only: the bridge's own IGMP reports make entries of their own)
count_conntrack() {
	if command -v conntrack >/dev/null; then
		{ in_node conntrack -L -p udp; in_node conntrack -L -p tcp; } 2>/dev/null | grep -c . || true
	else
		echo 0
	fi
}

# seconds since an $EPOCHREALTIME stamp, one decimal
since_s() {
	local now=${EPOCHREALTIME/./} then=${1/./}
	local ds=$(((now - then) / 100000))
	echo "$((ds / 10)).$((ds % 10))"
}

# Waits for background pids, returns how many failed.
wait_all() {
	local p bad=0
	for p in "$@"; do wait "$p" || bad=$((bad + 1)); done
	echo "$bad"
}
