# shellcheck shell=bash
# The test Kubernetes API server (tests/kube/apiserver.py) is faithful
# enough for the kube-mode flanneld tests: the real kubectl drives it
# (get -o json, get -w, annotate, label, patch --subresource=status) and
# the watch, patch and resourceVersion semantics flanneld relies on are
# checked directly.  Runs the same under --plugins go (no plugin involved).
# shellcheck source=tests/kube/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

test_kapi_kubectl_get_json() {
	kapi_need
	kapi_need_kubectl
	kapi_start
	kapi_node n1 '.spec.podCIDR = "10.244.1.0/24" | .spec.podCIDRs = ["10.244.1.0/24"]'
	kapi_node n2 '.spec.podCIDR = "10.244.2.0/24"'
	local out rv
	out=$(kc get nodes -o json) || fail "kubectl get nodes -o json: $out"
	assert_json '[.items[].metadata.name] | join(",")' n1,n2 "$out"
	assert_json '.items[0].spec.podCIDRs[0]' 10.244.1.0/24 "$out"
	assert_json '.items[1].kind' Node "$out"
	out=$(kc get node n2 -o json) || fail "kubectl get node n2: $out"
	assert_json .spec.podCIDR 10.244.2.0/24 "$out"
	rv=$(kapi_rv)
	assert_json .metadata.resourceVersion "$rv" "$out"
	assert_jq '.metadata.uid | test("^[0-9a-f-]{36}$")' "$out"
	# A missing node is kubectl's NotFound, from our Status.
	out=$(kc get node nope -o json 2>&1) && fail "get of a missing node succeeded: $out"
	assert_match 'NotFound.*nodes "nope" not found' "$out"
	# The list kubectl made carried the collection's resourceVersion.
	out=$(kapi_curl /api/v1/nodes)
	assert_json .kind NodeList "$out"
	assert_json .metadata.resourceVersion "$rv" "$out"
	assert_json '.items | length' 2 "$out"
	# Selectors.
	out=$(kapi_curl '/api/v1/nodes?fieldSelector=metadata.name%3Dn2')
	assert_json '[.items[].metadata.name] | join(",")' n2 "$out"
	out=$(kapi_curl '/api/v1/nodes?labelSelector=kubernetes.io%2Fhostname%21%3Dn2')
	assert_json '[.items[].metadata.name] | join(",")' n1 "$out"
}

test_kapi_kubectl_watch() {
	kapi_need
	kapi_need_kubectl
	kapi_start
	kapi_node n1
	kc get nodes -w --output-watch-events -o json >"$T/watch.json" 2>"$T/watch.err" &
	track_pid $!
	kc get nodes -w --no-headers >"$T/watch.txt" 2>&1 &
	track_pid $!
	local i
	for i in $(seq 1 50); do
		[[ $(kapi_requests '[.[] | select(.query | test("watch=true"))] | length') == 2 ]] && break
		sleep 0.1
	done
	kapi_node n2
	kc annotate node n1 flannel.alpha.coreos.com/kube-subnet-manager=true >/dev/null || fail annotate
	kc delete node n2 >/dev/null || fail delete
	for i in $(seq 1 50); do
		[[ $(jq -s length "$T/watch.json" 2>/dev/null) == 4 ]] && break
		sleep 0.1
	done
	local got
	got=$(jq -sc 'map([.type, .object.metadata.name]) | map(join(" ")) | join(",")' "$T/watch.json")
	assert_eq '"ADDED n1,ADDED n2,MODIFIED n1,DELETED n2"' "$got" "kubectl -w events"
	# resourceVersions strictly increase along the stream.
	assert_jq '[.[].object.metadata.resourceVersion | tonumber] | . == (sort | unique)' "$(jq -s . "$T/watch.json")"
	assert_json '.[2].object.metadata.annotations["flannel.alpha.coreos.com/kube-subnet-manager"]' true "$(jq -s . "$T/watch.json")"
	# The plain printer saw n1, n2 added, n1 changed and n2 deleted.
	assert_eq 4 "$(grep -c '^n[12] ' "$T/watch.txt")" "lines of kubectl get -w: $(cat "$T/watch.txt")"
}

