//! ADD, DEL, CHECK, GC and STATUS.
//!
//! Where weft differs from Go's flannel plugin (reference flannel.md §1, §7):
//! - a failed ADD undoes itself: best-effort delegate DEL, then the saved file is removed
//!   (Go leaves it, containernetworking/plugins#426);
//! - a failed delegate DEL keeps the saved file so the runtime's retry can still clean up (Go
//!   removes it whatever happens);
//! - CHECK runs the delegate's CHECK with the saved config (Go: no-op);
//! - ADD waits up to `subnetFileWaitSeconds` (default 5) for a missing subnet.env before
//!   answering code 11 (Go fails at once; flannel#2437, the boot race);
//! - GC removes saved files of dead containers and forwards GC; STATUS reports whether
//!   flanneld has written subnet.env, then forwards STATUS (Go: no-ops).

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use weft_cni_core::{
    exec_plugin, CmdArgs, CniError, CniResult, Command, ErrorList, Result, VALID_ATTACHMENTS,
};

use crate::config::{check_plugin_name, FlannelConf};
use crate::delegate::{self, Delegate};
use crate::scratch;
use crate::subnet_env::{self, net_string, EnvError, SubnetEnv};

const CHECK_LOG: &str = "Check the flannel pod log for this node.";

/// subnet.env problems as ADD reports them: Go's wording (cni-plugin PR #125), the code says
/// whether retrying can help.
fn add_env_error(path: &str, e: EnvError, waited: Duration) -> CniError {
    let go = |text: &str| format!("failed to load flannel 'subnet.env' file: {text}. {CHECK_LOG}");
    match e {
        // flanneld writes the file once it holds a lease: retrying later will work.
        EnvError::NotFound(text) => {
            let mut msg = format!(
                "{} flanneld has not written {path} yet: it does once it runs on this node and \
                 holds a subnet lease (with the kube subnet manager: once the node has a podCIDR).",
                go(&text)
            );
            if !waited.is_zero() {
                msg.push_str(&format!(
                    " Waited {:.1}s for it (subnetFileWaitSeconds).",
                    waited.as_secs_f64()
                ));
            }
            CniError::TryAgainLater(msg)
        }
        EnvError::Io(text) => CniError::Io(go(&text)),
        EnvError::Invalid(text) => CniError::InvalidConfig(go(&text)),
    }
}

/// ADD's subnet.env: while it does not exist (flanneld not up yet, the boot race of
/// flannel#2437), polled every 100 ms for up to `subnetFileWaitSeconds`; then code 11. Any
/// other problem is reported at once. CHECK, DEL, GC and STATUS never wait.
fn load_env_for_add(conf: &FlannelConf) -> Result<SubnetEnv> {
    let wait = conf.subnet_file_wait()?;
    let start = Instant::now();
    loop {
        match subnet_env::load(&conf.subnet_file) {
            Ok(env) => return Ok(env),
            Err(EnvError::NotFound(_)) if start.elapsed() < wait => {
                let left = wait.saturating_sub(start.elapsed());
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
            Err(e) => return Err(add_env_error(&conf.subnet_file, e, wait)),
        }
    }
}

fn io_error(what: &str, path: &std::path::Path, e: &io::Error) -> CniError {
    CniError::Io(subnet_env::go_io_error(
        what,
        &path.display().to_string(),
        e,
    ))
}

pub fn cmd_add(args: &CmdArgs) -> Result<Value> {
    let conf = FlannelConf::load(&args.stdin)?;
    // Permanent config errors first, then the (often transient) subnet.env ones.
    conf.checked_delegate()?;
    let env = load_env_for_add(&conf)?;
    let d = delegate::build(&conf, &env)?;
    let target = scratch::path(&conf.data_dir, &args.container_id);
    eprintln!(
        "flannel: delegate {} netconf for {}: {}",
        d.plugin_type,
        target.display(),
        d.bytes
    );
    // Saved before delegating, so a DEL after a crash half way through still finds it.
    scratch::save(&conf.data_dir, &args.container_id, d.bytes.as_bytes())
        .map_err(|e| io_error("failed to save the delegate config to", &target, &e))?;
    match delegate_add(args, &conf, &d) {
        Ok(result) => Ok(result),
        Err(e) => {
            undo_add(args, &conf, &d);
            Err(e)
        }
    }
}

fn delegate_add(args: &CmdArgs, conf: &FlannelConf, d: &Delegate) -> Result<Value> {
    let raw = exec_plugin(&d.plugin_type, Command::Add, d.bytes.as_bytes(), args)
        .map_err(|e| e.context("failed to delegate add"))?
        .ok_or_else(|| {
            CniError::Internal(format!(
                "failed to delegate add: {} returned no result",
                d.plugin_type
            ))
        })?;
    CniResult::parse(&raw)
        .and_then(|r| r.to_value(conf.version()))
        .map_err(|e| e.context(&format!("result of delegate {}", d.plugin_type)))
}

/// After a failed ADD: nothing may stay behind, and nothing would clean it up later since
/// the runtime's DEL finds no saved config. Best effort, errors are only logged.
fn undo_add(args: &CmdArgs, conf: &FlannelConf, d: &Delegate) {
    if let Err(e) = exec_plugin(&d.plugin_type, Command::Del, d.bytes.as_bytes(), args) {
        eprintln!(
            "flannel: cleanup after the failed ADD: delegate {} DEL failed: {e}",
            d.plugin_type
        );
    }
    if let Err(e) = scratch::remove(&conf.data_dir, &args.container_id) {
        eprintln!("flannel: cleanup after the failed ADD: cannot remove the saved config: {e}");
    }
}

/// The plugin type of a saved config, or why it cannot be used.
fn saved_type(bytes: &[u8]) -> std::result::Result<(String, Map<String, Value>), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    // Go decodes the saved file into types.NetConf: the shared keys must have their types.
    weft_cni_core::NetConf::from_value(&v).map_err(|e| e.msg())?;
    let Value::Object(obj) = v else {
        return Err("not a JSON object".to_string());
    };
    let t = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    check_plugin_name(&t).map_err(|e| e.msg())?;
    Ok((t, obj))
}

