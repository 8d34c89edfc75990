# shellcheck shell=bash
# flanneld configuration: network config errors, flags and their
# FLANNELD_* environment variables, interface selection, healthz, and
# starting before etcd is reachable.
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

# Run flanneld in node 1 to completion (it must exit); sets RC and OUT (log).
fl_run_once() {
	local rc
	timeout 10 ip netns exec "${FL_NS[1]}" env ${FL_ENV:-} "$FLANNELD" "$@" >"$T/once.log" 2>&1
	rc=$?
	RC=$rc
	OUT=$(cat "$T/once.log")
	log "--- flanneld $* -> rc=$rc"
	log "$OUT"
}

# A bad <prefix>/config: flanneld logs the error and retries (Go too); nothing is created.
fl_bad_conf() { # JSON ERE
	fl_config "$1"
	FL_WROTE[1]=0
	: >"$T/n1/flanneld.log"
	fl_start 1
	wait_for 5 "error for $1 logged" grep -qE -- "$2" "$T/n1/flanneld.log"
	fl_exited 1 && fail "flanneld exited on the bad config $1: $(fl_log 1)"
	fl_stop 1
}

test_flanneld_bad_network_configs() {
	fl_cluster
	fl_node 1
	fl_bad_conf '{"Backend":{"Type":"vxlan"}}' '"Network" is missing'
	fl_bad_conf '{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}' 'SubnetLen must be less than /31 \(got SubnetLen 31\)'
	fl_bad_conf '{"Network":"10.244.0.0/16","SubnetLen":17}' 'SubnetLen 17 with Network 10.244.0.0/16'
	fl_bad_conf '{"Network":"10.244.0.0/33","Backend":{"Type":"vxlan"}}' 'invalid "Network": invalid CIDR address: 10.244.0.0/33'
	fl_bad_conf '{"Network":"10.244.0.0/16","SubnetMin":"10.245.0.0","Backend":{"Type":"vxlan"}}' 'SubnetMin is not in the range of the Network'
	fl_bad_conf '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":"one"}}' '"Backend.VNI"'
	fl_bad_conf '{"Network":' 'invalid network config JSON'
	fl_bad_conf '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd44::/56","Backend":{"Type":"vxlan"}}' \
		"etcd subnet manager needs EnableIPv4: IPv6-only networks are supported with --kube-subnet-mgr only"
	in_n 1 ip link show flannel.1 >/dev/null 2>&1 && fail "a rejected config created flannel.1"
	[[ -e $T/n1/subnet.env ]] && fail "a rejected config wrote subnet.env"
	# A backend weft does not have is fatal (Go: "Error fetching backend").
	local b
	for b in wireguard udp; do
		if [[ $b == udp ]]; then fl_config '{"Network":"10.244.0.0/16"}'; else fl_config '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}'; fi
		fl_run_once --etcd-endpoints="$FL_ETCD" --iface=eth0 --subnet-file="$T/n1/subnet.env"
		assert_eq 1 "$RC" "exit status for backend $b"
		grep -q "unknown backend type: $b" <<<"$OUT" || fail "backend $b: $OUT"
	done
	return 0
}

# Go's etcd subnet manager never reads --net-config-path: the network is <prefix>/config, and
# weft says that the flag is ignored (it used to read the file instead: another network than Go's).
test_flanneld_net_config_path_ignored_in_etcd_mode() {
	fl_cluster '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
	fl_node 1
	printf '%s' '{"Network":"10.123.0.0/16","Backend":{"Type":"host-gw"}}' >"$T/net-conf.json"
	fl_up 1 --net-config-path="$T/net-conf.json"
	grep -q '^FLANNEL_NETWORK=10.244.0.0/16$' "$(fl_env 1)" || fail "not etcd's network: $(cat "$(fl_env 1)")"
	in_n 1 ip link show flannel.1 >/dev/null || fail "not etcd's backend (vxlan)"
	grep -q -- "--net-config-path=$T/net-conf.json is ignored in etcd mode: the network config is read from $FL_PREFIX/config" \
		"$T/n1/flanneld.log" || fail "no warning: $(fl_log 1)"
	# The same through the environment; an unreadable path is no error either.
	fl_stop 1
	FL_ENV="FLANNELD_NET_CONFIG_PATH=/nonexistent/net-conf.json" fl_up 1
	grep -q -- "--net-config-path=/nonexistent/net-conf.json is ignored in etcd mode" "$T/n1/flanneld.log" ||
		fail "no warning for the environment variable: $(fl_log 1)"
}

