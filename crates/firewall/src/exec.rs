//! Running the netfilter binaries: argv vectors only (never a shell, never
//! re-split strings), errors that name the binary, the arguments and stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::FwError;

/// Where plugins usually find the tools even when the runtime hands us a
/// short or empty `PATH` (Rust, unlike a login shell, does not add sbin).
const FALLBACK_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Default seconds to wait for the xtables lock (`-w`). Bounded on purpose:
/// an unbounded wait turns a stuck iptables into a stuck CNI ADD.
pub const DEFAULT_LOCK_WAIT_SECS: u32 = 10;

/// One binary: what to run and which env variable overrides it (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// Name looked up in `PATH` (then the sbin dirs), or a path.
    pub name: String,
    /// Env variable that overrides `name`.
    pub env: &'static str,
}

impl Tool {
    fn from_env(env: &'static str, default: &str) -> Tool {
        let name = match std::env::var(env) {
            Ok(v) if !v.is_empty() => v,
            _ => default.to_string(),
        };
        Tool { name, env }
    }

    /// Finds the binary, or says which one is missing.
    pub fn resolve(&self) -> Result<PathBuf, FwError> {
        resolve_binary(&self.name).ok_or_else(|| FwError::MissingBinary {
            binary: self.name.clone(),
            env: self.env.to_string(),
        })
    }

    /// Runs the tool and returns what it printed and how it exited, success or not (for
    /// callers that read stdout of a failing command, like iptables-restore's `-S` probes,
    /// which print the chains they found before stopping at a missing one).
    ///
    /// With `WEFT_TRACE=1` each run prints how long it took, as
    /// `weft-trace netfilter exec NAME ARG1[ (failed)]: X ms`: under a burst that is mostly the wait for
    /// the xtables lock (iptables-legacy holds it for a whole restore) or for the kernel's
    /// nfnetlink commit (iptables-nft, nft).
    pub fn capture(&self, args: &[String], stdin: Option<&str>) -> Result<Output, FwError> {
        let path = self.resolve()?;
        let start = std::time::Instant::now();
        let output = spawn_output(&path, &display_command(&self.name, args), args, stdin)?;
        let out = Output::from_process(&output);
        if weft_cni_core::trace::trace_enabled() {
            let name = self.name.rsplit('/').next().unwrap_or_default();
            let first = args.first().map_or("", String::as_str);
            let failed = if out.success { "" } else { " (failed)" };
            let what = format!("exec {name} {first}{failed}");
            weft_cni_core::trace::trace_duration("netfilter", &what, start.elapsed());
        }
        Ok(out)
    }

    /// Runs the tool with `args`, feeding `stdin` if given; stdout on success, else
    /// `FwError::Command` with the exit status and stderr.
    pub fn run(&self, args: &[String], stdin: Option<&str>) -> Result<String, FwError> {
        let out = self.capture(args, stdin)?;
        if out.success {
            return Ok(out.stdout);
        }
        Err(out.into_error(self, args, stdin))
    }
}

/// What a command printed, and whether it succeeded.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// `exit status N` or `killed by signal N`, for messages.
    pub status: String,
}

impl Output {
    fn from_process(output: &std::process::Output) -> Output {
        let status = match (output.status.code(), exit_signal(&output.status)) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "abnormal exit".to_string(),
        };
        Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            status,
        }
    }

    /// The failure as `FwError::Command`: stderr (without iptables-nft's warning noise), or
    /// stdout when stderr says nothing.
    pub fn into_error(self, tool: &Tool, args: &[String], stdin: Option<&str>) -> FwError {
        let mut stderr = clean_stderr(&self.stderr);
        if stderr.is_empty() {
            stderr = self.stdout.trim().to_string();
        }
        FwError::Command {
            binary: tool.name.clone(),
            command: display_command(&tool.name, args),
            status: self.status,
            stderr,
            input: stdin.map(str::to_string),
        }
    }
}

