# shellcheck shell=bash
# tests/commands: the list of outside commands the suite calls, which CI checks in a brand-new
# Debian root after scripts/install-deps.sh. These tests prove the check can fail.

# A PATH holding every listed command but one: --check must name exactly that one and fail.
test_commands_check_names_a_missing_command() {
	local list c bin="$T/bin" out rc=0
	list=$("$TESTS_DIR/commands") || fail "tests/commands failed"
	grep -qx ip <<<"$list" || fail "the list lacks ip: $list"
	grep -qx jq <<<"$list" || fail "the list lacks jq"
	mkdir -p "$bin"
	for c in $list python3 shfmt; do
		[[ $c == /* || $c == jq ]] && continue
		ln -sf "$(command -v "$c")" "$bin/$c" 2>/dev/null || true
	done
	out=$(PATH=$bin "$bin/python3" "$TESTS_DIR/commands" --check 2>&1) || rc=$?
	[[ $rc == 1 ]] || fail "--check exited $rc with jq missing: $out"
	[[ $out == *"not installed: jq "* ]] || fail "--check did not name jq: $out"
	[[ $(grep -c 'not installed' <<<"$out") == 1 ]] || fail "--check named more than jq: $out"
	PATH=$bin:/usr/bin "$bin/python3" "$TESTS_DIR/commands" --check >/dev/null ||
		fail "--check failed with every command present"
}

# A command reached through a wrapper or a runner function counts: these are in the suite.
test_commands_list_sees_through_wrappers() {
	local list
	list=$("$TESTS_DIR/commands") || fail "tests/commands failed"
	local c
	for c in ping etcd containerd podman nsenter /usr/bin/time; do
		grep -qxF -- "$c" <<<"$list" || fail "$c is missing from the list"
	done
	# Shell functions and builtins are not commands to install.
	for c in in_ns must_add fail echo local; do
		! grep -qxF -- "$c" <<<"$list" || fail "$c is in the list"
	done
}
