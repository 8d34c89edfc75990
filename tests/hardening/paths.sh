# shellcheck shell=bash
# Path and name safety: nothing a config or a runtime hands over can make a plugin run a
# binary outside CNI_PATH, write outside its dataDir, follow a planted symlink, or create a
# file with looser permissions than Go's.

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# A CNI_PATH of our own ($T/cni/bin, the plugins under test) and canaries outside it that
# record being run.  Sets IPAM_DIR to it.
_cni_path_with_canaries() {
	local b
	mkdir -p "$T/cni/bin/sub" "$T/cni/bin/host-local.d"
	for b in bridge host-local portmap flannel; do
		[[ -x $PLUGIN_DIR/$b ]] && ln -s "$PLUGIN_DIR/$b" "$T/cni/bin/$b"
	done
	for b in "$T/evil" "$T/cni/evil" "$T/cni/bin/sub/evil"; do
		printf '#!/bin/sh\ntouch %s/canary\necho "{\\"cniVersion\\":\\"1.0.0\\"}"\n' "$T" >"$b"
		chmod +x "$b"
	done
	IPAM_DIR=$T/cni/bin
}

# Plugin types that name something outside CNI_PATH (or a directory, or nothing).
_bad_types() {
	printf '%s\n' "../evil" "$T/evil" "sub/../../evil" "sub/evil" "./bridge" ".." "." \
		"host-local/" "host-local.d" "../bin/host-local" "/bin/true"
}

BAD_TYPES_N=0

test_ipam_type_cannot_leave_cni_path() {
	local pod p0 before t
	_cni_path_with_canaries
	new_pod p0
	new_pod pod
	must_add "$(bridge_conf 1.0.0)" c0 eth0 "$p0" # the bridge exists before the snapshot
	before=$(snapshot)
	while IFS= read -r t; do
		is_weft || new_pod pod # Go 1.1.1 leaves the pod's eth0 behind after each failure
		cni_add "$(bridge_conf 1.0.0 ".ipam.type = \"$t\"")" c1 eth0 "$pod"
		[[ $RC != 0 ]] || fail "ipam.type '$t' was accepted"
		assert_msg 'invalid plugin name|failed to find plugin|no plugin name'
		[[ ! -e $T/canary ]] || fail "ipam.type '$t' ran a binary outside CNI_PATH"
		# (Go 1.1.1 leaves the veth behind when IPAM fails)
		is_weft && assert_unchanged "$before" "state after ipam.type '$t'"
		BAD_TYPES_N=$((BAD_TYPES_N + 1))
	done < <(_bad_types)
	# and a legitimate name still works
	local p2
	new_pod p2
	must_add "$(bridge_conf 1.0.0)" c1 eth0 "$p2"
	figure bad_inputs_ipam_type "$BAD_TYPES_N"
}

test_flannel_delegate_type_cannot_leave_cni_path() {
	local pod t n=0
	fl_setup
	_cni_path_with_canaries
	new_pod pod
	while IFS= read -r t; do
		cni_add "$(fl_conf 1.0.0 ".delegate.type = \"$t\"")" c1 eth0 "$pod"
		[[ $RC != 0 ]] || fail "delegate.type '$t' was accepted"
		[[ ! -e $T/canary ]] || fail "delegate.type '$t' ran a binary outside CNI_PATH"
		assert_no_saved c1
		n=$((n + 1))
	done < <(_bad_types)
	# A saved config whose type was tampered with is not run by DEL either.
	mkdir -p "$FLDATA"
	while IFS= read -r t; do
		jq -nc --arg t "$t" --arg net "$FL_NET" '{cniVersion: "1.0.0", name: $net, type: $t}' >"$(saved c2)"
		cni_del "$(fl_conf 1.0.0)" c2 eth0 "$pod"
		[[ ! -e $T/canary ]] || fail "saved type '$t' ran a binary outside CNI_PATH"
		n=$((n + 1))
	done < <(_bad_types)
	assert_eq 0 "$(pod_veth_count)" "veths"
	figure bad_inputs_delegate_type "$n"
}

# Container IDs and network names outside the spec's ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ are
# refused by every plugin (code 4 / 7, before anything is created).
test_names_follow_the_spec_regexes() {
	local pod before cid name conf type n=0 files main=$MAIN_DIR
	new_pod pod
	fl_setup
	MAIN_DIR=$main
	must_add "$(bridge_conf 1.0.0)" c0 eth0 "$pod"
	before=$(snapshot)
	files=$(find "$T" -path "$T/out.*" -prune -o -path "$T/err.*" -prune -o -path "$T/in.*" -prune -o -print | sort)
	local cids=('a"b' 'a b' '../x' '-x' '.x' '_x' 'a/b' 'a;b' $'a\nb' 'x$(touch y)' 'é')
	local names=('../x' 'a/b' 'a b' '-x' 'a"b' '.x' 'a:b' $'n\n')
	for type in bridge host-local portmap flannel loopback; do
		case $type in
		bridge) conf=$(bridge_conf 1.0.0 '.ipMasq = true') ;;
		host-local) conf=$(hl_conf 1.0.0) ;;
		portmap) conf=$(pm_conf 1.0.0 "$HD_MAPS") ;;
		flannel) conf=$(fl_conf 1.0.0) ;;
		loopback) conf=$(jq -n '{cniVersion: "1.0.0", name: "lo", type: "loopback"}') ;;
		esac
		MAIN_DIR=$main
		[[ $type == flannel ]] && MAIN_DIR=$WEFT_BIN
		[[ -x $MAIN_DIR/$type ]] || continue
		for cid in "${cids[@]}"; do
			cni_add "$conf" "$cid" eth0 "$pod"
			assert_error 4 'invalid characters in containerID'
			n=$((n + 1))
		done
		for name in "${names[@]}"; do
			cni_add "$(jq --arg n "$name" '.name = $n' <<<"$conf")" c1 eth0 "$pod"
			assert_error 7 'invalid characters found in network name'
			n=$((n + 1))
		done
	done
	MAIN_DIR=$main
	assert_unchanged "$before" "state after the bad names"
	assert_eq "$files" "$(find "$T" -path "$T/out.*" -prune -o -path "$T/err.*" -prune -o -path "$T/in.*" -prune -o -print | sort)" "files under the test dir"
	[[ ! -e y && ! -e $T/y ]] || fail "a container ID was run by a shell"
	figure bad_inputs_names "$n"
}

