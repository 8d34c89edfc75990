//! Errors of the IPAM library, each mapped to a CNI error code.
//!
//! The library does not depend on weft-cni-core; the host-local binary maps
//! these onto `CniError` with [`IpamError::code`] and [`IpamError::msg`].

use std::io;
use std::path::Path;

/// An IPAM failure. The message texts follow the Go host-local plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// Input that is not JSON, or a key holding the wrong JSON type (code 6).
    #[error("{0}")]
    Decode(String),
    /// A well-formed configuration that is semantically invalid (code 7).
    #[error("{0}")]
    InvalidConfig(String),
    /// A bad `CNI_ARGS` value (code 4).
    #[error("{0}")]
    InvalidEnv(String),
    /// A filesystem failure on the data directory or resolv.conf (code 5).
    #[error("{0}")]
    Io(String),
    /// A failure that is expected to go away on its own (code 11).
    #[error("{0}")]
    TryAgainLater(String),
    /// STATUS: the plugin cannot serve ADDs right now (code 50).
    #[error("{0}")]
    NotAvailable(String),
    /// Allocation and lookup failures that Go reports as plain errors,
    /// which skel turns into code 999.
    #[error("{0}")]
    Failed(String),
}

/// Result alias of the IPAM library.
pub type Result<T> = std::result::Result<T, IpamError>;

impl IpamError {
    /// The CNI error code this error is reported with.
    pub fn code(&self) -> u32 {
        match self {
            IpamError::Decode(_) => 6,
            IpamError::InvalidConfig(_) => 7,
            IpamError::InvalidEnv(_) => 4,
            IpamError::Io(_) => 5,
            IpamError::TryAgainLater(_) => 11,
            IpamError::NotAvailable(_) => 50,
            IpamError::Failed(_) => 999,
        }
    }

    /// The message without the code.
    pub fn msg(&self) -> &str {
        match self {
            IpamError::Decode(m)
            | IpamError::InvalidConfig(m)
            | IpamError::InvalidEnv(m)
            | IpamError::Io(m)
            | IpamError::TryAgainLater(m)
            | IpamError::NotAvailable(m)
            | IpamError::Failed(m) => m,
        }
    }

    /// Prefixes the message with `ctx: `, keeping the kind.
    pub fn context(self, ctx: &str) -> Self {
        let wrap = |m: String| format!("{ctx}: {m}");
        match self {
            IpamError::Decode(m) => IpamError::Decode(wrap(m)),
            IpamError::InvalidConfig(m) => IpamError::InvalidConfig(wrap(m)),
            IpamError::InvalidEnv(m) => IpamError::InvalidEnv(wrap(m)),
            IpamError::Io(m) => IpamError::Io(wrap(m)),
            IpamError::TryAgainLater(m) => IpamError::TryAgainLater(wrap(m)),
            IpamError::NotAvailable(m) => IpamError::NotAvailable(wrap(m)),
            IpamError::Failed(m) => IpamError::Failed(wrap(m)),
        }
    }

    /// An I/O error on `path`, worded like Go's `*PathError`
    /// ("open /x: no such file or directory").
    pub(crate) fn io(op: &str, path: &Path, err: &io::Error) -> Self {
        let msg = format!("{op} {}: {}", path.display(), describe_io(err));
        if is_transient(err) {
            IpamError::TryAgainLater(msg)
        } else {
            IpamError::Io(msg)
        }
    }

    /// Same as [`IpamError::io`] for a nix errno.
    pub(crate) fn errno(op: &str, path: &Path, err: nix::errno::Errno) -> Self {
        IpamError::io(op, path, &io::Error::from(err))
    }
}

/// Errors a retry can cure without anybody fixing anything.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN | libc::EINTR | libc::ENOMEM | libc::EBUSY | libc::ENFILE | libc::EMFILE)
    )
}

/// The errno text in Go's lower-case style, without Rust's "(os error N)".
pub(crate) fn describe_io(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(n) => {
            let desc = nix::errno::Errno::from_raw(n).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => desc.to_string(),
            }
        }
        None => err.to_string(),
    }
}
