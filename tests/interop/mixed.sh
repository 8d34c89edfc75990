# shellcheck shell=bash
# Interop: weft and Go plugins mixed on one node.  Always uses both plugin
# sets, whatever --plugins says; skipped until weft is built.

_need_both() {
	need_bin "$WEFT_BIN/bridge" "$WEFT_BIN/host-local" "$GO_BIN/bridge" "$GO_BIN/host-local"
}

use() { # MAIN IPAM: "weft" or "go" each
	local m=$1 i=$2
	[[ $m == weft ]] && MAIN_DIR=$WEFT_BIN || MAIN_DIR=$GO_BIN
	[[ $i == weft ]] && IPAM_DIR=$WEFT_BIN || IPAM_DIR=$GO_BIN
	log "### bridge/main=$m ipam=$i"
}

# A pod that stays, so the bridge (never deleted) is part of the baseline.
_warm() {
	local warm
	new_pod warm
	must_add "$(bridge_conf 1.0.0 "$DUAL_RANGES")" warm eth0 "$warm"
}

_full_cycle() { # MAIN IPAM
	local pod conf before result
	_need_both
	in_node sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	use "$1" "$2"
	_warm
	before=$(snapshot)
	new_pod pod
	conf=$(bridge_conf 1.0.0 ".ipMasq = true | $DUAL_RANGES")
	must_add "$conf" c1 eth0 "$pod"
	result=$OUT
	assert_json '[.ips[].address] | join(" ")' "10.88.7.3/24 2001:db8:7::3/64"
	assert_json '.interfaces | length' 3
	must_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	ping_ok "$NODE" 10.88.7.3
	wait_no_tentative "$NODE"
	ping_ok "$pod" "$GW6"
	[[ -f $DATA/$NET/10.88.7.3 ]] || fail "no reservation file"
	must_del "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	assert_unchanged "$before" "node state after ADD+DEL"
}

test_weft_bridge_go_host_local() { _full_cycle weft go; }
test_go_bridge_weft_host_local() { _full_cycle go weft; }

# ADD by one implementation, CHECK and DEL by the other (an upgrade or a
# rollback between ADD and DEL): nothing may be left behind.
_cross() { # ADD_IMPL DEL_IMPL
	local pod conf before result
	_need_both
	use "$1" "$1"
	_warm
	before=$(snapshot)
	new_pod pod
	conf=$(bridge_conf 1.0.0 ".ipMasq = true | $DUAL_RANGES")
	must_add "$conf" c1 eth0 "$pod"
	result=$OUT
	[[ -n $(nat_rules) && -n $(nat6_rules) ]] || fail "no masquerade rules after ADD"
	use "$2" "$2"
	must_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	must_del "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	assert_unchanged "$before" "node state after $1 ADD + $2 DEL"
	pod_link_exists "$pod" eth0 && fail "pod eth0 left"
	return 0
}

test_go_add_weft_del() { _cross go weft; }
test_weft_add_go_del() { _cross weft go; }

# One dataDir, both host-locals, interleaved: never a double allocation,
# each DELs the other's reservations, round robin state is shared.
test_shared_datadir_interleaved() {
	local pod conf i impl other a seen=()
	_need_both
	new_pod pod
	conf=$(hl_conf 1.0.0 "$DUAL_RANGES")
	for i in $(seq 1 12); do
		((i % 2)) && impl=weft || impl=go
		((i % 2)) && other=go || other=weft
		use "$impl" "$impl"
		must_add "$conf" "c$i" eth0 "$pod"
		a=$(jq -r '.ips[0].address' <<<"$OUT")
		assert_eq "10.88.7.$((i + 1))/24" "$a" "address of c$i ($impl): round robin continues across implementations"
		if ((i % 3 == 0)); then
			use "$other" "$other"
			must_del "$conf" "c$((i - 1))" eth0 "$pod"
			[[ -e $DATA/$NET/10.88.7.$i ]] && fail "$other DEL left c$((i - 1))'s file"
		fi
	done
	assert_eq 8 "$(ip_files | grep -c '^10\.')" "v4 files"
	assert_eq "$(ip_files | grep -c '^10\.')" "$(ip_files | grep -c '^2001:')" "v6 files"
	# the same cid+ifname is refused whichever implementation holds it
	use go go
	cni_add "$conf" c1 eth0 "$pod"
	assert_msg 'duplicate allocation is not allowed'
	use weft weft
	cni_add "$conf" c4 eth0 "$pod"
	assert_msg 'duplicate allocation is not allowed'
	# everything else goes, each via the implementation that did not add it
	for i in $(seq 1 12); do
		((i % 2)) && use go go || use weft weft
		must_del "$conf" "c$i" eth0 "$pod"
	done
	assert_eq "" "$(ip_files)" "files after DEL"
}

test_shared_datadir_parallel() {
	local pod conf i n=12 pids=()
	_need_both
	new_pod pod
	conf=$(hl_conf 1.0.0 '.ipam.subnet = "10.88.7.0/27"')
	for i in $(seq 1 "$n"); do
		(
			((i % 2)) && use weft weft || use go go
			cni_add "$conf" "c$i" eth0 "$pod"
			echo "$RC" >"$T/rc.$i"
			cp "$OUTF" "$T/res.$i"
		) 2>"$T/log.$i" &
		pids+=($!)
		track_pid $!
	done
	wait "${pids[@]}"
	for i in $(seq 1 "$n"); do
		[[ $(cat "$T/rc.$i") == 0 ]] || { cat "$T/log.$i" >&2; fail "ADD c$i failed"; }
	done
	assert_eq "$n" "$(cat "$T"/res.* | jq -r '.ips[0].address' | sort -u | wc -l)" "distinct addresses"
	assert_eq "$n" "$(ip_files | wc -l)" "files"
}
