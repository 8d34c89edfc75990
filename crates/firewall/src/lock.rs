//! weft's own lock around a read-modify-write of netfilter state that
//! several plugin processes share (portmap's CNI-HOSTPORT-* chains and the
//! jumps to them).
//!
//! iptables-nft takes no xtables lock, and iptables-nft-restore replays a
//! transaction whose ruleset changed underneath it: a `-N` of a chain that
//! now exists is skipped and the `-A` lines that follow are applied again.
//! So two ADDs that both listed the table before either wrote would both
//! append the same shared rules (seen with 20 parallel portmap ADDs on an
//! empty table). Holding this lock from the listing to the write makes the
//! second one list what the first wrote.
//!
//! The wait is bounded like the xtables lock wait; a lock that cannot be
//! had is reported to the caller, which decides whether to go on without it.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the lock lives: on the tmpfs /run, so it never outlives a boot.
pub const SHARED_LOCK_PATH: &str = "/run/weft/netfilter.lock";

/// Held until dropped (closing the file releases the flock).
#[derive(Debug)]
pub struct SharedLock {
    _file: File,
}

const POLL: Duration = Duration::from_millis(5);

impl SharedLock {
    /// Takes the lock at `path` (creating it and its directory), waiting at
    /// most `wait`.
    pub fn acquire(path: &Path, wait: Duration) -> std::io::Result<SharedLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        let start = Instant::now();
        let deadline = start + wait;
        loop {
            // SAFETY: flock on a descriptor we own; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                weft_cni_core::trace::trace_duration(
                    "netfilter",
                    "shared-lock-wait",
                    start.elapsed(),
                );
                return Ok(SharedLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => {}
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
            if Instant::now() >= deadline {
                weft_cni_core::trace::trace_duration(
                    "netfilter",
                    "shared-lock-wait (timed out)",
                    start.elapsed(),
                );
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{} is held by another process", path.display()),
                ));
            }
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/netfilter.lock");
        let first = SharedLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let t0 = Instant::now();
        let second = SharedLock::acquire(&path, Duration::from_millis(100));
        assert_eq!(second.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(100));
        drop(first);
        SharedLock::acquire(&path, Duration::from_millis(100)).unwrap();
    }
}
