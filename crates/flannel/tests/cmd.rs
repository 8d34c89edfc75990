//! The verbs end to end through the CNI skeleton, with a fake delegate (a shell script in a
//! temporary CNI_PATH that records what it gets). No netns needed; the real chain is tested by
//! tests/flannel/*.sh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;
use weft_cni_core::{run, Outcome};
use weft_flannel::Flannel;

const FAKE: &str = r#"#!/bin/sh
d=$(dirname "$0")
cat > "$d/stdin.$CNI_COMMAND"
echo "$CNI_CONTAINERID" > "$d/cid.$CNI_COMMAND"
if [ -e "$d/fail.$CNI_COMMAND" ]; then
    printf '{"code":%s,"msg":"fake %s failed"}' "$(cat "$d/fail.$CNI_COMMAND")" "$CNI_COMMAND"
    exit 1
fi
if [ "$CNI_COMMAND" = ADD ]; then
    printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":0,"address":"10.1.17.2/24","gateway":"10.1.17.1"}],"routes":[{"dst":"10.1.0.0/16"}],"dns":{}}'
fi
"#;

const ENV: &str = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";

struct Node {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Node {
    fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        fs::create_dir(root.join("bin")).unwrap();
        let fake = root.join("bin/fake");
        fs::write(&fake, FAKE).unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("subnet.env"), ENV).unwrap();
        Node { _tmp: tmp, root }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn conf(&self, version: &str, extra: &str) -> String {
        format!(
            r#"{{"cniVersion":"{version}","name":"cbr0","type":"flannel","subnetFile":"{}","dataDir":"{}","delegate":{{"type":"fake"}}{extra}}}"#,
            self.p("subnet.env").display(),
            self.p("data").display()
        )
    }
    fn call(&self, cmd: &str, conf: &str, cid: &str) -> Outcome {
        let bin = self.p("bin").display().to_string();
        let cid = cid.to_string();
        let cmd = cmd.to_string();
        let env = move |k: &str| -> Option<String> {
            match k {
                "CNI_COMMAND" => Some(cmd.clone()),
                "CNI_CONTAINERID" if !cid.is_empty() => Some(cid.clone()),
                "CNI_NETNS" => Some("/nonexistent/netns".into()),
                "CNI_IFNAME" => Some("eth0".into()),
                "CNI_PATH" => Some(bin.clone()),
                _ => None,
            }
        };
        run(&Flannel, &env, &mut conf.as_bytes(), "about")
    }
    fn saved(&self, cid: &str) -> Option<String> {
        fs::read_to_string(self.p("data").join(cid)).ok()
    }
    fn got(&self, cmd: &str) -> Option<String> {
        fs::read_to_string(self.p(&format!("bin/stdin.{cmd}"))).ok()
    }
    fn fail(&self, cmd: &str, code: u32) {
        fs::write(self.p(&format!("bin/fail.{cmd}")), code.to_string()).unwrap();
    }
    fn heal(&self, cmd: &str) {
        fs::remove_file(self.p(&format!("bin/fail.{cmd}"))).unwrap();
    }
}

fn error(out: &Outcome) -> (u64, String) {
    assert_eq!(out.exit_code, 1, "expected failure: {}", out.stdout_str());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["code"].as_u64().unwrap(),
        v["msg"].as_str().unwrap().to_string(),
    )
}

/// What flannel saves and sends for `Node::conf(version, "")` (a non-bridge delegate: no
/// isGateway).
fn golden(_node: &Node, version: &str) -> String {
    format!(
        r#"{{"cniVersion":"{version}","ipMasq":false,"ipam":{{"ranges":[[{{"subnet":"10.1.17.0/24"}}]],"routes":[{{"dst":"10.1.0.0/16"}}],"type":"host-local"}},"mtu":1472,"name":"cbr0","type":"fake"}}"#
    )
}

