//! CNI error type, with the spec's well-known codes and Go's JSON layout.

use serde_json::{Map, Value};

use crate::gojson;

/// An error a plugin reports to the runtime.
///
/// The variant fixes the CNI error code; `Plugin` carries any other code, an
/// error that needs `details`, or an error relayed from a delegate plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CniError {
    #[error("{0}")]
    IncompatibleVersion(String),
    #[error("{0}")]
    UnsupportedField(String),
    #[error("{0}")]
    UnknownContainer(String),
    #[error("{0}")]
    InvalidEnv(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Decode(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidNetns(String),
    #[error("{0}")]
    TryAgainLater(String),
    #[error("{0}")]
    NotAvailable(String),
    #[error("{0}")]
    NotAvailableLosing(String),
    /// Go's `types.Error.Error()`: the message, then `; details` when set.
    #[error("{}", plugin_display(.msg, .details))]
    Plugin {
        code: u32,
        msg: String,
        details: String,
    },
    #[error("{0}")]
    Internal(String),
}

fn plugin_display(msg: &str, details: &str) -> String {
    if details.is_empty() {
        msg.to_string()
    } else {
        format!("{msg}; {details}")
    }
}

pub type Result<T> = std::result::Result<T, CniError>;

/// Well-known CNI error codes (SPEC.md "Error" section).
pub mod codes {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const INVALID_NETNS: u32 = 8;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    pub const NOT_AVAILABLE_LOSING: u32 = 51;
    pub const INTERNAL: u32 = 999;
}

impl CniError {
    /// An error with a `details` string (always the `Plugin` variant, which is
    /// the only one carrying details).
    pub fn with_details(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError::Plugin {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// Builds the matching variant for a code; codes without a variant, and
    /// any error with details, become `Plugin`.
    pub fn from_code(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        let msg = msg.into();
        let details = details.into();
        if !details.is_empty() {
            return CniError::Plugin { code, msg, details };
        }
        match code {
            codes::INCOMPATIBLE_VERSION => CniError::IncompatibleVersion(msg),
            codes::UNSUPPORTED_FIELD => CniError::UnsupportedField(msg),
            codes::UNKNOWN_CONTAINER => CniError::UnknownContainer(msg),
            codes::INVALID_ENV => CniError::InvalidEnv(msg),
            codes::IO => CniError::Io(msg),
            codes::DECODE => CniError::Decode(msg),
            codes::INVALID_CONFIG => CniError::InvalidConfig(msg),
            codes::INVALID_NETNS => CniError::InvalidNetns(msg),
            codes::TRY_AGAIN_LATER => CniError::TryAgainLater(msg),
            codes::NOT_AVAILABLE => CniError::NotAvailable(msg),
            codes::NOT_AVAILABLE_LOSING => CniError::NotAvailableLosing(msg),
            codes::INTERNAL => CniError::Internal(msg),
            _ => CniError::Plugin { code, msg, details },
        }
    }

    pub fn code(&self) -> u32 {
        match self {
            CniError::IncompatibleVersion(_) => codes::INCOMPATIBLE_VERSION,
            CniError::UnsupportedField(_) => codes::UNSUPPORTED_FIELD,
            CniError::UnknownContainer(_) => codes::UNKNOWN_CONTAINER,
            CniError::InvalidEnv(_) => codes::INVALID_ENV,
            CniError::Io(_) => codes::IO,
            CniError::Decode(_) => codes::DECODE,
            CniError::InvalidConfig(_) => codes::INVALID_CONFIG,
            CniError::InvalidNetns(_) => codes::INVALID_NETNS,
            CniError::TryAgainLater(_) => codes::TRY_AGAIN_LATER,
            CniError::NotAvailable(_) => codes::NOT_AVAILABLE,
            CniError::NotAvailableLosing(_) => codes::NOT_AVAILABLE_LOSING,
            CniError::Plugin { code, .. } => *code,
            CniError::Internal(_) => codes::INTERNAL,
        }
    }

    fn msg_ref(&self) -> &str {
        match self {
            CniError::IncompatibleVersion(m)
            | CniError::UnsupportedField(m)
            | CniError::UnknownContainer(m)
            | CniError::InvalidEnv(m)
            | CniError::Io(m)
            | CniError::Decode(m)
            | CniError::InvalidConfig(m)
            | CniError::InvalidNetns(m)
            | CniError::TryAgainLater(m)
            | CniError::NotAvailable(m)
            | CniError::NotAvailableLosing(m)
            | CniError::Internal(m) => m,
            CniError::Plugin { msg, .. } => msg,
        }
    }

    pub fn msg(&self) -> String {
        self.msg_ref().to_string()
    }

    pub fn details(&self) -> String {
        match self {
            CniError::Plugin { details, .. } => details.clone(),
            _ => String::new(),
        }
    }

    /// Prefixes the message with `ctx: `, keeping code and details.
    pub fn context(self, ctx: &str) -> Self {
        let prefix = |m: String| format!("{ctx}: {m}");
        match self {
            CniError::IncompatibleVersion(m) => CniError::IncompatibleVersion(prefix(m)),
            CniError::UnsupportedField(m) => CniError::UnsupportedField(prefix(m)),
            CniError::UnknownContainer(m) => CniError::UnknownContainer(prefix(m)),
            CniError::InvalidEnv(m) => CniError::InvalidEnv(prefix(m)),
            CniError::Io(m) => CniError::Io(prefix(m)),
            CniError::Decode(m) => CniError::Decode(prefix(m)),
            CniError::InvalidConfig(m) => CniError::InvalidConfig(prefix(m)),
            CniError::InvalidNetns(m) => CniError::InvalidNetns(prefix(m)),
            CniError::TryAgainLater(m) => CniError::TryAgainLater(prefix(m)),
            CniError::NotAvailable(m) => CniError::NotAvailable(prefix(m)),
            CniError::NotAvailableLosing(m) => CniError::NotAvailableLosing(prefix(m)),
            CniError::Internal(m) => CniError::Internal(prefix(m)),
            CniError::Plugin { code, msg, details } => CniError::Plugin {
                code,
                msg: prefix(msg),
                details,
            },
        }
    }

    /// The error as a JSON value in Go's field order (`details` omitted when empty).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), Value::from(self.code()));
        m.insert("msg".into(), Value::from(self.msg_ref()));
        let details = self.details();
        if !details.is_empty() {
            m.insert("details".into(), Value::from(details));
        }
        Value::Object(m)
    }

    /// What Go's `(*types.Error).Print` writes: `json.MarshalIndent(e, "", "    ")`,
    /// no trailing newline.
    pub fn to_json(&self) -> String {
        gojson::to_string_indent(&self.to_value())
    }
}

/// The errors of a best-effort verb (DEL, GC) that keeps going past failures, as
/// netavark's `NetavarkErrorList`. None is lost: the report keeps the first error's
/// code and message (the one the runtime acts on) and lists every other one in
/// `details`, after the first error's own details.
#[derive(Debug, Default)]
pub struct ErrorList(Vec<CniError>);

impl ErrorList {
    pub fn new() -> Self {
        ErrorList(Vec::new())
    }

    pub fn push(&mut self, e: CniError) {
        self.0.push(e);
    }

    /// Records the error of a step, if it failed.
    pub fn check(&mut self, r: Result<()>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }

    /// Puts an error ahead of those recorded so far (one that happened first).
    pub fn push_front(&mut self, e: CniError) {
        self.0.insert(0, e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok` when nothing failed, the error itself when one step failed, and for
    /// more: the first one's code and message, with `details` listing the rest as
    /// `<message> (code N)`, separated by `"; "`.
    pub fn into_result(self) -> Result<()> {
        let mut errs = self.0.into_iter();
        let Some(first) = errs.next() else {
            return Ok(());
        };
        let rest: Vec<String> = errs.map(|e| format!("{e} (code {})", e.code())).collect();
        if rest.is_empty() {
            return Err(first);
        }
        let own = first.details();
        let details = if own.is_empty() {
            rest.join("; ")
        } else {
            format!("{own}; {}", rest.join("; "))
        };
        Err(CniError::with_details(first.code(), first.msg(), details))
    }
}

impl From<std::io::Error> for CniError {
    fn from(e: std::io::Error) -> Self {
        CniError::Io(e.to_string())
    }
}

impl From<serde_json::Error> for CniError {
    fn from(e: serde_json::Error) -> Self {
        CniError::Decode(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_list_keeps_the_first_code_and_lists_the_rest() {
        assert_eq!(ErrorList::new().into_result(), Ok(()));

        let mut one = ErrorList::new();
        one.check(Ok(()));
        one.check(Err(CniError::Io("disk".into())));
        assert_eq!(one.into_result(), Err(CniError::Io("disk".into())));

        let mut many = ErrorList::new();
        many.push(CniError::with_details(50, "ipam down", "dataDir gone"));
        many.push(CniError::Internal(
            "failed to tear down ipMasq: boom".into(),
        ));
        many.push(CniError::Io("no space".into()));
        many.push_front(CniError::InvalidNetns("netns busy".into()));
        assert_eq!(many.len(), 4);
        let e = many.into_result().unwrap_err();
        assert_eq!(e.code(), 8);
        assert_eq!(e.msg(), "netns busy");
        assert_eq!(
            e.details(),
            "ipam down; dataDir gone (code 50); failed to tear down ipMasq: boom (code 999); \
             no space (code 5)"
        );

        // the first error's own details come first
        let mut with_own = ErrorList::new();
        with_own.push(CniError::with_details(7, "bad", "why"));
        with_own.push(CniError::Internal("also".into()));
        let e = with_own.into_result().unwrap_err();
        assert_eq!(
            (e.code(), e.details().as_str()),
            (7, "why; also (code 999)")
        );
    }
}
