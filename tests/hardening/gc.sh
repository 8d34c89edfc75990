# shellcheck shell=bash
# CNI 1.1 GC and STATUS across a whole plugin chain: the stock kube-flannel conflist
# (flannel -> bridge -> host-local, then portmap), driven the way libcni does it (each
# plugin of the list gets the list's name and cniVersion, runtimeConfig for the
# capabilities it declares, and for GC the cni.dev/valid-attachments list).
#
# The per-plugin GC/STATUS tests are where the plugins live: host-local
# (tests/host-local/gc_status.sh), bridge masquerade rules (tests/bridge/weft_only.sh:
# test_bridge_gc, test_bridge_gc_nft_backend), portmap rules by container
# (tests/portmap/lifecycle.sh), flannel saved files (tests/flannel/gc_status.sh).  This file
# checks that together they leave exactly the valid attachments, judged by scripts/leakcheck.

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# The conflist's plugins at 1.1.0: flannel (this test's subnet.env and dataDirs; the delegate
# bridge masquerades because subnet.env says flanneld does not) and portmap.
_gc_list_confs() {
	write_subnet_env "$(default_env | sed 's/FLANNEL_IPMASQ=true/FLANNEL_IPMASQ=false/')"
	GC_FL=$(fl_conf 1.1.0)
	GC_PM=$(list_plugin "$(stock_conflist 1.1.0)" 1 1.1.0)
}

# list_add CID POD PORT: flannel ADD, then portmap ADD with the result and a port mapping.
_list_add() {
	local cid=$1 pod=$2 port=$3 pm
	must_add "$GC_FL" "$cid" eth0 "$pod"
	pm=$(jq -c --argjson p "$port" '.runtimeConfig.portMappings = [{hostPort: $p, containerPort: 80, protocol: "tcp"}]' <<<"$GC_PM")
	must_add "$(with_prev "$pm" "$OUT")" "$cid" eth0 "$pod"
	printf '%s' "$OUT" >"$T/res.$cid"
	printf '%s' "$pm" >"$T/pm.$cid"
}

# list_gc CID...: GC of every plugin of the list, in list order (libcni), with these valid.
_list_gc() {
	local v='[]' c conf
	for c in "$@"; do v=$(jq -c --arg c "$c" '. + [{containerID: $c, ifname: "eth0"}]' <<<"$v"); done
	for conf in "$GC_FL" "$GC_PM"; do
		cni_call GC "$(jq -c --argjson v "$v" '.["cni.dev/valid-attachments"] = $v' <<<"$conf")" "" "" "" \
			"${FL_V11_UNSET[@]}"
		assert_rc 0
	done
}

test_gc_across_the_stock_flannel_conflist() {
	weft_only "CNI 1.1 GC: Go 1.1.1's plugins stop at 1.0.0"
	local i pods=() c
	fl_setup
	NET=$FL_NET
	BR=$FL_BR
	_gc_list_confs
	for i in 1 2 3 4; do
		new_pod "pods[$i]"
		_list_add "c$i" "${pods[i]}" $((8080 + i))
	done
	assert_no_leaks c1 c2 c3 c4
	assert_eq 4 "$(nat_rules | grep -c '^-A POSTROUTING -s')" "masquerade jumps"
	assert_eq 4 "$(in_node iptables-save -t nat | grep -c '^:CNI-DN-')" "portmap chains"

	# the runtime removed the sandboxes of c2 and c4, then garbage-collects
	ip netns del "${pods[2]##*/}"
	ip netns del "${pods[4]##*/}"
	leakcheck -- c1 c3
	assert_eq 1 "$LC_RC" "leakcheck before GC"
	# c2 and c4: IP files, saved configs, masquerade and portmap chains (veths went with
	# their netns)
	assert_eq 2 "$(leak_count ip-file)" "leaked IP files before GC"
	assert_eq 2 "$(leak_count flannel-file)" "leaked saved configs before GC"
	assert_eq 4 "$(leak_count iptables-chain)" "leaked chains before GC"
	_list_gc c1 c3
	assert_no_leaks c1 c3
	assert_eq "10.244.7.2 10.244.7.4 " "$(ip_files | tr "\n" " ")" "reservations after GC"
	[[ -f $(saved c1) && -f $(saved c3) ]] || fail "valid saved configs removed"
	assert_no_saved c2
	assert_no_saved c4
	assert_eq 2 "$(nat_rules | grep -c '^-A POSTROUTING -s')" "masquerade jumps after GC"
	assert_eq 2 "$(in_node iptables-save -t nat | grep -c '^:CNI-DN-')" "portmap chains after GC"
	# the survivors are whole: CHECK through the list, and traffic
	for c in c1 c3; do
		i=${c#c}
		must_check "$(with_prev "$GC_FL" "$(cat "$T/res.$c")")" "$c" eth0 "${pods[i]}"
		must_check "$(with_prev "$(cat "$T/pm.$c")" "$(cat "$T/res.$c")")" "$c" eth0 "${pods[i]}"
	done
	ping_ok "${pods[1]}" 10.244.7.4
	# STATUS of every plugin of the list
	for c in "$GC_FL" "$GC_PM"; do
		cni_call STATUS "$c" "" "" "" "${FL_V11_UNSET[@]}"
		assert_rc 0
	done
	# GC is idempotent
	local before
	before=$(snapshot)
	_list_gc c1 c3
	assert_unchanged "$before" "state after a second GC"
	# and with nothing valid (after the sandboxes are gone) nothing is left
	ip netns del "${pods[1]##*/}"
	ip netns del "${pods[3]##*/}"
	_list_gc
	assert_no_leaks
	assert_eq 0 "$(count_ipt_rules)" "per-container rules after the last GC"
	assert_eq "" "$(ls -A "$FLDATA")" "flannel dataDir after the last GC"
	figure gc_chain "stock flannel conflist + portmap: 4 pods, GC kept 2, then 0; leakcheck clean"
}
