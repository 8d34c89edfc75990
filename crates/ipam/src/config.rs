//! host-local configuration (Go: `backend/allocator/config.go`).
//!
//! IPAM plugins get the whole network configuration on stdin. The keys are
//! read the way Go's `encoding/json` reads them into a struct: names match
//! case-insensitively (the last matching key wins), unknown keys are
//! ignored and `null` counts as absent.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};

use crate::error::{IpamError, Result};
use crate::ip;
use crate::range::{RangeConf, RangeSet};

/// Where reservations live when `dataDir` is not set.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// A route from `ipam.routes`, returned as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConf {
    /// `dst`, host bits kept as written.
    pub dst: IpNetwork,
    /// `gw`, if any.
    pub gw: Option<IpAddr>,
    /// `mtu` (CNI 1.1), 0 when unset.
    pub mtu: u32,
    /// `advmss` (CNI 1.1), 0 when unset.
    pub advmss: u32,
    /// `priority` (CNI 1.1), 0 when unset.
    pub priority: u32,
    /// `table` (CNI 1.1).
    pub table: Option<u32>,
    /// `scope` (CNI 1.1).
    pub scope: Option<u8>,
}

/// The parsed and validated host-local configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConfig {
    /// The network name: the reservation directory under `data_dir`.
    pub name: String,
    /// The configuration's `cniVersion` (results are printed in it).
    pub cni_version: String,
    /// `ipam.type`.
    pub plugin_type: String,
    /// `ipam.routes`.
    pub routes: Vec<RouteConf>,
    /// `ipam.dataDir`, defaulted to [`DEFAULT_DATA_DIR`].
    pub data_dir: PathBuf,
    /// `ipam.resolvConf`.
    pub resolv_conf: Option<PathBuf>,
    /// Range sets in their final order: `runtimeConfig.ipRanges`, then the
    /// legacy top-level range, then `ipam.ranges`. The index of a set names
    /// its `last_reserved_ip.N` file.
    pub ranges: Vec<RangeSet>,
    /// Requested addresses: `CNI_ARGS IP=`, then `args.cni.ips`, then
    /// `runtimeConfig.ips`; duplicates dropped.
    pub requested_ips: Vec<IpAddr>,
}

/// One still-valid attachment given to GC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `containerID`.
    pub container_id: String,
    /// `ifname`.
    pub ifname: String,
}

/// The JSON type name used in decode errors.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Looks a key up like Go's `encoding/json`: case-insensitively, the last
/// matching key in the document winning; `null` is the same as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    weft_cni_core::gojson::field(obj, key).filter(|v| !v.is_null())
}

/// Joins a parent path and a key for error messages.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn wrong_type(path: &str, want: &str, got: &Value) -> IpamError {
    IpamError::Decode(format!("{path}: expected {want}, got {}", type_name(got)))
}

fn get_str<'a>(obj: &'a Map<String, Value>, key: &str, parent: &str) -> Result<Option<&'a str>> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(&join(parent, key), "a string", v)),
    }
}

fn get_obj<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<&'a Map<String, Value>>> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) => Err(wrong_type(&join(parent, key), "an object", v)),
    }
}

fn get_array<'a>(obj: &'a Map<String, Value>, key: &str, parent: &str) -> Result<&'a [Value]> {
    match field(obj, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(wrong_type(&join(parent, key), "an array", v)),
    }
}

fn get_u32(obj: &Map<String, Value>, key: &str, parent: &str) -> Result<Option<u32>> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(wrong_type(
                &join(parent, key),
                "a non-negative 32-bit integer",
                v,
            )),
        },
    }
}

/// An address field: an empty string is the same as absent, as with Go's
/// `net.IP` text decoding.
fn get_ip(obj: &Map<String, Value>, key: &str, parent: &str) -> Result<Option<IpAddr>> {
    match get_str(obj, key, parent)? {
        None | Some("") => Ok(None),
        Some(s) => ip::parse_ip(s).map(Some).ok_or_else(|| {
            IpamError::InvalidConfig(format!("{}: invalid IP address: {s}", join(parent, key)))
        }),
    }
}

