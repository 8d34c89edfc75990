//! Go's golden rule lists (`portmap_iptables_test.go`, `portmap_test.go`), as data.

use super::*;
use crate::config::load;
use weft_firewall::iptables::Family;
use weft_firewall::Tools;

const CID: &str = "icee6giejonei6sohng6ahngee7laquohquee9shiGo7fohferakah3Feiyoolu2pei7ciPhoh7shaoX6vai3vuf0ahfaeng8yohb9ceu0daez5hashee8ooYai5wa3y";

fn v(rows: &[&[&str]]) -> Vec<RuleArgs> {
    rows.iter().map(|r| args(r)).collect()
}

fn golden_conf(extra: &str) -> PortMapConf {
    let json = format!(
        r#"{{"name":"test","type":"portmap","cniVersion":"1.0.0",
        "runtimeConfig":{{"portMappings":[
            {{"hostPort":8080,"containerPort":80,"protocol":"tcp"}},
            {{"hostPort":8081,"containerPort":80,"protocol":"tcp"}},
            {{"hostPort":8080,"containerPort":81,"protocol":"udp"}},
            {{"hostPort":8082,"containerPort":82,"protocol":"udp"}},
            {{"hostPort":8083,"containerPort":83,"protocol":"tcp","hostIP":"192.168.0.2"}},
            {{"hostPort":8084,"containerPort":84,"protocol":"tcp","hostIP":"0.0.0.0"}},
            {{"hostPort":8085,"containerPort":85,"protocol":"tcp","hostIP":"2001:db8:a::1"}},
            {{"hostPort":8086,"containerPort":86,"protocol":"tcp","hostIP":"::"}}]}},
        "conditionsV4":["-a","b"],"conditionsV6":["-c","d"]{extra}}}"#
    );
    load(json.as_bytes(), "foo", true).unwrap()
}

#[test]
fn chain_name_vectors() {
    assert_eq!(
        dnat_chain_name("testNetName", CID),
        "CNI-DN-bfd599665540dd91d5d28"
    );
    assert_eq!(dnat_chain_name("test", CID), "CNI-DN-67e92b96e692a494b6b85");
    assert_eq!(dnat_chain_name("test", CID).len(), 28);
}

#[test]
fn standard_container_chain_v4() {
    let conf = golden_conf(r#","snat":true"#);
    let spec = DnatSpec::new(&conf, CID, "10.0.0.2/24".parse().unwrap());
    let comment = format!("dnat name: \"test\" id: \"{CID}\"");
    assert_eq!(
        spec.entry_matches(),
        v(&[
            &[
                "-m",
                "comment",
                "--comment",
                &comment,
                "-m",
                "multiport",
                "-p",
                "tcp",
                "--destination-ports",
                "8080,8081,8083,8084,8085,8086",
                "-a",
                "b"
            ],
            &[
                "-m",
                "comment",
                "--comment",
                &comment,
                "-m",
                "multiport",
                "-p",
                "udp",
                "--destination-ports",
                "8080,8082",
                "-a",
                "b"
            ],
        ])
    );
    assert_eq!(
        spec.rules(),
        v(&[
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "10.0.0.2/24",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "127.0.0.1",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:80"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8081",
                "-s",
                "10.0.0.2/24",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8081",
                "-s",
                "127.0.0.1",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8081",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:80"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8080",
                "-s",
                "10.0.0.2/24",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8080",
                "-s",
                "127.0.0.1",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:81"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8082",
                "-s",
                "10.0.0.2/24",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8082",
                "-s",
                "127.0.0.1",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8082",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:82"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8083",
                "-d",
                "192.168.0.2",
                "-s",
                "10.0.0.2/24",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8083",
                "-d",
                "192.168.0.2",
                "-s",
                "127.0.0.1",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8083",
                "-d",
                "192.168.0.2",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:83"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8084",
                "-s",
                "10.0.0.2/24",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8084",
                "-s",
                "127.0.0.1",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8084",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:84"
            ],
        ])
    );
    // The entry rules jump to the container's chain.
    let entries = spec.entry_rules();
    assert_eq!(
        entries[0].last().map(String::as_str),
        Some("CNI-DN-67e92b96e692a494b6b85")
    );
}

