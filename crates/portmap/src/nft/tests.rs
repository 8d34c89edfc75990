//! The exact nft transactions, for Go's test config (`portmap_nftables_test.go`).

use super::*;
use crate::config::load;

const CID: &str = "icee6giejonei6so";
const CTR: &str = "weft_ee26b0dd4af7e749_eecc808d8cb05ff8";

fn golden(snat: bool) -> PortMapConf {
    let json = format!(
        r#"{{"name":"test","type":"portmap","cniVersion":"1.0.0","backend":"nftables",
        "runtimeConfig":{{"portMappings":[
            {{"hostPort":8080,"containerPort":80,"protocol":"tcp"}},
            {{"hostPort":8081,"containerPort":80,"protocol":"tcp"}},
            {{"hostPort":8080,"containerPort":81,"protocol":"udp"}},
            {{"hostPort":8082,"containerPort":82,"protocol":"udp"}},
            {{"hostPort":8083,"containerPort":83,"protocol":"tcp","hostIP":"192.168.0.2"}},
            {{"hostPort":8084,"containerPort":84,"protocol":"tcp","hostIP":"0.0.0.0"}},
            {{"hostPort":8085,"containerPort":85,"protocol":"tcp","hostIP":"2001:db8:a::1"}},
            {{"hostPort":8086,"containerPort":86,"protocol":"tcp","hostIP":"::"}}]}},
        "snat":{snat},"conditionsV4":["a","b"],"conditionsV6":["c","d"]}}"#
    );
    load(json.as_bytes(), "foo", true).unwrap()
}

#[test]
fn counter_names() {
    assert_eq!(counter_name("test", CID), CTR);
    assert!(counter_name("test", CID).starts_with(&net_counter_prefix("test")));
    assert_ne!(counter_name("test2", CID), CTR);
}

#[test]
fn add_v4_exact_script() {
    let conf = golden(true);
    let spec = NftSpec::new(&conf, CID, "10.0.0.2".parse().unwrap());
    let got = add_script(&[spec], &[], true).render();
    let want = format!(
        r#"add table ip cni_hostport {{ comment "CNI portmap plugin" ; }}
add chain ip cni_hostport hostports
add chain ip cni_hostport hostip_hostports
add chain ip cni_hostport hostports_all
flush chain ip cni_hostport hostports_all
add rule ip cni_hostport hostports_all jump hostip_hostports
add rule ip cni_hostport hostports_all jump hostports
add chain ip cni_hostport prerouting {{ type nat hook prerouting priority -100 ; }}
flush chain ip cni_hostport prerouting
add rule ip cni_hostport prerouting a b fib daddr type local jump hostports_all
add chain ip cni_hostport output {{ type nat hook output priority -100 ; }}
flush chain ip cni_hostport output
add rule ip cni_hostport output a b fib daddr type local jump hostports_all
add chain ip cni_hostport masquerading {{ type nat hook postrouting priority 100 ; }}
create counter ip cni_hostport {CTR}
add rule ip cni_hostport hostports tcp dport 8080 counter name "{CTR}" dnat to 10.0.0.2:80 comment "icee6giejonei6so"
add rule ip cni_hostport hostports tcp dport 8081 counter name "{CTR}" dnat to 10.0.0.2:80 comment "icee6giejonei6so"
add rule ip cni_hostport hostports udp dport 8080 counter name "{CTR}" dnat to 10.0.0.2:81 comment "icee6giejonei6so"
add rule ip cni_hostport hostports udp dport 8082 counter name "{CTR}" dnat to 10.0.0.2:82 comment "icee6giejonei6so"
add rule ip cni_hostport hostports ip daddr 192.168.0.2 tcp dport 8083 counter name "{CTR}" dnat to 10.0.0.2:83 comment "icee6giejonei6so"
add rule ip cni_hostport hostports tcp dport 8084 counter name "{CTR}" dnat to 10.0.0.2:84 comment "icee6giejonei6so"
add rule ip cni_hostport masquerading ip saddr 10.0.0.2 ip daddr 10.0.0.2 counter name "{CTR}" masquerade comment "icee6giejonei6so"
add rule ip cni_hostport masquerading ip saddr 127.0.0.1 ip daddr 10.0.0.2 counter name "{CTR}" masquerade comment "icee6giejonei6so"
"#
    );
    assert_eq!(got, want);
}

