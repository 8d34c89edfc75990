//! The command functions against a temporary data directory, porting Go's
//! host_local_test.go (which drives cmdAdd/cmdDel the same way, without a
//! binary) plus GC, STATUS and rollback.

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use weft_ipam::{add, check, del, gc, load_config, status, Attachment, IpamConfig, IpamError};

const VERSIONS: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

fn ipa(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn conf(json: &str) -> IpamConfig {
    load_config(json.as_bytes(), None).unwrap()
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

fn supports_multiple_ips(ver: &str) -> bool {
    !matches!(ver, "0.1.0" | "0.2.0")
}

#[test]
fn add_and_del_dual_stack() {
    for ver in VERSIONS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("resolv.conf"), "nameserver 192.0.2.3").unwrap();
        let json = format!(
            r#"{{"cniVersion": "{ver}", "name": "mynet", "type": "ipvlan", "master": "foo0",
                "ipam": {{"type": "host-local", "dataDir": "{d}", "resolvConf": "{d}/resolv.conf",
                  "ranges": [[{{"subnet": "10.1.2.0/24"}}, {{"subnet": "10.2.2.0/24"}}],
                             [{{"subnet": "2001:db8:1::0/64"}}]],
                  "routes": [{{"dst": "0.0.0.0/0"}}, {{"dst": "::/0"}},
                             {{"dst": "192.168.0.0/16", "gw": "1.1.1.1"}},
                             {{"dst": "2001:db8:2::0/64", "gw": "2001:db8:3::1"}}]}}}}"#,
            d = dir.display()
        );
        let c = conf(&json);
        let res = add(&c, "dummy", "eth0").unwrap();
        assert_eq!(res.ips.len(), 2);
        assert_eq!(res.ips[0].address.to_string(), "10.1.2.2/24");
        assert_eq!(res.ips[0].gateway, ipa("10.1.2.1"));
        assert_eq!(res.ips[1].address.to_string(), "2001:db8:1::2/64");
        assert_eq!(res.ips[1].gateway, ipa("2001:db8:1::1"));
        assert_eq!(res.routes.len(), 4);
        assert_eq!(
            res.dns.as_ref().unwrap().nameservers,
            vec!["192.0.2.3".to_string()]
        );

        assert_eq!(read(dir, "mynet/10.1.2.2"), "dummy\r\neth0");
        assert_eq!(read(dir, "mynet/2001:db8:1::2"), "dummy\r\neth0");
        assert_eq!(read(dir, "mynet/last_reserved_ip.0"), "10.1.2.2");
        assert_eq!(read(dir, "mynet/last_reserved_ip.1"), "2001:db8:1::2");

        check(&c, "dummy", "eth0").unwrap();
        del(&c, "dummy", "eth0").unwrap();
        assert!(!dir.join("mynet/10.1.2.2").exists());
        assert!(!dir.join("mynet/2001:db8:1::2").exists());
        let e = check(&c, "dummy", "eth0").unwrap_err();
        assert_eq!(
            e.msg(),
            "host-local: Failed to find address added by container dummy"
        );
    }
}

fn single(ver: &str, name: &str, subnet: &str, dir: &Path) -> IpamConfig {
    conf(&format!(
        r#"{{"cniVersion": "{ver}", "name": "{name}", "ipam": {{"type": "host-local",
            "dataDir": "{}", "ranges": [[{{"subnet": "{subnet}"}}]]}}}}"#,
        dir.display()
    ))
}

#[test]
fn add_and_del_per_interface() {
    for ver in VERSIONS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let c0 = single(ver, "mynet0", "10.1.2.0/24", dir);
        let c1 = single(ver, "mynet1", "10.2.2.0/24", dir);
        add(&c0, "dummy", "eth0").unwrap();
        add(&c1, "dummy", "eth1").unwrap();
        assert_eq!(read(dir, "mynet0/10.1.2.2"), "dummy\r\neth0");
        assert_eq!(read(dir, "mynet1/10.2.2.2"), "dummy\r\neth1");
        del(&c0, "dummy", "eth0").unwrap();
        assert!(!dir.join("mynet0/10.1.2.2").exists());
        assert_eq!(read(dir, "mynet1/10.2.2.2"), "dummy\r\neth1");
        del(&c1, "dummy", "eth1").unwrap();
        assert!(!dir.join("mynet1/10.2.2.2").exists());
    }
}

