# shellcheck shell=bash
# portmap: the exact iptables rules (Go's, against the real kernel), ADD/DEL idempotency, DEL
# without prevResult or portMappings, CHECK, GC, STATUS, config errors and result output.

# shellcheck source=tests/portmap/pm.bash
source "$(dirname "${BASH_SOURCE[0]}")/pm.bash"

# The container chain's lines for c1 at 10.88.7.2 with tcp 8080, udp 8053, tcp 8083 on hostIP.
_dn_lines() { # CHAIN
	cat <<-EOF
		-A $1 -s 10.88.7.0/24 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
		-A $1 -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
		-A $1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.7.2:80
		-A $1 -s 10.88.7.0/24 -p udp -m udp --dport 8053 -j CNI-HOSTPORT-SETMARK
		-A $1 -s 127.0.0.1/32 -p udp -m udp --dport 8053 -j CNI-HOSTPORT-SETMARK
		-A $1 -p udp -m udp --dport 8053 -j DNAT --to-destination 10.88.7.2:53
		-A $1 -s 10.88.7.0/24 -d 192.168.77.1/32 -p tcp -m tcp --dport 8083 -j CNI-HOSTPORT-SETMARK
		-A $1 -s 127.0.0.1/32 -d 192.168.77.1/32 -p tcp -m tcp --dport 8083 -j CNI-HOSTPORT-SETMARK
		-A $1 -d 192.168.77.1/32 -p tcp -m tcp --dport 8083 -j DNAT --to-destination 10.88.7.2:83
	EOF
}

_entry_line() { # CID PROTO PORTS CHAIN
	printf -- '-A CNI-HOSTPORT-DNAT -p %s -m comment --comment "dnat name: \\"%s\\" id: \\"%s\\"" -m multiport --dports %s -j %s\n' \
		"$2" "$NET" "$1" "$3" "$4"
}

_chain_rules() { nat_rules | grep -- "^-A $1 " || true; }

THREE_MAPS='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
             {"hostPort":8053,"containerPort":53,"protocol":"udp"},
             {"hostPort":8083,"containerPort":83,"protocol":"tcp","hostIP":"192.168.77.1"}]'

test_pm_rules_exact() {
	local pod res pod2 res2 ch ch2
	pm_pod pod res c1
	pm_add "$(pm_conf 1.0.0 "$THREE_MAPS")" c1 "$pod" "$res"
	ch=$(dn_chain "$NET" c1)
	assert_eq 28 "${#ch}" "chain name length"
	assert_eq "$(_dn_lines "$ch")" "$(_chain_rules "$ch")" "rules of $ch (in order)"
	assert_eq "$(_entry_line c1 tcp 8080,8083 "$ch"; _entry_line c1 udp 8053 "$ch")" \
		"$(_chain_rules CNI-HOSTPORT-DNAT)" "entry rules"
	for c in PREROUTING OUTPUT POSTROUTING CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
		assert_eq "$(pm_shared_lines | grep -- "^-A $c ")" "$(_chain_rules "$c")" "rules of $c"
	done
	# A second container: its entry rules come after the first's (appended).
	pm_pod pod2 res2 c2
	pm_add "$(pm_conf 1.0.0 '[{"hostPort":9090,"containerPort":90,"protocol":"tcp"}]')" c2 "$pod2" "$res2"
	ch2=$(dn_chain "$NET" c2)
	assert_eq "$(_entry_line c1 tcp 8080,8083 "$ch"; _entry_line c1 udp 8053 "$ch"; _entry_line c2 tcp 9090 "$ch2")" \
		"$(_chain_rules CNI-HOSTPORT-DNAT)" "entry rules, two containers"
	# The shared chains are not duplicated.
	assert_eq "$(pm_shared_lines | sort)" "$(nat_rules | grep -vE -- '-A (CNI-DN-|CNI-HOSTPORT-DNAT)' | sort)" "shared rules"
}

