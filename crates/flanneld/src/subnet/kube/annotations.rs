//! The Node annotations of flannel's kube subnet manager
//! (`pkg/subnet/kube/annotations.go`, `kube.go`): the key names from
//! `--kube-annotation-prefix`, the values our node publishes (byte for
//! byte what Go writes), the patch that updates them, and the reading of
//! a peer Node into a lease. Pure functions: no API calls here.
//!
//! Reference: `/work/shared/reference/flannel-kube.md` §3.1, §3.2, §4.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use regex::Regex;
use serde_json::{Map, Value};

use crate::config::{NetConfig, BACKEND_VXLAN};
use crate::lease::{Lease, LeaseAttrs};

/// The default `--kube-annotation-prefix`.
pub const DEFAULT_PREFIX: &str = "flannel.alpha.coreos.com";

/// The annotation keys, from a normalised prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub subnet_manager: String,
    pub backend_type: String,
    pub backend_data: String,
    pub backend_v6_data: String,
    pub public_ip: String,
    pub public_ipv6: String,
    pub public_ip_overwrite: String,
    pub public_ipv6_overwrite: String,
    pub node_public_ip: String,
    pub node_public_ipv6: String,
}

impl Keys {
    /// `newAnnotations`: at most one `/`; none → append `/`; then end in
    /// `/` or `-`; then `fqdn/[a-z0-9_-]*` in lower case.
    pub fn new(prefix: &str) -> Result<Keys, String> {
        static RE: OnceLock<Option<Regex>> = OnceLock::new();
        let mut p = prefix.to_string();
        match p.matches('/').count() {
            0 => p.push('/'),
            1 => {}
            _ => return Err("prefix can contain at most single slash".into()),
        }
        if !p.ends_with('/') && !p.ends_with('-') {
            p.push('-');
        }
        let ok = RE
            .get_or_init(|| Regex::new(r"(?:[a-z0-9_-]+\.)+[a-z0-9_-]+/(?:[a-z0-9_-]+-)?$").ok())
            .as_ref()
            .is_some_and(|re| re.is_match(&p));
        if !ok {
            return Err("prefix must be in a format: fqdn/[0-9a-z-_]*".into());
        }
        let k = |s: &str| format!("{p}{s}");
        Ok(Keys {
            subnet_manager: k("kube-subnet-manager"),
            backend_type: k("backend-type"),
            backend_data: k("backend-data"),
            backend_v6_data: k("backend-v6-data"),
            public_ip: k("public-ip"),
            public_ipv6: k("public-ipv6"),
            public_ip_overwrite: k("public-ip-overwrite"),
            public_ipv6_overwrite: k("public-ipv6-overwrite"),
            node_public_ip: k("node-public-ip"),
            node_public_ipv6: k("node-public-ipv6"),
        })
    }
}

/// Go's `json.Marshal` of a `json.RawMessage`: compact, `null` when unset.
fn raw_json(v: &Option<Value>) -> String {
    v.as_ref()
        .map_or_else(|| "null".to_string(), Value::to_string)
}

