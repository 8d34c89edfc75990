# shellcheck shell=bash
# containerd's `ctr run --cni` (containerd 1.6, go-cni): ctr itself runs the
# plugins of the lexically first conflist in /etc/cni/net.d, searching
# /opt/cni/bin:/usr/lib/cni (here: our binaries, and an empty tmpfs).  ADD
# gets CNI_NETNS=/proc/<pid>/ns/net, DEL (after the task exits) an EMPTY
# CNI_NETNS; no CNI_ARGS, no port mappings.
# shellcheck source=tests/e2e/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

# ctr_conflist [JQ]: bridge + portmap sharing $DATA with the helper pods
# that lib.sh's must_add makes on the same bridge.
ctr_conflist() {
	bridge_portmap_conflist e2e-ctr ".plugins[0].ipam.dataDir = \"$DATA\" | ${1:-.}" \
		>"$CNI_CONF/10-e2e-ctr.conflist"
	# A later file that cannot work: ctr must load only the first one.
	echo '{"cniVersion":"1.0.0","name":"zz","plugins":[{"type":"weft-no-such-plugin"}]}' \
		>"$CNI_CONF/99-zz.conflist"
}

# other_pod VAR: a pod on the same bridge, attached by our bridge plugin
# directly (lib.sh's must_add, in the node netns).  Sets VAR and OTHER_IP.
other_pod() {
	local conf
	new_pod "$1"
	conf=$(jq -c '.plugins[0] + {cniVersion, name}' "$CNI_CONF/10-e2e-ctr.conflist")
	MAIN_DIR=$CNI_BIN IPAM_DIR=$CNI_BIN must_add "$conf" other-pod eth0 "${!1}"
	OTHER_IP=$(result_ip4)
	OTHER_CONF=$conf
}

test_ctr_run_cni() {
	local other out cid add del NET=e2e-ctr
	e2e_env_up
	need_plugins bridge host-local portmap
	e2e_spy bridge portmap
	ctr_conflist
	ctd_up
	other_pod other

	out=$("${CTR[@]}" run --rm --cni "$E2E_IMAGE" c1 sh -c \
		"ip -4 -o addr show eth0; ping -c1 -W2 10.88.7.1 && echo GW-OK; ping -c1 -W2 $OTHER_IP && echo POD-OK" 2>&1) ||
		fail "ctr run --cni failed: $out"
	log "container said: $out"
	assert_match 'inet 10\.88\.7\.[0-9]+/24' "$out" "container eth0"
	[[ $out == *GW-OK* ]] || fail "the container cannot ping its gateway: $out"
	[[ $out == *POD-OK* ]] || fail "the container cannot ping the pod on the other bridge port ($OTHER_IP): $out"

	# What ctr sent: ADD with /proc/<pid>/ns/net, DEL with an empty netns
	# (and the cached prevResult), no port mappings, empty CNI_ARGS.
	cid=$CTR_NS-c1
	add=$(spy_calls bridge ADD | while read -r c; do [[ $(spy_env "$c" CNI_CONTAINERID) == "$cid" ]] && echo "$c"; done)
	del=$(spy_calls bridge DEL | while read -r c; do [[ $(spy_env "$c" CNI_CONTAINERID) == "$cid" ]] && echo "$c"; done)
	[[ -n $add && $(wc -l <<<"$add") == 1 ]] || fail "expected one bridge ADD for $cid, got: $add"
	[[ -n $del && $(wc -l <<<"$del") == 1 ]] || fail "expected one bridge DEL for $cid, got: $del"
	assert_match '^/proc/[0-9]+/ns/net$' "$(spy_env "$add" CNI_NETNS)" "CNI_NETNS on ADD"
	assert_eq "" "$(spy_env "$del" CNI_NETNS)" "CNI_NETNS on DEL"
	assert_eq "" "$(spy_env "$add" CNI_ARGS)" "CNI_ARGS"
	assert_jq 'has("prevResult")' "$(cat "$del.in")"
	assert_eq 0 "$(cat "$del.rc")" "bridge DEL exit code"
	assert_jq '(.runtimeConfig // {} | has("portMappings")) | not' "$(cat "$(spy_calls portmap ADD)".in)"

	# Nothing of c1 is left: the other pod's veth and IP only, no rule
	# naming c1.  (Go 1.1.1's bridge leaks its ipMasq rule when DEL has no
	# netns: containernetworking/plugins#810.)
	assert_eq 1 "$(node_veths | wc -l)" "veths left (the other pod's)"
	assert_eq "$OTHER_IP" "$(ip_files)" "IP files left"
	if is_weft; then
		in_node iptables-save | grep -F -- "$cid" && fail "rules naming $cid remain after ctr's DEL"
	else
		in_node iptables-save | grep -qF -- "$cid" || fail "Go's plugins#810 leak not seen: is ctr's DEL still empty-netns?"
	fi
	[[ -z $("${CTR[@]}" containers ls -q) ]] || fail "ctr --rm left a container"

	must_del "$OTHER_CONF" other-pod eth0 "$other"
	is_weft && assert_node_clean
	return 0
}

# ctr searches /opt/cni/bin:/usr/lib/cni.  With /usr/lib/cni hidden, a
# plugin missing from our dir fails loudly instead of running Go's.
test_ctr_missing_plugin_no_go_fallback() {
	local out
	e2e_env_up
	need_plugins bridge host-local portmap
	ctr_conflist
	ctd_up
	mv "$CNI_BIN/portmap" "$T/portmap.aside"
	out=$("${CTR[@]}" run --rm --cni "$E2E_IMAGE" c3 true 2>&1) && fail "ctr run succeeded without portmap: $out"
	log "ctr said: $out"
	assert_match 'failed to find plugin "portmap" in path \[/opt/cni/bin /usr/lib/cni\]' "$out" "ctr's error"
	return 0
}

# A plugin error (here: the range is exhausted) is in ctr's own error
# message, and the failed ADD leaves nothing behind.
test_ctr_plugin_error() {
	local other out NET=e2e-ctr
	e2e_env_up
	need_plugins bridge host-local portmap
	# A /30: 10.88.7.2 is the only address, and the other pod takes it.
	ctr_conflist '.plugins[0].ipam.ranges = [[{subnet: "10.88.7.0/30"}]]'
	ctd_up
	other_pod other
	assert_eq 10.88.7.2 "$OTHER_IP" "the /30's only address"

	out=$("${CTR[@]}" run --rm --cni "$E2E_IMAGE" c2 true 2>&1) && fail "ctr run succeeded in a full range: $out"
	log "ctr said: $out"
	assert_match 'no IP addresses available in range set: 10\.88\.7\.1-10\.88\.7\.2' "$out" "ctr's error"
	assert_eq "$OTHER_IP" "$(ip_files)" "IP files"
	if is_weft; then
		assert_eq 1 "$(node_veths | wc -l)" "veths after the failed ADD"
	fi
	must_del "$OTHER_CONF" other-pod eth0 "$other"
	is_weft && assert_node_clean
	return 0
}
