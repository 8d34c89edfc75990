//! DEL, GC and STATUS.
//!
//! DEL is idempotent and best effort: it succeeds with an empty or vanished netns, without
//! prevResult, and twice; it keeps cleaning past errors and reports them all at the end (the
//! first one's code, the others in `details`).
//! Unlike Go (plugins#810) it removes the masquerade rules even when the netns is gone, using
//! prevResult's addresses and, failing those, the per-container chain name and comment.

use ipnetwork::IpNetwork;
use std::path::Path;
use std::thread::JoinHandle;
use weft_cni_core::{
    exec_plugin, parse_netconf, CmdArgs, CniError, CniResult, Command, ErrorList, Result,
};

use weft_netlink::{join_netns_thread, Handle, Netns, NlError};

use crate::config::{self, BridgeConf};
use crate::netutil::find_link;
use weft_firewall::spoofcheck;

pub fn cmd_del(args: &CmdArgs) -> Result<()> {
    let conf = config::load(&args.stdin, &args.args)?;
    let mut errors = ErrorList::new();
    let mut ips = prev_result_ips(&conf, &args.ifname);

    // Deleting a veth blocks in the kernel for ~20 ms (synchronize_net while unregistering the
    // pair). Nothing below depends on it: IPAM only touches its files, and the masquerade
    // teardown finds rules by chain name and comment. So the link goes on its own thread (one
    // thread, started inside the pod netns) and the rest of the cleanup overlaps with the
    // kernel's wait.
    let link_removal = if args.netns.is_empty() {
        LinkRemoval::Done(Ok(()))
    } else {
        start_link_removal(&args.netns, &args.ifname)
    };

    if let Some(ipam_type) = &conf.ipam_type {
        errors.check(exec_plugin(ipam_type, Command::Del, &args.stdin, args).map(drop));
    }

    if conf.mac_spoof_chk {
        // Go only logs this one too.
        if let Err(e) = spoofcheck::teardown(&args.container_id, &args.ifname) {
            eprintln!("bridge: failed to teardown spoof-check: {e}");
        }
    }

    if conf.is_layer3() && conf.ip_masq {
        ips.sort_by_key(|n| n.to_string());
        ips.dedup();
        if let Err(e) =
            weft_firewall::teardown_ipmasq(&ips, &conf.name, &args.ifname, &args.container_id)
        {
            errors.push(CniError::Internal(format!(
                "failed to tear down ipMasq: {e}"
            )));
        }
    }

    let link_result = link_removal.wait(&args.netns);
    // The link's error, if any, comes first: it is the one Go would have hit first.
    if let Err(e) = link_result {
        errors.push_front(e);
    }
    errors.into_result()
}

/// The removal of the pod end of the veth: already decided, or running on a thread inside
/// the pod netns.
enum LinkRemoval {
    Done(Result<()>),
    Running(JoinHandle<weft_netlink::Result<Result<()>>>),
}

impl LinkRemoval {
    fn wait(self, netns_path: &str) -> Result<()> {
        match self {
            LinkRemoval::Done(r) => r,
            LinkRemoval::Running(t) => join_netns_thread(t.join(), Path::new(netns_path))
                .map_err(|e| open_netlink_err(netns_path, e))?,
        }
    }
}

/// Starts deleting the pod end of the veth (the kernel removes the host end with it). A
/// vanished netns, or a path that is no longer a netns (a reboot or a runtime that already
/// cleaned up), is "already gone".
fn start_link_removal(netns_path: &str, ifname: &str) -> LinkRemoval {
    let netns = match Netns::open(netns_path) {
        Ok(ns) => ns,
        Err(NlError::NotFound(_)) => return LinkRemoval::Done(Ok(())),
        Err(NlError::NotNetns(_)) => {
            eprintln!(
                "bridge: DEL: {netns_path:?} is not a network namespace; treating it as gone"
            );
            return LinkRemoval::Done(Ok(()));
        }
        Err(e) => {
            return LinkRemoval::Done(Err(CniError::Internal(format!(
                "failed to open netns {netns_path:?}: {e}"
            ))))
        }
    };
    let (path, name) = (netns_path.to_string(), ifname.to_string());
    match netns.spawn(move || remove_container_link(&path, &name)) {
        Ok(t) => LinkRemoval::Running(t),
        Err(e) => LinkRemoval::Done(Err(open_netlink_err(netns_path, e))),
    }
}

