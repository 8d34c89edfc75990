//! Running iptables-restore / nft when the caller needs stdout even if the command fails.
//!
//! `iptables-restore` prints the output of `-S` lines as it parses them and stops at the first
//! line that fails (a chain that does not exist). Reading what it printed before failing tells
//! which of the listed chains exist, in one exec. `weft_firewall::Tool::run` drops stdout on
//! failure, hence this small runner (same rules: argv only, no shell, LC_ALL=C).

use weft_firewall::{display_command, FwError, Tool};

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
    let output = tool.output(args, stdin)?;
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
        command: display_command(&tool.name, args),
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