test_kapi_kubectl_annotate_label() {
	kapi_need
	kapi_need_kubectl
	kapi_start
	kapi_node n1
	local out rv
	kc annotate node n1 a=1 >/dev/null || fail annotate
	kc label node n1 role=x >/dev/null || fail label
	out=$(kapi_get n1)
	assert_json .metadata.annotations.a 1 "$out"
	assert_json .metadata.labels.role x "$out"
	assert_json '.metadata.labels["kubernetes.io/hostname"]' n1 "$out"
	rv=$(jq -r .metadata.resourceVersion <<<"$out")
	# A stale --resource-version is the server's 409 Conflict.
	out=$(kc annotate --overwrite --resource-version=1 node n1 a=2 2>&1) && fail "stale resourceVersion accepted: $out"
	assert_match 'Conflict.*the object has been modified' "$out"
	assert_json .metadata.annotations.a 1 "$(kapi_get n1)"
	kc annotate --overwrite --resource-version="$rv" node n1 a=2 >/dev/null || fail "annotate at the current resourceVersion"
	assert_json .metadata.annotations.a 2 "$(kapi_get n1)"
	# Removal: kubectl sends a merge patch with null.
	kc label node n1 role- >/dev/null || fail "label removal"
	kc annotate node n1 a- >/dev/null || fail "annotation removal"
	out=$(kapi_get n1)
	assert_json '.metadata.labels | has("role")' false "$out"
	assert_json '.metadata.annotations | has("a")' false "$out"
	assert_json '[.[] | select(.method == "PATCH") | .contentType] | unique | join(",")' application/merge-patch+json "$(kapi_requests)"
	# An annotation that is already there and equal changes nothing: no new resourceVersion.
	rv=$(kapi_rv)
	kc label --overwrite node n1 kubernetes.io/hostname=n1 >/dev/null || fail "no-op label"
	assert_eq "$rv" "$(kapi_rv)" "resourceVersion after a no-op patch"
}

test_kapi_kubectl_patch_status() {
	kapi_need
	kapi_need_kubectl
	kapi_start
	# Debian 12's kubernetes-client is 1.20.2; --subresource came in kubectl 1.24.
	kc patch --help 2>/dev/null | grep -q -- --subresource || skip "this kubectl has no patch --subresource (1.24+)"
	kapi_node n1 '.status.conditions = [{type: "Ready", status: "False"}, {type: "MemoryPressure", status: "False"}]'
	local out
	# Strategic merge on nodes/status: conditions merged by type.
	kc patch node n1 --subresource=status -p '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp"}]}}' >/dev/null ||
		fail "patch --subresource=status"
	kc patch node n1 --subresource=status -p '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}' >/dev/null ||
		fail "patch --subresource=status Ready"
	out=$(kc get node n1 -o json)
	assert_json '[.status.conditions[] | .type + "=" + .status] | join(",")' 'Ready=True,MemoryPressure=False,NetworkUnavailable=False' "$out"
	assert_json '.status.conditions[2].reason' FlannelIsUp "$out"
	# Metadata through nodes/status is kept (flannel writes its annotations there) ...
	kc patch node n1 --subresource=status -p '{"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":"10.99.0.1"}}}' >/dev/null ||
		fail "annotations through status"
	assert_json '.metadata.annotations["flannel.alpha.coreos.com/public-ip"]' 10.99.0.1 "$(kapi_get n1)"
	# ... spec through nodes/status is ignored, and status through the main resource too.
	kc patch node n1 --subresource=status -p '{"spec":{"podCIDR":"10.244.9.0/24"}}' >/dev/null || fail "spec via status"
	kc patch node n1 -p '{"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}}' >/dev/null || fail "status via main"
	out=$(kapi_get n1)
	assert_json '.spec.podCIDR' null "$out"
	assert_json '.status.conditions[0].status' True "$out"
	# The exact request kubectl made.
	assert_json '[.[] | select(.method == "PATCH" and .path == "/api/v1/nodes/n1/status")][0].contentType' \
		application/strategic-merge-patch+json "$(kapi_requests)"
	# $patch: delete removes one condition, by its merge key.
	kapi_patch n1/status application/strategic-merge-patch+json \
		'{"status":{"conditions":[{"type":"MemoryPressure","$patch":"delete"}]}}' >/dev/null || fail '$patch delete'
	assert_json '[.status.conditions[].type] | join(",")' Ready,NetworkUnavailable "$(kapi_get n1)"
	# podCIDRs merge as a set; a null deletes a key.
	kapi_patch n1 application/strategic-merge-patch+json '{"spec":{"podCIDRs":["10.244.1.0/24"]}}' >/dev/null
	kapi_patch n1 application/strategic-merge-patch+json '{"spec":{"podCIDRs":["10.244.1.0/24","fd00:1::/64"]},"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":null}}}' >/dev/null
	out=$(kapi_get n1)
	assert_json '.spec.podCIDRs | join(",")' 10.244.1.0/24,fd00:1::/64 "$out"
	assert_json '.metadata.annotations | has("flannel.alpha.coreos.com/public-ip")' false "$out"
	# A merge patch replaces lists whole.
	kapi_patch n1/status application/merge-patch+json '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}' >/dev/null
	assert_json '[.status.conditions[].type] | join(",")' Ready "$(kapi_get n1)"
}

