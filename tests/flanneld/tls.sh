# shellcheck shell=bash
# flanneld and etcd over TLS and with etcd authentication: a real etcd with
# certificates made here by openssl (a CA, the server's certificate for
# 10.99.0.254, a client certificate, and an unrelated second CA).
# shellcheck source=tests/flanneld/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

FL_PKI=

# A self-signed P-256 CA: NAME.pem, NAME.key.
fl_ca() { # NAME CN
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$2" -keyout "$FL_PKI/$1.key" -out "$FL_PKI/$1.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		>>"$FL_PKI/openssl.log" 2>&1 || fail "openssl: CA $1"
}

# A leaf certificate signed by ca.pem: NAME.pem, NAME.key.
fl_leaf() { # NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAME]
	local d=$FL_PKI
	printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
		"extendedKeyUsage=$3" ${4:+"subjectAltName=$4"} >"$d/$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
		-keyout "$d/$1.key" -out "$d/$1.csr" >>"$d/openssl.log" 2>&1 &&
		openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
			-days 2 -extfile "$d/$1.ext" -out "$d/$1.pem" >>"$d/openssl.log" 2>&1 ||
		fail "openssl: certificate $1: $(tail -3 "$d/openssl.log")"
}

fl_pki() {
	command -v openssl >/dev/null || skip "openssl not installed (Debian package openssl)"
	FL_PKI=$T/pki
	mkdir -p "$FL_PKI"
	fl_ca ca "weft test CA"
	fl_ca other "unrelated CA"
	# clientAuth too: etcd's gRPC gateway dials etcd with this certificate.
	fl_leaf server etcd serverAuth,clientAuth "IP:$FL_UNDERLAY_IP"
	fl_leaf client flannel clientAuth
}

# Underlay + etcd on https:// (requiring client certificates signed by the
# CA with "client-cert") + the config; etcdctl trusts the CA and presents
# the client certificate.
fl_tls_cluster() { # [client-cert]
	fl_need
	fl_pki
	FL_ETCD=https://$FL_UNDERLAY_IP:2379
	export ETCDCTL_CACERT=$FL_PKI/ca.pem ETCDCTL_CERT=$FL_PKI/client.pem ETCDCTL_KEY=$FL_PKI/client.key
	local extra=()
	[[ ${1:-} == client-cert ]] && extra=(--client-cert-auth --trusted-ca-file "$FL_PKI/ca.pem")
	fl_underlay
	fl_etcd_start --cert-file "$FL_PKI/server.pem" --key-file "$FL_PKI/server.key" "${extra[@]}"
	fl_config '{"Network":"'$FL_NET'","Backend":{"Type":"vxlan"}}'
}

# Node N's flanneld is refused: it logs an error matching ERE (retrying, as
# Go does for an unreachable etcd), writes no subnet.env and does not panic.
# With LINE, its log must also contain that fixed string.
fl_refused() { # N ERE WHAT [LINE]
	local n=$1
	wait_for 10 "$3: error logged" grep -qiE -- "$2" "$T/n$n/flanneld.log"
	[[ -z ${4:-} ]] || grep -qF -- "$4" "$T/n$n/flanneld.log" || fail "$3: log lacks '$4': $(fl_log "$n")"
	fl_exited "$n" && fail "$3: flanneld exited instead of retrying: $(tail -5 "$T/n$n/flanneld.log")"
	[[ -e $(fl_env "$n") ]] && fail "$3: subnet.env written"
	grep -qi panick "$T/n$n/flanneld.log" && fail "$3: flanneld panicked: $(fl_log "$n")"
	log "$3: $(grep -iE -m1 -- "$2" "$T/n$n/flanneld.log")"
	fl_stop "$n"
	assert_eq 0 "$FL_RC" "$3: exit status after SIGTERM"
	# The next run of node N starts with an empty log.
	mv "$T/n$n/flanneld.log" "$T/n$n/flanneld.log.$(date +%s%N)"
}

# The key of node N's lease exists in etcd and holds node N's public IP.
fl_assert_lease_in_etcd() { # N
	local value
	value=$(fl_etcdctl get --print-value-only "$(fl_key "$1")")
	assert_match "\"PublicIP\":\"10\\.99\\.0\\.$1\"" "$value" "lease of node $1 in etcd"
}

test_flanneld_tls_server_verified_with_cafile() {
	fl_tls_cluster
	fl_node 1
	fl_up 1 --etcd-cafile="$FL_PKI/ca.pem"
	assert_match '^FLANNEL_SUBNET=10\.244\.[0-9]+\.1/24$' "$(grep FLANNEL_SUBNET "$(fl_env 1)")" "subnet.env"
	fl_assert_lease_in_etcd 1
	grep -qF "connecting to etcd with TLS, verifying the server certificate with --etcd-cafile $FL_PKI/ca.pem, no client certificate; no etcd username" \
		"$T/n1/flanneld.log" || fail "log does not state TLS with the CA: $(fl_log 1)"
	grep -q "insecure" "$T/n1/flanneld.log" && fail "TLS logged as insecure: $(fl_log 1)"
	return 0
}