test_pm_rules_ipv6() {
	local pod res ch
	pm_pod pod res c1 "$DUAL_RANGES"
	pm_add "$(pm_conf 1.0.0 "$THREE_MAPS")" c1 "$pod" "$res"
	ch=$(dn_chain "$NET" c1)
	assert_eq "-A $ch -s 2001:db8:7::/64 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
-A $ch -p tcp -m tcp --dport 8080 -j DNAT --to-destination [2001:db8:7::2]:80
-A $ch -s 2001:db8:7::/64 -p udp -m udp --dport 8053 -j CNI-HOSTPORT-SETMARK
-A $ch -p udp -m udp --dport 8053 -j DNAT --to-destination [2001:db8:7::2]:53" \
		"$(nat6_rules | grep -- "^-A $ch ")" "v6 rules (the v4 hostIP mapping is skipped)"
	# v6 entry rules list every host port, like v4's.
	assert_eq "$(_entry_line c1 tcp 8080,8083 "$ch"; _entry_line c1 udp 8053 "$ch")" \
		"$(nat6_rules | grep -- '^-A CNI-HOSTPORT-DNAT ')" "v6 entry rules"
	assert_eq "$(_dn_lines "$ch")" "$(_chain_rules "$ch")" "v4 rules of the dual-stack pod"
}

test_pm_many_ports_split() {
	local pod res maps ch
	pm_pod pod res c1
	maps=$(jq -nc '[range(9000; 9020) | {hostPort: ., containerPort: 80, protocol: "tcp"}]')
	pm_add "$(pm_conf 1.0.0 "$maps")" c1 "$pod" "$res"
	ch=$(dn_chain "$NET" c1)
	assert_eq "$(_entry_line c1 tcp "$(seq -s, 9000 9014)" "$ch"; _entry_line c1 tcp "$(seq -s, 9015 9019)" "$ch")" \
		"$(_chain_rules CNI-HOSTPORT-DNAT)" "multiport takes 15 ports per rule"
	assert_eq 60 "$(_chain_rules "$ch" | wc -l)" "rules in $ch"
}

test_pm_mark_bit_and_external_chain() {
	local pod res pod2 res2
	pm_pod pod res c1
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS" '.markMasqBit = 5')" c1 "$pod" "$res"
	assert_eq '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x20/0x20' \
		"$(_chain_rules CNI-HOSTPORT-SETMARK)" "SETMARK with bit 5"
	assert_eq '-A CNI-HOSTPORT-MASQ -m mark --mark 0x20/0x20 -j MASQUERADE' "$(_chain_rules CNI-HOSTPORT-MASQ)" "MASQ with bit 5"
	# externalSetMarkChain: the hairpin/localhost rules jump there.
	in_node iptables -t nat -N WT-MARK
	pm_pod pod2 res2 c2
	pm_add "$(pm_conf 1.0.0 '[{"hostPort":9090,"containerPort":90,"protocol":"tcp"}]' '.externalSetMarkChain = "WT-MARK"')" c2 "$pod2" "$res2"
	assert_eq "-A $(dn_chain "$NET" c2) -s 10.88.7.0/24 -p tcp -m tcp --dport 9090 -j WT-MARK
-A $(dn_chain "$NET" c2) -s 127.0.0.1/32 -p tcp -m tcp --dport 9090 -j WT-MARK
-A $(dn_chain "$NET" c2) -p tcp -m tcp --dport 9090 -j DNAT --to-destination 10.88.7.3:90" \
		"$(_chain_rules "$(dn_chain "$NET" c2)")" "rules with an external mark chain"
}

test_pm_add_twice_is_idempotent() {
	local pod res conf before
	pm_pod pod res c1 "$DUAL_RANGES"
	conf=$(pm_conf 1.0.0 "$THREE_MAPS")
	pm_add "$conf" c1 "$pod" "$res"
	before=$(pm_state)
	pm_add "$conf" c1 "$pod" "$res"
	assert_state_unchanged "$before" "state after a second identical ADD"
}