/// One requested address (`<ip>[/<prefix>]`, Go's `ip.IP`).
fn requested_ip(v: &Value, path: &str) -> Result<IpAddr> {
    let Value::String(s) = v else {
        return Err(wrong_type(path, "a string", v));
    };
    ip::parse_ip_maybe_prefix(s)
        .ok_or_else(|| IpamError::InvalidConfig(format!("{path}: invalid IP address {s}")))
}

/// Parses one range object.
fn parse_range(obj: &Map<String, Value>, path: &str) -> Result<RangeConf> {
    let subnet = match get_str(obj, "subnet", path)? {
        None => None,
        Some(s) => Some(ip::parse_cidr(s).ok_or_else(|| {
            IpamError::InvalidConfig(format!(
                "{}: invalid CIDR address: {s}",
                join(path, "subnet")
            ))
        })?),
    };
    Ok(RangeConf {
        subnet,
        range_start: get_ip(obj, "rangeStart", path)?,
        range_end: get_ip(obj, "rangeEnd", path)?,
        gateway: get_ip(obj, "gateway", path)?,
    })
}

/// Parses an array of range sets (`ipam.ranges`, `runtimeConfig.ipRanges`).
fn parse_range_sets(sets: &[Value], path: &str) -> Result<Vec<Vec<RangeConf>>> {
    let mut out = Vec::with_capacity(sets.len());
    for (i, set) in sets.iter().enumerate() {
        let set_path = format!("{path}[{i}]");
        let Value::Array(ranges) = set else {
            return Err(wrong_type(&set_path, "an array of ranges", set));
        };
        let mut confs = Vec::with_capacity(ranges.len());
        for (j, range) in ranges.iter().enumerate() {
            let range_path = format!("{set_path}[{j}]");
            let Value::Object(obj) = range else {
                return Err(wrong_type(&range_path, "an object", range));
            };
            confs.push(parse_range(obj, &range_path)?);
        }
        out.push(confs);
    }
    Ok(out)
}

fn parse_route(v: &Value, path: &str) -> Result<RouteConf> {
    let Value::Object(obj) = v else {
        return Err(wrong_type(path, "an object", v));
    };
    let dst_text = get_str(obj, "dst", path)?
        .ok_or_else(|| IpamError::InvalidConfig(format!("{}: missing", join(path, "dst"))))?;
    let dst = ip::parse_cidr(dst_text)
        .and_then(|c| IpNetwork::new(c.ip, c.prefix).ok())
        .ok_or_else(|| {
            IpamError::InvalidConfig(format!(
                "{}: invalid CIDR address: {dst_text}",
                join(path, "dst")
            ))
        })?;
    let scope = match get_u32(obj, "scope", path)? {
        None => None,
        Some(s) => Some(u8::try_from(s).map_err(|_| {
            IpamError::InvalidConfig(format!("{}: {s} is not a route scope", join(path, "scope")))
        })?),
    };
    Ok(RouteConf {
        dst,
        gw: get_ip(obj, "gw", path)?,
        mtu: get_u32(obj, "mtu", path)?.unwrap_or(0),
        advmss: get_u32(obj, "advmss", path)?.unwrap_or(0),
        priority: get_u32(obj, "priority", path)?.unwrap_or(0),
        table: get_u32(obj, "table", path)?,
        scope,
    })
}

/// `rangeFromFile`: a file holding one range object, used when no other
/// range is configured.
fn range_from_file(path: &str) -> Result<RangeConf> {
    let bytes = std::fs::read(path).map_err(|e| {
        IpamError::Io(format!(
            "failed to read rangeFromFile {path:?}: {}",
            crate::error::describe_io(&e)
        ))
    })?;
    let parse_err =
        || IpamError::InvalidConfig(format!("failed to parse rangeFromFile {path:?} as a Range"));
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| parse_err())?;
    let Value::Object(obj) = value else {
        return Err(parse_err());
    };
    let range = parse_range(&obj, "rangeFromFile")?;
    if range.subnet.is_none() {
        return Err(parse_err());
    }
    Ok(range)
}