test_flanneld_bad_etcd_config_is_retried() {
	fl_cluster '{"Network":"10.244.0.0/16","SubnetLen":8,"Backend":{"Type":"vxlan"}}'
	fl_node 1
	fl_start 1
	wait_for 5 "config error logged" grep -q "network must be able to accommodate at least four subnets" "$T/n1/flanneld.log"
	fl_exited 1 && fail "flanneld exited on a bad etcd config (Go retries)"
	fl_config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
	fl_wait_up 1
}

test_flanneld_starts_before_etcd() {
	fl_need
	fl_underlay
	fl_node 1
	fl_start 1
	wait_for 5 "etcd errors logged" grep -q "Couldn't fetch network config" "$T/n1/flanneld.log"
	sleep 1
	fl_exited 1 && fail "flanneld gave up while etcd was unreachable"
	fl_etcd_start
	wait_for 5 "missing config logged" grep -q "flannel config not found in etcd store" "$T/n1/flanneld.log"
	fl_config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
	fl_wait_up 1
	in_n 1 ip link show flannel.1 >/dev/null || fail "no flannel.1"
}

test_flanneld_flags_and_env() {
	fl_cluster
	fl_node 1
	fl_node 2
	# Environment equivalents, Go-style single-dash flags.
	FL_ENV="FLANNELD_ETCD_ENDPOINTS=$FL_ETCD FLANNELD_IFACE=eth0 FLANNELD_SUBNET_FILE=$T/n1/env.file FLANNELD_IP_MASQ=true FLANNELD_IPTABLES_FORWARD_RULES=false" \
		fl_run_bg 1
	wait_for 10 "env-configured flanneld is up" test -s "$T/n1/env.file"
	grep -q '^FLANNEL_IPMASQ=true$' "$T/n1/env.file" || fail "FLANNELD_IP_MASQ ignored"
	in_n 1 iptables -t nat -S FLANNEL-POSTRTG >/dev/null 2>&1 || fail "no masquerade chain"
	in_n 1 iptables -t filter -S FLANNEL-FWD >/dev/null 2>&1 && fail "FLANNELD_IPTABLES_FORWARD_RULES=false ignored"
	# A flag beats the environment.
	FL_ENV="FLANNELD_SUBNET_FILE=$T/ignored.env" fl_up 2 -ip-masq=false -iface=10.99.0.2
	[[ -e $T/ignored.env ]] && fail "environment beat the command line"
	grep -q '^FLANNEL_IPMASQ=false$' "$(fl_env 2)" || fail "-ip-masq=false ignored"

	fl_run_once --subnet-lease-renew-margin=0
	assert_eq 1 "$RC" "exit status for margin 0"
	grep -q "Invalid subnet-lease-renew-margin option, out of acceptable range" <<<"$OUT" || fail "margin error: $OUT"
	FL_ENV=FLANNELD_SUBNET_LEASE_RENEW_MARGIN=1440 fl_run_once
	assert_eq 1 "$RC" "exit status for margin 1440 (env)"
	# Kube mode outside a cluster, with no --kube-api-url or --kubeconfig-file: client-go's message.
	fl_run_once --kube-subnet-mgr
	assert_eq 1 "$RC" "exit status for --kube-subnet-mgr outside a cluster"
	grep -q "fail to create kubernetes config: unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined" <<<"$OUT" ||
		fail "kube mode error: $OUT"
	FL_ENV="NODE_NAME=" fl_run_once --kube-subnet-mgr --kube-api-url=http://127.0.0.1:1
	assert_eq 1 "$RC" "exit status without a node name"
	grep -q "env variables POD_NAME and POD_NAMESPACE must be set" <<<"$OUT" || fail "node name error: $OUT"
	# Fatal set-up errors of kube mode, with Go's wording.
	FL_ENV="NODE_NAME=n1" fl_run_once --kube-subnet-mgr --kube-api-url=http://127.0.0.1:1 --net-config-path="$T/none.json"
	assert_eq 1 "$RC" "exit status without net-conf.json"
	grep -q "failed to read net conf: $T/none.json" <<<"$OUT" || fail "net conf error: $OUT"
	printf '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}' >"$T/nc.json"
	FL_ENV="NODE_NAME=n1 EVENT_QUEUE_DEPTH=lots" fl_run_once --kube-subnet-mgr --kube-api-url=http://127.0.0.1:1 \
		--net-config-path="$T/nc.json"
	assert_eq 1 "$RC" "exit status for EVENT_QUEUE_DEPTH=lots"
	grep -q 'EVENT_QUEUE_DEPTH="lots" is not an integer' <<<"$OUT" || fail "queue depth error: $OUT"
	FL_ENV="NODE_NAME=n1" fl_run_once --kube-subnet-mgr --kube-api-url=http://127.0.0.1:1 \
		--net-config-path="$T/nc.json" --kube-annotation-prefix=a/b/c
	assert_eq 1 "$RC" "exit status for a bad annotation prefix"
	grep -q "prefix can contain at most single slash" <<<"$OUT" || fail "prefix error: $OUT"
}

