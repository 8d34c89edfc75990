//! ADD: bridge, veth, IPAM, addresses, routes, gateway, ipMasq, macspoofchk.

use std::net::IpAddr;
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use serde_json::Value;
use weft_cni_core::{
    exec_plugin, CmdArgs, CniError, CniResult, Command, Interface, Result, Route, Trace,
};
use weft_netlink::{
    join_netns_thread, sysctl_get, sysctl_set, Family, Handle, Link, Netns, NlError,
    Route as NlRoute,
};

use crate::config::{self, format_mac, BridgeConf};
use crate::netutil::{
    default_net, find_link, gateway_of, nl, open_netns, random_veth_name, same_family, Undo,
};
use weft_firewall::spoofcheck;

/// How many random veth names to try before giving up (as Go).
const VETH_NAME_TRIES: usize = 10;

pub fn cmd_add(args: &CmdArgs) -> Result<Value> {
    let mut trace = Trace::new("bridge");
    let conf = config::load(&args.stdin, &args.args)?;
    let mut undo = Undo::new();

    // IPAM runs in its own process; start it now so its exec overlaps our netlink work (on a
    // busy node this hides most of host-local's start-up). The guard releases the allocation
    // if ADD fails before the result is consumed.
    let mut pending = conf
        .ipam_type
        .as_ref()
        .map(|t| PendingIpam::start(t.clone(), args.clone()));

    let host = Handle::new().map_err(nl("open netlink socket"))?;
    let br = ensure_bridge(&host, &conf)?;
    trace.mark("bridge");
    let netns = open_netns(&args.netns)?;

    let (host_veth, cont, cont_link) =
        setup_veth(&host, &netns, &br, &conf, args, &mut undo, &mut trace)?;
    let cont_mac = format_mac(&cont_link.mac);
    trace.mark("veth");

    let mut result = CniResult {
        cni_version: "1.1.0".into(),
        interfaces: vec![
            iface(&br.name, &br.mac, ""),
            iface(&host_veth.name, &host_veth.mac, ""),
            iface(&args.ifname, &cont_link.mac, &args.netns),
        ],
        ..Default::default()
    };

    if conf.mac_spoof_chk {
        spoofcheck::setup(&args.container_id, &args.ifname, &host_veth.name, &cont_mac)
            .map_err(|e| CniError::Internal(format!("failed to setup spoof-check: {e}")))?;
        let (cid, ifn) = (args.container_id.clone(), args.ifname.clone());
        undo.push("remove macspoofchk rules", move || {
            spoofcheck::teardown(&cid, &ifn).map_err(|e| e.to_string())
        });
    }

    if let (Some(ipam_type), Some(p)) = (&conf.ipam_type, pending.as_mut()) {
        let ipam_result = p.wait()?;
        {
            let (t, stdin, a) = (ipam_type.clone(), args.stdin.clone(), args.clone());
            undo.push("release IPAM allocation", move || {
                exec_plugin(&t, Command::Del, &stdin, &a)
                    .map(|_| ())
                    .map_err(|e| e.msg())
            });
        }
        let ipam_result = ipam_result
            .ok_or_else(|| CniError::Internal("IPAM plugin returned missing IP config".into()))?;
        trace.mark("ipam");
        let ipam = CniResult::parse(&ipam_result)?;
        result.ips = ipam.ips;
        result.routes = ipam.routes;
        result.dns = ipam.dns;
        if result.ips.is_empty() {
            return Err(CniError::Internal(
                "IPAM plugin returned missing IP config".into(),
            ));
        }
        let gateways = calc_gateways(&mut result, &conf);
        configure_container(&cont, &netns, cont_link.index, args, &conf, &result)?;
        trace.mark("container");
        if conf.is_gateway {
            setup_gateways(&host, &br, &conf, &gateways, &mut result, &mut undo)?;
            trace.mark("gateway");
        }
        if conf.ip_masq {
            setup_masq(&conf, args, &result, &mut undo)?;
            trace.mark("ipmasq");
        }
    } else if !conf.disable_container_interface {
        cont.link_set_up(cont_link.index)
            .map_err(nl(format!("failed to set {:?} up", args.ifname)))?;
    }

    let host_veth = if conf.disable_container_interface {
        host.link_by_index(host_veth.index)
            .map_err(nl(format!("failed to lookup {:?}", host_veth.name)))?
    } else {
        wait_port_up(&host, host_veth.index, &host_veth.name)?
    };

    trace.mark("port-up");
    // The host veth and bridge MACs can change as ports come and go: report what they are now.
    result.interfaces[1].mac = format_mac(&host_veth.mac);
    let br_now = host
        .link_by_index(br.index)
        .map_err(nl(format!("could not lookup {:?}", conf.bridge)))?;
    result.interfaces[0].mac = format_mac(&br_now.mac);

    if let Some(dns) = &conf.dns {
        if !dns.nameservers.is_empty()
            || !dns.search.is_empty()
            || !dns.options.is_empty()
            || !dns.domain.is_empty()
        {
            result.dns = dns.clone();
        }
    }

    let out = result.to_value(&conf.cni_version)?;
    undo.disarm();
    Ok(out)
}

