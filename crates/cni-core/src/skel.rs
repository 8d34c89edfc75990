//! The plugin skeleton: environment and stdin validation, version gating,
//! dispatch, and printing, following Go's `pkg/skel`.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::Value;

use crate::config::{config_too_large, MAX_CONFIG_BYTES};
use crate::error::{codes, CniError, Result};
use crate::gojson;
use crate::validate::{validate_container_id, validate_interface_name, validate_network_name};
use crate::version::{self, SUPPORTED_VERSIONS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Gc => "GC",
            Command::Status => "STATUS",
        }
    }

    /// The exact (upper-case) CNI_COMMAND value.
    pub fn parse(s: &str) -> Option<Command> {
        match s {
            "ADD" => Some(Command::Add),
            "DEL" => Some(Command::Del),
            "CHECK" => Some(Command::Check),
            "VERSION" => Some(Command::Version),
            "GC" => Some(Command::Gc),
            "STATUS" => Some(Command::Status),
            _ => None,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a verb handler gets, from the environment and stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdArgs {
    pub command: Command,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// Raw CNI_ARGS; parse with [`crate::parse_cni_args`].
    pub args: String,
    /// CNI_PATH split on ':' (empty entries dropped).
    pub path: Vec<PathBuf>,
    pub stdin: Vec<u8>,
    /// CNI_NETNS_OVERRIDE is "1" or "true" (any case).
    pub netns_override: bool,
}

pub trait Plugin {
    /// The result to print, already converted to the config's version.
    fn add(&self, args: &CmdArgs) -> Result<Value>;
    fn del(&self, args: &CmdArgs) -> Result<()>;
    fn check(&self, args: &CmdArgs) -> Result<()>;
    fn gc(&self, _args: &CmdArgs) -> Result<()> {
        Ok(())
    }
    fn status(&self, _args: &CmdArgs) -> Result<()> {
        Ok(())
    }
}

/// What a plugin run produced; `plugin_main` writes it out and exits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl Outcome {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Go's `skel.validateConfig`: the config must be JSON with a valid `name`.
fn validate_config(stdin: &[u8]) -> Result<()> {
    let prefix = "error unmarshall network config";
    let v: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::Decode(format!(
            "{prefix}: {}",
            gojson::syntax_error_text(stdin, &e)
        ))
    })?;
    let name = match &v {
        Value::Null => String::new(),
        Value::Object(obj) => match gojson::field(obj, "name") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(CniError::Decode(format!(
                    "{prefix}: json: cannot unmarshal {} into Go struct field .name of type string",
                    gojson::kind(other)
                )))
            }
        },
        other => {
            return Err(CniError::Decode(format!(
                "{prefix}: json: cannot unmarshal {} into Go value of type struct {{ Name string \"json:\\\"name\\\"\" }}",
                gojson::kind(other)
            )))
        }
    };
    if name.is_empty() {
        return Err(CniError::InvalidConfig("missing network name".to_string()));
    }
    validate_network_name(&name)
}

type Validator = fn(&str) -> Result<()>;

struct EnvVar {
    name: &'static str,
    required_for: &'static [&'static str],
    validate: Option<Validator>,
}

/// skel's table: which variables each verb needs, in Go's order.
const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "CNI_COMMAND",
        required_for: &["ADD", "CHECK", "DEL", "GC", "STATUS"],
        validate: None,
    },
    EnvVar {
        name: "CNI_CONTAINERID",
        required_for: &["ADD", "CHECK", "DEL"],
        validate: Some(validate_container_id),
    },
    EnvVar {
        name: "CNI_NETNS",
        required_for: &["ADD", "CHECK"],
        validate: None,
    },
    EnvVar {
        name: "CNI_IFNAME",
        required_for: &["ADD", "CHECK", "DEL"],
        validate: Some(validate_interface_name),
    },
    EnvVar {
        name: "CNI_ARGS",
        required_for: &[],
        validate: None,
    },
    EnvVar {
        name: "CNI_PATH",
        required_for: &["ADD", "CHECK", "DEL", "GC", "STATUS"],
        validate: None,
    },
    EnvVar {
        name: "CNI_NETNS_OVERRIDE",
        required_for: &[],
        validate: None,
    },
];

/// Go's `filepath.SplitList`, minus empty entries (which Go would resolve
/// against the working directory).
pub fn split_path(s: &str) -> Vec<PathBuf> {
    s.split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

fn read_bounded(stdin: &mut dyn Read) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let limit = u64::try_from(MAX_CONFIG_BYTES).unwrap_or(u64::MAX);
    stdin
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| CniError::Io(format!("error reading from stdin: {e}")))?;
    if data.len() > MAX_CONFIG_BYTES {
        return Err(config_too_large(data.len()));
    }
    Ok(data)
}