# klog's flags, which Go flanneld copies and kube-flannel manifests pass: accepted, -v honoured,
# a note for what has no effect; --log-format=klog prints klog's lines.
test_flanneld_klog_flags_and_format() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_node 3
	FL_ENV=WEFT_FLANNELD_RECONCILE_SECS=1 fl_up 1 --v=2 --vmodule=vxlan_network=4,registry=1 --log_backtrace_at=main.go:123 \
		--log-format=klog
	# -v=2 shows debug events (the reconcile loop's), with klog's I.
	wait_for 5 "a debug line" grep -qE '^I[0-9]{4} .*\] reconciled: nothing to do' "$T/n1/flanneld.log"
	# --vmodule for one of weft's files: only that file's debug events; none at -v=0.
	FL_ENV=WEFT_FLANNELD_RECONCILE_SECS=1 fl_up 2 --vmodule=mod=1
	FL_ENV=WEFT_FLANNELD_RECONCILE_SECS=1 fl_up 3
	wait_for 5 "a debug line of dataplane/mod.rs" grep -q 'reconciled: nothing to do' "$T/n2/flanneld.log"
	grep -q 'reconciled: nothing to do' "$T/n3/flanneld.log" && fail "debug line at -v=0: $(fl_log 3)"
	local log
	log=$(fl_log 1)
	grep -qE '^I[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6} +[0-9]+ [a-z_]+\.rs:[0-9]+\] Wrote subnet file to ' <<<"$log" ||
		fail "no klog-style line: $log"
	grep -qE '^W[0-9]{4} .* registry\.rs:[0-9]+\] connecting to etcd with plain http' <<<"$log" || fail "no klog warning line: $log"
	grep -q -- '--vmodule vxlan_network=4 has no effect: it matches none of weft flanneld' <<<"$log" || fail "no vmodule note: $log"
	grep -q -- '--log_backtrace_at=main.go:123 has no effect' <<<"$log" || fail "no backtrace note: $log"
	grep -q -- '--vmodule registry=1 has no effect' <<<"$log" && fail "a matching pattern was called ineffective: $log"
	fl_run_once --vmodule=vxlan
	assert_eq 2 "$RC" "exit status for a bad --vmodule (Go: flag error, 2)"
	grep -q "expect comma-separated list of filename=N" <<<"$OUT" || fail "vmodule error: $OUT"
	fl_run_once --log_backtrace_at=main
	assert_eq 2 "$RC" "exit status for a bad --log_backtrace_at"
	FL_ENV="FLANNELD_VMODULE=daemon=1 FLANNELD_LOG_BACKTRACE_AT=x.go:1" fl_run_once --version
	assert_eq 0 "$RC" "klog flags from the environment"
}

# etcd down: one error line per backoff step (1, 2, 4, 5 s...), with the error's text, not one a
# second.
test_flanneld_etcd_errors_back_off() {
	fl_need
	fl_underlay
	fl_node 1
	fl_start 1
	sleep 8.5
	fl_exited 1 && fail "flanneld gave up while etcd was unreachable"
	local n
	n=$(grep -c "Couldn't fetch network config" "$T/n1/flanneld.log")
	((n >= 3 && n <= 5)) || fail "$n errors in 8.5 s (want 4: at 0, 1, 3 and 7 s): $(fl_log 1)"
	grep -q "Couldn't fetch network config (retrying in 4s): etcd Unavailable: " "$T/n1/flanneld.log" ||
		fail "no backoff step logged: $(fl_log 1)"
	grep -qE 'Status \{|MetadataMap|Caused by' "$T/n1/flanneld.log" && fail "Debug output in the log: $(fl_log 1)"
	return 0
}

# Start node N's flanneld with only the environment (no default flags).
fl_run_bg() { # N
	local n=$1
	# shellcheck disable=SC2086
	ip netns exec "${FL_NS[$n]}" env ${FL_ENV:-} "$FLANNELD" >>"$T/n$n/flanneld.log" 2>&1 &
	FL_PID[$n]=$!
	track_pid "${FL_PID[$n]}"
}

