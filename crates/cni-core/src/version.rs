//! CNI spec versions: the supported list, comparison, and the VERSION reply.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{codes, CniError, Result};
use crate::gojson;

/// Every version the weft plugins accept (Go's `version.All`).
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// The spec version this library implements (`version.Current()`).
pub const CURRENT_VERSION: &str = "1.1.0";

/// The version assumed when a config or result has no `cniVersion`.
pub const DEFAULT_VERSION: &str = "0.1.0";

fn parse_part(label: &str, part: &str) -> std::result::Result<i64, String> {
    part.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!(
            "failed to convert {label} version part {}: strconv.Atoi: parsing {}: {why}",
            gojson::quote(part),
            gojson::quote(part)
        )
    })
}

/// Go's `version.ParseVersion`: "major[.minor[.micro]]".
pub fn parse_version(version: &str) -> std::result::Result<(i64, i64, i64), String> {
    if version.is_empty() {
        return Err(format!(
            "invalid version {}: the version is empty",
            gojson::quote(version)
        ));
    }
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() >= 4 {
        return Err(format!(
            "invalid version {}: too many parts",
            gojson::quote(version)
        ));
    }
    let major = parse_part("major", parts.first().copied().unwrap_or(""))?;
    let minor = match parts.get(1) {
        Some(p) => parse_part("minor", p)?,
        None => 0,
    };
    let micro = match parts.get(2) {
        Some(p) => parse_part("micro", p)?,
        None => 0,
    };
    Ok((major, minor, micro))
}

/// Compares two versions numerically. A malformed version is a decode error
/// (code 6), as in skel.
pub fn version_cmp(a: &str, b: &str) -> Result<Ordering> {
    let a = parse_version(a).map_err(CniError::Decode)?;
    let b = parse_version(b).map_err(CniError::Decode)?;
    Ok(a.cmp(&b))
}

/// Go's `version.GreaterThanOrEqualTo`.
pub fn greater_than_or_equal_to(a: &str, b: &str) -> Result<bool> {
    Ok(version_cmp(a, b)? != Ordering::Less)
}

/// Go's `Reconciler.Check`: the config version must be listed exactly.
pub fn check_supported(config_version: &str, supported: &[&str]) -> Result<()> {
    if supported.contains(&config_version) {
        return Ok(());
    }
    Err(CniError::with_details(
        codes::INCOMPATIBLE_VERSION,
        "incompatible CNI versions",
        format!(
            "config is {}, plugin supports {}",
            gojson::quote(config_version),
            gojson::quote_list(supported)
        ),
    ))
}

/// What VERSION prints: Go's `json.NewEncoder(w).Encode(pluginInfo)`, compact
/// with a trailing newline.
pub fn version_reply(supported: &[&str]) -> String {
    let mut m = Map::new();
    m.insert("cniVersion".into(), Value::from(CURRENT_VERSION));
    m.insert(
        "supportedVersions".into(),
        Value::Array(supported.iter().map(|v| Value::from(*v)).collect()),
    );
    let mut out = gojson::to_string(&Value::Object(m));
    out.push('\n');
    out
}

/// `cniVersion` of a config, as Go's `ConfigDecoder.Decode` reads it: missing
/// or empty means 0.1.0.
pub fn decode_config_version(v: &Value) -> Result<String> {
    let obj = match v {
        Value::Object(obj) => obj,
        Value::Null => return Ok(DEFAULT_VERSION.to_string()),
        other => {
            return Err(CniError::Decode(format!(
                "decoding version from network config: json: cannot unmarshal {} into Go value of type struct {{ CNIVersion string \"json:\\\"cniVersion\\\"\" }}",
                gojson::kind(other)
            )))
        }
    };
    match gojson::field(obj, "cniVersion") {
        None | Some(Value::Null) => Ok(DEFAULT_VERSION.to_string()),
        Some(Value::String(s)) if s.is_empty() => Ok(DEFAULT_VERSION.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(CniError::Decode(format!(
            "decoding version from network config: json: cannot unmarshal {} into Go struct field .cniVersion of type string",
            gojson::kind(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_numerically() {
        assert_eq!(version_cmp("0.4.0", "0.3.1").unwrap(), Ordering::Greater);
        assert_eq!(version_cmp("1.1.0", "1.1.0").unwrap(), Ordering::Equal);
        assert_eq!(version_cmp("0.10.0", "0.9.0").unwrap(), Ordering::Greater);
        assert_eq!(version_cmp("1.1", "1.1.0").unwrap(), Ordering::Equal);
        assert_eq!(version_cmp("1", "0.4.0").unwrap(), Ordering::Greater);
    }

    #[test]
    fn rejects_bad_versions_with_go_text() {
        let e = version_cmp("1.2.3.4", "0.4.0").unwrap_err();
        assert_eq!(e.code(), 6);
        assert_eq!(e.msg(), r#"invalid version "1.2.3.4": too many parts"#);
        let e = version_cmp("x.1", "0.4.0").unwrap_err();
        assert_eq!(
            e.msg(),
            r#"failed to convert major version part "x": strconv.Atoi: parsing "x": invalid syntax"#
        );
        let e = version_cmp("", "0.4.0").unwrap_err();
        assert_eq!(e.msg(), r#"invalid version "": the version is empty"#);
    }

    #[test]
    fn version_reply_matches_go_encoder() {
        assert_eq!(
            version_reply(SUPPORTED_VERSIONS),
            "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.1.0\",\"0.2.0\",\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n"
        );
    }

    #[test]
    fn incompatible_details() {
        let e = check_supported("0.5.0", SUPPORTED_VERSIONS).unwrap_err();
        assert_eq!(e.code(), 1);
        assert_eq!(e.msg(), "incompatible CNI versions");
        assert_eq!(
            e.details(),
            r#"config is "0.5.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]"#
        );
    }

    #[test]
    fn config_version_defaults() {
        use serde_json::json;
        assert_eq!(decode_config_version(&json!({})).unwrap(), "0.1.0");
        assert_eq!(
            decode_config_version(&json!({"cniVersion": ""})).unwrap(),
            "0.1.0"
        );
        assert_eq!(
            decode_config_version(&json!({"cniVersion": "1.0.0"})).unwrap(),
            "1.0.0"
        );
        assert_eq!(
            decode_config_version(&json!({"cniVersion": 1}))
                .unwrap_err()
                .code(),
            6
        );
    }
}
