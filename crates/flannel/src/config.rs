//! The flannel meta-plugin's network configuration (Go's `NetConf` in `flannel.go`).
//!
//! Keys match exactly first, then case-insensitively, and the last matching key wins, as
//! with Go's `encoding/json` decoding into a struct. The `delegate`, `ipam` and
//! `runtimeConfig` objects are Go maps, so the keys *inside* them are kept verbatim and looked
//! up exactly (`"Name"` inside `delegate` is not `"name"`), again as in Go.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use weft_cni_core::{gojson, parse_netconf, CniError, NetConf, Result};

pub const DEFAULT_SUBNET_FILE: &str = "/run/flannel/subnet.env";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/flannel";
/// How long ADD waits for a missing subnet.env by default (`subnetFileWaitSeconds`).
pub const DEFAULT_SUBNET_FILE_WAIT: Duration = Duration::from_secs(5);
/// The longest wait the key accepts: a runtime's ADD must not hang.
pub const MAX_SUBNET_FILE_WAIT_SECS: f64 = 300.0;

#[derive(Debug, Clone)]
pub struct FlannelConf {
    /// As given; empty when the config has none.
    pub cni_version: String,
    pub name: String,
    /// Kept as a string: it appears verbatim in Go's error messages.
    pub subnet_file: String,
    pub data_dir: PathBuf,
    /// `delegate`, None when absent or null.
    pub delegate: Option<Map<String, Value>>,
    /// `ipam`, None when absent or null.
    pub ipam: Option<Map<String, Value>>,
    /// `runtimeConfig`, None when absent or null (`{}` is kept: Go copies an empty map too).
    pub runtime_config: Option<Map<String, Value>>,
    /// The shared keys (prevResult, valid attachments, ...).
    pub net: NetConf,
    /// `subnetFileWaitSeconds` as given (weft only; read by ADD alone, so a bad value never
    /// stops a DEL).
    pub subnet_file_wait: Option<Value>,
}

/// Go's field decoding error, naming the key.
fn type_error(v: &Value, field: &str, go_type: &str) -> CniError {
    CniError::Decode(format!(
        "failed to load netconf: json: cannot unmarshal {} into Go struct field NetConf.{field} of type {go_type}",
        gojson::kind(v)
    ))
}

fn string_key(obj: &Map<String, Value>, key: &str, default: &str) -> Result<String> {
    match gojson::field(obj, key) {
        // Go leaves the default in place for a missing key or a JSON null. An empty string
        // would make Go open "" (subnetFile) or write into its working directory (dataDir);
        // weft takes it as unset.
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) if s.is_empty() => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error(other, key, "string")),
    }
}

fn object_key(obj: &Map<String, Value>, key: &str) -> Result<Option<Map<String, Value>>> {
    match gojson::field(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(type_error(other, key, "map[string]interface {}")),
    }
}

impl FlannelConf {
    /// Parses the config on stdin (Go's `loadFlannelNetConf`).
    pub fn load(stdin: &[u8]) -> Result<FlannelConf> {
        let net = parse_netconf(stdin)?;
        let v: Value = serde_json::from_slice(stdin)
            .map_err(|e| CniError::Decode(format!("failed to load netconf: {e}")))?;
        let obj = v.as_object().ok_or_else(|| {
            CniError::Decode(format!(
                "failed to load netconf: json: cannot unmarshal {} into Go value of type main.NetConf",
                gojson::kind(&v)
            ))
        })?;
        Ok(FlannelConf {
            cni_version: net.cni_version.clone(),
            name: net.name.clone(),
            subnet_file: string_key(obj, "subnetFile", DEFAULT_SUBNET_FILE)?,
            data_dir: PathBuf::from(string_key(obj, "dataDir", DEFAULT_DATA_DIR)?),
            delegate: object_key(obj, "delegate")?,
            ipam: object_key(obj, "ipam")?,
            runtime_config: object_key(obj, "runtimeConfig")?,
            net,
            subnet_file_wait: gojson::field(obj, "subnetFileWaitSeconds")
                .filter(|v| !v.is_null())
                .cloned(),
        })
    }

    /// How long ADD waits for subnet.env to appear (flanneld writes it once it holds a
    /// lease; a node that boots starts pods before that, flannel#2437): `subnetFileWaitSeconds`,
    /// a number of seconds from 0 (no wait) to 300, default 5.
    pub fn subnet_file_wait(&self) -> Result<Duration> {
        let Some(v) = &self.subnet_file_wait else {
            return Ok(DEFAULT_SUBNET_FILE_WAIT);
        };
        match v.as_f64() {
            Some(secs) if (0.0..=MAX_SUBNET_FILE_WAIT_SECS).contains(&secs) => {
                Ok(Duration::from_secs_f64(secs))
            }
            _ => Err(CniError::InvalidConfig(format!(
                "invalid \"subnetFileWaitSeconds\": expected a number of seconds from 0 to {MAX_SUBNET_FILE_WAIT_SECS}, got {v}"
            ))),
        }
    }

    /// The config version, 0.1.0 when unset (what the delegate will assume too).
    pub fn version(&self) -> &str {
        self.net.version()
    }