#[test]
fn add_v6_without_snat_exact_script() {
    let conf = golden(false);
    let spec = NftSpec::new(&conf, CID, "2001:db8::2".parse().unwrap());
    let got = add_script(&[spec], &[], true).render();
    let want = format!(
        r#"add table ip6 cni_hostport {{ comment "CNI portmap plugin" ; }}
add chain ip6 cni_hostport hostports
add chain ip6 cni_hostport hostip_hostports
add chain ip6 cni_hostport hostports_all
flush chain ip6 cni_hostport hostports_all
add rule ip6 cni_hostport hostports_all jump hostip_hostports
add rule ip6 cni_hostport hostports_all jump hostports
add chain ip6 cni_hostport prerouting {{ type nat hook prerouting priority -100 ; }}
flush chain ip6 cni_hostport prerouting
add rule ip6 cni_hostport prerouting c d fib daddr type local jump hostports_all
add chain ip6 cni_hostport output {{ type nat hook output priority -100 ; }}
flush chain ip6 cni_hostport output
add rule ip6 cni_hostport output c d fib daddr type local jump hostports_all
create counter ip6 cni_hostport {CTR}
add rule ip6 cni_hostport hostports tcp dport 8080 counter name "{CTR}" dnat to [2001:db8::2]:80 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports tcp dport 8081 counter name "{CTR}" dnat to [2001:db8::2]:80 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports udp dport 8080 counter name "{CTR}" dnat to [2001:db8::2]:81 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports udp dport 8082 counter name "{CTR}" dnat to [2001:db8::2]:82 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports ip6 daddr 2001:db8:a::1 tcp dport 8085 counter name "{CTR}" dnat to [2001:db8::2]:85 comment "icee6giejonei6so"
add rule ip6 cni_hostport hostports tcp dport 8086 counter name "{CTR}" dnat to [2001:db8::2]:86 comment "icee6giejonei6so"
"#
    );
    assert_eq!(got, want);
}

#[test]
fn masq_all_and_dual_stack_in_one_transaction() {
    let json = r#"{"name":"test","cniVersion":"1.0.0","backend":"nftables","masqAll":true,
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"udp"}]}}"#;
    let conf = load(json.as_bytes(), "eth0", true).unwrap();
    let v4 = NftSpec::new(&conf, CID, "10.0.0.2".parse().unwrap());
    let v6 = NftSpec::new(&conf, CID, "2001:db8::2".parse().unwrap());
    let s =
        add_script(&[v4, v6], &[("ip", HOSTPORTS.to_string(), 7)], false).without_object_comments();
    let lines = s.lines();
    assert_eq!(lines[0], "add table ip cni_hostport");
    assert!(lines.contains(&"add table ip6 cni_hostport".to_string()));
    assert!(lines.contains(
        &"add rule ip cni_hostport prerouting fib daddr type local jump hostports_all".to_string()
    ));
    assert!(lines.contains(&"delete rule ip cni_hostport hostports handle 7".to_string()));
    assert!(lines.contains(&format!("add counter ip6 cni_hostport {CTR}")));
    let masq: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("masquerade comment"))
        .collect();
    assert_eq!(
        masq,
        vec![
            &format!("add rule ip cni_hostport masquerading ip saddr 0.0.0.0/0 ip daddr 10.0.0.2 counter name \"{CTR}\" masquerade comment \"icee6giejonei6so\""),
            &format!("add rule ip6 cni_hostport masquerading ip6 saddr ::/0 ip6 daddr 2001:db8::2 counter name \"{CTR}\" masquerade comment \"icee6giejonei6so\""),
        ]
    );
    // The deletes come before the new rules.
    let del = lines
        .iter()
        .position(|l| l.starts_with("delete rule"))
        .unwrap();
    let add = lines.iter().position(|l| l.contains("dnat to")).unwrap();
    assert!(del < add);
}

