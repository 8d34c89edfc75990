# shellcheck shell=bash
# Churn: many ADD/DEL cycles of the stock stack (bridge + host-local with ipMasq, portmap
# chained) on one node leave nothing behind: no link, no reservation, no rule, no conntrack
# entry, and the plugins' memory does not grow.  CHURN_N cycles (300 in the suite;
# scripts/reliability runs 2000).

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# One cycle in the node netns: ADD, some UDP through the mapped port every 10th cycle (a
# conntrack entry portmap's DEL must flush), DEL.
_churn_loop() { # N POD BR_CONF PM_CONF
	local n=$1 pod=$2 br=$3 pm=$4 i
	for ((i = 1; i <= n; i++)); do
		if ! stack_add "$br" "$pm" "ch$i" "$pod"; then
			echo "cycle $i: ADD failed: $(cat "$T/r.ch$i"* 2>/dev/null)" >&2
			return 1
		fi
		if ((i % 10 == 0)); then
			echo x >/dev/udp/10.88.7.1/8053 2>/dev/null
		fi
		if ! stack_del "$br" "$pm" "ch$i" "$pod"; then
			echo "cycle $i: DEL failed: $(cat "$T/r.ch$i.del"* 2>/dev/null)" >&2
			return 1
		fi
	done
}

# Peak RSS (KiB) of one plugin call and its children (host-local, iptables-restore), from
# /usr/bin/time -f %M.  Runs in the node netns.
_peak_kib() { # CMD TYPE CONF CID NETNS
	local f=$T/time.$RANDOM
	PCALL_WRAP="/usr/bin/time -o $f -f %M" pcall "$@" "$T/peak.out" || return 1
	tail -n1 "$f"
}

test_churn_add_del_cycles_leave_nothing() {
	weft_only "Go 1.1.1's portmap leaves UDP conntrack entries behind on DEL"
	local n=${CHURN_N:-300} pod br pm start secs ct0 peak_br peak_pm
	need_conntrack
	new_pod pod
	hd_confs
	br=$(jq -c . <<<"$HD_BR_CONF")
	pm=$(jq -c . <<<"$HD_PM_CONF")
	export MAIN_DIR IPAM_DIR T
	ct0=$(count_conntrack)
	start=$EPOCHREALTIME
	in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _churn_loop); _churn_loop \"\$@\"" _ \
		"$n" "$pod" "$br" "$pm" || fail "churn loop failed"
	secs=$(since_s "$start")
	log "$n cycles in ${secs}s"

	local links files rules nft ct
	links=$(count_links)
	files=$(count_ip_files)
	rules=$(count_ipt_rules)
	nft=$(count_nft_rules)
	ct=$(($(count_conntrack) - ct0))
	log "left after $n cycles: links=$links ip_files=$files iptables_rules=$rules nft_rules=$nft conntrack=$ct"
	assert_eq 0 "$links" "links left"
	assert_eq 0 "$files" "IP files left"
	assert_eq 0 "$rules" "per-container iptables rules left"
	assert_eq 0 "$nft" "nft rules left"
	assert_eq 0 "$ct" "conntrack entries left"
	assert_no_leaks
	# only the bookkeeping files remain in the network dir
	assert_eq "last_reserved_ip.0 lock" "$(ls "$DATA/$NET" | tr '\n' ' ' | sed 's/ $//')" "files in the network dir"
	# the shared portmap chains exist exactly once
	assert_eq 1 "$(nat_rules | grep -c -- '-A PREROUTING .*CNI-HOSTPORT-DNAT')" "PREROUTING jumps"
	assert_eq 1 "$(nat_rules | grep -c -- '-A POSTROUTING .*CNI-HOSTPORT-MASQ')" "POSTROUTING jumps"

	# peak memory of one ADD and one DEL of each plugin (on a fresh container)
	peak_br=$(in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _peak_kib); _peak_kib ADD bridge '$br' peak '$pod'")
	[[ $peak_br =~ ^[0-9]+$ ]] || fail "no peak RSS for bridge ADD: $peak_br"
	peak_pm=$(in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _peak_kib); _peak_kib ADD portmap \"\$(with_prev_fast '$pm' \"\$(<'$T/peak.out')\")\" peak '$pod'")
	[[ $peak_pm =~ ^[0-9]+$ ]] || fail "no peak RSS for portmap ADD: $peak_pm"
	log "peak RSS: bridge ADD ${peak_br} KiB, portmap ADD ${peak_pm} KiB"

	figure churn_cycles "$n"
	figure churn_seconds "$secs"
	figure churn_left "links=$links ip_files=$files iptables_rules=$rules nft_rules=$nft conntrack=$ct"
	figure churn_peak_rss_kib "bridge=$peak_br portmap=$peak_pm"
}
