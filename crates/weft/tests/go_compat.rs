//! Our host-local against the Go reference binary: same results, same
//! files, and both working one shared data directory, in turn and at the
//! same time (they must take the same flock on the same `lock` file).

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::*;

const DUAL: &str = r#""ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}],
                                 [{"subnet": "2001:db8:1::/64"}]],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"},
               {"dst": "192.168.0.0/16", "gw": "1.1.1.1"},
               {"dst": "2001:db8:2::0/64", "gw": "2001:db8:3::1"}]"#;

/// The same sequence of commands against Go (dir A) and us (dir B) gives
/// byte-identical stdout and identical directories, in every spec version
/// both speak.
#[test]
fn results_and_files_match_go() {
    let versions = go_versions();
    assert!(versions.contains(&"1.0.0".to_string()), "{versions:?}");
    for ver in &versions {
        let tmp = tempfile::tempdir().unwrap();
        let resolv = tmp.path().join("resolv.conf");
        std::fs::write(
            &resolv,
            "nameserver 192.0.2.3\nsearch example.com\noptions ndots:5\n",
        )
        .unwrap();
        let extra = format!(r#""resolvConf": "{}", {DUAL}"#, resolv.display());
        let go_dir = tmp.path().join("go");
        let weft_dir = tmp.path().join("weft");
        let go_conf = conf(ver, "mynet", &go_dir, &extra);
        let weft_conf = conf(ver, "mynet", &weft_dir, &extra);

        let steps: &[(&str, &str, &str, &str)] = &[
            ("ADD", "c1", "eth0", ""),
            ("ADD", "c2", "eth0", ""),
            ("ADD", "c1", "eth1", ""),
            ("CHECK", "c1", "eth0", ""),
            ("DEL", "c2", "eth0", ""),
            (
                "ADD",
                "c3",
                "eth0",
                "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.2.2.77",
            ),
            ("ADD", "c4", "eth0", ""),
            // Errors: duplicate, unknown CNI_ARGS, requested IP taken.
            ("ADD", "c1", "eth0", ""),
            ("ADD", "c5", "eth0", "FOO=bar"),
            ("ADD", "c6", "eth0", "IgnoreUnknown=1;IP=10.2.2.77"),
            ("DEL", "nobody", "eth0", ""),
            ("CHECK", "nobody", "eth0", ""),
            ("DEL", "c4", "eth0", ""),
        ];
        for (verb, cid, ifname, args) in steps {
            if *verb == "CHECK" && !["0.4.0", "1.0.0", "1.1.0"].contains(&ver.as_str()) {
                continue;
            }
            let g = run_args(go(), verb, cid, ifname, &go_conf, args);
            let w = run_args(WEFT, verb, cid, ifname, &weft_conf, args);
            let step = format!("{ver} {verb} {cid}/{ifname} {args}");
            assert_eq!(
                g.code, w.code,
                "{step}: exit codes differ\ngo: {g:?}\nweft: {w:?}"
            );
            if g.code == 0 {
                assert_eq!(g.stdout, w.stdout, "{step}: stdout differs");
            } else {
                assert_eq!(g.err_msg(), w.err_msg(), "{step}: error text differs");
            }
        }

        let go_files = snapshot(&go_dir.join("mynet"));
        let weft_files = snapshot(&weft_dir.join("mynet"));
        let names: Vec<&String> = go_files.keys().collect();
        assert_eq!(
            names,
            weft_files.keys().collect::<Vec<_>>(),
            "{ver}: file names differ"
        );
        for (name, (go_content, go_mode)) in &go_files {
            let (weft_content, weft_mode) = &weft_files[name];
            assert_eq!(go_content, weft_content, "{ver}: content of {name} differs");
            if name == "lock" {
                assert_eq!(go_mode, weft_mode, "{ver}: mode of lock");
            } else {
                // Upstream creates data files 0600 since v1.2; Debian's
                // v1.1.1 still uses 0644. We follow upstream.
                assert_eq!(*weft_mode, 0o600, "{ver}: mode of {name}");
                assert!(
                    matches!(go_mode, 0o600 | 0o644),
                    "{ver}: go mode of {name}: {go_mode:o}"
                );
            }
        }
        assert_eq!(
            std::fs::metadata(go_dir.join("mynet"))
                .unwrap()
                .permissions(),
            std::fs::metadata(weft_dir.join("mynet"))
                .unwrap()
                .permissions()
        );
        // The sequence really left reservations behind to compare.
        assert_eq!(
            reservations(&weft_dir.join("mynet"))
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            [
                "10.1.2.2",
                "10.1.2.4",
                "10.2.2.77",
                "2001:db8:1::2",
                "2001:db8:1::4",
                "2001:db8:1::5"
            ],
            "{ver}"
        );
    }
}

/// ADDs alternating between the two binaries on one directory continue
/// one round robin and never hand out an address twice; each DELs and
/// CHECKs what the other ADDed.
#[test]
fn alternating_binaries_share_one_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conf(
        "1.0.0",
        "shared",
        tmp.path(),
        r#""ranges": [[{"subnet": "10.5.0.0/26"}], [{"subnet": "2001:db8:5::/120"}]]"#,
    );
    let bins = [go(), WEFT];
    let mut seen = BTreeSet::new();
    for i in 0..30 {
        let out = run(bins[i % 2], "ADD", &format!("pod{i}"), "eth0", &c);
        let addrs = out.addresses();
        assert_eq!(
            addrs,
            [
                format!("10.5.0.{}/26", i + 2),
                format!("2001:db8:5::{:x}/120", i + 2)
            ]
        );
        for a in addrs {
            assert!(seen.insert(a.clone()), "{a} handed out twice");
        }
    }
    let dir = tmp.path().join("shared");
    assert_eq!(reservations(&dir).len(), 60);
    for i in 0..30 {
        let other = bins[(i + 1) % 2];
        let cid = format!("pod{i}");
        if other == WEFT || go_versions().contains(&"0.4.0".to_string()) {
            let out = run(other, "CHECK", &cid, "eth0", &c);
            assert_eq!(out.code, 0, "CHECK {cid} by {other}: {out:?}");
        }
        let out = run(other, "DEL", &cid, "eth0", &c);
        assert_eq!(out.code, 0, "DEL {cid} by {other}: {out:?}");
        assert!(!dir.join(format!("10.5.0.{}", i + 2)).exists());
    }
    assert!(reservations(&dir).is_empty());
    // The cursor survives: the next ADD (by either) continues after .31.
    let out = run(go(), "ADD", "after", "eth0", &c);
    assert_eq!(out.addresses()[0], "10.5.0.32/26");
    let out = run(WEFT, "ADD", "after2", "eth0", &c);
    assert_eq!(out.addresses()[0], "10.5.0.33/26");
}

