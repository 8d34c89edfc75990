#!/usr/bin/env python3
"""A tiny CRI client (the kubelet's side of containerd's CRI plugin) for
weft's end-to-end tests: Debian 12 has no crictl.  It speaks gRPC over the
unix socket with python3-grpcio and hand-encodes the few runtime.v1
protobuf messages it needs (field numbers from k8s.io/cri-api
pkg/apis/runtime/v1/api.proto).

    cri.py SOCK version
    cri.py SOCK network-ready             exit 0 once the CRI's CNI conf is loaded
    cri.py SOCK run NAME UID NAMESPACE HOSTNAME CGROUP_PARENT [HOSTPORT:PORT[/tcp|udp][@HOSTIP]]...
                                          prints the sandbox id
    cri.py SOCK status ID                 prints JSON: id, state, ip, additional_ips,
                                          netns, cni_result (from the verbose info)
    cri.py SOCK stop ID
    cri.py SOCK rm ID
    cri.py SOCK list                      prints "ID STATE" lines

A failed call prints the gRPC status code and details on stderr and exits 1,
so the runtime's own error message (which carries the plugin's msg) can be
matched by the test.
"""
import json
import sys

import grpc

SERVICE = "/runtime.v1.RuntimeService/"
PROTOCOLS = {"tcp": 0, "udp": 1, "sctp": 2}
STATES = {0: "READY", 1: "NOTREADY"}


# ---------------------------------------------------------------- encoding

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n) if n else b""


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data if data else b""


def f_msg(field, data):
    # An embedded message is emitted even when empty (presence matters).
    return varint(field << 3 | 2) + varint(len(data)) + data


def f_map(field, d):
    return b"".join(f_msg(field, f_bytes(1, k) + f_bytes(2, v)) for k, v in d.items())


# ---------------------------------------------------------------- decoding

def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(buf):
    """field number -> list of raw values (int for varints, bytes otherwise)."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, i = read_varint(buf, i)
        elif wire == 1:
            val, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = read_varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wire == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        out.setdefault(field, []).append(val)
    return out


def first(msg, field, default=b""):
    return msg.get(field, [default])[0]


def text(msg, field):
    return first(msg, field).decode()


def decode_map(entries):
    d = {}
    for e in entries:
        m = decode(e)
        d[text(m, 1)] = text(m, 2)
    return d


# ---------------------------------------------------------------- calls

def call(sock, method, req, timeout=60):
    chan = grpc.insecure_channel("unix://" + sock)
    fn = chan.unary_unary(SERVICE + method)
    try:
        return fn(req, timeout=timeout)
    except grpc.RpcError as e:
        print("cri %s: %s: %s" % (method, e.code().name, e.details()), file=sys.stderr)
        sys.exit(1)
    finally:
        chan.close()


def port_mapping(spec):
    hostip = ""
    if "@" in spec:
        spec, hostip = spec.split("@", 1)
    proto = "tcp"
    if "/" in spec:
        spec, proto = spec.split("/", 1)
    host, cont = spec.split(":")
    return (f_varint(1, PROTOCOLS[proto]) + f_varint(2, int(cont)) +
            f_varint(3, int(host)) + f_bytes(4, hostip))


def run(sock, name, uid, namespace, hostname, cgroup_parent, *ports):
    meta = f_bytes(1, name) + f_bytes(2, uid) + f_bytes(3, namespace)
    linux = f_bytes(1, cgroup_parent)
    config = (f_msg(1, meta) + f_bytes(2, hostname) +
              b"".join(f_msg(5, port_mapping(p)) for p in ports) +
              f_map(6, {"weft-e2e": "1"}) + f_msg(8, linux))
    resp = decode(call(sock, "RunPodSandbox", f_msg(1, config), timeout=120))
    print(text(resp, 1))


def status(sock, sid):
    resp = decode(call(sock, "PodSandboxStatus", f_bytes(1, sid) + f_varint(2, 1)))
    st = decode(first(resp, 1))
    net = decode(first(st, 5))
    info = decode_map(resp.get(2, []))
    out = {
        "id": text(st, 1),
        "state": STATES.get(first(st, 3, 0), "?"),
        "ip": text(net, 1),
        "additional_ips": [text(decode(p), 1) for p in net.get(2, [])],
    }
    if "info" in info:
        verbose = json.loads(info["info"])
        # The sandbox's netns path is in its OCI spec.
        spec = verbose.get("runtimeSpec") or {}
        out["netns"] = next((n.get("path", "") for n in
                             (spec.get("linux") or {}).get("namespaces") or []
                             if n.get("type") == "network"), "")
        out["cni_result"] = verbose.get("cniResult")
    print(json.dumps(out))


def network_ready(sock):
    resp = decode(call(sock, "Status", b""))
    for c in decode(first(resp, 1)).get(1, []):
        cond = decode(c)
        if text(cond, 1) == "NetworkReady":
            if first(cond, 2, 0):
                return
            print("NetworkReady=false: %s %s" % (text(cond, 3), text(cond, 4)), file=sys.stderr)
            sys.exit(1)
    print("no NetworkReady condition", file=sys.stderr)
    sys.exit(1)


def version(sock):
    resp = decode(call(sock, "Version", f_bytes(1, "v1")))
    print("%s %s (CRI %s)" % (text(resp, 2), text(resp, 3), text(resp, 4)))


def list_sandboxes(sock):
    resp = decode(call(sock, "ListPodSandbox", b""))
    for item in resp.get(1, []):
        m = decode(item)
        print(text(m, 1), STATES.get(first(m, 3, 0), "?"))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sock, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "version":
        version(sock)
    elif cmd == "network-ready":
        network_ready(sock)
    elif cmd == "run":
        run(sock, *args)
    elif cmd == "status":
        status(sock, args[0])
    elif cmd == "stop":
        call(sock, "StopPodSandbox", f_bytes(1, args[0]), timeout=120)
    elif cmd == "rm":
        call(sock, "RemovePodSandbox", f_bytes(1, args[0]), timeout=120)
    elif cmd == "list":
        list_sandboxes(sock)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
