//! Building the delegate's network config (Go's `doCmdAdd` and `getDelegateIPAM`) and
//! printing it byte for byte as Go's `json.Marshal` does.
//!
//! Go keeps the delegate in a `map[string]interface{}`, so `json.Marshal` sorts its keys, and
//! every object that came from the config is a map too (sorted). The only structs are the
//! routes (`types.Route`: dst, gw, mtu, advmss, priority, table, scope). Every JSON number that
//! came from the config went through a Go `float64` and is printed the way Go prints one.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};
use weft_cni_core::{cidr_string, gojson, parse_cidr, parse_ip, CniError, Result};

use crate::config::FlannelConf;
use crate::subnet_env::{net_string, SubnetEnv};

/// The delegate config: its plugin type and the exact bytes saved and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegate {
    pub plugin_type: String,
    pub bytes: String,
}

/// Builds the delegate config the way Go's `cmdAdd` + `doCmdAdd` do, from a conf whose
/// delegate already passed [`FlannelConf::checked_delegate`].
pub fn build(conf: &FlannelConf, env: &SubnetEnv) -> Result<Delegate> {
    let value = build_value(conf, env)?;
    let plugin_type = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("bridge")
        .to_string();
    Ok(Delegate {
        plugin_type,
        bytes: marshal(&value),
    })
}

/// The delegate config as a JSON value with Go's key order.
pub fn build_value(conf: &FlannelConf, env: &SubnetEnv) -> Result<Value> {
    let mut d: BTreeMap<String, Value> = conf
        .checked_delegate()?
        .into_iter()
        .map(|(k, v)| (k, sorted(&v)))
        .collect();
    if let Some(rc) = &conf.runtime_config {
        d.insert("runtimeConfig".into(), sorted(&Value::Object(rc.clone())));
    }
    d.insert("name".into(), Value::from(conf.name.as_str()));
    d.entry("type".into())
        .or_insert_with(|| Value::from("bridge"));
    // If flanneld masquerades, the bridge must not (and the reverse): deliberate in Go.
    d.entry("ipMasq".into())
        .or_insert_with(|| Value::Bool(!env.ipmasq.unwrap_or(false)));
    if !d.contains_key("mtu") {
        let mtu = env.mtu.map_or(Value::Null, Value::from);
        d.insert("mtu".into(), mtu);
    }
    if d.get("type").and_then(Value::as_str) == Some("bridge") {
        d.entry("isGateway".into()).or_insert(Value::Bool(true));
    }
    if !conf.cni_version.is_empty() {
        d.insert("cniVersion".into(), Value::from(conf.cni_version.as_str()));
    }
    let ipam =
        delegate_ipam(conf, env).map_err(|e| e.context("failed to assemble Delegate IPAM"))?;
    d.insert("ipam".into(), ipam);
    Ok(Value::Object(d.into_iter().collect()))
}

/// Go's `getDelegateIPAM`: the conf's ipam, `type` defaulting to host-local, `ranges`
/// overwritten with the node's subnets, `routes` = the conf's routes + one per network.
fn delegate_ipam(conf: &FlannelConf, env: &SubnetEnv) -> Result<Value> {
    let mut ipam: BTreeMap<String, Value> = conf
        .ipam
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), sorted(v)))
        .collect();
    ipam.entry("type".into())
        .or_insert_with(|| Value::from("host-local"));

    let range = |n| {
        let mut m = Map::new();
        m.insert("subnet".into(), Value::from(net_string(n)));
        Value::Array(vec![Value::Object(m)])
    };
    let ranges: Vec<Value> = env
        .subnet
        .iter()
        .chain(&env.ip6_subnet)
        .map(range)
        .collect();
    ipam.insert("ranges".into(), Value::Array(ranges));

    let mut routes = conf_routes(conf.ipam.as_ref().and_then(|i| i.get("routes")))
        .map_err(|e| e.context("failed to read IPAM routes"))?;
    for n in env.networks.iter().chain(&env.ip6_networks) {
        let mut m = Map::new();
        m.insert("dst".into(), Value::from(net_string(n)));
        routes.push(Value::Object(m));
    }
    ipam.insert("routes".into(), Value::Array(routes));
    Ok(Value::Object(ipam.into_iter().collect()))
}

fn route_error(msg: String) -> CniError {
    CniError::InvalidConfig(format!("failed to parse ipam.routes: {msg}"))
}

