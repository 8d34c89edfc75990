//! `weft install`: what kube-flannel's init containers do with `cp`, without
//! a shell or coreutils in the image.
//!
//! - `weft install [--plugins LIST] DIR` puts the running binary in DIR as
//!   `flannel` (upstream's install-cni-plugin container installs only that
//!   one plugin: flannel delegates to the node's own bridge, host-local and
//!   portmap). With `--plugins`, DIR/weft is the file and `flannel` plus each
//!   listed role become relative symlinks to it, as `weft link` makes them.
//! - `weft install --file SRC DEST` copies one file (the conflist), like
//!   upstream's `install-conf SRC DEST`.
//!
//! Every entry is written under a temporary name in its own directory and
//! renamed over the old one: rename(2) is atomic, so a kubelet exec'ing
//! `/opt/cni/bin/flannel` (or a runtime reading the conflist) at that moment
//! sees the old file or the new one, never a half-written file, and writing
//! over a busy executable cannot fail with ETXTBSY.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{role, ROLES};

/// The running executable. Reading this rather than the path it was run
/// as still gives our own bytes if that path was replaced meanwhile.
pub const SELF_EXE: &str = "/proc/self/exe";

/// Mode of an installed binary.
pub const BIN_MODE: u32 = 0o755;
/// Mode of an installed `--file` (a CNI config is not secret).
pub const FILE_MODE: u32 = 0o644;

/// A failed install step; each names the path it was about.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("{} is a directory, not replacing it", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{} has no file name", path.display())]
    NoFileName { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot replace {}: {source}", path.display())]
    Rename { path: PathBuf, source: io::Error },
}

/// What one entry should become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A regular file with SRC's bytes and this mode.
    File { src: PathBuf, mode: u32 },
    /// A symbolic link with this (relative) target.
    Symlink { target: String },
}

/// One entry to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dest: PathBuf,
    pub content: Content,
}

/// What happened to an entry; printed as install.sh prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was there.
    Installed,
    /// The same content (and mode, or link target) was there: not rewritten.
    Unchanged,
    /// Something else was there and was replaced.
    Replaced,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: main prints it as {:<9}, like install.sh.
        f.pad(match self {
            Outcome::Installed => "installed",
            Outcome::Unchanged => "unchanged",
            Outcome::Replaced => "replaced",
        })
    }
}

/// Which plugins `--plugins` names: `all`, or a comma-separated list of
/// role names (`flannel` is always installed anyway).
pub fn parse_plugins(list: &str) -> Result<Vec<&'static str>, String> {
    if list == "all" {
        return Ok(ROLES.iter().map(|r| r.name).collect());
    }
    let mut names: Vec<&'static str> = Vec::new();
    for n in list.split(',').map(str::trim) {
        let r = role(n).ok_or_else(|| {
            format!(
                "{n:?} is not a weft plugin (--plugins takes \"all\" or a comma-separated list of: {})",
                crate::role_names()
            )
        })?;
        if !names.contains(&r.name) {
            names.push(r.name);
        }
    }
    Ok(names)
}

/// The entries of `weft install [--plugins LIST] DIR`, taking the binary
/// from `exe`. Without plugins: DIR/flannel, a copy. With them: DIR/weft, a
/// copy, then `flannel` and the listed roles as symlinks to it (the file
/// first, so no link ever points at nothing).
pub fn plan_binaries(dir: &Path, exe: &Path, plugins: Option<&[&str]>) -> Vec<Entry> {
    let file = |name: &str| Entry {
        dest: dir.join(name),
        content: Content::File {
            src: exe.to_path_buf(),
            mode: BIN_MODE,
        },
    };
    let Some(plugins) = plugins else {
        return vec![file("flannel")];
    };
    let mut entries = vec![file("weft")];
    let mut names = vec!["flannel"];
    names.extend(plugins.iter().copied().filter(|n| *n != "flannel"));
    entries.extend(names.into_iter().map(|name| Entry {
        dest: dir.join(name),
        content: Content::Symlink {
            target: "weft".to_string(),
        },
    }));
    entries
}

