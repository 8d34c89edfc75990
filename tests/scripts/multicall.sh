# shellcheck shell=bash
# The multicall binary: `weft` acts as the plugin named by argv[0] (symlink, hardlink), and a
# delegate that resolves in CNI_PATH to that same file (bridge -> host-local) runs in-process,
# with the result bytes an exec would have given; any other delegate (a copy, Go's plugin, a
# third-party IPAM) is exec'd as before.

ROLES=(bridge host-local portmap loopback flannel)

# layout KIND DIR: DIR/weft plus the plugin names, as symlinks, hardlinks or separate copies.
layout() {
	local kind=$1 dir=$2 r
	mkdir -p "$dir" || fail "mkdir $dir"
	cp "$WEFT_BIN/weft" "$dir/weft" || fail "cp weft"
	case $kind in
	symlink) "$dir/weft" link "$dir" || fail "weft link" ;;
	hard) "$dir/weft" link --hard "$dir" || fail "weft link --hard" ;;
	copy) for r in "${ROLES[@]}"; do cp "$dir/weft" "$dir/$r" || fail "cp $r"; done ;;
	esac
}

# run_in DIR TYPE CMD CONF NETNS CID [strace-output]: runs DIR/TYPE in the node with
# CNI_PATH=DIR; sets OUT and RC.
run_in() {
	local dir=$1 type=$2 cmd=$3 conf=$4 netns=$5 cid=$6 trace=${7:-}
	local pre=()
	[[ -n $trace ]] && pre=(strace -f -qq -e trace=execve -o "$trace")
	RC=0
	OUT=$(printf '%s' "$conf" | in_node env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		CNI_COMMAND="$cmd" CNI_CONTAINERID="$cid" CNI_NETNS="$netns" CNI_IFNAME=eth0 \
		CNI_PATH="$dir" "${pre[@]}" "$dir/$type" 2>>"$T/stderr") || RC=$?
	log "--- $cmd $dir/$type -> rc=$RC: $OUT"
}

# The execve calls strace saw (the first is the plugin itself).
execs() { grep -c 'execve(' "$1"; }

test_multicall_roles_through_symlinks_and_hardlinks() {
	weft_only "the multicall binary"
	need_bin "$WEFT_BIN/weft"
	local kind r out
	for kind in symlink hard; do
		layout "$kind" "$T/$kind"
		for r in "${ROLES[@]}"; do
			out=$(env -i "$T/$kind/$r" --version) || fail "$kind $r --version"
			assert_match "^$r \(weft\) " "$out" "$kind $r --version"
			out=$(env -i CNI_COMMAND=VERSION "$T/$kind/$r" </dev/null) || fail "$kind $r VERSION"
			assert_match '"supportedVersions":\["0.1.0".*"1.1.0"\]' "$out" "$kind $r VERSION"
		done
		[[ $kind == symlink ]] && assert_eq weft "$(readlink "$T/$kind/bridge")" "relative symlink"
		[[ $kind == hard ]] && assert_eq "$(stat -c %i "$T/$kind/weft")" "$(stat -c %i "$T/$kind/bridge")" "hardlink inode"
	done
	# `weft link` replaces what is there (an old separate binary) and refuses unknown names.
	rm "$T/symlink/portmap" && printf 'old' >"$T/symlink/portmap" || fail "write an old portmap"
	"$T/symlink/weft" link "$T/symlink" portmap || fail "relink portmap"
	assert_eq weft "$(readlink "$T/symlink/portmap")" "relinked portmap"
	if "$T/symlink/weft" link "$T/symlink" nosuch 2>"$T/err"; then fail "link of an unknown plugin succeeded"; fi
	assert_match 'not a weft plugin' "$(cat "$T/err")"
}

test_multicall_unknown_name_answers_in_the_protocol() {
	weft_only "the multicall binary"
	need_bin "$WEFT_BIN/weft"
	local out rc=0
	cp "$WEFT_BIN/weft" "$T/cni-bridge" || fail "cp"
	out=$(env -i CNI_COMMAND=ADD "$T/cni-bridge" </dev/null 2>/dev/null) || rc=$?
	assert_eq 1 "$rc" "exit status"
	assert_eq 999 "$(jq -r .code <<<"$out")" "code: $out"
	assert_match 'run as \\?"cni-bridge\\?", which is none of its plugins' "$(jq -r .msg <<<"$out")"
	# Without CNI_COMMAND it is a person: usage on stderr, exit 2.
	rc=0
	env -i "$T/cni-bridge" </dev/null >/dev/null 2>"$T/err" || rc=$?
	assert_eq 2 "$rc" "usage exit status"
	assert_match '^usage: weft link' "$(sed -n 2p "$T/err")"
}

