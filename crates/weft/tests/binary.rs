//! The host-local binary on its own: error codes, GC, STATUS, and resource
//! faults (full tmpfs, inode exhaustion, read-only data directory) staged
//! in a private mount namespace so nothing leaks onto the host.

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn error_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, u64, &str)] = &[
        ("{", 6, ""),
        (
            r#"{"cniVersion": "1.0.0", "name": "n", "ipam": {"ranges": "x"}}"#,
            6,
            "ipam.ranges",
        ),
        (
            r#"{"cniVersion": "1.0.0", "name": "n"}"#,
            7,
            "IPAM config missing 'ipam' key",
        ),
        (
            r#"{"cniVersion": "1.0.0", "name": "n", "ipam": {}}"#,
            7,
            "no IP ranges specified",
        ),
        (
            r#"{"cniVersion": "1.0.0", "name": "n", "ipam": {"subnet": "10.0.0.0/31"}}"#,
            7,
            "invalid range set 0: Network 10.0.0.0/31 too small to allocate from",
        ),
        (
            r#"{"cniVersion": "1.0.0", "name": "n", "ipam": {"subnet": "10.0.0.1/24"}}"#,
            7,
            "Network has host bits set",
        ),
        (
            r#"{"cniVersion": "1.0.0", "name": "n", "ipam": {"subnet": "10.0.0.0/24", "gateway": "bogus"}}"#,
            7,
            "ipam.gateway: invalid IP address: bogus",
        ),
        (
            r#"{"cniVersion": "1.0.0", "name": "../x", "ipam": {"subnet": "10.0.0.0/24"}}"#,
            7,
            "",
        ),
    ];
    for (stdin, code, text) in cases {
        for verb in ["ADD", "DEL"] {
            let out = run(WEFT, verb, "c1", "eth0", stdin);
            assert_eq!(out.err_code(), *code, "{verb} {stdin}: {out:?}");
            assert!(out.err_msg().contains(text), "{verb} {stdin}: {out:?}");
        }
    }
    // Bad CNI_ARGS: unknown key without IgnoreUnknown, or a list in IP.
    let c = conf("1.0.0", "n", tmp.path(), r#""subnet": "10.0.0.0/24""#);
    let out = run_args(WEFT, "ADD", "c1", "eth0", &c, "FOO=1");
    assert_eq!(out.err_code(), 4);
    let out = run_args(WEFT, "ADD", "c1", "eth0", &c, "IP=10.0.0.5,10.0.0.6");
    assert_eq!(out.err_code(), 4);
    // Nothing was allocated by the failures.
    assert!(!tmp.path().join("n").exists() || reservations(&tmp.path().join("n")).is_empty());
}

