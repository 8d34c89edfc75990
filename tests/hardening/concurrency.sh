# shellcheck shell=bash
# Concurrency on one node: many plugin calls at once must neither hand out an address twice
# nor lose a rule, and a call that cannot succeed fails cleanly.  All calls of a batch are
# started together from one shell inside the node netns.

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# In the node netns: runs `pcall CMD TYPE CONF CID POD` for cid PREFIX<i>, pod POD<i>, all at
# once; leaves $T/p.PREFIX<i> (stdout) and $T/p.PREFIX<i>.rc.
_burst() { # CMD TYPE CONF PREFIX N POD_PATH_PREFIX [PREV_DIR]
	local cmd=$1 type=$2 conf=$3 prefix=$4 n=$5 podp=$6 prev=${7:-} i c
	for ((i = 1; i <= n; i++)); do
		(
			c=$conf
			[[ -n $prev ]] && c=$(with_prev_fast "$conf" "$(<"$prev/p.$prefix$i.br")")
			pcall "$cmd" "$type" "$c" "$prefix$i" "$podp$i" "$T/p.$prefix$i"
			echo $? >"$T/p.$prefix$i.rc"
		) &
	done
	wait
}

_make_pods() { # N: PODP = the path prefix of pods 1..N
	local i p
	for ((i = 1; i <= $1; i++)); do new_pod p; done
	PODP=${p%"$1"}
}

_rcs() { # PREFIX N: how many calls succeeded
	local i ok=0
	for ((i = 1; i <= $2; i++)); do [[ $(cat "$T/p.$1$i.rc") == 0 ]] && ok=$((ok + 1)); done
	echo "$ok"
}

_in_node_burst() { in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _burst); _burst \"\$@\"" _ "$@"; }

# 100 ADDs at once (bridge + host-local + ipMasq): every one succeeds with its own address;
# then 100 DELs at once leave nothing.
test_parallel_100_adds_unique_addresses() {
	local n=${PAR_N:-100} conf ips i
	_make_pods "$n"
	conf=$(bridge_conf 1.0.0 '.ipMasq = true | .ipam.subnet = "10.88.0.0/16"' | jq -c .)
	export MAIN_DIR IPAM_DIR T
	_in_node_burst ADD bridge "$conf" c "$n" "$PODP"
	assert_eq "$n" "$(_rcs c "$n")" "ADDs that succeeded"
	ips=$(for ((i = 1; i <= n; i++)); do jq -r '.ips[0].address' "$T/p.c$i"; done | sort -u | wc -l)
	assert_eq "$n" "$ips" "distinct addresses"
	assert_eq "$n" "$(count_ip_files)" "IP files"
	assert_eq "$n" "$(node_veths | wc -l)" "host veths"
	assert_eq "$n" "$(nat_rules | grep -c '^-A POSTROUTING -s')" "masquerade jumps"
	for ((i = 1; i <= n; i++)); do
		local a
		a=$(jq -r '.ips[0].address | split("/")[0]' "$T/p.c$i")
		assert_eq "c$i eth0" "$(tr '\r\n' '  ' <"$DATA/$NET/$a" | tr -s ' ')" "owner of $a"
	done
	ping_ok "$NODE" "$(jq -r '.ips[0].address | split("/")[0]' "$T/p.c$n")"
	_in_node_burst DEL bridge "$conf" c "$n" "$PODP"
	assert_eq "$n" "$(_rcs c "$n")" "DELs that succeeded"
	assert_eq 0 "$(count_ip_files)" "IP files after DEL"
	assert_eq 0 "$(count_links)" "links after DEL"
	assert_eq 0 "$(count_ipt_rules)" "masquerade rules after DEL"
	figure parallel_adds "$n"
}