/// An IPAM ADD running on a helper thread (the thread waits for the plugin process).
struct PendingIpam {
    plugin: String,
    args: CmdArgs,
    thread: Option<JoinHandle<Result<Option<Value>>>>,
}

impl PendingIpam {
    fn start(plugin: String, args: CmdArgs) -> Self {
        let (p, a) = (plugin.clone(), args.clone());
        let thread = std::thread::Builder::new()
            .name("weft-ipam".into())
            .spawn(move || exec_plugin(&p, Command::Add, &a.stdin, &a))
            .ok();
        PendingIpam {
            plugin,
            args,
            thread,
        }
    }

    /// The IPAM result. After this, releasing the allocation is the caller's job.
    fn wait(&mut self) -> Result<Option<Value>> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(CniError::Internal("IPAM thread panicked".into()))),
            // The thread could not be spawned: run IPAM here.
            None => exec_plugin(&self.plugin, Command::Add, &self.args.stdin, &self.args),
        }
    }
}

impl Drop for PendingIpam {
    /// ADD failed before it used the IPAM result: wait for IPAM and give the address back, so
    /// nothing leaks (the plugin process would otherwise finish on its own after we exit).
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            if let Ok(Ok(_)) = t.join() {
                if let Err(e) =
                    exec_plugin(&self.plugin, Command::Del, &self.args.stdin, &self.args)
                {
                    eprintln!(
                        "bridge: cleanup after failed ADD: release IPAM allocation: {}",
                        e.msg()
                    );
                }
            }
        }
    }
}

fn iface(name: &str, mac: &[u8; 6], sandbox: &str) -> Interface {
    Interface {
        name: name.to_string(),
        mac: format_mac(mac),
        sandbox: sandbox.to_string(),
        ..Default::default()
    }
}