/// Reads and validates the environment and stdin (Go's `getCmdArgsFromEnv`
/// plus `validateConfig`). `Ok(None)` means "no command: print the about text".
fn cmd_args_from_env(
    getenv: &dyn Fn(&str) -> String,
    stdin: &mut dyn Read,
) -> Result<(String, CmdArgs)> {
    let cmd = getenv("CNI_COMMAND");
    let mut missing = Vec::new();
    let mut values = Vec::with_capacity(ENV_VARS.len());
    for var in ENV_VARS {
        let val = getenv(var.name);
        let required = var.required_for.contains(&cmd.as_str());
        if val.is_empty() {
            if required || var.name == "CNI_COMMAND" {
                missing.push(var.name);
            }
        } else if required {
            if let Some(validate) = var.validate {
                validate(&val)?;
            }
        }
        values.push(val);
    }
    if !missing.is_empty() {
        return Err(CniError::InvalidEnv(format!(
            "required env variables [{}] missing",
            missing.join(",")
        )));
    }

    // VERSION ignores stdin entirely.
    let stdin_data = if cmd == "VERSION" {
        Vec::new()
    } else {
        read_bounded(stdin)?
    };
    if cmd != "VERSION" {
        validate_config(&stdin_data)?;
    }

    let get = |i: usize| values.get(i).cloned().unwrap_or_default();
    let netns_override = get(6);
    let args = CmdArgs {
        // Unknown commands are rejected by the caller before this is used.
        command: Command::parse(&cmd).unwrap_or(Command::Version),
        container_id: get(1),
        netns: get(2),
        ifname: get(3),
        args: get(4),
        path: split_path(&get(5)),
        stdin: stdin_data,
        netns_override: netns_override.eq_ignore_ascii_case("true") || netns_override == "1",
    };
    Ok((cmd, args))
}

/// Go's `checkVersionAndCall`: the config version must be one we support.
fn check_version(args: &CmdArgs) -> Result<()> {
    let config_version = config_version(args)?;
    version::check_supported(&config_version, SUPPORTED_VERSIONS)
}

fn config_version(args: &CmdArgs) -> Result<String> {
    let v: Value = serde_json::from_slice(&args.stdin).map_err(|e| {
        CniError::Decode(format!(
            "decoding version from network config: {}",
            gojson::syntax_error_text(&args.stdin, &e)
        ))
    })?;
    version::decode_config_version(&v)
}

/// The CHECK / GC / STATUS gate: the config must be at least `minimum`, and
/// some version we support must be at least the config's.
fn gate(args: &CmdArgs, minimum: &str, verb: &str) -> Result<()> {
    let config_version = config_version(args)?;
    if !version::greater_than_or_equal_to(&config_version, minimum)? {
        return Err(CniError::IncompatibleVersion(format!(
            "config version does not allow {verb}"
        )));
    }
    for plugin_version in SUPPORTED_VERSIONS {
        if version::greater_than_or_equal_to(plugin_version, &config_version)? {
            return check_version(args);
        }
    }
    Err(CniError::IncompatibleVersion(format!(
        "plugin version does not allow {verb}"
    )))
}

/// GC without a list of attachments to keep is refused (code 7) here, before the
/// plugin runs, so no plugin can read it as "nothing is valid" (see
/// [`crate::config::gc_attachments`]).
fn require_gc_attachments(args: &CmdArgs) -> Result<()> {
    let v: Value = serde_json::from_slice(&args.stdin).map_err(|e| {
        CniError::Decode(format!(
            "failed to load netconf: {}",
            gojson::syntax_error_text(&args.stdin, &e)
        ))
    })?;
    let empty = crate::types::Map::new();
    crate::config::gc_attachments(v.as_object().unwrap_or(&empty)).map(drop)
}

/// Go's `ns.CheckNetNS`: is `path` the netns this thread is in? A path that
/// cannot be opened is "not ours" (DEL may get a vanished or empty netns).
pub fn is_own_netns(path: &str) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let target = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(false),
    };
    // /proc/self/ns/net is the main thread's; the plugin might run this on
    // another thread, so ask for the calling thread's own.
    let ours = std::fs::metadata("/proc/thread-self/ns/net")
        .or_else(|_| std::fs::metadata("/proc/self/ns/net"))
        .map_err(|e| CniError::InvalidNetns(format!("failed to get current netns: {e}")))?;
    Ok(target.dev() == ours.dev() && target.ino() == ours.ino())
}

fn check_not_own_netns(args: &CmdArgs) -> Result<()> {
    if args.netns_override {
        return Ok(());
    }
    if is_own_netns(&args.netns)? {
        return Err(CniError::InvalidNetns(
            "plugin's netns and netns from CNI_NETNS should not be the same".to_string(),
        ));
    }
    Ok(())
}

fn about_text(about: &str) -> String {
    format!(
        "{about}\nCNI protocol versions supported: {}\n",
        SUPPORTED_VERSIONS.join(", ")
    )
}