test_flanneld_interface_selection() {
	fl_cluster
	local n
	for n in 1 2 3 4 5; do fl_node $n; done
	# A second interface (not on the underlay) in node 2 must not be picked
	# by the default-route rule.
	in_n 2 ip link add dummy7 type veth peer name dummy7p
	in_n 2 ip addr add 192.0.2.7/24 dev dummy7
	in_n 2 ip link set dummy7p up
	in_n 2 ip link set dummy7 up
	fl_start_plain 1 --iface=10.99.0.1
	fl_start_plain 2 --iface=nonexistent0 --iface-regex='^dummy[0-9]+$' --iface-regex=eth
	fl_start_plain 3
	fl_start_plain 4 --iface-can-reach=$FL_UNDERLAY_IP
	fl_start_plain 5 --iface=eth0 --public-ip=10.99.0.55
	for n in 1 2 3 4 5; do fl_wait_up $n; done
	local ip
	for n in 1 2 3 4; do
		ip=$(fl_etcdctl get --print-value-only "$(fl_key $n)" | jq -r .PublicIP)
		case $n in
		2) assert_eq 192.0.2.7 "$ip" "node 2's public IP (regex matched dummy7's address)" ;;
		*) assert_eq "10.99.0.$n" "$ip" "node $n's public IP" ;;
		esac
	done
	assert_eq 10.99.0.55 "$(fl_etcdctl get --print-value-only "$(fl_key 5)" | jq -r .PublicIP)" "--public-ip"
	assert_json '.[0].linkinfo.info_data.local' 10.99.0.55 "$(in_n 5 ip -d -j link show flannel.1)"
	assert_json '.[0].linkinfo.info_data.link' eth0 "$(in_n 5 ip -d -j link show flannel.1)"
	# No usable interface: exit 1.
	fl_run_once --etcd-endpoints="$FL_ETCD" --iface=nonexistent0 --subnet-file="$T/x.env"
	assert_eq 1 "$RC" "exit status without a usable interface"
	grep -q "Failed to find interface to use that matches the interfaces and/or regexes provided" <<<"$OUT" ||
		fail "interface error: $OUT"
}

# Go's order: every --iface, then every --iface-regex, then --iface-can-reach (weft used to try
# can-reach first).
test_flanneld_iface_before_can_reach() {
	fl_cluster
	fl_node 1
	fl_node 2
	fl_node 3
	# A second interface whose route reaches 198.51.100.1.
	in_n 1 ip link add side0 type veth peer name side0p
	in_n 1 ip addr add 198.51.100.7/24 dev side0
	in_n 1 ip link set side0p up
	in_n 1 ip link set side0 up
	fl_start_plain 1 --iface-can-reach=198.51.100.1 --iface=eth0
	fl_wait_up 1
	assert_eq 10.99.0.1 "$(fl_etcdctl get --print-value-only "$(fl_key 1)" | jq -r .PublicIP)" "--iface wins over --iface-can-reach"
	# A regex that matches wins too; can-reach is the last resort.
	in_n 2 ip link add side0 type veth peer name side0p
	in_n 2 ip addr add 198.51.100.8/24 dev side0
	in_n 2 ip link set side0p up
	in_n 2 ip link set side0 up
	fl_start_plain 2 --iface-can-reach=198.51.100.1 --iface-regex='^eth'
	fl_wait_up 2
	assert_eq 10.99.0.2 "$(fl_etcdctl get --print-value-only "$(fl_key 2)" | jq -r .PublicIP)" "--iface-regex wins over --iface-can-reach"
	fl_start_plain 3 --iface=nonexistent0 --iface-regex='^nomatch$' --iface-can-reach=$FL_UNDERLAY_IP
	fl_wait_up 3
	assert_eq 10.99.0.3 "$(fl_etcdctl get --print-value-only "$(fl_key 3)" | jq -r .PublicIP)" "can-reach after the misses"
	grep -q "Could not find valid interface matching nonexistent0" "$T/n3/flanneld.log" || fail "miss not logged: $(fl_log 3)"
}

# fl_start without the default --iface.
fl_start_plain() { # N [args]
	local n=$1
	shift
	FL_WROTE[$n]=$(fl_writes "$n")
	ip netns exec "${FL_NS[$n]}" "$FLANNELD" --etcd-endpoints="$FL_ETCD" \
		--subnet-file="$(fl_env "$n")" "$@" >>"$T/n$n/flanneld.log" 2>&1 &
	FL_PID[$n]=$!
	track_pid "${FL_PID[$n]}"
}

test_flanneld_healthz() {
	fl_need
	fl_underlay
	fl_node 1
	# Before etcd answers: alive, not ready.
	fl_start 1 --healthz-ip=127.0.0.1 --healthz-port=10257
	wait_for 5 "healthz listening" fl_http_status 10257 /healthz
	assert_eq 200 "$(fl_http_status 10257 /healthz)" "/healthz before etcd"
	assert_eq 503 "$(fl_http_status 10257 /readyz)" "/readyz before etcd"
	fl_etcd_start
	fl_config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
	fl_wait_up 1
	assert_eq 200 "$(fl_http_status 10257 /readyz)" "/readyz when up"
	assert_eq 404 "$(fl_http_status 10257 /nope)" "unknown path"
}
