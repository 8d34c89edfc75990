//! The bridge plugin's network configuration: every key the Go v1.9 plugin reads.
//!
//! Keys are read one by one from the JSON object rather than through a derived struct so that
//! (a) a value of the wrong type gives an error that names its key, and (b) keys match
//! case-insensitively after an exact match, as Go's encoding/json does (a Go-era config that
//! spells `isgateway` keeps working).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use weft_cni_core::{parse_cni_args, CniError, Dns, Result};

pub const DEFAULT_BRIDGE: &str = "cni0";

/// Largest MTU a veth or bridge accepts (ETH_MAX_MTU); 68 is the IPv4 minimum.
const MTU_RANGE: std::ops::RangeInclusive<i64> = 68..=65535;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Iptables,
    Nftables,
}

#[derive(Debug, Clone)]
pub struct BridgeConf {
    pub cni_version: String,
    pub name: String,
    pub bridge: String,
    pub is_gateway: bool,
    pub is_default_gateway: bool,
    pub force_address: bool,
    pub ip_masq: bool,
    pub ip_masq_backend: Option<String>,
    pub mtu: Option<u32>,
    pub hairpin_mode: bool,
    pub promisc_mode: bool,
    pub vlan: u16,
    /// Tagged VLANs from `vlanTrunk`, sorted and deduplicated.
    pub vlan_trunk: Vec<u16>,
    pub preserve_default_vlan: bool,
    pub mac_spoof_chk: bool,
    pub enable_dad: bool,
    pub disable_container_interface: bool,
    pub port_isolation: bool,
    /// The IPAM plugin type; None means layer 2 only (`"ipam": {}` or no ipam).
    pub ipam_type: Option<String>,
    pub dns: Option<Dns>,
    /// Requested container MAC: CNI_ARGS MAC=, then args.cni.mac, then runtimeConfig.mac.
    pub mac: Option<[u8; 6]>,
    pub prev_result: Option<Value>,
}

impl BridgeConf {
    pub fn is_layer3(&self) -> bool {
        self.ipam_type.is_some()
    }

    pub fn vlan_filtering(&self) -> bool {
        self.vlan != 0 || !self.vlan_trunk.is_empty()
    }
}

/// A JSON object whose keys are looked up exactly first, then case-insensitively.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    context: &'a str,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, context: &'a str) -> Self {
        Fields { map, context }
    }

    /// Go's key matching: exact or case-insensitive, the last matching key
    /// in the document winning (cni-core's one reader for it).
    fn raw(&self, key: &str) -> Option<&'a Value> {
        weft_cni_core::gojson::field(self.map, key)
    }

    fn path(&self, key: &str) -> String {
        if self.context.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.context, key)
        }
    }

    /// The value of `key` as T; a missing key or JSON null gives None.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.raw(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::deserialize(v).map(Some).map_err(|e| {
                CniError::InvalidConfig(format!(
                    "invalid value {} for \"{}\": {}",
                    short(v),
                    self.path(key),
                    e
                ))
            }),
        }
    }

    /// A boolean that, like libcni's conflist booleans, also accepts "true"/"false" strings.
    pub fn flag(&self, key: &str) -> Result<bool> {
        match self.raw(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(CniError::InvalidConfig(format!(
                "invalid value {} for \"{}\": expected a boolean",
                short(v),
                self.path(key)
            ))),
        }
    }

    pub fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>> {
        match self.raw(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(CniError::InvalidConfig(format!(
                "invalid value {} for \"{}\": expected an object",
                short(v),
                self.path(key)
            ))),
        }
    }
}

/// A value shortened for an error message, so a hostile megabyte string is not echoed back.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 64 {
        let mut cut = 64;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

