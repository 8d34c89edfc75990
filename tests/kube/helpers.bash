# shellcheck shell=bash
# Helpers for the tests that use the test Kubernetes API server
# (tests/kube/apiserver.py).  The ".bash" suffix keeps tests/run from
# collecting this file.
#
# The server runs inside the test's node netns ($NODE), so its port cannot
# collide with another test's or with anything on the machine; kubectl and
# curl run there too.  kubectl gets its own kubeconfig and cache dir in $T
# (never ~/.kube).

KAPI_PY=$TESTS_DIR/kube/apiserver.py
KAPI_ADDR=${KAPI_ADDR:-127.0.0.1}
KAPI_PORT=6443
KAPI_URL=http://$KAPI_ADDR:$KAPI_PORT
# For https (kapi_tls): the CA file curl and kubectl trust, and a bearer token.
KAPI_CA=
KAPI_TOKEN=

kapi_need() {
	command -v python3 >/dev/null || skip "python3 not installed"
	command -v curl >/dev/null || skip "curl not installed"
}

kapi_need_kubectl() { # KUBECTL=path overrides the kubectl on PATH
	command -v "${KUBECTL:-kubectl}" >/dev/null || skip "kubectl not installed (Debian package kubernetes-client)"
}

# kapi_start [SERVER_OPTIONS...]: start the server (state in $T/kapi.state,
# request log in $T/kapi.req) and wait until it answers.
kapi_start() {
	ip netns exec "$NODE" python3 "$KAPI_PY" --listen "$KAPI_ADDR" --port "$KAPI_PORT" \
		--state "$T/kapi.state" --log "$T/kapi.req" "$@" >>"$T/kapi.log" 2>&1 &
	KAPI_PID=$!
	track_pid $KAPI_PID
	local i
	for i in $(seq 1 100); do
		kapi_curl -o /dev/null /weft-test/ready 2>/dev/null && return 0
		sleep 0.1
	done
	tail -20 "$T/kapi.log" >&2
	fail "the test API server did not come up"
}

kapi_stop() {
	kill "$KAPI_PID" 2>/dev/null
	wait "$KAPI_PID" 2>/dev/null
}

# kapi_curl [CURL_OPTIONS...] PATH: a request to the server, body on stdout.
kapi_curl() {
	local path=${*: -1} extra=()
	[[ -n $KAPI_CA ]] && extra+=(--cacert "$KAPI_CA")
	[[ -n $KAPI_TOKEN ]] && extra+=(-H "Authorization: Bearer $KAPI_TOKEN")
	ip netns exec "$NODE" curl -sS --fail-with-body "${extra[@]}" "${@:1:$#-1}" "$KAPI_URL$path"
}

# kapi_node NAME [JQ_FILTER]: create a node (podCIDR 10.244.N.0/24 for node N).
kapi_node() {
	local name=$1 f=${2:-.}
	jq -nc --arg n "$name" '{apiVersion: "v1", kind: "Node", metadata: {name: $n, labels: {"kubernetes.io/hostname": $n}}, spec: {}}' |
		jq -c "$f" | kapi_curl -X POST -H 'Content-Type: application/json' --data-binary @- /api/v1/nodes >/dev/null ||
		fail "create node $name"
}

# kapi_patch NAME[/status] CONTENT_TYPE BODY
kapi_patch() {
	kapi_curl -X PATCH -H "Content-Type: $2" --data-binary "$3" "/api/v1/nodes/$1"
}

kapi_get() { kapi_curl "/api/v1/nodes/$1"; }

kapi_rv() { kapi_curl /api/v1/nodes | jq -r .metadata.resourceVersion; }

# kubectl against the server, with a private kubeconfig and cache.
kc() {
	if [[ ! -f $T/kubeconfig ]]; then
		cat >"$T/kubeconfig" <<-EOF
			apiVersion: v1
			kind: Config
			clusters: [{name: test, cluster: {server: "$KAPI_URL"${KAPI_CA:+, certificate-authority: "$KAPI_CA"}}}]
			users: [{name: test, user: {${KAPI_TOKEN:+token: "$KAPI_TOKEN"}}}]
			contexts: [{name: test, context: {cluster: test, user: test}}]
			current-context: test
		EOF
	fi
	ip netns exec "$NODE" env HOME="$T" "${KUBECTL:-kubectl}" --kubeconfig "$T/kubeconfig" \
		--cache-dir "$T/kcache" --request-timeout 10s "$@"
}

# kapi_tls: serve https with a CA-signed certificate for $KAPI_ADDR and
# require the bearer token s3cret (call before kapi_start; pass it the
# printed options). Needs openssl.
kapi_tls() {
	command -v openssl >/dev/null || skip "openssl not installed"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=weft-test-ca \
		-keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || fail "make the CA"
	openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout "$T/srv.key" \
		-out "$T/srv.csr" 2>/dev/null || fail "make the server key"
	printf 'subjectAltName=IP:%s\n' "$KAPI_ADDR" >"$T/san.ext"
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 1 \
		-extfile "$T/san.ext" -out "$T/srv.pem" 2>/dev/null || fail "sign the server certificate"
	KAPI_URL=https://$KAPI_ADDR:$KAPI_PORT
	KAPI_CA=$T/ca.pem
	KAPI_TOKEN=s3cret
}

# kapi_requests [JQ_FILTER]: the server's request log as a JSON array.
kapi_requests() { jq -sc "${1:-.}" "$T/kapi.req"; }
