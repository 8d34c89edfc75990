//! Root-test fixtures: throw-away network namespaces and `ip -j` / `bridge -j`
//! readers to check what the kernel really holds.

#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_netlink::{Handle, Netns};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Root tests need CAP_NET_ADMIN and `ip netns`; say so and skip otherwise.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return false;
    }
    true
}

/// A uniquely named netns (`weft-nl-<pid>-<n>`), deleted on drop even when
/// the test fails.
pub struct TestNs {
    pub name: String,
    pub ns: Netns,
}

impl TestNs {
    pub fn new() -> TestNs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("weft-nl-{}-{}", std::process::id(), n);
        run("ip", &["netns", "add", &name]);
        let ns = Netns::open(format!("/run/netns/{name}")).expect("open test netns");
        TestNs { name, ns }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A netlink handle bound to this netns.
    pub fn handle(&self) -> Handle {
        Handle::for_netns(&self.ns).expect("netlink handle in test netns")
    }

    /// `ip -n <ns> -j <args>` parsed as JSON.
    pub fn ip(&self, args: &[&str]) -> Value {
        let mut full = vec!["-n", &self.name, "-j"];
        full.extend_from_slice(args);
        json(&run("ip", &full))
    }

    /// `bridge -n <ns> -j <args>` parsed as JSON.
    pub fn bridge(&self, args: &[&str]) -> Value {
        let mut full = vec!["-n", &self.name, "-j"];
        full.extend_from_slice(args);
        json(&run("bridge", &full))
    }

    /// The single object of `ip -n <ns> -j -d link show dev <name>`.
    pub fn link(&self, name: &str) -> Value {
        first(self.ip(&["-d", "link", "show", "dev", name]))
    }

    /// Run `ip -n <ns> <args>` and return whether it succeeded.
    pub fn ip_ok(&self, args: &[&str]) -> bool {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        Command::new("ip")
            .args(&full)
            .output()
            .expect("run ip")
            .status
            .success()
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Run a command, fail the test with its stderr if it fails, return stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .expect("spawn command");
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Array(vec![]);
    }
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON {text:?}: {e}"))
}

pub fn first(v: Value) -> Value {
    v.as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_else(|| panic!("expected a non-empty JSON array, got {v}"))
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `flags` array of an `ip -j` object contains `flag`.
pub fn has_flag(obj: &Value, flag: &str) -> bool {
    obj["flags"]
        .as_array()
        .is_some_and(|a| a.iter().any(|f| f == flag))
}