pub fn parse_mac(s: &str, field: &str) -> Result<[u8; 6]> {
    let bad = || CniError::InvalidConfig(format!("invalid MAC address {s:?} in {field}"));
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in mac.iter_mut() {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses and validates the bridge configuration from stdin and CNI_ARGS.
pub fn load(stdin: &[u8], cni_args: &str) -> Result<BridgeConf> {
    let value: Value = serde_json::from_slice(stdin)
        .map_err(|e| CniError::Decode(format!("failed to load netconf: {e}")))?;
    let Value::Object(map) = value else {
        return Err(CniError::Decode(
            "failed to load netconf: the network configuration must be a JSON object".into(),
        ));
    };
    let f = Fields::new(&map, "");

    let mtu = match f.get::<i64>("mtu")? {
        None | Some(0) => None,
        Some(m) if MTU_RANGE.contains(&m) => Some(m as u32),
        Some(m) => {
            return Err(CniError::InvalidConfig(format!(
                "invalid MTU {m} in \"mtu\" (must be between {} and {}, or 0 for the default)",
                MTU_RANGE.start(),
                MTU_RANGE.end()
            )))
        }
    };
    let vlan = match f.get::<i64>("vlan")?.unwrap_or(0) {
        v @ 0..=4094 => v as u16,
        v => {
            return Err(CniError::InvalidConfig(format!(
                "invalid VLAN ID {v} (must be between 0 and 4094)"
            )))
        }
    };
    let vlan_trunk = match f.get::<Vec<Value>>("vlanTrunk")? {
        Some(items) => collect_vlan_trunk(&items)?,
        None => Vec::new(),
    };
    // Since Go v1.8.0, `vlan` with `vlanTrunk` is the native (untagged) VLAN of a trunk port.

    let ipam_type = match f.object("ipam")? {
        Some(ipam) => Fields::new(ipam, "ipam")
            .get::<String>("type")?
            .filter(|t| !t.is_empty()),
        None => None,
    };

    let is_default_gateway = f.flag("isDefaultGateway")?;
    let conf = BridgeConf {
        cni_version: f
            .get::<String>("cniVersion")?
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "0.1.0".to_string()),
        name: f.get("name")?.unwrap_or_default(),
        bridge: f
            .get::<String>("bridge")?
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| DEFAULT_BRIDGE.to_string()),
        is_gateway: f.flag("isGateway")? || is_default_gateway,
        is_default_gateway,
        force_address: f.flag("forceAddress")?,
        ip_masq: f.flag("ipMasq")?,
        ip_masq_backend: f.get::<String>("ipMasqBackend")?.filter(|b| !b.is_empty()),
        mtu,
        hairpin_mode: f.flag("hairpinMode")?,
        promisc_mode: f.flag("promiscMode")?,
        vlan,
        vlan_trunk,
        preserve_default_vlan: f.flag("preserveDefaultVlan")?,
        mac_spoof_chk: f.flag("macspoofchk")?,
        enable_dad: f.flag("enabledad")?,
        disable_container_interface: f.flag("disableContainerInterface")?,
        port_isolation: f.flag("portIsolation")?,
        ipam_type,
        dns: f.get("dns")?,
        mac: requested_mac(&f, cni_args)?,
        prev_result: f.get("prevResult")?,
    };
    validate_names(&conf)?;
    if conf.hairpin_mode && conf.promisc_mode {
        return Err(CniError::InvalidConfig(
            "cannot set hairpin mode and promiscuous mode at the same time".into(),
        ));
    }
    if conf.disable_container_interface && conf.is_layer3() {
        return Err(CniError::InvalidConfig(
            "cannot use IPAM when 'disableContainerInterface' flag is set".into(),
        ));
    }
    if let Some(b) = &conf.ip_masq_backend {
        if b != "iptables" && b != "nftables" {
            return Err(CniError::InvalidConfig(format!(
                "unknown ipMasqBackend {b:?} (must be \"iptables\" or \"nftables\")"
            )));
        }
    }
    Ok(conf)
}

/// Bridge names are interface names: 1-15 bytes, no '/', ':' or whitespace.
fn validate_names(conf: &BridgeConf) -> Result<()> {
    let b = &conf.bridge;
    let bad = b.len() > 15
        || b == "."
        || b == ".."
        || b.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(CniError::InvalidConfig(format!(
            "invalid bridge name {b:?} in \"bridge\": must be 1-15 characters without '/', ':' or whitespace"
        )));
    }
    if conf.vlan != 0 && format!("{b}.{}", conf.vlan).len() > 15 && conf.is_gateway {
        return Err(CniError::InvalidConfig(format!(
            "bridge name {b:?} is too long for its VLAN gateway interface \"{b}.{}\"",
            conf.vlan
        )));
    }
    Ok(())
}

