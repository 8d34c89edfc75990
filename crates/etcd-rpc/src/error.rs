//! The crate's one error type.

use std::error::Error as _;

/// What can go wrong talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no etcd endpoints given")]
    NoEndpoints,
    #[error("invalid etcd endpoint {endpoint:?}: {detail}")]
    Endpoint { endpoint: String, detail: String },
    #[error("etcd authentication as user {user:?} failed: {detail}")]
    Auth { user: String, detail: String },
    /// A failed RPC. Boxed: `tonic::Status` is large.
    #[error("{}", describe(.0))]
    Rpc(Box<tonic::Status>),
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        Error::Rpc(Box::new(s))
    }
}

impl Error {
    /// The gRPC status of a failed RPC.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Error::Rpc(s) => Some(s),
            _ => None,
        }
    }
}

/// A status as one line: the code, etcd's message and, for transport
/// failures, the causes. `tonic::Status`'s own Display prints metadata but
/// not the causes, and a TLS failure's only useful words ("invalid peer
/// certificate: UnknownIssuer") may be in the causes.
pub fn describe(s: &tonic::Status) -> String {
    let mut out = format!("etcd {:?}: {}", s.code(), s.message());
    let mut causes = Vec::new();
    let mut cause = s.source();
    while let Some(c) = cause {
        causes.push(c.to_string());
        cause = c.source();
    }
    // tonic often copies the innermost cause into the message already; the
    // wrappers around it ("transport error") then add nothing.
    if causes
        .last()
        .is_some_and(|inner| s.message().contains(inner.as_str()))
    {
        return out;
    }
    for c in causes {
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// Text of an error and its causes, for errors we fold into strings.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_error_names_code_and_message() {
        let e = Error::from(tonic::Status::unauthenticated(
            "etcdserver: invalid auth token",
        ));
        assert_eq!(
            e.to_string(),
            "etcd Unauthenticated: etcdserver: invalid auth token"
        );
        assert!(e.status().is_some());
        assert!(Error::NoEndpoints.status().is_none());
    }

    #[test]
    fn transport_cause_is_named_once() {
        let tls = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let s = tonic::Status::from_error(Box::new(tls));
        assert_eq!(
            describe(&s),
            "etcd Unknown: invalid peer certificate: UnknownIssuer"
        );
        // A cause the message lacks is appended.
        let mut s = tonic::Status::unavailable("transport error");
        s.set_source(std::sync::Arc::new(std::io::Error::other(
            "connection refused",
        )));
        assert_eq!(
            describe(&s),
            "etcd Unavailable: transport error: connection refused"
        );
    }
}