#[test]
fn standard_container_chain_v6() {
    let conf = golden_conf(r#","snat":true"#);
    let spec = DnatSpec::new(&conf, CID, "2001:db8::2/64".parse().unwrap());
    assert_eq!(
        spec.rules(),
        v(&[
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "2001:db8::2/64",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "[2001:db8::2]:80"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8081",
                "-s",
                "2001:db8::2/64",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8081",
                "-j",
                "DNAT",
                "--to-destination",
                "[2001:db8::2]:80"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8080",
                "-s",
                "2001:db8::2/64",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "[2001:db8::2]:81"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8082",
                "-s",
                "2001:db8::2/64",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8082",
                "-j",
                "DNAT",
                "--to-destination",
                "[2001:db8::2]:82"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8085",
                "-d",
                "2001:db8:a::1",
                "-s",
                "2001:db8::2/64",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8085",
                "-d",
                "2001:db8:a::1",
                "-j",
                "DNAT",
                "--to-destination",
                "[2001:db8::2]:85"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8086",
                "-s",
                "2001:db8::2/64",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8086",
                "-j",
                "DNAT",
                "--to-destination",
                "[2001:db8::2]:86"
            ],
        ])
    );
    let comment = format!("dnat name: \"test\" id: \"{CID}\"");
    assert_eq!(
        spec.entry_matches()[0],
        args(&[
            "-m",
            "comment",
            "--comment",
            &comment,
            "-m",
            "multiport",
            "-p",
            "tcp",
            "--destination-ports",
            "8080,8081,8083,8084,8085,8086",
            "-c",
            "d"
        ])
    );
}

#[test]
fn snat_off() {
    let conf = golden_conf(r#","snat":false"#);
    let spec = DnatSpec::new(&conf, CID, "10.0.0.2/24".parse().unwrap());
    assert_eq!(
        spec.rules(),
        v(&[
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:80"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8081",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:80"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:81"
            ],
            &[
                "-p",
                "udp",
                "--dport",
                "8082",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:82"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8083",
                "-d",
                "192.168.0.2",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:83"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8084",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:84"
            ],
        ])
    );
    assert!(!Shared::new(&conf).mark_chains);
}

#[test]
fn external_mark_chain() {
    let json = r#"{"name":"test","type":"portmap","cniVersion":"1.0.0",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},
        "externalSetMarkChain":"PLZ-SET-MARK","conditionsV4":["-a","b"],"conditionsV6":["-c","d"]}"#;
    let conf = load(json.as_bytes(), "foo", true).unwrap();
    let spec = DnatSpec::new(&conf, CID, "10.0.0.2/24".parse().unwrap());
    assert_eq!(
        spec.rules(),
        v(&[
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "10.0.0.2/24",
                "-j",
                "PLZ-SET-MARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "127.0.0.1",
                "-j",
                "PLZ-SET-MARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:80"
            ],
        ])
    );
    // The external chain replaces ours: no SETMARK/MASQ chains of our own.
    assert!(!Shared::new(&conf).mark_chains);
}

#[test]
fn masq_all() {
    let json = r#"{"name":"test","cniVersion":"1.0.0","masqAll":true,
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]}}"#;
    let conf = load(json.as_bytes(), "foo", true).unwrap();
    let spec = DnatSpec::new(&conf, CID, "10.0.0.2/24".parse().unwrap());
    assert_eq!(
        spec.rules(),
        v(&[
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "0.0.0.0/0",
                "-j",
                "CNI-HOSTPORT-SETMARK"
            ],
            &[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "10.0.0.2:80"
            ],
        ])
    );
    let spec = DnatSpec::new(&conf, CID, "2001:db8::2/64".parse().unwrap());
    assert_eq!(spec.rules()[0][5], "::/0");
}