fn requested_mac(f: &Fields, cni_args: &str) -> Result<Option<[u8; 6]>> {
    let mut mac: Option<String> = None;
    if !cni_args.is_empty() {
        let args = parse_cni_args(cni_args, &["MAC"])?;
        if let Some(m) = args.get("MAC").filter(|m| !m.is_empty()) {
            mac = Some(m.clone());
        }
    }
    if let Some(args) = f.object("args")? {
        if let Some(cni) = Fields::new(args, "args").object("cni")? {
            if let Some(m) = Fields::new(cni, "args.cni")
                .get::<String>("mac")?
                .filter(|m| !m.is_empty())
            {
                mac = Some(m);
            }
        }
    }
    if let Some(rc) = f.object("runtimeConfig")? {
        if let Some(m) = Fields::new(rc, "runtimeConfig")
            .get::<String>("mac")?
            .filter(|m| !m.is_empty())
        {
            mac = Some(m);
        }
    }
    mac.map(|m| parse_mac(&m, "the requested container MAC"))
        .transpose()
}

/// `vlanTrunk`: a list of `{"id": N}` or `{"minID": A, "maxID": B}`, with Go's error strings.
fn collect_vlan_trunk(items: &[Value]) -> Result<Vec<u16>> {
    let mut vids = BTreeSet::new();
    for item in items {
        let Value::Object(m) = item else {
            return Err(CniError::InvalidConfig(format!(
                "invalid vlanTrunk entry {}: expected an object",
                short(item)
            )));
        };
        let f = Fields::new(m, "vlanTrunk");
        let min = f.get::<i64>("minID")?;
        let max = f.get::<i64>("maxID")?;
        match (min, max) {
            (Some(min), Some(max)) => {
                if min <= 0 || min > 4094 {
                    return Err(CniError::InvalidConfig(
                        "incorrect trunk minID parameter".into(),
                    ));
                }
                if max <= 0 || max > 4094 {
                    return Err(CniError::InvalidConfig(
                        "incorrect trunk maxID parameter".into(),
                    ));
                }
                if max < min {
                    return Err(CniError::InvalidConfig(
                        "minID is greater than maxID in trunk parameter".into(),
                    ));
                }
                vids.extend((min..=max).map(|v| v as u16));
            }
            (None, Some(_)) => {
                return Err(CniError::InvalidConfig(
                    "minID and maxID should be configured simultaneously, minID is missing".into(),
                ))
            }
            (Some(_), None) => {
                return Err(CniError::InvalidConfig(
                    "minID and maxID should be configured simultaneously, maxID is missing".into(),
                ))
            }
            (None, None) => {}
        }
        if let Some(id) = f.get::<i64>("id")? {
            if id <= 0 || id > 4094 {
                return Err(CniError::InvalidConfig(
                    "incorrect trunk id parameter".into(),
                ));
            }
            vids.insert(id as u16);
        }
    }
    Ok(vids.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(s: &str) -> Result<BridgeConf> {
        load(s.as_bytes(), "")
    }

    #[test]
    fn defaults() {
        let c = load_str(r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#).unwrap();
        assert_eq!(c.bridge, "cni0");
        assert!(!c.is_gateway && !c.ip_masq && !c.is_layer3());
        assert_eq!(c.mtu, None);
        assert!(!c.preserve_default_vlan);
    }

    #[test]
    fn default_gateway_implies_gateway_and_keys_are_case_insensitive() {
        let c = load_str(
            r#"{"name":"n","IsDefaultGateway":true,"BRIDGE":"br9","ipam":{"type":"host-local"}}"#,
        )
        .unwrap();
        assert!(c.is_gateway && c.is_default_gateway);
        assert_eq!(c.bridge, "br9");
        assert_eq!(c.ipam_type.as_deref(), Some("host-local"));
    }

    /// Go's decoder assigns keys in document order, so the last key that
    /// matches a field wins, exactly matching or not (an exact key used to
    /// win here).
    #[test]
    fn the_last_matching_key_wins_as_in_go() {
        let c = load_str(r#"{"name":"n","mtu":1400,"MTU":1500}"#).unwrap();
        assert_eq!(c.mtu, Some(1500));
        let c = load_str(r#"{"name":"n","MTU":1500,"mtu":1400}"#).unwrap();
        assert_eq!(c.mtu, Some(1400));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = load_str(r#"{"name":"n","mtu":"big"}"#).unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(e.msg().contains("\"mtu\""), "{}", e.msg());
        let e = load_str(r#"{"name":"n","ipam":{"type":5}}"#).unwrap_err();
        assert!(e.msg().contains("ipam.type"), "{}", e.msg());
    }

    #[test]
    fn ranges() {
        assert!(load_str(r#"{"name":"n","mtu":70000}"#)
            .unwrap_err()
            .msg()
            .contains("mtu"));
        assert!(load_str(r#"{"name":"n","mtu":-1}"#).is_err());
        assert_eq!(
            load_str(r#"{"name":"n","vlan":5000}"#).unwrap_err().msg(),
            "invalid VLAN ID 5000 (must be between 0 and 4094)"
        );
        assert!(load_str(r#"{"name":"n","hairpinMode":true,"promiscMode":true}"#).is_err());
        assert!(load_str(r#"{"name":"n","bridge":"a-very-long-bridge-name"}"#).is_err());
        assert!(load_str("[1]").unwrap_err().code() == 6);
        assert!(load_str("{").unwrap_err().code() == 6);
    }

    #[test]
    fn trunk() {
        let c = load_str(
            r#"{"name":"n","vlanTrunk":[{"id":101},{"minID":200,"maxID":203},{"id":101}]}"#,
        )
        .unwrap();
        assert_eq!(c.vlan_trunk, vec![101, 200, 201, 202, 203]);
        assert!(c.vlan_filtering());
        let err = |s: &str| load_str(s).unwrap_err().msg();
        assert_eq!(
            err(r#"{"name":"n","vlanTrunk":[{"id":0}]}"#),
            "incorrect trunk id parameter"
        );
        assert_eq!(
            err(r#"{"name":"n","vlanTrunk":[{"minID":0,"maxID":3}]}"#),
            "incorrect trunk minID parameter"
        );
        assert_eq!(
            err(r#"{"name":"n","vlanTrunk":[{"minID":3,"maxID":5000}]}"#),
            "incorrect trunk maxID parameter"
        );
        assert_eq!(
            err(r#"{"name":"n","vlanTrunk":[{"minID":5,"maxID":3}]}"#),
            "minID is greater than maxID in trunk parameter"
        );
        assert_eq!(
            err(r#"{"name":"n","vlanTrunk":[{"maxID":3}]}"#),
            "minID and maxID should be configured simultaneously, minID is missing"
        );
        // Go v1.8.0+: vlan is the trunk port's native VLAN.
        let c = load_str(r#"{"name":"n","vlan":5,"vlanTrunk":[{"id":3},{"minID":7,"maxID":8}]}"#)
            .unwrap();
        assert_eq!((c.vlan, c.vlan_trunk.clone()), (5, vec![3, 7, 8]));
        assert!(c.vlan_filtering());
    }

    #[test]
    fn mac_precedence() {
        let s = r#"{"name":"n","args":{"cni":{"mac":"02:00:00:00:00:02"}},"runtimeConfig":{"mac":"02:00:00:00:00:03"}}"#;
        let c = load(s.as_bytes(), "IgnoreUnknown=1;MAC=02:00:00:00:00:01").unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 3]));
        let c = load(r#"{"name":"n"}"#.as_bytes(), "MAC=02:00:00:00:00:01").unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(load(r#"{"name":"n"}"#.as_bytes(), "MAC=zz").is_err());
    }

    #[test]
    fn ipam_empty_is_layer2() {
        let c = load_str(r#"{"name":"n","ipam":{}}"#).unwrap();
        assert!(!c.is_layer3());
        assert!(load_str(
            r#"{"name":"n","disableContainerInterface":true,"ipam":{"type":"host-local"}}"#
        )
        .is_err());
    }
}
