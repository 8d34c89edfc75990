//! Network configs and conflists (`parse_netconf`), and CNI results of every version
//! (`CniResult::parse`, as a prevResult or as a delegate's/IPAM's output).
//!
//! Invariants beyond "no panic":
//! - a result printed at any version parses again, and printing that changes nothing;
//! - the bytes `to_json` prints are JSON for the same value (Go-style escaping round-trips);
//! - converting to the current version and back loses nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use weft_cni_core::{parse_netconf, CniResult, CURRENT_VERSION, SUPPORTED_VERSIONS};

fuzz_target!(|data: &[u8]| {
    if let Ok(conf) = parse_netconf(data) {
        let _ = conf.ipam_type();
        let _ = conf.valid_attachments();
        if let Ok(Some(prev)) = conf.parsed_prev_result() {
            check_result(&prev, conf.version());
        }
    }
    // The same bytes as a plugin's output (what IPAM or a delegate prints).
    if let Ok(result) = CniResult::parse_bytes(data) {
        check_result(&result, CURRENT_VERSION);
    }
    // A conflist: libcni hands each plugin the list's name and cniVersion.
    if let Ok(Value::Object(list)) = serde_json::from_slice::<Value>(data) {
        if let Some(Value::Array(plugins)) = list.get("plugins") {
            for plugin in plugins.iter().take(8) {
                if let Value::Object(p) = plugin {
                    let conf = plugin_conf(&list, p);
                    if let Ok(conf) = parse_netconf(conf.as_bytes()) {
                        let _ = conf.parsed_prev_result();
                    }
                }
            }
        }
    }
});

/// libcni's `buildOneConfig`: the plugin's object with the list's name and version injected.
fn plugin_conf(list: &Map<String, Value>, plugin: &Map<String, Value>) -> String {
    let mut conf = plugin.clone();
    for key in ["name", "cniVersion"] {
        if let Some(v) = list.get(key) {
            conf.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(conf).to_string()
}

fn check_result(result: &CniResult, conf_version: &str) {
    let versions = SUPPORTED_VERSIONS
        .iter()
        .copied()
        .chain([conf_version, "", "0.5.0"]);
    for version in versions {
        let Ok(printed) = result.to_value(version) else {
            continue;
        };
        let reparsed = match CniResult::parse(&printed) {
            Ok(r) => r,
            Err(e) => panic!("result printed at {version} does not parse: {e:?}\n{printed}"),
        };
        let again = reparsed.to_value(version).expect("reprint");
        assert_eq!(again, printed, "printing at {version} is not stable");

        let text = result.to_json(version).expect("to_json after to_value");
        let back: Value = serde_json::from_str(&text).expect("to_json prints JSON");
        assert_eq!(back, printed, "to_json and to_value disagree at {version}");
    }

    let current = result.to_value(CURRENT_VERSION).expect("current version");
    let mut want = result.clone();
    want.cni_version = CURRENT_VERSION.to_string();
    let got = CniResult::parse(&current).expect("current version parses");
    assert_eq!(got, want, "conversion to {CURRENT_VERSION} is lossy");
}
