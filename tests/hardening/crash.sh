# shellcheck shell=bash
# Crash consistency: a plugin SIGKILLed at a random point of ADD (a node OOM kill, a runtime
# timeout, a reboot of the agent) leaves nothing that the runtime's recovery does not remove.
#
# Each injection: run ADD, SIGKILL its process group after a random delay in [0, typical
# runtime), then recover the way a runtime does, by DEL without prevResult (the ADD never
# returned a result) or, every 4th time, by removing the pod and running GC with an empty
# cni.dev/valid-attachments list.  After recovery nothing of the container may be left (links,
# IP files, iptables rules, nft rules), and a new ADD of the same container must work.  The
# step the kill hit is read from the plugin's WEFT_TRACE=1 stderr.
#
# The process group is killed (the plugin and the host-local / iptables-restore it runs),
# like a cgroup OOM kill.  Killing only the parent lets an orphaned host-local finish its
# allocation after the runtime's DEL has run, a race in the CNI model itself (Go has it too).

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# Runs in the node netns (bash -c with driver.bash).  Everything here must be cheap.

# What is left of containers in the node: "links files rules nft".
_left() {
	local links files rules nft
	links=$(ip -o link show | awk -F': ' '{print $2}' | grep -cvE "^(lo|$BR)(@|$)")
	files=$(ls "$DATA/$NET" 2>/dev/null | grep -cvE '^(lock|last_reserved_ip\..*)$')
	rules=$({ iptables-save -t nat; ip6tables-save -t nat; } 2>/dev/null | grep '^-A' |
		grep -cE 'CNI-[0-9a-f]{24}|CNI-DN-|id: ')
	nft=$(nft list ruleset 2>/dev/null | grep -cE '\S.* comment "')
	echo "$links $files $rules $nft"
}

# The step a plugin was in when killed, from its WEFT_TRACE lines.
_phase() { # TYPE ERRFILE
	local last
	last=$(grep -oE "^weft-trace $1 [a-z_-]+:" "$2" 2>/dev/null | tail -n1 | awk '{print $3}')
	last=${last%:}
	case $1:$last in
	bridge:) echo "bridge:start+bridge" ;;
	bridge:bridge) echo "bridge:veth" ;;
	bridge:veth) echo "bridge:ipam" ;;
	bridge:ipam) echo "bridge:addresses" ;;
	bridge:container) echo "bridge:gateway" ;;
	bridge:gateway) echo "bridge:ipmasq" ;;
	bridge:ipmasq) echo "bridge:port-up" ;;
	bridge:port-up) echo "bridge:result" ;;
	portmap:) echo "portmap:start+config" ;;
	portmap:config) echo "portmap:rules" ;;
	portmap:rules) echo "portmap:conntrack" ;;
	portmap:conntrack) echo "portmap:route_localnet" ;;
	portmap:*) echo "portmap:result" ;;
	*) echo "$1:unknown" ;;
	esac
}

# kill_run TYPE CONF CID NETNS DELAY_US OUT: the plugin in its own process group, SIGKILLed
# (with its children) after DELAY_US; returns 0 if the kill hit, 1 if ADD finished first.
_kill_run() {
	local type=$1 conf=$2 cid=$3 ns=$4 us=$5 out=$6 pid st
	setsid env -i PATH=$DRV_PATH CNI_COMMAND=ADD CNI_CONTAINERID="$cid" CNI_NETNS="$ns" \
		CNI_IFNAME=eth0 CNI_PATH="$IPAM_DIR" WEFT_TRACE=1 "$MAIN_DIR/$type" \
		<<<"$conf" >"$out" 2>"$out.err" &
	pid=$!
	sleep "$(printf '0.%06d' "$us")"
	kill -9 -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	st=$?
	[[ $st == 137 ]]
}

# Median wall time (us) of 5 full ADD/DEL of TYPE (bridge alone, or portmap after bridge).
_typical_us() { # TYPE POD BR PM
	local type=$1 pod=$2 br=$3 pm=$4 i s e times=()
	for i in 1 2 3 4 5; do
		pcall ADD bridge "$br" warm "$pod" "$T/w.br" || return 1
		s=${EPOCHREALTIME/./}
		if [[ $type == bridge ]]; then
			:
		else
			pcall ADD portmap "$(with_prev_fast "$pm" "$(<"$T/w.br")")" warm "$pod" "$T/w.pm" || return 1
		fi
		e=${EPOCHREALTIME/./}
		stack_del "$br" "$pm" warm "$pod" || return 1
		if [[ $type == bridge ]]; then
			s=${EPOCHREALTIME/./}
			pcall ADD bridge "$br" warm "$pod" "$T/w.br" || return 1
			e=${EPOCHREALTIME/./}
			stack_del "$br" "$pm" warm "$pod" || return 1
		fi
		times+=($((e - s)))
	done
	printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}

