//! The network configuration keys every plugin shares.

use serde_json::Value;

use crate::error::{CniError, Result};
use crate::gojson;
use crate::types::{CniResult, Dns, Map};
use crate::validate::validate_network_name;

/// Largest config accepted on stdin. Real configs are a few KiB; the bound
/// keeps a runaway writer from making the plugin buffer without limit.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetConf {
    /// As given; empty when the config has none (which means 0.1.0).
    pub cni_version: String,
    pub name: String,
    /// The `type` key.
    pub plugin_type: String,
    pub capabilities: Map,
    pub ipam: Option<Value>,
    pub dns: Option<Dns>,
    pub runtime_config: Map,
    pub prev_result: Option<Value>,
    pub args: Option<Value>,
    /// Every other key (plugin-specific settings).
    pub extra: Map,
}

/// The GC verb's list of attachments to keep.
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";

const NETCONF_KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "capabilities",
    "ipam",
    "dns",
    "runtimeConfig",
    "prevResult",
    "args",
];

fn field_error(v: &Value, field: &str, go_type: &str) -> CniError {
    CniError::Decode(format!(
        "json: cannot unmarshal {} into Go struct field NetConf.{field} of type {go_type}",
        gojson::kind(v)
    ))
}

fn opt<'a>(found: &[Option<&'a Value>], i: usize) -> Option<&'a Value> {
    found.get(i).copied().flatten().filter(|v| !v.is_null())
}

fn string_field(found: &[Option<&Value>], i: usize, field: &str) -> Result<String> {
    match opt(found, i) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(field_error(other, field, "string")),
    }
}

fn object_field(found: &[Option<&Value>], i: usize, field: &str, go_type: &str) -> Result<Map> {
    match opt(found, i) {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(field_error(other, field, go_type)),
    }
}

/// Parses the config on stdin: code 6 for bad JSON or a mistyped shared key,
/// code 7 for a missing or invalid network name.
pub fn parse_netconf(stdin: &[u8]) -> Result<NetConf> {
    if stdin.len() > MAX_CONFIG_BYTES {
        return Err(config_too_large(stdin.len()));
    }
    let v: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::Decode(format!(
            "failed to load netconf: {}",
            gojson::syntax_error_text(stdin, &e)
        ))
    })?;
    let conf = NetConf::from_value(&v)?;
    if conf.name.is_empty() {
        return Err(CniError::InvalidConfig("missing network name".to_string()));
    }
    validate_network_name(&conf.name)?;
    Ok(conf)
}

pub(crate) fn config_too_large(len: usize) -> CniError {
    CniError::Decode(format!(
        "network config on stdin is larger than the {MAX_CONFIG_BYTES}-byte (1 MiB) limit (got {len} bytes or more)"
    ))
}

impl NetConf {
    /// Reads the shared keys from a JSON object; does not check the name.
    pub fn from_value(v: &Value) -> Result<NetConf> {
        let obj = match v {
            Value::Object(obj) => obj,
            other => {
                return Err(CniError::Decode(format!(
                    "failed to load netconf: json: cannot unmarshal {} into Go value of type types.NetConf",
                    gojson::kind(other)
                )))
            }
        };
        let (f, extra) = gojson::split_fields(obj, NETCONF_KEYS);
        let ipam = match opt(&f, 4) {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(other) => return Err(field_error(other, "ipam", "types.IPAM")),
        };
        let dns = match opt(&f, 5) {
            None => None,
            Some(d) => Some(Dns::parse(d)?),
        };
        let prev_result = match opt(&f, 7) {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(other) => return Err(field_error(other, "prevResult", "map[string]interface {}")),
        };
        Ok(NetConf {
            cni_version: string_field(&f, 0, "cniVersion")?,
            name: string_field(&f, 1, "name")?,
            plugin_type: string_field(&f, 2, "type")?,
            capabilities: object_field(&f, 3, "capabilities", "map[string]bool")?,
            ipam,
            dns,
            runtime_config: object_field(&f, 6, "runtimeConfig", "map[string]interface {}")?,
            prev_result,
            args: opt(&f, 8).cloned(),
            extra,
        })
    }

    /// The config version, with Go's default of 0.1.0 when unset.
    pub fn version(&self) -> &str {
        if self.cni_version.is_empty() {
            crate::version::DEFAULT_VERSION
        } else {
            &self.cni_version
        }
    }

