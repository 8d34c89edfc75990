# shellcheck shell=bash
# Plugin calls for the loops of the hardening tests (churn, crash injection), sourced by a
# bash that already runs inside the node netns (`in_node bash -c 'source driver.bash; ...'`).
# One `ip netns exec` per loop instead of one per call, and prevResult spliced in with
# parameter expansion instead of jq: the loops measure the plugins, not the harness.
#
# Expects MAIN_DIR (plugin binaries), IPAM_DIR (CNI_PATH) and T (temp dir) in the
# environment.

DRV_PATH=/usr/sbin:/usr/bin:/sbin:/bin

# pcall CMD TYPE CONF CID NETNS OUT [NAME=VAL...]: runs plugin TYPE with CONF (a JSON string)
# on stdin; stdout to OUT, stderr to OUT.err; returns the plugin's exit status.  PCALL_WRAP,
# if set, is put in front of the command (e.g. /usr/bin/time -o FILE -f %M).
pcall() {
	local cmd=$1 type=$2 conf=$3 cid=$4 ns=$5 out=$6
	shift 6
	# shellcheck disable=SC2086 # PCALL_WRAP: an optional command prefix (/usr/bin/time ...)
	${PCALL_WRAP:-} env -i PATH=$DRV_PATH CNI_COMMAND="$cmd" CNI_CONTAINERID="$cid" CNI_NETNS="$ns" \
		CNI_IFNAME=eth0 CNI_PATH="$IPAM_DIR" "$@" "$MAIN_DIR/$type" \
		<<<"$conf" >"$out" 2>"$out.err"
}

# with_prev_fast CONF RESULT: CONF (compact JSON object) with prevResult RESULT.
with_prev_fast() { printf '%s,"prevResult":%s}' "${1%\}}" "$2"; }

# stack_add BR_CONF PM_CONF CID NETNS: bridge ADD then portmap ADD; the result in
# $T/r.CID.  Returns the first failing status.
stack_add() {
	local br=$1 pm=$2 cid=$3 ns=$4 out=$T/r.$cid
	pcall ADD bridge "$br" "$cid" "$ns" "$out.br" || return
	pcall ADD portmap "$(with_prev_fast "$pm" "$(<"$out.br")")" "$cid" "$ns" "$out" || return
}

# stack_del BR_CONF PM_CONF CID NETNS: portmap DEL then bridge DEL, with the last result
# as prevResult if there is one.
stack_del() {
	local br=$1 pm=$2 cid=$3 ns=$4 out=$T/r.$cid prev=
	if [[ -s $out ]]; then
		prev=$(<"$out")
	elif [[ -s $out.br ]]; then
		prev=$(<"$out.br")
	fi
	if [[ -n $prev ]]; then
		pm=$(with_prev_fast "$pm" "$prev")
		br=$(with_prev_fast "$br" "$prev")
	fi
	pcall DEL portmap "$pm" "$cid" "$ns" "$out.del" || return
	pcall DEL bridge "$br" "$cid" "$ns" "$out.del" || return
	rm -f "$out" "$out.br"
}
