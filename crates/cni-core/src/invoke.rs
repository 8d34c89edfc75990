//! Running a delegate plugin (IPAM, or flannel's delegate), like Go's
//! `pkg/invoke`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::error::{CniError, Result};
use crate::gojson;
use crate::skel::{CmdArgs, Command, Plugin};
use crate::types::CniResult;

/// The plugins this executable can act as, by CNI type name: set once by a
/// multicall binary (`weft`) before it dispatches.
pub type RoleLookup = fn(&str) -> Option<&'static (dyn Plugin + Sync)>;

static IN_PROCESS: std::sync::OnceLock<RoleLookup> = std::sync::OnceLock::new();

/// Lets [`exec_plugin`] run a delegate in this process when the file found
/// in CNI_PATH is this very executable (a link to the multicall binary) and
/// `lookup` knows the role: it then gets the environment and stdin the exec
/// would have given, and its output is handled as the child's would be.
/// Set once; later calls are ignored.
pub fn set_in_process(lookup: RoleLookup) {
    let _ = IN_PROCESS.set(lookup);
}

/// Is `path` (following symlinks, as exec does) the running executable?
/// Compared by device and inode, so a symlink, a hardlink or the file itself
/// all count, while a copy does not.
fn is_self_exe(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(target), Ok(me)) = (std::fs::metadata(path), std::fs::metadata("/proc/self/exe"))
    else {
        return false;
    };
    target.dev() == me.dev() && target.ino() == me.ino()
}

/// The in-process role for `plugin_type` when `plugin` is this executable.
fn in_process_role(plugin_type: &str, plugin: &Path) -> Option<&'static (dyn Plugin + Sync)> {
    let lookup = IN_PROCESS.get()?;
    let role = lookup(plugin_type)?;
    is_self_exe(plugin).then_some(role)
}

/// Runs `role` as the exec'd child would run: its CNI variables from `envs`,
/// everything else from our environment (which a child inherits), `stdin` as
/// its stdin. Its stderr text (only the about text can land there) is
/// returned like a child's; its logs go straight to our stderr.
fn run_in_process(
    role: &(dyn Plugin + Sync),
    plugin_type: &str,
    envs: &[(&str, String)],
    stdin: &[u8],
) -> Captured {
    let env = |k: &str| match envs.iter().find(|(name, _)| *name == k) {
        Some((_, v)) => Some(v.clone()),
        None => std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()),
    };
    let mut input = stdin;
    let about = crate::skel::about_line(plugin_type);
    let outcome = crate::skel::run(role, &env, &mut input, &about);
    Captured {
        success: outcome.exit_code == 0,
        status: format!("exit status {}", outcome.exit_code),
        stdout: outcome.stdout,
        stderr: outcome.stderr,
    }
}