#[test]
fn repeated_add_fails_and_keeps_the_first_address() {
    for ver in VERSIONS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let c = single(ver, "mynet0", "10.1.2.0/24", dir);
        let r0 = add(&c, "dummy", "eth0").unwrap();
        assert_eq!(r0.ips[0].address.to_string(), "10.1.2.2/24");
        let e = add(&c, "dummy", "eth0").unwrap_err();
        assert_eq!(
            e.msg(),
            "failed to allocate for range 0: 10.1.2.2 has been allocated to dummy, duplicate allocation is not allowed"
        );
        let r1 = add(&c, "dummy1", "eth0").unwrap();
        assert_eq!(r1.ips[0].address.to_string(), "10.1.2.3/24");
        assert!(add(&c, "dummy", "eth0").is_err());
        // The failed repeats did not release the first reservation.
        assert_eq!(read(dir, "mynet0/10.1.2.2"), "dummy\r\neth0");
        del(&c, "dummy", "eth0").unwrap();
        assert!(!dir.join("mynet0/10.1.2.2").exists());
        del(&c, "dummy1", "eth0").unwrap();
    }
}

#[test]
fn del_releases_legacy_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = single("1.0.0", "mynet", "10.1.2.0/24", dir);
    add(&c, "dummy", "eth0").unwrap();
    std::fs::write(dir.join("mynet/10.1.2.2"), "dummy").unwrap();
    check(&c, "dummy", "eth0").unwrap();
    del(&c, "dummy", "eth0").unwrap();
    assert!(!dir.join("mynet/10.1.2.2").exists());
}

#[test]
fn del_of_unknown_id_and_missing_directory_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let c = single("1.0.0", "mynet", "10.1.2.0/24", tmp.path());
    del(&c, "dummy", "eth0").unwrap();
    // DEL does not create the directory.
    assert!(!tmp.path().join("mynet").exists());
    add(&c, "other", "eth0").unwrap();
    del(&c, "dummy", "eth0").unwrap();
    assert!(tmp.path().join("mynet/10.1.2.2").exists());
}

#[test]
fn container_id_whitespace_is_trimmed() {
    let tmp = tempfile::tempdir().unwrap();
    let c = single("1.0.0", "mynet", "10.1.2.0/24", tmp.path());
    let r = add(&c, "   dummy\n ", "eth0").unwrap();
    let name = r.ips[0].address.ip().to_string();
    assert_eq!(read(tmp.path(), &format!("mynet/{name}")), "dummy\r\neth0");
    del(&c, "   dummy\n ", "eth0").unwrap();
    assert!(!tmp.path().join(format!("mynet/{name}")).exists());
}

fn with_args(ver: &str, dir: &Path, ranges: &str, ips: &str) -> Result<IpamConfig, IpamError> {
    load_config(
        format!(
            r#"{{"cniVersion": "{ver}", "name": "mynet", "ipam": {{"type": "host-local",
                "dataDir": "{}", "ranges": {ranges}}}, "args": {{"cni": {{"ips": {ips}}}}}}}"#,
            dir.display()
        )
        .as_bytes(),
        None,
    )
}

#[test]
fn requested_ips() {
    for ver in VERSIONS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();

        let c = with_args(
            ver,
            dir,
            r#"[[{"subnet": "10.1.2.0/24"}]]"#,
            r#"["10.1.2.88"]"#,
        )
        .unwrap();
        let r = add(&c, "dummy", "eth0").unwrap();
        assert_eq!(r.ips.len(), 1);
        assert_eq!(r.ips[0].address.ip(), ipa("10.1.2.88"));

        let two = r#"[[{"subnet": "10.1.3.0/24"}], [{"subnet": "10.1.4.0/24"}]]"#;
        match with_args(ver, dir, two, r#"["10.1.3.88", "10.1.4.77"]"#) {
            Ok(c) => {
                assert!(supports_multiple_ips(ver));
                let r = add(&c, "dummy", "eth0").unwrap();
                assert_eq!(r.ips[0].address.ip(), ipa("10.1.3.88"));
                assert_eq!(r.ips[1].address.ip(), ipa("10.1.4.77"));
            }
            Err(e) => {
                assert!(!supports_multiple_ips(ver));
                assert_eq!(
                    e.msg(),
                    format!("CNI version {ver} does not support more than 1 address per family")
                );
            }
        }

        let dual = r#"[[{"subnet":"172.16.1.0/24"}, {"subnet": "10.1.5.0/24"}], [{"subnet": "2001:db8:1::/48"}]]"#;
        let c = with_args(ver, dir, dual, r#"["10.1.5.88", "2001:db8:1::999"]"#).unwrap();
        let r = add(&c, "dummy", "eth0").unwrap();
        assert_eq!(r.ips[0].address.ip(), ipa("10.1.5.88"));
        assert_eq!(r.ips[1].address.ip(), ipa("2001:db8:1::999"));
    }
}

