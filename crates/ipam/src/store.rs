//! The on-disk reservation store, byte-compatible with Go's
//! `backend/disk` so the Go plugin and this one can share a directory, even
//! at the same time.
//!
//! Layout of `<dataDir>/<network>/` (created 0755):
//! - `<ip>`: one file per reserved address, named by Go's `net.IP.String()`
//!   (compressed IPv6), created exclusively 0600, holding `<cid>\r\n<ifname>`
//!   with no trailing newline. Files written before ifnames were recorded
//!   hold just `<cid>`. Go creates it `O_EXCL` and then writes it; weft
//!   writes `.weft-reserve.tmp` and hard-links it into place, so the file
//!   never exists empty (see [`LockedStore::reserve`]).
//! - `last_reserved_ip.<N>`: the last address handed out from range set N.
//! - `lock`: opened `O_CREAT|O_RDONLY` 0750 and `flock(LOCK_EX)`ed around
//!   every operation. Go takes it once per set operation; we take it once
//!   per command, which nests safely inside Go's protocol.
//!
//! Every file is reached through a descriptor of the network directory and
//! opened `O_NOFOLLOW`, and the directory itself must not be a symlink, so
//! a link planted in the directory cannot redirect a write.

use std::fs::{DirBuilder, File};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::unistd::{linkat, unlinkat, UnlinkatFlags};

use crate::config::Attachment;
use crate::error::{IpamError, Result};
use crate::ip;

/// Separates the container ID from the ifname inside a reservation file.
pub const LINE_BREAK: &str = "\r\n";
/// Prefix of the per-set round-robin cursor files.
pub const LAST_IP_FILE_PREFIX: &str = "last_reserved_ip.";
/// Name of the lock file.
pub const LOCK_FILE: &str = "lock";

/// Scratch file a reservation is written to before it is linked into place
/// (a dotfile: never taken for an address, by Go either).
pub const RESERVE_SCRATCH: &str = ".weft-reserve.tmp";

/// Reservation files are tiny; anything bigger is not one of ours.
const MAX_RESERVATION_SIZE: u64 = 64 * 1024;

/// The key a reservation file holds for `id` and `ifname` (Go trims the
/// container ID, not the ifname).
pub fn reservation_key(id: &str, ifname: &str) -> String {
    format!("{}{LINE_BREAK}{ifname}", id.trim())
}

/// Who holds a reservation, from the file's trimmed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `<cid>\r\n<ifname>`.
    Attachment {
        /// Container ID.
        id: String,
        /// Interface name.
        ifname: String,
    },
    /// A bare container ID, from before ifnames were recorded.
    Legacy(String),
}

impl Owner {
    fn parse(trimmed: &str) -> Owner {
        match trimmed.split_once(LINE_BREAK) {
            Some((id, ifname)) => Owner::Attachment {
                id: id.to_string(),
                ifname: ifname.to_string(),
            },
            None => Owner::Legacy(trimmed.to_string()),
        }
    }

    /// Whether a still-valid attachment holds this reservation. A legacy
    /// file matches any interface of its container, as DEL treats it.
    pub fn is_valid(&self, valid: &[Attachment]) -> bool {
        match self {
            Owner::Attachment { id, ifname } => valid
                .iter()
                .any(|a| a.container_id.trim() == id && a.ifname == *ifname),
            Owner::Legacy(id) => valid.iter().any(|a| a.container_id.trim() == id),
        }
    }
}

/// One reservation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The address, canonical.
    pub ip: IpAddr,
    /// The file name as found in the directory.
    pub name: String,
    /// The trimmed content; `None` when the file could not be read.
    pub content: Option<String>,
}

/// The network directory, opened but not locked.
#[derive(Debug)]
pub struct Store {
    dir: OwnedFd,
    path: PathBuf,
}

