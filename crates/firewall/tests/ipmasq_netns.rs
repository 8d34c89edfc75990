//! ipMasq against the real kernel, each test in its own network namespaces,
//! compared with what the Go bridge plugin (v1.1.1, /usr/lib/cni) makes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{can_run, have_go_bridge, nets, GoBridge, TestNs};
use weft_firewall::{chain_name, ipmasq, select_backend_with, Backend, Family, FwError, Tools};

fn tools() -> Tools {
    Tools::from_env()
}

fn setup(ns: &TestNs, backend: Backend, ips: &[&str], net: &str, ifname: &str, cid: &str) {
    let ips = nets(ips);
    ns.run(|| ipmasq::setup(&tools(), backend, &ips, net, ifname, cid))
        .unwrap_or_else(|e| panic!("setup {net}/{cid}: {e}"));
}

fn teardown(ns: &TestNs, ips: &[&str], net: &str, ifname: &str, cid: &str) {
    let ips = nets(ips);
    ns.run(|| ipmasq::teardown(&tools(), &ips, net, ifname, cid))
        .unwrap_or_else(|e| panic!("teardown {net}/{cid}: {e}"));
}

fn check(ns: &TestNs, backend: Backend, ips: &[&str], net: &str, ifname: &str, cid: &str) -> bool {
    let ips = nets(ips);
    ns.run(|| ipmasq::check(&tools(), backend, &ips, net, ifname, cid))
        .unwrap()
}

// ---------------------------------------------------------------------------
// iptables, against Go

#[test]
fn iptables_rules_are_identical_to_go() {
    if !can_run() || !have_go_bridge() {
        return;
    }
    let (go_host, go_cont, weft_host) = (TestNs::new(), TestNs::new(), TestNs::new());
    // Two IPv4 ranges and one IPv6 range: three addresses, and the shared
    // MASQUERADE rule shows AppendUnique's ordering.
    let go = GoBridge::new(
        &go_host,
        &go_cont,
        "weftnet",
        &["10.77.0.0/24", "10.78.0.0/16", "fd77::/64"],
    );
    let ips = go.add("ctr-golden-1", "eth0");
    assert_eq!(ips.len(), 3, "{ips:?}");

    weft_host
        .run(|| {
            ipmasq::setup(
                &tools(),
                Backend::Iptables,
                &ips,
                "weftnet",
                "eth0",
                "ctr-golden-1",
            )
        })
        .unwrap();

    for family in Family::ALL {
        let theirs = go_host.nat_save(family);
        let ours = weft_host.nat_save(family);
        assert!(
            theirs.iter().any(|l| l.contains("MASQUERADE")),
            "{theirs:#?}"
        );
        assert_eq!(ours, theirs, "{family:?} nat table differs from Go's");
    }
    // Spot-check the bytes the brief spells out.
    let chain = chain_name("", "weftnet", "ctr-golden-1");
    let v4 = weft_host.nat_save(Family::V4);
    let comment = r#"-m comment --comment "name: \"weftnet\" id: \"ctr-golden-1\"""#;
    assert!(v4.contains(&format!(
        "-A POSTROUTING -s {}/32 {comment} -j {chain}",
        ips[0].ip()
    )));
    assert!(v4.contains(&format!("-A {chain} -d 10.77.0.0/24 {comment} -j ACCEPT")));
    assert!(v4.contains(&format!(
        "-A {chain} ! -d 224.0.0.0/4 {comment} -j MASQUERADE"
    )));
    let v6 = weft_host.nat_save(Family::V6);
    assert!(v6.contains(&format!("-A {chain} ! -d ff00::/8 {comment} -j MASQUERADE")));

    // Go's own DEL cannot undo this one: with two IPv4 addresses it deletes
    // the chain while the second POSTROUTING jump still uses it ("CHAIN_DEL
    // failed (Device or resource busy)"). Ours removes every jump first.
    teardown(&go_host, &[], "weftnet", "eth0", "ctr-golden-1");
    assert!(go_host.cni_lines(Family::V4).is_empty());
    assert!(go_host.cni_lines(Family::V6).is_empty());
}

