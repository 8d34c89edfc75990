//! Stamps the git commit the workspace is built from into `WEFT_GIT_COMMIT`
//! ("1a2b3c4d5e6f", "1a2b3c4d5e6f-dirty", or "unknown" outside git), so every
//! binary can say which source it came from.
//!
//! Cargo reruns this only when a watched file changes. Watching the whole
//! tree would rebuild (and re-link with LTO) every binary on any edit, so
//! this watches what moves when the commit does: HEAD (checkout), the branch
//! ref HEAD points to and packed-refs (commit, reset), and the index (every
//! commit and `git add` rewrites it). The "-dirty" mark is therefore as of
//! the last of those events: an unstaged edit made after it is not seen
//! until the next one (scripts/package builds from a clean tree).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(full) => {
            watch_git_files();
            stamp(&full, is_dirty())
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=WEFT_GIT_COMMIT={commit}");
}

/// The first 12 hex digits (git's short form can grow; a fixed width keeps
/// version lines comparable), plus "-dirty" for uncommitted changes.
fn stamp(full: &str, dirty: bool) -> String {
    let short: String = full.chars().take(12).collect();
    if dirty {
        format!("{short}-dirty")
    } else {
        short
    }
}

/// Tracked files differ from HEAD. `--no-optional-locks`: a plain `git
/// status` may refresh and rewrite the index, which is watched, and cargo
/// would then rerun this script on every build.
fn is_dirty() -> bool {
    git(&[
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ])
    .is_some_and(|s| !s.is_empty())
}

fn watch_git_files() {
    let mut paths = vec![git_path("HEAD"), git_path("index"), git_path("packed-refs")];
    // In a worktree HEAD and index are per worktree and refs are shared;
    // --git-path resolves each to where it really is.
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(git_path(&branch));
    }
    // A watched path that does not exist makes cargo rerun every time; a
    // branch ref that is only in packed-refs gets a loose file on the next
    // commit, which also rewrites the (watched) index.
    for p in paths.into_iter().flatten().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

fn git_path(name: &str) -> Option<PathBuf> {
    let p = git(&["rev-parse", "--git-path", name])?;
    // Relative answers are relative to our cwd, the package directory.
    Some(Path::new(&p).to_path_buf())
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}