pub fn cmd_del(args: &CmdArgs) -> Result<()> {
    // DEL needs only dataDir: it works while flanneld is down or subnet.env is gone.
    let conf = FlannelConf::load(&args.stdin)?;
    let path = scratch::path(&conf.data_dir, &args.container_id);
    // An ADD killed while saving leaves its temporary file; it is this DEL's to remove.
    if let Err(e) = scratch::remove_stale_temps(&conf.data_dir, Some(&args.container_id)) {
        eprintln!(
            "flannel: DEL: cannot remove temporary files in {}: {e}",
            conf.data_dir.display()
        );
    }
    let bytes = match scratch::read(&conf.data_dir, &args.container_id) {
        Ok(b) => b,
        // Never added, or already deleted.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(io_error(
                "failed to read the saved delegate config",
                &path,
                &e,
            ))
        }
    };
    let plugin_type = match saved_type(&bytes) {
        Ok((t, _)) => t,
        Err(why) => {
            // As Go: the pod's interface stays until the node reboots; failing would only make
            // the runtime retry forever. The file is kept for inspection.
            eprintln!(
                "flannel: DEL: ignoring the unparsable saved config {}: {why}",
                path.display()
            );
            return Ok(());
        }
    };
    // The saved bytes are replayed exactly: the current conf and runtimeConfig do not matter.
    exec_plugin(&plugin_type, Command::Del, &bytes, args)
        .map_err(|e| e.context("failed to delegate del"))?;
    if let Err(e) = scratch::remove(&conf.data_dir, &args.container_id) {
        // The delegate's DEL is idempotent: a later DEL replays it; GC removes the file.
        eprintln!("flannel: DEL: cannot remove {}: {e}", path.display());
    }
    Ok(())
}

pub fn cmd_check(args: &CmdArgs) -> Result<()> {
    let conf = FlannelConf::load(&args.stdin)?;
    let path = scratch::path(&conf.data_dir, &args.container_id);
    // CHECK only reads, as Go's: an interrupted ADD's temporary file is DEL's and GC's to
    // remove.
    let bytes = match scratch::read(&conf.data_dir, &args.container_id) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CniError::UnknownContainer(format!(
                "no saved delegate config {}: container {} was not added by flannel",
                path.display(),
                args.container_id
            )))
        }
        Err(e) => {
            return Err(io_error(
                "failed to read the saved delegate config",
                &path,
                &e,
            ))
        }
    };
    let (plugin_type, mut obj) = saved_type(&bytes).map_err(|why| {
        CniError::Decode(format!(
            "the saved delegate config {} is unusable: {why}",
            path.display()
        ))
    })?;
    // The subnet the pod got must still be the node's (flannel #1850: a node whose lease
    // changed keeps pods in the old subnet). Only checked while subnet.env is readable.
    if let Ok(env) = subnet_env::load(&conf.subnet_file) {
        check_same_subnets(&obj, &env, &conf.subnet_file)?;
    }
    // prevResult is in the current conf's version, so the delegate must read it as such.
    if !conf.cni_version.is_empty() {
        obj.insert("cniVersion".into(), Value::from(conf.cni_version.as_str()));
    }
    if let Some(prev) = &conf.net.prev_result {
        obj.insert("prevResult".into(), prev.clone());
    }
    let stdin = delegate::marshal(&Value::Object(obj));
    exec_plugin(&plugin_type, Command::Check, stdin.as_bytes(), args)
        .map_err(|e| e.context("failed to delegate check"))?;
    Ok(())
}

/// The `ipam.ranges` subnets of a saved config.
fn saved_subnets(obj: &Map<String, Value>) -> Option<HashSet<String>> {
    let ranges = obj.get("ipam")?.get("ranges")?.as_array()?;
    Some(
        ranges
            .iter()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|r| r.get("subnet").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
    )
}