/// The conf's `ipam.routes`, decoded into Go's `types.Route` and encoded again: keys matched
/// case-insensitively, unknown keys dropped, struct field order.
fn conf_routes(v: Option<&Value>) -> Result<Vec<Value>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, r)| route_value(i, r))
            .collect(),
        Some(other) => Err(route_error(format!(
            "json: cannot unmarshal {} into Go value of type []types.Route",
            gojson::kind(other)
        ))),
    }
}

const ROUTE_KEYS: [&str; 7] = ["dst", "gw", "mtu", "advmss", "priority", "table", "scope"];

fn route_value(i: usize, v: &Value) -> Result<Value> {
    let Value::Object(obj) = v else {
        return Err(route_error(format!(
            "routes[{i}]: json: cannot unmarshal {} into Go value of type types.Route",
            gojson::kind(v)
        )));
    };
    let (f, _) = gojson::split_fields(obj, &ROUTE_KEYS);
    let get = |idx: usize| f.get(idx).copied().flatten().filter(|v| !v.is_null());
    let mut out = Map::new();
    // Go would print a missing dst as "<nil>", which the delegate's IPAM then rejects.
    let dst = match get(0) {
        Some(Value::String(s)) => parse_cidr(s).map_err(|e| route_error(e.msg()))?,
        Some(other) => return Err(route_error(unmarshal_text(other, "dst", "string"))),
        None => return Err(route_error(format!("routes[{i}] has no \"dst\""))),
    };
    out.insert("dst".into(), Value::from(cidr_string(&dst)));
    match get(1) {
        None => {}
        Some(Value::String(s)) => {
            if let Some(gw) = parse_ip(s).map_err(|e| route_error(e.msg()))? {
                out.insert("gw".into(), Value::from(gw.to_string()));
            }
        }
        Some(other) => return Err(route_error(unmarshal_text(other, "gw", "net.IP"))),
    }
    // mtu, advmss, priority: Go ints with omitempty; table, scope: *int, kept when set.
    for (idx, key) in ROUTE_KEYS.iter().enumerate().skip(2) {
        let Some(v) = get(idx) else { continue };
        let n = v
            .as_i64()
            .ok_or_else(|| route_error(unmarshal_text(v, key, "int")))?;
        if n != 0 || idx >= 5 {
            out.insert((*key).into(), Value::from(n));
        }
    }
    Ok(Value::Object(out))
}

fn unmarshal_text(v: &Value, field: &str, go_type: &str) -> String {
    let what = match v {
        Value::Number(n) => format!("number {n}"),
        other => gojson::kind(other).to_string(),
    };
    format!("json: cannot unmarshal {what} into Go struct field route.{field} of type {go_type}")
}

/// A copy of `v` with every object's keys sorted, as Go prints a decoded map.
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let s: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(s.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `json.Marshal` of a value decoded by Go into `interface{}`: compact, keys in the order
/// given (use [`sorted`] for Go maps), Go's string escaping, numbers as Go float64s.
pub fn marshal(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&gojson::to_string(&Value::String(k.clone())));
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
        // null, bools and strings: Go and gojson agree
        other => out.push_str(&gojson::to_string(other)),
    }
}

/// A JSON number as Go prints the float64 it decodes to (`encoding/json` floatEncoder):
/// shortest round-trip digits, plain notation for 1e-6 <= |x| < 1e21, else exponent form with
/// a sign and no zero padding of negative exponents (`1e+21`, `1e-7`).
pub fn go_number(n: &Number) -> String {
    // Integers go through float64 too: 2^53 + 1 prints as 9007199254740992.
    #[allow(clippy::cast_precision_loss)]
    let f = if let Some(u) = n.as_u64() {
        u as f64
    } else if let Some(i) = n.as_i64() {
        i as f64
    } else {
        n.as_f64().unwrap_or(0.0)
    };
    go_float(f)
}