/// Rejects network names that would leave the data directory. skel's name
/// check already does this for the binary; the library checks on its own.
fn check_network_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(IpamError::InvalidConfig(format!(
            "invalid network name {name:?}: it names a directory under dataDir"
        )));
    }
    Ok(())
}

impl Store {
    /// Creates `<data_dir>/<network>` (mode 0755, parents too) if needed
    /// and opens it.
    pub fn open(data_dir: &Path, network: &str) -> Result<Store> {
        check_network_name(network)?;
        let path = data_dir.join(network);
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&path)
            .map_err(|e| IpamError::io("mkdir", &path, &e))?;
        Store::open_dir(path)
    }

    /// Opens `<data_dir>/<network>` if it exists; DEL, CHECK and GC have
    /// nothing to do without it and must not create it.
    pub fn open_existing(data_dir: &Path, network: &str) -> Result<Option<Store>> {
        check_network_name(network)?;
        let path = data_dir.join(network);
        match open_dir_fd(&path) {
            Ok(dir) => Ok(Some(Store { dir, path })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(dir_error(&path, e)),
        }
    }

    fn open_dir(path: PathBuf) -> Result<Store> {
        match open_dir_fd(&path) {
            Ok(dir) => Ok(Store { dir, path }),
            Err(e) => Err(dir_error(&path, e)),
        }
    }

    /// The network directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the lock file and takes the exclusive flock, blocking.
    pub fn lock(self) -> Result<LockedStore> {
        let lock_path = self.path.join(LOCK_FILE);
        let base = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let fd = match openat(
            &self.dir,
            LOCK_FILE,
            base | OFlag::O_CREAT,
            Mode::from_bits_truncate(0o750),
        ) {
            Ok(fd) => fd,
            // A read-only filesystem still lets us lock an existing file.
            Err(Errno::EROFS) => openat(&self.dir, LOCK_FILE, base, Mode::empty())
                .map_err(|e| IpamError::errno("open", &lock_path, e))?,
            Err(e) => return Err(IpamError::errno("open", &lock_path, e)),
        };
        let lock = FileLock::acquire(fd).map_err(|e| IpamError::errno("flock", &lock_path, e))?;
        Ok(LockedStore {
            dir: self.dir,
            path: self.path,
            _lock: lock,
        })
    }
}

fn open_dir_fd(path: &Path) -> std::result::Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, Mode::empty())
}

fn dir_error(path: &Path, e: Errno) -> IpamError {
    // O_NOFOLLOW|O_DIRECTORY on a symlink fails with ENOTDIR (or ELOOP).
    let is_link = path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        return IpamError::Io(format!(
            "refusing to use {}: the network directory is a symlink",
            path.display()
        ));
    }
    IpamError::errno("open", path, e)
}

/// An exclusive flock, released on drop (closing the descriptor would
/// release it too).
#[derive(Debug)]
struct FileLock(OwnedFd);

