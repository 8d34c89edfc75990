//! Helpers shared by the host-local binary tests: running our binary and
//! the Go reference binary with CNI environment variables and stdin.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Our plugin: a link named `host-local` to the multicall binary cargo
/// built for this test run (the role comes from the name it is run as).
/// Call [`ensure_weft`] before running it; [`command`] does.
pub const WEFT: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/host-local");

/// Makes the [`WEFT`] link (once per test process; replaced atomically).
pub fn ensure_weft() {
    static LINK: std::sync::Once = std::sync::Once::new();
    LINK.call_once(|| {
        let tmp = format!("{WEFT}.{}", std::process::id());
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_weft"), &tmp).expect("symlink host-local");
        std::fs::rename(&tmp, WEFT).expect("rename host-local link");
    });
}
/// The Go reference plugin (Debian's containernetworking-plugins).
pub const GO: &str = "/usr/lib/cni/host-local";

/// host-local never enters the netns; any path that is not our own netns.
pub const NETNS: &str = "/var/run/netns/weft-host-local-test-none";

pub fn go() -> &'static str {
    assert!(
        Path::new(GO).exists(),
        "the Go reference plugin {GO} is missing (apt-get install containernetworking-plugins)"
    );
    GO
}

#[derive(Debug, Clone)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?} / {:?}",
                self.stdout, self.stderr
            )
        })
    }

    /// The `code` of an error reply.
    pub fn err_code(&self) -> u64 {
        assert_ne!(self.code, 0, "expected a failure, got {self:?}");
        self.json()["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no code in {self:?}"))
    }

    pub fn err_msg(&self) -> String {
        self.json()["msg"].as_str().unwrap_or_default().to_string()
    }

    /// The addresses of a successful ADD, in any result version.
    pub fn addresses(&self) -> Vec<String> {
        assert_eq!(self.code, 0, "ADD failed: {self:?}");
        let v = self.json();
        if let Some(ips) = v["ips"].as_array() {
            return ips
                .iter()
                .map(|i| i["address"].as_str().unwrap().to_string())
                .collect();
        }
        ["ip4", "ip6"]
            .iter()
            .filter_map(|k| v[k]["ip"].as_str().map(str::to_string))
            .collect()
    }
}

/// The command for one plugin invocation, not started.
pub fn command(bin: &str, verb: &str, cid: &str, ifname: &str, args: &str) -> Command {
    ensure_weft();
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", verb)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", NETNS)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", "/usr/lib/cni")
        .env("CNI_ARGS", args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub fn spawn(bin: &str, verb: &str, cid: &str, ifname: &str, conf: &str, args: &str) -> Child {
    let mut child = command(bin, verb, cid, ifname, args)
        .spawn()
        .expect("spawn plugin");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(conf.as_bytes()).expect("write stdin");
    drop(stdin);
    child
}

pub fn finish(child: Child) -> Out {
    let out = child.wait_with_output().expect("wait plugin");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn run(bin: &str, verb: &str, cid: &str, ifname: &str, conf: &str) -> Out {
    run_args(bin, verb, cid, ifname, conf, "")
}

pub fn run_args(bin: &str, verb: &str, cid: &str, ifname: &str, conf: &str, args: &str) -> Out {
    finish(spawn(bin, verb, cid, ifname, conf, args))
}

/// A network configuration for host-local with the given ipam extras.
pub fn conf(version: &str, name: &str, data_dir: &Path, ipam_extra: &str) -> String {
    format!(
        r#"{{"cniVersion": "{version}", "name": "{name}", "type": "bridge",
            "ipam": {{"type": "host-local", "dataDir": "{}", {ipam_extra}}}}}"#,
        data_dir.display()
    )
}

/// Everything in a network directory: name -> (content, mode bits).
pub fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let content = if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.file_name().into_string().unwrap(),
                (content, meta.permissions().mode() & 0o7777),
            )
        })
        .collect()
}

/// Reservation files (names that are addresses) of a network directory.
pub fn reservations(dir: &Path) -> BTreeMap<String, String> {
    snapshot(dir)
        .into_iter()
        .filter(|(name, _)| name.parse::<std::net::IpAddr>().is_ok())
        .map(|(name, (content, _))| (name, String::from_utf8(content).unwrap()))
        .collect()
}

/// The spec versions the Go binary accepts (v1.1.1 stops at 1.0.0).
pub fn go_versions() -> Vec<String> {
    let out = finish(spawn(go(), "VERSION", "", "", "", ""));
    out.json()["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
