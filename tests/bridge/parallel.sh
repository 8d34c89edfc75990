# shellcheck shell=bash
# Concurrent ADD/DEL on one bridge and one dataDir: every call succeeds and
# no address is handed out twice (host-local's lock + O_EXCL files).

# _par CMD N CONF_FN: runs N calls at once, pod i uses PODS[i], cid "c<i>".
# Leaves results in $T/par.<i>.{rc,out}.
_par() {
	local cmd=$1 n=$2 conf=$3 i pids=()
	for ((i = 1; i <= n; i++)); do
		(
			cni_call "$cmd" "$conf" "c$i" eth0 "${PODS[i]}"
			echo "$RC" >"$T/par.$i.rc"
			cp "$OUTF" "$T/par.$i.out"
		) 2>"$T/par.$i.log" &
		pids+=($!)
		track_pid $!
	done
	wait "${pids[@]}"
	for ((i = 1; i <= n; i++)); do
		[[ $(cat "$T/par.$i.rc") == 0 ]] || {
			cat "$T/par.$i.log" >&2
			fail "$cmd #$i failed"
		}
	done
}

_make_pods() {
	local i
	PODS=()
	for ((i = 1; i <= $1; i++)); do new_pod "PODS[$i]"; done
}

test_parallel_bridge_adds() {
	local n=20 conf i ips
	_make_pods $n
	conf=$(bridge_conf 1.0.0 '.ipMasq = true')
	_par ADD $n "$conf"
	ips=$(for ((i = 1; i <= n; i++)); do jq -r '.ips[0].address' "$T/par.$i.out"; done | sort -u)
	assert_eq $n "$(wc -l <<<"$ips")" "distinct addresses"
	assert_eq $n "$(ip_files | wc -l)" "reservation files"
	assert_eq $n "$(node_veths | wc -l)" "host veths"
	assert_eq $n "$(nat_rules | grep -c '^-A POSTROUTING')" "POSTROUTING jumps"
	# every file names the container that got the address in its result
	for ((i = 1; i <= n; i++)); do
		local a
		a=$(jq -r '.ips[0].address | split("/")[0]' "$T/par.$i.out")
		assert_eq "c$i eth0" "$(tr '\r\n' '  ' <"$DATA/$NET/$a" | tr -s ' ')" "owner of $a"
	done
	ping_ok "$NODE" "$(jq -r '.ips[0].address | split("/")[0]' "$T/par.$n.out")"
	_par DEL $n "$conf"
	assert_eq "" "$(ip_files)" "reservation files after DEL"
	assert_eq "" "$(node_veths)" "host veths after DEL"
	assert_eq "" "$(nat_rules)" "nat rules after DEL"
}

test_parallel_host_local_adds() {
	local n=40 conf ips
	PODS=()
	local pod i
	new_pod pod
	for ((i = 1; i <= n; i++)); do PODS[i]=$pod; done
	conf=$(hl_conf 1.0.0 "$DUAL_RANGES")
	_par ADD $n "$conf"
	ips=$(cat "$T"/par.*.out | jq -r '.ips[].address' | sort -u)
	assert_eq $((2 * n)) "$(wc -l <<<"$ips")" "distinct addresses"
	assert_eq $((2 * n)) "$(ip_files | wc -l)" "reservation files"
	_par DEL $n "$conf"
	assert_eq "" "$(ip_files)" "files after DEL"
}