test_flanneld_tls_client_certificate_required() {
	fl_tls_cluster client-cert
	fl_node 1
	fl_node 2
	fl_up 1 --etcd-cafile="$FL_PKI/ca.pem" --etcd-certfile="$FL_PKI/client.pem" --etcd-keyfile="$FL_PKI/client.key"
	fl_assert_lease_in_etcd 1
	grep -qF "with --etcd-cafile $FL_PKI/ca.pem, client certificate $FL_PKI/client.pem" "$T/n1/flanneld.log" ||
		fail "log does not name the client certificate: $(fl_log 1)"

	# Without a client certificate etcd ends the handshake.
	fl_start 2 --etcd-cafile="$FL_PKI/ca.pem"
	fl_refused 2 "Couldn't fetch network config.*certificate" "no client certificate" \
		"with --etcd-cafile $FL_PKI/ca.pem, no client certificate"

	# A key without its certificate is a configuration error, said so.
	fl_start 2 --etcd-cafile="$FL_PKI/ca.pem" --etcd-keyfile="$FL_PKI/client.key"
	fl_refused 2 "--etcd-keyfile is set but --etcd-certfile is not" "key without certificate"
}

test_flanneld_tls_wrong_ca_refused() {
	fl_tls_cluster
	fl_node 1
	fl_start 1 --etcd-cafile="$FL_PKI/other.pem"
	fl_refused 1 "Couldn't fetch network config.*invalid peer certificate: UnknownIssuer" "unrelated CA" \
		"verifying the server certificate with --etcd-cafile $FL_PKI/other.pem"

	# No --etcd-cafile: TLS all the same, verified with the system's CAs,
	# which do not know the test CA (Go logs "connecting with http" here).
	fl_start 1
	fl_refused 1 "Couldn't fetch network config.*invalid peer certificate: UnknownIssuer" "system CAs" \
		"connecting to etcd with TLS, verifying the server certificate with the system's trusted CAs"
	grep -q "insecure" "$T"/n1/flanneld.log.* && fail "https logged as insecure: $(cat "$T"/n1/flanneld.log.*)"
	return 0
}

# etcd (plain http) with authentication: root:rootpw, and flannel:flpw with
# read-write access to the prefix. fl_etcdctl then logs in as root.
fl_auth_cluster() { # [ETCD_FLAGS...]
	fl_need
	fl_underlay
	fl_etcd_start "$@"
	fl_config '{"Network":"'$FL_NET'","Backend":{"Type":"vxlan"}}'
	fl_etcdctl user add root:rootpw --interactive=false >/dev/null || fail "etcdctl user add root"
	fl_etcdctl user grant-role root root >/dev/null || fail "etcdctl user grant-role root"
	fl_etcdctl user add flannel:flpw --interactive=false >/dev/null || fail "etcdctl user add flannel"
	fl_etcdctl role add flannel >/dev/null || fail "etcdctl role add"
	fl_etcdctl role grant-permission flannel --prefix=true readwrite "$FL_PREFIX/" >/dev/null ||
		fail "etcdctl role grant-permission"
	fl_etcdctl user grant-role flannel flannel >/dev/null || fail "etcdctl user grant-role"
	fl_etcdctl auth enable >/dev/null || fail "etcdctl auth enable"
	# Auth is really on: no credentials, no config.
	assert_match "user name is empty" "$(fl_etcdctl get "$FL_PREFIX/config" 2>&1)" "etcdctl get without credentials"
	export ETCDCTL_USER=root:rootpw
}

test_flanneld_etcd_username_password() {
	fl_auth_cluster
	fl_node 1
	fl_node 2
	fl_up 1 --etcd-username=flannel --etcd-password=flpw
	fl_assert_lease_in_etcd 1
	grep -qF 'connecting to etcd with plain http (no TLS). This is insecure; authenticating as etcd user "flannel"' \
		"$T/n1/flanneld.log" || fail "log does not state plain http with the user: $(fl_log 1)"
	grep -q flpw "$T/n1/flanneld.log" && fail "the password is in the log"

	fl_start 2 --etcd-username=flannel --etcd-password=wrongpw
	fl_refused 2 'etcd authentication as user "flannel" failed: .*authentication failed, invalid user ID or password' "wrong password"
	grep -q wrongpw "$T"/n2/flanneld.log.* && fail "the password is in the log"

	# The same without credentials: etcd refuses the request.
	fl_start 2
	fl_refused 2 "Couldn't fetch network config.*user name is empty" "no credentials"
}

test_flanneld_etcd_auth_token_expiry() {
	# Tokens that expire after 1 idle second; renewals every ~2 s must log
	# in again each time.
	fl_auth_cluster --auth-token-ttl=1
	fl_node 1
	FL_ENV=WEFT_FLANNELD_LEASE_TTL=4 fl_up 1 --etcd-username=flannel --etcd-password=flpw --subnet-lease-renew-margin=1
	fl_assert_renewed 1 5
	grep -qE "invalid auth token|Error renewing" "$T/n1/flanneld.log" && fail "renewal hit the expired token: $(fl_log 1)"
	fl_exited 1 && fail "flanneld died"
	return 0
}
