//! Running iptables-restore / nft when the caller needs stdout even if the command fails.
//!
//! `iptables-restore` prints the output of `-S` lines as it parses them and stops at the first
//! line that fails (a chain that does not exist). Reading what it printed before failing tells
//! which of the listed chains exist, in one exec. `weft_firewall::Tool::run` drops stdout on
//! failure, hence this small runner (same rules: argv only, no shell, LC_ALL=C).

use std::io::Write;
use std::process::{Command, Stdio};

use weft_firewall::{FwError, Tool};

/// What a command printed, and whether it succeeded.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// `exit status N` or `killed by signal N`, for messages.
    pub status: String,
}

/// Runs `tool` with `args`, feeding `stdin` if given.
pub fn run(tool: &Tool, args: &[String], stdin: Option<&str>) -> Result<Output, FwError> {
    let path = tool.resolve()?;
    let command = display(&tool.name, args);
    let mut cmd = Command::new(&path);
    cmd.args(args)
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| FwError::Spawn {
        command: command.clone(),
        source,
    })?;
    let output = std::thread::scope(|s| {
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            s.spawn(move || {
                // A write error shows up as the child's failure.
                let _ = pipe.write_all(input.as_bytes());
            });
        }
        child.wait_with_output()
    })
    .map_err(|source| FwError::Spawn { command, source })?;
    let status = match output.status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    };
    Ok(Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status,
    })
}

/// `run`, turning a failure into `FwError::Command`.
pub fn run_ok(tool: &Tool, args: &[String], stdin: Option<&str>) -> Result<String, FwError> {
    let out = run(tool, args, stdin)?;
    if out.success {
        return Ok(out.stdout);
    }
    Err(command_error(tool, args, stdin, &out))
}

pub fn command_error(tool: &Tool, args: &[String], stdin: Option<&str>, out: &Output) -> FwError {
    let mut stderr = clean_stderr(&out.stderr);
    if stderr.is_empty() {
        stderr = out.stdout.trim().to_string();
    }
    FwError::Command {
        binary: tool.name.clone(),
        command: display(&tool.name, args),
        status: out.status.clone(),
        stderr,
        input: stdin.map(str::to_string),
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

/// A command line for messages: arguments with spaces or quotes are shown quoted.
pub fn display(binary: &str, args: &[String]) -> String {
    let mut s = binary.to_string();
    for a in args {
        s.push(' ');
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%!".contains(c));
        if plain {
            s.push_str(a);
        } else {
            s.push_str(&format!("{a:?}"));
        }
    }
    s
}