#[test]
fn top_level_and_mark_chains() {
    assert_eq!(
        top_entry_rule(),
        args(&[
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "CNI-HOSTPORT-DNAT"
        ])
    );
    assert_eq!(
        setmark_rule(5),
        args(&[
            "-m",
            "comment",
            "--comment",
            "CNI portfwd masquerade mark",
            "-j",
            "MARK",
            "--set-xmark",
            "0x20/0x20"
        ])
    );
    assert_eq!(
        masq_rule(5),
        args(&["-m", "mark", "--mark", "0x20/0x20", "-j", "MASQUERADE"])
    );
    assert_eq!(mark_def(13), "0x2000/0x2000");
    assert_eq!(mark_def(0), "0x1/0x1");
    assert_eq!(mark_def(31), "0x80000000/0x80000000");
    assert_eq!(
        masq_entry_rule(),
        args(&[
            "-m",
            "comment",
            "--comment",
            "CNI portfwd requiring masquerade",
            "-j",
            "CNI-HOSTPORT-MASQ"
        ])
    );
}

#[test]
fn more_than_15_ports_split() {
    let maps: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"hostPort":{},"containerPort":80,"protocol":"{}"}}"#,
                9000 + i,
                if i < 32 { "tcp" } else { "udp" }
            )
        })
        .collect();
    let json = format!(
        r#"{{"name":"n","cniVersion":"1.0.0","runtimeConfig":{{"portMappings":[{}]}}}}"#,
        maps.join(",")
    );
    let conf = load(json.as_bytes(), "eth0", true).unwrap();
    let spec = DnatSpec::new(&conf, "c1", "10.0.0.2/24".parse().unwrap());
    let entries = spec.entry_matches();
    let ports: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e[7].as_str(), e[9].as_str()))
        .collect();
    let tcp1: Vec<String> = (9000..9015).map(|p| p.to_string()).collect();
    let tcp2: Vec<String> = (9015..9030).map(|p| p.to_string()).collect();
    assert_eq!(ports.len(), 4);
    assert_eq!(ports[0], ("tcp", tcp1.join(",").as_str()));
    assert_eq!(ports[1], ("tcp", tcp2.join(",").as_str()));
    assert_eq!(ports[2], ("tcp", "9030,9031"));
    assert_eq!(ports[3], ("udp", "9032,9033,9034,9035,9036,9037,9038,9039"));
    // 40 mappings, 3 rules each on v4.
    assert_eq!(spec.rules().len(), 120);
}

#[test]
fn protocols_sorted_sctp_first() {
    let json = r#"{"name":"n","cniVersion":"1.0.0","runtimeConfig":{"portMappings":[
        {"hostPort":1,"containerPort":1,"protocol":"udp"},{"hostPort":2,"containerPort":2,"protocol":"sctp"},
        {"hostPort":3,"containerPort":3,"protocol":"tcp"}]}}"#;
    let conf = load(json.as_bytes(), "eth0", true).unwrap();
    let spec = DnatSpec::new(&conf, "c", "10.0.0.2/24".parse().unwrap());
    let entries = spec.entry_matches();
    let protos: Vec<&str> = entries.iter().map(|e| e[7].as_str()).collect();
    assert_eq!(entries.len(), 3);
    assert_eq!(protos, vec!["sctp", "tcp", "udp"]);
}

