//! CNI_ARGS parsing with the semantics of Go's `types.LoadArgs`.

use std::collections::BTreeMap;

use crate::error::{CniError, Result};
use crate::gojson;

/// The key every Go args struct has (`types.CommonArgs`).
pub const IGNORE_UNKNOWN: &str = "IgnoreUnknown";

/// Go's `UnmarshallableBool`: "1"/"true" and "0"/"false", any case.
pub fn parse_bool(s: &str) -> std::result::Result<bool, String> {
    let lower = s.to_lowercase();
    match lower.as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("boolean unmarshal error: invalid input {lower}")),
    }
}

/// Parses `K=V;K2=V2` into the pairs whose key is in `known` (exact,
/// case-sensitive match, like Go's struct field lookup) or is
/// `IgnoreUnknown`. A pair without exactly one `=` is an error, and so are
/// unknown keys unless `IgnoreUnknown` is true. Later duplicates win.
///
/// Errors are plain Go errors in the reference plugins, so they carry code
/// 999 here; callers may re-code them.
pub fn parse_cni_args(s: &str, known: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if s.is_empty() {
        return Ok(out);
    }
    let mut unknown: Vec<&str> = Vec::new();
    let mut ignore_unknown = false;
    for pair in s.split(';') {
        let kv: Vec<&str> = pair.split('=').collect();
        let (key, value) = match kv.as_slice() {
            [k, v] => (*k, *v),
            _ => {
                return Err(CniError::Internal(format!(
                    "ARGS: invalid pair {}",
                    gojson::quote(pair)
                )))
            }
        };
        if key == IGNORE_UNKNOWN {
            ignore_unknown = parse_bool(value).map_err(|e| {
                // The stray ")" is in Go's format string too.
                CniError::Internal(format!(
                    "ARGS: error parsing value of pair {}: {e})",
                    gojson::quote(pair)
                ))
            })?;
        } else if !known.contains(&key) {
            unknown.push(pair);
            continue;
        }
        out.insert(key.to_string(), value.to_string());
    }
    if !unknown.is_empty() && !ignore_unknown {
        return Err(CniError::Internal(format!(
            "ARGS: unknown args {}",
            gojson::quote_list(&unknown)
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_ok() {
        assert!(parse_cni_args("", &["IP"]).unwrap().is_empty());
    }

    #[test]
    fn known_keys_parse() {
        let m = parse_cni_args("IP=10.1.2.3;MAC=aa", &["IP", "MAC"]).unwrap();
        assert_eq!(m["IP"], "10.1.2.3");
        assert_eq!(m["MAC"], "aa");
    }

    #[test]
    fn unknown_keys_error_unless_ignored() {
        let e = parse_cni_args("IP=10.1.2.3;FOO=bar;BAZ=1", &["IP"]).unwrap_err();
        assert_eq!(e.msg(), r#"ARGS: unknown args ["FOO=bar" "BAZ=1"]"#);
        assert_eq!(e.code(), 999);
        // IgnoreUnknown works wherever it appears in the list.
        let m = parse_cni_args("K8S_POD_NAME=p;IgnoreUnknown=1;IP=10.1.2.3", &["IP"]).unwrap();
        assert_eq!(m["IP"], "10.1.2.3");
        assert!(!m.contains_key("K8S_POD_NAME"));
        for t in ["true", "True", "TRUE", "1"] {
            assert!(parse_cni_args(&format!("IgnoreUnknown={t};X=1"), &[]).is_ok());
        }
        for f in ["0", "false", "False"] {
            assert!(parse_cni_args(&format!("IgnoreUnknown={f};X=1"), &[]).is_err());
        }
    }

    #[test]
    fn keys_are_case_sensitive() {
        let e = parse_cni_args("ip=1.2.3.4", &["IP"]).unwrap_err();
        assert_eq!(e.msg(), r#"ARGS: unknown args ["ip=1.2.3.4"]"#);
        assert!(parse_cni_args("ignoreunknown=1;x=1", &[]).is_err());
    }

    #[test]
    fn bad_pairs() {
        let e = parse_cni_args("IP", &["IP"]).unwrap_err();
        assert_eq!(e.msg(), r#"ARGS: invalid pair "IP""#);
        let e = parse_cni_args("IP=1=2", &["IP"]).unwrap_err();
        assert_eq!(e.msg(), r#"ARGS: invalid pair "IP=1=2""#);
        let e = parse_cni_args("IP=1;", &["IP"]).unwrap_err();
        assert_eq!(e.msg(), r#"ARGS: invalid pair """#);
        let e = parse_cni_args("IgnoreUnknown=yes", &[]).unwrap_err();
        assert_eq!(
            e.msg(),
            r#"ARGS: error parsing value of pair "IgnoreUnknown=yes": boolean unmarshal error: invalid input yes)"#
        );
    }

    #[test]
    fn empty_value_and_duplicates() {
        let m = parse_cni_args("IP=;IP=2", &["IP"]).unwrap();
        assert_eq!(m["IP"], "2");
        let m = parse_cni_args("IP=", &["IP"]).unwrap();
        assert_eq!(m["IP"], "");
    }
}
