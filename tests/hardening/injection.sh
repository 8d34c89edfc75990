# shellcheck shell=bash
# No injection into nft or iptables: every string a runtime or a pod spec controls (the
# ifname, which CNI lets hold `"`, `\`, `;`, `#`, braces, quotes and control characters; the
# port mappings) either ends up as data inside one rule or is refused.  Container IDs and
# network names cannot carry such characters at all (paths.sh).

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# Interface names a runtime may pass (at most 15 bytes, no '/', ':' or white space).
HOSTILE_IFNAMES=('e"0;flush' 'e\"}#' 'x{}"\\' 'a"b"c"d' '$(id)' "e0'x" '\' 'ü"e'
	$'e\x01x' 'e;drop;' '#' '}' '{' '"')

# What nft stores as the comment of an ipMasq rule: Go's text, without `"` and control
# characters (nft's quoted strings have no escapes; see crates/firewall nft_quote).
_stored_masq_comment() { # NET IFNAME CID
	local clean
	clean=$(printf '%s' "$2" | tr -d '"' | tr -d '\000-\037\177')
	printf '%s-%s, net: %s, if: %s, id: %s' "$(sha16 "$1")" "$(sha16 "$2:$3")" "$1" "$clean" "$3" | head -c 128
}

_nft_tables() { in_node nft list tables | sort | tr '\n' ' '; }