/// Installs one entry (creating its directory if needed) and says what it did.
pub fn install(entry: &Entry) -> Result<Outcome, InstallError> {
    let dest = &entry.dest;
    let (dir, name) = split(dest)?;
    fs::create_dir_all(dir).map_err(|source| InstallError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let existing = match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => return Err(InstallError::IsDirectory { path: dest.clone() }),
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(InstallError::Read {
                path: dest.clone(),
                source,
            })
        }
    };
    let tmp = dir.join(format!(".{name}.weft-install.{}", std::process::id()));
    match &entry.content {
        Content::File { src, mode } => {
            let bytes = fs::read(src).map_err(|source| InstallError::Read {
                path: src.clone(),
                source,
            })?;
            if let Some(m) = &existing {
                if m.is_file()
                    && m.permissions().mode() & 0o7777 == *mode
                    && same_bytes(dest, &bytes)
                {
                    return Ok(Outcome::Unchanged);
                }
            }
            write_file(&tmp, &bytes, *mode)?;
        }
        Content::Symlink { target } => {
            if existing.as_ref().is_some_and(|m| m.is_symlink())
                && fs::read_link(dest).is_ok_and(|t| t.as_os_str() == target.as_str())
            {
                return Ok(Outcome::Unchanged);
            }
            remove_stale(&tmp)?;
            std::os::unix::fs::symlink(target, &tmp).map_err(|source| InstallError::Write {
                path: tmp.clone(),
                source,
            })?;
        }
    }
    fs::rename(&tmp, dest).map_err(|source| {
        // Best effort: the rename error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
        InstallError::Rename {
            path: dest.clone(),
            source,
        }
    })?;
    sync_dir(dir)?;
    Ok(if existing.is_some() {
        Outcome::Replaced
    } else {
        Outcome::Installed
    })
}

fn split(dest: &Path) -> Result<(&Path, &str), InstallError> {
    let no_name = || InstallError::NoFileName {
        path: dest.to_path_buf(),
    };
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(no_name)?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// Whether `path` holds exactly `bytes` (an unreadable file does not).
fn same_bytes(path: &Path, bytes: &[u8]) -> bool {
    fs::read(path).is_ok_and(|old| old == bytes)
}

/// A temporary left by an install that was killed half-way (same pid in
/// another container run) would make create_new fail.
fn remove_stale(tmp: &Path) -> Result<(), InstallError> {
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(InstallError::Write {
            path: tmp.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes `bytes` to a new file `tmp` with `mode` (set explicitly: the
/// umask must not strip the execute bits), flushed to disk before the
/// rename so a crash cannot leave an empty plugin under the final name.
fn write_file(tmp: &Path, bytes: &[u8], mode: u32) -> Result<(), InstallError> {
    remove_stale(tmp)?;
    let err = |source| InstallError::Write {
        path: tmp.to_path_buf(),
        source,
    };
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.sync_all()
        });
    written.map_err(|e| {
        let _ = fs::remove_file(tmp);
        err(e)
    })
}

/// Makes the rename itself durable.
fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| InstallError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plugins_list_is_checked_and_deduplicated() {
        assert_eq!(
            parse_plugins("bridge,portmap,bridge").unwrap(),
            ["bridge", "portmap"]
        );
        assert_eq!(parse_plugins("all").unwrap().len(), ROLES.len());
        let e = parse_plugins("bridge,nosuch").unwrap_err();
        assert!(e.contains("\"nosuch\" is not a weft plugin"), "{e}");
        assert!(parse_plugins("").is_err());
    }

    #[test]
    fn plan_without_plugins_is_flannel_alone() {
        let plan = plan_binaries(Path::new("/d"), Path::new("/x"), None);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].dest, Path::new("/d/flannel"));
        assert!(matches!(
            plan[0].content,
            Content::File { mode: BIN_MODE, .. }
        ));
    }

    #[test]
    fn plan_with_plugins_links_them_to_weft_after_the_file() {
        let plan = plan_binaries(
            Path::new("/d"),
            Path::new("/x"),
            Some(&["bridge", "flannel"]),
        );
        let dests: Vec<_> = plan.iter().map(|e| e.dest.to_str().unwrap()).collect();
        assert_eq!(dests, ["/d/weft", "/d/flannel", "/d/bridge"]);
        assert!(matches!(plan[0].content, Content::File { .. }));
        assert!(plan[1..].iter().all(|e| e.content
            == Content::Symlink {
                target: "weft".into()
            }));
    }
}
