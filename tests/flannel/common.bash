# shellcheck shell=bash
# Helpers for the flannel tests, sourced by tests/flannel/*.sh (only function definitions:
# sourcing must have no side effects).
#
# The flannel binary is always weft's ($WEFT_BIN/flannel): Debian's
# containernetworking-plugins has no Go flannel plugin.  Its delegates (bridge, host-local,
# portmap) come from CNI_PATH = $IPAM_DIR, i.e. weft's under --plugins weft and Go's under
# --plugins go, so `tests/run --plugins go flannel` is the weft-flannel -> Go-bridge interop run.
#
# Every test gets its own subnet.env ($SUBNET_ENV), flannel dataDir ($FLDATA) and host-local
# dataDir ($DATA), all under $T; nothing touches /run/flannel or /var/lib/cni.

FL_NET=cbr0 # the stock conflist's network name
FL_BR=cni0  # bridge's default bridge name (the stock delegate sets none)
FL_NETWORK=10.244.0.0/16
FL_SUBNET=10.244.7.0/24
FL_GW=10.244.7.1
FL_MTU=1450
FL_NETWORK6=fd44::/48
FL_SUBNET6=fd44:0:7::/64
FL_GW6=fd44:0:7::1

fl_setup() {
	MAIN_DIR=$WEFT_BIN
	need_bin "$WEFT_BIN/flannel" "$IPAM_DIR/bridge" "$IPAM_DIR/host-local"
	SUBNET_ENV=$T/run/flannel/subnet.env
	FLDATA=$T/flannel
	mkdir -p "$T/run/flannel" || fail "mkdir"
	write_subnet_env
}

# The subnet.env flanneld would write (vxlan MTU, --ip-masq).
default_env() {
	printf 'FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s\nFLANNEL_MTU=%s\nFLANNEL_IPMASQ=true\n' \
		"$FL_NETWORK" "${FL_GW}/24" "$FL_MTU"
}
dual_env() {
	printf 'FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s\nFLANNEL_IPV6_NETWORK=%s\nFLANNEL_IPV6_SUBNET=%s\nFLANNEL_MTU=%s\nFLANNEL_IPMASQ=true\n' \
		"$FL_NETWORK" "${FL_GW}/24" "$FL_NETWORK6" "${FL_GW6}/64" "$FL_MTU"
}

write_subnet_env() { # [CONTENT]
	printf '%s' "${1-$(default_env)}" >"$SUBNET_ENV" || fail "cannot write $SUBNET_ENV"
}

# stock_conflist V: conf/kube-flannel.conflist (0.3.1, as shipped in kube-flannel.yml) or
# conf/kube-flannel-1.0.0.conflist.
stock_conflist() {
	case $1 in
	0.3.1) printf '%s' "$REPO_ROOT/conf/kube-flannel.conflist" ;;
	*) printf '%s' "$REPO_ROOT/conf/kube-flannel-1.0.0.conflist" ;;
	esac
}

# list_plugin LIST_FILE IDX [V]: plugin IDX of a conflist as libcni hands it over (the list's
# name and cniVersion injected; V overrides the version).
list_plugin() {
	local v=${3:-}
	jq -c --argjson i "$2" --arg v "$v" '.plugins[$i] + {name, cniVersion}
		| if $v != "" then .cniVersion = $v else . end' "$1"
}

# fl_conf V [JQ]: the stock conflist's flannel entry at version V, pointed at this test's
# subnet.env, flannel dataDir and host-local dataDir; then the jq filter.
fl_conf() {
	local v=$1 f=${2:-.}
	list_plugin "$(stock_conflist "$v")" 0 "$v" |
		jq -c --arg se "$SUBNET_ENV" --arg dd "$FLDATA" --arg data "$DATA" \
			'. + {subnetFile: $se, dataDir: $dd, ipam: {dataDir: $data}}' | jq -c "$f"
}

# expected_delegate V [IPMASQ]: the exact bytes flannel saves for fl_conf V and default_env
# (Go's json.Marshal of a map: sorted keys, compact).
expected_delegate() {
	printf '{"cniVersion":"%s","hairpinMode":true,"ipMasq":%s,"ipam":{"dataDir":"%s","ranges":[[{"subnet":"%s"}]],"routes":[{"dst":"%s"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":%s,"name":"%s","type":"bridge"}' \
		"$1" "${2:-false}" "$DATA" "$FL_SUBNET" "$FL_NETWORK" "$FL_MTU" "$FL_NET"
}

saved() { printf '%s' "$FLDATA/$1"; }

assert_saved() { # CID EXPECTED_BYTES
	[[ -f $(saved "$1") ]] || fail "no saved delegate config $(saved "$1")"
	assert_eq "$2" "$(cat "$(saved "$1")")" "saved delegate config of $1"
	assert_eq 600 "$(stat -c %a "$(saved "$1")")" "mode of the saved config"
	assert_eq 700 "$(stat -c %a "$FLDATA")" "mode of the flannel dataDir"
}

assert_no_saved() { # CID
	[[ ! -e $(saved "$1") ]] || fail "saved delegate config $(saved "$1") still there: $(cat "$(saved "$1")")"
	# no temporary file left either
	if [[ -d $FLDATA ]] && [[ -n $(find "$FLDATA" -name '.*.tmp') ]]; then
		fail "temporary files left in $FLDATA"
	fi
}

# The pod's IPv4 address (no prefix) from a result.
pod_ip() { result_ip4 "${1-$OUT}"; }

# A bridge + host-local pair is set up in the node: the bridge, its address, a veth per pod.
pod_veth_count() { node_veths | wc -l; }

# flannel's and its delegates' CNI 1.1 verbs run without these.
FL_V11_UNSET=(-CNI_CONTAINERID -CNI_NETNS -CNI_IFNAME)
