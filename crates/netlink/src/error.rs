//! Errors of the netlink wrapper.
//!
//! Every message names the operation and the object it was applied to, e.g.
//! `add veth vethabc123 (peer eth0): File exists`, so callers can wrap it
//! once more (Go style) without losing what actually failed.

use std::fmt;
use std::io;

/// Error of any operation in this crate.
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    /// The object does not exist (ENODEV, or ENOENT/ESRCH/EADDRNOTAVAIL on a
    /// lookup or delete; a missing netns path). The string is the full
    /// message.
    #[error("{0}")]
    NotFound(String),
    /// The object already exists (EEXIST). The string is the full message.
    #[error("{0}")]
    Exists(String),
    /// The path exists but is not a network namespace. Full message.
    #[error("{0}")]
    NotNetns(String),
    /// Local I/O failure (socket, /proc, thread spawn). The error's text
    /// already carries the operation.
    #[error("{0}")]
    Io(io::Error),
    /// Any other error the kernel answered with. `op` names the operation
    /// (plus the kernel's extended-ack text in parentheses when it sent
    /// one); `errno` is positive.
    #[error("{op}: {}", errno_desc(*errno))]
    Kernel { op: String, errno: i32 },
}

impl NlError {
    /// True for [`NlError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, NlError::NotFound(_))
    }

    /// True for [`NlError::Exists`].
    pub fn is_exists(&self) -> bool {
        matches!(self, NlError::Exists(_))
    }

    /// The errno behind a kernel error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NlError::Kernel { errno, .. } => Some(*errno),
            NlError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// Wrap a local I/O error, naming the operation.
    pub(crate) fn io(op: impl fmt::Display, e: io::Error) -> NlError {
        NlError::Io(io::Error::new(e.kind(), format!("{op}: {e}")))
    }
}

/// The C library's strerror(3) text ("File exists"), without the
/// " (os error N)" suffix Rust's io::Error adds.
pub(crate) fn errno_desc(errno: i32) -> String {
    let mut text = io::Error::from_raw_os_error(errno).to_string();
    if let Some(at) = text.rfind(" (os error ") {
        text.truncate(at);
    }
    text
}

/// How an errno of a request is classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Create or modify: only EEXIST and ENODEV are special.
    Change,
    /// Lookup or delete: "no such object" errnos become NotFound.
    Lookup,
}

/// A failed request before it is given its operation text.
#[derive(Debug)]
pub(crate) enum RawError {
    /// The kernel answered with a negative errno (stored positive here).
    Errno { errno: i32, ext_ack: Option<String> },
    /// The socket failed.
    Io(io::Error),
    /// The answer could not be decoded.
    Decode(String),
}

impl RawError {
    /// The kernel's errno, if the kernel answered with one.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            RawError::Errno { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Turn into an [`NlError`] whose message starts with `op`.
    pub(crate) fn into_nl(self, op: impl fmt::Display, kind: Kind) -> NlError {
        match self {
            RawError::Io(e) => NlError::io(op, e),
            RawError::Decode(msg) => NlError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{op}: decode netlink answer: {msg}"),
            )),
            RawError::Errno { errno, ext_ack } => {
                let op = match ext_ack {
                    Some(text) => format!("{op} ({text})"),
                    None => op.to_string(),
                };
                classify(op, errno, kind)
            }
        }
    }
}

fn classify(op: String, errno: i32, kind: Kind) -> NlError {
    let not_found = match kind {
        Kind::Change => errno == libc::ENODEV,
        Kind::Lookup => matches!(
            errno,
            libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL
        ),
    };
    if errno == libc::EEXIST {
        NlError::Exists(format!("{op}: {}", errno_desc(errno)))
    } else if not_found {
        NlError::NotFound(format!("{op}: {}", errno_desc(errno)))
    } else {
        NlError::Kernel { op, errno }
    }
}

pub type Result<T> = std::result::Result<T, NlError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(errno: i32) -> RawError {
        RawError::Errno {
            errno,
            ext_ack: None,
        }
    }

    #[test]
    fn exists_message_names_op() {
        let e = raw(libc::EEXIST).into_nl("add veth vethabc123 (peer eth0)", Kind::Change);
        assert!(e.is_exists());
        assert_eq!(
            e.to_string(),
            "add veth vethabc123 (peer eth0): File exists"
        );
    }

    #[test]
    fn enoent_depends_on_kind() {
        assert!(raw(libc::ENOENT)
            .into_nl("del neigh", Kind::Lookup)
            .is_not_found());
        let e = raw(libc::ENOENT).into_nl("add route", Kind::Change);
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert_eq!(e.to_string(), "add route: No such file or directory");
        assert!(raw(libc::ENODEV)
            .into_nl("set link 7 up", Kind::Change)
            .is_not_found());
    }

    #[test]
    fn ext_ack_is_kept() {
        let e = RawError::Errno {
            errno: libc::EINVAL,
            ext_ack: Some("Nexthop has invalid gateway".into()),
        }
        .into_nl("add route 10.0.0.0/8 via 1.2.3.4", Kind::Change);
        assert_eq!(
            e.to_string(),
            "add route 10.0.0.0/8 via 1.2.3.4 (Nexthop has invalid gateway): Invalid argument"
        );
    }
}
