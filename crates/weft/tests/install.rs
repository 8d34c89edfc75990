//! `weft install`: what kube-flannel-weft.yml's init containers run. The
//! binary, the plugin links and the conflist land in place, a second run
//! changes nothing, and a plugin exec'd during a reinstall always runs.

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

fn weft(args: &[&str]) -> Output {
    Command::new(WEFT).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `weft ARGS`, expects success, returns stdout.
fn ok(args: &[&str]) -> String {
    let o = weft(args);
    assert!(o.status.success(), "weft {args:?}: {o:?}");
    stdout(&o)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every name in `dir`, sorted (temporary files would show up here).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn install_puts_flannel_alone_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("opt/cni/bin");
    let d = dir.to_str().unwrap();
    let flannel = dir.join("flannel");

    assert_eq!(ok(&["install", d]), format!("installed {d}/flannel\n"));
    assert_eq!(names(&dir), ["flannel"]);
    assert_eq!(
        std::fs::read(&flannel).unwrap(),
        std::fs::read(WEFT).unwrap()
    );
    assert_eq!(mode(&flannel), 0o755);
    // The copy acts as flannel (the name it is run as).
    let v = Command::new(&flannel).arg("--version").output().unwrap();
    assert!(stdout(&v).starts_with("flannel (weft) "), "{v:?}");

    assert_eq!(ok(&["install", d]), format!("unchanged {d}/flannel\n"));

    // An old plugin (say Go's) is replaced; so is the right content with the wrong mode.
    std::fs::write(&flannel, b"old flannel").unwrap();
    assert_eq!(ok(&["install", d]), format!("replaced  {d}/flannel\n"));
    assert_eq!(
        std::fs::read(&flannel).unwrap(),
        std::fs::read(WEFT).unwrap()
    );
    std::fs::set_permissions(&flannel, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(ok(&["install", d]), format!("replaced  {d}/flannel\n"));
    assert_eq!(mode(&flannel), 0o755);
    assert_eq!(names(&dir), ["flannel"], "no temporary file left");
}

#[test]
fn install_plugins_links_them_to_one_weft() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    // A separate flannel file from an earlier install becomes a link.
    std::fs::write(dir.join("flannel"), b"old").unwrap();

    let out = ok(&["install", "--plugins", "bridge,host-local", d]);
    assert_eq!(
        out,
        format!("installed {d}/weft\nreplaced  {d}/flannel\ninstalled {d}/bridge\ninstalled {d}/host-local\n")
    );
    assert_eq!(names(dir), ["bridge", "flannel", "host-local", "weft"]);
    for n in ["flannel", "bridge", "host-local"] {
        assert_eq!(
            std::fs::read_link(dir.join(n)).unwrap(),
            Path::new("weft"),
            "{n}"
        );
        let v = Command::new(dir.join(n)).arg("--version").output().unwrap();
        assert!(stdout(&v).starts_with(&format!("{n} (weft) ")), "{v:?}");
    }
    assert_eq!(mode(&dir.join("weft")), 0o755);

    let again = ok(&["install", "--plugins=all", d]);
    let lines: Vec<&str> = again.lines().collect();
    assert_eq!(lines.len(), 6, "{again}");
    assert!(
        lines[..4].iter().all(|l| l.starts_with("unchanged ")),
        "{again}"
    );
    assert_eq!(lines[4], format!("installed {d}/portmap"));
    assert_eq!(lines[5], format!("installed {d}/loopback"));
}

#[test]
fn install_file_copies_the_conflist() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("cni-conf.json");
    std::fs::write(&src, br#"{"name":"cbr0"}"#).unwrap();
    let net_d = tmp.path().join("etc/cni/net.d");
    let dest = net_d.join("10-flannel.conflist");
    let (s, t) = (src.to_str().unwrap(), dest.to_str().unwrap());

    assert_eq!(ok(&["install", "--file", s, t]), format!("installed {t}\n"));
    assert_eq!(std::fs::read(&dest).unwrap(), br#"{"name":"cbr0"}"#);
    assert_eq!(mode(&dest), 0o644);
    assert_eq!(ok(&["install", "--file", s, t]), format!("unchanged {t}\n"));
    std::fs::write(&src, br#"{"name":"cbr1"}"#).unwrap();
    assert_eq!(ok(&["install", "--file", s, t]), format!("replaced  {t}\n"));
    assert_eq!(std::fs::read(&dest).unwrap(), br#"{"name":"cbr1"}"#);
    assert_eq!(names(&net_d), ["10-flannel.conflist"]);
}

#[test]
fn install_errors_are_messages_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();

    // Usage errors: exit 2 with the usage text.
    for args in [
        &["install"][..],
        &["install", "--plugins", "bridge,nosuch", d],
        &["install", "--file", "only-src"],
        &["install", d, "extra"],
    ] {
        let o = weft(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(stderr(&o).contains("usage: weft"), "{args:?}: {o:?}");
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {o:?}");
    }
    assert!(stderr(&weft(&["install", "--plugins", "nosuch", d]))
        .contains("\"nosuch\" is not a weft plugin"));

    // Failures: exit 1, one line naming the path, nothing left behind.
    std::fs::create_dir(tmp.path().join("flannel")).unwrap();
    let o = weft(&["install", d]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        stderr(&o),
        format!("weft install: {d}/flannel is a directory, not replacing it\n")
    );

    let missing = format!("{d}/no-such.json");
    let o = weft(&["install", "--file", &missing, &format!("{d}/x.conflist")]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stderr(&o).starts_with(&format!("weft install: cannot read {missing}: ")),
        "{o:?}"
    );
    assert_eq!(names(tmp.path()), ["flannel"]);
}

/// The point of the temporary name and the rename: a runtime exec'ing the
/// plugin while it is being reinstalled always finds a whole executable
/// (never ENOENT, ETXTBSY or a truncated file).
#[test]
fn a_plugin_exec_during_reinstall_always_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let d = dir.to_str().unwrap().to_string();
    ok(&["install", &d]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flannel = dir.join("flannel");
    let runner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let o = Command::new(&flannel).arg("--version").output();
                let o = o.unwrap_or_else(|e| panic!("exec after {runs} runs: {e}"));
                assert!(stdout(&o).starts_with("flannel (weft) "), "{o:?}");
                runs += 1;
            }
            runs
        })
    };
    // Each round replaces flannel: a file, then a link to weft, and back.
    for i in 0..40 {
        let out = if i % 2 == 0 {
            ok(&["install", "--plugins", "flannel", &d])
        } else {
            ok(&["install", &d])
        };
        assert!(
            out.contains(&format!("replaced  {d}/flannel")),
            "round {i}: {out}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = runner.join().unwrap();
    assert!(runs > 0, "the plugin never ran during the reinstalls");
}