/// stderr without iptables-nft's "# Warning: iptables-legacy tables present" noise.
fn clean_stderr(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("# Warning:"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The binaries weft's firewall code runs. Every field can be overridden
/// through the environment (see [`Tools::from_env`]) or set directly, which
/// is how tests exercise the missing-binary path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// `WEFT_IPTABLES`, default `iptables`.
    pub iptables: Tool,
    /// `WEFT_IP6TABLES`, default `ip6tables`.
    pub ip6tables: Tool,
    /// `WEFT_IPTABLES_RESTORE`, default `iptables-restore`.
    pub iptables_restore: Tool,
    /// `WEFT_IP6TABLES_RESTORE`, default `ip6tables-restore`.
    pub ip6tables_restore: Tool,
    /// `WEFT_NFT`, default `nft`.
    pub nft: Tool,
    /// Seconds to wait for the xtables lock.
    pub lock_wait_secs: u32,
}

impl Tools {
    /// The tools named by `WEFT_IPTABLES`, `WEFT_IP6TABLES`,
    /// `WEFT_IPTABLES_RESTORE`, `WEFT_IP6TABLES_RESTORE` and `WEFT_NFT`,
    /// each defaulting to the usual binary name.
    pub fn from_env() -> Tools {
        Tools {
            iptables: Tool::from_env("WEFT_IPTABLES", "iptables"),
            ip6tables: Tool::from_env("WEFT_IP6TABLES", "ip6tables"),
            iptables_restore: Tool::from_env("WEFT_IPTABLES_RESTORE", "iptables-restore"),
            ip6tables_restore: Tool::from_env("WEFT_IP6TABLES_RESTORE", "ip6tables-restore"),
            nft: Tool::from_env("WEFT_NFT", "nft"),
            lock_wait_secs: DEFAULT_LOCK_WAIT_SECS,
        }
    }

    /// Same tools, with the iptables family replaced by another variant,
    /// e.g. `("iptables-legacy", "ip6tables-legacy")`: the restore tools
    /// become `<name>-restore`.
    pub fn with_iptables_variant(mut self, v4: &str, v6: &str) -> Tools {
        self.iptables.name = v4.to_string();
        self.ip6tables.name = v6.to_string();
        self.iptables_restore.name = format!("{v4}-restore");
        self.ip6tables_restore.name = format!("{v6}-restore");
        self
    }
}

impl Default for Tools {
    fn default() -> Tools {
        Tools::from_env()
    }
}

/// Looks `name` up like a shell would, plus the sbin directories. A name
/// with a `/` is used as given.
pub fn resolve_binary(name: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) => m.is_file() && m.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

/// Renders a command line for messages: arguments with spaces or quotes
/// are shown double-quoted.
pub fn display_command(binary: &str, args: &[String]) -> String {
    let mut s = binary.to_string();
    for a in args {
        s.push(' ');
        if !a.is_empty() && a.chars().all(is_plain_char) {
            s.push_str(a);
        } else {
            s.push_str(&format!("{a:?}"));
        }
    }
    s
}

fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./:=,+@%!".contains(c)
}

/// Runs `path` with `args` (no shell), optionally feeding `stdin`, and returns its output
/// whatever the exit status. `command` is the command line shown in errors.
fn spawn_output(
    path: &Path,
    command: &str,
    args: &[String],
    stdin: Option<&str>,
) -> Result<std::process::Output, FwError> {
    let mut cmd = Command::new(path);
    cmd.args(args)
        // Messages we match on ("No such file or directory") are English.
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| FwError::Spawn {
        command: command.to_string(),
        source,
    })?;

    // Write stdin from a scoped thread so that a chatty child can never
    // deadlock against us on a full stdout pipe.
    std::thread::scope(|s| {
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            s.spawn(move || {
                // A write error shows up as the child's failure below.
                let _ = pipe.write_all(input.as_bytes());
            });
        }
        child.wait_with_output()
    })
    .map_err(|source| FwError::Spawn {
        command: command.to_string(),
        source,
    })
}

fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_when_needed() {
        let args = vec![
            "-t".to_string(),
            "nat".to_string(),
            "--comment".to_string(),
            r#"name: "n" id: "c""#.to_string(),
        ];
        assert_eq!(
            display_command("iptables", &args),
            r#"iptables -t nat --comment "name: \"n\" id: \"c\"""#
        );
    }

    #[test]
    fn missing_binary_names_it() {
        let tool = Tool {
            name: "/nonexistent/weft-iptables".to_string(),
            env: "WEFT_IPTABLES",
        };
        let err = tool.run(&[], None).unwrap_err();
        assert!(matches!(err, FwError::MissingBinary { .. }));
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/weft-iptables"), "{msg}");
        assert!(msg.contains("WEFT_IPTABLES"), "{msg}");

        let tool = Tool {
            name: "weft-surely-not-installed".to_string(),
            env: "WEFT_NFT",
        };
        assert!(matches!(
            tool.run(&[], None),
            Err(FwError::MissingBinary { .. })
        ));
    }

    #[test]
    fn failing_command_reports_args_and_stderr() {
        let tool = Tool {
            name: "sh".to_string(),
            env: "X",
        };
        let args = vec!["-c".to_string(), "echo oops >&2; exit 3".to_string()];
        let err = tool.run(&args, None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exit status 3"), "{msg}");
        assert!(msg.contains("oops"), "{msg}");
        assert!(msg.contains("echo oops"), "{msg}");
    }

    #[test]
    fn stdin_is_fed() {
        let tool = Tool {
            name: "cat".to_string(),
            env: "X",
        };
        assert_eq!(tool.run(&[], Some("hello\n")).unwrap(), "hello\n");
    }
}
