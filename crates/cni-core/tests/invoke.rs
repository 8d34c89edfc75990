//! Delegate execution against real binaries: the Go host-local plugin from
//! /usr/lib/cni, and small shell-script plugins written to a temp dir.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use weft_cni_core::{exec_plugin, find_plugin, CmdArgs, CniError, CniResult, Command};

const GO_PLUGINS: &str = "/usr/lib/cni";

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn args(path: Vec<PathBuf>, netns: &str) -> CmdArgs {
    CmdArgs {
        command: Command::Add,
        container_id: "weft-cid-1".into(),
        netns: netns.into(),
        ifname: "eth0".into(),
        args: "IgnoreUnknown=1;K8S_POD_NAME=p".into(),
        path,
        stdin: Vec::new(),
        netns_override: false,
    }
}

#[test]
fn find_plugin_validates_the_name() {
    let path = vec![PathBuf::from(GO_PLUGINS)];
    for (name, msg) in [
        ("", "no plugin name provided"),
        ("a/b", "invalid plugin name: a/b"),
        ("../host-local", "invalid plugin name: ../host-local"),
        (".", "invalid plugin name: ."),
        ("..", "invalid plugin name: .."),
    ] {
        let e = find_plugin(name, &path).unwrap_err();
        assert_eq!(e.msg(), msg);
    }
    assert_eq!(
        find_plugin("host-local", &[]).unwrap_err().msg(),
        "no paths provided"
    );
}

#[test]
fn find_plugin_searches_in_order_and_skips_non_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    std::fs::create_dir(a.path().join("ipam")).unwrap(); // a directory is not a plugin
    let in_b = write_script(b.path(), "ipam", "exit 0");
    write_script(c.path(), "ipam", "exit 0");
    let path = vec![a.path().into(), b.path().into(), c.path().into()];
    assert_eq!(find_plugin("ipam", &path).unwrap(), in_b);

    let e = find_plugin("nope", &path).unwrap_err();
    assert_eq!(e.code(), 999);
    assert_eq!(
        e.msg(),
        format!(
            "failed to find plugin \"nope\" in path [{} {} {}]",
            a.path().display(),
            b.path().display(),
            c.path().display()
        )
    );
}

#[test]
fn go_host_local_add_and_del() {
    let ns = weft_test_support::TestNs::new("weft-cni-core-hl");
    let data = tempfile::tempdir().unwrap();
    let conf = json!({
        "cniVersion": "0.4.0",
        "name": "weftnet",
        "type": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.77.0.0/24", "dataDir": data.path()}
    })
    .to_string();
    let a = args(vec!["/nonexistent".into(), GO_PLUGINS.into()], &ns.path());

    let out = exec_plugin("host-local", Command::Add, conf.as_bytes(), &a)
        .unwrap()
        .unwrap();
    let result = CniResult::parse(&out).unwrap();
    assert_eq!(result.cni_version, "0.4.0");
    assert_eq!(result.ips.len(), 1);
    assert_eq!(result.ips[0].address.to_string(), "10.77.0.2/24");
    assert_eq!(result.ips[0].gateway, Some("10.77.0.1".parse().unwrap()));
    // host-local records the container ID we passed in CNI_CONTAINERID.
    let stored = std::fs::read_to_string(data.path().join("weftnet/10.77.0.2")).unwrap();
    assert_eq!(stored, "weft-cid-1\r\neth0");

    // Same container again: host-local refuses, and its code survives.
    let e = exec_plugin("host-local", Command::Add, conf.as_bytes(), &a).unwrap_err();
    match &e {
        CniError::Plugin { code, msg, .. } => {
            assert_eq!(*code, 999);
            assert!(msg.contains("duplicate allocation"), "{msg}");
        }
        other => panic!("unexpected {other:?}"),
    }

    assert_eq!(
        exec_plugin("host-local", Command::Del, conf.as_bytes(), &a).unwrap(),
        None
    );
    assert!(!data.path().join("weftnet/10.77.0.2").exists());
}

#[test]
fn delegate_error_codes_and_details_are_preserved() {
    let a = args(vec![GO_PLUGINS.into()], "/var/run/netns/x");
    let conf = r#"{"cniVersion":"0.5.0","name":"n","type":"x","ipam":{"type":"host-local"}}"#;
    let e = exec_plugin("host-local", Command::Add, conf.as_bytes(), &a).unwrap_err();
    assert_eq!(e.code(), 1);
    assert_eq!(e.msg(), "incompatible CNI versions");
    assert!(
        e.details()
            .starts_with("config is \"0.5.0\", plugin supports"),
        "{}",
        e.details()
    );
    // Relayed unchanged through our own error output.
    assert!(e.to_json().starts_with(
        "{\n    \"code\": 1,\n    \"msg\": \"incompatible CNI versions\",\n    \"details\": "
    ));
}