# 100 ADDs at once on a range of 40 addresses (PAR_N and 2/5 of it): 40 succeed, 60 fail with
# "no IP addresses available" and leave nothing (no veth, no file, no rule); DEL of all 100 cleans up.
test_parallel_adds_exhausted_range() {
	weft_only "Go 1.1.1 leaves both veth ends behind when IPAM fails"
	local n=${PAR_N:-100} size conf ok i fails=0
	size=$((n * 2 / 5))
	_make_pods "$n"
	conf=$(bridge_conf 1.0.0 ".ipMasq = true | .ipam.rangeStart = \"10.88.7.10\" | .ipam.rangeEnd = \"10.88.7.$((10 + size - 1))\"" | jq -c .)
	export MAIN_DIR IPAM_DIR T
	_in_node_burst ADD bridge "$conf" c "$n" "$PODP"
	ok=$(_rcs c "$n")
	# A failure other than the range running out is the one to explain: show its error.
	for ((i = 1; i <= n; i++)); do
		[[ $(cat "$T/p.c$i.rc") == 0 ]] || grep -q 'no IP addresses available' "$T/p.c$i" ||
			log "ADD c$i failed otherwise: $(cat "$T/p.c$i" "$T/p.c$i.err" 2>/dev/null)"
	done
	assert_eq "$size" "$ok" "ADDs that succeeded"
	for ((i = 1; i <= n; i++)); do
		[[ $(cat "$T/p.c$i.rc") == 0 ]] && continue
		fails=$((fails + 1))
		OUT=$(cat "$T/p.c$i")
		RC=1
		assert_error '11|999' 'no IP addresses available in range set'
	done
	assert_eq $((n - size)) "$fails" "clean failures"
	assert_eq "$size" "$(count_ip_files)" "IP files"
	assert_eq "$size" "$(node_veths | wc -l)" "host veths (none from the failed ADDs)"
	assert_eq "$size" "$(nat_rules | grep -c '^-A POSTROUTING -s')" "masquerade jumps"
	assert_eq "$size" "$(for ((i = 1; i <= n; i++)); do jq -r '.ips[0].address // empty' "$T/p.c$i"; done | sort -u | wc -l)" "distinct addresses"
	_in_node_burst DEL bridge "$conf" c "$n" "$PODP"
	assert_eq "$n" "$(_rcs c "$n")" "DELs that succeeded"
	assert_eq 0 "$(count_ip_files)" "IP files after DEL"
	assert_eq 0 "$(count_links)" "links after DEL"
	assert_eq 0 "$(count_ipt_rules)" "rules after DEL"
	figure parallel_exhausted "$n ADDs on $size addresses: $size ok, $fails clean failures"
}

# Go's and weft's host-local at once on one dataDir: they share the lock and the file layout,
# so no address is handed out twice, and each DELs what the other added.
test_parallel_go_and_weft_host_local_share_a_directory() {
	need_bin "$GO_BIN/host-local" "$WEFT_BIN/host-local"
	local n=40 conf pod ips i
	new_pod pod
	conf=$(hl_conf 0.4.0 '.ipam.subnet = "10.88.0.0/16"' | jq -c .)
	export T
	in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _burst)
		MAIN_DIR=$GO_BIN IPAM_DIR=$GO_BIN _burst ADD host-local '$conf' g $n '$pod' &
		MAIN_DIR=$WEFT_BIN IPAM_DIR=$WEFT_BIN _burst ADD host-local '$conf' w $n '$pod' &
		wait"
	assert_eq "$n" "$(_rcs g "$n")" "Go ADDs that succeeded"
	assert_eq "$n" "$(_rcs w "$n")" "weft ADDs that succeeded"
	ips=$(cat "$T"/p.[gw][0-9]* | jq -r '.ips[]?.address' | sort | uniq -d)
	assert_eq "" "$ips" "addresses handed out twice"
	assert_eq $((2 * n)) "$(count_ip_files)" "IP files"
	# each DELs the other's containers, at once
	in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _burst)
		MAIN_DIR=$WEFT_BIN IPAM_DIR=$WEFT_BIN _burst DEL host-local '$conf' g $n '$pod' &
		MAIN_DIR=$GO_BIN IPAM_DIR=$GO_BIN _burst DEL host-local '$conf' w $n '$pod' &
		wait"
	assert_eq "$n" "$(_rcs g "$n")" "weft DELs of Go's containers"
	assert_eq "$n" "$(_rcs w "$n")" "Go DELs of weft's containers"
	assert_eq 0 "$(count_ip_files)" "IP files after DEL"
	figure parallel_go_weft "$((2 * n))"
}