fn open_netlink_err(netns_path: &str, e: NlError) -> CniError {
    CniError::Internal(format!("failed to open netlink in {netns_path:?}: {e}"))
}

/// On the thread inside the pod netns: deletes `ifname`; a missing link is "already gone".
fn remove_container_link(netns_path: &str, ifname: &str) -> Result<()> {
    let h = Handle::new().map_err(|e| open_netlink_err(netns_path, e))?;
    let Some(link) = find_link(&h, ifname)
        .map_err(|e| CniError::Internal(format!("failed to lookup {ifname:?}: {e}")))?
    else {
        return Ok(());
    };
    match h.link_del(link.index) {
        Ok(()) | Err(NlError::NotFound(_)) => Ok(()),
        Err(e) => Err(CniError::Internal(format!(
            "failed to delete {ifname:?}: {e}"
        ))),
    }
}

/// The addresses prevResult gave our pod interface (those whose interface index names
/// `ifname` in a sandbox, or carry no index at all).
fn prev_result_ips(conf: &BridgeConf, ifname: &str) -> Vec<IpNetwork> {
    let Some(prev) = &conf.prev_result else {
        return Vec::new();
    };
    let Ok(res) = CniResult::parse(prev) else {
        eprintln!("bridge: DEL: ignoring an unparsable prevResult");
        return Vec::new();
    };
    res.ips
        .iter()
        .filter(|ip| match ip.interface {
            None => true,
            Some(i) => res
                .interfaces
                .get(i)
                .map(|intf| intf.name == ifname && !intf.sandbox.is_empty())
                .unwrap_or(false),
        })
        .map(|ip| ip.address)
        .collect()
}

/// GC (CNI 1.1; Go's bridge has none): forwards to IPAM, then removes the masquerade rules of
/// this network that belong to no valid attachment. Keeps going past errors and reports
/// them all.
pub fn cmd_gc(args: &CmdArgs) -> Result<()> {
    let conf = config::load(&args.stdin, &args.args)?;
    let valid = parse_netconf(&args.stdin)?.valid_attachments()?;
    let mut errors = ErrorList::new();
    if let Some(ipam_type) = &conf.ipam_type {
        errors.check(exec_plugin(ipam_type, Command::Gc, &args.stdin, args).map(drop));
    }
    if let Err(e) = weft_firewall::gc_ipmasq(&conf.name, &valid) {
        errors.push(CniError::Internal(format!(
            "failed to collect ipMasq rules: {e}"
        )));
    }
    errors.into_result()
}

/// STATUS is delegated to IPAM, as in Go v1.6+.
pub fn cmd_status(args: &CmdArgs) -> Result<()> {
    let conf = config::load(&args.stdin, &args.args)?;
    if let Some(ipam_type) = &conf.ipam_type {
        exec_plugin(ipam_type, Command::Status, &args.stdin, args)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prev_ips_only_for_our_interface() {
        let conf = config::load(
            br#"{"name":"n","prevResult":{"cniVersion":"1.0.0",
                "interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/x"}],
                "ips":[{"interface":2,"address":"10.1.2.3/24"},{"interface":0,"address":"10.9.9.9/24"}]}}"#,
            "",
        )
        .unwrap();
        let ips = prev_result_ips(&conf, "eth0");
        assert_eq!(ips.len(), 1);
        assert_eq!(ips[0].to_string(), "10.1.2.3/24");
    }
}
