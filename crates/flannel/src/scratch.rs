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
}