/// Our node's annotations after `AcquireLease` (§4.4): `None` when Go would
/// send no patch, else the full annotation map it would leave on the node.
pub fn desired(
    keys: &Keys,
    current: &BTreeMap<String, String>,
    attrs: &LeaseAttrs,
) -> Option<BTreeMap<String, String>> {
    let get = |k: &str| current.get(k).map(String::as_str).unwrap_or("");
    let bd = raw_json(&attrs.backend_data);
    let v6bd = raw_json(&attrs.backend_v6_data);
    let ip4s = attrs.public_ip.to_string();
    let group_a = get(&keys.backend_data) != bd
        || get(&keys.backend_type) != attrs.backend_type
        || get(&keys.public_ip) != ip4s
        || get(&keys.subnet_manager) != "true"
        || (!get(&keys.public_ip_overwrite).is_empty() && get(&keys.public_ip_overwrite) != ip4s);
    let group_b = attrs.public_ipv6.is_some_and(|ip6| {
        let ip6s = ip6.to_string();
        get(&keys.backend_v6_data) != v6bd
            || get(&keys.backend_type) != attrs.backend_type
            || get(&keys.public_ipv6) != ip6s
            || get(&keys.subnet_manager) != "true"
            || (!get(&keys.public_ipv6_overwrite).is_empty()
                && get(&keys.public_ipv6_overwrite) != ip6s)
    });
    if !group_a && !group_b {
        return None;
    }
    let mut new = current.clone();
    new.insert(keys.backend_type.clone(), attrs.backend_type.clone());
    let vxlan = attrs.backend_type == BACKEND_VXLAN;
    if !(vxlan && bd == "null") {
        new.insert(keys.backend_data.clone(), bd);
        let ow = get(&keys.public_ip_overwrite);
        let ip = if ow.is_empty() { ip4s } else { ow.to_string() };
        new.insert(keys.public_ip.clone(), ip);
    }
    let v6_block = match attrs.backend_type.as_str() {
        BACKEND_VXLAN => v6bd != "null",
        "wireguard" => v6bd != "null" && attrs.public_ipv6.is_some(),
        _ => attrs.public_ipv6.is_some(),
    };
    if v6_block {
        new.insert(keys.backend_v6_data.clone(), v6bd);
        let ow = get(&keys.public_ipv6_overwrite);
        let ip = if ow.is_empty() {
            attrs
                .public_ipv6
                .map_or_else(String::new, |ip| ip.to_string())
        } else {
            ow.to_string()
        };
        new.insert(keys.public_ipv6.clone(), ip);
    }
    new.insert(keys.subnet_manager.clone(), "true".into());
    Some(new)
}

/// The strategic-merge body Go's two-way merge sends (§5.1): only the keys
/// added or changed, sorted; `{}` when nothing differs.
pub fn patch_body(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> String {
    let changed: Map<String, Value> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    if changed.is_empty() {
        return "{}".into();
    }
    let mut md = Map::new();
    md.insert("annotations".into(), Value::Object(changed));
    let mut root = Map::new();
    root.insert("metadata".into(), Value::Object(md));
    Value::Object(root).to_string()
}

/// The VTEP MAC of our own `backend-data` (or `backend-v6-data`) value,
/// parsed as JSON (Go's position-based parser breaks on other layouts).
pub fn stored_mac(value: Option<&String>) -> Option<[u8; 6]> {
    let v: Value = serde_json::from_str(value?).ok()?;
    crate::lease::VxlanData::from_value(&v).map(|d| d.mac)
}

/// Our podCIDRs (§3.1, steps 2-3): `spec.podCIDR` must be set; with
/// `podCIDRs`, one per family (a later one of a family wins, like Go).
pub fn own_pod_cidrs(
    node: &str,
    pod_cidr: Option<&str>,
    pod_cidrs: &[String],
) -> Result<(Option<Ipv4Network>, Option<Ipv6Network>), String> {
    if pod_cidr.is_none_or(str::is_empty) {
        return Err(format!("node {node:?} pod cidr not assigned"));
    }
    let list: Vec<&str> = if pod_cidrs.is_empty() {
        pod_cidr.into_iter().collect()
    } else {
        pod_cidrs.iter().map(String::as_str).collect()
    };
    if list.len() > 2 {
        return Err("pod cidrs should be IPv4/IPv6 only or dualstack".into());
    }
    let (mut v4, mut v6) = (None, None);
    for c in list {
        match parse_cidr(c)? {
            IpNetwork::V4(n) => v4 = Some(n),
            IpNetwork::V6(n) => v6 = Some(n),
        }
    }
    Ok((v4, v6))
}

/// `net.ParseCIDR`: host bits masked; an IPv4-mapped address counts as v4.
fn parse_cidr(s: &str) -> Result<IpNetwork, String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let net = IpNetwork::new(ip, len).map_err(|_| bad())?;
    Ok(match net {
        IpNetwork::V4(n) => IpNetwork::V4(Ipv4Network::new(n.network(), len).map_err(|_| bad())?),
        IpNetwork::V6(n) => IpNetwork::V6(Ipv6Network::new(n.network(), len).map_err(|_| bad())?),
    })
}