/// Creates the bridge (tolerating an existing one), checks it really is a bridge, turns on
/// promisc if asked, stops it accepting router advertisements and brings it up.
fn ensure_bridge(host: &Handle, conf: &BridgeConf) -> Result<Link> {
    let name = &conf.bridge;
    let wrap = |e: String| CniError::Internal(format!("failed to create bridge {name:?}: {e}"));
    // Look up first: on a running node the bridge nearly always exists already.
    let exists = find_link(host, name)
        .map_err(nl(format!("could not lookup {name:?}")))?
        .is_some();
    if !exists {
        match host.bridge_create(name, conf.mtu, conf.vlan_filtering()) {
            Ok(_) | Err(NlError::Exists(_)) => {}
            Err(e) => return Err(wrap(format!("could not add {name:?}: {e}"))),
        }
    }
    let br = bridge_by_name(host, name).map_err(|e| match e {
        // An existing link of another type is a configuration conflict, not an internal error.
        CniError::InvalidConfig(m) => {
            CniError::InvalidConfig(format!("failed to create bridge {name:?}: {m}"))
        }
        other => other,
    })?;
    if conf.vlan_filtering() {
        host.bridge_set_vlan_filtering(br.index, true)
            .map_err(|e| wrap(format!("could not enable vlan_filtering: {e}")))?;
    }
    if conf.promisc_mode && !br.promisc {
        host.link_set_promisc(br.index, true)
            .map_err(|e| wrap(format!("could not set promiscuous mode on {name:?}: {e}")))?;
    }
    // We own the routes of this interface.
    let _ = sysctl_set(&format!("net/ipv6/conf/{name}/accept_ra"), "0");
    if !br.up {
        host.link_set_up(br.index)
            .map_err(|e| wrap(e.to_string()))?;
    }
    Ok(br)
}

pub fn bridge_by_name(host: &Handle, name: &str) -> Result<Link> {
    let link = host
        .link_by_name(name)
        .map_err(nl(format!("could not lookup {name:?}")))?;
    if link.kind.as_deref() != Some("bridge") {
        return Err(CniError::InvalidConfig(format!(
            "{name:?} already exists but is not a bridge"
        )));
    }
    Ok(link)
}