#[test]
fn results_follow_the_config_version() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conf(
        "0.2.0",
        "v020",
        tmp.path(),
        r#""subnet": "10.3.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]"#,
    );
    let out = run(WEFT, "ADD", "c1", "eth0", &c);
    assert_eq!(
        out.json(),
        serde_json::json!({
            "cniVersion": "0.2.0",
            "ip4": {"ip": "10.3.0.2/24", "gateway": "10.3.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
            "dns": {}
        })
    );
    let c = conf("1.1.0", "v110", tmp.path(), r#""subnet": "10.4.0.0/24""#);
    let out = run(WEFT, "ADD", "c1", "eth0", &c);
    assert_eq!(
        out.stdout,
        "{\n    \"cniVersion\": \"1.1.0\",\n    \"ips\": [\n        {\n            \"address\": \"10.4.0.2/24\",\n            \"gateway\": \"10.4.0.1\"\n        }\n    ],\n    \"dns\": {}\n}"
    );
}

#[test]
fn gc_and_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gcnet");
    let c = conf(
        "1.1.0",
        "gcnet",
        tmp.path(),
        r#""ranges": [[{"subnet": "10.9.0.0/29", "rangeStart": "10.9.0.2", "rangeEnd": "10.9.0.4"}]]"#,
    );
    let status = |c: &str| finish(spawn(WEFT, "STATUS", "", "", c, ""));
    assert_eq!(status(&c).code, 0);
    for cid in ["keep", "stale1", "stale2"] {
        assert_eq!(run(WEFT, "ADD", cid, "eth0", &c).code, 0);
    }
    let out = status(&c);
    assert_eq!(out.err_code(), 50);
    assert_eq!(
        out.err_msg(),
        "no IP addresses available in range set 0 (10.9.0.2-10.9.0.4)"
    );

    let with_valid = |list: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&c).unwrap();
        v["cni.dev/valid-attachments"] = serde_json::from_str(list).unwrap();
        v.to_string()
    };
    // Without the list GC refuses instead of releasing everything.
    let out = finish(spawn(WEFT, "GC", "", "", &c, ""));
    assert_eq!(out.err_code(), 7);
    assert_eq!(reservations(&dir).len(), 3);

    let gc = with_valid(r#"[{"containerID": "keep", "ifname": "eth0"}]"#);
    let out = finish(spawn(WEFT, "GC", "", "", &gc, ""));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "");
    let left = reservations(&dir);
    assert_eq!(left.values().collect::<Vec<_>>(), ["keep\r\neth0"]);
    assert_eq!(status(&c).code, 0);
    assert_eq!(run(WEFT, "CHECK", "keep", "eth0", &c).code, 0);

    // GC and STATUS need a 1.1.0 config.
    let old = conf("1.0.0", "gcnet", tmp.path(), r#""subnet": "10.9.0.0/29""#);
    assert_eq!(
        finish(spawn(WEFT, "STATUS", "", "", &old, "")).err_code(),
        1
    );

    // A data directory that cannot be created is code 50.
    std::fs::write(tmp.path().join("plainfile"), "").unwrap();
    let bad = conf(
        "1.1.0",
        "n",
        &tmp.path().join("plainfile/sub"),
        r#""subnet": "10.9.0.0/24""#,
    );
    let out = status(&bad);
    assert_eq!(out.err_code(), 50);
    assert!(out.err_msg().contains("not a directory"), "{out:?}");
}

/// Runs `script` with `sh` in a private mount namespace, so its mounts
/// vanish with it. `$BIN`, `$D` (an empty mount point) and `$OUT` (a
/// scratch directory outside the mounts) are set.
fn in_mount_ns(script: &str, scratch: &Path) -> std::process::Output {
    let mnt = scratch.join("mnt");
    let out_dir = scratch.join("out");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();
    ensure_weft();
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec", script])
        .env("BIN", WEFT)
        .env("D", &mnt)
        .env("OUT", &out_dir)
        .env("CNI_NETNS", NETNS)
        .env("CNI_PATH", "/usr/lib/cni")
        .env("CNI_IFNAME", "eth0")
        .output()
        .expect("run unshare");
    assert!(
        output.status.success(),
        "mount namespace script failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read_out(scratch: &Path, name: &str) -> String {
    std::fs::read_to_string(scratch.join("out").join(name)).unwrap_or_default()
}

fn reply(scratch: &Path, name: &str) -> serde_json::Value {
    let text = read_out(scratch, name);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text:?}"))
}

fn write_conf(scratch: &Path, version: &str) {
    let c = conf(
        version,
        "net",
        &scratch.join("mnt"),
        r#""subnet": "10.20.0.0/24""#,
    );
    std::fs::write(scratch.join("conf.json"), c).unwrap();
}

/// Each plugin run in the scripts below: `plugin VERB CID NAME` writes the
/// reply to $OUT/NAME and the exit code to $OUT/NAME.rc.
const PLUGIN_FN: &str = r#"
plugin() {
    rc=0
    CNI_COMMAND=$1 CNI_CONTAINERID=$2 "$BIN" < "$OUT/../conf.json" > "$OUT/$3" || rc=$?
    echo $rc > "$OUT/$3.rc"
}
"#;

