//! The saved delegate configs: `<dataDir>/<containerID>`, written by ADD, replayed by DEL.
//!
//! Same location and content as Go (so either implementation can DEL what the other added),
//! but written atomically: a crash mid-write leaves the old file or none, never a truncated
//! one that DEL would then have to skip.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `<data_dir>/<container_id>`. The skeleton has validated the ID (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`),
/// so it cannot leave the directory.
pub fn path(data_dir: &Path, container_id: &str) -> PathBuf {
    data_dir.join(container_id)
}

/// Writes `bytes` to `<data_dir>/<container_id>`: directory created 0700, file 0600 (whatever
/// the umask), written to a temporary name in the same directory, fsynced, renamed into place,
/// and the directory fsynced so the rename is durable.
pub fn save(data_dir: &Path, container_id: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let target = path(data_dir, container_id);
    // A leading dot: never a valid container ID, so GC and DEL never take it for one.
    let tmp = data_dir.join(format!(".{container_id}.{}.tmp", std::process::id()));
    let written = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(data_dir);
    Ok(target)
}

fn write_synced(tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Best effort: a failure only weakens durability after a power loss.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The container ID and writer pid of a temporary file name `.<containerID>.<pid>.tmp`.
fn parse_temp_name(name: &str) -> Option<(&str, u32)> {
    let (id, pid) = name
        .strip_prefix('.')?
        .strip_suffix(".tmp")?
        .rsplit_once('.')?;
    let pid = pid.parse().ok()?;
    weft_cni_core::validate_container_id(id).ok()?;
    Some((id, pid))
}

/// Whether the process that writes a temporary file is gone. Without a /proc to ask, every
/// writer counts as alive (nothing is removed).
fn writer_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the temporary files of [`save`] whose writer is gone (an ADD killed between the
/// write and the rename), only `container_id`'s if given. Without this, a crash at that point
/// leaves a file nothing else ever removes. A missing directory has none.
pub fn remove_stale_temps(data_dir: &Path, container_id: Option<&str>) -> io::Result<usize> {
    let entries = match fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some((id, pid)) = parse_temp_name(&name) else {
            continue;
        };
        if container_id.is_some_and(|c| c != id) || !writer_gone(pid) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

pub fn read(data_dir: &Path, container_id: &str) -> io::Result<Vec<u8>> {
    fs::read(path(data_dir, container_id))
}

/// Removes the saved config; a missing file is fine.
pub fn remove(data_dir: &Path, container_id: &str) -> io::Result<()> {
    match fs::remove_file(path(data_dir, container_id)) {
        Ok(()) => {
            sync_dir(data_dir);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The container IDs with a saved config (regular files named like a container ID), sorted.
/// A missing directory has none.
pub fn list(data_dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if weft_cni_core::validate_container_id(&name).is_ok() {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn save_is_atomic_private_and_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let p = save(&dir, "c1", b"{}").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{}");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::metadata(tmp.path().join("a")).unwrap().mode() & 0o777,
            0o700
        );
        // overwrite in place, no temp file left
        save(&dir, "c1", b"{\"x\":1}").unwrap();
        assert_eq!(read(&dir, "c1").unwrap(), b"{\"x\":1}");
        save(&dir, "c2", b"{}").unwrap();
        fs::write(dir.join(".c3.1.tmp"), b"").unwrap();
        fs::create_dir(dir.join("c4")).unwrap();
        assert_eq!(list(&dir).unwrap(), ["c1", "c2"]);
        remove(&dir, "c1").unwrap();
        remove(&dir, "c1").unwrap();
        assert_eq!(list(&dir).unwrap(), ["c2"]);
        assert!(list(&tmp.path().join("nope")).unwrap().is_empty());
    }

    #[test]
    fn stale_temps_of_dead_writers_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // pid 0 never names a process in /proc; our own pid is alive.
        let me = std::process::id();
        for name in [
            ".c1.0.tmp".to_string(),
            ".c2.0.tmp".to_string(),
            format!(".c1.{me}.tmp"),
            ".c1.x.tmp".to_string(),
            ".-bad.0.tmp".to_string(),
            "c1".to_string(),
        ] {
            fs::write(dir.join(name), b"{").unwrap();
        }
        assert_eq!(parse_temp_name(".a.b.c.42.tmp"), Some(("a.b.c", 42)));
        assert_eq!(parse_temp_name("c1.42.tmp"), None);
        assert_eq!(remove_stale_temps(dir, Some("c1")).unwrap(), 1);
        assert!(!dir.join(".c1.0.tmp").exists());
        assert!(dir.join(".c2.0.tmp").exists());
        assert!(dir.join(format!(".c1.{me}.tmp")).exists());
        assert_eq!(remove_stale_temps(dir, None).unwrap(), 1);
        assert!(!dir.join(".c2.0.tmp").exists());
        for kept in [
            format!(".c1.{me}.tmp"),
            ".c1.x.tmp".into(),
            ".-bad.0.tmp".into(),
            "c1".into(),
        ] {
            assert!(dir.join(&kept).exists(), "{kept}");
        }
        assert_eq!(remove_stale_temps(&dir.join("nope"), None).unwrap(), 0);
    }
}