/// Creates the veth pair with one RTM_NEWLINK: the pod end (`ifname`) is born inside the pod
/// netns, the host end (`vethXXXXXXXX`) in ours. Then wires the host end into the bridge while
/// one thread inside the pod netns opens the pod's netlink socket, looks up the pod end and
/// sets its sysctls. Returns the host end, the pod netns handle and the pod end.
///
/// No lookup of `ifname` before the create: an existing `ifname` in the pod fails the create
/// with EEXIST, which `create_veth` tells apart from a host-name collision.
fn setup_veth(
    host: &Handle,
    netns: &Netns,
    br: &Link,
    conf: &BridgeConf,
    args: &CmdArgs,
    undo: &mut Undo,
    trace: &mut Trace,
) -> Result<(Link, Handle, Link)> {
    let ifname = &args.ifname;
    let host_veth = create_veth(host, netns, ifname, conf.mtu, conf.mac)?;
    {
        // Deleting either end destroys the pair.
        let idx = host_veth.index;
        undo.push("delete veth pair", move || {
            let h = Handle::new().map_err(|e| e.to_string())?;
            match h.link_del(idx) {
                Ok(()) | Err(NlError::NotFound(_)) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        });
    }
    trace.mark("veth-create");
    let sysctls = conf.ipam_type.is_some().then_some(conf.enable_dad);
    std::thread::scope(|scope| {
        let pod = netns
            .spawn_scoped(scope, || pod_end(ifname, sysctls))
            .map_err(nl("enter the pod netns"))?;
        let host_side = wire_host_end(host, &host_veth, br, conf);
        // The pod side's error first: before the overlap it was the first step to fail.
        let (cont, cont_link) =
            join_netns_thread(pod.join(), netns.path()).map_err(nl("enter the pod netns"))??;
        host_side?;
        Ok((host_veth, cont, cont_link))
    })
}

/// On a thread inside the pod netns: the pod's netlink socket, the pod end of the veth, and
/// (with IPAM) the pod-side sysctls that do not depend on the addresses.
fn pod_end(ifname: &str, sysctls: Option<bool>) -> Result<(Handle, Link)> {
    let cont = Handle::new().map_err(nl("open netlink socket in the pod netns"))?;
    let link = cont
        .link_by_name(ifname)
        .map_err(nl(format!("failed to lookup {ifname:?} in the pod netns")))?;
    if let Some(enable_dad) = sysctls {
        container_sysctls(ifname, enable_dad);
    }
    Ok((cont, link))
}

/// The host end: bridge port, up, no router advertisements.
fn wire_host_end(host: &Handle, host_veth: &Link, br: &Link, conf: &BridgeConf) -> Result<()> {
    let host_name = &host_veth.name;
    plug_port(
        host,
        host_veth,
        br,
        conf.hairpin_mode,
        conf.port_isolation,
        conf,
    )?;
    host.link_set_up(host_veth.index)
        .map_err(nl(format!("failed to set {host_name:?} up")))?;
    let _ = sysctl_set(&format!("net/ipv6/conf/{host_name}/accept_ra"), "0");
    Ok(())
}

fn create_veth(
    host: &Handle,
    netns: &Netns,
    ifname: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
) -> Result<Link> {
    for _ in 0..VETH_NAME_TRIES {
        let name = random_veth_name();
        match host.veth_create(&name, ifname, netns, mtu, mac) {
            Ok(link) => return Ok(link),
            // Either the random host name collided or the pod name appeared meanwhile.
            Err(NlError::Exists(_)) => {
                if find_link(host, &name).ok().flatten().is_none() {
                    return Err(CniError::InvalidConfig(format!(
                        "container veth name provided ({ifname}) already exists"
                    )));
                }
            }
            Err(e) => return Err(CniError::Internal(format!("failed to make veth pair: {e}"))),
        }
    }
    Err(CniError::Internal(format!(
        "failed to find a free veth name after {VETH_NAME_TRIES} tries"
    )))
}

/// Master, hairpin and isolation (set explicitly every time) and VLANs of a bridge port.
fn plug_port(
    host: &Handle,
    port: &Link,
    br: &Link,
    hairpin: bool,
    isolated: bool,
    conf: &BridgeConf,
) -> Result<()> {
    let name = &port.name;
    host.link_set_master(port.index, br.index).map_err(|e| {
        CniError::Internal(format!(
            "failed to connect {name:?} to bridge {}: {e}",
            br.name
        ))
    })?;
    host.bridge_port_set(port.index, hairpin, isolated)
        .map_err(nl(format!("failed to setup hairpin mode for {name}")))?;
    let existing = if conf.vlan_filtering() && !conf.preserve_default_vlan {
        host.bridge_vlans(port.index)
            .map_err(nl(format!("failed to list vlans on interface {name:?}")))?
    } else {
        Vec::new()
    };
    for op in port_vlan_plan(
        conf.vlan,
        &conf.vlan_trunk,
        conf.preserve_default_vlan,
        &existing,
    ) {
        match op {
            VlanOp::Del(vid) => host.bridge_vlan_del(port.index, vid).map_err(nl(format!(
                "failed to remove default vlan on interface {name:?}"
            )))?,
            VlanOp::Add {
                vid,
                pvid,
                untagged,
            } => {
                let what = if vid == 1 && conf.vlan == 0 {
                    "failed to setup default native vlan tag on interface"
                } else {
                    "failed to setup vlan tag on interface"
                };
                host.bridge_vlan_add(port.index, vid, pvid, untagged)
                    .map_err(nl(format!("{what} {name:?}")))?
            }
        }
    }
    Ok(())
}

/// One bridge VLAN request on a port (`bridge vlan del|add dev PORT vid N [pvid untagged] master`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VlanOp {
    Del(u16),
    Add {
        vid: u16,
        pvid: bool,
        untagged: bool,
    },
}

