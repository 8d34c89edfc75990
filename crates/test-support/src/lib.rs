//! Fixtures shared by weft's root tests (dev-dependency only): a network
//! namespace made for one test, under a unique name, and removed when it is
//! dropped, even when the test fails. The crates' own test helpers build on
//! it (nat dumps in firewall, `ip -j` readers in netlink).

// Test code: a fixture that cannot be set up fails the test on the spot.
#![allow(clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Root tests need CAP_NET_ADMIN and `ip netns`; say so and skip otherwise.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return false;
    }
    true
}

/// A netns named `<prefix>-<pid>-<n>`, deleted on drop.
#[derive(Debug)]
pub struct TestNs {
    pub name: String,
}

impl TestNs {
    /// `prefix` says which suite made it ("weft-fw", "weft-nl"), so a leak
    /// names its owner.
    pub fn new(prefix: &str) -> TestNs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        TestNs { name }
    }

    /// Its bind mount, as runtimes pass it in CNI_NETNS.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs `f` on a short-lived thread that joined this netns (the calling
    /// thread never moves); the processes our code spawns there inherit it.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                let file = File::open(&path).expect("open netns");
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("netns thread panicked")
        })
    }

    /// `ip netns exec <ns> args…`, returning stdout; panics on failure.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs a command, fails the test with its stderr if it fails, returns stdout.
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
