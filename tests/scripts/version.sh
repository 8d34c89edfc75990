# shellcheck shell=bash
# Every weft binary names its build: `--version` prints "NAME (weft) VERSION
# (commit C)", and each plugin's about text (no CNI_COMMAND) is Go's shape
# with the same version and commit.  VERSION is the workspace version in
# Cargo.toml; C is 12 hex digits, optionally "-dirty", or "unknown".

WEFT_BINARIES=(weft bridge host-local portmap loopback flannel flanneld)
COMMIT_ERE='([0-9a-f]{12}(-dirty)?|unknown)'

workspace_version() {
	sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/Cargo.toml"
}

test_version_of_every_binary() {
	weft_only "weft's --version"
	local v b out commits=()
	v=$(workspace_version)
	[[ -n $v ]] || fail "no [workspace.package] version in Cargo.toml"
	for b in "${WEFT_BINARIES[@]}"; do
		[[ -x $WEFT_BIN/$b ]] || fail "$WEFT_BIN/$b is not built"
		out=$(env -i "$WEFT_BIN/$b" --version 2>&1 </dev/null) || fail "$b --version failed: $out"
		log "$b --version: $out"
		assert_match "^$b \(weft\) ${v//./\\.} \(commit $COMMIT_ERE\)$" "$out" "$b --version"
		commits+=("${out##* (commit }")
	done
	# One build, one commit (a stale binary would show another).
	assert_eq 1 "$(printf '%s\n' "${commits[@]}" | sort -u | wc -l)" "distinct commits: ${commits[*]}"
}

test_about_text_of_every_plugin() {
	weft_only "weft's about text"
	local v p commit
	v=$(workspace_version)
	for p in "${WEFT_BINARIES[@]}"; do
		[[ $p == flanneld || $p == weft ]] && continue
		commit=$("$WEFT_BIN/$p" --version) || fail "$p --version"
		commit=${commit##* (commit }
		commit=${commit%)}
		assert_match "^$COMMIT_ERE$" "$commit" "$p commit"
		CNI_TYPE=$p cni_call "" '{}' c1 eth0 "" -CNI_COMMAND
		assert_rc 0
		assert_eq "" "$OUT" "$p stdout"
		assert_eq "CNI $p plugin v$v (weft, commit $commit)
CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0" "$(cat "$ERRF")" "$p about text"
	done
}

# An argument that is not UTF-8 is no version request and no reason to panic: the plugin
# prints its about text like with no argument (std::env::args() would abort the process).
test_plugin_with_a_non_utf8_argument() {
	weft_only "weft's argv handling"
	local p out rc
	for p in bridge host-local portmap loopback flannel; do
		rc=0
		out=$(env -i "$WEFT_BIN/$p" $'\xff\xfe' 2>&1 </dev/null) || rc=$?
		assert_eq 0 "$rc" "$p exit status with a non-UTF-8 argument: $out"
		[[ $out == "CNI $p plugin v"* ]] || fail "$p printed no about text: $out"
		[[ $out != *panick* ]] || fail "$p panicked: $out"
	done
}
