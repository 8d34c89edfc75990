//! What every weft binary says about its build: the workspace version and
//! the git commit it was built from (see build.rs), so a bug report or a
//! node's `--version` names the exact source.

/// The workspace version (Cargo.toml `[workspace.package]`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// "1a2b3c4d5e6f", "1a2b3c4d5e6f-dirty", or "unknown" when built outside git.
pub const COMMIT: &str = env!("WEFT_GIT_COMMIT");

/// The `--version` line of binary `name`: "bridge (weft) 0.1.0 (commit 1a2b3c4d5e6f)".
pub fn version_line(name: &str) -> String {
    format!("{name} (weft) {VERSION} (commit {COMMIT})")
}