/// Go's `invoke.FindInPath`: the first regular file named `plugin_type` in
/// the `path` directories, in order.
pub fn find_plugin(plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf> {
    if plugin_type.is_empty() {
        return Err(CniError::Internal("no plugin name provided".to_string()));
    }
    if plugin_type.contains('/') || plugin_type == "." || plugin_type == ".." {
        return Err(CniError::Internal(format!(
            "invalid plugin name: {plugin_type}"
        )));
    }
    if path.is_empty() {
        return Err(CniError::Internal("no paths provided".to_string()));
    }
    for dir in path {
        let full = dir.join(plugin_type);
        if std::fs::metadata(&full).is_ok_and(|m| m.is_file()) {
            return Ok(full);
        }
    }
    let dirs: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
    Err(CniError::Internal(format!(
        "failed to find plugin {} in path {}",
        gojson::quote(plugin_type),
        gojson::plain_list(&dirs)
    )))
}

/// How many times a plugin binary that is being written ("text file busy")
/// is retried, one second apart, as Go's RawExec does.
const ETXTBSY_RETRIES: u32 = 5;

struct Captured {
    success: bool,
    status: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn spawn_once(plugin: &Path, envs: &[(&str, String)], stdin: &[u8]) -> std::io::Result<Captured> {
    let mut child = Process::new(plugin)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Feed stdin from a thread so a child that writes a lot before reading
    // cannot deadlock against us.
    let writer = child.stdin.take().map(|mut pipe| {
        let data = stdin.to_vec();
        std::thread::spawn(move || {
            // EPIPE just means the child did not read everything.
            let _ = pipe.write_all(&data);
        })
    });
    let output = child.wait_with_output()?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Captured {
        success: output.status.success(),
        status: exit_status_text(&output.status),
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

/// Go's `exec.ExitError` text: "exit status N" or "signal: killed".
fn exit_status_text(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(sig) = status.signal() {
        format!("signal: {}", signal_name(sig))
    } else {
        status.to_string()
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "killed".to_string(),
        libc::SIGTERM => "terminated".to_string(),
        libc::SIGSEGV => "segmentation fault".to_string(),
        libc::SIGABRT => "aborted".to_string(),
        libc::SIGINT => "interrupt".to_string(),
        libc::SIGPIPE => "broken pipe".to_string(),
        other => format!("signal {other}"),
    }
}

/// The environment a delegate sees: ours, with the CNI variables taken from
/// `args` and CNI_COMMAND set to `command`.
fn delegate_env(command: Command, args: &CmdArgs) -> Vec<(&'static str, String)> {
    let path: Vec<String> = args.path.iter().map(|p| p.display().to_string()).collect();
    vec![
        ("CNI_COMMAND", command.as_str().to_string()),
        ("CNI_CONTAINERID", args.container_id.clone()),
        ("CNI_NETNS", args.netns.clone()),
        ("CNI_IFNAME", args.ifname.clone()),
        ("CNI_ARGS", args.args.clone()),
        ("CNI_PATH", path.join(":")),
    ]
}

/// Go's `RawExec.pluginErr`, except that every failure names the plugin and
/// a non-JSON reply is an internal error (999) rather than code 0.
fn plugin_error(plugin_type: &str, run: &Captured) -> CniError {
    if run.stdout.iter().all(|b| b.is_ascii_whitespace()) {
        let stderr = String::from_utf8_lossy(&run.stderr);
        if stderr.is_empty() {
            return CniError::Internal(format!(
                "netplugin {plugin_type} failed with no error message: {}",
                run.status
            ));
        }
        return CniError::Internal(format!(
            "netplugin {plugin_type} failed: {}: {}",
            gojson::quote(&stderr),
            run.status
        ));
    }
    let parsed: std::result::Result<Value, _> = serde_json::from_slice(&run.stdout);
    let obj = match parsed {
        Ok(Value::Object(obj)) => obj,
        Ok(other) => {
            return CniError::Internal(format!(
                "netplugin {plugin_type} failed but error parsing its diagnostic message {}: json: cannot unmarshal {} into Go value of type types.Error",
                gojson::quote(&String::from_utf8_lossy(&run.stdout)),
                gojson::kind(&other)
            ))
        }
        Err(e) => {
            return CniError::Internal(format!(
                "netplugin {plugin_type} failed but error parsing its diagnostic message {}: {}",
                gojson::quote(&String::from_utf8_lossy(&run.stdout)),
                gojson::syntax_error_text(&run.stdout, &e)
            ))
        }
    };
    let code = gojson::field(&obj, "code")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    let text = |k: &str| {
        gojson::field(&obj, k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    CniError::Plugin {
        code,
        msg: text("msg"),
        details: text("details"),
    }
}

/// Go's `fixupResultVersion`: a result without `cniVersion` is taken to be in
/// the config's version.
fn fixup_result_version(plugin_type: &str, conf: &[u8], stdout: &[u8]) -> Result<Value> {
    let mut result: Value = serde_json::from_slice(stdout).map_err(|e| {
        CniError::Internal(format!(
            "failed to unmarshal raw result of {plugin_type}: {} result {}",
            gojson::syntax_error_text(stdout, &e),
            String::from_utf8_lossy(stdout)
        ))
    })?;
    if result.is_null() {
        result = Value::Object(serde_json::Map::new());
    }
    let has_version = result
        .get("cniVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| !v.is_empty());
    if !has_version {
        let conf_version = match serde_json::from_slice::<Value>(conf) {
            Ok(v) => crate::version::decode_config_version(&v)?,
            Err(_) => crate::version::DEFAULT_VERSION.to_string(),
        };
        match result.as_object_mut() {
            Some(obj) => {
                obj.insert("cniVersion".into(), Value::from(conf_version));
            }
            None => {
                return Err(CniError::Internal(format!(
                    "failed to unmarshal raw result of {plugin_type}: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    gojson::kind(&result)
                )))
            }
        }
    }
    Ok(result)
}

/// Runs delegate `plugin_type` (found in `args.path`) with `stdin` as its
/// config. Its stderr is passed through to ours.
///
/// Returns the delegate's result for ADD (validated, with `cniVersion` filled
/// in from the config when missing) and its reply for VERSION; None for the
/// other verbs. A failing delegate's `{"code","msg","details"}` comes back as
/// `CniError::Plugin` with the code preserved.
pub fn exec_plugin(
    plugin_type: &str,
    command: Command,
    stdin: &[u8],
    args: &CmdArgs,
) -> Result<Option<Value>> {
    let plugin = find_plugin(plugin_type, &args.path)?;
    let envs = delegate_env(command, args);
    let run = match in_process_role(plugin_type, &plugin) {
        Some(role) => run_in_process(role, plugin_type, &envs, stdin),
        None => exec_with_retries(&plugin, &envs, stdin)?,
    };
    if !run.stderr.is_empty() {
        let _ = std::io::stderr().write_all(&run.stderr);
    }
    if !run.success {
        return Err(plugin_error(plugin_type, &run));
    }
    match command {
        Command::Add => {
            let result = fixup_result_version(plugin_type, stdin, &run.stdout)?;
            CniResult::parse(&result)?;
            Ok(Some(result))
        }
        Command::Version => {
            let reply: Value = serde_json::from_slice(&run.stdout).map_err(|e| {
                CniError::Internal(format!(
                    "decoding version info of {plugin_type}: {}",
                    gojson::syntax_error_text(&run.stdout, &e)
                ))
            })?;
            Ok(Some(reply))
        }
        _ => Ok(None),
    }
}

/// Execs `plugin`, retrying while its file is being written ("text file busy").
fn exec_with_retries(plugin: &Path, envs: &[(&str, String)], stdin: &[u8]) -> Result<Captured> {
    let mut attempt = 0;
    loop {
        match spawn_once(plugin, envs, stdin) {
            Ok(run) => return Ok(run),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < ETXTBSY_RETRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                return Err(CniError::Internal(format!(
                    "failed to execute plugin {}: {e}",
                    plugin.display()
                )))
            }
        }
    }
}