/// §3.1 step 5: our podCIDRs must lie inside Network / IPv6Network; the
/// message names both.
pub fn check_contained(
    cfg: &NetConfig,
    node: &str,
    v4: Option<Ipv4Network>,
    v6: Option<Ipv6Network>,
) -> Result<(), String> {
    if let (Some(c), true) = (v4, cfg.enable_ipv4) {
        let ok = cfg
            .network
            .is_some_and(|n| n.prefix() <= c.prefix() && n.contains(c.network()));
        if !ok {
            return Err(format!(
                "subnet {:?} specified in the flannel net config doesn't contain {:?} PodCIDR of the {node:?} node",
                cfg.network.map_or(String::new(), |n| n.to_string()),
                c.to_string()
            ));
        }
    }
    if let (Some(c), true) = (v6, cfg.enable_ipv6) {
        let ok = cfg
            .ipv6_network
            .is_some_and(|n| n.prefix() <= c.prefix() && n.contains(c.network()));
        if !ok {
            return Err(format!(
                "subnet {:?} specified in the flannel net config doesn't contain {:?} IPv6 PodCIDR of the {node:?} node",
                cfg.ipv6_network.map_or(String::new(), |n| n.to_string()),
                c.to_string()
            ));
        }
    }
    Ok(())
}

/// `nodeToLease` (§3.2) for a peer whose `kube-subnet-manager` is `true`.
/// An error means the node is logged and skipped.
pub fn node_to_lease(
    keys: &Keys,
    ann: &BTreeMap<String, String>,
    pod_cidr: Option<&str>,
    pod_cidrs: &[String],
    v4: bool,
    v6: bool,
) -> Result<Lease, String> {
    let get = |k: &str| ann.get(k).map(String::as_str).unwrap_or("");
    let list: Vec<&str> = if pod_cidrs.is_empty() {
        vec![pod_cidr.unwrap_or("")]
    } else if pod_cidrs.len() > 2 {
        return Err("pod cidrs should be IPv4/IPv6 only or dualstack".into());
    } else {
        pod_cidrs.iter().map(String::as_str).collect()
    };
    let mut parsed = Vec::new();
    for c in list {
        parsed.push(parse_cidr(c)?);
    }
    let data = |k: &str, what: &str| -> Result<Option<Value>, String> {
        match ann.get(k) {
            None => Ok(None),
            Some(t) => serde_json::from_str(t)
                .map(|v: Value| (!v.is_null()).then_some(v))
                .map_err(|e| format!("invalid {what} {t:?}: {e}")),
        }
    };
    let mut attrs = LeaseAttrs {
        public_ip: Ipv4Addr::UNSPECIFIED,
        public_ipv6: None,
        backend_type: get(&keys.backend_type).to_string(),
        backend_data: None,
        backend_v6_data: None,
    };
    let mut subnet = Ipv4Network::from(Ipv4Addr::UNSPECIFIED);
    let mut ipv6_subnet = None;
    if v4 {
        let ip = get(&keys.public_ip);
        attrs.public_ip = parse_v4(ip).ok_or_else(|| format!("invalid public-ip {ip:?}"))?;
        attrs.backend_data = data(&keys.backend_data, "backend-data")?;
        subnet = parsed
            .iter()
            .find_map(|n| match n {
                IpNetwork::V4(n) => Some(*n),
                IpNetwork::V6(_) => None,
            })
            .ok_or("missing IPv4 address on n.Spec.PodCIDRs")?;
    }
    if v6 {
        let ip = get(&keys.public_ipv6);
        attrs.public_ipv6 =
            Some(parse_v6(ip).ok_or_else(|| format!("invalid public-ipv6 {ip:?}"))?);
        attrs.backend_v6_data = data(&keys.backend_v6_data, "backend-v6-data")?;
        ipv6_subnet = Some(
            parsed
                .iter()
                .find_map(|n| match n {
                    IpNetwork::V6(n) => Some(*n),
                    IpNetwork::V4(_) => None,
                })
                .ok_or("missing IPv6 address on n.Spec.PodCIDRs")?,
        );
    }
    Ok(Lease {
        subnet,
        ipv6_subnet,
        attrs,
        etcd_lease: 0,
    })
}

/// Go `net.ParseIP(s).To4()`: dotted IPv4, or IPv4-mapped IPv6.
fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    }
}