#[test]
fn go_rules_removed_by_weft_and_weft_rules_removed_by_go() {
    if !can_run() || !have_go_bridge() {
        return;
    }
    let (host, cont) = (TestNs::new(), TestNs::new());
    let go = GoBridge::new(&host, &cont, "mixnet", &["10.79.0.0/24", "fd79::/64"]);
    let ips = go.add("ctr-mix", "eth0");
    let go_v4 = host.nat_save(Family::V4);
    let go_v6 = host.nat_save(Family::V6);
    assert!(!host.cni_lines(Family::V4).is_empty());
    assert!(!host.cni_lines(Family::V6).is_empty());

    // Our teardown without any address (the DEL-without-netns case) removes
    // the chain and the POSTROUTING jumps Go made.
    teardown(&host, &[], "mixnet", "eth0", "ctr-mix");
    assert_eq!(host.cni_lines(Family::V4), Vec::<String>::new());
    assert_eq!(host.cni_lines(Family::V6), Vec::<String>::new());

    // Our setup recreates exactly Go's rules...
    host.run(|| {
        ipmasq::setup(
            &tools(),
            Backend::Iptables,
            &ips,
            "mixnet",
            "eth0",
            "ctr-mix",
        )
    })
    .unwrap();
    assert_eq!(host.nat_save(Family::V4), go_v4);
    assert_eq!(host.nat_save(Family::V6), go_v6);

    // ...and Go's DEL removes them.
    go.del("ctr-mix", "eth0");
    assert_eq!(host.cni_lines(Family::V4), Vec::<String>::new());
    assert_eq!(host.cni_lines(Family::V6), Vec::<String>::new());
}

#[test]
fn go_add_after_weft_add_adds_nothing() {
    if !can_run() || !have_go_bridge() {
        return;
    }
    // Our rules, then Go's ADD for the same attachment: Go's AppendUnique
    // (iptables -C) must find every rule, so nothing is duplicated.
    let (host, cont) = (TestNs::new(), TestNs::new());
    let go = GoBridge::new(&host, &cont, "dupnet", &["10.80.0.0/24"]);
    // host-local hands out .2 first.
    setup(
        &host,
        Backend::Iptables,
        &["10.80.0.2/24"],
        "dupnet",
        "eth0",
        "ctr-dup",
    );
    let ours = host.nat_save(Family::V4);
    let ips = go.add("ctr-dup", "eth0");
    assert_eq!(ips, nets(&["10.80.0.2/24"]));
    assert_eq!(host.nat_save(Family::V4), ours);
    go.del("ctr-dup", "eth0");
    assert!(host.cni_lines(Family::V4).is_empty());
}

// ---------------------------------------------------------------------------
// iptables, on our own

#[test]
fn iptables_setup_idempotent_teardown_twice() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    let ips = ["10.81.0.5/24", "fd81::5/64"];
    setup(&ns, Backend::Iptables, &ips, "idem", "eth0", "c1");
    let v4 = ns.nat_save(Family::V4);
    let v6 = ns.nat_save(Family::V6);
    assert_eq!(ns.cni_lines(Family::V4).len(), 4, "{v4:#?}");
    assert_eq!(ns.cni_lines(Family::V6).len(), 4, "{v6:#?}");
    assert!(check(&ns, Backend::Iptables, &ips, "idem", "eth0", "c1"));

    setup(&ns, Backend::Iptables, &ips, "idem", "eth0", "c1");
    assert_eq!(ns.nat_save(Family::V4), v4);
    assert_eq!(ns.nat_save(Family::V6), v6);

    // A rule removed behind our back is reported by check and restored by
    // the next setup, without duplicating the others.
    let chain = chain_name("", "idem", "c1");
    ns.exec(&["iptables", "-t", "nat", "-D", &chain, "2"]);
    assert!(!check(&ns, Backend::Iptables, &ips, "idem", "eth0", "c1"));
    setup(&ns, Backend::Iptables, &ips, "idem", "eth0", "c1");
    assert_eq!(ns.cni_lines(Family::V4).len(), 4);
    assert!(check(&ns, Backend::Iptables, &ips, "idem", "eth0", "c1"));

    teardown(&ns, &ips, "idem", "eth0", "c1");
    assert!(ns.cni_lines(Family::V4).is_empty());
    assert!(ns.cni_lines(Family::V6).is_empty());
    assert!(!check(&ns, Backend::Iptables, &ips, "idem", "eth0", "c1"));
    teardown(&ns, &ips, "idem", "eth0", "c1");
    teardown(&ns, &[], "idem", "eth0", "c1");
}

