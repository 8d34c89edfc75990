//! Subnet leases as flannel stores them in etcd (`pkg/lease/lease.go`,
//! `pkg/subnet/subnet.go`): the key `<prefix>/subnets/<a.b.c.d>-<len>`
//! (`&<ipv6>-<len>` appended in dual stack) and the value, the JSON of Go's
//! `LeaseAttrs`, byte for byte as `json.Marshal` writes it:
//!
//! `{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}`

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use ipnetwork::{Ipv4Network, Ipv6Network};
use regex::Regex;
use serde_json::{Map, Value};

/// The attributes a node publishes for its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAttrs {
    pub public_ip: Ipv4Addr,
    pub public_ipv6: Option<Ipv6Addr>,
    /// `BackendType` ("vxlan", "host-gw"); omitted from the JSON when empty.
    pub backend_type: String,
    /// `BackendData`, kept as parsed JSON (Go's `json.RawMessage`).
    pub backend_data: Option<Value>,
    pub backend_v6_data: Option<Value>,
}

/// The VXLAN backend's `BackendData`: `{"VNI":1,"VtepMAC":"…"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanData {
    pub vni: u32,
    pub mac: [u8; 6],
}

impl VxlanData {
    pub fn to_value(self) -> Value {
        let mut m = Map::new();
        m.insert("VNI".into(), Value::from(self.vni));
        m.insert(
            "VtepMAC".into(),
            Value::from(weft_netlink::mac_to_string(&self.mac)),
        );
        Value::Object(m)
    }

    /// Case-insensitive, like Go's json.Unmarshal into `vxlanLeaseAttrs`.
    pub fn from_value(v: &Value) -> Option<VxlanData> {
        let obj = v.as_object()?;
        let mut vni = 0;
        let mut mac = None;
        for (k, v) in obj {
            match k.to_ascii_lowercase().as_str() {
                "vni" => vni = u32::try_from(v.as_u64()?).ok()?,
                "vtepmac" => mac = weft_netlink::parse_mac(v.as_str()?),
                _ => {}
            }
        }
        Some(VxlanData { vni, mac: mac? })
    }
}

impl LeaseAttrs {
    /// Go's `json.Marshal(&LeaseAttrs{...})`: fields in declaration order,
    /// `PublicIPv6` always present (`null` when unset), the backend fields
    /// only when set. serde_json's compact output matches Go's.
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("PublicIP".into(), Value::from(self.public_ip.to_string()));
        m.insert(
            "PublicIPv6".into(),
            self.public_ipv6
                .map_or(Value::Null, |ip| Value::from(ip.to_string())),
        );
        if !self.backend_type.is_empty() {
            m.insert("BackendType".into(), Value::from(self.backend_type.clone()));
        }
        if let Some(d) = &self.backend_data {
            m.insert("BackendData".into(), d.clone());
        }
        if let Some(d) = &self.backend_v6_data {
            m.insert("BackendV6Data".into(), d.clone());
        }
        Value::Object(m).to_string()
    }

    /// Parse a lease value written by flannel (Go or weft). Keys match
    /// case-insensitively, as in Go.
    pub fn parse(text: &[u8]) -> Result<LeaseAttrs, String> {
        let v: Value =
            serde_json::from_slice(text).map_err(|e| format!("invalid lease JSON: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| "invalid lease JSON: not an object".to_string())?;
        let mut a = LeaseAttrs {
            public_ip: Ipv4Addr::UNSPECIFIED,
            public_ipv6: None,
            backend_type: String::new(),
            backend_data: None,
            backend_v6_data: None,
        };
        for (k, v) in obj {
            if v.is_null() {
                continue;
            }
            match k.to_ascii_lowercase().as_str() {
                "publicip" => {
                    a.public_ip = v
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("invalid PublicIP {v}"))?
                }
                "publicipv6" => {
                    a.public_ipv6 = Some(
                        v.as_str()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| format!("invalid PublicIPv6 {v}"))?,
                    )
                }
                "backendtype" => a.backend_type = v.as_str().unwrap_or_default().to_string(),
                "backenddata" => a.backend_data = Some(v.clone()),
                "backendv6data" => a.backend_v6_data = Some(v.clone()),
                _ => {}
            }
        }
        Ok(a)
    }

    pub fn vxlan(&self) -> Option<VxlanData> {
        self.backend_data.as_ref().and_then(VxlanData::from_value)
    }

    pub fn vxlan_v6(&self) -> Option<VxlanData> {
        self.backend_v6_data
            .as_ref()
            .and_then(VxlanData::from_value)
    }
}

/// A subnet lease: the key's subnets plus the value's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub subnet: Ipv4Network,
    pub ipv6_subnet: Option<Ipv6Network>,
    pub attrs: LeaseAttrs,
    /// The etcd lease the key is attached to (0: none, a "reservation").
    pub etcd_lease: i64,
}