/// 20 ADDs started at once, half Go and half ours, get 20 distinct
/// addresses, each recorded for its own container.
#[test]
fn parallel_adds_from_both_binaries_are_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conf(
        "1.0.0",
        "par",
        tmp.path(),
        r#""ranges": [[{"subnet": "10.6.0.0/27"}]]"#,
    );
    let children: Vec<_> = (0..20)
        .map(|i| {
            let bin = if i % 2 == 0 { go() } else { WEFT };
            (
                format!("par{i}"),
                spawn(bin, "ADD", &format!("par{i}"), "eth0", &c, ""),
            )
        })
        .collect();
    let mut addrs = BTreeSet::new();
    let mut by_cid = Vec::new();
    for (cid, child) in children {
        let out = finish(child);
        let addr = out.addresses()[0].clone();
        assert!(addrs.insert(addr.clone()), "{addr} handed out twice");
        by_cid.push((cid, addr));
    }
    let files = reservations(&tmp.path().join("par"));
    assert_eq!(files.len(), 20);
    for (cid, addr) in by_cid {
        let ip = addr.split('/').next().unwrap();
        assert_eq!(files[ip], format!("{cid}\r\neth0"));
    }
}

/// While somebody holds the flock on `lock`, neither binary touches the
/// directory; both finish once it is released.
#[test]
fn both_binaries_wait_for_the_same_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conf("1.0.0", "locked", tmp.path(), r#""subnet": "10.7.0.0/24""#);
    // Create the directory and lock file the normal way.
    assert_eq!(run(WEFT, "ADD", "first", "eth0", &c).code, 0);
    let lock = File::open(tmp.path().join("locked/lock")).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);

    let mut go_child = spawn(go(), "ADD", "go-waiter", "eth0", &c, "");
    let mut weft_child = spawn(WEFT, "ADD", "weft-waiter", "eth0", &c, "");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        go_child.try_wait().unwrap().is_none(),
        "Go did not wait for the lock"
    );
    assert!(
        weft_child.try_wait().unwrap().is_none(),
        "weft did not wait for the lock"
    );
    assert_eq!(reservations(&tmp.path().join("locked")).len(), 1);

    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) }, 0);
    let g = finish(go_child);
    let w = finish(weft_child);
    let mut got = [g.addresses()[0].clone(), w.addresses()[0].clone()];
    got.sort();
    assert_eq!(got, ["10.7.0.3/24", "10.7.0.4/24"]);
}

/// Files written by Go with only the container ID (pre-ifname format) are
/// released and found by our DEL and CHECK, and vice versa for Go.
#[test]
fn legacy_files_are_understood_by_both() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conf("1.0.0", "legacy", tmp.path(), r#""subnet": "10.8.0.0/24""#);
    assert_eq!(run(go(), "ADD", "old", "eth0", &c).code, 0);
    let file = tmp.path().join("legacy/10.8.0.2");
    std::fs::write(&file, "old").unwrap();
    assert_eq!(run(WEFT, "CHECK", "old", "eth0", &c).code, 0);
    let dup = run(WEFT, "ADD", "old", "eth0", &c);
    assert_eq!(
        dup.err_msg(),
        "failed to allocate for range 0: 10.8.0.2 has been allocated to old, duplicate allocation is not allowed"
    );
    assert_eq!(run(WEFT, "DEL", "old", "eth0", &c).code, 0);
    assert!(!file.exists());
}
