//! Helpers for the root tests: throw-away network namespaces, the Go
//! reference bridge plugin, and normalised dumps of the nat table.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use ipnetwork::IpNetwork;
use weft_firewall::Family;

pub use weft_test_support::can_run;

pub const GO_PLUGINS: &str = "/usr/lib/cni";

pub fn have_go_bridge() -> bool {
    let ok = Path::new(GO_PLUGINS).join("bridge").exists();
    if !ok {
        eprintln!("skipping: no Go bridge plugin in {GO_PLUGINS}");
    }
    ok
}

/// A throw-away netns (`weft-fw-<pid>-<n>`, see weft-test-support) with
/// readers of its nat table.
pub struct TestNs(weft_test_support::TestNs);

impl std::ops::Deref for TestNs {
    type Target = weft_test_support::TestNs;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl TestNs {
    pub fn new() -> TestNs {
        TestNs(weft_test_support::TestNs::new("weft-fw"))
    }

    /// `iptables-save -t nat` (or ip6tables-save) without the timestamp
    /// comments and with counters zeroed.
    pub fn nat_save(&self, family: Family) -> Vec<String> {
        self.nat_save_with(match family {
            Family::V4 => "iptables-save",
            Family::V6 => "ip6tables-save",
        })
    }

    pub fn nat_save_with(&self, save_bin: &str) -> Vec<String> {
        self.exec(&[save_bin, "-t", "nat"])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(zero_counters)
            .collect()
    }

    /// The lines of the nat table that mention a CNI chain.
    pub fn cni_lines(&self, family: Family) -> Vec<String> {
        self.nat_save(family)
            .into_iter()
            .filter(|l| l.contains("CNI-"))
            .collect()
    }

    /// `nft list table inet cni_plugins_masquerade`, or None if absent.
    pub fn nft_masq_table(&self) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(["nft", "list", "table", "inet", "cni_plugins_masquerade"])
            .output()
            .expect("run nft");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn zero_counters(line: &str) -> String {
    // ":POSTROUTING ACCEPT [12:720]" -> "[0:0]"
    match (line.rfind('['), line.ends_with(']')) {
        (Some(i), true) if line.starts_with(':') => format!("{}[0:0]", &line[..i]),
        _ => line.to_string(),
    }
}

/// The Go bridge plugin (v1.1.1) with host-local IPAM, run in `host` for a
/// container netns `cont`.
pub struct GoBridge<'a> {
    pub host: &'a TestNs,
    pub cont: &'a TestNs,
    pub conf: String,
    _data: tempfile::TempDir,
}

impl<'a> GoBridge<'a> {
    /// `ranges` are host-local range sets, e.g. `["10.77.0.0/24", "fd77::/64"]`.
    pub fn new(host: &'a TestNs, cont: &'a TestNs, net: &str, ranges: &[&str]) -> GoBridge<'a> {
        let data = tempfile::tempdir().expect("tempdir");
        let ranges: Vec<serde_json::Value> = ranges
            .iter()
            .map(|r| serde_json::json!([{ "subnet": r }]))
            .collect();
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": net,
            "type": "bridge",
            "bridge": "wfbr0",
            "isGateway": false,
            "ipMasq": true,
            "ipam": {
                "type": "host-local",
                "dataDir": data.path(),
                "ranges": ranges,
            }
        })
        .to_string();
        GoBridge {
            host,
            cont,
            conf,
            _data: data,
        }
    }

    fn run(&self, command: &str, cid: &str, ifname: &str) -> (bool, String, String) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.host.name])
            .arg(Path::new(GO_PLUGINS).join("bridge"))
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", self.cont.path())
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", GO_PLUGINS)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn Go bridge");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(self.conf.as_bytes())
            .expect("write conf");
        let out = child.wait_with_output().expect("wait Go bridge");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Go ADD; returns the container addresses from the result.
    pub fn add(&self, cid: &str, ifname: &str) -> Vec<IpNetwork> {
        let (ok, stdout, stderr) = self.run("ADD", cid, ifname);
        assert!(ok, "Go bridge ADD failed: {stdout} {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("Go result JSON");
        v["ips"]
            .as_array()
            .expect("ips")
            .iter()
            .map(|ip| {
                ip["address"]
                    .as_str()
                    .expect("address")
                    .parse()
                    .expect("cidr")
            })
            .collect()
    }

    /// Go DEL; panics if it fails.
    pub fn del(&self, cid: &str, ifname: &str) {
        let (ok, stdout, stderr) = self.run("DEL", cid, ifname);
        assert!(ok, "Go bridge DEL failed: {stdout} {stderr}");
    }
}

pub fn nets(list: &[&str]) -> Vec<IpNetwork> {
    list.iter().map(|s| s.parse().expect("cidr")).collect()
}
