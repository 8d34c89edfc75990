# shellcheck shell=bash
# scripts/image: builds the image offline with podman from the release
# binaries, prints the tag the manifests name, and the image runs flanneld,
# iptables (with the extensions --ip-masq needs) and nft, and its `weft
# install` fills a bind-mounted directory as the init containers do.
# Skips when podman is missing or cannot run a container here.
# The image stays in podman's storage (it is scripts/image's normal output).

# podman_ok: skips unless podman can run a container on this machine.
podman_ok() {
	command -v podman >/dev/null || skip "podman is not installed (scripts/install-deps.sh)"
	local out
	out=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1) || skip "podman cannot run here: $(tail -1 <<<"$out")"
}

# prun ARG...: podman run --rm ARG..., sets OUT (stdout+stderr) and RC.
prun() {
	RC=0
	# The ulimits: without them runc fails on these machines with "error
	# setting rlimit type 7: operation not permitted" (see tests/e2e/helpers.bash).
	OUT=$(podman run --rm --network none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$@" 2>&1) || RC=$?
	log "podman run $*: rc=$RC"$'\n'"$OUT"
}

test_image_builds_and_runs() {
	need_bin "$WEFT_BIN/weft" "$WEFT_BIN/flanneld"
	podman_ok
	[[ $WEFT_BIN -ef $REPO_ROOT/target/x86_64-unknown-linux-gnu/release ]] ||
		skip "scripts/image takes the binaries from target/x86_64-unknown-linux-gnu/release, not WEFT_BIN=$WEFT_BIN"
	local out tag version image start host=$T/host
	start=$(date +%s%N)
	out=$("$REPO_ROOT/scripts/image" 2>"$T/image.err") || fail "scripts/image: $(cat "$T/image.err")"
	log "scripts/image ($(($(($(date +%s%N) - start)) / 1000000)) ms): $(cat "$T/image.err")"$'\n'"$out"
	tag=$(tail -1 <<<"$out")
	version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/Cargo.toml")
	assert_eq "localhost/weft-flannel:$version" "$tag" "tag on the last line"
	for image in $(grep -ho 'image: [^ ]*' "$REPO_ROOT"/conf/kube-flannel-weft*.yml | sort -u | cut -d' ' -f2); do
		assert_eq "$tag" "$image" "the manifests' image"
	done
	log "image size: $(podman image inspect --format '{{.Size}}' "$tag") bytes"

	prun "$tag" flanneld --version
	assert_eq 0 "$RC" "flanneld --version"
	assert_match "^flanneld \(weft\) ${version//./\\.} " "$OUT" "flanneld --version"
	assert_eq "$("$WEFT_BIN/flanneld" --version 2>&1)" "$OUT" "the image's flanneld is the build's"
	prun "$tag" iptables --version
	assert_eq 0 "$RC" "iptables --version"
	assert_match '^iptables v[0-9.]+ \(nf_tables\)$' "$OUT" "iptables --version"
	prun "$tag" ip6tables-legacy --version
	assert_match '^ip6tables v[0-9.]+ \(legacy\)$' "$OUT" "ip6tables-legacy --version"
	prun "$tag" nft --version
	assert_match '^nftables v[0-9.]+ ' "$OUT" "nft --version"
	# The rules --ip-masq makes need the extensions (comment, MASQUERADE) and
	# a kernel round trip: in the container's own netns, with NET_ADMIN.
	prun --cap-add NET_ADMIN "$tag" iptables -t nat -A POSTROUTING -s 10.244.0.0/16 ! -d 224.0.0.0/4 \
		-m comment --comment "flanneld masq" -j MASQUERADE --random-fully
	assert_eq 0 "$RC" "iptables MASQUERADE rule: $OUT"
	prun --cap-add NET_ADMIN "$tag" nft add table inet weft-image-test
	assert_eq 0 "$RC" "nft add table: $OUT"

	# The init containers' commands into bind mounts.
	mkdir -p "$host/opt/cni/bin" "$host/etc/cni/net.d" "$T/cfg" || fail mkdir
	cp "$REPO_ROOT/conf/kube-flannel.conflist" "$T/cfg/cni-conf.json" || fail cp
	prun -v "$host/opt/cni/bin:/opt/cni/bin" "$tag" /opt/weft/bin/weft install /opt/cni/bin
	assert_eq "0 installed /opt/cni/bin/flannel" "$RC $OUT" "weft install in the image"
	cmp -s "$WEFT_BIN/weft" "$host/opt/cni/bin/flannel" || fail "installed flannel is not the build's weft"
	OUT=$(env -i CNI_COMMAND=VERSION "$host/opt/cni/bin/flannel" </dev/null) || fail "installed flannel: $OUT"
	assert_match '"supportedVersions"' "$OUT" "installed flannel answers VERSION"
	prun -v "$host/etc/cni/net.d:/etc/cni/net.d" -v "$T/cfg:/etc/kube-flannel:ro" "$tag" \
		/opt/weft/bin/weft install --file /etc/kube-flannel/cni-conf.json /etc/cni/net.d/10-flannel.conflist
	assert_eq "0 installed /etc/cni/net.d/10-flannel.conflist" "$RC $OUT" "weft install --file in the image"
	cmp -s "$T/cfg/cni-conf.json" "$host/etc/cni/net.d/10-flannel.conflist" || fail "conflist differs"
	# No shell in the image: the manifests cannot have come to rely on one.
	prun "$tag" /bin/sh -c true
	assert_ne 0 "$RC" "the image has no /bin/sh"
}
