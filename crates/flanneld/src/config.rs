//! The network configuration (`<prefix>/config` in etcd, or the
//! `--net-config-path` file), parsed and checked like flannel's
//! `pkg/subnet/config.go` (`ParseConfig` + `CheckNetworkConfig`).
//!
//! Go's `encoding/json` matches object keys case-insensitively (flannel's own
//! tests use `"network"`), so keys are matched after ASCII lower-casing, and
//! a `null` value leaves the default in place, as in Go. Every error names the
//! key and the value it rejects.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnetwork::{Ipv4Network, Ipv6Network};
use serde_json::{Map, Value};

/// The backends weft implements.
pub const BACKEND_VXLAN: &str = "vxlan";
pub const BACKEND_HOST_GW: &str = "host-gw";

/// `Backend` of the network config, with the VXLAN keys of
/// `pkg/backend/vxlan/vxlan.go` (host-gw only reads `Type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// `Type`; Go uses "udp" when the whole `Backend` object is missing.
    pub kind: String,
    pub vni: u32,
    /// 0: the kernel's default port (8472).
    pub port: u16,
    /// 0: the external interface's MTU.
    pub mtu: u32,
    pub gbp: bool,
    pub learning: bool,
    pub direct_routing: bool,
    /// `DisableTxChecksumOffload` (weft only, vxlan): turn the device's
    /// `tx-checksum-ip-generic` off, the workaround of flannel#2152 for
    /// VXLAN packets with bad checksums (NICs or kernels that get the
    /// offload of the inner checksum wrong). Re-applied when the device is
    /// recreated.
    pub disable_tx_checksum_offload: bool,
}

impl Default for BackendConfig {
    fn default() -> BackendConfig {
        BackendConfig {
            kind: "udp".into(),
            vni: 1,
            port: 0,
            mtu: 0,
            gbp: false,
            learning: false,
            direct_routing: false,
            disable_tx_checksum_offload: false,
        }
    }
}

/// A parsed and checked network config. After [`NetConfig::parse`] the
/// subnet ranges are filled in with flannel's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub enable_ipv4: bool,
    pub enable_ipv6: bool,
    pub enable_nftables: bool,
    pub network: Option<Ipv4Network>,
    pub ipv6_network: Option<Ipv6Network>,
    pub subnet_len: u8,
    pub subnet_min: Ipv4Addr,
    pub subnet_max: Ipv4Addr,
    pub ipv6_subnet_len: u8,
    pub ipv6_subnet_min: Ipv6Addr,
    pub ipv6_subnet_max: Ipv6Addr,
    pub backend: BackendConfig,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            enable_ipv4: true,
            enable_ipv6: false,
            enable_nftables: false,
            network: None,
            ipv6_network: None,
            subnet_len: 0,
            subnet_min: Ipv4Addr::UNSPECIFIED,
            subnet_max: Ipv4Addr::UNSPECIFIED,
            ipv6_subnet_len: 0,
            ipv6_subnet_min: Ipv6Addr::UNSPECIFIED,
            ipv6_subnet_max: Ipv6Addr::UNSPECIFIED,
            backend: BackendConfig::default(),
        }
    }
}

type Result<T> = std::result::Result<T, String>;

