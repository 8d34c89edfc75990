//! Root-test fixtures: throw-away network namespaces and `ip -j` / `bridge -j`
//! readers to check what the kernel really holds.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_netlink::{Handle, Netns};

pub use weft_test_support::{can_run, run};

/// A throw-away netns (`weft-nl-<pid>-<n>`, see weft-test-support), open
/// for netlink, with `ip -j` / `bridge -j` readers.
pub struct TestNs {
    pub ns: Netns,
    fixture: weft_test_support::TestNs,
}

impl std::ops::Deref for TestNs {
    type Target = weft_test_support::TestNs;
    fn deref(&self) -> &Self::Target {
        &self.fixture
    }
}

impl TestNs {
    pub fn new() -> TestNs {
        let fixture = weft_test_support::TestNs::new("weft-nl");
        let ns = Netns::open(fixture.path()).expect("open test netns");
        TestNs { ns, fixture }
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