test_kapi_json_patch() {
	kapi_need
	kapi_need_kubectl
	kapi_start
	kapi_node n1 '.metadata.annotations = {"x": "1"}'
	local out
	kc patch node n1 --type=json -p '[{"op":"add","path":"/metadata/annotations/flannel.alpha.coreos.com~1backend-type","value":"vxlan"},{"op":"replace","path":"/metadata/annotations/x","value":"2"},{"op":"add","path":"/spec/podCIDRs","value":["10.244.3.0/24"]}]' >/dev/null ||
		fail "json patch"
	out=$(kapi_get n1)
	assert_json '.metadata.annotations["flannel.alpha.coreos.com/backend-type"]' vxlan "$out"
	assert_json .metadata.annotations.x 2 "$out"
	assert_json '.spec.podCIDRs[0]' 10.244.3.0/24 "$out"
	# A failed test operation and a missing path are 422, and change nothing.
	out=$(kc patch node n1 --type=json -p '[{"op":"remove","path":"/metadata/annotations/x"},{"op":"test","path":"/spec/podCIDRs/0","value":"10.0.0.0/24"}]' 2>&1) &&
		fail "failed test op accepted: $out"
	assert_match 'invalid' "$out"
	out=$(kapi_patch n1 application/json-patch+json '[{"op":"replace","path":"/metadata/nothere/x","value":1}]') && fail "missing path accepted"
	assert_json .code 422 "$out"
	assert_json .metadata.annotations.x 2 "$(kapi_get n1)"
	# Server-side apply is not spoken: 415.
	out=$(kapi_patch n1 application/apply-patch+yaml '{}') && fail "apply accepted"
	assert_json .code 415 "$out"
}

test_kapi_watch_bookmark_and_410() {
	kapi_need
	kapi_start --bookmark-interval 0
	kapi_node n1
	kapi_node n2
	local rv0 out
	rv0=$(kapi_rv)
	kapi_patch n1 application/merge-patch+json '{"metadata":{"labels":{"a":"1"}}}' >/dev/null
	kapi_curl -X DELETE /api/v1/nodes/n2 >/dev/null
	# From rv0: exactly the two later events, then the stream ends at timeoutSeconds.
	out=$(kapi_curl -N "/api/v1/nodes?watch=true&resourceVersion=$rv0&timeoutSeconds=1")
	assert_eq 'MODIFIED n1,DELETED n2' "$(jq -rs 'map(.type + " " + .object.metadata.name) | join(",")' <<<"$out")" "events after $rv0"
	# Without a resourceVersion: the current nodes first, as ADDED.
	out=$(kapi_curl -N "/api/v1/nodes?watch=1&timeoutSeconds=1")
	assert_eq 'ADDED n1' "$(jq -rs 'map(.type + " " + .object.metadata.name) | join(",")' <<<"$out")" "initial events"
	# A BOOKMARK carries the current resourceVersion, only when asked for.
	kapi_curl -N "/api/v1/nodes?watch=1&resourceVersion=$(kapi_rv)&timeoutSeconds=2" >"$T/nobm.json" &
	kapi_curl -N "/api/v1/nodes?watch=1&resourceVersion=$(kapi_rv)&allowWatchBookmarks=true&timeoutSeconds=2" >"$T/bm.json" &
	local bm=$! i
	for i in $(seq 1 50); do
		[[ $(kapi_requests '[.[] | select(.query | test("watch=1"))] | length') -ge 3 ]] && break
		sleep 0.1
	done
	sleep 0.3 # the log line is written just before the watch registers
	kapi_curl -X POST /weft-test/bookmark >/dev/null
	wait "$bm"
	assert_json '.type' BOOKMARK "$(cat "$T/bm.json")"
	assert_json '.object.metadata.resourceVersion' "$(kapi_rv)" "$(cat "$T/bm.json")"
	assert_json '.object.kind' Node "$(cat "$T/bm.json")"
	assert_eq 0 "$(wc -c <"$T/nobm.json")" "bookmarks sent to a watch that did not ask"
	# After a compaction an old resourceVersion gets 410 Expired as an ERROR event;
	# the current one still works.
	kapi_curl -X POST /weft-test/compact >/dev/null
	out=$(kapi_curl -N "/api/v1/nodes?watch=1&resourceVersion=$rv0&timeoutSeconds=1")
	assert_json .type ERROR "$out"
	assert_json .object.code 410 "$out"
	assert_json .object.reason Expired "$out"
	assert_match '^too old resource version' "$(jq -r .object.message <<<"$out")"
	out=$(kapi_curl -N "/api/v1/nodes?watch=1&resourceVersion=$(kapi_rv)&timeoutSeconds=1")
	assert_eq '' "$out" "watch from the current resourceVersion"
	# The stream is chunked JSON, one event per chunk.
	out=$(ip netns exec "$NODE" curl -sS -N --raw -D - "$KAPI_URL/api/v1/nodes?watch=1&timeoutSeconds=1")
	assert_match 'Transfer-Encoding: chunked' "$out"
	# close-watches ends open streams (an apiserver restart as seen by a client).
	kapi_curl -N "/api/v1/nodes?watch=1&resourceVersion=$(kapi_rv)&timeoutSeconds=30" >/dev/null &
	local w=$!
	sleep 0.5
	kapi_curl -X POST /weft-test/close-watches >/dev/null
	timeout 5 tail --pid=$w -f /dev/null || fail "the watch did not end on close-watches"
}

