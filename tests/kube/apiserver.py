#!/usr/bin/env python3
"""A small Kubernetes API server for the Nodes part of the API (tests only).

No kube-apiserver can be installed on the test machines, so the kube-mode
flanneld tests talk to this one.  It speaks the subset flanneld (Go or weft)
and kubectl use, with the real server's semantics where they matter:

  GET    /api, /apis, /api/v1, /version          discovery (kubectl needs it)
  GET    /api/v1/nodes                           NodeList with metadata.resourceVersion;
                                                 labelSelector (k=v, k!=v, k, !k) and
                                                 fieldSelector metadata.name=N; limit is ignored
  GET    /api/v1/nodes?watch=1&resourceVersion=R chunked JSON watch events (one per line):
                                                 ADDED/MODIFIED/DELETED after R; with no R or
                                                 R=0 the current nodes first as ADDED;
                                                 BOOKMARK when allowWatchBookmarks=true;
                                                 R older than the compaction floor -> one
                                                 ERROR event carrying a 410 Expired Status
                                                 (what the watch cache answers); timeoutSeconds
  GET    /api/v1/nodes/N[/status]                the node, or a 404 Status
  GET    /api/v1/namespaces/NS/pods/P            a Pod given with --pod NS/P=NODE (spec.nodeName
                                                 only: flanneld's node lookup), else 404
  POST   /api/v1/nodes                           create (201, 409 AlreadyExists)
  PUT    /api/v1/nodes/N[/status]                replace (409 Conflict on a stale resourceVersion)
  DELETE /api/v1/nodes/N                         delete (Status Success, DELETED event)
  PATCH  /api/v1/nodes/N[/status]                application/merge-patch+json (RFC 7386),
                                                 application/strategic-merge-patch+json (lists
                                                 with a patch-merge key merged by it: conditions
                                                 and addresses by type, taints by key; podCIDRs
                                                 and finalizers as sets; $patch, $setElementOrder,
                                                 $deleteFromPrimitiveList, null deletes),
                                                 application/json-patch+json (RFC 6902);
                                                 anything else 415.

As in the real server, the main resource ignores changes to status and the
status subresource ignores changes to spec; metadata changes are kept by both
(flannel writes its annotations through nodes/status).  A write that changes
nothing keeps the resourceVersion and sends no event.  A resourceVersion in a
patch or a PUT body is a precondition (409 Conflict).

Test controls, outside the Kubernetes paths:

  POST /weft-test/compact       history before now is gone: watches from an older
                                resourceVersion get 410 (relist)
  POST /weft-test/bookmark      a BOOKMARK to every watch that asked for them
  POST /weft-test/close-watches end every open watch stream (as on an apiserver restart)
  GET  /weft-test/requests      the request log (JSON lines), see --log
  GET  /weft-test/ready         200 once the server listens (no token needed)

Options: --listen ADDR (default 127.0.0.1), --port N (0 = any; the chosen port is
written to --port-file), --state FILE (nodes loaded at start and saved after every
write, so a restart keeps them; resourceVersions continue), --token T (Bearer T
required, else 401), --tls-cert/--tls-key (https), --bookmark-interval SECONDS
(default 60, 0 = only on request), --pod NS/NAME=NODE (repeatable), --log FILE (one JSON line per request: method,
path, query, content type, body).

Python 3 standard library only.
"""

import argparse
import copy
import datetime
import json
import os
import queue
import ssl
import sys
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Patch-merge keys of the v1.Node fields, from k8s.io/api/core/v1 struct tags
# (patchStrategy:"merge" patchMergeKey:...).  A path maps to the merge key of
# the list of objects found there, or to None for a list of primitives merged
# as a set.  Lists not named here are replaced whole, as for atomic lists.
MERGE_KEYS = {
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("spec", "taints"): "key",
    ("spec", "podCIDRs"): None,
    ("metadata", "finalizers"): None,
    ("metadata", "ownerReferences"): "uid",
}


