//! Errors of the firewall layer.

use crate::names::go_quote;

/// Everything that can go wrong while talking to iptables or nft.
#[derive(Debug, thiserror::Error)]
pub enum FwError {
    /// The binary is not installed (or not where we were told to look).
    #[error("{binary} not found: install it or point {env} at it")]
    MissingBinary {
        /// Name or path we looked for, e.g. `ip6tables`.
        binary: String,
        /// Environment variable that overrides it, e.g. `WEFT_IP6TABLES`.
        env: String,
    },

    /// The binary exists but could not be started.
    #[error("failed to run {command}: {source}")]
    Spawn {
        /// The command line, for the message.
        command: String,
        /// Why exec failed.
        #[source]
        source: std::io::Error,
    },

    /// The command ran and exited non-zero (or was killed).
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// Binary name, e.g. `iptables-restore`.
        binary: String,
        /// The whole command line, arguments quoted where needed.
        command: String,
        /// `exit status 1`, `signal 9`, ...
        status: String,
        /// What the command printed on stderr, trimmed.
        stderr: String,
        /// The text fed on stdin (restore batch, nft script), if any.
        /// Kept for debugging; not part of the message.
        input: Option<String>,
    },

    /// `ipMasqBackend` (or portmap's `backend`) is neither iptables nor nftables.
    #[error("unknown ipmasq backend {}", go_quote(.0))]
    UnknownBackend(String),

    /// An argument that cannot be passed safely: a control character in an
    /// iptables-restore word would end the line and start another command.
    #[error("refusing to pass {} to {binary}: it contains a control character", go_quote(.arg))]
    UnsafeArgument {
        /// Binary it was meant for, e.g. `iptables-restore`.
        binary: String,
        /// The offending argument.
        arg: String,
    },

    /// A command printed something we could not understand.
    #[error("unexpected output from {binary}: {msg}")]
    Parse {
        /// Binary whose output it was.
        binary: String,
        /// What was wrong with it.
        msg: String,
    },

    /// Several best-effort steps failed (teardown, GC). The message joins
    /// them with newlines, as Go does.
    #[error("{}", join_errors(.0))]
    Multiple(Vec<FwError>),
}

impl FwError {
    /// Turns a list of errors into `Ok` (empty), the error itself (one) or
    /// [`FwError::Multiple`].
    pub fn from_list(mut errs: Vec<FwError>) -> Result<(), FwError> {
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(FwError::Multiple(errs)),
        }
    }

    /// Whether iptables gave up waiting for the xtables lock (someone else
    /// held it for the whole `-w` wait). Retrying or probing again would
    /// only wait as long once more.
    pub fn is_lock_timeout(&self) -> bool {
        self.stderr_contains("holding the xtables lock")
            || self.stderr_contains("Stopped waiting after")
    }

    /// Whether the command's stderr contains `needle` (used to recognise
    /// "does not exist" answers).
    pub fn stderr_contains(&self, needle: &str) -> bool {
        match self {
            FwError::Command { stderr, .. } => stderr.contains(needle),
            _ => false,
        }
    }
}

fn join_errors(errs: &[FwError]) -> String {
    errs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
