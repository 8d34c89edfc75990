//! The bridge and portmap config loaders (`weft_bridge::config::load` with CNI_ARGS,
//! `weft_portmap::config::load` / `load_lenient`, which include `runtimeConfig.portMappings`,
//! the conditions and the prevResult), then the iptables-restore batch and the nft script
//! portmap would feed to the kernel tools for that config.
//!
//! Input: `config\0CNI_ARGS\0CNI_IFNAME\0CNI_CONTAINERID` (ifname and container ID fall back
//! to eth0 / a fixed ID when skel would reject them).
//!
//! Invariant: no config value can add a line to the batch or the script (each rule is one
//! line: a newline in a condition or a name would inject a command into iptables-restore
//! or nft).

#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use weft_cni_core::{validate_container_id, validate_interface_name};
use weft_fuzz::{field, text};
use weft_portmap::config::{load, load_lenient, PortMapConf};
use weft_portmap::iptables::{fresh_add_batch, udp_ports, DnatSpec, Shared};
use weft_portmap::nft::{add_script, NftSpec};

fn no_tools() {
    // A config with conditions but no `backend` makes portmap probe which tool works; point
    // every tool at a path that does not exist so fuzzing never execs iptables or nft.
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for var in [
            "WEFT_IPTABLES",
            "WEFT_IP6TABLES",
            "WEFT_IPTABLES_RESTORE",
            "WEFT_IP6TABLES_RESTORE",
            "WEFT_NFT",
        ] {
            std::env::set_var(var, "/nonexistent/weft-fuzz-no-tool");
        }
    });
}

fuzz_target!(|data: &[u8]| {
    no_tools();
    let config = field(data, 0);
    let cni_args = text(data, 1);
    let ifname = Some(text(data, 2))
        .filter(|s| validate_interface_name(s).is_ok())
        .unwrap_or_else(|| "eth0".to_string());
    let cid = Some(text(data, 3))
        .filter(|s| validate_container_id(s).is_ok())
        .unwrap_or_else(|| "0123456789abcdef".to_string());

    if let Ok(conf) = weft_bridge::config::load(config, &cni_args) {
        let _ = (conf.is_layer3(), conf.vlan_filtering());
        if let Some(mac) = conf.mac {
            let _ = weft_bridge::config::format_mac(&mac);
        }
    }

    let _ = load(config, &ifname, false);
    if let Ok(conf) = load(config, &ifname, true) {
        rules(&conf, &cid);
    }
    if let Ok(conf) = load_lenient(config, &ifname) {
        rules(&conf, &cid);
    }
});

fn rules(conf: &PortMapConf, cid: &str) {
    let _ = (conf.version(), Shared::new(conf), udp_ports(&conf.mappings));
    for net in conf.container_nets() {
        let spec = DnatSpec::new(conf, cid, net);
        let rules = spec.rules();
        let entries = spec.entry_rules();
        let batch = fresh_add_batch(&spec.chain(), &rules, &entries);
        let text = batch.render();
        // "*nat", the commands, "COMMIT".
        assert_eq!(text.lines().count(), batch.lines().len() + 2, "{text}");
        assert!(!text.contains('\r'), "{text}");

        let nft = NftSpec::new(conf, cid, net.ip());
        let script = add_script(&[nft], &[], true, true);
        let text = script.render();
        assert_eq!(text.lines().count(), script.lines().len(), "{text}");
        assert!(!text.contains('\r'), "{text}");
    }
}
