# shellcheck shell=bash
# The README's "Every difference a user can see" section names every WEFT_* variable the code
# reads, every weft-only flag of flanneld (its --help less Go flanneld's flags), the weft-only
# config keys, and the points a migrating user asks about (error codes, VERSION, booleans,
# portmap validation, the backends flanneld lacks).

# The section: from its heading to the next "## " heading.
_differences() {
	sed -n '/^## Every difference a user can see$/,/^## /p' "$REPO_ROOT/README.md" | sed '$!b;/^## /d'
}

# Go flanneld's flags (main.go v0.28, plus the three it copies from klog).
GO_FLANNELD_FLAGS="etcd-endpoints etcd-prefix etcd-keyfile etcd-certfile etcd-cafile etcd-username etcd-password
iface iface-regex iface-can-reach subnet-file public-ip public-ipv6 subnet-lease-renew-margin ip-masq
ip-masq-fully-random-disable kube-subnet-mgr kube-api-url kube-annotation-prefix kubeconfig-file version
healthz-ip healthz-port iptables-resync iptables-forward-rules ip-blackhole-route net-config-path
set-node-network-unavailable v vmodule log_backtrace_at help"

test_readme_lists_every_difference() {
	weft_only "weft's README"
	local text var flag key
	text=$(_differences)
	[[ -n $text ]] || fail "README.md has no '## Every difference a user can see' section"
	# Every WEFT_* variable read by the code (test-only ones excluded).
	for var in $(grep -rhoE 'WEFT_[A-Z0-9_]*[A-Z0-9]' "$REPO_ROOT"/crates/*/src "$REPO_ROOT"/crates/*/build.rs | sort -u); do
		grep -qF -- "$var" <<<"$text" || fail "the differences section does not name $var"
	done
	# flanneld's weft-only flags (needs the build).
	[[ -x $WEFT_BIN/flanneld ]] || fail "$WEFT_BIN/flanneld is not built"
	for flag in $("$WEFT_BIN/flanneld" --help | sed -nE 's/^ +(-[a-z], )?--([a-z0-9_-]+).*/\2/p' | sort -u); do
		grep -qwF -- "$flag" <<<"$GO_FLANNELD_FLAGS" && continue
		grep -qF -- "--$flag" <<<"$text" || fail "the differences section does not name flanneld's weft-only --$flag"
	done
	for key in subnetFileWaitSeconds DisableTxChecksumOffload vlanTrunk; do
		grep -qF -- "$key" <<<"$text" || fail "the differences section does not name $key"
	done
	# What a migrating user asks about.
	local want
	for want in ' 999' ' 7 ' ' 6 ' ' 4 or 8' ' 5 ' ' 50 ' '"cniVersion":"1.1.0"' 'booleans' 'portmap validates more' \
		'`udp`' '`ipip`' '`wireguard`' '--net-config-path' '--vmodule' '--log_backtrace_at' 'without iptables'; do
		grep -qF -- "$want" <<<"$text" || fail "the differences section does not mention '$want'"
	done
}