test_pm_del_removes_everything_of_the_container() {
	local pod res pod2 res2 conf before
	pm_pod pod2 res2 c2 "$DUAL_RANGES"
	pm_add "$(pm_conf 1.0.0 '[{"hostPort":9090,"containerPort":90,"protocol":"tcp"}]')" c2 "$pod2" "$res2"
	pm_pod pod res c1 "$DUAL_RANGES"
	before=$(pm_state)
	conf=$(pm_conf 1.0.0 "$THREE_MAPS")
	pm_add "$conf" c1 "$pod" "$res"
	[[ -n $(pm_traces c1) ]] || fail "no rules for c1 after ADD"
	must_del "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_eq "" "$(pm_traces c1)" "traces of c1 after DEL"
	assert_state_unchanged "$before" "state after ADD+DEL (c2 untouched)"
	# DEL twice: still fine, nothing changes.
	must_del "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	must_del "$conf" c1 eth0 ""
	assert_state_unchanged "$before" "state after DEL x3"
}

# Go 1.1.1 DEL is a no-op without portMappings; runtimes (ctr, nerdctl, a second CRI-O DEL)
# send neither prevResult nor runtimeConfig.
test_pm_del_without_prev_result_or_mappings() {
	weft_only "Go's DEL without portMappings does nothing"
	local pod res before
	pm_warm "$DUAL_RANGES"
	pm_pod pod res c1 "$DUAL_RANGES"
	before=$(pm_state)
	pm_add "$(pm_conf 1.0.0 "$THREE_MAPS")" c1 "$pod" "$res"
	must_del '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"portmap"}' c1 eth0 ""
	assert_eq "" "$(pm_traces c1)" "traces of c1 after DEL"
	assert_state_unchanged "$before" "state after DEL without prevResult/portMappings"
	must_del '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"portmap"}' c1 eth0 ""
}

test_pm_del_with_invalid_mappings_still_cleans() {
	weft_only "Go fails DEL on an invalid config"
	local pod res before
	pm_warm
	pm_pod pod res c1
	before=$(pm_state)
	pm_add "$(pm_conf 1.0.0 "$PM_MAPS")" c1 "$pod" "$res"
	must_del "$(pm_conf 1.0.0 '[{"hostPort":0,"containerPort":80}]')" c1 eth0 "$pod"
	assert_state_unchanged "$before" "state after DEL with a bad mapping"
}

test_pm_check() {
	weft_only "Go 1.1.1 CHECK fails on IPv4-only pods (plugins#819)"
	local pod res conf ch
	pm_pod pod res c1
	conf=$(pm_conf 1.0.0 "$THREE_MAPS")
	pm_add "$conf" c1 "$pod" "$res"
	must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	ch=$(dn_chain "$NET" c1)
	in_node iptables -t nat -D "$ch" -p udp -m udp --dport 8053 -j DNAT --to-destination 10.88.7.2:53
	cni_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_error '999' "rule .*8053.* in chain $ch not found"
	# An entry rule gone.
	pm_add "$conf" c1 "$pod" "$res"
	must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	in_node iptables -t nat -D CNI-HOSTPORT-DNAT -p udp -m comment --comment "dnat name: \"$NET\" id: \"c1\"" -m multiport --dports 8053 -j "$ch"
	cni_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_error '999' 'CNI-HOSTPORT-DNAT'
	# The whole chain gone.
	must_del "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	cni_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_error '999' "chain $ch not found"
}

test_pm_check_dual_stack_and_nft() {
	weft_only "Go 1.1.1 CHECK checks v4 rules in ip6tables; no nftables backend"
	local pod res conf
	pm_pod pod res c1 "$DUAL_RANGES"
	conf=$(pm_conf 1.0.0 "$THREE_MAPS")
	pm_add "$conf" c1 "$pod" "$res"
	must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	in_node ip6tables -t nat -F "$(dn_chain "$NET" c1)"
	cni_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_error '999' 'could not check ipv6 dnat'
	must_del "$conf" c1 eth0 "$pod"
	conf=$(pm_conf 1.0.0 "$THREE_MAPS" '.backend = "nftables"')
	pm_add "$conf" c1 "$pod" "$res"
	must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	local h
	h=$(in_node nft -a list chain ip cni_hostport hostports | grep 'dport 8053' | sed 's/.*# handle //')
	in_node nft delete rule ip cni_hostport hostports handle "$h"
	cni_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_error '999' 'missing hostport rules in "hostports" chain'
}