#[test]
fn add_saves_delegates_and_prints_in_conf_version() {
    let n = Node::new();
    let out = n.call("ADD", &n.conf("0.3.1", ""), "c1");
    assert_eq!(out.exit_code, 0, "{}", out.stdout_str());
    // the 1.0.0 result comes back as 0.3.1 (ips[].version), Go-indented
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["cniVersion"], "0.3.1");
    assert_eq!(r["ips"][0]["version"], "4");
    assert!(out.stdout_str().starts_with("{\n    \"cniVersion\""));
    // the delegate got exactly the saved bytes
    assert_eq!(n.saved("c1").unwrap(), golden(&n, "0.3.1"));
    assert_eq!(n.got("ADD").unwrap(), golden(&n, "0.3.1"));
    let mode = fs::metadata(n.p("data/c1")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn runtime_config_reaches_the_delegate() {
    let n = Node::new();
    let conf = n.conf(
        "1.0.0",
        r#","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":8080}]}"#,
    );
    assert_eq!(n.call("ADD", &conf, "c1").exit_code, 0);
    assert!(n
        .got("ADD")
        .unwrap()
        .contains(r#""runtimeConfig":{"portMappings":[{"containerPort":8080,"hostPort":80}]}"#));
}

#[test]
fn failed_add_is_undone() {
    let n = Node::new();
    n.fail("ADD", 11);
    let out = n.call("ADD", &n.conf("1.0.0", ""), "c1");
    // the delegate's code is kept, the message says where it failed
    assert_eq!(
        error(&out),
        (11, "failed to delegate add: fake ADD failed".into())
    );
    assert!(
        n.saved("c1").is_none(),
        "saved config left after a failed ADD"
    );
    // the delegate was asked to clean up with the same config
    assert_eq!(n.got("DEL").unwrap(), golden(&n, "1.0.0"));
}

#[test]
fn del_replays_saved_bytes_and_keeps_them_on_failure() {
    let n = Node::new();
    assert_eq!(n.call("ADD", &n.conf("1.0.0", ""), "c1").exit_code, 0);
    fs::remove_file(n.p("subnet.env")).unwrap();
    // another delegate in the current conf does not matter
    let conf = n
        .conf("1.0.0", "")
        .replace(r#""type":"fake""#, r#""type":"other""#);
    n.fail("DEL", 999);
    let out = n.call("DEL", &conf, "c1");
    assert_eq!(
        error(&out),
        (999, "failed to delegate del: fake DEL failed".into())
    );
    assert_eq!(
        n.saved("c1").unwrap(),
        golden(&n, "1.0.0"),
        "kept for the retry"
    );
    n.heal("DEL");
    assert_eq!(n.call("DEL", &conf, "c1").exit_code, 0);
    assert_eq!(n.got("DEL").unwrap(), golden(&n, "1.0.0"));
    assert!(n.saved("c1").is_none());
    // again: nothing saved, nothing to do
    fs::remove_file(n.p("bin/stdin.DEL")).unwrap();
    assert_eq!(n.call("DEL", &conf, "c1").exit_code, 0);
    assert!(n.got("DEL").is_none());
}

#[test]
fn del_skips_unparsable_saved_config() {
    let n = Node::new();
    fs::create_dir(n.p("data")).unwrap();
    fs::write(n.p("data/c1"), "{not json").unwrap();
    let out = n.call("DEL", &n.conf("1.0.0", ""), "c1");
    assert_eq!(out.exit_code, 0, "{}", out.stdout_str());
    assert!(n.got("DEL").is_none());
    assert_eq!(n.saved("c1").unwrap(), "{not json");
}

#[test]
fn missing_subnet_env_is_try_again_later_with_go_text() {
    let n = Node::new();
    fs::remove_file(n.p("subnet.env")).unwrap();
    let (code, msg) = error(&n.call(
        "ADD",
        &n.conf("1.0.0", r#","subnetFileWaitSeconds":0"#),
        "c1",
    ));
    let p = n.p("subnet.env").display().to_string();
    assert_eq!(code, 11);
    assert!(
        msg.starts_with(&format!("failed to load flannel 'subnet.env' file: open {p}: no such file or directory. Check the flannel pod log for this node. flanneld has not written {p} yet")),
        "{msg}"
    );
    assert!(n.saved("c1").is_none() && n.got("ADD").is_none());
}

/// The boot race (flannel#2437): a pod's ADD comes before flanneld wrote subnet.env. ADD
/// waits for the file (bounded), CHECK and DEL do not wait at all.
#[test]
fn add_waits_for_a_late_subnet_env() {
    let n = Node::new();
    fs::remove_file(n.p("subnet.env")).unwrap();
    let env = n.p("subnet.env");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        // flanneld writes a temporary file and renames it.
        let tmp = env.with_extension("tmp");
        fs::write(&tmp, ENV).unwrap();
        fs::rename(&tmp, &env).unwrap();
    });
    let t = std::time::Instant::now();
    let out = n.call("ADD", &n.conf("1.0.0", ""), "c1");
    writer.join().unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stdout_str());
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(n.saved("c1").unwrap(), golden(&n, "1.0.0"));
}

#[test]
fn add_wait_is_bounded_then_code_11() {
    let n = Node::new();
    fs::remove_file(n.p("subnet.env")).unwrap();
    let t = std::time::Instant::now();
    let (code, msg) = error(&n.call(
        "ADD",
        &n.conf("1.0.0", r#","subnetFileWaitSeconds":1.5"#),
        "c1",
    ));
    let took = t.elapsed();
    assert_eq!(code, 11, "{msg}");
    assert!(
        msg.ends_with("Waited 1.5s for it (subnetFileWaitSeconds)."),
        "{msg}"
    );
    assert!(
        took >= std::time::Duration::from_millis(1400) && took < std::time::Duration::from_secs(3),
        "{took:?}"
    );
    assert!(n.saved("c1").is_none() && n.got("ADD").is_none());
    // A bad value is a config error, found before any wait.
    let (code, msg) = error(&n.call(
        "ADD",
        &n.conf("1.0.0", r#","subnetFileWaitSeconds":"5s""#),
        "c1",
    ));
    assert_eq!(code, 7, "{msg}");
}

#[test]
fn check_and_del_do_not_wait_for_subnet_env() {
    let n = Node::new();
    let conf = n.conf("1.0.0", r#","subnetFileWaitSeconds":3"#);
    assert_eq!(n.call("ADD", &conf, "c1").exit_code, 0);
    fs::remove_file(n.p("subnet.env")).unwrap();
    let t = std::time::Instant::now();
    let check = n.call("CHECK", &conf, "c1");
    assert_eq!(check.exit_code, 0, "{}", check.stdout_str());
    let del = n.call("DEL", &conf, "c1");
    assert_eq!(del.exit_code, 0, "{}", del.stdout_str());
    // DEL of a container never added, with a bad wait value: no wait, no error.
    let del = n.call(
        "DEL",
        &n.conf("1.0.0", r#","subnetFileWaitSeconds":-1"#),
        "c2",
    );
    assert_eq!(del.exit_code, 0, "{}", del.stdout_str());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn subnet_env_errors() {
    let n = Node::new();
    let p = n.p("subnet.env").display().to_string();
    fs::write(n.p("subnet.env"), "foo=bar").unwrap();
    assert_eq!(
        error(&n.call("ADD", &n.conf("1.0.0", ""), "c1")),
        (7, format!("failed to load flannel 'subnet.env' file: {p} is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ. Check the flannel pod log for this node."))
    );
    fs::write(n.p("subnet.env"), ENV.replace("1472", "x")).unwrap();
    let (code, msg) = error(&n.call("ADD", &n.conf("1.0.0", ""), "c1"));
    assert_eq!(code, 7);
    assert!(msg.contains("invalid FLANNEL_MTU value \"x\""), "{msg}");
    fs::remove_file(n.p("subnet.env")).unwrap();
    fs::create_dir(n.p("subnet.env")).unwrap();
    let (code, msg) = error(&n.call("ADD", &n.conf("1.0.0", ""), "c1"));
    assert_eq!(code, 5);
    assert!(msg.contains(&format!("read {p}: is a directory")), "{msg}");
}

#[test]
fn check_sends_saved_config_with_prev_result() {
    let n = Node::new();
    assert_eq!(n.call("ADD", &n.conf("1.0.0", ""), "c1").exit_code, 0);
    let prev = r#","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.1.17.2/24"}]}"#;
    let out = n.call("CHECK", &n.conf("1.0.0", prev), "c1");
    assert_eq!(out.exit_code, 0, "{}", out.stdout_str());
    let sent: Value = serde_json::from_str(&n.got("CHECK").unwrap()).unwrap();
    assert_eq!(sent["prevResult"]["ips"][0]["address"], "10.1.17.2/24");
    assert_eq!(sent["type"], "fake");
    // the subnet moved: CHECK fails before asking the delegate
    fs::write(
        n.p("subnet.env"),
        ENV.replace("10.1.17.1/24", "10.1.18.1/24"),
    )
    .unwrap();
    let (code, msg) = error(&n.call("CHECK", &n.conf("1.0.0", prev), "c1"));
    assert_eq!(code, 999);
    assert!(msg.contains("attached in 10.1.17.0/24"), "{msg}");
    // unknown container
    let (code, _) = error(&n.call("CHECK", &n.conf("1.0.0", prev), "c2"));
    assert_eq!(code, 3);
}

/// CHECK only reads (as Go's): the temporary file of an interrupted ADD (pid 0: its writer
/// is gone) stays until DEL, which removes it.
#[test]
fn check_leaves_files_alone_and_del_removes_stale_temps() {
    let n = Node::new();
    assert_eq!(n.call("ADD", &n.conf("1.0.0", ""), "c1").exit_code, 0);
    let stale = n.p("data").join(".c1.0.tmp");
    fs::write(&stale, b"{").unwrap();
    let prev = r#","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.1.17.2/24"}]}"#;
    let out = n.call("CHECK", &n.conf("1.0.0", prev), "c1");
    assert_eq!(out.exit_code, 0, "{}", out.stdout_str());
    assert!(stale.exists(), "CHECK removed a file");
    assert!(!out.stderr_str().contains("DEL"), "{}", out.stderr_str());
    assert_eq!(n.call("DEL", &n.conf("1.0.0", ""), "c1").exit_code, 0);
    assert!(!stale.exists(), "DEL left the stale temporary file");
}

#[test]
fn gc_removes_stale_files_of_this_network_and_forwards() {
    let n = Node::new();
    for c in ["c1", "c2"] {
        assert_eq!(n.call("ADD", &n.conf("1.1.0", ""), c).exit_code, 0);
    }
    fs::write(n.p("data/c3"), r#"{"name":"other","type":"fake"}"#).unwrap();
    let valid = r#","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]"#;
    let out = n.call("GC", &n.conf("1.1.0", valid), "");
    assert_eq!(out.exit_code, 0, "{}", out.stdout_str());
    assert!(n.saved("c1").is_some() && n.saved("c3").is_some());
    assert!(n.saved("c2").is_none());
    let sent: Value = serde_json::from_str(&n.got("GC").unwrap()).unwrap();
    assert_eq!(sent["cni.dev/valid-attachments"][0]["containerID"], "c1");
    assert_eq!(sent["cniVersion"], "1.1.0");
    assert_eq!(sent["name"], "cbr0");
    // the delegate's GC error is reported, after the cleanup
    n.fail("GC", 50);
    let keep_none = r#","cni.dev/valid-attachments":[]"#;
    let (code, msg) = error(&n.call("GC", &n.conf("1.1.0", keep_none), ""));
    assert_eq!(code, 50);
    assert!(msg.starts_with("failed to delegate GC to fake"), "{msg}");
    assert!(n.saved("c1").is_none());
}

#[test]
fn status() {
    let n = Node::new();
    assert_eq!(n.call("STATUS", &n.conf("1.1.0", ""), "").exit_code, 0);
    assert!(n
        .got("STATUS")
        .unwrap()
        .contains(r#""ranges":[[{"subnet":"10.1.17.0/24"}]]"#));
    fs::remove_file(n.p("subnet.env")).unwrap();
    let (code, msg) = error(&n.call("STATUS", &n.conf("1.1.0", ""), ""));
    assert_eq!(code, 50);
    assert!(msg.starts_with("flanneld has not written "), "{msg}");
}

#[test]
fn version_gates_like_go_skel() {
    let n = Node::new();
    let (code, _) = error(&n.call("CHECK", &n.conf("0.3.1", ""), "c1"));
    assert_eq!(code, 1);
    let (code, _) = error(&n.call("GC", &n.conf("1.0.0", ""), ""));
    assert_eq!(code, 1);
}