# host-local never follows a symlink planted in its directory: not for an address file,
# not for last_reserved_ip.0, not for the lock, not for the network directory itself.
# Nothing outside is touched.  (Go's host-local follows them all.)
test_host_local_never_follows_planted_symlinks() {
	weft_only "Go's host-local follows symlinks in its directory"
	local pod outside before conf
	new_pod pod
	outside=$T/outside
	mkdir -p "$outside/dir" "$DATA/$NET"
	printf 'keep-1' >"$outside/victim1"
	printf 'keep-2' >"$outside/victim2"
	printf 'keep-3' >"$outside/victim3"
	touch -d '2001-01-01' "$outside"/victim* "$outside/dir"
	ln -s "$outside/victim1" "$DATA/$NET/10.88.7.2"
	ln -s "$outside/victim2" "$DATA/$NET/last_reserved_ip.0"
	ln -s "$outside/victim3" "$DATA/$NET/.weft-reserve.tmp"
	ln -s "$outside/dir" "$DATA/othernet"
	ln -s "$outside/victim1" "$DATA/thirdnet"
	_outside_state() { (cd "$outside" && find . -printf '%p %s %T@ %m\n' | sort && cat victim1 victim2 victim3); }
	before=$(_outside_state)
	conf=$(hl_conf 1.0.0)
	must_add "$conf" c1 eth0 "$pod"
	# .2 is "taken" by the symlink; the cursor symlink was replaced, not written through
	assert_json '.ips[0].address' 10.88.7.3/24
	[[ -L $DATA/$NET/10.88.7.2 ]] || fail "the planted address symlink was replaced"
	[[ -f $DATA/$NET/last_reserved_ip.0 && ! -L $DATA/$NET/last_reserved_ip.0 ]] ||
		fail "last_reserved_ip.0 is still a symlink"
	assert_eq 10.88.7.3 "$(cat "$DATA/$NET/last_reserved_ip.0")" "cursor"
	must_del "$conf" c1 eth0 "$pod"
	# GC with nothing valid does not follow the address symlink either
	cni_call GC "$(hl_conf 1.1.0 '.["cni.dev/valid-attachments"] = []')" "" "" ""
	assert_rc 0
	# the network directory itself
	cni_add "$(hl_conf 1.0.0 '.name = "othernet"')" c2 eth0 "$pod"
	assert_error '5|7|999' 'symlink'
	cni_add "$(hl_conf 1.0.0 '.name = "thirdnet"')" c2 eth0 "$pod"
	assert_error '5|7|999' 'symlink|not a directory|file exists'
	# the lock
	rm -f "$DATA/$NET/lock"
	ln -s "$outside/victim1" "$DATA/$NET/lock"
	cni_add "$conf" c3 eth0 "$pod"
	[[ $RC != 0 ]] || fail "ADD with a symlinked lock succeeded"
	assert_eq "$before" "$(_outside_state)" "files outside the dataDir"
	assert_eq "" "$(ls -A "$outside/dir")" "the symlinked network directory"
}

# Files and directories get Go's modes whatever the caller's umask (here 000): host-local's
# network dir 0755, address and cursor files 0600, lock 0750; flannel's dataDir 0700 and
# saved config 0600.
test_files_have_go_modes_under_umask_000() {
	weft_only "Go 1.1.1 writes address files 0644"
	local pod
	fl_setup
	new_pod pod
	umask 000
	must_add "$(fl_conf 1.0.0)" c1 eth0 "$pod"
	umask 022
	local d=$DATA/$FL_NET
	assert_eq 755 "$(stat -c %a "$d")" "network dir"
	assert_eq 600 "$(stat -c %a "$d/10.244.7.2")" "address file"
	assert_eq 600 "$(stat -c %a "$d/last_reserved_ip.0")" "cursor"
	assert_eq 750 "$(stat -c %a "$d/lock")" "lock"
	assert_eq 700 "$(stat -c %a "$FLDATA")" "flannel dataDir"
	assert_eq 600 "$(stat -c %a "$(saved c1)")" "saved config"
	[[ -z $(find "$DATA" "$FLDATA" -perm -o+w) ]] || fail "world-writable: $(find "$DATA" "$FLDATA" -perm -o+w)"
}
