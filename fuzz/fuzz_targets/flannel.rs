//! The flannel CNI plugin's inputs: flanneld's subnet.env (`subnet_env::parse`, Go's reader
//! first, then the tolerant one) and the plugin's config (`FlannelConf::load`), then the
//! delegate config built from both (`delegate::build`), which must be JSON that the
//! delegate's own config parser accepts unless the user's `delegate` keys are invalid.
//!
//! Input: `subnet.env\0config`; an empty config means the stock kube-flannel one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft_cni_core::parse_netconf;
use weft_flannel::config::FlannelConf;
use weft_flannel::delegate;
use weft_flannel::subnet_env::{self, net_string};
use weft_fuzz::{field, text};

const STOCK_CONF: &[u8] =
    br#"{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}"#;

fuzz_target!(|data: &[u8]| {
    let env_bytes = field(data, 0);
    let conf_bytes = match field(data, 1) {
        [] => STOCK_CONF,
        c => c,
    };
    for line in text(data, 0).lines().take(16) {
        if let Some((_, value)) = line.split_once('=') {
            if let Ok(n) = subnet_env::parse_masked_cidr(value) {
                let _ = net_string(&n);
            }
        }
    }
    let env = subnet_env::parse(env_bytes, "/run/flannel/subnet.env");
    if let Ok(env) = &env {
        let _ = env.missing();
        for n in env.networks.iter().chain(&env.ip6_networks) {
            let _ = net_string(n);
        }
    }
    let Ok(conf) = FlannelConf::load(conf_bytes) else {
        return;
    };
    let _ = conf.checked_delegate();
    let Ok(env) = env else {
        return;
    };
    let Ok(d) = delegate::build(&conf, &env) else {
        return;
    };
    let v: Value = serde_json::from_str(&d.bytes).expect("the delegate config is JSON");
    assert_eq!(
        v.get("type").and_then(Value::as_str),
        Some(d.plugin_type.as_str())
    );
    // The delegate may reject keys the user put into `delegate` (as Go's would), but what
    // flannel adds must never make a delegate config invalid.
    if let Err(e) = parse_netconf(d.bytes.as_bytes()) {
        let mut user = conf.checked_delegate().unwrap_or_default();
        user.insert("name".into(), Value::from("n"));
        let user = Value::Object(user).to_string();
        assert!(
            parse_netconf(user.as_bytes()).is_err(),
            "flannel made a valid delegate invalid: {e:?}\n{}",
            d.bytes
        );
    }
});