# portmap ADDs and DELs at once keep the shared chains whole and exactly once, and every
# container's rules are there if and only if it is ADDed.  (iptables and nftables)
_portmap_parallel() { # BACKEND_JQ
	local n=20 m=30 conf pmconf i want
	_make_pods "$m"
	conf=$(bridge_conf 1.0.0 '.hairpinMode = true' | jq -c .)
	pmconf=$(pm_conf 1.0.0 "$HD_MAPS" "$1" | jq -c .)
	export MAIN_DIR IPAM_DIR T
	# the bridge attachments, their results as prevResult for portmap
	_in_node_burst ADD bridge "$conf" c "$m" "$PODP"
	assert_eq "$m" "$(_rcs c "$m")" "bridge ADDs"
	for ((i = 1; i <= m; i++)); do cp "$T/p.c$i" "$T/p.c$i.br"; done
	# 1..n at once
	_in_node_burst ADD portmap "$pmconf" c "$n" "$PODP" "$T"
	assert_eq "$n" "$(_rcs c "$n")" "portmap ADDs"
	# then DEL of the odd ones and ADD of n+1..m, all at once
	in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _burst)
		for ((i = 1; i <= $n; i += 2)); do
			( c=\$(with_prev_fast '$pmconf' \"\$(<$T/p.c\$i.br)\")
			  pcall DEL portmap \"\$c\" c\$i $PODP\$i $T/p.c\$i; echo \$? >$T/p.c\$i.rc ) &
		done
		for ((i = $n + 1; i <= $m; i++)); do
			( c=\$(with_prev_fast '$pmconf' \"\$(<$T/p.c\$i.br)\")
			  pcall ADD portmap \"\$c\" c\$i $PODP\$i $T/p.c\$i; echo \$? >$T/p.c\$i.rc ) &
		done
		wait"
	for ((i = 1; i <= m; i++)); do
		[[ $(cat "$T/p.c$i.rc") == 0 ]] || fail "portmap call for c$i failed: $(cat "$T/p.c$i")"
	done
	# present iff ADDed
	for ((i = 1; i <= m; i++)); do
		want=1
		((i <= n && i % 2 == 1)) && want=0
		local got
		got=$(pm_traces "c$i" | grep -c .)
		if [[ $want == 1 ]]; then
			[[ $got -gt 0 ]] || fail "c$i is ADDed but has no rules"
		else
			assert_eq 0 "$got" "rules of c$i after its DEL"
		fi
	done
}

test_parallel_portmap_iptables_shared_chains() {
	weft_only "Go 1.1.1's portmap loses parallel ADDs (4 of 20 failed here: racing chain creation)"
	local n=20 m=30
	_portmap_parallel '.backend = "iptables"'
	local shared
	shared=$(nat_rules | grep -E -- '-A (PREROUTING|OUTPUT|POSTROUTING|CNI-HOSTPORT-MASQ|CNI-HOSTPORT-SETMARK) ' | sort)
	assert_eq "$(pm_shared_lines | sort)" "$shared" "shared rules (each exactly once)"
	# one entry rule per protocol per live container, one DN chain each
	local live=$((m - n / 2))
	assert_eq "$live" "$(in_node iptables-save -t nat | grep -c '^:CNI-DN-')" "DN chains"
	assert_eq $((2 * live)) "$(nat_rules | grep -c '^-A CNI-HOSTPORT-DNAT ')" "entry rules"
	figure parallel_portmap_iptables "$m containers, $((n / 2)) DEL + $((m - n)) ADD at once"
}

test_parallel_portmap_nftables_shared_chains() {
	weft_only "Go 1.1.1's portmap has no nftables backend"
	local n=20 m=30 live
	_portmap_parallel '.backend = "nftables"'
	live=$((m - n / 2))
	# base chains exactly once, and their rules once
	assert_eq 1 "$(in_node nft list table ip cni_hostport | grep -c 'chain prerouting {')" "prerouting chain"
	assert_eq 1 "$(in_node nft list chain ip cni_hostport prerouting | grep -c 'jump hostports_all')" "prerouting dispatch"
	assert_eq 1 "$(in_node nft list chain ip cni_hostport output | grep -c 'jump hostports_all')" "output dispatch"
	assert_eq "$live" "$(in_node nft -j list table ip cni_hostport | jq '[.nftables[] | select(.counter)] | length')" "counters (one per live container)"
	assert_eq $((2 * live)) "$(in_node nft list chain ip cni_hostport hostports | grep -c 'dnat to')" "DNAT rules"
	figure parallel_portmap_nftables "$m containers, $((n / 2)) DEL + $((m - n)) ADD at once"
}