/// The VLAN requests for a new port, in Go v1.8's order (`setupVeth`): unless
/// `preserveDefaultVlan`, the port's existing VLANs (the bridge's default VLAN 1) go; `vlan`
/// becomes the PVID, egress untagged; each `vlanTrunk` VLAN is added tagged; a trunk without
/// `vlan` keeps VLAN 1 as its untagged native VLAN (Go v1.8.0+).
pub(crate) fn port_vlan_plan(
    vlan: u16,
    trunk: &[u16],
    preserve_default_vlan: bool,
    existing: &[weft_netlink::BridgeVlan],
) -> Vec<VlanOp> {
    let mut ops = Vec::new();
    if (vlan != 0 || !trunk.is_empty()) && !preserve_default_vlan {
        ops.extend(existing.iter().map(|v| VlanOp::Del(v.vid)));
    }
    if vlan != 0 {
        ops.push(VlanOp::Add {
            vid: vlan,
            pvid: true,
            untagged: true,
        });
    }
    ops.extend(trunk.iter().map(|&vid| VlanOp::Add {
        vid,
        pvid: false,
        untagged: false,
    }));
    if vlan == 0 && !trunk.is_empty() {
        ops.push(VlanOp::Add {
            vid: 1,
            pvid: true,
            untagged: true,
        });
    }
    ops
}

/// Gateways per family (address with the pod's prefix) and the default routes, as Go's
/// calcGateways: every IP points at interface 2 (the pod end), a missing gateway becomes the
/// network's first address when isGateway, and isDefaultGateway appends a default route per
/// family unless IPAM already gave one with a gateway.
fn calc_gateways(result: &mut CniResult, conf: &BridgeConf) -> Vec<IpNetwork> {
    let mut gws = Vec::new();
    let mut default_found = [false, false];
    for i in 0..result.ips.len() {
        let addr = result.ips[i].address;
        let v4 = addr.is_ipv4();
        result.ips[i].interface = Some(2);
        if result.ips[i].gateway.is_none() && conf.is_gateway {
            result.ips[i].gateway = Some(gateway_of(&addr));
        }
        let gw = result.ips[i].gateway;
        let fam = usize::from(!v4);
        if conf.is_default_gateway && !default_found[fam] {
            let dn = default_net(v4);
            default_found[fam] = result.routes.iter().any(|r| r.gw.is_some() && r.dst == dn);
            if !default_found[fam] {
                result.routes.push(Route {
                    dst: dn,
                    gw,
                    ..Default::default()
                });
                default_found[fam] = true;
            }
        }
        if conf.is_gateway {
            if let Some(g) = gw {
                if let Ok(n) = IpNetwork::new(g, addr.prefix()) {
                    gws.push(n);
                }
            }
        }
    }
    gws
}

/// Inside the pod netns: DAD and ARP sysctls, addresses, link up, routes (Go's ConfigureIface).
fn configure_container(
    cont: &Handle,
    netns: &Netns,
    index: u32,
    args: &CmdArgs,
    conf: &BridgeConf,
    result: &CniResult,
) -> Result<()> {
    if result.ips.iter().any(|i| i.address.is_ipv6()) {
        let ifname = args.ifname.clone();
        netns
            .run(move || enable_ipv6(&ifname))
            .map_err(nl("enter the pod netns"))??;
    }

    let ifname = &args.ifname;
    let (mut v4gw, mut v6gw) = (None, None);
    for ip in &result.ips {
        cont.addr_add(index, ip.address).map_err(|e| {
            CniError::Internal(format!(
                "failed to add IP addr {} to {ifname:?}: {e}",
                ip.address
            ))
        })?;
        match ip.gateway {
            Some(g @ IpAddr::V4(_)) if v4gw.is_none() => v4gw = Some(g),
            Some(g @ IpAddr::V6(_)) if v6gw.is_none() => v6gw = Some(g),
            _ => {}
        }
    }
    cont.link_set_up(index)
        .map_err(nl(format!("failed to set {ifname:?} UP")))?;
    if v6gw.is_some() && conf.enable_dad {
        settle_addresses(cont, index, Duration::from_secs(5));
    }
    for r in &result.routes {
        let gw = r.gw.or(if r.dst.is_ipv4() { v4gw } else { v6gw });
        let route = NlRoute {
            gw: gw.filter(|g| same_family(g, &r.dst.ip())),
            oif: Some(index),
            table: r.table,
            priority: (r.priority != 0).then_some(r.priority),
            scope: r.scope,
            mtu: (r.mtu != 0).then_some(r.mtu),
            advmss: (r.advmss != 0).then_some(r.advmss),
            ..NlRoute::new(r.dst)
        };
        match cont.route_add(&route) {
            Ok(()) => {}
            // Same destination already present: add this gateway as another ECMP next hop.
            Err(NlError::Exists(_)) => cont
                .route_append(&route)
                .or_else(|e| match e {
                    NlError::Exists(_) => Ok(()),
                    e => Err(e),
                })
                .map_err(|e| route_err(r, gw, ifname, e))?,
            Err(e) => return Err(route_err(r, gw, ifname, e)),
        }
    }
    Ok(())
}