#[test]
fn unused_requested_ip_fails_and_releases() {
    for ver in ["0.3.1", "1.0.0", "1.1.0"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let two = r#"[[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]]"#;
        let c = with_args(ver, dir, two, r#"["10.1.2.88", "10.1.2.77"]"#).unwrap();
        let e = add(&c, "dummy", "eth0").unwrap_err();
        assert_eq!(e.msg(), "failed to allocate all requested IPs: 10.1.2.77");
        // Nothing stays reserved.
        let left: Vec<String> = std::fs::read_dir(dir.join("mynet"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.parse::<IpAddr>().is_ok())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn requested_gateway_and_taken_ip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = with_args(
        "1.0.0",
        dir,
        r#"[[{"subnet": "10.1.2.0/24"}]]"#,
        r#"["10.1.2.1"]"#,
    )
    .unwrap();
    let e = add(&c, "dummy", "eth0").unwrap_err();
    assert_eq!(
        e.msg(),
        "failed to allocate for range 0: requested ip 10.1.2.1 is subnet's gateway"
    );
    let c = with_args(
        "1.0.0",
        dir,
        r#"[[{"subnet": "10.1.2.0/24"}]]"#,
        r#"["10.1.2.9"]"#,
    )
    .unwrap();
    add(&c, "a", "eth0").unwrap();
    let e = add(&c, "b", "eth0").unwrap_err();
    assert_eq!(
        e.msg(),
        "failed to allocate for range 0: requested IP address 10.1.2.9 is not available in range set 10.1.2.1-10.1.2.254"
    );
}

#[test]
fn later_set_failure_releases_earlier_sets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = conf(&format!(
        r#"{{"cniVersion": "1.0.0", "name": "mynet", "ipam": {{"dataDir": "{}",
            "ranges": [[{{"subnet": "10.1.2.0/24"}}], [{{"subnet": "10.9.0.0/30"}}]]}}}}"#,
        dir.display()
    ));
    add(&c, "first", "eth0").unwrap(); // takes 10.9.0.2, the only one
    let e = add(&c, "second", "eth0").unwrap_err();
    assert_eq!(
        e.msg(),
        "failed to allocate for range 1: no IP addresses available in range set: 10.9.0.1-10.9.0.2"
    );
    assert!(!dir.join("mynet/10.1.2.3").exists());
    assert_eq!(read(dir, "mynet/10.1.2.2"), "first\r\neth0");
}

#[test]
fn resolv_conf_failure_allocates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = conf(&format!(
        r#"{{"cniVersion": "1.0.0", "name": "mynet", "ipam": {{"dataDir": "{d}",
            "resolvConf": "{d}/missing.conf", "subnet": "10.1.2.0/24"}}}}"#,
        d = dir.display()
    ));
    let e = add(&c, "a", "eth0").unwrap_err();
    assert_eq!(e.code(), 5);
    assert!(!dir.join("mynet").exists());
}