/// Go `net.ParseIP` for public-ipv6: IPv4 text is accepted (mapped).
fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(a) => Some(a.to_ipv6_mapped()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::VxlanData;

    fn keys() -> Keys {
        Keys::new(DEFAULT_PREFIX).unwrap()
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vxlan_attrs(mac6: Option<[u8; 6]>) -> LeaseAttrs {
        LeaseAttrs {
            public_ip: "192.168.10.11".parse().unwrap(),
            public_ipv6: mac6.map(|_| "2001:db8::11".parse().unwrap()),
            backend_type: "vxlan".into(),
            backend_data: Some(
                VxlanData {
                    vni: 1,
                    mac: [0x5a, 0x1e, 0x7c, 0x0b, 0x22, 0x91],
                }
                .to_value(),
            ),
            backend_v6_data: mac6.map(|mac| VxlanData { vni: 1, mac }.to_value()),
        }
    }

    #[test]
    fn prefix_normalisation() {
        let k = |p: &str| Keys::new(p).map(|k| k.backend_type);
        assert_eq!(
            k("flannel.alpha.coreos.com").unwrap(),
            "flannel.alpha.coreos.com/backend-type"
        );
        assert_eq!(
            k("flannel.alpha.coreos.com/").unwrap(),
            "flannel.alpha.coreos.com/backend-type"
        );
        assert_eq!(
            k("flannel.alpha.coreos.com/prefix").unwrap(),
            "flannel.alpha.coreos.com/prefix-backend-type"
        );
        assert_eq!(
            k("flannel.alpha.coreos.com/prefix-").unwrap(),
            "flannel.alpha.coreos.com/prefix-backend-type"
        );
        assert_eq!(k("org.com/9").unwrap(), "org.com/9-backend-type");
        for bad in ["org", "org/", "org.COM", "org.com/PREFIX"] {
            assert_eq!(
                k(bad).unwrap_err(),
                "prefix must be in a format: fqdn/[0-9a-z-_]*",
                "{bad}"
            );
        }
        assert_eq!(
            k("a.b/c/d").unwrap_err(),
            "prefix can contain at most single slash"
        );
    }

    #[test]
    fn vxlan_v4_patch_is_gos_bytes() {
        let cur = map(&[("node.alpha.kubernetes.io/ttl", "0")]);
        let new = desired(&keys(), &cur, &vxlan_attrs(None)).unwrap();
        // The example of flannel-kube.md §5.1, byte for byte.
        assert_eq!(
            patch_body(&cur, &new),
            r#"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\"VNI\":1,\"VtepMAC\":\"5a:1e:7c:0b:22:91\"}","flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"192.168.10.11"}}}"#
        );
        // A second start with the same attributes sends nothing.
        assert_eq!(desired(&keys(), &new, &vxlan_attrs(None)), None);
    }

    #[test]
    fn dual_stack_writes_six_keys_and_overwrite_wins() {
        let mut cur = map(&[(
            "flannel.alpha.coreos.com/public-ip-overwrite",
            "203.0.113.7",
        )]);
        let new = desired(
            &keys(),
            &cur,
            &vxlan_attrs(Some([0xae, 0x41, 2, 0x9d, 0x10, 0x3c])),
        )
        .unwrap();
        assert_eq!(new["flannel.alpha.coreos.com/public-ip"], "203.0.113.7");
        assert_eq!(new["flannel.alpha.coreos.com/public-ipv6"], "2001:db8::11");
        assert_eq!(
            new["flannel.alpha.coreos.com/backend-v6-data"],
            r#"{"VNI":1,"VtepMAC":"ae:41:02:9d:10:3c"}"#
        );
        assert_eq!(new.len(), 7);
        // With an overwrite, Go patches on every start (the public-ip differs from the detected one).
        cur = new.clone();
        assert!(desired(
            &keys(),
            &cur,
            &vxlan_attrs(Some([0xae, 0x41, 2, 0x9d, 0x10, 0x3c]))
        )
        .is_some());
        assert_eq!(patch_body(&cur, &cur), "{}");
    }

    #[test]
    fn host_gw_writes_null_backend_data() {
        let attrs = LeaseAttrs {
            public_ip: "10.99.0.1".parse().unwrap(),
            public_ipv6: None,
            backend_type: "host-gw".into(),
            backend_data: None,
            backend_v6_data: None,
        };
        let new = desired(&keys(), &BTreeMap::new(), &attrs).unwrap();
        assert_eq!(new["flannel.alpha.coreos.com/backend-data"], "null");
        assert!(!new.contains_key("flannel.alpha.coreos.com/backend-v6-data"));
    }

    #[test]
    fn stored_mac_reads_our_annotation() {
        let v = r#"{"VNI":1,"VtepMAC":"5a:1e:7c:0b:22:91"}"#.to_string();
        assert_eq!(
            stored_mac(Some(&v)),
            Some([0x5a, 0x1e, 0x7c, 0x0b, 0x22, 0x91])
        );
        assert_eq!(stored_mac(Some(&"null".to_string())), None);
        assert_eq!(
            stored_mac(Some(&r#"{"VNI":1,"VtepMAC":"zz"}"#.to_string())),
            None
        );
        assert_eq!(stored_mac(None), None);
    }

    #[test]
    fn own_pod_cidrs_rules() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            own_pod_cidrs("n1", None, &[]).unwrap_err(),
            r#"node "n1" pod cidr not assigned"#
        );
        let (v4, v6) = own_pod_cidrs("n1", Some("10.244.3.7/24"), &[]).unwrap();
        assert_eq!(
            (v4.unwrap().to_string(), v6),
            ("10.244.3.0/24".to_string(), None)
        );
        let (v4, v6) = own_pod_cidrs(
            "n1",
            Some("10.244.3.0/24"),
            &s(&["10.244.3.0/24", "fd00:10:244:3::/64"]),
        )
        .unwrap();
        assert_eq!(v4.unwrap().to_string(), "10.244.3.0/24");
        assert_eq!(v6.unwrap().to_string(), "fd00:10:244:3::/64");
        assert!(own_pod_cidrs(
            "n1",
            Some("a"),
            &s(&["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"])
        )
        .is_err());
        assert!(own_pod_cidrs("n1", Some("bogus"), &[]).is_err());
    }

    #[test]
    fn containment_names_both() {
        let cfg =
            NetConfig::parse(r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#).unwrap();
        assert!(check_contained(&cfg, "n1", Some("10.244.3.0/24".parse().unwrap()), None).is_ok());
        let e =
            check_contained(&cfg, "n1", Some("10.99.3.0/24".parse().unwrap()), None).unwrap_err();
        assert_eq!(
            e,
            r#"subnet "10.244.0.0/16" specified in the flannel net config doesn't contain "10.99.3.0/24" PodCIDR of the "n1" node"#
        );
        assert!(check_contained(&cfg, "n1", Some("10.0.0.0/8".parse().unwrap()), None).is_err());
    }

    #[test]
    fn peers_from_go_annotations_and_bad_input() {
        let k = keys();
        let good = map(&[
            ("flannel.alpha.coreos.com/kube-subnet-manager", "true"),
            ("flannel.alpha.coreos.com/backend-type", "vxlan"),
            (
                "flannel.alpha.coreos.com/backend-data",
                r#"{"VNI":1,"VtepMAC":"5a:1e:7c:0b:22:91"}"#,
            ),
            ("flannel.alpha.coreos.com/public-ip", "192.168.10.12"),
        ]);
        let l = node_to_lease(&k, &good, Some("10.244.2.0/24"), &[], true, false).unwrap();
        assert_eq!(l.subnet.to_string(), "10.244.2.0/24");
        assert_eq!(l.attrs.public_ip.to_string(), "192.168.10.12");
        assert_eq!(
            l.attrs.vxlan().map(|d| d.mac),
            Some([0x5a, 0x1e, 0x7c, 0x0b, 0x22, 0x91])
        );
        let with = |key: &str, v: &str| {
            let mut m = good.clone();
            m.insert(key.into(), v.into());
            m
        };
        let bad_ip = with("flannel.alpha.coreos.com/public-ip", "not-an-ip");
        assert!(node_to_lease(&k, &bad_ip, Some("10.244.2.0/24"), &[], true, false).is_err());
        let bad_json = with("flannel.alpha.coreos.com/backend-data", "{\"VNI\":1,");
        assert!(node_to_lease(&k, &bad_json, Some("10.244.2.0/24"), &[], true, false).is_err());
        // A bad MAC parses as a lease whose vxlan data is unusable: the backend skips it.
        let bad_mac = with(
            "flannel.alpha.coreos.com/backend-data",
            r#"{"VNI":1,"VtepMAC":"zz"}"#,
        );
        let l = node_to_lease(&k, &bad_mac, Some("10.244.2.0/24"), &[], true, false).unwrap();
        assert_eq!(l.attrs.vxlan(), None);
        // No podCIDR, or no v6 one in dual stack: skipped.
        assert!(node_to_lease(&k, &good, None, &[], true, false).is_err());
        assert!(node_to_lease(&k, &good, Some("10.244.2.0/24"), &[], true, true).is_err());
    }
}