fn route_err(r: &Route, gw: Option<IpAddr>, ifname: &str, e: NlError) -> CniError {
    let gw = gw.map(|g| g.to_string()).unwrap_or_else(|| "<nil>".into());
    CniError::Internal(format!(
        "failed to add route '{} via {gw} dev {ifname}': {e}",
        r.dst
    ))
}

/// Runs on the thread inside the pod netns (`pod_end`). Errors are ignored, as Go ignores them.
fn container_sysctls(ifname: &str, enable_dad: bool) {
    if enable_dad {
        let _ = sysctl_set(&format!("net/ipv6/conf/{ifname}/enhanced_dad"), "1");
        let _ = sysctl_set(&format!("net/ipv6/conf/{ifname}/accept_dad"), "1");
    } else {
        // Hairpin echoes our own neighbour solicitations back and DAD would fail (k8s#32291).
        let _ = sysctl_set(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0");
    }
    let _ = sysctl_set(&format!("net/ipv4/conf/{ifname}/arp_notify"), "1");
}

/// Runs on a thread inside the pod netns: IPv6 must be on for lo and the pod interface before
/// IPv6 addresses can be added, so failing to enable it is an error.
fn enable_ipv6(ifname: &str) -> Result<()> {
    {
        for dev in ["lo", ifname] {
            let key = format!("net/ipv6/conf/{dev}/disable_ipv6");
            match sysctl_get(&key) {
                Ok(v) if v.trim() == "0" => {}
                Ok(v) => sysctl_set(&key, "0").map_err(|e| {
                    CniError::Internal(format!(
                        "failed to enable IPv6 for interface {dev:?} ({key}={}): {e}",
                        v.trim()
                    ))
                })?,
                Err(e) => eprintln!("bridge: failed to read sysctl {key:?}: {e}"),
            }
        }
        let _ = sysctl_set(&format!("net/ipv6/conf/{ifname}/keep_addr_on_down"), "1");
    }
    Ok(())
}

/// Waits (bounded) until no IPv6 address of the link is tentative, as Go's SettleAddresses.
fn settle_addresses(cont: &Handle, index: u32, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        match cont.addrs(Some(index), Family::V6) {
            Ok(addrs) if addrs.iter().all(|a| !a.tentative) => return,
            Ok(_) => sleep(Duration::from_millis(20)),
            Err(_) => return,
        }
    }
}

/// Puts every gateway on the bridge (or on `<bridge>.<vlan>` for a VLAN), and enables forwarding.
fn setup_gateways(
    host: &Handle,
    br: &Link,
    conf: &BridgeConf,
    gws: &[IpNetwork],
    result: &mut CniResult,
    undo: &mut Undo,
) -> Result<()> {
    let target = if conf.vlan != 0 && !gws.is_empty() {
        let vif = ensure_vlan_interface(host, br, conf, undo).map_err(|e| {
            CniError::Internal(format!("failed to create vlan interface: {}", e.msg()))
        })?;
        result.interfaces.push(iface(&vif.name, &vif.mac, ""));
        vif
    } else {
        br.clone()
    };
    for gw in gws {
        ensure_addr(host, &target, gw, conf.force_address).map_err(|e| {
            let what = if conf.vlan != 0 {
                "failed to set vlan interface for bridge with addr"
            } else {
                "failed to set bridge addr"
            };
            match e {
                CniError::InvalidConfig(m) => CniError::InvalidConfig(format!("{what}: {m}")),
                other => CniError::Internal(format!("{what}: {}", other.msg())),
            }
        })?;
    }
    for (v4, key) in [
        (true, "net/ipv4/ip_forward"),
        (false, "net/ipv6/conf/all/forwarding"),
    ] {
        if gws.iter().any(|g| g.is_ipv4() == v4) {
            enable_forward(key)?;
        }
    }
    Ok(())
}