impl FileLock {
    fn acquire(fd: OwnedFd) -> std::result::Result<FileLock, Errno> {
        loop {
            // SAFETY: flock(2) on a descriptor we own; no memory involved.
            let rc = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
            match Errno::result(rc) {
                Ok(_) => return Ok(FileLock(fd)),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: as above. A failure cannot be acted on; the close that
        // follows releases the lock anyway.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// The network directory with the lock held. Every reservation operation
/// lives here, so none can run unlocked.
#[derive(Debug)]
pub struct LockedStore {
    dir: OwnedFd,
    path: PathBuf,
    _lock: FileLock,
}

impl LockedStore {
    /// The network directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, op: &str, name: &str, e: Errno) -> IpamError {
        IpamError::errno(op, &self.path.join(name), e)
    }

    /// Atomically reserves `ip` for `id`/`ifname` and records it as the
    /// last address of set `range_id`. `Ok(false)` when the address is
    /// already taken. Nothing is left behind on failure.
    pub fn reserve(&self, id: &str, ifname: &str, addr: IpAddr, range_id: usize) -> Result<bool> {
        let addr = ip::canonical(addr);
        let name = addr.to_string();
        if !self.create_exclusive(&name, reservation_key(id, ifname).as_bytes())? {
            return Ok(false);
        }
        if let Err(e) = self.write_last_reserved(range_id, &name) {
            // Go keeps the reservation and fails the ADD, leaking it.
            self.unlink_quietly(&name);
            return Err(e);
        }
        Ok(true)
    }

    /// Creates `name` holding `data`, failing (`Ok(false)`) if it exists,
    /// like Go's `O_CREAT|O_EXCL` open followed by a write, but atomic: the
    /// data goes to [`RESERVE_SCRATCH`] first, which is then hard-linked to
    /// `name`. Go's way, a plugin killed between the create and the write
    /// leaves an empty reservation that no DEL matches and that holds the
    /// address until a GC. The scratch file is only used with the lock held,
    /// so one fixed name suffices; one left by a killed plugin is truncated
    /// and reused. Filesystems without hard links get Go's way.
    fn create_exclusive(&self, name: &str, data: &[u8]) -> Result<bool> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_TRUNC
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let fd = match openat(&self.dir, RESERVE_SCRATCH, flags, mode) {
            // Not a regular file we can write (a planted symlink or fifo):
            // remove it and try once more.
            Err(Errno::ELOOP | Errno::EISDIR | Errno::ENXIO) => {
                let _ = unlinkat(&self.dir, RESERVE_SCRATCH, UnlinkatFlags::NoRemoveDir);
                openat(&self.dir, RESERVE_SCRATCH, flags, mode)
            }
            other => other,
        }
        .map_err(|e| self.err("open", RESERVE_SCRATCH, e))?;
        if let Err(e) = write_and_close(fd, data) {
            self.unlink_quietly(RESERVE_SCRATCH);
            return Err(IpamError::io("write", &self.path.join(name), &e));
        }
        let linked = linkat(
            &self.dir,
            RESERVE_SCRATCH,
            &self.dir,
            name,
            AtFlags::empty(),
        );
        self.unlink_quietly(RESERVE_SCRATCH);
        match linked {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(Errno::EPERM | Errno::EOPNOTSUPP | Errno::EMLINK | Errno::EXDEV) => {
                self.create_exclusive_in_place(name, data)
            }
            Err(e) => Err(self.err("link", name, e)),
        }
    }

    /// Go's `O_CREAT|O_EXCL` create and write, for filesystems without hard
    /// links.
    fn create_exclusive_in_place(&self, name: &str, data: &[u8]) -> Result<bool> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match openat(&self.dir, name, flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => return Ok(false),
            Err(e) => return Err(self.err("open", name, e)),
        };
        if let Err(e) = write_and_close(fd, data) {
            self.unlink_quietly(name);
            return Err(IpamError::io("write", &self.path.join(name), &e));
        }
        Ok(true)
    }

    /// Replaces `last_reserved_ip.N` through a temporary file and a rename,
    /// so a full disk leaves the old cursor intact instead of an empty file.
    fn write_last_reserved(&self, range_id: usize, value: &str) -> Result<()> {
        let name = format!("{LAST_IP_FILE_PREFIX}{range_id}");
        let tmp = format!(".{name}.tmp");
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_TRUNC
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = openat(
            &self.dir,
            tmp.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.err("open", &tmp, e))?;
        if let Err(e) = write_and_close(fd, value.as_bytes()) {
            self.unlink_quietly(&tmp);
            return Err(IpamError::io("write", &self.path.join(&name), &e));
        }
        if let Err(e) = renameat(&self.dir, tmp.as_str(), &self.dir, name.as_str()) {
            self.unlink_quietly(&tmp);
            return Err(self.err("rename", &name, e));
        }
        Ok(())
    }

    /// The address in `last_reserved_ip.N`, if the file exists and parses.
    pub fn last_reserved_ip(&self, range_id: usize) -> Option<IpAddr> {
        let name = format!("{LAST_IP_FILE_PREFIX}{range_id}");
        match self.read_small(&name) {
            Ok(Some(text)) => ip::parse_ip(text.trim()),
            Ok(None) | Err(Errno::ENOENT) => None,
            Err(e) => {
                // Not critical: round robin restarts at the range start.
                eprintln!(
                    "Error retrieving last reserved ip: {}",
                    self.err("open", &name, e)
                );
                None
            }
        }
    }

    /// Reads a small regular file without following links. `Ok(None)` for
    /// something that is not a regular file or is too big.
    fn read_small(&self, name: &str) -> std::result::Result<Option<String>, Errno> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = openat(&self.dir, name, flags, Mode::empty())?;
        let st = fstat(&fd)?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Ok(None);
        }
        let mut buf = Vec::new();
        File::from(fd)
            .take(MAX_RESERVATION_SIZE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        if buf.len() as u64 > MAX_RESERVATION_SIZE {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Names in the directory that are addresses. `lock`,
    /// `last_reserved_ip.*`, dotfiles and anything else are skipped.
    pub fn ip_names(&self) -> Result<Vec<(IpAddr, String)>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir = nix::dir::Dir::openat(&self.dir, ".", flags, Mode::empty())
            .map_err(|e| IpamError::errno("open", &self.path, e))?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| IpamError::errno("readdir", &self.path, e))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if let Some(addr) = ip::parse_ip(name) {
                out.push((addr, name.to_string()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every reservation with its content.
    pub fn reservations(&self) -> Result<Vec<Reservation>> {
        Ok(self
            .ip_names()?
            .into_iter()
            .map(|(ip, name)| {
                let content = self
                    .read_small(&name)
                    .ok()
                    .flatten()
                    .map(|c| c.trim().to_string());
                Reservation { ip, name, content }
            })
            .collect())
    }

    /// The reservations whose content is exactly `key`.
    fn matching(&self, key: &str) -> Result<Vec<Reservation>> {
        Ok(self
            .reservations()?
            .into_iter()
            .filter(|r| r.content.as_deref() == Some(key))
            .collect())
    }

    /// Addresses held by `id`/`ifname`, or by the bare legacy `id`.
    pub fn get_by_id(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        let key = reservation_key(id, ifname);
        let legacy = id.trim();
        Ok(self
            .reservations()?
            .into_iter()
            .filter(|r| matches!(r.content.as_deref(), Some(c) if c == key || c == legacy))
            .map(|r| r.ip)
            .collect())
    }

    /// Whether `id`/`ifname` holds any address; falls back to legacy files
    /// holding the bare `id`.
    pub fn find_by_id(&self, id: &str, ifname: &str) -> Result<bool> {
        if !self.matching(&reservation_key(id, ifname))?.is_empty() {
            return Ok(true);
        }
        Ok(!self.matching(id.trim())?.is_empty())
    }

    /// Releases everything `id`/`ifname` holds; only when that finds
    /// nothing, releases legacy files holding the bare `id`. Returns how
    /// many files were removed. Keeps going past failures and reports them
    /// together.
    pub fn release_by_id(&self, id: &str, ifname: &str) -> Result<usize> {
        let mut found = self.matching(&reservation_key(id, ifname))?;
        if found.is_empty() {
            found = self.matching(id.trim())?;
        }
        self.remove_all(found.iter().map(|r| r.name.as_str()))
    }

    /// Releases `addr` if `id`/`ifname` holds it (rollback of a failed ADD).
    pub fn release_ip(&self, addr: IpAddr, id: &str, ifname: &str) -> Result<()> {
        let name = ip::canonical(addr).to_string();
        let content = self.read_small(&name).ok().flatten();
        if content.as_deref().map(str::trim) == Some(reservation_key(id, ifname).as_str()) {
            self.remove_all(std::iter::once(name.as_str()))?;
        }
        Ok(())
    }

    /// GC: releases every reservation not held by one of `valid`. Returns
    /// the released addresses; failures do not stop the sweep.
    pub fn gc(&self, valid: &[Attachment]) -> Result<Vec<IpAddr>> {
        let stale: Vec<Reservation> = self
            .reservations()?
            .into_iter()
            .filter(|r| match &r.content {
                Some(c) => !Owner::parse(c).is_valid(valid),
                // Unreadable: we cannot tell who holds it, so keep it.
                None => false,
            })
            .collect();
        self.remove_all(stale.iter().map(|r| r.name.as_str()))?;
        Ok(stale.iter().map(|r| r.ip).collect())
    }

    /// Unlinks names, continuing past failures; an already missing file is
    /// fine. Returns how many were removed.
    fn remove_all<'a>(&self, names: impl Iterator<Item = &'a str>) -> Result<usize> {
        let mut removed = 0;
        let mut failures = Vec::new();
        for name in names {
            match unlinkat(&self.dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => removed += 1,
                Err(Errno::ENOENT) => {}
                Err(e) => failures.push(self.err("remove", name, e)),
            }
        }
        match failures.first() {
            None => Ok(removed),
            Some(first) => {
                let msgs: Vec<&str> = failures.iter().map(IpamError::msg).collect();
                let msg = msgs.join("; ");
                Err(match first {
                    IpamError::TryAgainLater(_) => IpamError::TryAgainLater(msg),
                    _ => IpamError::Io(msg),
                })
            }
        }
    }

    fn unlink_quietly(&self, name: &str) {
        let _ = unlinkat(&self.dir, name, UnlinkatFlags::NoRemoveDir);
    }

    /// STATUS: proves that a file can be created, written and removed.
    pub fn probe_writable(&self) -> Result<()> {
        let name = format!(".weft-status-probe.{}", std::process::id());
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_TRUNC
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = openat(
            &self.dir,
            name.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.err("open", &name, e))?;
        let written = write_and_close(fd, b"x");
        self.unlink_quietly(&name);
        written.map_err(|e| IpamError::io("write", &self.path.join(&name), &e))
    }
}

/// Writes everything and closes, reporting a failing close (NFS, quota).
fn write_and_close(fd: OwnedFd, data: &[u8]) -> std::io::Result<()> {
    let mut file = File::from(fd);
    file.write_all(data)?;
    let fd = OwnedFd::from(file);
    nix::unistd::close(fd).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn ipa(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn att(id: &str, ifname: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: ifname.into(),
        }
    }

    struct Fixture {
        dir: tempfile::TempDir,
        store: LockedStore,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "net").unwrap().lock().unwrap();
        Fixture { dir, store }
    }

    impl Fixture {
        fn file(&self, name: &str) -> PathBuf {
            self.dir.path().join("net").join(name)
        }
        fn exists(&self, name: &str) -> bool {
            self.file(name).symlink_metadata().is_ok()
        }
        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.file(name)).unwrap()
        }
    }