    /// The `delegate` object after Go's checks (`cmdAdd`), plus one of ours: its `type` must be
    /// a bare plugin name, so the delegate is always a binary from CNI_PATH.
    pub fn checked_delegate(&self) -> Result<Map<String, Value>> {
        let Some(d) = &self.delegate else {
            return Ok(Map::new());
        };
        if let Some(t) = d.get("type") {
            let Value::String(t) = t else {
                return Err(CniError::InvalidConfig(
                    "'delegate' dictionary, if present, must have (string) 'type' field"
                        .to_string(),
                ));
            };
            check_plugin_name(t)?;
        }
        for key in ["name", "ipam"] {
            if d.contains_key(key) {
                return Err(CniError::InvalidConfig(format!(
                    "'delegate' dictionary must not have '{key}' field, it'll be set by flannel"
                )));
            }
        }
        Ok(d.clone())
    }
}

/// A delegate `type` must name a file inside a CNI_PATH directory: no path separators, not
/// `.` or `..`, not empty.
pub fn check_plugin_name(t: &str) -> Result<()> {
    if t.is_empty() || t == "." || t == ".." || t.contains('/') || t.contains('\0') {
        return Err(CniError::InvalidConfig(format!(
            "'delegate' type {} is not a plugin name: it must name a plugin binary in CNI_PATH",
            gojson::quote(t)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn subnet_file_wait_key() {
        let w = |conf: &str| {
            FlannelConf::load(conf.as_bytes())
                .unwrap()
                .subnet_file_wait()
        };
        assert_eq!(w(r#"{"name":"n"}"#).unwrap(), DEFAULT_SUBNET_FILE_WAIT);
        assert_eq!(
            w(r#"{"name":"n","subnetFileWaitSeconds":null}"#).unwrap(),
            DEFAULT_SUBNET_FILE_WAIT
        );
        assert_eq!(
            w(r#"{"name":"n","subnetFileWaitSeconds":0}"#).unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            w(r#"{"name":"n","subnetfilewaitseconds":0.25}"#).unwrap(),
            Duration::from_millis(250)
        );
        for bad in ["-1", "301", "\"5\"", "true"] {
            let e = w(&format!(r#"{{"name":"n","subnetFileWaitSeconds":{bad}}}"#)).unwrap_err();
            assert_eq!(e.code(), 7, "{bad}");
            assert!(e.msg().contains("\"subnetFileWaitSeconds\""), "{}", e.msg());
        }
    }

    use super::*;

    #[test]
    fn defaults() {
        let c = FlannelConf::load(br#"{"name":"cni-flannel","type":"flannel"}"#).unwrap();
        assert_eq!(c.subnet_file, DEFAULT_SUBNET_FILE);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(c.delegate.is_none() && c.ipam.is_none() && c.runtime_config.is_none());
        assert_eq!(c.version(), "0.1.0");
        // null and "" leave the defaults
        let c = FlannelConf::load(
            br#"{"name":"n","subnetFile":null,"dataDir":"","delegate":null,"runtimeConfig":null}"#,
        )
        .unwrap();
        assert_eq!(c.subnet_file, DEFAULT_SUBNET_FILE);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(c.delegate.is_none() && c.runtime_config.is_none());
    }

    #[test]
    fn keys_are_case_insensitive_last_wins() {
        let c = FlannelConf::load(
            br#"{"name":"n","SubnetFile":"/a","subnetfile":"/b","DATADIR":"/d",
                "Delegate":{"Type":"x"},"RUNTIMECONFIG":{}}"#,
        )
        .unwrap();
        assert_eq!(c.subnet_file, "/b");
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        // keys inside the delegate map are verbatim
        assert!(c.delegate.as_ref().unwrap().contains_key("Type"));
        assert_eq!(c.runtime_config, Some(Map::new()));
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = FlannelConf::load(br#"{"name":"n","subnetFile":5}"#).unwrap_err();
        assert_eq!(e.code(), 6);
        assert!(
            e.msg().contains("NetConf.subnetFile of type string"),
            "{}",
            e.msg()
        );
        let e = FlannelConf::load(br#"{"name":"n","delegate":"bridge"}"#).unwrap_err();
        assert_eq!(e.code(), 6);
        assert!(e.msg().contains("NetConf.delegate"), "{}", e.msg());
    }

    #[test]
    fn delegate_checks_use_go_wording() {
        let check = |s: &str| {
            FlannelConf::load(s.as_bytes())
                .unwrap()
                .checked_delegate()
                .unwrap_err()
        };
        let e = check(r#"{"name":"n","delegate":{"name":"x"}}"#);
        assert_eq!(e.code(), 7);
        assert_eq!(
            e.msg(),
            "'delegate' dictionary must not have 'name' field, it'll be set by flannel"
        );
        let e = check(r#"{"name":"n","delegate":{"ipam":{}}}"#);
        assert_eq!(
            e.msg(),
            "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel"
        );
        let e = check(r#"{"name":"n","delegate":{"type":1}}"#);
        assert_eq!(
            e.msg(),
            "'delegate' dictionary, if present, must have (string) 'type' field"
        );
        for bad in ["../bridge", "/usr/lib/cni/bridge", "", ".."] {
            let e = check(&format!(r#"{{"name":"n","delegate":{{"type":"{bad}"}}}}"#));
            assert_eq!(e.code(), 7, "{bad}");
            assert!(e.msg().contains("CNI_PATH"), "{}", e.msg());
        }
        let ok = FlannelConf::load(br#"{"name":"n","delegate":{"type":"ipvlan","Name":"x"}}"#)
            .unwrap()
            .checked_delegate()
            .unwrap();
        assert_eq!(ok["type"], "ipvlan");
    }
}
