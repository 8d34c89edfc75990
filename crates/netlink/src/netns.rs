//! Network namespace handles.
//!
//! The rule of this crate: never `setns` the caller's thread. Code that must
//! run inside another netns (creating a netlink socket there, writing
//! `/proc/sys/net/...`) runs on a short-lived scoped thread that enters the
//! netns and then exits, so a failed switch back can never leak the wrong
//! namespace into the rest of the program.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::stat::fstat;
use nix::sys::statfs::{statfs, NSFS_MAGIC, PROC_SUPER_MAGIC};

use crate::error::{NlError, Result};

/// An open network namespace (a file descriptor on an nsfs inode).
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Open the netns at `path` (`/var/run/netns/x`, `/proc/<pid>/ns/net`).
    ///
    /// A missing path is [`NlError::NotFound`] (CNI DEL treats it as "already
    /// gone"); a path that exists but is not a netns is
    /// [`NlError::NotNetns`]. Like Go's `ns.GetNS`, the filesystem magic is
    /// checked before the file is opened, and both nsfs and (pre-3.19
    /// kernels) procfs are accepted.
    pub fn open(path: impl AsRef<Path>) -> Result<Netns> {
        let path = path.as_ref();
        let shown = path.display();
        let fs = match statfs(path) {
            Ok(fs) => fs,
            Err(nix::errno::Errno::ENOENT) => {
                return Err(NlError::NotFound(format!(
                    "failed to Statfs \"{shown}\": no such file or directory"
                )))
            }
            Err(e) => {
                return Err(NlError::io(
                    format!("failed to Statfs \"{shown}\""),
                    e.into(),
                ))
            }
        };
        let magic = fs.filesystem_type();
        if magic != NSFS_MAGIC && magic != PROC_SUPER_MAGIC {
            return Err(NlError::NotNetns(format!(
                "unknown FS magic on \"{shown}\": {:x}",
                magic.0
            )));
        }
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                NlError::NotFound(format!("failed to open \"{shown}\": {e}"))
            }
            _ => NlError::io(format!("failed to open \"{shown}\""), e),
        })?;
        Ok(Netns {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The netns of the calling thread.
    pub fn current() -> Result<Netns> {
        // /proc/thread-self exists since 3.17; fall back to the thread group
        // leader's netns on older kernels.
        match Netns::open("/proc/thread-self/ns/net") {
            Err(NlError::NotFound(_)) => Netns::open("/proc/self/ns/net"),
            other => other,
        }
    }

    /// The path this netns was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if both handles refer to the same namespace (same nsfs inode).
    pub fn is_same(&self, other: &Netns) -> Result<bool> {
        Ok(self.identity()? == other.identity()?)
    }

    /// True if this is the calling thread's own netns. CNI plugins use it to
    /// refuse `CNI_NETNS` pointing at the plugin's (host) namespace.
    pub fn is_current(&self) -> Result<bool> {
        self.is_same(&Netns::current()?)
    }

    fn identity(&self) -> Result<(u64, u64)> {
        let st = fstat(&self.file)
            .map_err(|e| NlError::io(format!("stat netns {}", self.path.display()), e.into()))?;
        Ok((st.st_dev, st.st_ino))
    }

    /// Run `f` inside this netns and return its result.
    ///
    /// `f` runs on a fresh scoped thread that `setns(CLONE_NEWNET)`s into the
    /// namespace and exits when `f` returns; the calling thread never changes
    /// namespace. Everything opened there that is bound to a netns at
    /// creation (netlink sockets, `/proc/sys/net/...` files) stays bound to
    /// this netns after the thread is gone.
    ///
    /// ```no_run
    /// use weft_netlink::{sysctl_set, Netns};
    /// # fn main() -> Result<(), weft_netlink::NlError> {
    /// let ns = Netns::open("/var/run/netns/pod1")?;
    /// ns.run(|| sysctl_set("net/ipv4/conf/eth0/arp_notify", "1"))?
    ///     .map_err(|e| weft_netlink::NlError::Io(e))?;
    /// # Ok(()) }
    /// ```
    pub fn run<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        std::thread::scope(|scope| {
            let handle = self.spawn_scoped(scope, f)?;
            join_netns_thread(handle.join(), &self.path)
        })
    }

    /// Start `f` on a scoped thread inside this netns and return at once, so
    /// the caller can work in its own netns meanwhile (one thread hop for a
    /// batch of pod-side work instead of one [`Netns::run`] per step). The
    /// thread's answer is `Err` if the `setns` failed.
    pub fn spawn_scoped<'scope, 'env, F, T>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        f: F,
    ) -> Result<std::thread::ScopedJoinHandle<'scope, Result<T>>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let (fd, path) = (self.file.as_fd(), self.path.as_path());
        std::thread::Builder::new()
            .name("weft-netns".into())
            .spawn_scoped(scope, move || {
                enter(fd, path)?;
                Ok(f())
            })
            .map_err(|e| NlError::io("spawn netns thread", e))
    }

    /// Start `f` on a detached thread inside this netns (which the thread
    /// takes with it). Join it with [`join_netns_thread`].
    pub fn spawn<F, T>(self, f: F) -> Result<std::thread::JoinHandle<Result<T>>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        std::thread::Builder::new()
            .name("weft-netns".into())
            .spawn(move || {
                enter(self.file.as_fd(), &self.path)?;
                Ok(f())
            })
            .map_err(|e| NlError::io("spawn netns thread", e))
    }
}

/// `setns(CLONE_NEWNET)` of the calling (fresh, short-lived) thread.
fn enter(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)
        .map_err(|e| NlError::io(format!("setns into {}", path.display()), e.into()))
}

/// The answer of a thread started by [`Netns::spawn_scoped`] or
/// [`Netns::spawn`], given `join()`'s result; a panic becomes an error.
pub fn join_netns_thread<T>(joined: std::thread::Result<Result<T>>, path: &Path) -> Result<T> {
    joined.map_err(|_| {
        NlError::Io(io::Error::other(format!(
            "thread running in netns {} panicked",
            path.display()
        )))
    })?
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
