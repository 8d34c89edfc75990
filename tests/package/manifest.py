#!/usr/bin/python3
"""Checks a weft kube-flannel manifest (conf/kube-flannel-weft*.yml).

    manifest.py kube|etcd FILE IMAGE

Asserts the layout of flannel's kube-flannel.yml and what the mode needs
(RBAC, probes, env, args), that every container runs IMAGE and that the init
containers run `weft install` (no shell, no cp).  Prints JSON on success:
{"cni": <cni-conf.json>, "net": <net-conf.json>, "init": [[argv]...]}.
"""
import json
import sys

import yaml


def check(mode, path, image):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = [d["kind"] for d in docs]
    by_kind = {d["kind"]: d for d in docs}
    assert len(set(kinds)) == len(kinds), kinds
    namespaced = [d for d in docs if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")]
    assert all(d["metadata"]["namespace"] == "kube-flannel" for d in namespaced), "namespace"
    assert by_kind["Namespace"]["metadata"]["name"] == "kube-flannel"
    sa = by_kind["ServiceAccount"]["metadata"]["name"]
    assert sa == "flannel", sa

    cm = by_kind["ConfigMap"]
    assert cm["metadata"]["name"] == "kube-flannel-cfg"
    cni = json.loads(cm["data"]["cni-conf.json"])
    net = json.loads(cm["data"]["net-conf.json"])
    assert net["Network"] and net["Backend"]["Type"] in ("vxlan", "host-gw"), net
    assert [p["type"] for p in cni["plugins"]] == ["flannel", "portmap"], cni

    ds = by_kind["DaemonSet"]
    assert ds["metadata"]["name"] == "kube-flannel-ds"
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["serviceAccountName"] == sa
    vols = {v["name"]: v for v in spec["volumes"]}
    hostpaths = {n: v["hostPath"]["path"] for n, v in vols.items() if "hostPath" in v}
    assert hostpaths["cni-plugin"] == "/opt/cni/bin" and hostpaths["cni"] == "/etc/cni/net.d", hostpaths
    assert hostpaths["run"] == "/run/flannel", hostpaths
    assert hostpaths["xtables-lock"] == "/run/xtables.lock", hostpaths
    assert vols["xtables-lock"]["hostPath"]["type"] == "FileOrCreate"
    assert vols["flannel-cfg"]["configMap"]["name"] == "kube-flannel-cfg"

    containers = spec["initContainers"] + spec["containers"]
    images = {c["name"]: c["image"] for c in containers}
    assert set(images.values()) == {image}, (images, image)
    for c in containers:
        assert "args" not in c or all(isinstance(a, str) for a in c["args"]), c["name"]
        for m in c.get("volumeMounts", []):
            assert m["name"] in vols, m
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                assert ref["name"] == "kube-flannel-cfg" and ref["key"] in cm["data"], ref

    # Init containers: weft's install subcommand, no shell, no cp.
    inits = {c["name"]: c for c in spec["initContainers"]}
    assert list(inits) == ["install-cni-plugin", "install-cni"], list(inits)
    argv = {n: c["command"] + c.get("args", []) for n, c in inits.items()}
    for n, a in argv.items():
        assert a[0] == "/opt/weft/bin/weft" and a[1] == "install", (n, a)
        assert not any(x in ("sh", "/bin/sh", "cp", "-c") for x in a), (n, a)
    plugin = argv["install-cni-plugin"]
    assert plugin[-1] == "/opt/cni/bin", plugin
    conf = argv["install-cni"]
    assert conf[2:] == ["--file", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"], conf
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in inits["install-cni"]["volumeMounts"]}
    assert mounts == {"/etc/cni/net.d": "cni", "/etc/kube-flannel": "flannel-cfg"}, mounts
    mounts = {m["mountPath"]: m["name"] for m in inits["install-cni-plugin"]["volumeMounts"]}
    assert mounts == {"/opt/cni/bin": "cni-plugin"}, mounts

    flanneld = spec["containers"][0]
    assert flanneld["name"] == "kube-flannel"
    assert flanneld["command"] == ["/opt/weft/bin/flanneld"], flanneld["command"]
    args = flanneld.get("args", [])
    assert "--ip-masq" in args, args
    caps = flanneld["securityContext"]["capabilities"]["add"]
    assert set(caps) == {"NET_ADMIN", "NET_RAW"}, caps
    assert flanneld["securityContext"]["privileged"] is False
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in flanneld["volumeMounts"]}
    assert mounts.get("/run/flannel") == "run" and mounts.get("/run/xtables.lock") == "xtables-lock", mounts
    assert mounts.get("/etc/kube-flannel") == "flannel-cfg", mounts
    env = {e["name"]: e for e in flanneld.get("env", [])}
    field = lambda n: env[n]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field("POD_NAME") == "metadata.name" and field("POD_NAMESPACE") == "metadata.namespace", env

    if mode == "kube":
        check_kube(by_kind, sa, flanneld, args, env, field)
    else:
        assert "--kube-subnet-mgr" not in args, args
        assert "ClusterRole" not in by_kind and "ClusterRoleBinding" not in by_kind, kinds
        # etcd mode: the network config is <prefix>/config; --net-config-path would be ignored.
        assert not any(a.startswith("--net-config-path") for a in args), args
        assert env["FLANNELD_ETCD_ENDPOINTS"]["valueFrom"]["configMapKeyRef"]["key"] == "etcd-endpoints"
        assert "--plugins" in plugin, plugin
    return {"cni": cni, "net": net, "init": [plugin, conf]}


def check_kube(by_kind, sa, flanneld, args, env, field):
    assert args[:2] == ["--ip-masq", "--kube-subnet-mgr"], args
    port = [a for a in args if a.startswith("--healthz-port=")]
    assert len(port) == 1, args
    port = int(port[0].split("=", 1)[1])
    ports = {p["name"]: p for p in flanneld["ports"]}
    assert ports["healthz"]["containerPort"] == port and ports["healthz"]["protocol"] == "TCP", ports
    live, ready = flanneld["livenessProbe"]["httpGet"], flanneld["readinessProbe"]["httpGet"]
    assert (live["path"], live["port"]) == ("/healthz", "healthz"), live
    assert (ready["path"], ready["port"]) == ("/readyz", "healthz"), ready
    # The default --net-config-path is where the ConfigMap is mounted.
    assert not any(a.startswith("--net-config-path") for a in args), args
    assert field("NODE_NAME") == "spec.nodeName", env
    assert int(env["EVENT_QUEUE_DEPTH"]["value"]) > 0, env
    assert env["CONT_WHEN_CACHE_NOT_READY"]["value"] in ("true", "false"), env
    assert not any(n.startswith("FLANNELD_ETCD") for n in env), env

    role = by_kind["ClusterRole"]
    rules = {}
    for r in role["rules"]:
        assert r["apiGroups"] == [""], r
        for res in r["resources"]:
            rules.setdefault(res, set()).update(r["verbs"])
    assert rules == {
        "pods": {"get"},
        "nodes": {"get", "list", "watch", "patch"},
        "nodes/status": {"patch"},
    }, rules
    binding = by_kind["ClusterRoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}, binding["roleRef"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "kube-flannel"}], binding


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("kube", "etcd"):
        sys.exit(__doc__)
    print(json.dumps(check(*sys.argv[1:])))