_crash_loop() { # N POD BR PM GC_BR GC_PM
	local n=$1 pod=$2 br=$3 pm=$4 gcbr=$5 gcpm=$6
	local tb tp i=0 hits=0 tries=0 type us cid phase left mode podname=${2##*/}
	tb=$(_typical_us bridge "$pod" "$br" "$pm") || { echo "warm-up failed" >&2; return 1; }
	tp=$(_typical_us portmap "$pod" "$br" "$pm") || { echo "warm-up failed" >&2; return 1; }
	echo "typical ADD: bridge ${tb}us portmap ${tp}us" >&2
	declare -A phases=()
	while ((hits < n)); do
		tries=$((tries + 1))
		if ((tries > 10 * n)); then
			echo "only $hits kills hit ADD in $tries tries" >&2
			return 1
		fi
		i=$((i + 1))
		cid=k$i
		if ((i % 3 == 0)); then
			type=portmap
			pcall ADD bridge "$br" "$cid" "$pod" "$T/r.$cid.br" || { echo "bridge ADD before portmap failed" >&2; return 1; }
			us=$(((RANDOM * 32768 + RANDOM) % tp))
			if ! _kill_run portmap "$(with_prev_fast "$pm" "$(<"$T/r.$cid.br")")" "$cid" "$pod" "$us" "$T/k.out"; then
				stack_del "$br" "$pm" "$cid" "$pod" || return 1 # ADD finished first
				tp=$((tp * 3 / 4 + 500)) # the machine got faster than measured
				continue
			fi
			rm -f "$T/r.$cid.br" # the runtime never got a result
		else
			type=bridge
			us=$(((RANDOM * 32768 + RANDOM) % tb))
			if ! _kill_run bridge "$br" "$cid" "$pod" "$us" "$T/k.out"; then
				stack_del "$br" "$pm" "$cid" "$pod" || return 1
				tb=$((tb * 3 / 4 + 500))
				continue
			fi
		fi
		hits=$((hits + 1))
		phase=$(_phase "$type" "$T/k.out.err")
		phases[$phase]=$((${phases[$phase]:-0} + 1))
		# recovery, as a runtime would do it
		if ((hits % 4 == 0)); then
			mode=gc
			ip -n "$podname" link del eth0 2>/dev/null
			pcall GC bridge "$gcbr" "" "" "$T/k.gc" || { echo "GC bridge failed: $(cat "$T/k.gc")" >&2; return 1; }
			pcall GC portmap "$gcpm" "" "" "$T/k.gc" || { echo "GC portmap failed: $(cat "$T/k.gc")" >&2; return 1; }
		else
			mode=del
			pcall DEL portmap "$pm" "$cid" "$pod" "$T/k.del" || { echo "DEL portmap failed: $(cat "$T/k.del")" >&2; return 1; }
			pcall DEL bridge "$br" "$cid" "$pod" "$T/k.del" || { echo "DEL bridge failed: $(cat "$T/k.del")" >&2; return 1; }
		fi
		left=$(_left)
		if [[ $left != "0 0 0 0" ]]; then
			echo "injection $hits ($phase, ${us}us, recovery $mode) left links/files/rules/nft: $left" >&2
			ip -o link show >&2
			ls -la "$DATA/$NET" >&2
			iptables-save -t nat >&2
			nft list ruleset >&2
			cat "$T/k.out.err" >&2
			return 1
		fi
		# the next ADD of the same container works, and its DEL leaves nothing
		rm -f "$T/r.$cid"*
		stack_add "$br" "$pm" "$cid" "$pod" || { echo "ADD after injection $hits ($phase) failed: $(cat "$T/r.$cid"*)" >&2; return 1; }
		stack_del "$br" "$pm" "$cid" "$pod" || return 1
	done
	for phase in "${!phases[@]}"; do echo "PHASE $phase ${phases[$phase]}"; done
	echo "TRIES $tries"
}

test_crash_kill9_during_add() {
	weft_only "GC recovery is CNI 1.1.0 (Go 1.1.1 stops at 1.0.0); the step names are weft's WEFT_TRACE"
	local n=${CRASH_N:-100} pod br pm gcbr gcpm out
	new_pod pod
	hd_confs
	br=$(jq -c '.cniVersion = "1.1.0"' <<<"$HD_BR_CONF")
	pm=$(jq -c '.cniVersion = "1.1.0"' <<<"$HD_PM_CONF")
	gcbr=$(jq -c '.["cni.dev/valid-attachments"] = []' <<<"$br")
	gcpm=$(jq -c '.["cni.dev/valid-attachments"] = []' <<<"$pm")
	export MAIN_DIR IPAM_DIR T DATA NET BR
	out=$(in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _left _phase _kill_run _typical_us _crash_loop); _crash_loop \"\$@\"" _ \
		"$n" "$pod" "$br" "$pm" "$gcbr" "$gcpm") || fail "crash loop failed"
	log "$out"
	assert_no_leaks
	assert_eq "$n" "$(grep '^PHASE' <<<"$out" | awk '{s += $3} END {print s}')" "injections"
	figure crash_injections "$n"
	figure crash_tries "$(awk '/^TRIES/ {print $2}' <<<"$out")"
	figure crash_phases "$(grep '^PHASE' <<<"$out" | sort | awk '{printf "%s%s=%s", sep, $2, $3; sep=" "}')"
}