    /// `ipam.type`, if any.
    pub fn ipam_type(&self) -> Option<&str> {
        self.ipam
            .as_ref()
            .and_then(|v| v.get("type"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// GC's `cni.dev/valid-attachments` as (containerID, ifname) pairs; see
    /// [`gc_attachments`] for the rule.
    pub fn valid_attachments(&self) -> Result<Vec<(String, String)>> {
        gc_attachments(&self.extra)
    }

    /// Go's `version.ParsePrevResult`: the prevResult in the 1.1.0 model, or
    /// None when the config has none.
    pub fn parsed_prev_result(&self) -> Result<Option<CniResult>> {
        match &self.prev_result {
            None => Ok(None),
            Some(v) => CniResult::parse(v)
                .map(Some)
                .map_err(|e| e.context("could not parse prevResult")),
        }
    }
}

/// The spelling libcni v1.2.0 sent before the spec settled on [`VALID_ATTACHMENTS`].
pub const LEGACY_ATTACHMENTS: &str = "cni.dev/attachments";

/// The one GC rule every plugin follows: the list of attachments to keep, as
/// (containerID, ifname) pairs, from `cni.dev/valid-attachments` (or the older
/// `cni.dev/attachments`), keys matched the way Go's decoder matches them.
///
/// A missing key is code 7, not "nothing is valid": a GC that reads absence as an
/// empty list strips the rules and reservations of every live pod of the network.
/// The skeleton applies this before calling any plugin's `gc`, so a refused GC has
/// touched nothing. `null` is an empty list (GC of everything), as in Go.
pub fn gc_attachments(conf: &Map) -> Result<Vec<(String, String)>> {
    let Some((key, value)) = [VALID_ATTACHMENTS, LEGACY_ATTACHMENTS]
        .into_iter()
        .find_map(|k| gojson::field(conf, k).map(|v| (k, v)))
    else {
        return Err(CniError::InvalidConfig(format!(
            "GC needs {VALID_ATTACHMENTS}"
        )));
    };
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(field_error(other, key, "[]types.GCAttachment")),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj = item
            .as_object()
            .ok_or_else(|| field_error(item, key, "types.GCAttachment"))?;
        let text = |name: &str| match gojson::field(obj, name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(field_error(other, name, "string")),
        };
        out.push((text("containerID")?, text("ifname")?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shared_keys_and_keeps_the_rest() {
        let conf = parse_netconf(
            br#"{"cniVersion":"1.0.0","name":"mynet","type":"bridge","bridge":"cni0",
                "ipam":{"type":"host-local","subnet":"10.1.2.0/24"},
                "dns":{"nameservers":["1.1.1.1"],"bogus":1},
                "runtimeConfig":{"mac":"aa:bb:cc:dd:ee:ff"},
                "capabilities":{"mac":true},
                "prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.2/24"}],"zz":{"keep":true}},
                "args":{"cni":{"ips":["10.1.2.9"]}}}"#,
        )
        .unwrap();
        assert_eq!(conf.cni_version, "1.0.0");
        assert_eq!(conf.name, "mynet");
        assert_eq!(conf.plugin_type, "bridge");
        assert_eq!(conf.ipam_type(), Some("host-local"));
        assert_eq!(conf.dns.as_ref().unwrap().nameservers, vec!["1.1.1.1"]);
        assert_eq!(conf.runtime_config["mac"], "aa:bb:cc:dd:ee:ff");
        assert_eq!(conf.capabilities["mac"], true);
        assert_eq!(conf.extra["bridge"], "cni0");
        assert_eq!(conf.extra.len(), 1);
        assert!(conf.args.is_some());
        let prev = conf.prev_result.as_ref().unwrap();
        assert_eq!(prev["zz"]["keep"], true);
        let parsed = conf.parsed_prev_result().unwrap().unwrap();
        assert_eq!(parsed.ips.len(), 1);
        assert_eq!(parsed.extra["zz"]["keep"], true);
    }

    #[test]
    fn name_errors_are_code_7_and_json_errors_code_6() {
        assert_eq!(parse_netconf(b"{").unwrap_err().code(), 6);
        assert_eq!(parse_netconf(b"").unwrap_err().code(), 6);
        assert_eq!(parse_netconf(br#"{"name":5}"#).unwrap_err().code(), 6);
        let e = parse_netconf(br#"{"type":"x"}"#).unwrap_err();
        assert_eq!((e.code(), e.msg().as_str()), (7, "missing network name"));
        let e = parse_netconf(br#"{"name":"../etc"}"#).unwrap_err();
        assert_eq!(e.code(), 7);
        assert_eq!(e.msg(), "invalid characters found in network name");
        assert_eq!(e.details(), "../etc");
    }

    #[test]
    fn oversized_config_is_rejected() {
        let mut big = br#"{"name":"n","pad":""#.to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_CONFIG_BYTES));
        big.extend(br#""}"#);
        let e = parse_netconf(&big).unwrap_err();
        assert_eq!(e.code(), 6);
        assert!(e.msg().contains("1048576-byte"), "{}", e.msg());
    }

    #[test]
    fn gc_valid_attachments() {
        let conf = parse_netconf(
            br#"{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[
                {"containerID":"c1","ifname":"eth0"},{"containerID":"c2","ifname":"net1"}]}"#,
        )
        .unwrap();
        assert_eq!(
            conf.valid_attachments().unwrap(),
            vec![("c1".into(), "eth0".into()), ("c2".into(), "net1".into())]
        );
        let conf = parse_netconf(br#"{"name":"n","cni.dev/valid-attachments":{}}"#).unwrap();
        assert_eq!(conf.valid_attachments().unwrap_err().code(), 6);
    }

    #[test]
    fn gc_without_valid_attachments_is_code_7_not_an_empty_list() {
        let conf = parse_netconf(br#"{"name":"n"}"#).unwrap();
        let e = conf.valid_attachments().unwrap_err();
        assert_eq!(
            (e.code(), e.msg().as_str()),
            (7, "GC needs cni.dev/valid-attachments")
        );
        // null is an explicit empty list; the older spelling and Go's key matching count
        let null = parse_netconf(br#"{"name":"n","cni.dev/valid-attachments":null}"#).unwrap();
        assert!(null.valid_attachments().unwrap().is_empty());
        let legacy = parse_netconf(br#"{"name":"n","cni.dev/attachments":[]}"#).unwrap();
        assert!(legacy.valid_attachments().unwrap().is_empty());
        let upper = parse_netconf(
            br#"{"name":"n","CNI.dev/Valid-Attachments":[{"containerID":"a","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(
            upper.valid_attachments().unwrap(),
            vec![("a".into(), "eth0".into())]
        );
        let wrong = parse_netconf(br#"{"name":"n","cni.dev/valid-attachments":[1]}"#).unwrap();
        assert_eq!(wrong.valid_attachments().unwrap_err().code(), 6);
    }

    #[test]
    fn version_defaults_to_010() {
        let conf = parse_netconf(br#"{"name":"n"}"#).unwrap();
        assert_eq!(conf.version(), "0.1.0");
    }
}