test_pm_check_needs_prev_result() {
	local pod res
	pm_pod pod res c1
	cni_check "$(pm_conf 1.0.0 "$PM_MAPS")" c1 eth0 "$pod"
	assert_error_w 7 999 'Required prevResult missing'
}

test_pm_add_needs_prev_result() {
	local pod res
	pm_pod pod res c1
	cni_add "$(pm_conf 1.0.0 "$PM_MAPS")" c1 eth0 "$pod"
	assert_error_w 7 999 'must be called as chained plugin'
}

test_pm_no_mappings_passes_prev_result() {
	local pod res conf
	new_pod pod
	# libcni hands every plugin of a 0.4.0 conflist a 0.4.0 prevResult.
	must_add "$(bridge_conf 0.4.0 '.hairpinMode = true')" c1 eth0 "$pod"
	res=$OUT
	conf=$(jq '.cniVersion = "0.4.0" | del(.runtimeConfig)' <<<"$(pm_conf 1.0.0 '[]')")
	pm_add "$conf" c1 "$pod" "$res"
	assert_go_layout
	assert_json .cniVersion 0.4.0
	assert_json '.ips[0].version' 4
	assert_json '.ips[0].address' 10.88.7.2/24
	assert_json '[.interfaces[].name] | length' 3
	assert_eq "" "$(nat_rules)" "nat rules"
	# With mappings: the same pass-through.
	pm_add "$(pm_conf 0.4.0 "$PM_MAPS")" c1 "$pod" "$res"
	assert_json .cniVersion 0.4.0
	assert_json '.ips[0].address' 10.88.7.2/24
	assert_json '.routes[0].gw' 10.88.7.1
	if is_weft; then
		# A prevResult of another version is converted to the conf's (Go 1.1.1 refuses).
		local pod2 res2
		pm_pod pod2 res2 c2
		pm_add "$(pm_conf 0.3.1 "$PM_MAPS")" c2 "$pod2" "$res2"
		assert_json .cniVersion 0.3.1
		assert_json '.ips[0].version' 4
		assert_json '.ips[0].address' 10.88.7.3/24
	fi
}

test_pm_config_errors() {
	local pod res before
	pm_pod pod res c1
	before=$(pm_state)
	_bad() { # MAPPINGS [JQ]
		cni_add "$(with_prev "$(pm_conf 1.0.0 "$1" "${2:-.}")" "$res")" c1 eth0 "$pod"
	}
	_bad '[{"hostPort":0,"containerPort":80}]'
	assert_error_w 7 999 'Invalid host port number: 0'
	_bad '[{"hostPort":80,"containerPort":-5}]'
	assert_error_w 7 999 'Invalid container port number: -5'
	_bad '[{"hostPort":80,"containerPort":80}]' '.markMasqBit = 32'
	assert_error_w 7 999 'MasqMarkBit must be between 0 and 31'
	_bad '[{"hostPort":80,"containerPort":80}]' '.markMasqBit = 5 | .externalSetMarkChain = "X"'
	assert_error_w 7 999 'Cannot specify externalSetMarkChain and markMasqBit'
	assert_state_unchanged "$before" "state after rejected ADDs"
	if is_weft; then
		# Go accepts these and fails later (or maps garbage).
		_bad '[{"hostPort":70000,"containerPort":80}]'
		assert_error 7 'Invalid host port number: 70000.*portMappings\[0\]\.hostPort'
		_bad '[{"hostPort":80,"containerPort":80},{"hostPort":81,"containerPort":65536}]'
		assert_error 7 'portMappings\[1\]\.containerPort'
		_bad '[{"hostPort":80,"containerPort":80,"protocol":"icmp"}]'
		assert_error 7 'invalid protocol "icmp" in runtimeConfig.portMappings\[0\]\.protocol'
		_bad '[{"hostPort":80,"containerPort":80,"hostIP":"300.1.1.1"}]'
		assert_error 7 'portMappings\[0\]\.hostIP'
		_bad '[{"hostPort":"80","containerPort":80}]'
		assert_error 7 'portMappings\[0\]\.hostPort'
		_bad '[{"hostPort":80,"containerPort":80}]' '.backend = "iptables" | .conditionsV4 = ["ip", "saddr", "1.2.3.4"]'
		assert_error 7 'iptables backend was requested but configuration contains nftables-specific options \[conditionsV4\]'
		_bad '[{"hostPort":80,"containerPort":80}]' '.backend = "nftables" | .conditionsV4 = ["ip saddr 1.2.3.4; flush ruleset"]'
		assert_error 7 'invalid nftables condition'
		_bad '[{"hostPort":80,"containerPort":80}]' '.backend = "bpf"'
		assert_error 7 'unrecognized backend "bpf"'
		assert_state_unchanged "$before" "state after rejected ADDs"
		# No protocol means tcp (Go passes "" to iptables and fails).
		pm_add "$(pm_conf 1.0.0 '[{"hostPort":8080,"containerPort":80},{"hostPort":8081,"containerPort":81,"protocol":"UDP"}]')" c1 "$pod" "$res"
		assert_match -- "-A $(dn_chain "$NET" c1) -p tcp -m tcp --dport 8080 -j DNAT" "$(nat_rules)"
		assert_match -- "-A $(dn_chain "$NET" c1) -p udp -m udp --dport 8081 -j DNAT" "$(nat_rules)"
	fi
}