#[test]
fn comments_trimmed_like_go() {
    let long = "x".repeat(300);
    let c = dnat_comment("n", &long);
    assert_eq!(c.len(), 256);
    assert!(c.ends_with("..."));
    assert_eq!(cid_from_dnat_comment(&c, "n"), None);
    let c = dnat_comment("net1", "abc");
    assert_eq!(c, r#"dnat name: "net1" id: "abc""#);
    assert_eq!(cid_from_dnat_comment(&c, "net1").as_deref(), Some("abc"));
    assert_eq!(cid_from_dnat_comment(&c, "net2"), None);
}

/// `iptables -S` prints rules its own way; equality must see through it.
#[test]
fn saved_rules_compare_equal() {
    let saved = TableDump::parse(
        r#"-N CNI-DN-328e3d85e6c0f709cddd7
-A CNI-DN-328e3d85e6c0f709cddd7 -s 10.99.0.0/24 -d 10.99.0.1/32 -p tcp -m tcp --dport 8083 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-328e3d85e6c0f709cddd7 -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-328e3d85e6c0f709cddd7 -p udp -m udp --dport 8081 -j DNAT --to-destination 10.99.0.5:81
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"testnet\" id: \"c1\"" -m multiport --dports 8080,8083 -j CNI-DN-328e3d85e6c0f709cddd7
-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
"#,
    )
    .unwrap();
    let ch = "CNI-DN-328e3d85e6c0f709cddd7";
    assert_eq!(dnat_chain_name("testnet", "c1"), ch);
    assert!(dump_contains(
        &saved,
        ch,
        &args(&[
            "-p",
            "tcp",
            "--dport",
            "8083",
            "-d",
            "10.99.0.1",
            "-s",
            "10.99.0.5/24",
            "-j",
            "CNI-HOSTPORT-SETMARK"
        ])
    ));
    assert!(dump_contains(
        &saved,
        ch,
        &args(&[
            "-p",
            "tcp",
            "--dport",
            "8080",
            "-s",
            "127.0.0.1",
            "-j",
            "CNI-HOSTPORT-SETMARK"
        ])
    ));
    assert!(dump_contains(
        &saved,
        ch,
        &args(&[
            "-p",
            "udp",
            "--dport",
            "8081",
            "-j",
            "DNAT",
            "--to-destination",
            "10.99.0.5:81"
        ])
    ));
    assert!(!dump_contains(
        &saved,
        ch,
        &args(&[
            "-p",
            "udp",
            "--dport",
            "8081",
            "-j",
            "DNAT",
            "--to-destination",
            "10.99.0.6:81"
        ])
    ));
    let entry = args(&[
        "-m",
        "comment",
        "--comment",
        "dnat name: \"testnet\" id: \"c1\"",
        "-m",
        "multiport",
        "-p",
        "tcp",
        "--destination-ports",
        "8080,8083",
        "-j",
        ch,
    ]);
    assert!(dump_contains(&saved, TOP_DNAT_CHAIN, &entry));
    assert!(dump_contains(&saved, SETMARK_CHAIN, &setmark_rule(13)));
    assert!(!dump_contains(&saved, SETMARK_CHAIN, &setmark_rule(5)));
    assert!(dump_contains(&saved, "POSTROUTING", &masq_entry_rule()));
    assert_eq!(udp_dnat_ports(saved.rules_in(ch)), vec![8081]);
}

#[test]
fn fresh_batch_text() {
    let b = fresh_add_batch(
        "CNI-DN-x",
        &v(&[&[
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            "10.0.0.2:8080",
        ]]),
        &v(&[&[
            "-m",
            "comment",
            "--comment",
            "dnat name: \"n\" id: \"c\"",
            "-m",
            "multiport",
            "-p",
            "tcp",
            "--destination-ports",
            "80",
            "-j",
            "CNI-DN-x",
        ]]),
    );
    assert_eq!(
        b.render(),
        "*nat\n-N CNI-DN-x\n-A CNI-DN-x -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:8080\n\
         -A CNI-HOSTPORT-DNAT -m comment --comment \"dnat name: \\\"n\\\" id: \\\"c\\\"\" -m multiport -p tcp --destination-ports 80 -j CNI-DN-x\nCOMMIT\n"
    );
}

#[test]
fn ensure_on_empty_table_creates_everything_in_go_order() {
    let dump = TableDump::parse(
        "-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-P POSTROUTING ACCEPT\n",
    )
    .unwrap();
    let mut b = nat_batch();
    ensure_shared(
        &mut b,
        &dump,
        &Shared {
            mark_chains: true,
            mark_bit: 13,
        },
        true,
    );
    assert_eq!(
        b.lines(),
        &[
            "-N CNI-HOSTPORT-SETMARK".to_string(),
            "-A CNI-HOSTPORT-SETMARK -m comment --comment \"CNI portfwd masquerade mark\" -j MARK --set-xmark 0x2000/0x2000".into(),
            "-N CNI-HOSTPORT-MASQ".into(),
            "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE".into(),
            "-I POSTROUTING 1 -m comment --comment \"CNI portfwd requiring masquerade\" -j CNI-HOSTPORT-MASQ".into(),
            "-N CNI-HOSTPORT-DNAT".into(),
            "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".into(),
            "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".into(),
        ]
    );
}

#[test]
fn reconcile_removes_stale_entries_and_keeps_good_ones() {
    let ch = "CNI-DN-abc";
    let dump = TableDump::parse(&format!(
        "-N CNI-HOSTPORT-DNAT\n-N {ch}\n\
         -A {ch} -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:8080\n\
         -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment x -m multiport --dports 80 -j {ch}\n\
         -A CNI-HOSTPORT-DNAT -p udp -m comment --comment x -m multiport --dports 53 -j {ch}\n"
    ))
    .unwrap();
    let rules = v(&[&[
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "DNAT",
        "--to-destination",
        "10.0.0.2:8080",
    ]]);
    let entries = v(&[&[
        "-m",
        "comment",
        "--comment",
        "x",
        "-m",
        "multiport",
        "-p",
        "tcp",
        "--destination-ports",
        "80",
        "-j",
        ch,
    ]]);
    let mut b = nat_batch();
    reconcile_container(&mut b, &dump, ch, &rules, &entries);
    assert_eq!(
        b.lines(),
        &[format!(
            "-D CNI-HOSTPORT-DNAT -p udp -m comment --comment x -m multiport --dports 53 -j {ch}"
        )]
    );
    // Same again with nothing stale: nothing to do.
    let dump = TableDump::parse(&format!(
        "-N CNI-HOSTPORT-DNAT\n-N {ch}\n\
         -A {ch} -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:8080\n\
         -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment x -m multiport --dports 80 -j {ch}\n"
    ))
    .unwrap();
    let mut b = nat_batch();
    reconcile_container(&mut b, &dump, ch, &rules, &entries);
    assert!(b.is_empty());
}

#[test]
fn stale_chains_by_comment_and_name() {
    let a = dnat_chain_name("net1", "keep");
    let b = dnat_chain_name("net1", "gone");
    let c = dnat_chain_name("net2", "gone");
    let dump = TableDump::parse(&format!(
        "-N CNI-HOSTPORT-DNAT\n-N {a}\n-N {b}\n-N {c}\n\
         -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"net1\\\" id: \\\"keep\\\"\" -m multiport --dports 80 -j {a}\n\
         -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"net1\\\" id: \\\"gone\\\"\" -m multiport --dports 81 -j {b}\n\
         -A CNI-HOSTPORT-DNAT -p udp -m comment --comment \"dnat name: \\\"net1\\\" id: \\\"gone\\\"\" -m multiport --dports 82 -j {b}\n\
         -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"net2\\\" id: \\\"gone\\\"\" -m multiport --dports 83 -j {c}\n"
    ))
    .unwrap();
    let valid: BTreeSet<&str> = ["keep"].into_iter().collect();
    let stale = stale_chains(&dump, "net1", &valid);
    assert_eq!(stale.into_iter().collect::<Vec<_>>(), vec![b.clone()]);
    let batch = remove_chain_batch(&dump, &b);
    assert_eq!(batch.lines().len(), 4);
    assert_eq!(batch.lines()[2], format!("-F {b}"));
    assert_eq!(batch.lines()[3], format!("-X {b}"));
}

/// portmap's batches are firewall's RestoreBatch: a word holding a line break is refused
/// before iptables-restore runs (it would end the rule and start another command), in both
/// the write path and the `-S` read path.
#[test]
fn control_characters_are_refused_before_iptables_restore_runs() {
    let mut tools = Tools::default();
    // Were the batch sent, this would be a MissingBinary error instead.
    tools.iptables_restore.name = "/nonexistent/iptables-restore".into();
    let ipt = Iptables::new(&tools, Family::V4);
    let mut b = nat_batch();
    b.append(
        "CNI-HOSTPORT-DNAT",
        &args(&["-m", "comment", "--comment", "x\n-F INPUT"]),
    );
    assert!(matches!(
        ipt.restore(&b),
        Err(FwError::UnsafeArgument { .. })
    ));
    let mut read = nat_batch();
    read.list("OUTPUT").list("CNI-DN-x\r");
    assert!(matches!(
        ipt.read(&read),
        Err(FwError::UnsafeArgument { .. })
    ));
    // a clean batch does reach the binary
    let mut clean = nat_batch();
    clean.list("OUTPUT");
    assert!(matches!(
        ipt.restore(&clean),
        Err(FwError::MissingBinary { .. })
    ));
}