# What the killed flannel ADD had done, from what it left (flannel has no trace output).
_fl_phase() { # CID
	if [[ -n $(find "$FLDATA" -name ".$1.*.tmp" 2>/dev/null) ]]; then
		echo "flannel:saving"
	elif [[ ! -e $FLDATA/$1 ]]; then
		echo "flannel:before-save"
	elif [[ -n $(ls "$DATA/$NET" 2>/dev/null | grep -vE '^(lock|last_reserved_ip\..*)$') ]]; then
		echo "flannel:delegate-ipam-done"
	elif [[ -n $(ip -o link show type veth) ]]; then
		echo "flannel:delegate-veth"
	else
		echo "flannel:delegate-start"
	fi
}

_fl_crash_loop() { # N POD CONF GC_CONF
	local n=$1 pod=$2 conf=$3 gc=$4 podname=${2##*/}
	local i=0 hits=0 tries=0 us t s e cid phase left mode times=()
	for i in 1 2 3; do
		s=${EPOCHREALTIME/./}
		pcall ADD flannel "$conf" warm "$pod" "$T/w.fl" || { echo "warm-up ADD failed: $(cat "$T/w.fl")" >&2; return 1; }
		e=${EPOCHREALTIME/./}
		pcall DEL flannel "$conf" warm "$pod" "$T/w.fl" || return 1
		times+=($((e - s)))
	done
	t=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
	echo "typical flannel ADD: ${t}us" >&2
	declare -A phases=()
	i=0
	while ((hits < n)); do
		tries=$((tries + 1))
		((tries > 10 * n)) && { echo "only $hits kills hit ADD in $tries tries" >&2; return 1; }
		i=$((i + 1))
		cid=f$i
		us=$(((RANDOM * 32768 + RANDOM) % t))
		if ! _kill_run flannel "$conf" "$cid" "$pod" "$us" "$T/f.out"; then
			pcall DEL flannel "$conf" "$cid" "$pod" "$T/f.del" || return 1
			t=$((t * 3 / 4 + 500))
			continue
		fi
		hits=$((hits + 1))
		phase=$(_fl_phase "$cid")
		phases[$phase]=$((${phases[$phase]:-0} + 1))
		if ((hits % 4 == 0)); then
			mode=gc
			ip -n "$podname" link del eth0 2>/dev/null
			pcall GC flannel "$gc" "" "" "$T/f.gc" || { echo "GC failed: $(cat "$T/f.gc")" >&2; return 1; }
		else
			mode=del
			pcall DEL flannel "$conf" "$cid" "$pod" "$T/f.del" || { echo "DEL failed: $(cat "$T/f.del")" >&2; return 1; }
		fi
		left="$(_left) $(ls -A "$FLDATA" 2>/dev/null | wc -l)"
		if [[ $left != "0 0 0 0 0" ]]; then
			echo "injection $hits ($phase, ${us}us, recovery $mode) left links/files/rules/nft/saved: $left" >&2
			ip -o link show >&2
			ls -la "$DATA/$NET" "$FLDATA" >&2
			return 1
		fi
		pcall ADD flannel "$conf" "$cid" "$pod" "$T/f.add" || { echo "ADD after injection $hits ($phase) failed: $(cat "$T/f.add")" >&2; return 1; }
		pcall DEL flannel "$conf" "$cid" "$pod" "$T/f.del" || return 1
	done
	for phase in "${!phases[@]}"; do echo "PHASE $phase ${phases[$phase]}"; done
	echo "TRIES $tries"
}

test_crash_kill9_flannel_add() {
	weft_only "GC recovery is CNI 1.1.0 (Go 1.1.1's delegates stop at 1.0.0)"
	local n=${FL_CRASH_N:-40} pod conf gc out
	fl_setup
	NET=$FL_NET
	BR=$FL_BR
	new_pod pod
	conf=$(fl_conf 1.1.0)
	gc=$(jq -c '.["cni.dev/valid-attachments"] = []' <<<"$conf")
	export MAIN_DIR IPAM_DIR T DATA NET BR FLDATA
	out=$(in_node bash -c "source '$HD_DIR/driver.bash'; $(declare -f _left _kill_run _fl_phase _fl_crash_loop); _fl_crash_loop \"\$@\"" _ \
		"$n" "$pod" "$conf" "$gc") || fail "flannel crash loop failed"
	log "$out"
	assert_no_leaks
	figure flannel_crash_injections "$n"
	figure flannel_crash_phases "$(grep '^PHASE' <<<"$out" | sort | awk '{printf "%s%s=%s", sep, $2, $3; sep=" "}')"
}