impl NetConfig {
    /// Parse and check a config document.
    pub fn parse(text: &str) -> Result<NetConfig> {
        let mut cfg = NetConfig::parse_keys(text)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Parse a config for the Kubernetes subnet manager: as Go's
    /// `ParseConfig` in kube mode, without `CheckNetworkConfig` (the
    /// `Subnet*` keys allocate etcd leases; in kube mode the subnets are
    /// the nodes' podCIDRs, checked against Network when our lease is taken).
    pub fn parse_kube(text: &str) -> Result<NetConfig> {
        let cfg =
            NetConfig::parse_keys(text).map_err(|e| format!("error parsing subnet config: {e}"))?;
        if !cfg.enable_ipv4 && !cfg.enable_ipv6 {
            return Err("none defined stack: EnableIPv4 and EnableIPv6 are both false".into());
        }
        Ok(cfg)
    }

    /// The keys of a config document (case-insensitive, unknown ones
    /// ignored), without the range checks.
    fn parse_keys(text: &str) -> Result<NetConfig> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("invalid network config JSON: {e}"))?;
        let Value::Object(obj) = value else {
            return Err(format!(
                "invalid network config: expected a JSON object, got {}",
                kind_of(&value)
            ));
        };
        let mut cfg = NetConfig::default();
        for (key, value) in &obj {
            if value.is_null() {
                continue;
            }
            cfg.set_key(key, value)?;
        }
        Ok(cfg)
    }

    fn set_key(&mut self, key: &str, v: &Value) -> Result<()> {
        match key.to_ascii_lowercase().as_str() {
            "enableipv4" => self.enable_ipv4 = boolean(key, v)?,
            "enableipv6" => self.enable_ipv6 = boolean(key, v)?,
            "enablenftables" => self.enable_nftables = boolean(key, v)?,
            "network" => self.network = Some(v4_cidr(key, v)?),
            "ipv6network" => self.ipv6_network = Some(v6_cidr(key, v)?),
            "subnetlen" => self.subnet_len = prefix_len(key, v)?,
            "subnetmin" => self.subnet_min = v4_addr(key, v)?,
            "subnetmax" => self.subnet_max = v4_addr(key, v)?,
            "ipv6subnetlen" => self.ipv6_subnet_len = prefix_len(key, v)?,
            "ipv6subnetmin" => self.ipv6_subnet_min = v6_addr(key, v)?,
            "ipv6subnetmax" => self.ipv6_subnet_max = v6_addr(key, v)?,
            "backend" => self.backend = parse_backend(key, v)?,
            // Go ignores unknown keys (Networks, IPv6Networks, ...).
            _ => {}
        }
        Ok(())
    }

    /// `CheckNetworkConfig`: defaults for SubnetLen/Min/Max and range checks.
    fn check(&mut self) -> Result<()> {
        if !self.enable_ipv4 && !self.enable_ipv6 {
            return Err(
                "network config enables neither IPv4 nor IPv6 (EnableIPv4 is false)".into(),
            );
        }
        if self.enable_ipv4 {
            self.check_v4()?;
        }
        if self.enable_ipv6 {
            self.check_v6()?;
        }
        Ok(())
    }

    fn check_v4(&mut self) -> Result<()> {
        let Some(net) = self.network else {
            return Err(
                "please define a correct Network parameter in the flannel config (\"Network\" is missing)"
                    .into(),
            );
        };
        let plen = net.prefix();
        if self.subnet_len > 0 {
            // Room for a tunnel and a bridge address on each host.
            if self.subnet_len > 30 {
                return Err(format!(
                    "SubnetLen must be less than /31 (got SubnetLen {})",
                    self.subnet_len
                ));
            }
            // The first subnet is skipped, so the network must hold more than two.
            if self.subnet_len < plen + 2 {
                return Err(format!(
                    "network must be able to accommodate at least four subnets (SubnetLen {} with Network {net})",
                    self.subnet_len
                ));
            }
        } else if plen > 28 {
            return Err(format!(
                "network is too small. Minimum useful network prefix is /28 (Network {net})"
            ));
        } else if plen <= 22 {
            self.subnet_len = 24;
        } else {
            self.subnet_len = plen + 2;
        }

        let size = 1u32 << (32 - self.subnet_len);
        let base = u32::from(net.network());
        if self.subnet_min.is_unspecified() {
            // The first subnet would put the network address on flannel.1.
            self.subnet_min = Ipv4Addr::from(base.wrapping_add(size));
        } else if !net.contains(self.subnet_min) {
            return Err(format!(
                "SubnetMin is not in the range of the Network (SubnetMin {} not in {net})",
                self.subnet_min
            ));
        }
        if self.subnet_max.is_unspecified() {
            let next = u64::from(base) + (1u64 << (32 - plen));
            self.subnet_max = Ipv4Addr::from((next - u64::from(size)) as u32);
        } else if !net.contains(self.subnet_max) {
            return Err(format!(
                "SubnetMax is not in the range of the Network (SubnetMax {} not in {net})",
                self.subnet_max
            ));
        }
        let mask = u32::MAX << (32 - self.subnet_len);
        if u32::from(self.subnet_min) & !mask != 0 {
            return Err(format!(
                "SubnetMin is not on a SubnetLen boundary: {}",
                self.subnet_min
            ));
        }
        if u32::from(self.subnet_max) & !mask != 0 {
            return Err(format!(
                "SubnetMax is not on a SubnetLen boundary: {}",
                self.subnet_max
            ));
        }
        Ok(())
    }

    fn check_v6(&mut self) -> Result<()> {
        let Some(net) = self.ipv6_network else {
            return Err(
                "please define a correct IPv6Network parameter in the flannel config (\"IPv6Network\" is missing)"
                    .into(),
            );
        };
        let plen = net.prefix();
        if self.ipv6_subnet_len > 0 {
            if self.ipv6_subnet_len > 126 {
                return Err(format!(
                    "SubnetLen must be less than /127 (got IPv6SubnetLen {})",
                    self.ipv6_subnet_len
                ));
            }
            if self.ipv6_subnet_len < plen + 2 {
                return Err(format!(
                    "network must be able to accommodate at least four subnets (IPv6SubnetLen {} with IPv6Network {net})",
                    self.ipv6_subnet_len
                ));
            }
        } else if plen > 124 {
            return Err(format!(
                "IPv6Network is too small. Minimum useful network prefix is /124 (IPv6Network {net})"
            ));
        } else if plen <= 62 {
            self.ipv6_subnet_len = 64;
        } else {
            self.ipv6_subnet_len = plen + 2;
        }
        let size = 1u128 << (128 - u32::from(self.ipv6_subnet_len));
        let base = u128::from(net.network());
        if self.ipv6_subnet_min.is_unspecified() {
            self.ipv6_subnet_min = Ipv6Addr::from(base.wrapping_add(size));
        } else if !net.contains(self.ipv6_subnet_min) {
            return Err(format!(
                "IPv6SubnetMin is not in the range of the IPv6Network (IPv6SubnetMin {} not in {net})",
                self.ipv6_subnet_min
            ));
        }
        if self.ipv6_subnet_max.is_unspecified() {
            let span = if plen == 0 {
                u128::MAX
            } else {
                (1u128 << (128 - u32::from(plen))) - 1
            };
            // The last subnet: base + span + 1 - size, ordered so that nothing overflows
            // for ::/0 (span + 1 would be 2^128); size - 1 <= span since the subnet is
            // inside the network.
            self.ipv6_subnet_max = Ipv6Addr::from(base + (span - (size - 1)));
        } else if !net.contains(self.ipv6_subnet_max) {
            return Err(format!(
                "IPv6SubnetMax is not in the range of the IPv6Network (IPv6SubnetMax {} not in {net})",
                self.ipv6_subnet_max
            ));
        }
        let host = size - 1;
        if u128::from(self.ipv6_subnet_min) & host != 0 {
            return Err(format!(
                "IPv6SubnetMin is not on a SubnetLen boundary: {}",
                self.ipv6_subnet_min
            ));
        }
        if u128::from(self.ipv6_subnet_max) & host != 0 {
            return Err(format!(
                "IPv6SubnetMax is not on a SubnetLen boundary: {}",
                self.ipv6_subnet_max
            ));
        }
        Ok(())
    }

    /// The backend type is one weft implements (Go fails later, in
    /// `GetBackend`, with `unknown backend type`).
    pub fn check_backend(&self) -> Result<()> {
        match self.backend.kind.as_str() {
            BACKEND_VXLAN | BACKEND_HOST_GW => Ok(()),
            other => Err(format!(
                "unknown backend type: {other} (Backend.Type; weft supports \"vxlan\" and \"host-gw\")"
            )),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| format!("invalid \"{key}\": expected a boolean, got {v}"))
}