    #[test]
    fn layout_is_byte_compatible_with_go() {
        let f = fixture();
        assert!(f
            .store
            .reserve("  dummy\n ", "eth0", ipa("10.1.2.2"), 0)
            .unwrap());
        assert!(f
            .store
            .reserve("dummy", "eth0", ipa("2001:DB8:1::2"), 1)
            .unwrap());
        assert_eq!(f.read("10.1.2.2"), "dummy\r\neth0");
        assert_eq!(f.read("2001:db8:1::2"), "dummy\r\neth0");
        assert_eq!(f.read("last_reserved_ip.0"), "10.1.2.2");
        assert_eq!(f.read("last_reserved_ip.1"), "2001:db8:1::2");
        assert_eq!(mode(&f.file("10.1.2.2")), 0o600 & !umask());
        assert_eq!(mode(&f.file("last_reserved_ip.0")), 0o600 & !umask());
        assert_eq!(mode(&f.file("lock")), 0o750 & !umask());
        assert_eq!(mode(&f.dir.path().join("net")), 0o755 & !umask());
        assert_eq!(std::fs::metadata(f.file("lock")).unwrap().size(), 0);
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(f.dir.path().join("net"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        // Mapped addresses are stored under their IPv4 name.
        assert!(!f
            .store
            .reserve("x", "eth0", ipa("::ffff:10.1.2.2"), 0)
            .unwrap());
    }

    fn umask() -> u32 {
        // Read the umask without changing it for good.
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(old);
        old.bits()
    }

    #[test]
    fn reserve_is_exclusive() {
        let f = fixture();
        assert!(f.store.reserve("a", "eth0", ipa("10.0.0.2"), 0).unwrap());
        assert!(!f.store.reserve("b", "eth0", ipa("10.0.0.2"), 0).unwrap());
        assert_eq!(f.read("10.0.0.2"), "a\r\neth0");
    }

    #[test]
    fn planted_symlinks_are_not_followed() {
        let f = fixture();
        let victim = f.dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, f.file("10.0.0.2")).unwrap();
        std::os::unix::fs::symlink(&victim, f.file("last_reserved_ip.0")).unwrap();
        // The link counts as taken; the next address is used instead.
        assert!(!f.store.reserve("a", "eth0", ipa("10.0.0.2"), 0).unwrap());
        assert!(f.store.reserve("a", "eth0", ipa("10.0.0.3"), 0).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // The cursor link was replaced, not written through.
        assert!(!f
            .file("last_reserved_ip.0")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(f.read("last_reserved_ip.0"), "10.0.0.3");
        // A link whose target holds our key is not ours to release.
        std::fs::write(&victim, "a\r\neth0").unwrap();
        assert_eq!(f.store.release_by_id("a", "eth0").unwrap(), 1);
        assert!(f.exists("10.0.0.2"));
        assert!(victim.exists());
    }

    #[test]
    fn reservation_is_never_half_written() {
        let f = fixture();
        let s = &f.store;
        // A scratch file left by a killed plugin (other content, mode 0644)
        // is reused; a planted symlink in its place is replaced, not followed.
        std::fs::write(f.file(RESERVE_SCRATCH), "stale-id\r\neth9 and more").unwrap();
        assert!(s.reserve("c1", "eth0", ipa("10.0.0.2"), 0).unwrap());
        assert_eq!(f.read("10.0.0.2"), "c1\r\neth0");
        assert!(!f.exists(RESERVE_SCRATCH));
        let victim = f.dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, f.file(RESERVE_SCRATCH)).unwrap();
        assert!(s.reserve("c2", "eth0", ipa("10.0.0.3"), 0).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(f.read("10.0.0.3"), "c2\r\neth0");
        assert_eq!(mode(&f.file("10.0.0.3")), 0o600 & !umask());
        // Taken: refused, the holder's file untouched, no scratch left.
        assert!(!s.reserve("c3", "eth0", ipa("10.0.0.2"), 0).unwrap());
        assert_eq!(f.read("10.0.0.2"), "c1\r\neth0");
        assert!(!f.exists(RESERVE_SCRATCH));
        // The scratch file is never taken for a reservation.
        std::fs::write(f.file(RESERVE_SCRATCH), "c9\r\neth0").unwrap();
        assert!(s.get_by_id("c9", "eth0").unwrap().is_empty());
    }

    #[test]
    fn symlinked_network_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("net")).unwrap();
        let e = Store::open(dir.path(), "net").unwrap_err();
        assert!(e.msg().contains("is a symlink"), "{e}");
        assert_eq!(e.code(), 5);
        assert!(Store::open_existing(dir.path(), "net").is_err());
        assert!(std::fs::read_dir(&real).unwrap().next().is_none());
    }

    #[test]
    fn bad_network_names() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", ".", "..", "a/b", "../x"] {
            let e = Store::open(dir.path(), name).unwrap_err();
            assert_eq!(e.code(), 7, "{name:?}");
        }
    }

    #[test]
    fn open_existing_does_not_create() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Store::open_existing(dir.path(), "net").unwrap().is_none());
        assert!(Store::open_existing(&dir.path().join("nope"), "net")
            .unwrap()
            .is_none());
        assert!(!dir.path().join("net").exists());
    }

    #[test]
    fn lock_is_an_exclusive_flock_on_the_lock_file() {
        let f = fixture();
        let other = File::open(f.file("lock")).unwrap();
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, -1);
        assert_eq!(Errno::last(), Errno::EWOULDBLOCK);
        drop(f.store);
        // SAFETY: as above.
        let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0);
    }

    #[test]
    fn non_address_files_are_ignored() {
        let f = fixture();
        // Content that would match, in files that are not reservations.
        for name in ["notes", ".hidden", "last_reserved_ip.7", "10.0.0.300"] {
            std::fs::write(f.file(name), "c1\r\neth0").unwrap();
        }
        std::fs::create_dir(f.file("10.0.0.9")).unwrap();
        std::fs::write(f.file("10.0.0.2"), "c1\r\neth0").unwrap();
        let names: Vec<String> = f
            .store
            .ip_names()
            .unwrap()
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(names, ["10.0.0.2", "10.0.0.9"]);
        assert_eq!(
            f.store.get_by_id("c1", "eth0").unwrap(),
            vec![ipa("10.0.0.2")]
        );
        assert_eq!(f.store.release_by_id("c1", "eth0").unwrap(), 1);
        for name in [
            "notes",
            ".hidden",
            "last_reserved_ip.7",
            "10.0.0.300",
            "10.0.0.9",
            "lock",
        ] {
            assert!(f.exists(name), "{name}");
        }
        // A container whose ID looks like an address does not take the
        // cursor file with it (Go's legacy fallback would).
        std::fs::write(f.file("last_reserved_ip.0"), "10.0.0.5").unwrap();
        assert_eq!(f.store.release_by_id("10.0.0.5", "eth0").unwrap(), 0);
        assert!(f.exists("last_reserved_ip.0"));
    }

    #[test]
    fn release_prefers_attachment_then_legacy() {
        let f = fixture();
        std::fs::write(f.file("10.0.0.2"), "c1\r\neth0").unwrap();
        std::fs::write(f.file("10.0.0.3"), "c1\r\neth1").unwrap();
        std::fs::write(f.file("10.0.0.4"), "c1").unwrap();
        std::fs::write(f.file("10.0.0.5"), "  c2 \n").unwrap();
        assert!(f.store.find_by_id("c1", "eth0").unwrap());
        assert_eq!(f.store.release_by_id("c1", "eth0").unwrap(), 1);
        assert!(!f.exists("10.0.0.2"));
        assert!(f.exists("10.0.0.3") && f.exists("10.0.0.4"));
        // eth2 holds nothing, so the bare-ID file goes.
        assert_eq!(f.store.release_by_id("c1", "eth2").unwrap(), 1);
        assert!(!f.exists("10.0.0.4"));
        // Whitespace around legacy content is ignored.
        assert!(f.store.find_by_id(" c2", "eth0").unwrap());
        assert_eq!(f.store.release_by_id("c2", "eth0").unwrap(), 1);
        assert_eq!(f.store.release_by_id("unknown", "eth0").unwrap(), 0);
        assert!(!f.store.find_by_id("unknown", "eth0").unwrap());
    }

    #[test]
    fn release_ip_checks_the_holder() {
        let f = fixture();
        std::fs::write(f.file("10.0.0.2"), "c1\r\neth0").unwrap();
        f.store.release_ip(ipa("10.0.0.2"), "c2", "eth0").unwrap();
        assert!(f.exists("10.0.0.2"));
        f.store.release_ip(ipa("10.0.0.2"), "c1", "eth0").unwrap();
        assert!(!f.exists("10.0.0.2"));
        f.store.release_ip(ipa("10.0.0.2"), "c1", "eth0").unwrap();
    }

    #[test]
    fn last_reserved_ip_parsing() {
        let f = fixture();
        assert_eq!(f.store.last_reserved_ip(0), None);
        std::fs::write(f.file("last_reserved_ip.0"), "10.0.0.9").unwrap();
        assert_eq!(f.store.last_reserved_ip(0), Some(ipa("10.0.0.9")));
        std::fs::write(f.file("last_reserved_ip.0"), "garbage").unwrap();
        assert_eq!(f.store.last_reserved_ip(0), None);
        std::fs::write(f.file("last_reserved_ip.1"), "").unwrap();
        assert_eq!(f.store.last_reserved_ip(1), None);
    }

    // Ported from the GC tests of Go's pending host-local GC change
    // (backend/disk/gc_test.go).
    #[test]
    fn gc_releases_reservations_not_in_the_valid_set() {
        let f = fixture();
        f.store
            .reserve("keep-me", "eth0", ipa("10.0.0.1"), 0)
            .unwrap();
        f.store.reserve("gone", "eth0", ipa("10.0.0.2"), 0).unwrap();
        let released = f.store.gc(&[att("keep-me", "eth0")]).unwrap();
        assert_eq!(released, vec![ipa("10.0.0.2")]);
        assert!(f.exists("10.0.0.1"));
        assert!(!f.exists("10.0.0.2"));
    }

    #[test]
    fn gc_matches_the_interface_too() {
        let f = fixture();
        f.store
            .reserve("twoif", "eth0", ipa("10.0.0.1"), 0)
            .unwrap();
        f.store
            .reserve("twoif", "eth1", ipa("10.0.0.2"), 0)
            .unwrap();
        f.store.gc(&[att("twoif", "eth0")]).unwrap();
        assert!(f.exists("10.0.0.1"));
        assert!(!f.exists("10.0.0.2"));
    }

    #[test]
    fn gc_with_nothing_valid_releases_all_but_bookkeeping() {
        let f = fixture();
        f.store.reserve("a", "eth0", ipa("10.0.0.1"), 0).unwrap();
        f.store.reserve("b", "eth0", ipa("10.0.0.2"), 0).unwrap();
        std::fs::write(f.file("notes"), "").unwrap();
        assert_eq!(f.store.gc(&[]).unwrap().len(), 2);
        assert!(!f.exists("10.0.0.1") && !f.exists("10.0.0.2"));
        assert!(f.exists("lock"));
        assert!(f.exists("last_reserved_ip.0"));
        assert!(f.exists("notes"));
        // The freed address can be reserved again.
        assert!(f
            .store
            .reserve("newcomer", "eth0", ipa("10.0.0.1"), 0)
            .unwrap());
    }

    #[test]
    fn gc_understands_legacy_reservations() {
        let f = fixture();
        std::fs::write(f.file("10.0.0.9"), "legacy-id").unwrap();
        f.store.gc(&[att("legacy-id", "eth0")]).unwrap();
        assert!(f.exists("10.0.0.9"));
        f.store.gc(&[att("someone-else", "eth0")]).unwrap();
        assert!(!f.exists("10.0.0.9"));
    }

    #[test]
    fn gc_keeps_unreadable_files() {
        let f = fixture();
        let victim = f.dir.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        std::os::unix::fs::symlink(&victim, f.file("10.0.0.3")).unwrap();
        f.store.gc(&[]).unwrap();
        assert!(f.exists("10.0.0.3"));
        assert!(victim.exists());
    }

    #[test]
    fn probe_writable_leaves_nothing() {
        let f = fixture();
        f.store.probe_writable().unwrap();
        let count = std::fs::read_dir(f.dir.path().join("net")).unwrap().count();
        assert_eq!(count, 1); // lock
    }
}