test_kapi_restart_keeps_state() {
	kapi_need
	kapi_start
	kapi_node n0
	kapi_node n1
	local rv
	rv=$(kapi_rv)
	kapi_stop
	kapi_curl /version 2>/dev/null && fail "server still up"
	kapi_start
	assert_json .metadata.name n1 "$(kapi_get n1)"
	assert_eq "$rv" "$(kapi_rv)" "resourceVersion after the restart"
	kapi_node n2
	assert_eq "$((rv + 1))" "$(kapi_rv)" "resourceVersions continue"
	# The history did not survive: watching from before the restart is 410.
	assert_json .object.code 410 "$(kapi_curl -N "/api/v1/nodes?watch=1&resourceVersion=$((rv - 1))&timeoutSeconds=1")"
}

test_kapi_errors_and_token() {
	kapi_need
	kapi_start --token s3cret
	local out
	out=$(kapi_curl /api/v1/nodes) && fail "no token accepted"
	assert_json .code 401 "$out"
	out=$(kapi_curl -H 'Authorization: Bearer s3cret' /api/v1/nodes)
	assert_json .kind NodeList "$out"
	local auth=(-H 'Authorization: Bearer s3cret')
	out=$(kapi_curl "${auth[@]}" /api/v1/nodes/n9) && fail "missing node found"
	assert_json .reason NotFound "$out"
	assert_json .details.name n9 "$out"
	jq -nc '{apiVersion: "v1", kind: "Node", metadata: {name: "n1"}}' >"$T/n1.json"
	kapi_curl "${auth[@]}" -X POST -H 'Content-Type: application/json' --data-binary @"$T/n1.json" /api/v1/nodes >/dev/null || fail create
	out=$(kapi_curl "${auth[@]}" -X POST -H 'Content-Type: application/json' --data-binary @"$T/n1.json" /api/v1/nodes) && fail "duplicate create"
	assert_json .reason AlreadyExists "$out"
	out=$(kapi_curl "${auth[@]}" -X PATCH -H 'Content-Type: application/merge-patch+json' --data-binary '{"metadata":{"annotations":{"k":"v"}}}' /api/v1/nodes/n9) && fail "patch of a missing node"
	assert_json .code 404 "$out"
	out=$(kapi_curl "${auth[@]}" -X PUT -H 'Content-Type: application/json' --data-binary '{"metadata":{"name":"n1","resourceVersion":"999"}}' /api/v1/nodes/n1) && fail "stale PUT"
	assert_json .reason Conflict "$out"
}

test_kapi_tls_and_token_with_kubectl() {
	kapi_need
	kapi_need_kubectl
	kapi_tls
	kapi_start --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" --token "$KAPI_TOKEN"
	kapi_node n1 '.spec.podCIDR = "10.244.1.0/24"'
	local out
	out=$(kc get node n1 -o json) || fail "kubectl over https with the CA and the token: $out"
	assert_json .spec.podCIDR 10.244.1.0/24 "$out"
	kc annotate node n1 flannel.alpha.coreos.com/public-ip=10.99.0.1 >/dev/null || fail "annotate over https"
	# Without the CA the certificate is refused; without the token the server says 401.
	out=$(ip netns exec "$NODE" curl -sS "$KAPI_URL/api/v1/nodes" 2>&1) && fail "untrusted certificate accepted: $out"
	out=$(ip netns exec "$NODE" curl -sS --cacert "$KAPI_CA" "$KAPI_URL/api/v1/nodes")
	assert_json .code 401 "$out"
}
