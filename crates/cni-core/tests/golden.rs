//! Golden tests: results printed exactly as Go's `types.PrintResult` prints
//! them. Files under tests/golden/ were produced by the Go reference plugins
//! (v1.1.1, see gen.sh); the 1.1.0 strings below are written from the Go
//! struct definitions (field order, omitempty) of containernetworking/cni
//! pkg/types/100 and the fixture in its types_test.go.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use weft_cni_core::{parse_cidr, CniResult, Dns, Interface, IpConfig, Route};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(golden_dir().join(name)).unwrap()
}

fn parse_str(s: &str) -> CniResult {
    CniResult::parse(&serde_json::from_str::<Value>(s).unwrap()).unwrap()
}

const GO_VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

#[test]
fn go_plugin_outputs_print_back_identically() {
    let mut checked = 0;
    for plugin in ["host-local", "bridge"] {
        for v in GO_VERSIONS {
            let name = format!("{plugin}-{v}.json");
            assert_eq!(
                read(&format!("{name}.rc")).trim(),
                "0",
                "{name} failed in gen.sh"
            );
            let want = read(&name);
            let result = parse_str(&want);
            assert_eq!(result.cni_version, *v);
            assert_eq!(result.to_json(v).unwrap(), want, "{name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn go_outputs_have_no_trailing_newline_and_always_dns() {
    for v in GO_VERSIONS {
        let s = read(&format!("bridge-{v}.json"));
        assert!(s.ends_with('}'));
        assert!(s.contains("\"dns\": {}"));
    }
}

/// host-local results carry no interfaces, so every version converts into
/// every other without loss: printing version A's output at version B must
/// give Go's version-B output byte for byte.
#[test]
fn host_local_converts_between_all_versions() {
    for from in GO_VERSIONS {
        let result = parse_str(&read(&format!("host-local-{from}.json")));
        for to in GO_VERSIONS {
            let want = read(&format!("host-local-{to}.json"));
            assert_eq!(result.to_json(to).unwrap(), want, "{from} -> {to}");
        }
        // And the model reached through the 1.1.0 layout is the same.
        let via_current = parse_str(&result.to_json("1.1.0").unwrap());
        assert_eq!(via_current.ips, result.ips);
        assert_eq!(via_current.routes, result.routes);
        assert_eq!(via_current.dns, result.dns);
    }
}

#[test]
fn bridge_interfaces_survive_040_to_100() {
    let result = parse_str(&read("bridge-0.4.0.json"));
    assert_eq!(result.interfaces.len(), 3);
    assert_eq!(result.ips[0].interface, Some(2));
    let v100 = result.to_json("1.0.0").unwrap();
    let back = parse_str(&v100);
    assert_eq!(back.to_json("0.4.0").unwrap(), read("bridge-0.4.0.json"));
    assert!(!v100.contains("\"version\""));
}

/// The fixture of cni pkg/types/100/types_test.go, plus the 1.1.0 fields.
fn full_result() -> CniResult {
    CniResult {
        cni_version: "1.1.0".into(),
        interfaces: vec![Interface {
            name: "eth0".into(),
            mac: "00:11:22:33:44:55".into(),
            mtu: 1500,
            sandbox: "/proc/3553/ns/net".into(),
            socket_path: "/path/to/vhost/fd".into(),
            pci_id: "8086:9a01".into(),
            extra: Default::default(),
        }],
        ips: vec![
            IpConfig::new(
                parse_cidr("1.2.3.30/24").unwrap(),
                Some("1.2.3.1".parse().unwrap()),
                Some(0),
            ),
            IpConfig::new(
                parse_cidr("abcd:1234:ffff::cdde/64").unwrap(),
                Some("abcd:1234:ffff::1".parse().unwrap()),
                Some(0),
            ),
        ],
        routes: vec![
            Route {
                dst: parse_cidr("15.5.6.0/24").unwrap(),
                gw: Some("15.5.6.8".parse().unwrap()),
                mtu: 1400,
                advmss: 1360,
                priority: 100,
                table: Some(0),
                scope: Some(253),
                extra: Default::default(),
            },
            Route::new(
                parse_cidr("1111:dddd::/80").unwrap(),
                Some("1111:dddd::aaaa".parse().unwrap()),
            ),
        ],
        dns: Dns {
            nameservers: vec!["1.2.3.4".into(), "1::cafe".into()],
            domain: "acompany.com".into(),
            search: vec!["somedomain.com".into(), "otherdomain.net".into()],
            options: vec!["foo".into(), "bar".into()],
        },
        extra: Default::default(),
    }
}

const DNS_BLOCK: &str = r#"    "dns": {
        "nameservers": [
            "1.2.3.4",
            "1::cafe"
        ],
        "domain": "acompany.com",
        "search": [
            "somedomain.com",
            "otherdomain.net"
        ],
        "options": [
            "foo",
            "bar"
        ]
    }
}"#;

fn golden_100(version: &str) -> String {
    format!(
        r#"{{
    "cniVersion": "{version}",
    "interfaces": [
        {{
            "name": "eth0",
            "mac": "00:11:22:33:44:55",
            "mtu": 1500,
            "sandbox": "/proc/3553/ns/net",
            "socketPath": "/path/to/vhost/fd",
            "pciID": "8086:9a01"
        }}
    ],
    "ips": [
        {{
            "interface": 0,
            "address": "1.2.3.30/24",
            "gateway": "1.2.3.1"
        }},
        {{
            "interface": 0,
            "address": "abcd:1234:ffff::cdde/64",
            "gateway": "abcd:1234:ffff::1"
        }}
    ],
    "routes": [
        {{
            "dst": "15.5.6.0/24",
            "gw": "15.5.6.8",
            "mtu": 1400,
            "advmss": 1360,
            "priority": 100,
            "table": 0,
            "scope": 253
        }},
        {{
            "dst": "1111:dddd::/80",
            "gw": "1111:dddd::aaaa"
        }}
    ],
{DNS_BLOCK}"#
    )
}

/// types040: interfaces lose mtu/socketPath/pciID, ips gain "version"
/// (first, per the ipConfig struct), routes keep every types.Route field.
fn golden_040(version: &str) -> String {
    format!(
        r#"{{
    "cniVersion": "{version}",
    "interfaces": [
        {{
            "name": "eth0",
            "mac": "00:11:22:33:44:55",
            "sandbox": "/proc/3553/ns/net"
        }}
    ],
    "ips": [
        {{
            "version": "4",
            "interface": 0,
            "address": "1.2.3.30/24",
            "gateway": "1.2.3.1"
        }},
        {{
            "version": "6",
            "interface": 0,
            "address": "abcd:1234:ffff::cdde/64",
            "gateway": "abcd:1234:ffff::1"
        }}
    ],
    "routes": [
        {{
            "dst": "15.5.6.0/24",
            "gw": "15.5.6.8",
            "mtu": 1400,
            "advmss": 1360,
            "priority": 100,
            "table": 0,
            "scope": 253
        }},
        {{
            "dst": "1111:dddd::/80",
            "gw": "1111:dddd::aaaa"
        }}
    ],
{DNS_BLOCK}"#
    )
}

/// types020 via Go's 040->020 converter: routes keep only dst and gw.
fn golden_020(version: &str) -> String {
    format!(
        r#"{{
    "cniVersion": "{version}",
    "ip4": {{
        "ip": "1.2.3.30/24",
        "gateway": "1.2.3.1",
        "routes": [
            {{
                "dst": "15.5.6.0/24",
                "gw": "15.5.6.8"
            }}
        ]
    }},
    "ip6": {{
        "ip": "abcd:1234:ffff::cdde/64",
        "gateway": "abcd:1234:ffff::1",
        "routes": [
            {{
                "dst": "1111:dddd::/80",
                "gw": "1111:dddd::aaaa"
            }}
        ]
    }},
{DNS_BLOCK}"#
    )
}

fn golden_for(version: &str) -> String {
    match version {
        "1.0.0" | "1.1.0" => golden_100(version),
        "0.3.0" | "0.3.1" | "0.4.0" => golden_040(version),
        _ => golden_020(version),
    }
}

#[test]
fn model_prints_every_version() {
    let r = full_result();
    for v in weft_cni_core::SUPPORTED_VERSIONS {
        assert_eq!(r.to_json(v).unwrap(), golden_for(v), "print at {v}");
    }
}

#[test]
fn every_version_parses_and_prints_back() {
    for v in weft_cni_core::SUPPORTED_VERSIONS {
        let golden = golden_for(v);
        let parsed = parse_str(&golden);
        assert_eq!(parsed.cni_version, *v);
        assert_eq!(parsed.to_json(v).unwrap(), golden, "round trip at {v}");
    }
}

#[test]
fn up_conversion_from_each_version() {
    // 1.x keeps everything.
    assert_eq!(
        parse_str(&golden_100("1.0.0")),
        CniResult {
            cni_version: "1.0.0".into(),
            ..full_result()
        }
    );
    // 0.4.0 -> 1.1.0 loses only what 0.4.0 cannot carry.
    let from040 = parse_str(&golden_040("0.4.0"));
    let mut want = full_result();
    want.cni_version = "0.4.0".into();
    want.interfaces[0].mtu = 0;
    want.interfaces[0].socket_path.clear();
    want.interfaces[0].pci_id.clear();
    assert_eq!(from040, want);
    // 0.2.0 -> 1.1.0: no interfaces, no interface index, ip4 before ip6,
    // each family's routes appended in order.
    let from020 = parse_str(&golden_020("0.2.0"));
    assert!(from020.interfaces.is_empty());
    assert_eq!(from020.ips.len(), 2);
    assert!(from020.ips.iter().all(|i| i.interface.is_none()));
    assert_eq!(from020.routes.len(), 2);
    assert_eq!(from020.routes[0].mtu, 0);
    let want_100 = r#"{
    "cniVersion": "1.1.0",
    "ips": [
        {
            "address": "1.2.3.30/24",
            "gateway": "1.2.3.1"
        },
        {
            "address": "abcd:1234:ffff::cdde/64",
            "gateway": "abcd:1234:ffff::1"
        }
    ],
    "routes": [
        {
            "dst": "15.5.6.0/24",
            "gw": "15.5.6.8"
        },
        {
            "dst": "1111:dddd::/80",
            "gw": "1111:dddd::aaaa"
        }
    ],
"#;
    assert_eq!(
        from020.to_json("1.1.0").unwrap(),
        format!("{want_100}{DNS_BLOCK}")
    );
}

#[test]
fn down_conversion_to_020_picks_first_ip_per_family() {
    let mut r = full_result();
    r.ips.insert(
        0,
        IpConfig::new(parse_cidr("10.0.0.5/8").unwrap(), None, Some(0)),
    );
    let v = r.to_value("0.2.0").unwrap();
    assert_eq!(v["ip4"]["ip"], "10.0.0.5/8");
    assert!(v["ip4"].get("gateway").is_none());
    assert_eq!(v["ip6"]["ip"], "abcd:1234:ffff::cdde/64");

    // Only IPv6: no ip4 key, v4 routes are dropped.
    let mut r = full_result();
    r.ips.remove(0);
    let v = r.to_value("0.1.0").unwrap();
    assert!(v.get("ip4").is_none());
    assert_eq!(v["ip6"]["routes"].as_array().unwrap().len(), 1);

    // No IPs at all cannot be expressed before 0.3.0.
    let r = CniResult::default();
    let e = r.to_value("0.2.0").unwrap_err();
    assert_eq!(e.msg(), "cannot convert: no valid IP addresses");
}

#[test]
fn ipam_result_has_no_interfaces_and_empty_dns() {
    let r = CniResult {
        cni_version: "1.0.0".into(),
        ips: vec![IpConfig::new(
            parse_cidr("10.1.2.2/24").unwrap(),
            Some("10.1.2.1".parse().unwrap()),
            None,
        )],
        ..Default::default()
    };
    assert_eq!(
        r.to_json("1.0.0").unwrap(),
        "{\n    \"cniVersion\": \"1.0.0\",\n    \"ips\": [\n        {\n            \"address\": \"10.1.2.2/24\",\n            \"gateway\": \"10.1.2.1\"\n        }\n    ],\n    \"dns\": {}\n}"
    );
}

#[test]
fn interface_index_zero_is_printed_and_none_is_omitted() {
    let mut r = CniResult::default();
    r.interfaces.push(Interface {
        name: "eth0".into(),
        ..Default::default()
    });
    r.ips.push(IpConfig::new(
        parse_cidr("10.1.2.3/24").unwrap(),
        None,
        Some(0),
    ));
    r.ips.push(IpConfig::new(
        parse_cidr("10.1.2.4/24").unwrap(),
        None,
        None,
    ));
    let v = r.to_value("1.1.0").unwrap();
    assert_eq!(
        v["ips"][0],
        json!({"interface": 0, "address": "10.1.2.3/24"})
    );
    assert_eq!(v["ips"][1], json!({"address": "10.1.2.4/24"}));
    // An interface with only a name prints only the name (mac/sandbox omitempty).
    assert_eq!(v["interfaces"][0], json!({"name": "eth0"}));
}

#[test]
fn unknown_fields_round_trip_at_every_level() {
    let prev = r#"{
    "cniVersion": "1.1.0",
    "interfaces": [
        {
            "name": "eth0",
            "sandbox": "/var/run/netns/x",
            "x-iface": [
                1,
                2
            ]
        }
    ],
    "ips": [
        {
            "interface": 0,
            "address": "10.1.2.2/24",
            "x-ip": "keep"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0",
            "gw": "10.1.2.1",
            "x-route": {
                "nested": true
            }
        }
    ],
    "dns": {},
    "x-top": "kept \u003cescaped\u003e"
}"#;
    let r = parse_str(prev);
    assert_eq!(r.extra["x-top"], "kept <escaped>");
    assert_eq!(r.interfaces[0].extra["x-iface"], json!([1, 2]));
    assert_eq!(r.ips[0].extra["x-ip"], "keep");
    assert_eq!(r.routes[0].extra["x-route"], json!({"nested": true}));
    assert_eq!(r.to_json("1.1.0").unwrap(), prev);
    // Converting keeps them too, without duplicating keys.
    let v040 = r.to_value("0.4.0").unwrap();
    assert_eq!(v040["x-top"], "kept <escaped>");
    assert_eq!(v040["ips"][0]["x-ip"], "keep");
    assert_eq!(v040["ips"][0]["version"], "4");
}

