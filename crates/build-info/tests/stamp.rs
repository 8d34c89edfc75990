//! The stamped commit is the one HEAD names (cargo test rebuilds first, and
//! build.rs reruns when HEAD moves), and the version line has its shape.

use std::process::Command;

use weft_build_info::{version_line, COMMIT, VERSION};

fn head() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn commit_is_heads() {
    match head() {
        Some(full) => {
            let bare = COMMIT.strip_suffix("-dirty").unwrap_or(COMMIT);
            assert_eq!(bare, &full[..12], "stamped {COMMIT}, HEAD is {full}");
        }
        None => assert_eq!(COMMIT, "unknown"),
    }
}

/// `[workspace.package] version` of the root Cargo.toml, read as text.
fn workspace_version() -> Option<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let text = std::fs::read_to_string(root).ok()?;
    let section = text.split("[workspace.package]").nth(1)?;
    let line = section.lines().find(|l| l.starts_with("version"))?;
    Some(line.split('"').nth(1)?.to_string())
}

#[test]
fn version_line_names_weft_version_and_commit() {
    assert_eq!(Some(VERSION.to_string()), workspace_version());
    assert_eq!(
        version_line("bridge"),
        format!("bridge (weft) {VERSION} (commit {COMMIT})")
    );
    let hex12 = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let bare = COMMIT.strip_suffix("-dirty").unwrap_or(COMMIT);
    assert!(bare == "unknown" || hex12(bare), "commit {COMMIT:?}");
}