#[test]
fn iptables_teardown_leaves_other_containers_alone() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    setup(
        &ns,
        Backend::Iptables,
        &["10.82.0.2/24"],
        "shared",
        "eth0",
        "keep",
    );
    setup(
        &ns,
        Backend::Iptables,
        &["10.82.0.3/24"],
        "shared",
        "eth0",
        "drop",
    );
    setup(
        &ns,
        Backend::Iptables,
        &["10.82.0.3/24"],
        "othernet",
        "eth0",
        "drop",
    );
    let keep_before: Vec<String> = ns
        .cni_lines(Family::V4)
        .into_iter()
        .filter(|l| l.contains(&chain_name("", "shared", "keep")))
        .collect();
    teardown(&ns, &[], "shared", "eth0", "drop");
    let after = ns.cni_lines(Family::V4);
    assert!(!after
        .iter()
        .any(|l| l.contains(&chain_name("", "shared", "drop"))));
    let keep_after: Vec<String> = after
        .iter()
        .filter(|l| l.contains(&chain_name("", "shared", "keep")))
        .cloned()
        .collect();
    assert_eq!(keep_after, keep_before);
    assert!(after
        .iter()
        .any(|l| l.contains(&chain_name("", "othernet", "drop"))));
}

#[test]
fn iptables_legacy_variant() {
    if !can_run() || weft_firewall::resolve_binary("iptables-legacy").is_none() {
        return;
    }
    let ns = TestNs::new();
    let tools = Tools::from_env().with_iptables_variant("iptables-legacy", "ip6tables-legacy");
    let ips = nets(&["10.83.0.2/24", "fd83::2/64"]);
    let run = |f: &(dyn Fn() -> Result<(), FwError> + Sync)| ns.run(f).unwrap();
    run(&|| ipmasq::setup(&tools, Backend::Iptables, &ips, "legacy", "eth0", "c1"));
    let saved = ns.nat_save_with("iptables-legacy-save");
    run(&|| ipmasq::setup(&tools, Backend::Iptables, &ips, "legacy", "eth0", "c1"));
    assert_eq!(ns.nat_save_with("iptables-legacy-save"), saved);
    let cni: Vec<&String> = saved.iter().filter(|l| l.contains("CNI-")).collect();
    assert_eq!(cni.len(), 4, "{saved:#?}");
    assert!(ns
        .run(|| ipmasq::check(&tools, Backend::Iptables, &ips, "legacy", "eth0", "c1"))
        .unwrap());
    run(&|| ipmasq::teardown(&tools, &[], "legacy", "eth0", "c1"));
    assert!(!ns
        .nat_save_with("iptables-legacy-save")
        .iter()
        .any(|l| l.contains("CNI-")));
    assert!(!ns
        .nat_save_with("ip6tables-legacy-save")
        .iter()
        .any(|l| l.contains("CNI-")));
}

// ---------------------------------------------------------------------------
// nftables

const NFT_HEAD: &str = "table inet cni_plugins_masquerade {
\tcomment \"Masquerading for plugins from github.com/containernetworking/plugins\"
\tchain masq_checks {
\t\tcomment \"Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet\"
";
const NFT_TAIL: &str = "\t}

\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip daddr 224.0.0.0/4 return
\t\tip6 daddr ff00::/8 return
\t\tgoto masq_checks
\t}
}
";

fn nft_expect(rules: &[&str]) -> String {
    let mut s = NFT_HEAD.to_string();
    for r in rules {
        s.push_str("\t\t");
        s.push_str(r);
        s.push('\n');
    }
    s.push_str(NFT_TAIL);
    s
}

const ONE: &str = "ip saddr 192.168.1.1 ip daddr != 192.168.1.0/24 masquerade comment \"6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one\"";
const TWO: &str = "ip saddr 192.168.1.2 ip daddr != 192.168.1.0/24 masquerade comment \"6fd94d501e58f0aa-d750b2c8f0f25d5f, net: unit-test, if: eth0, id: two\"";
const THREE: &str = "ip saddr 192.168.99.5 ip daddr != 192.168.99.0/24 masquerade comment \"6fd94d501e58f0aa-a4d4adb82b669cfe, net: unit-test, if: eth0, id: three\"";
const ALT: &str = "ip saddr 10.0.0.5 ip daddr != 10.0.0.0/24 masquerade comment \"82783ef24bdc7036-acb19d111858e348, net: alternate, if: net1, id: three\"";
const FOUR: &str = "ip saddr 192.168.1.1 ip daddr != 192.168.1.0/24 masquerade comment \"6fd94d501e58f0aa-e766de567ef6c543, net: unit-test, if: eth0, id: four\"";