fn string<'a>(key: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| format!("invalid \"{key}\": expected a string, got {v}"))
}

fn unsigned(key: &str, v: &Value, max: u64) -> Result<u64> {
    match v.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(format!(
            "invalid \"{key}\": expected an integer from 0 to {max}, got {v}"
        )),
    }
}

fn prefix_len(key: &str, v: &Value) -> Result<u8> {
    // Go's uint accepts anything; CheckNetworkConfig rejects values above 30
    // (126). Anything that cannot be a prefix length is rejected here.
    let n = unsigned(key, v, 128)?;
    u8::try_from(n).map_err(|_| format!("invalid \"{key}\": {n}"))
}

fn v4_cidr(key: &str, v: &Value) -> Result<Ipv4Network> {
    let s = string(key, v)?;
    let net: Ipv4Network = s
        .parse()
        .map_err(|_| format!("invalid \"{key}\": invalid CIDR address: {s}"))?;
    if !s.contains('/') {
        return Err(format!("invalid \"{key}\": invalid CIDR address: {s}"));
    }
    // net.ParseCIDR masks the host bits.
    Ipv4Network::new(net.network(), net.prefix())
        .map_err(|_| format!("invalid \"{key}\": invalid CIDR address: {s}"))
}

fn v6_cidr(key: &str, v: &Value) -> Result<Ipv6Network> {
    let s = string(key, v)?;
    let net: Ipv6Network = s
        .parse()
        .map_err(|_| format!("invalid \"{key}\": invalid CIDR address: {s}"))?;
    if !s.contains('/') {
        return Err(format!("invalid \"{key}\": invalid CIDR address: {s}"));
    }
    Ipv6Network::new(net.network(), net.prefix())
        .map_err(|_| format!("invalid \"{key}\": invalid CIDR address: {s}"))
}