#[test]
fn full_tmpfs_is_a_clean_io_error() {
    let scratch = tempfile::tempdir().unwrap();
    write_conf(scratch.path(), "1.1.0");
    // 4 pages: the first ADD takes 2 (reservation, cursor), the filler 1.
    // The second ADD then fits its reservation but not the new cursor; the
    // third fits nothing.
    let script = format!(
        r#"{PLUGIN_FN}
mount -t tmpfs -o size=16k tmpfs "$D"
plugin ADD first add1
head -c 4096 /dev/zero > "$D/filler"
plugin ADD second add2
ls -A "$D/net" > "$OUT/ls2"
cat /dev/zero >> "$D/filler" 2>/dev/null || true
plugin ADD third add3
plugin STATUS "" status
ls -A "$D/net" > "$OUT/ls3"
cat "$D/net/last_reserved_ip.0" > "$OUT/last"
rm "$D/filler"
plugin ADD fourth add4
"#
    );
    let s = scratch.path();
    in_mount_ns(&script, s);
    assert_eq!(
        read_out(s, "add1.rc").trim(),
        "0",
        "{}",
        read_out(s, "add1")
    );
    let left = ["10.20.0.2", "last_reserved_ip.0", "lock"];

    // The cursor could not be written: the reservation is rolled back.
    let err = reply(s, "add2");
    assert_eq!(err["code"], 5, "{err}");
    assert_eq!(
        err["msg"].as_str().unwrap(),
        format!(
            "failed to allocate for range 0: write {}/mnt/net/last_reserved_ip.0: no space left on device",
            s.display()
        )
    );
    assert_eq!(
        read_out(s, "ls2").split_whitespace().collect::<Vec<_>>(),
        left
    );

    // The reservation itself could not be written: removed again.
    let err = reply(s, "add3");
    assert_eq!(err["code"], 5, "{err}");
    assert_eq!(
        err["msg"].as_str().unwrap(),
        format!(
            "failed to allocate for range 0: write {}/mnt/net/10.20.0.3: no space left on device",
            s.display()
        )
    );
    assert_eq!(
        read_out(s, "ls3").split_whitespace().collect::<Vec<_>>(),
        left
    );
    assert_eq!(read_out(s, "last"), "10.20.0.2");
    assert_eq!(reply(s, "status")["code"], 50);
    // With space again, allocation carries on.
    assert_eq!(reply(s, "add4")["ips"][0]["address"], "10.20.0.3/24");
}

#[test]
fn inode_exhaustion_is_a_clean_io_error() {
    let scratch = tempfile::tempdir().unwrap();
    write_conf(scratch.path(), "1.0.0");
    // Inodes: the root, net/, lock, one reservation, last_reserved_ip.0;
    // the cursor's temporary file needs one more.
    let script = format!(
        r#"{PLUGIN_FN}
mount -t tmpfs -o size=1m,nr_inodes=6 tmpfs "$D"
plugin ADD first add1
plugin ADD second add2
ls -A "$D/net" > "$OUT/ls"
"#
    );
    let s = scratch.path();
    in_mount_ns(&script, s);
    assert_eq!(
        read_out(s, "add1.rc").trim(),
        "0",
        "{}",
        read_out(s, "add1")
    );
    let err = reply(s, "add2");
    assert_eq!(err["code"], 5, "{err}");
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("no space left on device"),
        "{err}"
    );
    assert_eq!(
        read_out(s, "ls").split_whitespace().collect::<Vec<_>>(),
        ["10.20.0.2", "last_reserved_ip.0", "lock"]
    );
}

#[test]
fn read_only_data_dir_is_a_clean_io_error() {
    let scratch = tempfile::tempdir().unwrap();
    write_conf(scratch.path(), "1.1.0");
    let script = format!(
        r#"{PLUGIN_FN}
mount -t tmpfs -o size=1m tmpfs "$D"
plugin ADD first add1
mount -o remount,ro "$D"
plugin ADD second add2
plugin CHECK first check
plugin DEL first del
plugin STATUS "" status
ls -A "$D/net" > "$OUT/ls"
"#
    );
    let s = scratch.path();
    in_mount_ns(&script, s);
    assert_eq!(
        read_out(s, "add1.rc").trim(),
        "0",
        "{}",
        read_out(s, "add1")
    );
    let err = reply(s, "add2");
    assert_eq!(err["code"], 5, "{err}");
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("read-only file system"),
        "{err}"
    );
    // Reading still works.
    assert_eq!(
        read_out(s, "check.rc").trim(),
        "0",
        "{}",
        read_out(s, "check")
    );
    // A DEL that cannot release says so (Go reports success and leaks).
    let err = reply(s, "del");
    assert_eq!(err["code"], 5, "{err}");
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("read-only file system"),
        "{err}"
    );
    let status = reply(s, "status");
    assert_eq!(status["code"], 50, "{status}");
    assert!(
        status["msg"]
            .as_str()
            .unwrap()
            .contains("read-only file system"),
        "{status}"
    );
    assert_eq!(
        read_out(s, "ls").split_whitespace().collect::<Vec<_>>(),
        ["10.20.0.2", "last_reserved_ip.0", "lock"]
    );
}
