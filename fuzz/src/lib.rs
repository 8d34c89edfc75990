//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Targets that need several inputs (a config and CNI_ARGS, a subnet.env and a lease, ...)
//! take them as NUL-separated fields of one input: NUL cannot occur in an environment
//! variable, a file name or (unescaped) in JSON, so every field stays a realistic input and
//! the seed files stay readable.

use std::path::{Path, PathBuf};

/// Field `i` of a NUL-separated input; empty when the input has fewer fields.
pub fn field(data: &[u8], i: usize) -> &[u8] {
    data.split(|b| *b == 0).nth(i).unwrap_or_default()
}

/// Field `i` as text, the way the plugins read the environment (`to_string_lossy`).
pub fn text(data: &[u8], i: usize) -> String {
    String::from_utf8_lossy(field(data, i)).into_owned()
}

/// Whether field `i` is present at all (an empty field is present).
pub fn has_field(data: &[u8], i: usize) -> bool {
    data.iter().filter(|b| **b == 0).count() >= i
}

/// A scratch directory for this fuzzing process, on tmpfs when there is one:
/// `<base>/weft-fuzz-<name>.<pid>`. It is removed at exit (libFuzzer exits through
/// `exit()` at the end of a run); directories of dead processes (a crash) are swept the
/// next time a target starts.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    sweep_stale(&base, name);
    let dir = base.join(format!("weft-fuzz-{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create the scratch directory {}: {e}", dir.display());
    }
    let _ = SCRATCH.set(dir.clone());
    // SAFETY: registers a plain extern "C" function without arguments.
    unsafe {
        libc_atexit(remove_scratch);
    }
    dir
}

static SCRATCH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

extern "C" fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}

fn sweep_stale(base: &Path, name: &str) {
    let prefix = format!("weft-fuzz-{name}.");
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
