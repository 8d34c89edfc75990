//! The skeleton's dispatch, run in-process through `run`: env validation,
//! version gating, output layout. Expected error JSON is byte-compared with
//! what the Go reference plugins printed (tests/golden/err-*.json) wherever
//! the two libraries agree.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use serde_json::{json, Value};
use weft_cni_core::{
    format_panic, run, CmdArgs, CniError, Command, Outcome, Plugin, Result, MAX_CONFIG_BYTES,
};

#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<CmdArgs>>,
    fail_with: Option<CniError>,
}

impl Recorder {
    fn record(&self, args: &CmdArgs) -> Result<()> {
        self.calls.borrow_mut().push(args.clone());
        match &self.fail_with {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
    fn verbs(&self) -> Vec<Command> {
        self.calls.borrow().iter().map(|a| a.command).collect()
    }
}

impl Plugin for Recorder {
    fn add(&self, args: &CmdArgs) -> Result<Value> {
        self.record(args)?;
        Ok(json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.2/24"}], "dns": {}}))
    }
    fn del(&self, args: &CmdArgs) -> Result<()> {
        self.record(args)
    }
    fn check(&self, args: &CmdArgs) -> Result<()> {
        self.record(args)
    }
    fn gc(&self, args: &CmdArgs) -> Result<()> {
        self.record(args)
    }
    fn status(&self, args: &CmdArgs) -> Result<()> {
        self.record(args)
    }
}

/// A plugin that only implements the required verbs (GC/STATUS default).
struct Minimal;
impl Plugin for Minimal {
    fn add(&self, _: &CmdArgs) -> Result<Value> {
        Ok(json!({}))
    }
    fn del(&self, _: &CmdArgs) -> Result<()> {
        Ok(())
    }
    fn check(&self, _: &CmdArgs) -> Result<()> {
        Ok(())
    }
}

const ABOUT: &str = "CNI weft-test plugin v0.1.0";

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn full_env(cmd: &str) -> HashMap<String, String> {
    env_of(&[
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", "cid-1"),
        ("CNI_NETNS", "/var/run/netns/weft-cni-core-does-not-exist"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ])
}

fn conf(version: &str) -> String {
    format!(r#"{{"cniVersion":"{version}","name":"mynet","type":"weft"}}"#)
}

/// A GC request: the config plus the (here empty) list of attachments to keep.
fn gc_conf(version: &str) -> String {
    format!(
        r#"{{"cniVersion":"{version}","name":"mynet","type":"weft","cni.dev/valid-attachments":[]}}"#
    )
}

/// The config a verb needs: GC also carries `cni.dev/valid-attachments`.
fn verb_conf(verb: &str, version: &str) -> String {
    if verb == "GC" {
        gc_conf(version)
    } else {
        conf(version)
    }
}

fn go(plugin: &dyn Plugin, env: &HashMap<String, String>, stdin: &str) -> Outcome {
    let getenv = |k: &str| env.get(k).cloned();
    let mut input = stdin.as_bytes();
    run(plugin, &getenv, &mut input, ABOUT)
}

fn assert_error(out: &Outcome, code: u32, msg: &str) {
    assert_eq!(out.exit_code, 1, "{}", out.stdout_str());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], code, "{}", out.stdout_str());
    assert_eq!(v["msg"], msg, "{}", out.stdout_str());
}

#[test]
fn no_command_prints_about_and_exits_0() {
    let out = go(&Minimal, &HashMap::new(), "");
    assert_eq!(out.exit_code, 0);
    assert!(out.stdout.is_empty());
    assert_eq!(
        out.stderr_str(),
        "CNI weft-test plugin v0.1.0\nCNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n"
    );
    // Same shape as the Go plugin's (which lists versions up to 1.0.0).
    let go_about = golden("about.stderr");
    assert!(go_about.starts_with(
        "CNI host-local plugin version unknown\nCNI protocol versions supported: 0.1.0, "
    ));
    assert_eq!(golden("about.rc").trim(), "0");
}

#[test]
fn about_line_names_weft_version_and_commit() {
    assert_eq!(
        weft_cni_core::about_line("bridge"),
        format!(
            "CNI bridge plugin v{} (weft, commit {})",
            env!("CARGO_PKG_VERSION"),
            weft_build_info::COMMIT
        )
    );
}

#[test]
fn only_a_first_argument_of_exactly_version_asks_for_it() {
    let argv = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
    assert!(weft_cni_core::version_requested(&argv(&[
        "bridge",
        "--version"
    ])));
    assert!(!weft_cni_core::version_requested(&argv(&["bridge"])));
    assert!(!weft_cni_core::version_requested(&argv(&["bridge", "-v"])));
    assert!(!weft_cni_core::version_requested(&argv(&[
        "bridge",
        "x",
        "--version"
    ])));
    // Not UTF-8: no panic, not a version request.
    use std::os::unix::ffi::OsStringExt;
    let odd = vec![
        std::ffi::OsString::from("bridge"),
        std::ffi::OsString::from_vec(vec![0xff, 0xfe]),
    ];
    assert!(!weft_cni_core::version_requested(&odd));
}

#[test]
fn no_command_without_about_is_an_error() {
    let getenv = |_: &str| None;
    let out = run(&Minimal, &getenv, &mut &b""[..], "");
    assert_error(&out, 4, "required env variables [CNI_COMMAND] missing");
    assert!(out.stderr.is_empty());
}

#[test]
fn missing_env_lists_every_variable_like_go() {
    let out = go(&Minimal, &env_of(&[("CNI_COMMAND", "ADD")]), &conf("1.0.0"));
    assert_eq!(out.stdout_str(), golden("err-missing-env.json"));
    assert_eq!(out.exit_code, 1);

    let out = go(
        &Minimal,
        &env_of(&[("CNI_COMMAND", "DEL"), ("CNI_PATH", "/x")]),
        &conf("1.0.0"),
    );
    assert_error(
        &out,
        4,
        "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing",
    );

    let out = go(&Minimal, &env_of(&[("CNI_COMMAND", "GC")]), &conf("1.1.0"));
    assert_error(&out, 4, "required env variables [CNI_PATH] missing");

    // Empty counts as missing, as with Go's os.Getenv.
    let mut env = full_env("ADD");
    env.insert("CNI_NETNS".into(), String::new());
    let out = go(&Minimal, &env, &conf("1.0.0"));
    assert_error(&out, 4, "required env variables [CNI_NETNS] missing");
}

#[test]
fn del_gc_status_need_less_env() {
    let p = Recorder::default();
    let mut env = full_env("DEL");
    env.remove("CNI_NETNS");
    assert_eq!(go(&p, &env, &conf("1.0.0")).exit_code, 0);
    let env = env_of(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")]);
    assert_eq!(go(&p, &env, &gc_conf("1.1.0")).exit_code, 0);
    let env = env_of(&[("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/x")]);
    assert_eq!(go(&p, &env, &conf("1.1.0")).exit_code, 0);
    assert_eq!(p.verbs(), vec![Command::Del, Command::Gc, Command::Status]);
    let del = &p.calls.borrow()[0];
    assert_eq!(del.netns, "");
}

#[test]
fn container_id_and_ifname_errors_match_go() {
    let mut env = full_env("ADD");
    env.insert("CNI_CONTAINERID".into(), "bad/cid".into());
    let out = go(&Minimal, &env, &conf("1.0.0"));
    assert_eq!(out.stdout_str(), golden("err-bad-cid.json"));

    let mut env = full_env("ADD");
    env.insert("CNI_IFNAME".into(), "eth0123456789abc".into());
    let out = go(&Minimal, &env, &conf("1.0.0"));
    assert_eq!(out.stdout_str(), golden("err-long-ifname.json"));

    for (ifname, msg) in [
        (".", "interface name is . or .."),
        ("..", "interface name is . or .."),
        (
            "a/b",
            "interface name contains / or : or whitespace characters",
        ),
        (
            "a:b",
            "interface name contains / or : or whitespace characters",
        ),
        (
            "a b",
            "interface name contains / or : or whitespace characters",
        ),
        (
            "a\tb",
            "interface name contains / or : or whitespace characters",
        ),
    ] {
        let mut env = full_env("ADD");
        env.insert("CNI_IFNAME".into(), ifname.into());
        assert_error(&go(&Minimal, &env, &conf("1.0.0")), 4, msg);
    }
    let mut env = full_env("ADD");
    env.insert("CNI_IFNAME".into(), "eth0123456789ab".into()); // 15: fine
    assert_eq!(go(&Minimal, &env, &conf("1.0.0")).exit_code, 0);

    for cid in ["-abc", "_abc", ".abc", "a b", "abc$"] {
        let mut env = full_env("DEL");
        env.insert("CNI_CONTAINERID".into(), cid.into());
        let out = go(&Minimal, &env, &conf("1.0.0"));
        assert_error(&out, 4, "invalid characters in containerID");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["details"], cid);
    }
    let mut env = full_env("ADD");
    env.insert("CNI_CONTAINERID".into(), "Abc-1_2.3".into());
    assert_eq!(go(&Minimal, &env, &conf("1.0.0")).exit_code, 0);
}

#[test]
fn config_errors_match_go() {
    let env = full_env("ADD");
    let out = go(
        &Minimal,
        &env,
        r#"{"cniVersion":"1.0.0","type":"host-local"}"#,
    );
    assert_eq!(out.stdout_str(), golden("err-missing-name.json"));
    let out = go(
        &Minimal,
        &env,
        r#"{"cniVersion":"1.0.0","name":"../x","type":"host-local"}"#,
    );
    assert_eq!(out.stdout_str(), golden("err-bad-name.json"));
    let out = go(&Minimal, &env, r#"{"cniVersion":"1.0.0","name":"#);
    assert_eq!(out.stdout_str(), golden("err-bad-json.json"));
    assert_error(
        &go(&Minimal, &env, ""),
        6,
        "error unmarshall network config: unexpected end of JSON input",
    );
    assert_error(&go(&Minimal, &env, r#"{"name":7}"#), 6,
        "error unmarshall network config: json: cannot unmarshal number into Go struct field .name of type string");
    assert_error(&go(&Minimal, &env, "null"), 7, "missing network name");
}

#[test]
fn unknown_command_is_code_4_after_config_validation() {
    let out = go(&Minimal, &full_env("BOGUS"), &conf("1.0.0"));
    assert_eq!(out.stdout_str(), golden("err-unknown-command.json"));
    // Go validates the config before looking at the verb.
    assert_error(
        &go(&Minimal, &full_env("BOGUS"), "{"),
        6,
        "error unmarshall network config: unexpected end of JSON input",
    );
}

#[test]
fn version_ignores_stdin_and_env() {
    let want = "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.1.0\",\"0.2.0\",\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n";
    let out = go(&Minimal, &env_of(&[("CNI_COMMAND", "VERSION")]), "garbage");
    assert_eq!((out.exit_code, out.stdout_str()), (0, want.to_string()));
    // Go's reply has the same shape (its list stops at 1.0.0).
    assert!(golden("version.out")
        .starts_with("{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.1.0\""));
    assert!(golden("version.out").ends_with("]}\n"));
}

#[test]
fn unsupported_version_is_code_1_with_go_details() {
    let out = go(&Minimal, &full_env("ADD"), &conf("0.5.0"));
    assert_eq!(
        out.stdout_str(),
        "{\n    \"code\": 1,\n    \"msg\": \"incompatible CNI versions\",\n    \"details\": \"config is \\\"0.5.0\\\", plugin supports [\\\"0.1.0\\\" \\\"0.2.0\\\" \\\"0.3.0\\\" \\\"0.3.1\\\" \\\"0.4.0\\\" \\\"1.0.0\\\" \\\"1.1.0\\\"]\"\n}"
    );
    // Identical to Go's apart from the version list.
    let go_out =
        golden("err-incompatible.json").replace(r#" \"1.0.0\"]"#, r#" \"1.0.0\" \"1.1.0\"]"#);
    assert_eq!(out.stdout_str(), go_out);
}

#[test]
fn missing_cni_version_means_010() {
    let p = Recorder::default();
    let out = go(&p, &full_env("ADD"), r#"{"name":"mynet"}"#);
    assert_eq!(out.exit_code, 0);
    // CHECK needs >= 0.4.0, so a versionless config cannot CHECK.
    let out = go(&p, &full_env("CHECK"), r#"{"name":"mynet"}"#);
    assert_error(&out, 1, "config version does not allow CHECK");
}

#[test]
fn verb_version_gates() {
    let p = Recorder::default();
    let out = go(&p, &full_env("CHECK"), &conf("0.3.1"));
    assert_eq!(out.stdout_str(), golden("err-check-version.json"));
    assert_eq!(go(&p, &full_env("CHECK"), &conf("0.4.0")).exit_code, 0);

    for verb in ["GC", "STATUS"] {
        let out = go(&p, &full_env(verb), &verb_conf(verb, "1.0.0"));
        assert_error(&out, 1, &format!("config version does not allow {verb}"));
        assert_eq!(
            go(&p, &full_env(verb), &verb_conf(verb, "1.1.0")).exit_code,
            0
        );
        // Newer than anything we support.
        let out = go(&p, &full_env(verb), &verb_conf(verb, "2.0.0"));
        assert_error(&out, 1, &format!("plugin version does not allow {verb}"));
    }
    // Passes the >= gate but is not a version we list.
    let out = go(&p, &full_env("CHECK"), &conf("0.4.5"));
    assert_error(&out, 1, "incompatible CNI versions");
    // Unparseable versions are decode errors.
    let out = go(&p, &full_env("CHECK"), &conf("x.y"));
    assert_error(
        &out,
        6,
        r#"failed to convert major version part "x": strconv.Atoi: parsing "x": invalid syntax"#,
    );
    let out = go(&p, &full_env("ADD"), r#"{"name":"n","cniVersion":4}"#);
    assert_error(&out, 6, "decoding version from network config: json: cannot unmarshal number into Go struct field .cniVersion of type string");

    assert_eq!(
        p.verbs(),
        vec![Command::Check, Command::Gc, Command::Status]
    );
}

#[test]
fn unimplemented_gc_and_status_succeed() {
    let env = env_of(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")]);
    let out = go(&Minimal, &env, &gc_conf("1.1.0"));
    assert_eq!((out.exit_code, out.stdout.len()), (0, 0));
    let env = env_of(&[("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/x")]);
    assert_eq!(go(&Minimal, &env, &conf("1.1.0")).exit_code, 0);
}

/// GC without `cni.dev/valid-attachments` is refused by the skeleton (code 7) before the
/// plugin's gc runs: a plugin that read the absence as "nothing is valid" would remove
/// the state of every live pod.
#[test]
fn gc_without_valid_attachments_is_refused_before_the_plugin_runs() {
    let p = Recorder::default();
    let env = env_of(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")]);
    let out = go(&p, &env, &conf("1.1.0"));
    assert_error(&out, 7, "GC needs cni.dev/valid-attachments");
    let out = go(
        &p,
        &env,
        r#"{"cniVersion":"1.1.0","name":"mynet","cni.dev/valid-attachments":"x"}"#,
    );
    assert_eq!(out.exit_code, 1);
    assert!(p.verbs().is_empty(), "the plugin ran: {:?}", p.verbs());
    // the older spelling, and null (an explicit "keep nothing"), reach the plugin
    let legacy = r#"{"cniVersion":"1.1.0","name":"mynet","cni.dev/attachments":[]}"#;
    assert_eq!(go(&p, &env, legacy).exit_code, 0);
    let null = r#"{"cniVersion":"1.1.0","name":"mynet","cni.dev/valid-attachments":null}"#;
    assert_eq!(go(&p, &env, null).exit_code, 0);
    assert_eq!(p.verbs(), vec![Command::Gc, Command::Gc]);
}

#[test]
fn add_prints_result_go_indented_and_passes_args() {
    let p = Recorder::default();
    let mut env = full_env("ADD");
    env.insert("CNI_ARGS".into(), "IgnoreUnknown=1;IP=10.1.2.9".into());
    env.insert("CNI_PATH".into(), "/opt/cni/bin::/usr/lib/cni".into());
    let out = go(&p, &env, &conf("1.0.0"));
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        out.stdout_str(),
        "{\n    \"cniVersion\": \"1.0.0\",\n    \"ips\": [\n        {\n            \"address\": \"10.1.2.2/24\"\n        }\n    ],\n    \"dns\": {}\n}"
    );
    let calls = p.calls.borrow();
    let a = &calls[0];
    assert_eq!(a.command, Command::Add);
    assert_eq!(a.container_id, "cid-1");
    assert_eq!(a.ifname, "eth0");
    assert_eq!(a.args, "IgnoreUnknown=1;IP=10.1.2.9");
    assert_eq!(
        a.path,
        vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
    );
    assert_eq!(a.stdin, conf("1.0.0").into_bytes());
    assert!(!a.netns_override);
}

#[test]
fn plugin_errors_keep_their_code() {
    let p = Recorder {
        fail_with: Some(CniError::TryAgainLater("busy".into())),
        ..Default::default()
    };
    let out = go(&p, &full_env("DEL"), &conf("1.0.0"));
    assert_eq!(
        out.stdout_str(),
        "{\n    \"code\": 11,\n    \"msg\": \"busy\"\n}"
    );

    let p = Recorder {
        fail_with: Some(CniError::with_details(
            107,
            "failed <here>",
            "some & details",
        )),
        ..Default::default()
    };
    let out = go(&p, &full_env("ADD"), &conf("1.0.0"));
    assert_eq!(
        out.stdout_str(),
        "{\n    \"code\": 107,\n    \"msg\": \"failed \\u003chere\\u003e\",\n    \"details\": \"some \\u0026 details\"\n}"
    );
    assert_eq!(out.exit_code, 1);

    let p = Recorder {
        fail_with: Some(CniError::Internal("plain error".into())),
        ..Default::default()
    };
    assert_error(
        &go(&p, &full_env("CHECK"), &conf("1.0.0")),
        999,
        "plain error",
    );
}

#[test]
fn oversized_stdin_is_rejected_with_the_limit_named() {
    let mut big = String::from(r#"{"cniVersion":"1.0.0","name":"n","pad":""#);
    big.push_str(&"a".repeat(MAX_CONFIG_BYTES));
    big.push_str(r#""}"#);
    let out = go(&Minimal, &full_env("ADD"), &big);
    assert_eq!(out.exit_code, 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], 6);
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("1048576-byte (1 MiB) limit"),
        "{v}"
    );
    // Exactly at the limit is fine (padding with whitespace keeps it valid JSON).
    let mut ok = conf("1.0.0");
    ok.push_str(&" ".repeat(MAX_CONFIG_BYTES - ok.len()));
    assert_eq!(go(&Minimal, &full_env("ADD"), &ok).exit_code, 0);
}

struct FailingReader;
impl std::io::Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("boom"))
    }
}

#[test]
fn stdin_read_error_is_code_5() {
    let env = full_env("ADD");
    let getenv = |k: &str| env.get(k).cloned();
    let out = run(&Minimal, &getenv, &mut FailingReader, ABOUT);
    assert_error(&out, 5, "error reading from stdin: boom");
    // VERSION never reads stdin.
    let getenv = |k: &str| (k == "CNI_COMMAND").then(|| "VERSION".to_string());
    assert_eq!(
        run(&Minimal, &getenv, &mut FailingReader, ABOUT).exit_code,
        0
    );
}

#[test]
fn own_netns_is_refused_after_add_and_del() {
    let own = "/proc/self/ns/net";
    let mut env = full_env("ADD");
    env.insert("CNI_NETNS".into(), own.into());
    let p = Recorder::default();
    let out = go(&p, &env, &conf("1.0.0"));
    // Like Go, the handler has already run and printed its result.
    assert_eq!(p.verbs(), vec![Command::Add]);
    assert_eq!(out.exit_code, 1);
    let s = out.stdout_str();
    assert!(s.starts_with("{\n    \"cniVersion\": \"1.0.0\""));
    assert!(s.ends_with("}{\n    \"code\": 8,\n    \"msg\": \"plugin's netns and netns from CNI_NETNS should not be the same\"\n}"), "{s}");

    let mut env = full_env("DEL");
    env.insert("CNI_NETNS".into(), own.into());
    assert_error(
        &go(&Minimal, &env, &conf("1.0.0")),
        8,
        "plugin's netns and netns from CNI_NETNS should not be the same",
    );

    for ov in ["1", "true", "TRUE", "True"] {
        let mut env = full_env("ADD");
        env.insert("CNI_NETNS".into(), own.into());
        env.insert("CNI_NETNS_OVERRIDE".into(), ov.into());
        assert_eq!(
            go(&Minimal, &env, &conf("1.0.0")).exit_code,
            0,
            "override {ov}"
        );
    }
    let mut env = full_env("ADD");
    env.insert("CNI_NETNS".into(), own.into());
    env.insert("CNI_NETNS_OVERRIDE".into(), "yes".into());
    assert_eq!(go(&Minimal, &env, &conf("1.0.0")).exit_code, 1);

    // A real, different netns is fine; so is one that does not exist.
    let ns = weft_test_support::TestNs::new("weft-cni-core-own");
    let mut env = full_env("ADD");
    env.insert("CNI_NETNS".into(), ns.path());
    assert_eq!(go(&Minimal, &env, &conf("1.0.0")).exit_code, 0);
    assert_eq!(go(&Minimal, &full_env("ADD"), &conf("1.0.0")).exit_code, 0);
}

#[test]
fn panic_formatter_layout() {
    assert_eq!(
        format_panic("index out of bounds", Some("src/main.rs:10:5")),
        "{\n    \"code\": 999,\n    \"msg\": \"plugin panicked: index out of bounds\",\n    \"details\": \"at src/main.rs:10:5\"\n}"
    );
    assert_eq!(
        format_panic("boom", None),
        "{\n    \"code\": 999,\n    \"msg\": \"plugin panicked: boom\"\n}"
    );
}

/// Runs this test binary again as a child that installs the hook and
/// panics; the child must print the CNI error on stdout and exit 1.
#[test]
fn panic_hook_prints_cni_error_and_exits_1() {
    if std::env::var_os("WEFT_CNI_CORE_PANIC_CHILD").is_some() {
        weft_cni_core::install_panic_hook();
        let v: Vec<u32> = Vec::new();
        let i = std::hint::black_box(3);
        let _ = v[i];
        unreachable!();
    }
    let exe = std::env::current_exe().unwrap();
    let out = Process::new(exe)
        .args([
            "--exact",
            "panic_hook_prints_cni_error_and_exits_1",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WEFT_CNI_CORE_PANIC_CHILD", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("{\n    \"code\": 999,\n    \"msg\": \"plugin panicked: index out of bounds: the len is 0 but the index is 3\",\n    \"details\": \"at "),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("panic: index out of bounds"));
}
