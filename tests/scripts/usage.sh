# shellcheck shell=bash
# scripts/install.sh and scripts/demo.sh: no action, -h/--help or a wrong
# argument print the usage and change nothing.  Every run points the scripts
# at this test's temp dir (DESTDIR, WEFT_BIN) and puts recording stubs first
# in PATH, so even a regression cannot reach the machine's /opt, /etc or
# package manager: it shows up as files under $T or calls in $T/calls.

# stub_path DIR: fake tools that record their name in $T/calls and fail.
stub_path() {
	local d=$1 t
	mkdir -p "$d"
	for t in cargo apt-get dpkg-query etcd etcdctl ip modprobe sysctl systemctl jq python3; do
		printf '#!/bin/sh\necho %s "$@" >>"%s/calls"\nexit 1\n' "$t" "$T" >"$d/$t"
		chmod 755 "$d/$t"
	done
}

# run_script SCRIPT ARG...: sets RC, OUT (stdout), ERR (stderr).
run_script() {
	local script=$1
	shift
	OUT=$(PATH=$T/stubs:$PATH WEFT_BIN=$T/build DESTDIR=$T/root "$REPO_ROOT/scripts/$script" "$@" 2>"$T/stderr")
	RC=$?
	ERR=$(cat "$T/stderr")
	log "$script $*: rc=$RC"$'\n'"$OUT"$'\n'"stderr: $ERR"
}

assert_nothing_done() { # WHAT
	[[ ! -e $T/root ]] || fail "$1 wrote: $(find "$T/root" -type f)"
	[[ ! -e $T/calls ]] || fail "$1 ran: $(cat "$T/calls")"
}

# A build dir with every binary, so a regression would have something to install.
fake_build() {
	local n
	mkdir -p "$T/build"
	for n in weft flanneld; do
		printf '#!/bin/sh\necho %s\n' "$n" >"$T/build/$n"
		chmod 755 "$T/build/$n"
	done
}

test_install_without_an_action_prints_usage() {
	stub_path "$T/stubs"
	fake_build
	run_script install.sh
	assert_rc 2
	assert_eq "" "$OUT" "stdout"
	assert_match "--plugins +the CNI plugins" "$ERR" "usage on stderr"
	assert_nothing_done "install.sh without arguments"
	# Options, but nothing named to install.
	run_script install.sh --force --prefix /opt/cni/bin --network 10.1.0.0/16
	assert_rc 2
	assert_match "--with-flanneld" "$ERR" "usage"
	assert_nothing_done "install.sh with options only"
	# The same environment with an action does install: the runs above
	# were refused, not pointed somewhere this test does not look.
	run_script install.sh --plugins
	assert_rc 0
	[[ -x $T/root/opt/cni/bin/bridge ]] || fail "--plugins did not install into DESTDIR"
}

test_install_help_and_bad_arguments() {
	stub_path "$T/stubs"
	fake_build
	local a
	for a in -h --help; do
		run_script install.sh "$a"
		assert_rc 0
		assert_match "^Installs weft on a node" "$OUT" "$a: usage on stdout"
		assert_nothing_done "install.sh $a"
	done
	run_script install.sh --plugins --bogus
	assert_rc 2
	assert_match "unknown argument '--bogus'" "$ERR"
	assert_match "--plugins +the CNI plugins" "$ERR" "usage"
	assert_nothing_done "install.sh --plugins --bogus"
}

# What a started demo leaves while it runs: its temp dirs and namespaces.
demo_traces() {
	ls -d /tmp/weft-demo.* 2>/dev/null
	ip netns list | grep '^wdemo-'
}

test_demo_help_runs_nothing() {
	stub_path "$T/stubs"
	local a before
	before=$(demo_traces)
	for a in -h --help; do
		run_script demo.sh "$a"
		assert_rc 0
		assert_match "^weft demo: a three-node flannel cluster" "$OUT" "$a: usage on stdout"
		assert_match "--keep" "$OUT" "$a: usage"
		assert_eq "" "$ERR" "$a: stderr"
		assert_nothing_done "demo.sh $a"
	done
	assert_eq "$before" "$(demo_traces)" "demo temp dirs and namespaces"
}

test_demo_refuses_unknown_arguments() {
	stub_path "$T/stubs"
	local args
	for args in "--bogus" "--keep --bogus" "keep"; do
		# shellcheck disable=SC2086 # one test case per word list
		run_script demo.sh $args
		assert_rc 2
		assert_match "unknown argument" "$ERR" "demo.sh $args"
		assert_match "three-node flannel cluster" "$ERR" "demo.sh $args: usage"
		assert_eq "" "$OUT" "demo.sh $args: stdout"
		assert_nothing_done "demo.sh $args"
	done
}