test_pm_gc() {
	weft_only "CNI 1.1 GC: Go's portmap has none"
	local p1 r1 p2 r2 p3 r3 conf other gc
	pm_pod p1 r1 c1
	pm_pod p2 r2 c2
	pm_pod p3 r3 c3
	conf=$(pm_conf 1.1.0 "$PM_MAPS")
	other=$(pm_conf 1.1.0 '[{"hostPort":9090,"containerPort":90,"protocol":"tcp"}]' '.name = "othernet"')
	pm_add "$conf" c1 "$p1" "$r1"
	pm_add "$conf" c2 "$p2" "$r2"
	pm_add "$other" c3 "$p3" "$r3"
	# nft rules of a fourth container, on this network, and of c2 on another one.
	local nconf
	nconf=$(pm_conf 1.1.0 '[{"hostPort":7070,"containerPort":70,"protocol":"tcp"}]' '.backend = "nftables"')
	pm_add "$nconf" c4 "$p3" "$r3"
	pm_add "$(jq '.name = "othernet"' <<<"$nconf")" c2 "$p2" "$r2"
	gc=$(jq '.["cni.dev/valid-attachments"] = [{"containerID":"c1","ifname":"eth0"}] | del(.runtimeConfig)' <<<"$conf")
	cni_call GC "$gc" "" "" ""
	assert_rc 0
	[[ -n $(pm_traces c1) ]] || fail "c1 (valid) lost its rules"
	assert_eq "" "$(nat_rules | grep -- "$(dn_chain "$NET" c2)")" "c2's iptables rules after GC"
	assert_match "$(dn_chain othernet c3)" "$(nat_rules)" "othernet's rules survive GC of $NET"
	assert_eq "" "$(in_node nft list table ip cni_hostport | grep 'comment "c4"')" "c4's nft rules after GC"
	assert_match 'comment "c2"' "$(in_node nft list table ip cni_hostport)" "c2's nft rules on othernet survive"
	# GC is idempotent, and a GC that keeps everything keeps everything.
	local before
	before=$(pm_state)
	cni_call GC "$gc" "" "" ""
	assert_rc 0
	assert_state_unchanged "$before" "state after a second GC"
}