const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
 {"table": {"family": "ip", "name": "cni_hostport", "handle": 1}},
 {"counter": {"family": "ip", "name": "weft_ee26b0dd4af7e749_eecc808d8cb05ff8", "table": "cni_hostport", "handle": 9, "packets": 0, "bytes": 0}},
 {"counter": {"family": "ip", "name": "weft_ee26b0dd4af7e749_0000000000000000", "table": "cni_hostport", "handle": 10, "packets": 0, "bytes": 0}},
 {"chain": {"family": "ip", "table": "cni_hostport", "name": "hostports", "handle": 1}},
 {"chain": {"family": "ip", "table": "cni_hostport", "name": "masquerading", "handle": 2, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}},
 {"rule": {"family": "ip", "table": "cni_hostport", "chain": "hostports", "handle": 12, "comment": "icee6giejonei6so",
   "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.168.0.2"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 8083}},
            {"counter": "weft_ee26b0dd4af7e749_eecc808d8cb05ff8"}, {"dnat": {"addr": "10.0.0.2", "port": 83}}]}},
 {"rule": {"family": "ip", "table": "cni_hostport", "chain": "hostports", "handle": 13, "comment": "icee6giejonei6so",
   "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
            {"dnat": {"addr": "10.0.0.9", "port": 80}}]}},
 {"rule": {"family": "ip", "table": "cni_hostport", "chain": "hostports", "handle": 14, "comment": "icee6giejonei6so",
   "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
            {"counter": "weft_1111111111111111_eecc808d8cb05ff8"}, {"dnat": {"addr": "10.1.0.9", "port": 80}}]}},
 {"rule": {"family": "ip", "table": "cni_hostport", "chain": "masquerading", "handle": 15, "comment": "icee6giejonei6so",
   "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "0.0.0.0", "len": 0}}}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.0.0.2"}},
            {"counter": "weft_ee26b0dd4af7e749_eecc808d8cb05ff8"}, {"masquerade": null}]}}
]}"#;

#[test]
fn listing_and_ownership() {
    let l = NftListing::parse(LISTING).unwrap();
    assert_eq!(l.chains, vec!["hostports", "masquerading"]);
    assert_eq!(l.counters.len(), 2);
    assert_eq!(l.rules.len(), 4);
    // Ours (counter) and Go's (no counter, same cid); not another network's (other counter).
    let owned: Vec<u64> = l.owned("test", CID).map(|r| r.handle).collect();
    assert_eq!(owned, vec![12, 13, 15]);
    let s = sig(&l.rules[0].expr);
    assert_eq!(
        s,
        Sig {
            daddr: Some("192.168.0.2".into()),
            proto: Some("udp".into()),
            dport: Some(8083),
            dnat: Some(("10.0.0.2".into(), 83)),
            ..Sig::default()
        }
    );
    assert_eq!(sig(&l.rules[3].expr).saddr.as_deref(), Some("0.0.0.0/0"));
    assert_eq!(udp_ports(l.owned("test", CID)), vec![8083]);
}

#[test]
fn expected_signatures() {
    let conf = golden(true);
    let spec = NftSpec::new(&conf, CID, "10.0.0.2".parse().unwrap());
    let sigs = expected_sigs(&spec);
    // 6 v4 mappings and 2 masquerade rules.
    assert_eq!(sigs.len(), 8);
    assert_eq!(sigs[4].1.daddr.as_deref(), Some("192.168.0.2"));
    assert_eq!(sigs[6].1.saddr.as_deref(), Some("10.0.0.2"));
    assert_eq!(sigs[7].1.saddr.as_deref(), Some("127.0.0.1"));
}