pub fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust: "1e21", "1.5e-7"; Go: "1e+21", "1.5e-7"
        let s = format!("{f:e}");
        return match s.split_once('e') {
            Some((mant, exp)) if !exp.starts_with('-') => format!("{mant}e+{exp}"),
            _ => s,
        };
    }
    let mut s = String::new();
    let _ = write!(s, "{f}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subnet_env;

    const V4: &str = "\nFLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
    const V6: &str = "\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
    const DUAL: &str = "\nFLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
    const TWO: &str = "\nFLANNEL_NETWORK=10.1.0.0/16,192.168.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";
    const INPUT: &str =
        r#"{"name": "cni-flannel", "type": "flannel", "subnetFile": "/x", "dataDir": "/y"}"#;

    fn delegate(conf: &str, env: &str) -> Result<Delegate> {
        let conf = FlannelConf::load(conf.as_bytes()).unwrap();
        let env = subnet_env::parse(env.as_bytes(), "/x").unwrap();
        build(&conf, &env)
    }
    fn bytes(conf: &str, env: &str) -> String {
        delegate(conf, env).unwrap().bytes
    }

    // The goldens of flannel_linux_test.go, in the byte order Go's json.Marshal produces
    // (the test compares with MatchJSON; a map's keys are sorted when marshalled).
    #[test]
    fn golden_v4() {
        assert_eq!(
            bytes(INPUT, V4),
            r#"{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}"#
        );
        assert_eq!(delegate(INPUT, V4).unwrap().plugin_type, "bridge");
    }

    #[test]
    fn golden_v6() {
        assert_eq!(
            bytes(INPUT, V6),
            r#"{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"fc00::/64"}]],"routes":[{"dst":"fc00::/48"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}"#
        );
    }

    #[test]
    fn golden_dual_stack() {
        assert_eq!(
            bytes(INPUT, DUAL),
            r#"{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}],[{"subnet":"fc00::/64"}]],"routes":[{"dst":"10.1.0.0/16"},{"dst":"fc00::/48"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}"#
        );
    }

    #[test]
    fn golden_two_networks() {
        assert_eq!(
            bytes(INPUT, TWO),
            r#"{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"},{"dst":"192.168.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}"#
        );
    }

    // getDelegateIPAM "when input IPAM is provided": type and unknown params kept, routes
    // appended, ranges overwritten.
    #[test]
    fn golden_input_ipam() {
        let conf = r#"{"name":"cni-flannel","type":"flannel","ipam":{
            "type":"my-ipam","unknown-param":"unknown-value",
            "routes":[{ "dst": "10.96.0.0/12" },{ "dst": "192.168.244.0/24", "gw": "10.1.17.20" }],
            "ranges":[[{"subnet":"1.2.3.0/24"}]]}}"#;
        assert_eq!(
            bytes(conf, DUAL),
            r#"{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}],[{"subnet":"fc00::/64"}]],"routes":[{"dst":"10.96.0.0/12"},{"dst":"192.168.244.0/24","gw":"10.1.17.20"},{"dst":"10.1.0.0/16"},{"dst":"fc00::/48"}],"type":"my-ipam","unknown-param":"unknown-value"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}"#
        );
        // without a type: host-local
        let conf = r#"{"name":"n","ipam":{"routes":[{"dst":"10.96.0.0/12"}]}}"#;
        assert!(bytes(conf, V4).contains(r#""type":"host-local""#));
    }

    #[test]
    fn stock_conflist_delegate() {
        // kube-flannel.yml's conf as libcni hands it over (name and cniVersion injected)
        let conf = r#"{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}"#;
        assert_eq!(
            bytes(conf, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"),
            r#"{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}"#
        );
    }

    #[test]
    fn delegate_overrides_and_defaults() {
        // ipMasq = !FLANNEL_IPMASQ only when absent; mtu only when absent; isGateway only for
        // bridge; an explicit isGateway is kept
        let env_nomasq = V4.replace("FLANNEL_IPMASQ=true", "FLANNEL_IPMASQ=false");
        assert!(bytes(INPUT, &env_nomasq).starts_with(r#"{"ipMasq":true,"#));
        let conf = r#"{"name":"n","delegate":{"ipMasq":false,"mtu":1400,"isGateway":false}}"#;
        let b = bytes(conf, &env_nomasq);
        assert!(b.starts_with(r#"{"ipMasq":false,"#), "{b}");
        assert!(b.contains(r#""isGateway":false,"mtu":1400,"#), "{b}");
        let d = delegate(
            r#"{"name":"n","cniVersion":"1.0.0","delegate":{"type":"ipvlan","master":"eth0"}}"#,
            V4,
        )
        .unwrap();
        assert_eq!(d.plugin_type, "ipvlan");
        assert_eq!(
            d.bytes,
            r#"{"cniVersion":"1.0.0","ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"master":"eth0","mtu":1472,"name":"n","type":"ipvlan"}"#
        );
    }

    #[test]
    fn runtime_config_copied_and_maps_sorted() {
        let conf = r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"bandwidth":{"z":1,"a":2}},
            "delegate":{"zz":{"b":[{"y":1,"x":2}],"a":null},"runtimeConfig":{"lost":true}}}"#;
        assert_eq!(
            bytes(conf, V4),
            r#"{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"n","runtimeConfig":{"bandwidth":{"a":2,"z":1},"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},"type":"bridge","zz":{"a":null,"b":[{"x":2,"y":1}]}}"#
        );
        // an empty runtimeConfig is copied too (a non-nil Go map)
        assert!(bytes(r#"{"name":"n","runtimeConfig":{}}"#, V4).contains(r#""runtimeConfig":{}"#));
    }

    #[test]
    fn keys_inside_maps_are_exact() {
        // "IPMasq" is not "ipMasq" for Go's map lookup: both end up in the delegate
        let b = bytes(r#"{"name":"n","delegate":{"IPMasq":true}}"#, V4);
        assert!(b.starts_with(r#"{"IPMasq":true,"ipMasq":false,"#), "{b}");
    }

    #[test]
    fn routes_decode_like_types_route() {
        let conf = r#"{"name":"n","ipam":{"routes":[
            {"DST":"10.9.1.1/16","GW":"::ffff:10.1.17.1","mtu":0,"advmss":1400,"priority":-1,"table":0,"scope":null,"junk":1},
            {"dst":"::ffff:10.2.0.0/112","gw":""}]}}"#;
        let b = bytes(conf, V4);
        assert!(
            b.contains(r#""routes":[{"dst":"10.9.1.1/16","gw":"10.1.17.1","advmss":1400,"priority":-1,"table":0},{"dst":"10.2.0.0/16"},{"dst":"10.1.0.0/16"}]"#),
            "{b}"
        );
        for bad in [
            r#"{"routes":{}}"#,
            r#"{"routes":[{"gw":"1.2.3.4"}]}"#,
            r#"{"routes":[{"dst":"x"}]}"#,
            r#"{"routes":[{"dst":"10.0.0.0/8","mtu":1.5}]}"#,
            r#"{"routes":[5]}"#,
        ] {
            let e = delegate(&format!(r#"{{"name":"n","ipam":{bad}}}"#), V4).unwrap_err();
            assert_eq!(e.code(), 7, "{bad}");
            assert!(
                e.msg().starts_with("failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse ipam.routes: "),
                "{}",
                e.msg()
            );
        }
    }

    #[test]
    fn numbers_print_as_go_float64() {
        let conf = r#"{"name":"n","delegate":{"a":1.0,"b":1e3,"c":0.000001,"d":1e-7,"e":1e21,"f":123456789012345678901234,"g":-2.5e-10,"h":9007199254740993,"i":1.5e300,"j":100000000000000000000}}"#;
        let b = bytes(conf, V4);
        assert!(
            b.starts_with(r#"{"a":1,"b":1000,"c":0.000001,"d":1e-7,"e":1e+21,"f":1.2345678901234569e+23,"g":-2.5e-10,"h":9007199254740992,"i":1.5e+300,"#),
            "{b}"
        );
        assert!(b.contains(r#""j":100000000000000000000,"#), "{b}");
        // checked against Go 1.19's encoding/json (map[string]interface{} round trip)
        let conf = r#"{"name":"n","delegate":{"l":5e-324,"m":1.7976931348623157e308,"n":0.1,"o":123456.789e3,"p":-0,"q":-0.0}}"#;
        let b = bytes(conf, V4);
        assert!(
            b.contains(r#""l":5e-324,"m":1.7976931348623157e+308,"mtu":1472,"n":0.1,"name":"n","o":123456789,"p":-0,"q":-0,"#),
            "{b}"
        );
    }

    #[test]
    fn strings_escape_like_go() {
        let b = bytes(r#"{"name":"n","delegate":{"x":"<a&b>\u2028é"}}"#, V4);
        assert!(b.contains(r#""x":"\u003ca\u0026b\u003e\u2028é""#), "{b}");
    }
}
