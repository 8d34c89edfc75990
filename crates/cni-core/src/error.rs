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