#[test]
fn gc_releases_stale_attachments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = conf(&format!(
        r#"{{"cniVersion": "1.1.0", "name": "mynet", "ipam": {{"dataDir": "{}",
            "ranges": [[{{"subnet": "10.1.2.0/24"}}], [{{"subnet": "2001:db8::/64"}}]]}}}}"#,
        dir.display()
    ));
    add(&c, "keep", "eth0").unwrap();
    add(&c, "stale", "eth0").unwrap();
    add(&c, "keep", "net1").unwrap();
    std::fs::write(dir.join("mynet/10.1.2.50"), "legacy-keep").unwrap();
    std::fs::write(dir.join("mynet/10.1.2.51"), "legacy-stale").unwrap();
    let valid = [
        Attachment {
            container_id: "keep".into(),
            ifname: "eth0".into(),
        },
        Attachment {
            container_id: "legacy-keep".into(),
            ifname: "eth0".into(),
        },
    ];
    let mut released: Vec<String> = gc(&c, &valid)
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    released.sort();
    assert_eq!(
        released,
        [
            "10.1.2.3",
            "10.1.2.4",
            "10.1.2.51",
            "2001:db8::3",
            "2001:db8::4"
        ]
    );
    assert_eq!(read(dir, "mynet/10.1.2.2"), "keep\r\neth0");
    assert_eq!(read(dir, "mynet/2001:db8::2"), "keep\r\neth0");
    assert!(dir.join("mynet/10.1.2.50").exists());
    check(&c, "keep", "eth0").unwrap();
    assert!(check(&c, "stale", "eth0").is_err());
    // GC of a network that never had an ADD is a no-op.
    let other = single("1.1.0", "never", "10.7.0.0/24", dir);
    assert!(gc(&other, &[]).unwrap().is_empty());
    assert!(!dir.join("never").exists());
}

#[test]
fn status_reports_exhaustion_and_unusable_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = conf(&format!(
        r#"{{"cniVersion": "1.1.0", "name": "mynet", "ipam": {{"dataDir": "{}",
            "ranges": [[{{"subnet": "10.1.2.0/24"}}], [{{"subnet": "10.9.0.0/29", "rangeStart": "10.9.0.2", "rangeEnd": "10.9.0.3"}}]]}}}}"#,
        dir.display()
    ));
    status(&c).unwrap();
    add(&c, "a", "eth0").unwrap();
    status(&c).unwrap();
    add(&c, "b", "eth0").unwrap();
    let e = status(&c).unwrap_err();
    assert_eq!(e.code(), 50);
    assert_eq!(
        e.msg(),
        "no IP addresses available in range set 1 (10.9.0.2-10.9.0.3)"
    );
    // A reservation of an address outside the ranges does not count.
    del(&c, "b", "eth0").unwrap();
    std::fs::write(dir.join("mynet/10.9.0.5"), "x").unwrap();
    status(&c).unwrap();

    // dataDir under a regular file cannot be created.
    std::fs::write(dir.join("file"), "").unwrap();
    let bad = single(
        "1.1.0",
        "mynet",
        "10.1.2.0/24",
        &dir.join("file").join("sub"),
    );
    let e = status(&bad).unwrap_err();
    assert_eq!(e.code(), 50);
    assert!(e.msg().starts_with("data directory "), "{e}");
    assert!(e.msg().contains("not a directory"), "{e}");
}

#[test]
fn concurrent_adds_in_threads_get_unique_addresses() {
    let tmp = tempfile::tempdir().unwrap();
    let c = single("1.0.0", "mynet", "10.1.2.0/27", tmp.path());
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                add(&c, &format!("c{i}"), "eth0").map(|r| r.ips[0].address.ip())
            })
        })
        .collect();
    let mut ips: Vec<IpAddr> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20);
}

#[test]
fn dual_stack_ordering_of_last_reserved_files_follows_set_index() {
    // runtimeConfig.ipRanges come first, so they own last_reserved_ip.0.
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_path_buf();
    let c = conf(&format!(
        r#"{{"cniVersion": "1.0.0", "name": "mynet",
            "runtimeConfig": {{"ipRanges": [[{{"subnet": "10.50.0.0/24"}}]]}},
            "ipam": {{"dataDir": "{}", "subnet": "10.1.2.0/24"}}}}"#,
        dir.display()
    ));
    let r = add(&c, "a", "eth0").unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.50.0.2/24");
    assert_eq!(r.ips[1].address.to_string(), "10.1.2.2/24");
    assert_eq!(read(&dir, "mynet/last_reserved_ip.0"), "10.50.0.2");
    assert_eq!(read(&dir, "mynet/last_reserved_ip.1"), "10.1.2.2");
}
