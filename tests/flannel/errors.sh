# shellcheck shell=bash
# Every ADD error names its problem, has a sensible code, and leaves nothing behind (no saved
# file, no link, no reservation).  Codes: 11 subnet.env missing (flanneld not up yet: retry),
# 5 subnet.env unreadable, 7 invalid subnet.env content or delegate config, 6 bad JSON.

# shellcheck source=tests/flannel/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# _add_fails CODES ERE [CONF]: ADD c1 fails with CODES/ERE and changes nothing.
_add_fails() {
	local codes=$1 ere=$2 conf=${3:-$(fl_conf 1.0.0)} pod before
	new_pod pod
	before=$(snapshot)
	cni_add "$conf" c1 eth0 "$pod"
	assert_error "$codes" "$ere"
	assert_no_saved c1
	assert_unchanged "$before" "node state after the failed ADD"
	pod_link_exists "$pod" eth0 && fail "pod eth0 created"
	return 0
}

# The most reported flannel error: Go's text (cni-plugin PR #125), plus what it means.
test_err_subnet_env_missing() {
	fl_setup
	rm -f "$SUBNET_ENV"
	_add_fails 11 "^failed to load flannel 'subnet.env' file: open $SUBNET_ENV: no such file or directory\. Check the flannel pod log for this node\. flanneld has not written $SUBNET_ENV yet" \
		"$(fl_conf 1.0.0 '. + {subnetFileWaitSeconds: 0}')"
	# The default: ADD waits 5 s for the file (weft), then the same error.
	local t0=$SECONDS
	_add_fails 11 "flanneld has not written $SUBNET_ENV yet.* Waited 5\.0s for it \(subnetFileWaitSeconds\)\."
	((SECONDS - t0 >= 4)) || fail "ADD did not wait for subnet.env ($((SECONDS - t0)) s)"
}

# The boot race (flannel#2437): the runtime starts a pod before flanneld wrote subnet.env. ADD
# waits for it (bounded) and then succeeds; DEL and CHECK never wait.
test_add_waits_for_a_late_subnet_env() {
	fl_setup
	local pod conf t0
	rm -f "$SUBNET_ENV"
	new_pod pod
	conf=$(fl_conf 1.0.0 '. + {subnetFileWaitSeconds: 10}')
	(
		sleep 1.5
		default_env >"$SUBNET_ENV.tmp" && mv "$SUBNET_ENV.tmp" "$SUBNET_ENV"
	) &
	local writer=$!
	t0=$SECONDS
	must_add "$conf" c1 eth0 "$pod"
	wait "$writer"
	((SECONDS - t0 >= 1)) || fail "ADD did not wait"
	assert_saved c1 "$(expected_delegate 1.0.0)"
	local with_prev
	with_prev=$(jq -c --argjson r "$OUT" '. + {prevResult: $r}' <<<"$conf")
	rm -f "$SUBNET_ENV"
	t0=$SECONDS
	must_check "$with_prev" c1 eth0 "$pod"
	must_del "$conf" c1 eth0 "$pod"
	((SECONDS - t0 <= 1)) || fail "CHECK or DEL waited for subnet.env ($((SECONDS - t0)) s)"
	assert_no_saved c1
}

test_err_subnet_env_unreadable() {
	fl_setup
	rm -f "$SUBNET_ENV"
	mkdir "$SUBNET_ENV"
	_add_fails 5 "failed to load flannel 'subnet.env' file: read $SUBNET_ENV: is a directory"
}

# Go's "missing" text, listing only what is missing.
test_err_subnet_env_missing_keys() {
	fl_setup
	write_subnet_env "foo=bar"
	_add_fails 7 "$SUBNET_ENV is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ\. Check the flannel pod log"
	write_subnet_env "$(default_env | grep -v MTU)"
	_add_fails 7 "$SUBNET_ENV is missing FLANNEL_MTU\. Check"
	# Go panics on a known key without '='; weft names the line
	write_subnet_env "$(default_env | sed 's/^FLANNEL_MTU=.*/FLANNEL_MTU/')"
	_add_fails 7 "$SUBNET_ENV is missing FLANNEL_MTU \(line 3 \"FLANNEL_MTU\" has no '='\)"
}