# GC without cni.dev/valid-attachments is refused (code 7), and no rule of a live container
# is touched (it once removed every chain of the network and succeeded).
test_pm_gc_without_valid_attachments_touches_nothing() {
	weft_only "CNI 1.1 GC: Go's portmap has none"
	local p1 r1 p2 r2 conf nconf before
	pm_pod p1 r1 c1
	pm_pod p2 r2 c2
	conf=$(pm_conf 1.1.0 "$PM_MAPS")
	nconf=$(pm_conf 1.1.0 '[{"hostPort":7070,"containerPort":70,"protocol":"tcp"}]' '.backend = "nftables"')
	pm_add "$conf" c1 "$p1" "$r1"
	pm_add "$nconf" c2 "$p2" "$r2"
	before=$(pm_state)
	cni_call GC "$(jq 'del(.runtimeConfig)' <<<"$conf")" "" "" ""
	assert_error 7 '^GC needs cni.dev/valid-attachments'
	assert_state_unchanged "$before" "state after a refused GC"
	[[ -n $(pm_traces c1) ]] || fail "c1 lost its rules"
}

# DEL and GC keep going past errors and report every one: the first one's code and message,
# the others in details.
test_pm_del_and_gc_report_every_error() {
	weft_only "Go's portmap reports only its first error"
	local p1 r1 conf nconf details fail_env
	pm_pod p1 r1 c1
	conf=$(pm_conf 1.1.0 "$PM_MAPS")
	pm_add "$conf" c1 "$p1" "$r1"
	# rules in nftables too, so DEL and GC fail in both backends
	nconf=$(pm_conf 1.1.0 '[{"hostPort":7070,"containerPort":70,"protocol":"tcp"}]' '.backend = "nftables"')
	pm_add "$nconf" c1 "$p1" "$r1"
	failing_writes "$T/fw"
	fail_env=("${FAILING_ENV[@]}")
	cni_call DEL "$(with_prev "$conf" "$r1")" c1 eth0 "$p1" "${fail_env[@]}"
	assert_error 999 '.'
	details=$(jq -r '.details // ""' <<<"$OUT")
	[[ $details == *"(code 999)"* ]] || fail "only one error reported: $OUT"
	[[ "$(jq -r .msg <<<"$OUT")$details" == *"error deleting nftables rules"* ]] ||
		fail "the nft error is missing: $OUT"
	cni_call GC "$(jq '.["cni.dev/valid-attachments"] = [] | del(.runtimeConfig)' <<<"$conf")" "" "" "" \
		"${fail_env[@]}"
	assert_error 999 'failed to collect port mappings'
	details=$(jq -r '.details // ""' <<<"$OUT")
	[[ $details == *"failed to collect port mappings"*"(code 999)"* ]] || fail "only one GC error reported: $OUT"
	[[ -n $(pm_traces c1) ]] || fail "c1's rules went away with failing tools"
	must_del "$(with_prev "$conf" "$r1")" c1 eth0 "$p1"
}

test_pm_status() {
	weft_only "CNI 1.1 STATUS"
	cni_call STATUS "$(pm_conf 1.1.0 '[]')" "" "" ""
	assert_rc 0
	cni_call STATUS "$(pm_conf 1.1.0 '[]' '.backend = "nftables"')" "" "" ""
	assert_rc 0
	cni_call STATUS "$(pm_conf 1.1.0 '[]' '.backend = "iptables"')" "" "" "" WEFT_IPTABLES=/nonexistent/iptables
	assert_error 50 '/nonexistent/iptables'
	cni_call STATUS "$(pm_conf 1.1.0 '[]' '.backend = "nftables"')" "" "" "" WEFT_NFT=/nonexistent/nft
	assert_error 50 '/nonexistent/nft'
	cni_call STATUS "$(pm_conf 1.1.0 '[]')" "" "" "" WEFT_NFT=/nonexistent/nft WEFT_IPTABLES=/nonexistent/iptables
	assert_error 50 'neither iptables nor nftables'
	# Auto: one usable backend is enough.
	cni_call STATUS "$(pm_conf 1.1.0 '[]')" "" "" "" WEFT_IPTABLES=/nonexistent/iptables
	assert_rc 0
}

