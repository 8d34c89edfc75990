//! CHECK: the bridge, the pod's veth and its host peer, and prevResult's addresses and routes
//! must all still be in place. Two fixes over Go 1.1.1: a layer-2 network (no IPAM) can be
//! checked, and a route without a gateway matches the route that ADD installed for it.

use weft_cni_core::{exec_plugin, CmdArgs, CniError, CniResult, Command, Interface, Result};
use weft_netlink::{Family, Handle, Link};

use crate::config::{self, format_mac};
use crate::netutil::{find_link, nl, open_netns};

pub fn cmd_check(args: &CmdArgs) -> Result<()> {
    let conf = config::load(&args.stdin, &args.args)?;
    let netns = open_netns(&args.netns)?;
    if let Some(t) = &conf.ipam_type {
        exec_plugin(t, Command::Check, &args.stdin, args)?;
    }
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::InvalidConfig("Required prevResult missing".into()))?;
    let result = CniResult::parse(prev)?;

    let br_if = result.interfaces.iter().find(|i| i.name == conf.bridge);
    let cont_if = result
        .interfaces
        .iter()
        .find(|i| i.name == args.ifname && i.sandbox == args.netns);

    let host = Handle::new().map_err(nl("open netlink socket"))?;
    let br = check_bridge(&host, br_if, &conf.bridge, conf.promisc_mode)?;

    let Some(cont_if) = cont_if else {
        let sandbox = result
            .interfaces
            .iter()
            .find(|i| i.name == args.ifname)
            .map(|i| i.sandbox.clone())
            .unwrap_or_default();
        return Err(CniError::Internal(format!(
            "Sandbox in prevResult {sandbox} doesn't match configured netns: {}",
            args.netns
        )));
    };
    let cont = Handle::for_netns(&netns).map_err(nl("open netlink socket in the pod netns"))?;
    let cont_link = check_container_iface(&cont, cont_if)?;

    let found_veth = result
        .interfaces
        .iter()
        .filter(|i| i.name != conf.bridge && i.name != cont_if.name)
        .map(|i| check_host_veth(&host, i, &br, &cont_link))
        .collect::<Result<Vec<bool>>>()?
        .into_iter()
        .any(|found| found);
    if !found_veth {
        return Err(CniError::Internal(format!(
            "CNI veth created for bridge {} was not found",
            conf.bridge
        )));
    }

    check_ips(&cont, &cont_link, &result)?;
    check_routes(&cont, &result)
}

fn check_bridge(
    host: &Handle,
    intf: Option<&Interface>,
    name: &str,
    promisc: bool,
) -> Result<Link> {
    let Some(intf) = intf else {
        return Err(CniError::Internal(format!(
            "CNI created bridge {name} in host namespace was not found"
        )));
    };
    if !intf.sandbox.is_empty() {
        return Err(CniError::Internal(format!(
            "Interface {} should not be in sandbox",
            intf.name
        )));
    }
    let link = find_link(host, &intf.name)
        .map_err(nl("lookup bridge"))?
        .ok_or_else(|| CniError::Internal(format!("Interface name {} not found", intf.name)))?;
    if link.kind.as_deref() != Some("bridge") {
        return Err(CniError::Internal(format!(
            "Interface {} does not have link type of bridge",
            intf.name
        )));
    }
    if !intf.mac.is_empty() && intf.mac != format_mac(&link.mac) {
        return Err(CniError::Internal(format!(
            "Bridge interface {} Mac doesn't match: {}",
            intf.name, intf.mac
        )));
    }
    if link.promisc != promisc {
        return Err(CniError::Internal(format!(
            "Bridge interface {} configured Promisc Mode {promisc} doesn't match current state: {} ",
            intf.name, link.promisc
        )));
    }
    Ok(link)
}

fn check_container_iface(cont: &Handle, intf: &Interface) -> Result<Link> {
    let link = find_link(cont, &intf.name)
        .map_err(nl("lookup container interface"))?
        .ok_or_else(|| CniError::Internal(format!("Interface name {} not found", intf.name)))?;
    if link.kind.as_deref() != Some("veth") {
        return Err(CniError::Internal(format!(
            "Error: Container interface {} not of type veth",
            link.name
        )));
    }
    if !intf.mac.is_empty() && intf.mac != format_mac(&link.mac) {
        return Err(CniError::Internal(format!(
            "Interface {} Mac {} doesn't match container Mac: {}",
            intf.name,
            intf.mac,
            format_mac(&link.mac)
        )));
    }
    Ok(link)
}

/// True when `intf` is the host veth whose peer is the pod interface and whose master is the
/// bridge. Interfaces that are not veths, or are someone else's, are skipped (Go does too).
fn check_host_veth(host: &Handle, intf: &Interface, br: &Link, cont: &Link) -> Result<bool> {
    let Some(link) = find_link(host, &intf.name).map_err(nl("lookup host veth"))? else {
        return Err(CniError::Internal(format!(
            "Interface name {} not found",
            intf.name
        )));
    };
    if link.kind.as_deref() != Some("veth") {
        return Ok(false);
    }
    let ours = Some(link.index) == cont.peer_index
        && link.peer_index == Some(cont.index)
        && link.master == Some(br.index);
    if !ours {
        return Ok(false);
    }
    if !intf.mac.is_empty() && intf.mac != format_mac(&link.mac) {
        return Err(CniError::Internal(format!(
            "Interface {} Mac doesn't match: {} not found",
            intf.name, intf.mac
        )));
    }
    Ok(true)
}

fn check_ips(cont: &Handle, link: &Link, result: &CniResult) -> Result<()> {
    let have = cont
        .addrs(Some(link.index), Family::All)
        .map_err(nl("list container addresses"))?;
    for ip in &result.ips {
        let for_us = match ip.interface {
            None => true,
            Some(i) => result
                .interfaces
                .get(i)
                .map(|x| x.name == link.name)
                .unwrap_or(false),
        };
        if for_us && !have.iter().any(|a| a.net == ip.address) {
            return Err(CniError::Internal(format!(
                "Failed to match addr {} on interface {}",
                ip.address, link.name
            )));
        }
    }
    Ok(())
}

fn check_routes(cont: &Handle, result: &CniResult) -> Result<()> {
    let have = cont
        .routes(Family::All, None)
        .map_err(nl("list container routes"))?;
    for r in &result.routes {
        let found = have.iter().any(|h| {
            h.dst == r.dst
                && (r.gw.is_none() || h.gw == r.gw || h.nexthops.iter().any(|n| n.gw == r.gw))
        });
        if !found {
            let gw =
                r.gw.map(|g| g.to_string())
                    .unwrap_or_else(|| "<nil>".into());
            return Err(CniError::Internal(format!(
                "Failed to find a route for {} via {gw}",
                r.dst
            )));
        }
    }
    Ok(())
}