# Unparsable values: the key and the value are named.
test_err_subnet_env_bad_values() {
	fl_setup
	write_subnet_env "$(default_env | sed 's#^FLANNEL_SUBNET=.*#FLANNEL_SUBNET=10.244.7.1/33#')"
	_add_fails 7 'invalid FLANNEL_SUBNET value "10\.244\.7\.1/33": invalid CIDR address: 10\.244\.7\.1/33'
	write_subnet_env "$(default_env | sed 's#^FLANNEL_NETWORK=.*#FLANNEL_NETWORK=10.244.0.0/16,bogus#')"
	_add_fails 7 'invalid FLANNEL_NETWORK value "10\.244\.0\.0/16,bogus": invalid CIDR address: bogus'
	write_subnet_env "$(default_env | sed 's#^FLANNEL_MTU=.*#FLANNEL_MTU=1450x#')"
	_add_fails 7 'invalid FLANNEL_MTU value "1450x": strconv.ParseUint: parsing "1450x": invalid syntax'
}

# Go's delegate checks, word for word.
test_err_delegate_keys() {
	fl_setup
	_add_fails 7 "^'delegate' dictionary must not have 'name' field, it'll be set by flannel \| $" \
		"$(fl_conf 1.0.0 '.delegate.name = "x"')"
	_add_fails 7 "^'delegate' dictionary must not have 'ipam' field, it'll be set by flannel \| $" \
		"$(fl_conf 1.0.0 '.delegate.ipam = {}')"
	_add_fails 7 "^'delegate' dictionary, if present, must have \(string\) 'type' field \| $" \
		"$(fl_conf 1.0.0 '.delegate.type = 5')"
	# weft: the delegate must be a plugin from CNI_PATH
	_add_fails 7 "'delegate' type \"\.\./\.\./bin/true\" is not a plugin name" \
		"$(fl_conf 1.0.0 '.delegate.type = "../../bin/true"')"
	_add_fails 7 "'delegate' type \"/bin/true\" is not a plugin name" \
		"$(fl_conf 1.0.0 '.delegate.type = "/bin/true"')"
	# config errors win over a missing subnet.env: they will not go away by retrying
	rm -f "$SUBNET_ENV"
	_add_fails 7 "'name' field" "$(fl_conf 1.0.0 '.delegate.name = "x"')"
}

test_err_config_json() {
	fl_setup
	_add_fails 6 'failed to load netconf: json: cannot unmarshal number into Go struct field NetConf.subnetFile of type string' \
		"$(fl_conf 1.0.0 '.subnetFile = 5')"
	_add_fails 6 'NetConf.delegate of type map' "$(fl_conf 1.0.0 '.delegate = "bridge"')"
	_add_fails 7 'failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse ipam.routes: .*invalid CIDR address: 10.0.0.0' \
		"$(fl_conf 1.0.0 '.ipam.routes = [{dst: "10.0.0.0"}]')"
	CNI_TYPE=flannel _add_fails 6 'error unmarshall network config' '{"name":'
}

# The saved file cannot be written (dataDir is a file): I/O error, nothing delegated.
test_err_datadir_unwritable() {
	fl_setup
	printf 'x' >"$T/file"
	FLDATA=$T/file/sub
	_add_fails 5 "failed to save the delegate config to $T/file/sub/c1" "$(fl_conf 1.0.0)"
}

# Tolerated although Go fails (or panics): quotes, export, comments, blank lines, CRLF, a
# stray known key without '=' -- the result is exactly what the clean file gives.
test_subnet_env_tolerant_parsing() {
	local pod conf
	fl_setup
	write_subnet_env "$(printf '# written by hand\r\n\r\nexport FLANNEL_NETWORK="%s"\r\nFLANNEL_SUBNET = %s\r\nFLANNEL_MTU\r\nFLANNEL_MTU=%s # vxlan\r\nFLANNEL_IPMASQ=true\r\n' \
		"$FL_NETWORK" "$FL_GW/24" "$FL_MTU")"
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	assert_saved c1 "$(expected_delegate 1.0.0)"
	must_del "$conf" c1 eth0 "$pod"
}