# conditionsV4/V6 (iptables syntax) end up in the entry rules, like Go's.
test_pm_rules_conditions() {
	local pod res conf ch
	pm_warm "$DUAL_RANGES"
	pm_pod pod res c1 "$DUAL_RANGES"
	conf=$(pm_conf 1.0.0 "$PM_MAPS" '.conditionsV4 = ["!", "-s", "192.0.2.0/24"] | .conditionsV6 = ["-s", "2001:db8:ffff::/48"]')
	pm_add "$conf" c1 "$pod" "$res"
	ch=$(dn_chain "$NET" c1)
	assert_eq "-A CNI-HOSTPORT-DNAT ! -s 192.0.2.0/24 -p tcp -m comment --comment \"dnat name: \\\"$NET\\\" id: \\\"c1\\\"\" -m multiport --dports 8080 -j $ch
-A CNI-HOSTPORT-DNAT ! -s 192.0.2.0/24 -p udp -m comment --comment \"dnat name: \\\"$NET\\\" id: \\\"c1\\\"\" -m multiport --dports 8053 -j $ch" \
		"$(_chain_rules CNI-HOSTPORT-DNAT | grep -- "$ch")" "v4 entry rules with conditions"
	assert_eq "-A CNI-HOSTPORT-DNAT -s 2001:db8:ffff::/48 -p tcp -m comment --comment \"dnat name: \\\"$NET\\\" id: \\\"c1\\\"\" -m multiport --dports 8080 -j $ch
-A CNI-HOSTPORT-DNAT -s 2001:db8:ffff::/48 -p udp -m comment --comment \"dnat name: \\\"$NET\\\" id: \\\"c1\\\"\" -m multiport --dports 8053 -j $ch" \
		"$(nat6_rules | grep -- "^-A CNI-HOSTPORT-DNAT .*$ch")" "v6 entry rules with conditions"
	if is_weft; then
		must_check "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	fi
	must_del "$(with_prev "$conf" "$res")" c1 eth0 "$pod"
	assert_eq "" "$(pm_traces c1)" "traces after DEL"
}

# Concurrent ADDs on a fresh node (all racing to create the shared chains), then concurrent
# DELs: every container gets exactly its rules, the shared rules exist once, nothing is left.
test_pm_parallel_add_del() {
	local pod res i conf n=12
	pm_pod pod res c0
	for i in $(seq 1 $n); do
		conf=$(pm_conf 1.0.0 "[{\"hostPort\":$((9000 + i)),\"containerPort\":80,\"protocol\":\"tcp\"}]")
		(cni_add "$(with_prev "$conf" "$res")" "p$i" eth0 "$pod"; [[ $RC == 0 ]] || echo "ADD p$i: $OUT" >>"$T/fail") &
	done
	wait
	[[ -s $T/fail ]] && fail "parallel ADD failed: $(cat "$T/fail")"
	# Go's check-then-append can race into a duplicated shared rule; weft's creation of the
	# shared chains is one transaction that only one ADD wins.
	if is_weft; then
		assert_eq "$(pm_shared_lines | sort)" "$(nat_rules | grep -vE -- '-A (CNI-DN-|CNI-HOSTPORT-DNAT)' | sort)" "shared rules exactly once"
	fi
	assert_eq $n "$(_chain_rules CNI-HOSTPORT-DNAT | wc -l)" "entry rules"
	for i in $(seq 1 $n); do
		assert_eq 3 "$(_chain_rules "$(dn_chain "$NET" "p$i")" | wc -l)" "rules of p$i"
	done
	for i in $(seq 1 $n); do
		conf=$(pm_conf 1.0.0 "[{\"hostPort\":$((9000 + i)),\"containerPort\":80,\"protocol\":\"tcp\"}]")
		(cni_del "$(with_prev "$conf" "$res")" "p$i" eth0 "$pod"; [[ $RC == 0 ]] || echo "DEL p$i: $OUT" >>"$T/fail") &
	done
	wait
	[[ -s $T/fail ]] && fail "parallel DEL failed: $(cat "$T/fail")"
	assert_eq "" "$(_chain_rules CNI-HOSTPORT-DNAT)" "entry rules after DEL"
	assert_eq "" "$(nat_rules | grep CNI-DN-)" "container chains after DEL"
}