/// Compares dotted versions numerically; `None` if either is malformed.
fn version_at_least(version: &str, min: &str) -> Option<bool> {
    fn parts(v: &str) -> Option<Vec<u64>> {
        let p: Option<Vec<u64>> = v.split('.').map(|s| s.parse().ok()).collect();
        p.filter(|p| p.len() == 3)
    }
    Some(parts(version)? >= parts(min)?)
}

/// Parses the network configuration on stdin.
///
/// `env_ip` is the value of `IP` in `CNI_ARGS`, already split out by the
/// caller (CNI_ARGS parsing, with its `IgnoreUnknown` rules, belongs to
/// cni-core). The name is checked for path safety here too, since it names
/// a directory.
pub fn load_config(stdin: &[u8], env_ip: Option<&str>) -> Result<IpamConfig> {
    let value: Value = serde_json::from_slice(stdin)
        .map_err(|e| IpamError::Decode(format!("error parsing configuration: {e}")))?;
    let Value::Object(net) = value else {
        return Err(wrong_type("configuration", "an object", &value));
    };

    let ipam = get_obj(&net, "ipam", "")?
        .ok_or_else(|| IpamError::InvalidConfig("IPAM config missing 'ipam' key".to_string()))?;
    let name = get_str(&net, "name", "")?.unwrap_or_default().to_string();
    let cni_version = get_str(&net, "cniVersion", "")?
        .unwrap_or_default()
        .to_string();
    let runtime = get_obj(&net, "runtimeConfig", "")?;

    let requested_ips = collect_requested_ips(&net, runtime, env_ip)?;
    let ranges = collect_ranges(ipam, runtime)?;

    // Validate every set; count sets per family.
    let mut sets = Vec::with_capacity(ranges.len());
    for (i, confs) in ranges.iter().enumerate() {
        let set = RangeSet::canonicalize(confs)
            .map_err(|e| IpamError::InvalidConfig(format!("invalid range set {i}: {e}")))?;
        sets.push(set);
    }
    let v4 = sets.iter().filter(|s| s.is_ipv4()).count();
    let v6 = sets.len() - v4;
    // CNI 0.2.0 and older results hold one address per family.
    if (v4 > 1 || v6 > 1) && version_at_least(&cni_version, "0.3.0") != Some(true) {
        return Err(IpamError::InvalidConfig(format!(
            "CNI version {cni_version} does not support more than 1 address per family"
        )));
    }
    for (i, s1) in sets.iter().enumerate() {
        for (j, s2) in sets.iter().enumerate().skip(i + 1) {
            if s1.overlaps(s2) {
                return Err(IpamError::InvalidConfig(format!(
                    "range set {i} overlaps with {j}"
                )));
            }
        }
    }

    let routes = get_array(ipam, "routes", "ipam")?
        .iter()
        .enumerate()
        .map(|(i, r)| parse_route(r, &format!("ipam.routes[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let data_dir = match get_str(ipam, "dataDir", "ipam")? {
        None | Some("") => PathBuf::from(DEFAULT_DATA_DIR),
        Some(d) => PathBuf::from(d),
    };
    let resolv_conf = match get_str(ipam, "resolvConf", "ipam")? {
        None | Some("") => None,
        Some(r) => Some(PathBuf::from(r)),
    };
    let plugin_type = get_str(ipam, "type", "ipam")?
        .unwrap_or_default()
        .to_string();

    Ok(IpamConfig {
        name,
        cni_version,
        plugin_type,
        routes,
        data_dir,
        resolv_conf,
        ranges: sets,
        requested_ips,
    })
}

/// Requested addresses in Go's order, each once.
fn collect_requested_ips(
    net: &Map<String, Value>,
    runtime: Option<&Map<String, Value>>,
    env_ip: Option<&str>,
) -> Result<Vec<IpAddr>> {
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Some(text) = env_ip.filter(|t| !t.is_empty()) {
        let ip = ip::parse_ip_maybe_prefix(text).ok_or_else(|| {
            IpamError::InvalidEnv(format!("CNI_ARGS IP: invalid IP address {text}"))
        })?;
        ips.push(ip);
    }
    if let Some(args) = get_obj(net, "args", "")? {
        if let Some(cni) = get_obj(args, "cni", "args")? {
            for (i, v) in get_array(cni, "ips", "args.cni")?.iter().enumerate() {
                ips.push(requested_ip(v, &format!("args.cni.ips[{i}]"))?);
            }
        }
    }
    if let Some(runtime) = runtime {
        for (i, v) in get_array(runtime, "ips", "runtimeConfig")?
            .iter()
            .enumerate()
        {
            ips.push(requested_ip(v, &format!("runtimeConfig.ips[{i}]"))?);
        }
    }
    let mut unique: Vec<IpAddr> = Vec::with_capacity(ips.len());
    for ip in ips {
        if !unique.contains(&ip) {
            unique.push(ip);
        }
    }
    Ok(unique)
}

/// Range sets in Go's order: runtime ipRanges, the legacy top-level range,
/// `ranges`; `rangeFromFile` only when all of those are empty.
fn collect_ranges(
    ipam: &Map<String, Value>,
    runtime: Option<&Map<String, Value>>,
) -> Result<Vec<Vec<RangeConf>>> {
    let mut ranges = Vec::new();
    if let Some(runtime) = runtime {
        ranges.extend(parse_range_sets(
            get_array(runtime, "ipRanges", "runtimeConfig")?,
            "runtimeConfig.ipRanges",
        )?);
    }
    // The old single-range form: only a `subnet` makes it count.
    let legacy = parse_range(ipam, "ipam")?;
    if legacy.subnet.is_some() {
        ranges.push(vec![legacy]);
    }
    ranges.extend(parse_range_sets(
        get_array(ipam, "ranges", "ipam")?,
        "ipam.ranges",
    )?);

    if ranges.is_empty() {
        if let Some(file) = get_str(ipam, "rangeFromFile", "ipam")?.filter(|f| !f.is_empty()) {
            ranges.push(vec![range_from_file(file)?]);
        }
    }
    if ranges.is_empty() {
        return Err(IpamError::InvalidConfig(
            "no IP ranges specified".to_string(),
        ));
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    //! Vectors from Go's config_test.go, plus error-path coverage.
    use super::*;

    fn ipa(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(subnet: &str, start: &str, end: &str, gw: &str) -> crate::range::Range {
        crate::range::Range {
            subnet: subnet.parse().unwrap(),
            range_start: ipa(start),
            range_end: ipa(end),
            gateway: ipa(gw),
        }
    }

    fn load(json: &str) -> Result<IpamConfig> {
        load_config(json.as_bytes(), None)
    }

    fn load_err(json: &str) -> IpamError {
        load(json).unwrap_err()
    }

    #[test]
    fn old_style() {
        let conf = load(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "type": "ipvlan", "master": "foo0",
                "ipam": {"type": "host-local", "subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9",
                         "rangeEnd": "10.1.2.20", "gateway": "10.1.2.30"}}"#,
        )
        .unwrap();
        assert_eq!(conf.cni_version, "0.3.1");
        assert_eq!(conf.name, "mynet");
        assert_eq!(conf.plugin_type, "host-local");
        assert_eq!(conf.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            conf.ranges,
            vec![RangeSet(vec![range(
                "10.1.2.0/24",
                "10.1.2.9",
                "10.1.2.20",
                "10.1.2.30"
            )])]
        );
    }

    #[test]
    fn new_style() {
        let conf = load(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "type": "ipvlan",
                "ipam": {"type": "host-local", "ranges": [
                    [{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9", "rangeEnd": "10.1.2.20", "gateway": "10.1.2.30"},
                     {"subnet": "10.1.4.0/24"}],
                    [{"subnet": "11.1.2.0/24", "rangeStart": "11.1.2.9", "rangeEnd": "11.1.2.20", "gateway": "11.1.2.30"}]
                ]}}"#,
        )
        .unwrap();
        assert_eq!(
            conf.ranges,
            vec![
                RangeSet(vec![
                    range("10.1.2.0/24", "10.1.2.9", "10.1.2.20", "10.1.2.30"),
                    range("10.1.4.0/24", "10.1.4.1", "10.1.4.254", "10.1.4.1"),
                ]),
                RangeSet(vec![range(
                    "11.1.2.0/24",
                    "11.1.2.9",
                    "11.1.2.20",
                    "11.1.2.30"
                )]),
            ]
        );
    }

    #[test]
    fn mixed_with_runtime_ranges_first() {
        let conf = load(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "type": "ipvlan",
                "runtimeConfig": {"irrelevant": "a", "ipRanges": [[{"subnet": "12.1.3.0/24"}]]},
                "ipam": {"type": "host-local", "subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9",
                         "rangeEnd": "10.1.2.20", "gateway": "10.1.2.30",
                         "ranges": [[{"subnet": "11.1.2.0/24", "rangeStart": "11.1.2.9",
                                      "rangeEnd": "11.1.2.20", "gateway": "11.1.2.30"}]]}}"#,
        )
        .unwrap();
        assert_eq!(
            conf.ranges,
            vec![
                RangeSet(vec![range(
                    "12.1.3.0/24",
                    "12.1.3.1",
                    "12.1.3.254",
                    "12.1.3.1"
                )]),
                RangeSet(vec![range(
                    "10.1.2.0/24",
                    "10.1.2.9",
                    "10.1.2.20",
                    "10.1.2.30"
                )]),
                RangeSet(vec![range(
                    "11.1.2.0/24",
                    "11.1.2.9",
                    "11.1.2.20",
                    "11.1.2.30"
                )]),
            ]
        );
    }

    const ONE_SET: &str = r#"{"cniVersion": "0.3.1", "name": "mynet", "type": "ipvlan",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9",
                 "rangeEnd": "10.1.2.20", "gateway": "10.1.2.30"}]]}}"#;

    #[test]
    fn cni_args_ip() {
        let conf = load_config(ONE_SET.as_bytes(), Some("10.1.2.10")).unwrap();
        assert_eq!(conf.requested_ips, vec![ipa("10.1.2.10")]);
        let conf = load_config(ONE_SET.as_bytes(), Some("10.1.2.11/24")).unwrap();
        assert_eq!(conf.requested_ips, vec![ipa("10.1.2.11")]);
        let conf = load_config(ONE_SET.as_bytes(), Some("")).unwrap();
        assert!(conf.requested_ips.is_empty());
        // Go's ip.IP takes one address; a list is an error there too.
        let e = load_config(ONE_SET.as_bytes(), Some("10.1.2.10,10.1.2.11")).unwrap_err();
        assert_eq!(e.code(), 4);
        assert_eq!(
            e.msg(),
            "CNI_ARGS IP: invalid IP address 10.1.2.10,10.1.2.11"
        );
    }

    const THREE_SETS_ARGS: &str = r#"{"cniVersion": "0.3.1", "name": "mynet", "type": "ipvlan",
        "args": {"cni": {"ips": IPS}},
        "ipam": {"type": "host-local", "ranges": [
            [{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9", "rangeEnd": "10.1.2.20", "gateway": "10.1.2.30"}],
            [{"subnet": "11.1.2.0/24", "rangeStart": "11.1.2.9", "rangeEnd": "11.1.2.20", "gateway": "11.1.2.30"}],
            [{"subnet": "2001:db8:1::/64"}]]}}"#;

    #[test]
    fn config_args_ips() {
        let want = vec![
            ipa("10.1.2.10"),
            ipa("10.1.2.11"),
            ipa("11.11.11.11"),
            ipa("2001:db8:1::11"),
        ];
        let plain =
            THREE_SETS_ARGS.replace("IPS", r#"["10.1.2.11", "11.11.11.11", "2001:db8:1::11"]"#);
        let conf = load_config(plain.as_bytes(), Some("10.1.2.10")).unwrap();
        assert_eq!(conf.requested_ips, want);

        let prefixed = THREE_SETS_ARGS.replace(
            "IPS",
            r#"["10.1.2.11/24", "11.11.11.11/24", "2001:db8:1::11/64"]"#,
        );
        let conf = load_config(prefixed.as_bytes(), Some("10.1.2.10/24")).unwrap();
        assert_eq!(conf.requested_ips, want);

        // Duplicates collapse, as in Go's map of requested IPs.
        let dup = THREE_SETS_ARGS.replace("IPS", r#"["10.1.2.10", "10.1.2.10"]"#);
        let conf = load_config(dup.as_bytes(), Some("10.1.2.10")).unwrap();
        assert_eq!(conf.requested_ips, vec![ipa("10.1.2.10")]);
    }

    #[test]
    fn runtime_config_ips() {
        let conf = load(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "type": "ipvlan",
                "runtimeConfig": {"ips": ["192.168.0.1", "192.168.0.5/24", "2001:db8::1/64"]},
                "ipam": {"type": "host-local", "subnet": "10.1.2.0/24"}}"#,
        )
        .unwrap();
        assert_eq!(
            conf.requested_ips,
            vec![ipa("192.168.0.1"), ipa("192.168.0.5"), ipa("2001:db8::1")]
        );
    }

    #[test]
    fn overlap_between_sets() {
        let e = load_err(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}],
                [{"subnet": "10.1.4.0/24"}, {"subnet": "10.1.6.0/24"}, {"subnet": "10.1.8.0/24"}, {"subnet": "10.1.2.0/24"}]]}}"#,
        );
        assert_eq!(
            e,
            IpamError::InvalidConfig("range set 0 overlaps with 1".into())
        );
        assert_eq!(e.code(), 7);
    }

    #[test]
    fn overlap_within_set() {
        let e = load_err(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "10.1.0.0/22"}, {"subnet": "10.1.2.0/24"}]]}}"#,
        );
        assert_eq!(
            e.msg(),
            "invalid range set 0: subnets 10.1.0.1-10.1.3.254 and 10.1.2.1-10.1.2.254 overlap"
        );
    }

    #[test]
    fn mixed_families_in_set() {
        let e = load_err(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "10.1.0.0/22"}, {"subnet": "2001:db8:5::/64"}]]}}"#,
        );
        assert_eq!(e.msg(), "invalid range set 0: mixed address families");
    }

    #[test]
    fn too_many_sets_for_old_versions() {
        let two_v4 = r#"{"cniVersion": "VER", "name": "mynet", "ipam": {"type": "host-local", "ranges": [
            [{"subnet": "10.1.2.0/24"}], [{"subnet": "11.1.2.0/24"}]]}}"#;
        for ver in ["0.1.0", "0.2.0", ""] {
            let e = load_err(&two_v4.replace("VER", ver));
            assert_eq!(
                e.msg(),
                format!("CNI version {ver} does not support more than 1 address per family")
            );
        }
        for ver in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
            assert!(load(&two_v4.replace("VER", ver)).is_ok(), "{ver}");
        }
        let v4_v6 = r#"{"cniVersion": "0.2.0", "name": "mynet", "ipam": {"type": "host-local", "ranges": [
            [{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/48"}]]}}"#;
        assert!(load(v4_v6).is_ok());
    }

    #[test]
    fn range_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ranges.conf");
        std::fs::write(
            &file,
            r#"{"subnet": "10.128.0.0/11", "rangeStart": "10.128.12.100", "rangeEnd": "10.128.12.254"}"#,
        )
        .unwrap();
        let json = format!(
            r#"{{"cniVersion": "0.3.1", "name": "mynet", "ipam": {{"type": "host-local", "rangeFromFile": "{}"}}}}"#,
            file.display()
        );
        let conf = load(&json).unwrap();
        assert_eq!(
            conf.ranges,
            vec![RangeSet(vec![range(
                "10.128.0.0/11",
                "10.128.12.100",
                "10.128.12.254",
                "10.128.0.1"
            )])]
        );

        std::fs::write(&file, r#"{"rangeStart": "10.128.12.100"}"#).unwrap();
        let e = load_err(&json);
        assert_eq!(
            e.msg(),
            format!(
                "failed to parse rangeFromFile {:?} as a Range",
                file.display().to_string()
            )
        );
    }

    #[test]
    fn missing_pieces() {
        let e = load_err(r#"{"cniVersion": "0.3.1", "name": "mynet"}"#);
        assert_eq!(
            e,
            IpamError::InvalidConfig("IPAM config missing 'ipam' key".into())
        );
        let e = load_err(r#"{"cniVersion": "0.3.1", "name": "mynet", "ipam": null}"#);
        assert_eq!(e.msg(), "IPAM config missing 'ipam' key");
        let e =
            load_err(r#"{"cniVersion": "0.3.1", "name": "mynet", "ipam": {"type": "host-local"}}"#);
        assert_eq!(e, IpamError::InvalidConfig("no IP ranges specified".into()));
        // A legacy range without subnet does not count.
        let e = load_err(
            r#"{"cniVersion": "0.3.1", "name": "mynet", "ipam": {"rangeStart": "10.0.0.5"}}"#,
        );
        assert_eq!(e.msg(), "no IP ranges specified");
        let e = load_err(r#"{"cniVersion": "0.3.1", "name": "n", "ipam": {"ranges": [[]]}}"#);
        assert_eq!(e.msg(), "invalid range set 0: empty range set");
        let e = load_err(r#"{"cniVersion": "0.3.1", "name": "n", "ipam": {"ranges": [[{}]]}}"#);
        assert_eq!(e.msg(), "invalid range set 0: subnet is missing");
    }

    #[test]
    fn small_networks_rejected() {
        let e =
            load_err(r#"{"cniVersion": "0.3.1", "name": "n", "ipam": {"subnet": "10.0.0.0/32"}}"#);
        assert_eq!(
            e.msg(),
            "invalid range set 0: Network 10.0.0.0/32 too small to allocate from"
        );
        let e =
            load_err(r#"{"cniVersion": "0.3.1", "name": "n", "ipam": {"subnet": "10.0.0.4/31"}}"#);
        assert_eq!(
            e.msg(),
            "invalid range set 0: Network 10.0.0.4/31 too small to allocate from"
        );
        assert_eq!(e.code(), 7);
    }

    #[test]
    fn decode_errors_are_code_6() {
        for bad in [
            "",
            "{",
            "[]",
            "nope",
            r#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24"}"#,
        ] {
            let e = load_err(bad);
            assert_eq!(e.code(), 6, "{bad}: {e}");
        }
        let cases = [
            (
                r#"{"name": 5, "ipam": {"subnet": "10.0.0.0/24"}}"#,
                "name: expected a string, got number",
            ),
            (
                r#"{"name": "n", "ipam": "x"}"#,
                "ipam: expected an object, got string",
            ),
            (
                r#"{"name": "n", "ipam": {"ranges": "x"}}"#,
                "ipam.ranges: expected an array, got string",
            ),
            (
                r#"{"name": "n", "ipam": {"ranges": [{"subnet": "10.0.0.0/24"}]}}"#,
                "ipam.ranges[0]: expected an array of ranges, got object",
            ),
            (
                r#"{"name": "n", "ipam": {"ranges": [[5]]}}"#,
                "ipam.ranges[0][0]: expected an object, got number",
            ),
            (
                r#"{"name": "n", "ipam": {"subnet": 10}}"#,
                "ipam.subnet: expected a string, got number",
            ),
            (
                r#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "dataDir": ["x"]}}"#,
                "ipam.dataDir: expected a string, got array",
            ),
            (
                r#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "routes": {}}}"#,
                "ipam.routes: expected an array, got object",
            ),
            (
                r#"{"name": "n", "args": {"cni": {"ips": [1]}}, "ipam": {"subnet": "10.0.0.0/24"}}"#,
                "args.cni.ips[0]: expected a string, got number",
            ),
            (
                r#"{"name": "n", "runtimeConfig": {"ipRanges": "x"}, "ipam": {"subnet": "10.0.0.0/24"}}"#,
                "runtimeConfig.ipRanges: expected an array, got string",
            ),
        ];
        for (json, want) in cases {
            let e = load_err(json);
            assert_eq!(e, IpamError::Decode(want.into()), "{json}");
        }
    }

    #[test]
    fn bad_values_are_code_7_and_name_the_field() {
        let cases = [
            (
                r#"{"name": "n", "ipam": {"subnet": "10.0.0.0"}}"#,
                "ipam.subnet: invalid CIDR address: 10.0.0.0",
            ),
            (
                r#"{"name": "n", "ipam": {"subnet": ""}}"#,
                "ipam.subnet: invalid CIDR address: ",
            ),
            (
                r#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "gateway": "10.0.0.x"}}"#,
                "ipam.gateway: invalid IP address: 10.0.0.x",
            ),
            (
                r#"{"name": "n", "ipam": {"ranges": [[{"subnet": "10.0.0.0/24", "rangeEnd": "nope"}]]}}"#,
                "ipam.ranges[0][0].rangeEnd: invalid IP address: nope",
            ),
            (
                r#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "routes": [{"dst": "0.0.0.0"}]}}"#,
                "ipam.routes[0].dst: invalid CIDR address: 0.0.0.0",
            ),
            (
                r#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "routes": [{"gw": "1.1.1.1"}]}}"#,
                "ipam.routes[0].dst: missing",
            ),
            (
                r#"{"name": "n", "runtimeConfig": {"ips": ["10.0.0.300"]}, "ipam": {"subnet": "10.0.0.0/24"}}"#,
                "runtimeConfig.ips[0]: invalid IP address 10.0.0.300",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                load_err(json),
                IpamError::InvalidConfig(want.into()),
                "{json}"
            );
        }
    }

    #[test]
    fn keys_match_case_insensitively_like_go() {
        let conf = load(
            r#"{"CNIVersion": "0.4.0", "Name": "mynet",
                "IPAM": {"Subnet": "10.1.2.0/24", "DATADIR": "/tmp/x", "dataDir": "/tmp/y",
                         "ResolvConf": "", "Routes": [{"DST": "0.0.0.0/0", "GW": "10.1.2.1"}]}}"#,
        )
        .unwrap();
        assert_eq!(conf.cni_version, "0.4.0");
        assert_eq!(conf.name, "mynet");
        // The last matching key wins.
        assert_eq!(conf.data_dir, PathBuf::from("/tmp/y"));
        assert_eq!(conf.resolv_conf, None);
        assert_eq!(conf.routes.len(), 1);
        assert_eq!(conf.routes[0].gw, Some(ipa("10.1.2.1")));
    }

    #[test]
    fn routes_pass_through() {
        let conf = load(
            r#"{"cniVersion": "1.1.0", "name": "n", "ipam": {"subnet": "10.1.2.0/24", "routes": [
                {"dst": "0.0.0.0/0"}, {"dst": "::/0"},
                {"dst": "192.168.0.0/16", "gw": "1.1.1.1"},
                {"dst": "2001:db8:2::0/64", "gw": "2001:db8:3::1"},
                {"dst": "10.9.9.9/8", "mtu": 1400, "advmss": 1360, "priority": 5, "table": 100, "scope": 253}]}}"#,
        )
        .unwrap();
        let dsts: Vec<String> = conf.routes.iter().map(|r| r.dst.to_string()).collect();
        assert_eq!(
            dsts,
            [
                "0.0.0.0/0",
                "::/0",
                "192.168.0.0/16",
                "2001:db8:2::/64",
                "10.9.9.9/8"
            ]
        );
        assert_eq!(conf.routes[3].gw, Some(ipa("2001:db8:3::1")));
        let last = &conf.routes[4];
        assert_eq!(
            (last.mtu, last.advmss, last.priority, last.table, last.scope),
            (1400, 1360, 5, Some(100), Some(253))
        );
    }

    #[test]
    fn empty_strings_mean_unset() {
        let conf = load(
            r#"{"cniVersion": "0.3.1", "name": "n", "ipam": {"subnet": "10.1.2.0/24",
                "rangeStart": "", "rangeEnd": "", "gateway": "", "dataDir": ""}}"#,
        )
        .unwrap();
        assert_eq!(
            conf.ranges[0].0[0],
            range("10.1.2.0/24", "10.1.2.1", "10.1.2.254", "10.1.2.1")
        );
        assert_eq!(conf.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }
}