/// Go's Test_setupIPMasqNFTables (pkg/ip/ipmasq_nftables_linux_test.go),
/// replayed against the real kernel.
#[test]
fn nftables_follows_go_unit_test_sequence() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    let t = tools();
    setup(
        &ns,
        Backend::Nftables,
        &["192.168.1.1/24"],
        "unit-test",
        "eth0",
        "one",
    );
    setup(
        &ns,
        Backend::Nftables,
        &["192.168.1.2/24"],
        "unit-test",
        "eth0",
        "two",
    );
    setup(
        &ns,
        Backend::Nftables,
        &["192.168.99.5/24"],
        "unit-test",
        "eth0",
        "three",
    );
    setup(
        &ns,
        Backend::Nftables,
        &["10.0.0.5/24"],
        "alternate",
        "net1",
        "three",
    );
    assert_eq!(
        ns.nft_masq_table().unwrap(),
        nft_expect(&[ONE, TWO, THREE, ALT])
    );

    // Setting up the same instance again replaces its rule, no duplicate.
    setup(
        &ns,
        Backend::Nftables,
        &["192.168.1.2/24"],
        "unit-test",
        "eth0",
        "two",
    );
    assert_eq!(
        ns.nft_masq_table().unwrap(),
        nft_expect(&[ONE, THREE, ALT, TWO])
    );
    setup(
        &ns,
        Backend::Nftables,
        &["192.168.1.1/24"],
        "unit-test",
        "eth0",
        "four",
    );
    assert!(check(
        &ns,
        Backend::Nftables,
        &["192.168.1.1/24"],
        "unit-test",
        "eth0",
        "one"
    ));

    teardown(&ns, &["192.168.1.1/24"], "unit-test", "eth0", "one");
    assert_eq!(
        ns.nft_masq_table().unwrap(),
        nft_expect(&[THREE, ALT, TWO, FOUR])
    );
    assert!(!check(
        &ns,
        Backend::Nftables,
        &["192.168.1.1/24"],
        "unit-test",
        "eth0",
        "one"
    ));
    assert!(check(
        &ns,
        Backend::Nftables,
        &["192.168.1.1/24"],
        "unit-test",
        "eth0",
        "four"
    ));
    // Again, and without addresses: nothing left to do, still fine.
    teardown(&ns, &[], "unit-test", "eth0", "one");

    let valid = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, i)| (c.to_string(), i.to_string()))
            .collect()
    };
    let keep = valid(&[("two", "eth0"), ("three", "eth0"), ("one", "eth0")]);
    ns.run(|| ipmasq::gc(&t, "unit-test", &keep)).unwrap();
    let keep = valid(&[("three", "net1")]);
    ns.run(|| ipmasq::gc(&t, "alternate", &keep)).unwrap();
    assert_eq!(ns.nft_masq_table().unwrap(), nft_expect(&[THREE, ALT, TWO]));

    ns.run(|| ipmasq::gc(&t, "unit-test", &[])).unwrap();
    ns.run(|| ipmasq::gc(&t, "alternate", &[])).unwrap();
    assert_eq!(ns.nft_masq_table().unwrap(), nft_expect(&[]));
}

#[test]
fn nftables_dual_stack_and_teardown_twice() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    let ips = ["10.84.0.7/24", "fd84::7/64"];
    setup(&ns, Backend::Nftables, &ips, "dual", "eth0", "c1");
    let table = ns.nft_masq_table().unwrap();
    assert!(
        table.contains("ip saddr 10.84.0.7 ip daddr != 10.84.0.0/24 masquerade comment"),
        "{table}"
    );
    assert!(
        table.contains("ip6 saddr fd84::7 ip6 daddr != fd84::/64 masquerade comment"),
        "{table}"
    );
    assert!(check(&ns, Backend::Nftables, &ips, "dual", "eth0", "c1"));
    // Another ifname of the same container is another instance.
    assert!(!check(&ns, Backend::Nftables, &ips, "dual", "eth1", "c1"));
    // iptables was not touched.
    assert!(ns.cni_lines(Family::V4).is_empty());

    teardown(&ns, &[], "dual", "eth0", "c1");
    assert_eq!(ns.nft_masq_table().unwrap(), nft_expect(&[]));
    teardown(&ns, &ips, "dual", "eth0", "c1");
}

