# shellcheck shell=bash
# podman 4.3 with the CNI backend (libcni 1.1): `podman run -p`, hairpin,
# `podman rm`.  podman calls VERSION on every plugin of every conflist with
# CNI_NETNS=dummy CNI_IFNAME=dummy CNI_PATH=dummy and stdin
# {"cniVersion":"1.0.0"}, sends CNI_ARGS "IgnoreUnknown=1;K8S_POD_NAME=<name>",
# camelCase portMappings and CNI_NETNS /run/netns/netns-<uuid>.
# shellcheck source=tests/e2e/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

# podman_version_call PLUGIN: VERSION exactly as podman sends it.
podman_version_call() {
	in_env env -i CNI_COMMAND=VERSION CNI_CONTAINERID= CNI_NETNS=dummy CNI_IFNAME=dummy \
		CNI_PATH=dummy CNI_ARGS= "$1" <<<'{"cniVersion":"1.0.0"}'
}

test_podman_run_publish() {
	local ip out c p
	e2e_env_up
	need_plugins bridge host-local portmap
	e2e_uplink
	# VERSION as podman sends it, on every plugin we ship that is built.
	for p in "${E2E_PLUGINS[@]}"; do
		[[ -x $CNI_BIN/$p ]] || continue
		out=$(podman_version_call "$CNI_BIN/$p") || fail "$p VERSION (podman's call) failed: $out"
		assert_jq '(.cniVersion | type == "string") and (.supportedVersions | index("1.0.0") != null)' "$out"
	done
	e2e_spy bridge host-local portmap
	bridge_portmap_conflist weft >"$CNI_CONF/10-weft.conflist"
	podman_up weft

	out=$("${PODMAN[@]}" run -d --name web --hostname webhost --cgroup-parent="/$CGROUP_PARENT" \
		-p 8085:8080 "$E2E_IMAGE" 2>&1) || fail "podman run -p failed: $out"
	ip=$("${PODMAN[@]}" inspect web --format '{{(index .NetworkSettings.Networks "weft").IPAddress}}')
	assert_match '^10\.88\.7\.[0-9]+$' "$ip" "container IP"

	assert_eq webhost "$(http_get "$CLIENT" "$NODE_IP" 8085)" "published port from outside the node"
	assert_eq webhost "$(http_get "" "$NODE_IP" 8085)" "published port from the node"
	out=$("${PODMAN[@]}" exec web sh -c \
		"printf 'GET /cgi-bin/host HTTP/1.0\r\n\r\n' | nc -w 3 $NODE_IP 8085" 2>&1)
	[[ $out == *webhost* ]] || fail "hairpin (the container through its own published port) failed: $out"

	# What podman sent.
	c=$(spy_calls bridge VERSION | head -n1)
	[[ -n $c ]] || fail "podman made no VERSION call"
	assert_eq "dummy dummy dummy" \
		"$(spy_env "$c" CNI_NETNS) $(spy_env "$c" CNI_IFNAME) $(spy_env "$c" CNI_PATH)" "VERSION env"
	assert_eq '{"cniVersion":"1.0.0"}' "$(cat "$c.in")" "VERSION stdin"
	assert_eq 0 "$(cat "$c.rc")" "VERSION exit code"
	c=$(spy_calls portmap ADD)
	assert_jq '.runtimeConfig.portMappings == [{"hostPort":8085,"containerPort":8080,"protocol":"tcp"}]' "$(cat "$c.in")"
	assert_eq 'IgnoreUnknown=1;K8S_POD_NAME=web' "$(spy_env "$c" CNI_ARGS)" "CNI_ARGS"
	assert_match '^/run/netns/netns-' "$(spy_env "$c" CNI_NETNS)" "CNI_NETNS"

	out=$("${PODMAN[@]}" rm -f -t 0 web 2>&1) || fail "podman rm: $out"
	for c in $(spy_calls bridge DEL) $(spy_calls portmap DEL); do
		assert_eq 0 "$(cat "$c.rc")" "DEL exit code ($(cat "$c.out"))"
	done
	[[ -n $(spy_calls portmap DEL) ]] || fail "podman rm made no DEL call"
	assert_eq "" "$("${PODMAN[@]}" ps -aq)" "containers left"
	HTTP_TRIES=1 http_get "$CLIENT" "$NODE_IP" 8085 >/dev/null && fail "the published port answers after podman rm"
	assert_node_clean
}

# A plugin error (a bad bridge config) is in podman's own error message, and
# the failed run leaves nothing behind.
test_podman_plugin_error() {
	local out
	e2e_env_up
	need_plugins bridge host-local portmap
	bridge_portmap_conflist weft '.plugins[0].vlan = 5000' >"$CNI_CONF/10-weft.conflist"
	podman_up weft
	out=$("${PODMAN[@]}" run -d --name bad --cgroup-parent="/$CGROUP_PARENT" -p 8090:8080 "$E2E_IMAGE" 2>&1) &&
		fail "podman run succeeded with vlan 5000: $out"
	log "podman said: $out"
	assert_match 'invalid VLAN ID 5000' "$out" "podman's error"
	"${PODMAN[@]}" rm -f -t 0 bad >/dev/null 2>&1
	assert_eq "" "$("${PODMAN[@]}" ps -aq)" "containers left"
	is_weft && assert_node_clean
	return 0
}