impl Lease {
    pub fn key(&self) -> String {
        make_subnet_key(self.subnet, self.ipv6_subnet)
    }
}

/// `subnet.MakeSubnetKey`: `10.5.52.0-24`, or `10.5.52.0-24&fc00:0:0:34::-64`.
pub fn make_subnet_key(sn: Ipv4Network, sn6: Option<Ipv6Network>) -> String {
    let mut key = format!("{}-{}", sn.ip(), sn.prefix());
    if let Some(sn6) = sn6 {
        key.push_str(&format!("&{}-{}", sn6.ip(), sn6.prefix()));
    }
    key
}

/// `subnet.ParseSubnetKey`: the same (unanchored) regex as Go, so a full
/// etcd key parses too. The v4 prefix must fit in 5 bits, the v6 one in 7
/// (Go's `strconv.ParseUint(.., 10, 5/7)`).
pub fn parse_subnet_key(s: &str) -> Option<(Ipv4Network, Option<Ipv6Network>)> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| Regex::new(r"(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$").ok())
        .as_ref()?;
    let caps = re.captures(s)?;
    let ip: Ipv4Addr = caps.get(1)?.as_str().parse().ok()?;
    let plen: u8 = caps.get(2)?.as_str().parse().ok().filter(|p| *p < 32)?;
    let sn = Ipv4Network::new(ip, plen).ok()?;
    let sn6 = match (caps.get(3), caps.get(4)) {
        (Some(ip6), Some(plen6)) => {
            let ip6: Ipv6Addr = ip6.as_str().parse().ok()?;
            let plen6: u8 = plen6.as_str().parse().ok().filter(|p| *p < 128)?;
            Some(Ipv6Network::new(ip6, plen6).ok()?)
        }
        _ => None,
    };
    Some((sn, sn6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vxlan_attrs() -> LeaseAttrs {
        LeaseAttrs {
            public_ip: "192.168.64.3".parse().unwrap(),
            public_ipv6: None,
            backend_type: "vxlan".into(),
            backend_data: Some(
                VxlanData {
                    vni: 1,
                    mac: [0xc6, 0xd2, 0x32, 0x6f, 0x8f, 0x44],
                }
                .to_value(),
            ),
            backend_v6_data: None,
        }
    }

    #[test]
    fn json_is_byte_identical_to_go() {
        assert_eq!(
            vxlan_attrs().to_json(),
            r#"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}"#
        );
        let hostgw = LeaseAttrs {
            backend_type: "host-gw".into(),
            backend_data: None,
            ..vxlan_attrs()
        };
        assert_eq!(
            hostgw.to_json(),
            r#"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"host-gw"}"#
        );
        let dual = LeaseAttrs {
            public_ipv6: Some("fd00::3".parse().unwrap()),
            backend_v6_data: vxlan_attrs().backend_data,
            ..vxlan_attrs()
        };
        assert_eq!(
            dual.to_json(),
            r#"{"PublicIP":"192.168.64.3","PublicIPv6":"fd00::3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}"#
        );
    }

    #[test]
    fn parse_round_trip_and_case() {
        let a = vxlan_attrs();
        assert_eq!(LeaseAttrs::parse(a.to_json().as_bytes()).unwrap(), a);
        let b = LeaseAttrs::parse(
            br#"{"publicip":"10.0.0.2","backendtype":"vxlan","backenddata":{"vni":1,"vtepmac":"0a:0b:0c:0d:0e:0f"}}"#,
        )
        .unwrap();
        assert_eq!(b.public_ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            b.vxlan(),
            Some(VxlanData {
                vni: 1,
                mac: [10, 11, 12, 13, 14, 15]
            })
        );
        assert!(LeaseAttrs::parse(b"{\"PublicIP\":\"x\"}").is_err());
        assert!(LeaseAttrs::parse(b"nope").is_err());
    }

    #[test]
    fn subnet_keys() {
        let sn: Ipv4Network = "10.5.52.0/24".parse().unwrap();
        assert_eq!(make_subnet_key(sn, None), "10.5.52.0-24");
        let sn6: Ipv6Network = "fc00:0:0:34::/64".parse().unwrap();
        assert_eq!(
            make_subnet_key(sn, Some(sn6)),
            "10.5.52.0-24&fc00:0:0:34::-64"
        );
        assert_eq!(
            parse_subnet_key("/coreos.com/network/subnets/10.5.52.0-24"),
            Some((sn, None))
        );
        assert_eq!(
            parse_subnet_key("10.5.52.0-24&fc00:0:0:34::-64"),
            Some((sn, Some(sn6)))
        );
        assert_eq!(parse_subnet_key("/coreos.com/network/config"), None);
        assert_eq!(parse_subnet_key("10.5.52.0-32"), None);
        assert_eq!(parse_subnet_key("10.5.300.0-24"), None);
    }
}
