# shellcheck shell=bash
# conf/kube-flannel-weft.yml (kube mode) and conf/kube-flannel-weft-etcd.yml:
# kube-flannel.yml's layout, what each mode needs (RBAC, probes, env, args;
# tests/package/manifest.py), the image scripts/image builds, the stock
# conflist, and init containers whose `weft install` commands, run with the
# built weft against temp dirs standing for the node, install what they should.
# Needs python3-yaml (scripts/install-deps.sh).

MANIFEST_PY=$REPO_ROOT/tests/package/manifest.py

workspace_version() {
	sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/Cargo.toml"
}

# The tag scripts/image builds (and the manifests must name).
expected_image() { echo "localhost/weft-flannel:$(workspace_version)"; }

need_yaml() {
	/usr/bin/python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is not installed (scripts/install-deps.sh)"
}

# check_manifest MODE FILE: sets OUT to manifest.py's JSON.
check_manifest() {
	OUT=$(/usr/bin/python3 "$MANIFEST_PY" "$1" "$2" "$(expected_image)" 2>&1) || fail "$2: $OUT"
	log "$2: $OUT"
}

# run_inits HOST: runs the init containers' commands with the built weft,
# the node's /opt/cni/bin and /etc/cni/net.d under HOST, the ConfigMap's
# cni-conf.json in $T/cfg.
run_inits() {
	local host=$1 i argv line out
	mkdir -p "$T/cfg" "$host/opt/cni/bin" "$host/etc/cni/net.d" || fail mkdir
	jq .cni <<<"$OUT" >"$T/cfg/cni-conf.json" || fail "cni-conf.json"
	for i in 0 1; do
		argv=()
		while IFS= read -r line; do
			line=${line/#\/opt\/weft\/bin\/weft/$WEFT_BIN/weft}
			line=${line/#\/opt\/cni\/bin/$host/opt/cni/bin}
			line=${line/#\/etc\/cni\/net.d/$host/etc/cni/net.d}
			argv+=("${line/#\/etc\/kube-flannel/$T/cfg}")
		done < <(jq -r ".init[$i][]" <<<"$OUT")
		out=$("${argv[@]}" 2>&1) || fail "init container ${argv[*]}: $out"
		log "${argv[*]}:"$'\n'"$out"
		INIT_OUT+=$out$'\n'
	done
}

test_manifest_kube_mode() {
	need_yaml
	need_bin "$WEFT_BIN/weft"
	local yml=$REPO_ROOT/conf/kube-flannel-weft.yml host=$T/host
	check_manifest kube "$yml"
	assert_eq "$(jq -S . "$REPO_ROOT/conf/kube-flannel.conflist")" "$(jq -S .cni <<<"$OUT")" \
		"cni-conf.json vs conf/kube-flannel.conflist"
	INIT_OUT=
	run_inits "$host"
	# Upstream's layout: flannel alone (a copy), and the conflist.
	assert_eq "etc/cni/net.d/10-flannel.conflist 644
opt/cni/bin/flannel 755" "$(cd "$host" && find . -printf '%P %m %y\n' | grep -v ' d$' | sed 's/ f$//' | sort)" "files installed"
	cmp -s "$WEFT_BIN/weft" "$host/opt/cni/bin/flannel" || fail "flannel is not the build's weft"
	cmp -s "$T/cfg/cni-conf.json" "$host/etc/cni/net.d/10-flannel.conflist" || fail "conflist differs"
	assert_eq "installed $host/opt/cni/bin/flannel
installed $host/etc/cni/net.d/10-flannel.conflist" "${INIT_OUT%$'\n'}" "init containers' output"
	# A pod restart reinstalls: nothing changes.
	INIT_OUT=
	run_inits "$host"
	assert_match "^unchanged .*flannel
unchanged .*10-flannel.conflist$" "${INIT_OUT%$'\n'}" "second run"
}

test_manifest_etcd_mode() {
	need_yaml
	need_bin "$WEFT_BIN/weft"
	local yml=$REPO_ROOT/conf/kube-flannel-weft-etcd.yml host=$T/host p
	check_manifest etcd "$yml"
	assert_eq "$(jq -S . "$REPO_ROOT/conf/kube-flannel.conflist")" "$(jq -S .cni <<<"$OUT")" \
		"cni-conf.json vs conf/kube-flannel.conflist"
	INIT_OUT=
	run_inits "$host"
	# --plugins all: weft, and every plugin a symlink to it.
	cmp -s "$WEFT_BIN/weft" "$host/opt/cni/bin/weft" || fail "weft is not the build's weft"
	for p in bridge host-local portmap flannel loopback; do
		assert_eq weft "$(readlink "$host/opt/cni/bin/$p")" "$p link"
	done
	assert_eq 7 "$(find "$host" ! -type d | wc -l)" "entries installed (no temp files left)"
}

# manifest.py's assertions can fail: one mistake at a time in the kube manifest.
test_manifest_checker_catches_mistakes() {
	need_yaml
	local yml=$REPO_ROOT/conf/kube-flannel-weft.yml bad=$T/bad.yml what out
	local -A edits=(
		["no nodes/status patch"]='s#- nodes/status#- nodes/statuz#'
		["readyz probe on /healthz"]='s#path: /readyz#path: /healthz#'
		["init container through a shell"]='0,/- \/opt\/weft\/bin\/weft/s#- /opt/weft/bin/weft#- /bin/sh#'
		["another image"]='0,/image: /s#image: .*#image: ghcr.io/flannel-io/flannel:v0.28.9#'
		["no --kube-subnet-mgr"]='/- --kube-subnet-mgr/d'
		["no NODE_NAME"]='s#- name: NODE_NAME#- name: NODE_NAMEX#'
	)
	for what in "${!edits[@]}"; do
		sed "${edits[$what]}" "$yml" >"$bad" || fail "sed $what"
		cmp -s "$yml" "$bad" && fail "the edit '$what' changed nothing"
		if out=$(/usr/bin/python3 "$MANIFEST_PY" kube "$bad" "$(expected_image)" 2>&1); then
			fail "manifest.py accepted a manifest with: $what"
		fi
		log "$what: $(tail -1 <<<"$out")"
	done
}