fn enable_forward(key: &str) -> Result<()> {
    if sysctl_get(key).map(|v| v.trim() == "1").unwrap_or(false) {
        return Ok(());
    }
    sysctl_set(key, "1")
        .map_err(|e| CniError::Internal(format!("failed to enable forwarding: {key}: {e}")))
}

/// Adds `gw` to the link. IPv4 conflicts with any other address, IPv6 only with an overlapping
/// prefix; forceAddress replaces the conflicting address instead of failing. Then re-sets the
/// bridge MAC to itself: otherwise the kernel gives the bridge the lowest port MAC, which
/// changes as pods come and go.
fn ensure_addr(host: &Handle, link: &Link, gw: &IpNetwork, force: bool) -> Result<()> {
    let name = &link.name;
    let v4 = gw.is_ipv4();
    let addrs = host
        .addrs(Some(link.index), if v4 { Family::V4 } else { Family::V6 })
        .map_err(nl("could not get list of IP addresses"))?;
    for a in addrs {
        if a.net == *gw {
            return Ok(());
        }
        let overlaps = a.net.contains(gw.ip()) || gw.contains(a.net.ip());
        if v4 || overlaps {
            if !force {
                return Err(CniError::InvalidConfig(format!(
                    "{name:?} already has an IP address different from {gw}"
                )));
            }
            host.addr_del(link.index, a.net)
                .map_err(nl(format!("could not remove IP address from {name:?}")))?;
        }
    }
    match host.addr_add(link.index, *gw) {
        Ok(()) | Err(NlError::Exists(_)) => {}
        Err(e) => {
            return Err(CniError::Internal(format!(
                "could not add IP address to {name:?}: {e}"
            )))
        }
    }
    // `link` was read before any port joined, so this pins the bridge's own original MAC (as Go).
    host.link_set_mac(link.index, link.mac)
        .map_err(nl("could not set bridge's mac"))
}

/// `<bridge>.<vlan>`: a host-side veth whose other end is a bridge port in that VLAN; the
/// gateway address goes there so the VLAN's pods can reach it.
fn ensure_vlan_interface(
    host: &Handle,
    br: &Link,
    conf: &BridgeConf,
    undo: &mut Undo,
) -> Result<Link> {
    let name = format!("{}.{}", br.name, conf.vlan);
    if let Some(l) =
        find_link(host, &name).map_err(nl(format!("failed to find interface {name:?}")))?
    {
        return Ok(l);
    }
    let here = Netns::current().map_err(nl("failed to find host namespace"))?;
    let port = create_veth(host, &here, &name, Some(br.mtu), None)?;
    let port_name = port.name.clone();
    {
        let idx = port.index;
        undo.push("delete vlan gateway veth", move || {
            let h = Handle::new().map_err(|e| e.to_string())?;
            h.link_del(idx).or_else(|e| match e {
                NlError::NotFound(_) => Ok(()),
                e => Err(e.to_string()),
            })
        });
    }
    plug_port(host, &port, br, false, false, conf)?;
    host.link_set_up(port.index)
        .map_err(nl(format!("failed to up {port_name:?}")))?;
    let gw_if = host
        .link_by_name(&name)
        .map_err(nl(format!("failed to lookup {name:?}")))?;
    host.link_set_up(gw_if.index)
        .map_err(nl(format!("failed to up {name:?}")))?;
    Ok(gw_if)
}