#[test]
fn delegate_sees_our_env_with_the_command_overridden() {
    let dir = tempfile::tempdir().unwrap();
    write_script(
        dir.path(),
        "echo-env",
        r#"cat >/dev/null
printf '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}],"dns":{"domain":"%s|%s|%s|%s|%s|%s|%s"}}' \
  "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "${HOME:+home}""#,
    );
    let mut a = args(
        vec![dir.path().into(), "/usr/lib/cni".into()],
        "/var/run/netns/x",
    );
    a.command = Command::Del; // our own verb does not leak into the delegate's
    let out = exec_plugin("echo-env", Command::Add, b"{}", &a)
        .unwrap()
        .unwrap();
    let want =
        format!(
        "ADD|weft-cid-1|/var/run/netns/x|eth0|IgnoreUnknown=1;K8S_POD_NAME=p|{}:/usr/lib/cni|{}",
        dir.path().display(),
        if std::env::var_os("HOME").is_some() { "home" } else { "" }
    );
    assert_eq!(out["dns"]["domain"], want.as_str());
}

#[test]
fn delegate_stdin_is_piped_and_missing_version_is_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    // Echo stdin's "name" back as the interface name; no cniVersion in the reply.
    write_script(
        dir.path(),
        "echo-stdin",
        r#"name=$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
printf '{"interfaces":[{"name":"%s"}],"ips":[{"address":"10.0.0.2/24","interface":0}]}' "$name""#,
    );
    let a = args(vec![dir.path().into()], "");
    let conf = br#"{"cniVersion":"0.3.1","name":"piped"}"#;
    let out = exec_plugin("echo-stdin", Command::Add, conf, &a)
        .unwrap()
        .unwrap();
    assert_eq!(out["cniVersion"], "0.3.1");
    assert_eq!(out["interfaces"][0]["name"], "piped");
    // Non-ADD verbs return nothing.
    assert_eq!(
        exec_plugin("echo-stdin", Command::Check, conf, &a).unwrap(),
        None
    );
}

#[test]
fn delegate_failures_without_json_name_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "garbage", "echo 'not json'; exit 3");
    write_script(dir.path(), "silent", "exit 2");
    write_script(
        dir.path(),
        "stderr-only",
        "echo 'something broke' >&2; exit 1",
    );
    write_script(
        dir.path(),
        "coded",
        r#"printf '{"code":107,"msg":"vlan busy","details":"vlan 5"}'; exit 1"#,
    );
    write_script(
        dir.path(),
        "bad-result",
        "echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"nope\"}]}'",
    );
    let a = args(vec![dir.path().into()], "");

    let e = exec_plugin("garbage", Command::Add, b"{}", &a).unwrap_err();
    assert_eq!(e.code(), 999);
    assert!(
        e.msg().starts_with(
            "netplugin garbage failed but error parsing its diagnostic message \"not json\\n\": "
        ),
        "{}",
        e.msg()
    );

    let e = exec_plugin("silent", Command::Del, b"{}", &a).unwrap_err();
    assert_eq!(
        e.msg(),
        "netplugin silent failed with no error message: exit status 2"
    );

    let e = exec_plugin("stderr-only", Command::Del, b"{}", &a).unwrap_err();
    assert_eq!(
        e.msg(),
        "netplugin stderr-only failed: \"something broke\\n\": exit status 1"
    );

    let e = exec_plugin("coded", Command::Add, b"{}", &a).unwrap_err();
    assert_eq!(
        e,
        CniError::Plugin {
            code: 107,
            msg: "vlan busy".into(),
            details: "vlan 5".into()
        }
    );

    let e = exec_plugin("bad-result", Command::Add, b"{}", &a).unwrap_err();
    assert_eq!(e.msg(), "invalid CIDR address: nope");
}

#[test]
fn delegate_version_reply() {
    let a = args(vec![GO_PLUGINS.into()], "");
    let v: Value = exec_plugin("host-local", Command::Version, b"", &a)
        .unwrap()
        .unwrap();
    assert!(v["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("0.4.0")));
}
