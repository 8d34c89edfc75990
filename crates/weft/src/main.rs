//! `weft`: run as a plugin's name (a link), it is that plugin; run as
//! `weft`, it makes those links (`weft link DIR`) or says what it is.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;

use weft::install::{self, Content, Entry};
use weft::{invoked_name, role, role_names, ROLES};

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let name = invoked_name(argv.first().map(OsString::as_os_str)).unwrap_or("weft");
    if let Some(role) = role(name) {
        weft_cni_core::set_in_process(weft::role_plugin);
        (role.main)();
    }
    if name != "weft" && std::env::var_os("CNI_COMMAND").is_some() {
        // A runtime ran us under a name we do not know (a renamed copy):
        // answer in the protocol rather than with usage text.
        let err = weft_cni_core::CniError::Internal(format!(
            "weft was run as {name:?}, which is none of its plugins ({}): link or copy it under one of those names",
            role_names()
        ));
        print!("{}", err.to_json());
        exit(1);
    }
    exit(command(name, &argv[1.min(argv.len())..]));
}

const USAGE: &str = "usage: weft link [--hard] DIR [PLUGIN...]
       weft install [--plugins all|PLUGIN,...] DIR
       weft install --file SRC DEST
       weft --version
weft is every weft CNI plugin in one file; it acts as the plugin named by the
link it is run through. `weft link DIR` makes DIR/<plugin> a link to DIR/weft
for each plugin (all of them by default), replacing what is there.
`weft install DIR` copies this binary to DIR/flannel; with --plugins, to
DIR/weft, with flannel and each listed plugin a symlink to it. `weft install
--file` copies one file (a conflist). Each goes through a temporary name and a
rename; one line per entry says installed, unchanged or replaced.";

fn command(name: &str, args: &[OsString]) -> i32 {
    let args: Vec<&str> = match args.iter().map(|a| a.to_str()).collect::<Option<_>>() {
        Some(a) => a,
        None => return usage_error("arguments must be UTF-8"),
    };
    match args.as_slice() {
        ["--version"] => {
            println!("{}", weft_build_info::version_line(name));
            0
        }
        ["--help"] | ["-h"] => {
            println!("{USAGE}\nplugins: {}", role_names());
            0
        }
        ["link", rest @ ..] => match parse_link(rest) {
            Ok(req) => match link_all(&req) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("weft link: {e}");
                    1
                }
            },
            Err(e) => usage_error(&e),
        },
        ["install", rest @ ..] => match parse_install(rest) {
            Ok(entries) => install_all(&entries),
            Err(e) => usage_error(&e),
        },
        [] => usage_error(&format!(
            "run as {name:?}, which is none of its plugins ({})",
            role_names()
        )),
        [other, ..] => usage_error(&format!("unknown command {other:?}")),
    }
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("weft: {msg}\n{USAGE}\nplugins: {}", role_names());
    2
}

struct LinkRequest {
    hard: bool,
    dir: PathBuf,
    roles: Vec<&'static str>,
}

fn parse_link(args: &[&str]) -> Result<LinkRequest, String> {
    let (hard, rest) = match args {
        ["--hard", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let (dir, names) = rest
        .split_first()
        .ok_or_else(|| "link needs a directory".to_string())?;
    let roles = if names.is_empty() {
        ROLES.iter().map(|r| r.name).collect()
    } else {
        names
            .iter()
            .map(|n| {
                role(n)
                    .map(|r| r.name)
                    .ok_or_else(|| format!("{n:?} is not a weft plugin"))
            })
            .collect::<Result<_, _>>()?
    };
    Ok(LinkRequest {
        hard,
        dir: PathBuf::from(dir),
        roles,
    })
}

/// DIR/<role> -> weft for each role. Each link is made under a temporary
/// name and renamed over the old entry, so a runtime exec'ing the plugin
/// meanwhile finds either the old file or the new link, never nothing.
fn link_all(req: &LinkRequest) -> Result<(), String> {
    let target = req.dir.join("weft");
    if !target.is_file() {
        return Err(format!(
            "{} does not exist (copy weft there first)",
            target.display()
        ));
    }
    for name in &req.roles {
        link_one(req.hard, &req.dir, &target, name)?;
    }
    Ok(())
}

fn link_one(hard: bool, dir: &Path, target: &Path, name: &str) -> Result<(), String> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.weft-link.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let made = if hard {
        std::fs::hard_link(target, &tmp)
    } else {
        // Relative, so the directory can be moved or bind-mounted elsewhere.
        std::os::unix::fs::symlink("weft", &tmp)
    };
    made.map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}: {e}", path.display())
    })
}

/// `install --file SRC DEST`, or `install [--plugins LIST] DIR`.
fn parse_install(args: &[&str]) -> Result<Vec<Entry>, String> {
    match args {
        ["--file", src, dest] => Ok(vec![Entry {
            dest: PathBuf::from(dest),
            content: Content::File {
                src: PathBuf::from(src),
                mode: install::FILE_MODE,
            },
        }]),
        ["--file", ..] => Err("install --file needs SRC and DEST".to_string()),
        _ => {
            let (plugins, rest) = match args {
                ["--plugins", list, rest @ ..] => (Some(*list), rest),
                [first, rest @ ..] if first.starts_with("--plugins=") => {
                    (first.strip_prefix("--plugins="), rest)
                }
                rest => (None, rest),
            };
            let dir = match rest {
                [dir] if !dir.starts_with('-') => PathBuf::from(dir),
                [] => return Err("install needs a directory".to_string()),
                _ => return Err(format!("install: unexpected arguments {rest:?}")),
            };
            let plugins = plugins.map(install::parse_plugins).transpose()?;
            Ok(install::plan_binaries(
                &dir,
                Path::new(install::SELF_EXE),
                plugins.as_deref(),
            ))
        }
    }
}

/// Installs the entries in order, one line each; stops at the first error.
fn install_all(entries: &[Entry]) -> i32 {
    for entry in entries {
        match install::install(entry) {
            Ok(outcome) => {
                // Not println!: it panics when stdout is closed (a log
                // pipe gone), and the entry is installed whether or not
                // the line can be printed.
                let line = format!("{outcome:<9} {}", entry.dest.display());
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Err(e) => {
                eprintln!("weft install: {e}");
                return 1;
            }
        }
    }
    0
}