# bridge (ipMasq via nftables, macspoofchk) + portmap (nftables) with hostile ifnames: each
# ADD makes exactly its own rules, whose comments are the literal strings CHECK and GC
# compute; GC keeps them all; DEL removes them all.
test_hostile_ifnames_stay_data_in_nft() {
	weft_only "Go 1.1.1 has neither ipMasqBackend nor portmap's nftables backend"
	local i ifn pod br pm res valid='[]' n=${#HOSTILE_IFNAMES[@]} tables got want
	br=$(bridge_conf 1.1.0 '.ipMasq = true | .ipMasqBackend = "nftables" | .macspoofchk = true | .isDefaultGateway = false')
	pm=$(pm_conf 1.1.0 "$HD_MAPS" '.backend = "nftables"')
	for ((i = 0; i < n; i++)); do
		ifn=${HOSTILE_IFNAMES[i]}
		new_pod pod
		must_add "$br" "c$i" "$ifn" "$pod"
		res=$OUT
		assert_json '.interfaces[2].name' "$ifn"
		must_add "$(with_prev "$pm" "$res")" "c$i" "$ifn" "$pod"
		printf '%s' "$pod" >"$T/pod.$i"
		printf '%s' "$res" >"$T/res.$i"
		valid=$(jq -c --arg c "c$i" --arg i "$ifn" '. + [{containerID: $c, ifname: $i}]' <<<"$valid")
		if [[ $i == 0 ]]; then tables=$(_nft_tables); fi
		assert_eq "$tables" "$(_nft_tables)" "nft tables after ADD with ifname '$ifn'"
	done
	assert_eq "table bridge nat table inet cni_plugins_masquerade table ip cni_hostport " "$tables" "tables"
	# every ipMasq rule carries exactly the comment weft computes for it
	got=$(in_node nft -j list chain inet cni_plugins_masquerade masq_checks | jq -r '.nftables[].rule.comment // empty' | sort)
	want=$(for ((i = 0; i < n; i++)); do _stored_masq_comment "$NET" "${HOSTILE_IFNAMES[i]}" "c$i"; echo; done | sort)
	assert_eq "$want" "$got" "ipMasq comments"
	# one macspoofchk jump and two chains per attachment, nothing else in bridge nat
	assert_eq "$n" "$(in_node nft -j list chain bridge nat PREROUTING | jq '[.nftables[] | select(.rule)] | length')" "macspoofchk jumps"
	assert_eq $((2 * n + 1)) "$(in_node nft -j list table bridge nat | jq '[.nftables[] | select(.chain)] | length')" "bridge nat chains"
	# portmap: 2 DNAT rules per container, comments are the cids
	assert_eq $((2 * n)) "$(in_node nft list chain ip cni_hostport hostports | grep -c 'dnat to')" "DNAT rules"
	# portmap's CHECK finds each container's rules, and GC with all of them valid keeps
	# every rule
	local before
	before=$(in_node nft list ruleset | grep -v 'packets' | md5sum)
	for ((i = 0; i < n; i++)); do
		must_check "$(with_prev "$pm" "$(cat "$T/res.$i")")" "c$i" "${HOSTILE_IFNAMES[i]}" "$(cat "$T/pod.$i")"
	done
	cni_call GC "$(jq --argjson v "$valid" '.["cni.dev/valid-attachments"] = $v' <<<"$br")" "" "" ""
	assert_rc 0
	cni_call GC "$(jq --argjson v "$valid" '.["cni.dev/valid-attachments"] = $v' <<<"$pm")" "" "" ""
	assert_rc 0
	assert_eq "$before" "$(in_node nft list ruleset | grep -v 'packets' | md5sum)" "ruleset after GC with all valid"
	# leakcheck sees them as valid too
	leakcheck_valid_json "$valid"
	assert_eq 0 "$LC_RC" "leakcheck with every hostile attachment valid: $(jq -c .counts <<<"$LC_OUT")"
	for ((i = 0; i < n; i++)); do
		must_del "$(with_prev "$pm" "$(cat "$T/res.$i")")" "c$i" "${HOSTILE_IFNAMES[i]}" "$(cat "$T/pod.$i")"
		must_del "$(with_prev "$br" "$(cat "$T/res.$i")")" "c$i" "${HOSTILE_IFNAMES[i]}" "$(cat "$T/pod.$i")"
	done
	assert_eq 0 "$(count_nft_rules)" "nft rules with a comment after DEL"
	assert_eq 1 "$(in_node nft -j list table bridge nat | jq '[.nftables[] | select(.chain)] | length')" "bridge nat chains after DEL"
	assert_no_leaks
	figure bad_inputs_ifnames_nft "$n"
}

# The same ifnames through the iptables backends (the ifname is in no iptables argument, but
# everything must still be set up and removed).
test_hostile_ifnames_iptables_backends() {
	local i ifn pod n=${#HOSTILE_IFNAMES[@]}
	hd_confs '.isDefaultGateway = false | .ipMasqBackend = "iptables"' '.backend = "iptables"'
	for ((i = 0; i < n; i++)); do
		ifn=${HOSTILE_IFNAMES[i]}
		new_pod pod
		must_add "$HD_BR_CONF" "c$i" "$ifn" "$pod"
		must_add "$(with_prev "$HD_PM_CONF" "$OUT")" "c$i" "$ifn" "$pod"
		printf '%s' "$OUT" >"$T/res.$i"
		printf '%s' "$pod" >"$T/pod.$i"
	done
	assert_eq "$n" "$(nat_rules | grep -c '^-A POSTROUTING -s')" "masquerade jumps"
	assert_eq "$n" "$(in_node iptables-save -t nat | grep -c '^:CNI-DN-')" "DNAT chains"
	for ((i = 0; i < n; i++)); do
		must_del "$(with_prev "$HD_PM_CONF" "$(cat "$T/res.$i")")" "c$i" "${HOSTILE_IFNAMES[i]}" "$(cat "$T/pod.$i")"
		must_del "$(with_prev "$HD_BR_CONF" "$(cat "$T/res.$i")")" "c$i" "${HOSTILE_IFNAMES[i]}" "$(cat "$T/pod.$i")"
	done
	assert_eq 0 "$(count_ipt_rules)" "per-container rules after DEL"
	assert_no_leaks
	figure bad_inputs_ifnames_iptables "$n"
}

# leakcheck with a raw valid-attachments JSON list.
leakcheck_valid_json() {
	printf '%s' "$1" >"$T/valid.json"
	LC_OUT=$(in_node python3 "$LEAKCHECK" --json --valid "$T/valid.json" --data-dir "$DATA" \
		--bridge "$BR" 2>"$T/leakcheck.err")
	LC_RC=$?
	[[ $LC_RC == 0 || $LC_RC == 1 ]] || fail "leakcheck failed (rc=$LC_RC): $(cat "$T/leakcheck.err")"
}

# Port mappings and portmap options that would be injection if spliced into a script or a
# restore batch are refused with a config error, and nothing changes.
test_hostile_portmap_inputs_are_refused() {
	weft_only "Go 1.1.1's portmap accepts (and ignores) an unparsable hostIP"
	local pod res before v n=0
	new_pod pod
	must_add "$(bridge_conf 1.0.0)" c1 eth0 "$pod"
	res=$OUT
	# shared chains and tables exist before the snapshot
	must_add "$(with_prev "$(pm_conf 1.0.0 "$HD_MAPS" '.backend = "iptables"')" "$res")" c1 eth0 "$pod"
	is_weft && must_add "$(with_prev "$(pm_conf 1.0.0 "$HD_MAPS" '.backend = "nftables"')" "$res")" c1 eth0 "$pod"
	before=$(pm_state)
	local maps=(
		'[{"hostPort":8081,"containerPort":81,"protocol":"tcp;flush ruleset"}]'
		'[{"hostPort":8081,"containerPort":81,"protocol":"tcp\n"}]'
		'[{"hostPort":8081,"containerPort":81,"protocol":"udp } ; flush ruleset ; #"}]'
		'[{"hostPort":8081,"containerPort":81,"protocol":"tcp","hostIP":"10.0.0.1\"; flush ruleset; #"}]'
		'[{"hostPort":8081,"containerPort":81,"protocol":"tcp","hostIP":"10.0.0.1 -j DROP"}]'
		'[{"hostPort":8081,"containerPort":81,"protocol":"tcp","hostIP":"::1]"}]'
		'[{"hostPort":"8081; flush ruleset","containerPort":81,"protocol":"tcp"}]'
		'[{"hostPort":8081,"containerPort":"81\n-A INPUT -j DROP","protocol":"tcp"}]'
		'[{"hostPort":70000,"containerPort":81,"protocol":"tcp"}]'
		'[{"hostPort":-1,"containerPort":81,"protocol":"tcp"}]'
	)
	for v in "${maps[@]}"; do
		for backend in iptables nftables; do
			is_weft || [[ $backend == iptables ]] || continue
			cni_add "$(with_prev "$(pm_conf 1.0.0 "$v" ".backend = \"$backend\"")" "$res")" c2 eth0 "$pod"
			[[ $RC != 0 ]] || fail "portmap accepted $v ($backend)"
			n=$((n + 1))
		done
	done
	if is_weft; then
		local opts=(
			'.backend = "nftables" | .conditionsV4 = ["ip daddr 1.2.3.4; flush ruleset"]'
			'.backend = "nftables" | .conditionsV4 = ["iifname \"x"]'
			'.backend = "nftables" | .conditionsV4 = ["ip daddr 1.2.3.4 # x"]'
			'.backend = "nftables" | .conditionsV6 = ["ip6 daddr ::1\nflush ruleset"]'
			'.backend = "iptables" | .conditionsV4 = ["-s", "10.0.0.1\n-A INPUT -j DROP"]'
			'.backend = "iptables" | .externalSetMarkChain = "X\n-A INPUT -j DROP"'
			'.backend = "iptables" | .externalSetMarkChain = "-j DROP"'
			'.backend = "iptables" | .externalSetMarkChain = "a b"'
		)
		for v in "${opts[@]}"; do
			cni_add "$(with_prev "$(pm_conf 1.0.0 "$HD_MAPS" "$v")" "$res")" c2 eth0 "$pod"
			assert_error '6|7' '.'
			n=$((n + 1))
		done
	fi
	assert_state_unchanged "$before" "portmap state after the hostile inputs"
	figure bad_inputs_portmap "$n"
}