fn check_same_subnets(obj: &Map<String, Value>, env: &SubnetEnv, path: &str) -> Result<()> {
    let Some(saved) = saved_subnets(obj) else {
        return Ok(());
    };
    let now: HashSet<String> = env
        .subnet
        .iter()
        .chain(&env.ip6_subnet)
        .map(net_string)
        .collect();
    if saved == now {
        return Ok(());
    }
    let list = |s: &HashSet<String>| {
        let mut v: Vec<&str> = s.iter().map(String::as_str).collect();
        v.sort_unstable();
        v.join(", ")
    };
    Err(CniError::Internal(format!(
        "the node's flannel subnet changed: the container was attached in {}, {path} now has {}",
        list(&saved),
        list(&now)
    )))
}

pub fn cmd_gc(args: &CmdArgs) -> Result<()> {
    let conf = FlannelConf::load(&args.stdin)?;
    let valid = conf.net.valid_attachments()?;
    let valid_ids: HashSet<&str> = valid.iter().map(|(id, _)| id.as_str()).collect();
    let mut errors = ErrorList::new();
    let ids = scratch::list(&conf.data_dir)
        .map_err(|e| io_error("failed to list", &conf.data_dir, &e))?;
    let mut live: HashMap<String, Map<String, Value>> = HashMap::new();
    for id in ids {
        let Ok(bytes) = scratch::read(&conf.data_dir, &id) else {
            continue;
        };
        // Only our network's files: a dataDir can be shared by several flannel networks. An
        // unparsable file belongs to no one we can tell, so it stays.
        let Ok((_, obj)) = saved_type(&bytes) else {
            continue;
        };
        if obj.get("name").and_then(Value::as_str) != Some(conf.name.as_str()) {
            continue;
        }
        if valid_ids.contains(id.as_str()) {
            live.insert(id, obj);
            continue;
        }
        match scratch::remove(&conf.data_dir, &id) {
            Ok(()) => eprintln!("flannel: GC: removed the saved config of container {id}"),
            Err(e) => {
                errors.push(io_error(
                    "failed to remove",
                    &scratch::path(&conf.data_dir, &id),
                    &e,
                ));
            }
        }
    }
    // Temporary files of ADDs killed while saving (their writer is gone).
    match scratch::remove_stale_temps(&conf.data_dir, None) {
        Ok(0) => {}
        Ok(n) => eprintln!("flannel: GC: removed {n} temporary files of interrupted ADDs"),
        Err(e) => {
            errors.push(io_error("failed to clean", &conf.data_dir, &e));
        }
    }
    errors.check(forward_gc(args, &conf, &valid, live));
    errors.into_result()
}

/// GC goes to the delegate with a config built from the current conf: the saved config of a
/// live container (what that delegate really runs with), else one built from subnet.env. With
/// neither there is nothing to tell the delegate about this network, and GC stops here.
fn forward_gc(
    args: &CmdArgs,
    conf: &FlannelConf,
    valid: &[(String, String)],
    mut live: HashMap<String, Map<String, Value>>,
) -> Result<()> {
    let from_live = valid.iter().find_map(|(id, _)| live.remove(id));
    let mut obj = match from_live {
        Some(obj) => obj,
        None => match subnet_env::load(&conf.subnet_file) {
            Ok(env) => match delegate::build_value(conf, &env)? {
                Value::Object(obj) => obj,
                _ => return Ok(()),
            },
            Err(e) => {
                eprintln!(
                    "flannel: GC: not forwarded to the delegate: no live container's saved \
                     config and no usable subnet.env ({e})"
                );
                return Ok(());
            }
        },
    };
    let plugin_type = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("bridge")
        .to_string();
    check_plugin_name(&plugin_type)?;
    // Per-container data has no place in GC.
    obj.remove("runtimeConfig");
    obj.remove("prevResult");
    obj.insert("cniVersion".into(), Value::from(conf.cni_version.as_str()));
    let attachments = conf
        .net
        .extra
        .get(VALID_ATTACHMENTS)
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    obj.insert(VALID_ATTACHMENTS.into(), attachments);
    let stdin = delegate::marshal(&Value::Object(obj));
    exec_plugin(&plugin_type, Command::Gc, stdin.as_bytes(), args)
        .map_err(|e| e.context(&format!("failed to delegate GC to {plugin_type}")))?;
    Ok(())
}

pub fn cmd_status(args: &CmdArgs) -> Result<()> {
    let conf = FlannelConf::load(&args.stdin)?;
    let env = subnet_env::load(&conf.subnet_file).map_err(|e| {
        let msg = match &e {
            EnvError::NotFound(_) => format!(
                "flanneld has not written {} yet: the flannel network is not ready on this node ({e})",
                conf.subnet_file
            ),
            _ => format!("flannel cannot use {}: {e}", conf.subnet_file),
        };
        CniError::NotAvailable(msg)
    })?;
    // What ADD would run, minus the per-container runtimeConfig.
    let conf = FlannelConf {
        runtime_config: None,
        ..conf
    };
    let d = delegate::build(&conf, &env)?;
    exec_plugin(&d.plugin_type, Command::Status, d.bytes.as_bytes(), args)
        .map_err(|e| e.context(&format!("delegate {} STATUS", d.plugin_type)))?;
    Ok(())
}