#[test]
fn teardown_and_gc_on_a_clean_namespace() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    teardown(&ns, &nets_str(), "nothing", "eth0", "c1");
    ns.run(|| ipmasq::gc(&tools(), "nothing", &[])).unwrap();
    // Neither created anything.
    assert!(ns.nft_masq_table().is_none());
    assert!(ns.cni_lines(Family::V4).is_empty());
}

fn nets_str() -> Vec<&'static str> {
    vec!["10.85.0.2/24", "fd85::2/64"]
}

// ---------------------------------------------------------------------------
// GC across both backends

#[test]
fn gc_keeps_valid_attachments_and_removes_the_rest() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    setup(
        &ns,
        Backend::Iptables,
        &["10.86.0.2/24", "fd86::2/64"],
        "gcnet",
        "eth0",
        "c1",
    );
    setup(
        &ns,
        Backend::Iptables,
        &["10.86.0.3/24", "fd86::3/64"],
        "gcnet",
        "eth0",
        "c2",
    );
    setup(
        &ns,
        Backend::Iptables,
        &["10.86.0.4/24"],
        "othernet",
        "eth0",
        "c3",
    );
    setup(
        &ns,
        Backend::Nftables,
        &["10.87.0.2/24"],
        "gcnet",
        "eth0",
        "n1",
    );
    setup(
        &ns,
        Backend::Nftables,
        &["10.87.0.3/24"],
        "gcnet",
        "eth0",
        "n2",
    );
    setup(
        &ns,
        Backend::Nftables,
        &["10.87.0.4/24"],
        "othernet",
        "eth0",
        "n3",
    );

    let valid = vec![
        ("c1".to_string(), "eth0".to_string()),
        ("n1".to_string(), "eth0".to_string()),
    ];
    ns.run(|| ipmasq::gc(&tools(), "gcnet", &valid)).unwrap();

    let has = |family: Family, chain: &str| ns.cni_lines(family).iter().any(|l| l.contains(chain));
    let (c1, c2, c3) = (
        chain_name("", "gcnet", "c1"),
        chain_name("", "gcnet", "c2"),
        chain_name("", "othernet", "c3"),
    );
    assert!(has(Family::V4, &c1) && has(Family::V6, &c1));
    assert!(!has(Family::V4, &c2) && !has(Family::V6, &c2));
    assert!(has(Family::V4, &c3));
    assert!(check(
        &ns,
        Backend::Iptables,
        &["10.86.0.2/24", "fd86::2/64"],
        "gcnet",
        "eth0",
        "c1"
    ));

    let table = ns.nft_masq_table().unwrap();
    assert!(table.contains("id: n1\""), "{table}");
    assert!(!table.contains("id: n2\""), "{table}");
    assert!(table.contains("id: n3\""), "{table}");

    // GC is idempotent.
    ns.run(|| ipmasq::gc(&tools(), "gcnet", &valid)).unwrap();
    assert!(has(Family::V4, &c1));
}

/// An ifname may hold `"`, `\`, `;`, `#`, `{` (CNI only refuses `/`, `:`
/// and spaces). Nothing of it may be parsed as nft syntax, and the stored
/// comment must be the one CHECK and GC compute, or GC would delete the
/// rule of a live container.
#[test]
fn nftables_hostile_ifname_stays_inside_the_comment() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    let evil = r#"e"\;#{}$0"#;
    setup(
        &ns,
        Backend::Nftables,
        &["10.88.0.2/24"],
        "hnet",
        evil,
        "h1",
    );
    setup(
        &ns,
        Backend::Nftables,
        &["10.88.0.3/24"],
        "hnet",
        "eth0",
        "h2",
    );
    let table = ns.nft_masq_table().unwrap();
    let rules: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("masquerade comment"))
        .collect();
    assert_eq!(rules.len(), 2, "{table}");
    assert!(
        rules[0].contains(r#", net: hnet, if: e\;#{}$0, id: h1""#),
        "{table}"
    );
    assert!(check(
        &ns,
        Backend::Nftables,
        &["10.88.0.2/24"],
        "hnet",
        evil,
        "h1"
    ));
    // GC with both attachments valid keeps both rules.
    let valid = vec![
        ("h1".to_string(), evil.to_string()),
        ("h2".to_string(), "eth0".to_string()),
    ];
    ns.run(|| ipmasq::gc(&tools(), "hnet", &valid)).unwrap();
    assert_eq!(ns.nft_masq_table().unwrap(), table);
    teardown(&ns, &["10.88.0.2/24"], "hnet", evil, "h1");
    let left = ns.nft_masq_table().unwrap();
    assert!(!left.contains("id: h1"), "{left}");
    assert!(left.contains("id: h2"), "{left}");
    assert!(!check(
        &ns,
        Backend::Nftables,
        &["10.88.0.2/24"],
        "hnet",
        evil,
        "h1"
    ));
}

