//! weft's `loopback` CNI plugin: brings `lo` up in the pod netns (containerd's CRI calls it for
//! every pod, at cniVersion 0.3.1, with CNI_IFNAME=lo). Same result as the Go plugin: the
//! prevResult if there is one, else `lo` with its loopback addresses.

use serde_json::Value;
use weft_cni_core::{
    parse_netconf, plugin_main, CmdArgs, CniError, CniResult, Interface, IpConfig, Plugin, Result,
};
use weft_netlink::{Family, Handle, Netns, NlError};

pub struct Loopback;

fn nl(ctx: &'static str) -> impl FnOnce(NlError) -> CniError {
    move |e| CniError::Internal(format!("{ctx}: {e}"))
}

/// The pod's `lo`, set up, and its first v4 and v6 addresses (which must be loopback ones).
fn bring_up(netns: &str) -> Result<CniResult> {
    let ns = Netns::open(netns)
        .map_err(|e| CniError::InvalidEnv(format!("failed to open netns {netns:?}: {e}")))?;
    let h = Handle::for_netns(&ns).map_err(nl("open netlink socket in the pod netns"))?;
    let lo = h.link_by_name("lo").map_err(nl("lookup lo"))?;
    h.link_set_up(lo.index).map_err(nl("set lo up"))?;
    let mut ips = Vec::new();
    for family in [Family::V4, Family::V6] {
        let addrs = h
            .addrs(Some(lo.index), family)
            .map_err(nl("list lo addresses"))?;
        if let Some(bad) = addrs.iter().find(|a| !a.net.ip().is_loopback()) {
            return Err(CniError::Internal(format!(
                "loopback interface found with non-loopback address {:?}",
                bad.net.ip().to_string()
            )));
        }
        if let Some(first) = addrs.first() {
            ips.push(IpConfig {
                interface: Some(0),
                address: first.net,
                gateway: None,
                extra: Default::default(),
            });
        }
    }
    Ok(CniResult {
        interfaces: vec![Interface {
            name: "lo".into(),
            mac: "00:00:00:00:00:00".into(),
            sandbox: netns.to_string(),
            ..Default::default()
        }],
        ips,
        ..Default::default()
    })
}

impl Plugin for Loopback {
    fn add(&self, args: &CmdArgs) -> Result<Value> {
        let conf = parse_netconf(&args.stdin)?;
        let version = if conf.cni_version.is_empty() {
            "0.1.0"
        } else {
            conf.cni_version.as_str()
        };
        let prev = match &conf.prev_result {
            Some(p) => {
                Some(CniResult::parse(p).map_err(|e| e.context("failed to parse prevResult"))?)
            }
            None => None,
        };
        let mut result = bring_up(&args.netns)?;
        // A prevResult from an earlier plugin passes through unchanged (as Go).
        if let Some(p) = prev {
            result = p;
        }
        result.cni_version = version.to_string();
        result.to_value(version)
    }

    fn del(&self, args: &CmdArgs) -> Result<()> {
        if args.netns.is_empty() {
            return Ok(());
        }
        let ns = match Netns::open(&args.netns) {
            Ok(ns) => ns,
            // Already gone (reboot, runtime cleanup) or no longer a netns: nothing to undo.
            Err(NlError::NotFound(_)) | Err(NlError::NotNetns(_)) => return Ok(()),
            Err(e) => {
                return Err(CniError::Internal(format!(
                    "failed to open netns {:?}: {e}",
                    args.netns
                )))
            }
        };
        let h = Handle::for_netns(&ns).map_err(nl("open netlink socket in the pod netns"))?;
        match h.link_by_name("lo") {
            Ok(lo) => h.link_set_down(lo.index).map_err(nl("set lo down")),
            Err(NlError::NotFound(_)) => Ok(()),
            Err(e) => Err(nl("lookup lo")(e)),
        }
    }

    fn check(&self, args: &CmdArgs) -> Result<()> {
        let ns = Netns::open(&args.netns).map_err(|e| {
            CniError::InvalidEnv(format!("failed to open netns {:?}: {e}", args.netns))
        })?;
        let h = Handle::for_netns(&ns).map_err(nl("open netlink socket in the pod netns"))?;
        let lo = h.link_by_name("lo").map_err(nl("lookup lo"))?;
        if !lo.up {
            return Err(CniError::Internal("loopback interface is down".into()));
        }
        Ok(())
    }
}

/// The `loopback` binary (or the multicall binary run as `loopback`).
pub fn main() -> ! {
    plugin_main(Loopback, "loopback")
}