fn setup_masq(
    conf: &BridgeConf,
    args: &CmdArgs,
    result: &CniResult,
    undo: &mut Undo,
) -> Result<()> {
    let ips: Vec<IpNetwork> = result.ips.iter().map(|i| i.address).collect();
    let backend = weft_firewall::select_backend(conf.ip_masq_backend.as_deref())
        .map_err(|e| CniError::Internal(e.to_string()))?;
    // A failed setup has removed what it made (nft: one transaction; iptables: the families
    // done so far), so the teardown is only needed once it succeeded. Tearing down after a
    // failure would cost another full lock wait per iptables call when the xtables lock is
    // what failed.
    weft_firewall::setup_ipmasq(backend, &ips, &conf.name, &args.ifname, &args.container_id)
        .map_err(|e| CniError::Internal(format!("failed to set up ipMasq: {e}")))?;
    let (net, ifn, cid) = (
        conf.name.clone(),
        args.ifname.clone(),
        args.container_id.clone(),
    );
    undo.push("remove ipMasq rules", move || {
        weft_firewall::teardown_ipmasq(&ips, &net, &ifn, &cid).map_err(|e| e.to_string())
    });
    Ok(())
}

/// Polls the host veth until its operstate is UP. Go sleeps 0, 50, 500, 1000, 1000 ms; the
/// kernel signals carrier on a veth almost at once, so poll finely first and keep Go's bound.
fn wait_port_up(host: &Handle, index: u32, name: &str) -> Result<Link> {
    let start = Instant::now();
    let limit = Duration::from_millis(2550);
    let mut pause = Duration::from_micros(200);
    loop {
        let l = host
            .link_by_index(index)
            .map_err(nl(format!("failed to lookup {name:?}")))?;
        if l.oper_up {
            return Ok(l);
        }
        if start.elapsed() >= limit {
            return Err(CniError::Internal(format!(
                "bridge port in error state: {}",
                l.oper_state
            )));
        }
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod vlan_tests {
    use super::{port_vlan_plan, VlanOp};
    use weft_netlink::BridgeVlan;

    const DEFAULT: &[BridgeVlan] = &[BridgeVlan {
        vid: 1,
        pvid: true,
        untagged: true,
    }];

    fn add(vid: u16, native: bool) -> VlanOp {
        VlanOp::Add {
            vid,
            pvid: native,
            untagged: native,
        }
    }

    #[test]
    fn access_port() {
        assert_eq!(
            port_vlan_plan(100, &[], false, DEFAULT),
            vec![VlanOp::Del(1), add(100, true)]
        );
        assert_eq!(
            port_vlan_plan(100, &[], true, DEFAULT),
            vec![add(100, true)]
        );
        assert_eq!(port_vlan_plan(0, &[], false, DEFAULT), vec![]);
    }

    /// Go v1.8.0: a trunk-only port keeps VLAN 1 as its untagged native VLAN.
    #[test]
    fn trunk_only_keeps_untagged_vlan_1() {
        assert_eq!(
            port_vlan_plan(0, &[101, 102], false, DEFAULT),
            vec![
                VlanOp::Del(1),
                add(101, false),
                add(102, false),
                add(1, true)
            ]
        );
        assert_eq!(
            port_vlan_plan(0, &[101], true, DEFAULT),
            vec![add(101, false), add(1, true)]
        );
    }

    /// Go v1.8.0: `vlan` with `vlanTrunk` is the trunk port's native VLAN.
    #[test]
    fn native_vlan_of_a_trunk_port() {
        assert_eq!(
            port_vlan_plan(5, &[101, 200], false, DEFAULT),
            vec![
                VlanOp::Del(1),
                add(5, true),
                add(101, false),
                add(200, false)
            ]
        );
    }
}