fn dispatch<P: Plugin + ?Sized>(
    plugin: &P,
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
    about: &str,
    out: &mut Outcome,
) -> Result<()> {
    // Go's os.Getenv: unset and empty are the same.
    let getenv = |k: &str| env(k).unwrap_or_default();
    let (cmd, args) = match cmd_args_from_env(&getenv, stdin) {
        Ok(v) => v,
        Err(e) => {
            if e.code() == codes::INVALID_ENV
                && getenv("CNI_COMMAND").is_empty()
                && !about.is_empty()
            {
                out.stderr.extend_from_slice(about_text(about).as_bytes());
                return Ok(());
            }
            return Err(e);
        }
    };

    match Command::parse(&cmd) {
        Some(Command::Add) => {
            check_version(&args)?;
            let result = plugin.add(&args)?;
            out.stdout
                .extend_from_slice(gojson::to_string_indent(&result).as_bytes());
            check_not_own_netns(&args)
        }
        Some(Command::Del) => {
            check_version(&args)?;
            plugin.del(&args)?;
            check_not_own_netns(&args)
        }
        Some(Command::Check) => {
            gate(&args, "0.4.0", "CHECK")?;
            plugin.check(&args)
        }
        Some(Command::Gc) => {
            gate(&args, "1.1.0", "GC")?;
            require_gc_attachments(&args)?;
            plugin.gc(&args)
        }
        Some(Command::Status) => {
            gate(&args, "1.1.0", "STATUS")?;
            plugin.status(&args)
        }
        Some(Command::Version) => {
            out.stdout
                .extend_from_slice(version::version_reply(SUPPORTED_VERSIONS).as_bytes());
            Ok(())
        }
        None => Err(CniError::InvalidEnv(format!("unknown CNI_COMMAND: {cmd}"))),
    }
}

/// Runs one plugin invocation without touching the process: `env` stands in
/// for the environment, and everything to print comes back in the Outcome.
pub fn run<P: Plugin + ?Sized>(
    plugin: &P,
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
    about: &str,
) -> Outcome {
    let mut out = Outcome::default();
    if let Err(e) = dispatch(plugin, env, stdin, about, &mut out) {
        out.stdout.extend_from_slice(e.to_json().as_bytes());
        out.exit_code = 1;
    }
    out
}

/// The CNI error JSON printed when the plugin panics (code 999).
pub fn format_panic(payload: &str, location: Option<&str>) -> String {
    let details = location.map(|l| format!("at {l}")).unwrap_or_default();
    CniError::with_details(
        codes::INTERNAL,
        format!("plugin panicked: {payload}"),
        details,
    )
    .to_json()
}

fn panic_payload(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Makes any panic print a CNI error (code 999) on stdout and exit 1, so the
/// runtime gets a protocol answer instead of a bare crash.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let payload = panic_payload(info);
        let json = format_panic(&payload, location.as_deref());
        let _ = writeln!(
            std::io::stderr(),
            "panic: {payload} at {}",
            location.as_deref().unwrap_or("unknown location")
        );
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(json.as_bytes());
        let _ = stdout.flush();
        std::process::exit(1);
    }));
}

/// The first line of the about text (printed when CNI_COMMAND is unset), in
/// Go's shape ("CNI bridge plugin v1.1.1") plus what makes a weft build
/// traceable: "CNI bridge plugin v0.1.0 (weft, commit 1a2b3c4d5e6f)".
pub fn about_line(name: &str) -> String {
    format!(
        "CNI {name} plugin v{} (weft, commit {})",
        weft_build_info::VERSION,
        weft_build_info::COMMIT
    )
}

/// `plugin --version`. Runtimes exec plugins without arguments (the CNI
/// protocol is env and stdin only), so an argument can only come from a
/// person asking.
/// Arguments are `OsString`s: `std::env::args()` would panic on one that is not UTF-8.
pub fn version_requested(args: &[std::ffi::OsString]) -> bool {
    args.get(1).is_some_and(|a| a == "--version")
}

/// The plugin entry point: `--version`, then panic hook, environment, stdin,
/// validation, dispatch, printing, exit. `name` is the plugin's type
/// ("bridge"), for the about text and the version line.
pub fn plugin_main<P: Plugin>(plugin: P, name: &str) -> ! {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if version_requested(&argv) {
        println!("{}", weft_build_info::version_line(name));
        std::process::exit(0);
    }
    install_panic_hook();
    let about = about_line(name);
    let env = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let outcome = run(&plugin, &env, &mut lock, &about);
    {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(&outcome.stdout);
        let _ = stdout.flush();
        let mut stderr = std::io::stderr();
        let _ = stderr.write_all(&outcome.stderr);
        let _ = stderr.flush();
    }
    std::process::exit(outcome.exit_code)
}