# bridge -> host-local: one exec (the runtime's) through links, two through copies, and the
# same result bytes either way (MACs and the host veth's name are random per ADD).
test_multicall_delegate_runs_in_process_with_the_same_result() {
	weft_only "the multicall binary"
	need_bin "$WEFT_BIN/weft"
	command -v strace >/dev/null || fail "strace is missing (scripts/install-deps.sh)"
	local pod kind conf res=() files=() n
	new_pod pod
	layout symlink "$T/symlink"
	layout copy "$T/copy"
	for kind in symlink copy; do
		conf=$(bridge_conf 1.0.0 ".ipam.dataDir = \"$T/data-$kind\"")
		run_in "$T/$kind" bridge ADD "$conf" "$pod" c1 "$T/strace-$kind"
		assert_eq 0 "$RC" "$kind ADD: $OUT"
		res+=("$(sed -E 's/"mac": "[0-9a-f:]{17}"/"mac": "M"/; s/"veth[0-9a-f]{8}"/"vethX"/' <<<"$OUT")")
		n=$(execs "$T/strace-$kind")
		log "$kind: $n execve"
		case $kind in
		symlink) assert_eq 1 "$n" "execve with host-local in-process: $(cat "$T/strace-$kind")" ;;
		copy) assert_eq 2 "$n" "execve with host-local a separate file" ;;
		esac
		files+=("$(cd "$T/data-$kind/$NET" && grep -r '' . | sort)")
		run_in "$T/$kind" bridge DEL "$conf" "$pod" c1
		assert_eq 0 "$RC" "$kind DEL: $OUT"
	done
	[[ ${res[0]} == "${res[1]}" ]] || fail "results differ:
$(diff <(printf '%s\n' "${res[0]}") <(printf '%s\n' "${res[1]}"))"
	assert_eq "${files[0]}" "${files[1]}" "host-local files"
	[[ ${files[0]} == *10.88.7.2:c1* ]] || fail "no reservation file for c1: ${files[0]}"
	# A delegate's failure comes back the same way too (code and message).
	for kind in symlink copy; do
		conf=$(bridge_conf 1.0.0 '.ipam.subnet = "10.88.7.0/33"')
		run_in "$T/$kind" bridge ADD "$conf" "$pod" c2
		assert_eq 1 "$RC" "$kind ADD with a bad subnet"
		res+=("$OUT")
	done
	assert_eq "${res[2]}" "${res[3]}" "error JSON in-process vs exec"
}

# A third-party IPAM in the same CNI_PATH is exec'd, and gets the CNI environment and stdin.
test_multicall_third_party_ipam_is_execd() {
	weft_only "the multicall binary"
	need_bin "$WEFT_BIN/weft"
	local pod conf
	new_pod pod
	layout symlink "$T/symlink"
	cat >"$T/symlink/fake-ipam" <<-EOS || fail "write fake-ipam"
		#!/bin/sh
		env | grep '^CNI_' | sort >"$T/ipam-env.\$CNI_COMMAND"
		cat >"$T/ipam-stdin.\$CNI_COMMAND"
		[ "\$CNI_COMMAND" = ADD ] && printf '{"cniVersion":"1.0.0","ips":[{"address":"10.88.7.9/24","gateway":"10.88.7.1"}]}'
		exit 0
	EOS
	chmod +x "$T/symlink/fake-ipam"
	conf=$(bridge_conf 1.0.0 '.ipam = {type: "fake-ipam"}')
	run_in "$T/symlink" bridge ADD "$conf" "$pod" c1
	assert_eq 0 "$RC" "ADD with a third-party IPAM: $OUT"
	assert_eq 10.88.7.9/24 "$(jq -r '.ips[0].address' <<<"$OUT")" "address from fake-ipam"
	assert_eq "CNI_COMMAND=ADD
CNI_CONTAINERID=c1
CNI_IFNAME=eth0
CNI_NETNS=$pod
CNI_PATH=$T/symlink" "$(grep -v '^CNI_ARGS' "$T/ipam-env.ADD")" "the IPAM's environment"
	assert_eq "$conf" "$(cat "$T/ipam-stdin.ADD")" "the IPAM's stdin"
	run_in "$T/symlink" bridge DEL "$conf" "$pod" c1
	assert_eq 0 "$RC" "DEL: $OUT"
	[[ -s $T/ipam-env.DEL ]] || fail "fake-ipam was not run for DEL"
}
