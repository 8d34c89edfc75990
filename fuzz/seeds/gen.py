#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/seed-*.

Seeds are real inputs: the golden results of the Go plugins (crates/cni-core/tests/golden),
the configs in conf/, subnet.env and lease examples from the unit tests. Multi-field targets
take NUL-separated fields (see fuzz/src/lib.rs). Run `scripts/fuzz --seed` (or this script)
after adding a parser feature, then `cargo fuzz cmin <target>` to keep the corpus small.
"""
import glob
import hashlib
import json
import os
import sys

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(FUZZ)
VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fields(*parts):
    return "\0".join(parts)


def read(path):
    with open(path) as f:
        return f.read()


goldens = [p for p in sorted(glob.glob(os.path.join(ROOT, "crates/cni-core/tests/golden/*.json")))]
results = []
for p in goldens:
    text = read(p)
    try:
        v = json.loads(text)
    except ValueError:
        continue
    if isinstance(v, dict) and "code" not in v:
        results.append(v)
confs = [read(p) for p in sorted(glob.glob(os.path.join(ROOT, "conf/*.conf*")))]
netconfs = [read(p) for p in sorted(glob.glob(os.path.join(ROOT, "conf/net-conf*.json")))]

# Configs of one plugin, from the conflists.
plugin_confs = []
for c in confs:
    v = json.loads(c)
    for p in v.get("plugins", [v]):
        p = dict(p)
        p.setdefault("name", v.get("name", "net"))
        p.setdefault("cniVersion", v.get("cniVersion", "1.0.0"))
        plugin_confs.append(p)

v4_result = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "cni0", "mac": "0a:58:0a:01:02:01"},
        {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:01"},
        {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/var/run/netns/pod"},
    ],
    "ips": [
        {"interface": 2, "address": "10.1.2.2/24", "gateway": "10.1.2.1"},
        {"interface": 2, "address": "2001:db8:1::2/64", "gateway": "2001:db8:1::1"},
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1", "mtu": 1400, "table": 100, "scope": 0}],
    "dns": {"nameservers": ["10.1.2.53"], "search": ["example.com"]},
}

# --- netconf: results, configs, configs with a prevResult of every version.
for r in results:
    write("netconf", json.dumps(r, indent=4))
for c in confs:
    write("netconf", c)
for v in VERSIONS:
    for r in results[:2] + [v4_result]:
        prev = dict(r)
        conf = {"cniVersion": v, "name": "mynet", "type": "portmap", "prevResult": prev,
                "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}}
        write("netconf", json.dumps(conf))
write("netconf", json.dumps({"cniVersion": "1.1.0", "name": "n", "type": "bridge",
                             "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]}))
write("netconf", json.dumps({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24", "gateway": "10.0.0.1",
                             "routes": [{"dst": "0.0.0.0/0"}]}, "ip6": {"ip": "::ffff:10.0.0.3/120"}, "dns": {}}))

# --- cni_args
for a in [
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123abc;K8S_POD_UID=8c1e",
    "IP=10.1.2.3",
    "IP=10.1.2.3,2001:db8::5;MAC=aa:bb:cc:dd:ee:ff",
    "IgnoreUnknown=true;FOO=bar",
    "IgnoreUnknown=False;IP=10.0.0.1",
    "IP=1;IP=2",
    "a=b=c",
    "",
]:
    write("cni_args", a)

# --- flannel: subnet.env \0 flannel config
envs = [
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
    "FLANNEL_NETWORK=10.1.0.0/16,192.168.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n",
    "# flannel\nexport FLANNEL_NETWORK=\"10.5.0.0/16\"\nFLANNEL_SUBNET=10.5.52.1/24 # lease\r\nFLANNEL_MTU='1450'\nFLANNEL_IPMASQ=true\n",
    "FLANNEL_IPV6_NETWORK=fd44::/56\nFLANNEL_IPV6_SUBNET=fd44:0:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
]
flannel_confs = [
    "",
    json.dumps({"cniVersion": "1.0.0", "name": "cbr0", "type": "flannel",
                "delegate": {"type": "bridge", "hairpinMode": True, "isDefaultGateway": True, "mtu": 1400.5}}),
    json.dumps({"cniVersion": "0.3.1", "name": "cbr0", "type": "flannel", "subnetFile": "/run/flannel/subnet.env",
                "dataDir": "/var/lib/cni/flannel", "ipam": {"type": "host-local", "routes": [{"dst": "10.0.0.0/8"}],
                "ranges": [[{"subnet": "10.9.0.0/24"}]]}, "runtimeConfig": {"portMappings": []}}),
    json.dumps({"cniVersion": "1.0.0", "name": "cbr0", "type": "flannel", "delegate": {"type": "ipvlan", "master": "eth0"}}),
]
for e in envs:
    for c in flannel_confs:
        write("flannel", fields(e, c))

# --- flanneld: net-conf \0 lease value \0 subnet key \0 previous subnet.env \0 choice
leases = [
    ('{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}', "/coreos.com/network/subnets/10.244.52.0-24"),
    ('{"PublicIP":"10.0.0.2","PublicIPv6":"fd00::2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:45"},"BackendV6Data":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:46"}}', "10.244.3.0-24&fd44:0:0:3::-64"),
    ('{"PublicIP":"10.0.0.3","BackendType":"host-gw"}', "10.244.7.0-24"),
]
prevs = ["", envs[0], "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_IPV6_NETWORK=fd44::/56\nFLANNEL_IPV6_SUBNET=fd44:0:0:9::1/64\n"]
extra_confs = [
    '{"Network":"10.5.0.0/16","SubnetLen":26,"SubnetMin":"10.5.1.0","SubnetMax":"10.5.20.192","Backend":{"Type":"vxlan","VNI":4096,"Port":4789,"GBP":false,"DirectRouting":true}}',
    '{"network":"10.6.0.0/28","backend":{"type":"host-gw"}}',
    '{"EnableIPv4":true,"EnableIPv6":true,"Network":"10.7.0.0/16","IPv6Network":"fd00::/120","IPv6SubnetLen":124,"Backend":{"Type":"vxlan"}}',
]
for i, c in enumerate(netconfs + extra_confs):
    for j, (value, key) in enumerate(leases):
        write("flanneld", fields(c, value, key, prevs[(i + j) % len(prevs)], chr(i + j)))

# --- host_local: config \0 IP \0 reservation \0 last_reserved_ip.0 \0 cid \0 ifname \0 resolv.conf
resolv = "nameserver 10.1.2.53\nsearch example.com\noptions ndots:2\n"
hl = [
    {"cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "ipam": {"type": "host-local", "dataDir": "/nonexistent",
     "ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]],
     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.2.1"}, {"dst": "::/0"}],
     "resolvConf": "/etc/resolv.conf"}},
    {"cniVersion": "0.3.1", "name": "mynet", "ipam": {"type": "host-local", "subnet": "10.1.2.0/29",
     "rangeStart": "10.1.2.2", "rangeEnd": "10.1.2.6", "gateway": "10.1.2.1"}},
    {"cniVersion": "1.0.0", "name": "mynet", "ipam": {"type": "host-local",
     "ranges": [[{"subnet": "10.1.2.0/30"}, {"subnet": "10.1.3.0/31"}]]},
     "args": {"cni": {"ips": ["10.1.2.2"]}}, "runtimeConfig": {"ips": ["10.1.3.1/31"]}},
    {"cniVersion": "1.1.0", "name": "mynet", "ipam": {"type": "host-local"},
     "runtimeConfig": {"ipRanges": [[{"subnet": "fd00::/126"}]]},
     "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]},
]
for i, c in enumerate(hl):
    for res, last in [("c1\r\neth0", "10.1.2.2"), ("legacy-cid", "2001:db8:1::5"), ("", "")]:
        write("host_local", fields(json.dumps(c), "10.1.2.9" if i == 0 else "", res, last, "c1", "eth0", resolv))

# --- plugin_config: config \0 CNI_ARGS \0 ifname \0 cid
for p in plugin_confs:
    write("plugin_config", fields(json.dumps(p), "IgnoreUnknown=1;MAC=0a:58:0a:01:02:09", "eth0", "c1"))
portmap = {"cniVersion": "1.0.0", "name": "mynet", "type": "portmap", "snat": True, "markMasqBit": 13,
           "runtimeConfig": {"portMappings": [
               {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
               {"hostPort": 8053, "containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
               {"hostPort": 8443, "containerPort": 443, "protocol": "sctp", "hostIP": "::"}]},
           "prevResult": v4_result}
write("plugin_config", fields(json.dumps(portmap), "", "eth0", "c1"))
pm2 = dict(portmap, conditionsV4=["-s", "10.0.0.0/8"], conditionsV6=["!", "-d", "fd00::1"], externalSetMarkChain="KUBE-MARK-MASQ")
pm2.pop("markMasqBit")
write("plugin_config", fields(json.dumps(pm2), "", "eth0", "c1"))
pm3 = dict(portmap, backend="nftables", conditionsV4=["ip", "saddr", "10.0.0.0/8"], masqAll=True)
write("plugin_config", fields(json.dumps(pm3), "", "eth0", "c1"))
br = {"cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "bridge": "cni0", "vlan": 0,
      "vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 210}], "mtu": 1400, "ipMasqBackend": "nftables",
      "args": {"cni": {"mac": "0a:58:0a:01:02:0a"}}, "runtimeConfig": {"mac": "0a:58:0a:01:02:0b"}, "ipam": {}}
write("plugin_config", fields(json.dumps(br), "MAC=0a:58:0a:01:02:0c", "eth0", "c1"))

# --- skel: CNI_COMMAND \0 CONTAINERID \0 NETNS \0 IFNAME \0 ARGS \0 PATH \0 NETNS_OVERRIDE \0 stdin
for v in VERSIONS:
    conf = json.dumps({"cniVersion": v, "name": "mynet", "type": "echo", "prevResult": v4_result})
    for cmd in ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"]:
        write("skel", fields(cmd, "c1", "/var/run/netns/pod", "eth0", "IgnoreUnknown=1;IP=10.1.2.3",
                             "/opt/cni/bin:/usr/lib/cni", "", conf))
write("skel", fields("", "", "", "", "", "", "", ""))
write("skel", fields("ADD", "c1", "/proc/self/ns/net", "eth0", "", "/opt/cni/bin", "true",
                     json.dumps({"cniVersion": "1.0.0", "name": "n", "prevResult": results[0] if results else {}})))
# --- fw_dumps: `iptables -t nat -S` and `nft -j list` output, from the unit-test fixtures.
import re
fixtures = read(os.path.join(ROOT, "crates/firewall/src/iptables.rs")) + read(os.path.join(ROOT, "crates/portmap/src/nft/tests.rs"))
for m in re.finditer(r'const (?:SAVED|LISTING): &str = r#"(.*?)"#;', fixtures, re.S):
    write("fw_dumps", m.group(1))
write("fw_dumps", """-P PREROUTING ACCEPT
-N CNI-HOSTPORT-DNAT
-N CNI-DN-1c7f5e2b8a6a4f0e9d3b2
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A CNI-HOSTPORT-DNAT -p udp -m comment --comment "dnat name: \\"mynet\\" id: \\"c2\\"" -m multiport --dports 8053 -j CNI-DN-1c7f5e2b8a6a4f0e9d3b2
-A CNI-DN-1c7f5e2b8a6a4f0e9d3b2 -s 10.1.2.2/32 -p udp -m udp --dport 8053 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-1c7f5e2b8a6a4f0e9d3b2 -d 127.0.0.1/32 -p udp -m udp --dport 8053 -j DNAT --to-destination 10.1.2.2:53
-A CNI-DN-1c7f5e2b8a6a4f0e9d3b2 ! -s 10.0.0.0/8 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00::2]:80
""")
print("seeds written to", os.path.join(FUZZ, "corpus"), file=sys.stderr)