/// A setup that fails in one family removes what it did in the others, so
/// the caller has nothing to roll back.
#[test]
fn failed_iptables_setup_leaves_nothing() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    let mut t = tools();
    t.ip6tables_restore.name = "/nonexistent/ip6tables-restore".into();
    let ips = nets(&["10.89.0.2/24", "fd89::2/64"]);
    let err = ns
        .run(|| ipmasq::setup(&t, Backend::Iptables, &ips, "fnet", "eth0", "f1"))
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/ip6tables-restore"),
        "{err}"
    );
    assert!(
        ns.cni_lines(Family::V4).is_empty(),
        "{:?}",
        ns.cni_lines(Family::V4)
    );
    assert!(ns.cni_lines(Family::V6).is_empty());
}

// ---------------------------------------------------------------------------
// Missing binaries and backend selection

fn missing(tools: &mut Tools) {
    for t in [
        &mut tools.iptables,
        &mut tools.ip6tables,
        &mut tools.iptables_restore,
        &mut tools.ip6tables_restore,
        &mut tools.nft,
    ] {
        t.name = format!("/nonexistent/{}", t.name);
    }
}

#[test]
fn missing_binaries_are_named() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    let mut t = tools();
    missing(&mut t);
    let ips = nets(&["10.88.0.2/24"]);

    let err = ns
        .run(|| ipmasq::setup(&t, Backend::Iptables, &ips, "m", "eth0", "c"))
        .unwrap_err();
    assert!(matches!(err, FwError::MissingBinary { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/iptables"), "{err}");
    assert!(err.to_string().contains("WEFT_IPTABLES"), "{err}");

    let err = ns
        .run(|| ipmasq::setup(&t, Backend::Nftables, &ips, "m", "eth0", "c"))
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/nft"), "{err}");

    // Only ip6tables missing: v4 works, v6 names ip6tables.
    let mut only6 = tools();
    only6.ip6tables.name = "/nonexistent/ip6tables".into();
    let v6 = nets(&["fd88::2/64"]);
    let err = ns
        .run(|| ipmasq::setup(&only6, Backend::Iptables, &v6, "m", "eth0", "c"))
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ip6tables"), "{err}");
    ns.run(|| ipmasq::setup(&only6, Backend::Iptables, &ips, "m", "eth0", "c"))
        .unwrap();

    // With no tool at all there is nothing to clean: DEL and GC succeed.
    ns.run(|| ipmasq::teardown(&t, &ips, "m", "eth0", "c"))
        .unwrap();
    ns.run(|| ipmasq::gc(&t, "m", &[])).unwrap();
    // The real tools still see the v4 rules made above.
    assert!(!ns.cni_lines(Family::V4).is_empty());
}

#[test]
fn only_restore_missing_is_an_error_on_teardown() {
    if !can_run() {
        return;
    }
    // iptables works (so errors count) but iptables-restore is missing: the
    // teardown must report it rather than silently leak the chain.
    let ns = TestNs::new();
    setup(&ns, Backend::Iptables, &["10.89.0.2/24"], "r", "eth0", "c");
    let mut t = tools();
    t.iptables_restore.name = "/nonexistent/iptables-restore".into();
    let err = ns
        .run(|| ipmasq::teardown(&t, &[], "r", "eth0", "c"))
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/iptables-restore"),
        "{err}"
    );
    assert!(!ns.cni_lines(Family::V4).is_empty());
    teardown(&ns, &[], "r", "eth0", "c");
    assert!(ns.cni_lines(Family::V4).is_empty());
}

#[test]
fn default_backend_here_is_iptables() {
    if !can_run() {
        return;
    }
    let ns = TestNs::new();
    let t = tools();
    assert_eq!(
        ns.run(|| select_backend_with(&t, None)).unwrap(),
        Backend::Iptables
    );
    // iptables unusable, nft usable: nftables.
    let mut no_ipt = tools();
    no_ipt.iptables.name = "/nonexistent/iptables".into();
    assert_eq!(
        ns.run(|| select_backend_with(&no_ipt, None)).unwrap(),
        Backend::Nftables
    );
}