class ApiError(Exception):
    """An error the server answers with a metav1.Status."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        s = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            s["details"] = self.details
        return s


def not_found(name):
    return ApiError(404, "NotFound", f'nodes "{name}" not found',
                    {"name": name, "kind": "nodes"})


def conflict(name, why):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on nodes "{name}": {why}',
                    {"name": name, "kind": "nodes"})


def invalid(msg):
    return ApiError(422, "Invalid", msg)


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ patches


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def strategic_merge(target, patch, path=()):
    """Strategic merge patch of a map, for the Node fields in MERGE_KEYS."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k == "$retainKeys":
            continue  # ordering hints; the order of our result is the patch's anyway
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            cur = result.get(field)
            if isinstance(cur, list) and isinstance(v, list):
                result[field] = [x for x in cur if x not in v]
            continue
        if v is None:
            result.pop(k, None)
            continue
        sub = path + (k,)
        if isinstance(v, list) and sub in MERGE_KEYS:
            result[k] = merge_list(result.get(k), v, MERGE_KEYS[sub], sub)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, sub)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        else:
            result[k] = copy.deepcopy(v)
    return result


def merge_list(current, patch, key, path):
    current = copy.deepcopy(current) if isinstance(current, list) else []
    if key is None:  # a set of primitives: append the new ones in order
        for item in patch:
            if item not in current:
                current.append(copy.deepcopy(item))
        return current
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map in the merge list {'.'.join(path)} has no merge key {key!r}")
        idx = next((i for i, c in enumerate(current)
                    if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del current[idx]
        elif idx is None:
            current.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            current[idx] = strategic_merge(current[idx], item, path)
    return current


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise invalid(f"json patch: bad path {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc, parts, path):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise invalid(f"json patch: path {path!r} does not exist")
    return cur


def _get(doc, path):
    parts = _pointer(path)
    if not parts:
        return doc
    cur = _container(doc, parts, path)
    last = parts[-1]
    if isinstance(cur, dict) and last in cur:
        return cur[last]
    if isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        return cur[int(last)]
    raise invalid(f"json patch: path {path!r} does not exist")


def _remove(doc, path):
    parts = _pointer(path)
    cur = _container(doc, parts, path)
    last = parts[-1]
    if isinstance(cur, dict) and last in cur:
        return cur.pop(last)
    if isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        return cur.pop(int(last))
    raise invalid(f"json patch: cannot remove {path!r}: it does not exist")


def _add(doc, path, value, replace=False):
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    cur = _container(doc, parts, path)
    last = parts[-1]
    if isinstance(cur, dict):
        if replace and last not in cur:
            raise invalid(f"json patch: cannot replace {path!r}: it does not exist")
        cur[last] = copy.deepcopy(value)
    elif isinstance(cur, list):
        if last == "-" and not replace:
            cur.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(cur) - (1 if replace else 0):
            if replace:
                cur[int(last)] = copy.deepcopy(value)
            else:
                cur.insert(int(last), copy.deepcopy(value))
        else:
            raise invalid(f"json patch: index {last!r} out of range in {path!r}")
    else:
        raise invalid(f"json patch: path {path!r} does not exist")
    return doc


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise bad_request("json patch: the body must be an array of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"json patch: bad operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, op.get("value"))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, op.get("value"), replace=True)
        elif kind == "move":
            value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, _get(doc, op.get("from", "")))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise invalid(f"json patch: test operation for path {path!r} failed")
        else:
            raise bad_request(f"json patch: unknown operation {kind!r}")
    return doc


# ------------------------------------------------------------------ the store


class Store:
    """Nodes, the resourceVersion counter, the event history and the watchers."""

    def __init__(self, state_file=None):
        self.lock = threading.Lock()
        self.nodes = {}
        self.rv = 0
        self.floor = 0  # events at or below this resourceVersion are compacted
        self.history = []  # (rv, type, node)
        self.watchers = []
        self.state_file = state_file
        if state_file and os.path.exists(state_file):
            with open(state_file) as f:
                st = json.load(f)
            self.nodes = st["nodes"]
            self.rv = st["rv"]
            self.floor = self.rv  # the history did not survive the restart

    def _save(self):
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"rv": self.rv, "nodes": self.nodes}, f)
        os.replace(tmp, self.state_file)

    def _emit(self, kind, node):
        self.history.append((self.rv, kind, copy.deepcopy(node)))
        for w in list(self.watchers):
            w.offer(kind, node)
        self._save()

    def _bump(self, node):
        self.rv += 1
        node["metadata"]["resourceVersion"] = str(self.rv)

    def list(self, label_sel, field_sel):
        with self.lock:
            items = [copy.deepcopy(n) for _, n in sorted(self.nodes.items())
                     if matches(n, label_sel, field_sel)]
            return items, str(self.rv)

    def get(self, name):
        with self.lock:
            if name not in self.nodes:
                raise not_found(name)
            return copy.deepcopy(self.nodes[name])

    def create(self, node):
        if not isinstance(node, dict) or not isinstance(node.get("metadata"), dict):
            raise bad_request("the body is not a Node")
        name = node["metadata"].get("name")
        if not name:
            raise invalid("Node \"\" is invalid: metadata.name: Required value: name or generateName is required")
        with self.lock:
            if name in self.nodes:
                raise ApiError(409, "AlreadyExists", f'nodes "{name}" already exists',
                               {"name": name, "kind": "nodes"})
            node = copy.deepcopy(node)
            node["kind"], node["apiVersion"] = "Node", "v1"
            md = node["metadata"]
            md.pop("resourceVersion", None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            node.setdefault("spec", {})
            node.setdefault("status", {})
            self._bump(node)
            self.nodes[name] = node
            self._emit("ADDED", node)
            return copy.deepcopy(node)

    def update(self, name, fn, subresource, precondition=None):
        """Replace the node by fn(copy of node), keeping what the (sub)resource may not change."""
        with self.lock:
            if name not in self.nodes:
                raise not_found(name)
            old = self.nodes[name]
            new = fn(copy.deepcopy(old))
            if not isinstance(new, dict):
                raise bad_request("the result is not an object")
            md = new.get("metadata")
            if not isinstance(md, dict):
                raise invalid(f'Node "{name}" is invalid: metadata: Required value')
            rv = md.get("resourceVersion") if precondition is None else precondition
            if rv not in (None, "", old["metadata"]["resourceVersion"]):
                raise conflict(name, "the object has been modified; please apply your changes "
                               "to the latest version and try again")
            if md.get("name", name) != name:
                raise invalid(f'Node "{name}" is invalid: metadata.name: Invalid value: '
                              f'"{md.get("name")}": field is immutable')
            for k in ("name", "uid", "creationTimestamp", "resourceVersion"):
                if k in old["metadata"]:
                    md[k] = old["metadata"][k]
            new["kind"], new["apiVersion"] = "Node", "v1"
            # nodeStrategy / nodeStatusStrategy PrepareForUpdate
            if subresource == "status":
                new["spec"] = copy.deepcopy(old.get("spec", {}))
            else:
                new["status"] = copy.deepcopy(old.get("status", {}))
            if new == old:
                return copy.deepcopy(old)
            self._bump(new)
            self.nodes[name] = new
            self._emit("MODIFIED", new)
            return copy.deepcopy(new)

    def delete(self, name):
        with self.lock:
            if name not in self.nodes:
                raise not_found(name)
            node = self.nodes.pop(name)
            self.rv += 1
            node = copy.deepcopy(node)
            node["metadata"]["resourceVersion"] = str(self.rv)
            self._emit("DELETED", node)
            return node

    def compact(self):
        with self.lock:
            self.floor = self.rv
            self.history = []
            return self.rv

    def watch(self, since, label_sel, field_sel, bookmarks):
        """Register a watcher; returns it with its first events queued."""
        w = Watcher(label_sel, field_sel, bookmarks)
        with self.lock:
            if since in (None, "", "0"):
                for _, n in sorted(self.nodes.items()):
                    if matches(n, label_sel, field_sel):
                        w.q.put(("ADDED", copy.deepcopy(n)))
            else:
                try:
                    rv = int(since)
                except ValueError:
                    raise bad_request(f'invalid resource version "{since}"')
                if rv < self.floor:
                    w.q.put(("ERROR", ApiError(
                        410, "Expired",
                        f"too old resource version: {rv} ({self.floor + 1})").status()))
                    w.q.put(None)
                    return w
                for erv, kind, n in self.history:
                    if erv > rv and matches(n, label_sel, field_sel):
                        w.q.put((kind, copy.deepcopy(n)))
            w.last_rv = self.rv
            self.watchers.append(w)
        return w

    def unwatch(self, w):
        with self.lock:
            if w in self.watchers:
                self.watchers.remove(w)

    def bookmark_all(self):
        with self.lock:
            for w in self.watchers:
                w.bookmark(self.rv)

    def close_watches(self):
        with self.lock:
            for w in self.watchers:
                w.q.put(None)
            self.watchers = []


class Watcher:
    def __init__(self, label_sel, field_sel, bookmarks):
        self.q = queue.Queue()
        self.label_sel = label_sel
        self.field_sel = field_sel
        self.bookmarks = bookmarks
        self.last_rv = 0

    def offer(self, kind, node):
        # Called with the store lock held.
        if matches(node, self.label_sel, self.field_sel):
            self.q.put((kind, copy.deepcopy(node)))

    def bookmark(self, rv):
        if self.bookmarks:
            self.q.put(("BOOKMARK", {"kind": "Node", "apiVersion": "v1",
                                     "metadata": {"resourceVersion": str(rv)}}))


def parse_selector(s):
    reqs = []
    for part in filter(None, (p.strip() for p in (s or "").split(","))):
        if "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(("!=", k.strip(), v.strip()))
        elif "==" in part:
            k, v = part.split("==", 1)
            reqs.append(("=", k.strip(), v.strip()))
        elif "=" in part:
            k, v = part.split("=", 1)
            reqs.append(("=", k.strip(), v.strip()))
        elif part.startswith("!"):
            reqs.append(("!", part[1:].strip(), None))
        else:
            reqs.append(("exists", part, None))
    return reqs


def _field(node, key):
    cur = node
    for p in key.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def matches(node, label_sel, field_sel):
    labels = node.get("metadata", {}).get("labels") or {}
    for op, k, v in label_sel:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    for op, k, v in field_sel:
        val = _field(node, k)
        val = "" if val is None else str(val)
        if op == "=" and val != v:
            return False
        if op == "!=" and val == v:
            return False
    return True


# ------------------------------------------------------------------ HTTP

DISCOVERY_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
         "shortNames": ["no"]},
        {"name": "nodes/status", "singularName": "", "namespaced": False, "kind": "Node",
         "verbs": ["get", "patch", "update"]},
    ],
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weft-test-apiserver"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, fmt % args))

    # ---- plumbing
    def _send_json(self, code, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _log(self, body):
        if not self.server.log_file:
            return
        url = urllib.parse.urlsplit(self.path)
        rec = {"method": self.command, "path": url.path, "query": url.query,
               "contentType": self.headers.get("Content-Type", ""),
               "body": body.decode(errors="replace")}
        with self.server.log_lock, open(self.server.log_file, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _route(self):
        body = self._body()  # kubectl delete sends DeleteOptions: read every body
        self._log(body)
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        try:
            if parts and parts[0] == "weft-test":
                return self._test_control(parts[1:])
            tok = self.server.token
            if tok and self.headers.get("Authorization") != f"Bearer {tok}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self._api(parts, q, body)
        except ApiError as e:
            self._send_json(e.code, e.status())
        except BrokenPipeError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _route

    def _test_control(self, parts):
        store = self.server.store
        what = parts[0] if parts else ""
        if what == "ready" and self.command == "GET":
            self._send_json(200, {})
        elif what == "compact" and self.command == "POST":
            self._send_json(200, {"compacted": str(store.compact())})
        elif what == "bookmark" and self.command == "POST":
            store.bookmark_all()
            self._send_json(200, {})
        elif what == "close-watches" and self.command == "POST":
            store.close_watches()
            self._send_json(200, {})
        elif what == "requests" and self.command == "GET":
            data = b""
            if self.server.log_file and os.path.exists(self.server.log_file):
                with open(self.server.log_file, "rb") as f:
                    data = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            raise not_found("/".join(parts))

    def _api(self, parts, q, body):
        store = self.server.store
        m = self.command
        if m == "GET" and parts == ["version"]:
            return self._send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-weft-test",
                                         "platform": "linux/amd64"})
        if m == "GET" and parts == ["api"]:
            return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                         "serverAddressByClientCIDRs": []})
        if m == "GET" and parts == ["apis"]:
            return self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if m == "GET" and parts == ["api", "v1"]:
            return self._send_json(200, DISCOVERY_V1)
        if m == "GET" and len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            return self._send_json(200, self._pod(parts[3], parts[5]))
        if parts[:3] != ["api", "v1", "nodes"] or len(parts) > 5:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = parts[3] if len(parts) > 3 else None
        sub = parts[4] if len(parts) > 4 else None
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if m == "GET":
                label_sel = parse_selector(q.get("labelSelector"))
                field_sel = parse_selector(q.get("fieldSelector"))
                if q.get("watch") in ("1", "true"):
                    return self._watch(q, label_sel, field_sel)
                items, rv = store.list(label_sel, field_sel)
                return self._send_json(200, {"kind": "NodeList", "apiVersion": "v1",
                                             "metadata": {"resourceVersion": rv}, "items": items})
            if m == "POST":
                return self._send_json(201, store.create(self._json(body)))
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource")
        if m == "GET":
            return self._send_json(200, store.get(name))
        if m == "DELETE" and sub is None:
            node = store.delete(name)
            return self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                         "status": "Success",
                                         "details": {"name": name, "kind": "nodes",
                                                     "uid": node["metadata"].get("uid", "")}})
        if m == "PUT":
            new = self._json(body)
            return self._send_json(200, store.update(name, lambda _old: new, sub))
        if m == "PATCH":
            return self._send_json(200, self._patch(name, sub, body))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _pod(self, ns, name):
        """A Pod given with --pod NS/NAME=NODE: only what flanneld reads (spec.nodeName)."""
        node = self.server.pods.get(f"{ns}/{name}")
        if node is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        return {"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": name, "namespace": ns, "uid": f"pod-{ns}-{name}"},
                "spec": {"nodeName": node}, "status": {"phase": "Running"}}

    def _json(self, body):
        try:
            return json.loads(body or b"null")
        except ValueError as e:
            raise bad_request(f"the body is not JSON: {e}")

    def _patch(self, name, sub, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        patch = self._json(body)
        if ctype == "application/merge-patch+json":
            fn = lambda old: merge_patch(old, patch)
        elif ctype == "application/strategic-merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("strategic merge patch: the body must be an object")
            fn = lambda old: strategic_merge(old, patch)
        elif ctype == "application/json-patch+json":
            fn = lambda old: json_patch(old, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType",
                           f'the body of the request was in an unknown format - accepted media types include: '
                           f'application/json-patch+json, application/merge-patch+json, '
                           f'application/strategic-merge-patch+json')
        # A resourceVersion inside a merge or strategic patch is a precondition;
        # after a JSON patch the resulting object's one is.
        pre = None
        if isinstance(patch, dict):
            pre = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch.get("metadata"), dict) else None
        return self.server.store.update(name, fn, sub, precondition=pre)

    def _watch(self, q, label_sel, field_sel):
        store = self.server.store
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        w = store.watch(q.get("resourceVersion"), label_sel, field_sel, bookmarks)
        timeout = float(q.get("timeoutSeconds") or 1800)
        timer = threading.Timer(timeout, lambda: w.q.put(None))
        timer.daemon = True
        timer.start()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        interval = self.server.bookmark_interval
        try:
            while True:
                try:
                    item = w.q.get(timeout=interval if interval > 0 else None)
                except queue.Empty:
                    with store.lock:
                        w.bookmark(store.rv)
                    continue
                if item is None:
                    break
                kind, obj = item
                line = (json.dumps({"type": kind, "object": obj}) + "\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            timer.cancel()
            store.unwatch(w)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="A test Kubernetes API server for Nodes.")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--state")
    ap.add_argument("--token")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    ap.add_argument("--log")
    ap.add_argument("--pod", action="append", default=[],
                    help="NS/NAME=NODE: serve GET /api/v1/namespaces/NS/pods/NAME with spec.nodeName NODE")
    args = ap.parse_args()

    srv = Server((args.listen, args.port), Handler)
    srv.store = Store(args.state)
    srv.token = args.token
    srv.pods = dict(p.split("=", 1) for p in args.pod)
    srv.log_file = args.log
    srv.log_lock = threading.Lock()
    srv.bookmark_interval = args.bookmark_interval
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"apiserver: listening on {args.listen}:{port}\n")
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