fn v4_addr(key: &str, v: &Value) -> Result<Ipv4Addr> {
    let s = string(key, v)?;
    s.parse()
        .map_err(|_| format!("invalid \"{key}\": invalid IPv4 address: {s}"))
}

fn v6_addr(key: &str, v: &Value) -> Result<Ipv6Addr> {
    let s = string(key, v)?;
    s.parse()
        .map_err(|_| format!("invalid \"{key}\": invalid IPv6 address: {s}"))
}

fn parse_backend(key: &str, v: &Value) -> Result<BackendConfig> {
    let obj: &Map<String, Value> = v.as_object().ok_or_else(|| {
        format!(
            "error decoding Backend property of config: \"{key}\" must be an object, got {}",
            kind_of(v)
        )
    })?;
    // A Backend object without Type gives "" (Go), which is unknown.
    let mut b = BackendConfig {
        kind: String::new(),
        ..BackendConfig::default()
    };
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        let name = format!("Backend.{k}");
        match k.to_ascii_lowercase().as_str() {
            "type" => b.kind = string(&name, v)?.to_string(),
            "vni" => b.vni = unsigned(&name, v, 0xff_ffff)? as u32,
            "port" => b.port = unsigned(&name, v, 65535)? as u16,
            "mtu" => b.mtu = unsigned(&name, v, 65535)? as u32,
            "gbp" => b.gbp = boolean(&name, v)?,
            "learning" => b.learning = boolean(&name, v)?,
            "directrouting" => b.direct_routing = boolean(&name, v)?,
            "disabletxchecksumoffload" => b.disable_tx_checksum_offload = boolean(&name, v)?,
            _ => {}
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> NetConfig {
        NetConfig::parse(text).unwrap()
    }

    fn err(text: &str) -> String {
        NetConfig::parse(text).unwrap_err()
    }

    #[test]
    fn default_ipv6_subnet_max_does_not_overflow() {
        // Found by fuzz/fuzz_targets/flanneld.rs ("IPv6Network": "fd44::5/6"): the default
        // IPv6SubnetMax of a network at the top of the address space (or ::/0) overflowed
        // u128, a panic with overflow checks (debug and fuzz builds).
        let c = ok(r#"{"EnableIPv6":true,"Network":"10.0.0.0/16","IPv6Network":"::/0"}"#);
        assert_eq!(c.ipv6_subnet_len, 64);
        assert_eq!(c.ipv6_subnet_min, "0:0:0:1::".parse::<Ipv6Addr>().unwrap());
        let top = "ffff:ffff:ffff:ffff::".parse::<Ipv6Addr>().unwrap();
        assert_eq!(c.ipv6_subnet_max, top);
        let c = ok(r#"{"EnableIPv6":true,"Network":"10.0.0.0/16","IPv6Network":"fd44::5/6"}"#);
        assert_eq!(
            c.ipv6_subnet_min,
            "fc00:0:0:1::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(c.ipv6_subnet_max, top);
    }

    #[test]
    fn defaults_of_a_slash_16() {
        // pkg/subnet/config_test.go TestConfigDefaults
        let c = ok(r#"{ "network": "10.3.0.0/16" }"#);
        assert_eq!(c.network.unwrap().to_string(), "10.3.0.0/16");
        assert_eq!(c.subnet_len, 24);
        assert_eq!(c.subnet_min, Ipv4Addr::new(10, 3, 1, 0));
        assert_eq!(c.subnet_max, Ipv4Addr::new(10, 3, 255, 0));
        assert!(c.enable_ipv4);
        assert!(!c.enable_ipv6);
        assert_eq!(c.backend.kind, "udp");
    }

    #[test]
    fn explicit_values_and_host_bits() {
        let c = ok(
            r#"{"Network":"10.3.7.9/16","SubnetLen":20,"SubnetMin":"10.3.16.0",
              "SubnetMax":"10.3.240.0","Backend":{"type":"vxlan","vni":7,"Port":4789,
              "MTU":1400,"DirectRouting":true,"GBP":true,"Learning":true}}"#,
        );
        assert_eq!(c.network.unwrap().to_string(), "10.3.0.0/16");
        assert_eq!(c.subnet_len, 20);
        assert_eq!(c.subnet_min, Ipv4Addr::new(10, 3, 16, 0));
        assert_eq!(c.subnet_max, Ipv4Addr::new(10, 3, 240, 0));
        assert_eq!(
            c.backend,
            BackendConfig {
                kind: "vxlan".into(),
                vni: 7,
                port: 4789,
                mtu: 1400,
                gbp: true,
                learning: true,
                direct_routing: true,
                disable_tx_checksum_offload: false,
            }
        );
    }

    #[test]
    fn tx_checksum_offload_key() {
        let c = ok(
            r#"{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan","DisableTxChecksumOffload":true}}"#,
        );
        assert!(c.backend.disable_tx_checksum_offload);
        let c = ok(r#"{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan"}}"#);
        assert!(!c.backend.disable_tx_checksum_offload);
        assert!(err(r#"{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan","DisableTxChecksumOffload":"yes"}}"#)
            .contains("\"Backend.DisableTxChecksumOffload\": expected a boolean"));
    }

    #[test]
    fn small_networks_split_in_four() {
        let c = ok(r#"{"Network":"10.1.0.0/24"}"#);
        assert_eq!(c.subnet_len, 26);
        assert_eq!(c.subnet_min, Ipv4Addr::new(10, 1, 0, 64));
        assert_eq!(c.subnet_max, Ipv4Addr::new(10, 1, 0, 192));
        let c = ok(r#"{"Network":"10.1.0.0/22"}"#);
        assert_eq!(c.subnet_len, 24);
        assert_eq!(c.subnet_max, Ipv4Addr::new(10, 1, 3, 0));
        assert!(
            err(r#"{"Network":"10.1.0.0/29"}"#).contains("Minimum useful network prefix is /28")
        );
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("{}").contains("\"Network\" is missing"));
        assert!(err(r#"{"Network":"10.0.0.0/8","SubnetLen":31}"#).contains("SubnetLen 31"));
        assert!(err(r#"{"Network":"10.0.0.0/16","SubnetLen":17}"#).contains("SubnetLen 17"));
        assert!(
            err(r#"{"Network":"foo"}"#).contains("invalid \"Network\": invalid CIDR address: foo")
        );
        assert!(err(r#"{"Network":"10.0.0.0"}"#).contains("invalid CIDR address"));
        assert!(err(r#"{"Network":"10.0.0.0/16","SubnetLen":-1}"#).contains("\"SubnetLen\""));
        assert!(err(r#"{"Network":"10.0.0.0/16","SubnetMin":"10.1.0.0"}"#)
            .contains("SubnetMin is not in the range of the Network"));
        assert!(err(r#"{"Network":"10.0.0.0/16","SubnetMax":"10.0.3.5"}"#)
            .contains("SubnetMax is not on a SubnetLen boundary: 10.0.3.5"));
        assert!(err(r#"{"Network":"10.0.0.0/16","Backend":{"VNI":"x"}}"#).contains("Backend.VNI"));
        assert!(err(r#"{"Network":"10.0.0.0/16","Backend":[]}"#).contains("Backend"));
        assert!(err("[1]").contains("JSON object"));
        assert!(err("{").contains("invalid network config JSON"));
        assert!(err(r#"{"Network":"10.0.0.0/16","EnableIPv6":true}"#).contains("IPv6Network"));
    }

    #[test]
    fn backend_type_checks() {
        let c = ok(r#"{"Network":"10.0.0.0/16"}"#);
        assert!(c
            .check_backend()
            .unwrap_err()
            .contains("unknown backend type: udp"));
        let c = ok(r#"{"Network":"10.0.0.0/16","Backend":{"Type":"foo"}}"#);
        assert!(c
            .check_backend()
            .unwrap_err()
            .contains("unknown backend type: foo"));
        let c = ok(r#"{"Network":"10.0.0.0/16","Backend":{"Type":"host-gw"}}"#);
        c.check_backend().unwrap();
        assert_eq!(c.backend.vni, 1);
    }

    #[test]
    fn ipv6_defaults() {
        let c = ok(r#"{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}"#);
        assert_eq!(c.ipv6_subnet_len, 64);
        assert_eq!(
            c.ipv6_subnet_min,
            "fc00:0:0:1::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            c.ipv6_subnet_max,
            "fc00:0:0:ffff::".parse::<Ipv6Addr>().unwrap()
        );
        let c = ok(r#"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/120"}"#);
        assert_eq!(c.ipv6_subnet_len, 122);
        assert!(c.network.is_none());
    }

    #[test]
    fn shipped_example_configs_are_valid() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conf");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("net-conf") && name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let c = NetConfig::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                c.check_backend().unwrap();
                seen += 1;
            }
        }
        assert!(seen >= 4, "only {seen} net-conf*.json files");
    }

    #[test]
    fn null_keeps_default() {
        let c = ok(r#"{"Network":"10.0.0.0/16","SubnetLen":null,"EnableIPv4":null}"#);
        assert_eq!(c.subnet_len, 24);
        assert!(c.enable_ipv4);
    }
}
