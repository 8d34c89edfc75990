//! flanneld's outside input: the network config (`NetConfig::parse`, from etcd or
//! `--net-config-path`), lease values and subnet keys from etcd (`lease_from_kv`,
//! `LeaseAttrs::parse`, `parse_subnet_key`) and the previous subnet.env (`parse_prev`), then
//! the subnet choice over all of them (`alloc::plan`) and the subnet.env written for it,
//! which the CNI plugin's parser must read back.
//!
//! Input: `net-conf.json\0lease value\0subnet key\0previous subnet.env\0choice byte`.
//!
//! Invariants: keys and lease values print back to what they parse from; a planned subnet
//! fits the config; the subnet.env for it is complete for the flannel plugin.

#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use weft_flanneld::alloc::{self, Choice};
use weft_flanneld::config::NetConfig;
use weft_flanneld::lease::{make_subnet_key, parse_subnet_key, LeaseAttrs};
use weft_flanneld::registry::lease_from_kv;
use weft_flanneld::subnet_file::{parse_prev, SubnetEnv};
use weft_fuzz::{field, text};

fuzz_target!(|data: &[u8]| {
    let value = field(data, 1);
    let key = text(data, 2);
    let choice = field(data, 4).first().copied().unwrap_or(0);

    if let Some((sn, sn6)) = parse_subnet_key(&key) {
        let printed = make_subnet_key(sn, sn6);
        assert_eq!(
            parse_subnet_key(&printed),
            Some((sn, sn6)),
            "{key:?} -> {printed:?}"
        );
    }
    if let Ok(attrs) = LeaseAttrs::parse(value) {
        let _ = attrs.vxlan();
        let _ = attrs.vxlan_v6();
        let json = attrs.to_json();
        assert_eq!(
            LeaseAttrs::parse(json.as_bytes()).as_ref(),
            Ok(&attrs),
            "{json}"
        );
    }
    let lease = lease_from_kv(&key, value, 0).ok();
    let prev = parse_prev(&text(data, 3));

    let Ok(conf_text) = std::str::from_utf8(field(data, 0)) else {
        return;
    };
    let Ok(cfg) = NetConfig::parse(conf_text) else {
        return;
    };
    let _ = cfg.check_backend();
    // flanneld stops here for IPv6-only configs (the etcd subnet manager needs IPv4).
    if !cfg.enable_ipv4 {
        return;
    }
    let leases: Vec<_> = lease.into_iter().collect();
    let public_ip = match leases.first() {
        Some(l) if choice & 1 == 0 => l.attrs.public_ip,
        _ => Ipv4Addr::new(192, 0, 2, 1),
    };
    let mut pick = |n: usize| usize::from(choice >> 1) % n.max(1);
    let Ok(plan) = alloc::plan(&cfg, &leases, public_ip, &prev, &mut pick) else {
        return;
    };
    let (subnet, ipv6_subnet) = match plan.choice {
        Choice::Reuse(l) => (l.subnet, l.ipv6_subnet),
        Choice::Create {
            subnet,
            ipv6_subnet,
            ..
        } => (subnet, ipv6_subnet),
    };
    assert!(
        alloc::v4_fits(&cfg, subnet),
        "{subnet} does not fit {cfg:?}"
    );
    assert!(
        alloc::v6_fits(&cfg, ipv6_subnet),
        "{ipv6_subnet:?} does not fit {cfg:?}"
    );

    let env = SubnetEnv {
        network: cfg.network,
        subnet: Some(subnet),
        ipv6_network: cfg.ipv6_network.filter(|_| cfg.enable_ipv6),
        ipv6_subnet: ipv6_subnet.filter(|_| cfg.enable_ipv6),
        mtu: 1450,
        ip_masq: choice & 2 != 0,
    };
    let rendered = env.render();
    match weft_flannel::subnet_env::parse(rendered.as_bytes(), "subnet.env") {
        Ok(parsed) => assert!(parsed.missing().is_empty(), "{rendered}"),
        Err(e) => panic!("the flannel plugin cannot read our subnet.env: {e}\n{rendered}"),
    }
});