#[test]
fn keys_of_other_versions_are_not_kept_as_unknown() {
    // A 1.0.0 result carrying 0.4.0's "version" and 0.2.0's "ip4" prints as Go
    // would: those keys are dropped, not echoed.
    let r = parse_str(
        r#"{"cniVersion":"1.0.0","ips":[{"version":"4","address":"10.0.0.2/24"}],"ip4":{"ip":"10.0.0.9/24"}}"#,
    );
    let v = r.to_value("1.0.0").unwrap();
    assert_eq!(
        v,
        json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}],"dns":{}})
    );
    let v = r.to_value("0.3.1").unwrap();
    assert_eq!(v["ips"][0], json!({"version":"4","address":"10.0.0.2/24"}));
}

#[test]
fn missing_version_means_010_and_bad_versions_fail() {
    let r = parse_str(r#"{"ip4":{"ip":"10.0.0.2/24"}}"#);
    assert_eq!(r.cni_version, "0.1.0");
    assert_eq!(r.ips.len(), 1);
    let e = CniResult::parse(&json!({"cniVersion": "0.5.0"})).unwrap_err();
    assert_eq!(e.msg(), r#"unsupported CNI result version "0.5.0""#);
    let e = full_result().to_value("0.5.0").unwrap_err();
    assert_eq!(
        e.msg(),
        "no converter for CNI result version 1.1.0 to 0.5.0"
    );
}

#[test]
fn bad_addresses_are_rejected() {
    let e = CniResult::parse(&json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2"}]}))
        .unwrap_err();
    assert_eq!(e.msg(), "invalid CIDR address: 10.0.0.2");
    let e = CniResult::parse(&json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/33"}]}))
        .unwrap_err();
    assert_eq!(e.code(), 6);
    let e = CniResult::parse(
        &json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":"x"}]}),
    )
    .unwrap_err();
    assert_eq!(e.msg(), "invalid IP address: x");
    let e = CniResult::parse(&json!({"cniVersion":"1.0.0","ips":[{"address":5}]})).unwrap_err();
    assert!(e.msg().starts_with("json: cannot unmarshal"), "{}", e.msg());
    // An empty gateway string is Go's nil net.IP.
    let r = CniResult::parse(
        &json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":""}]}),
    )
    .unwrap();
    assert_eq!(r.ips[0].gateway, None);
}

#[test]
fn host_bits_and_ipv4_mapped_addresses_print_like_go() {
    let r = parse_str(
        r#"{"cniVersion":"1.0.0","ips":[{"address":"::ffff:10.1.2.3/120","gateway":"::ffff:10.1.2.1"}],
            "routes":[{"dst":"10.9.8.7/8"}]}"#,
    );
    let v = r.to_value("0.4.0").unwrap();
    assert_eq!(
        v["ips"][0],
        json!({"version":"4","address":"10.1.2.3/24","gateway":"10.1.2.1"})
    );
    assert_eq!(v["routes"][0]["dst"], "10.9.8.7/8");
    // IPv6 text is canonical (RFC 5952), as Go's net.IP.String.
    let r = parse_str(r#"{"cniVersion":"1.0.0","ips":[{"address":"2001:DB8:0:0:0:0:0:1/64"}]}"#);
    assert_eq!(
        r.to_value("1.0.0").unwrap()["ips"][0]["address"],
        "2001:db8::1/64"
    );
}
