//! weft's `portmap` CNI plugin: a drop-in replacement for the Go reference portmap (v1.9
//! behaviour, v1.1.1 interop).
//!
//! A chained plugin: it forwards host ports to the container address taken from prevResult,
//! with iptables (Go's chains, rules and comments, so a Go DEL removes what weft added and the
//! other way round) or nftables (Go's tables and chains, rules keyed by network + container).
//! ADD installs the rules in one transaction per family, flushes stale UDP conntrack entries of
//! the mapped host ports and enables `route_localnet` for 127.0.0.1 access. DEL needs neither
//! prevResult nor portMappings and cleans both backends. CHECK looks only at the families the
//! pod has. GC (CNI 1.1) removes rules of containers that are gone; STATUS reports whether the
//! backend is usable. Each backend is a [`mapper::PortMapper`] (iptables, nftables); this file
//! picks one (or both, for DEL and GC) and dispatches.
//!
//! Where weft differs from Go, on purpose:
//! - ports must be 1-65535, `protocol` tcp/udp/sctp (any case; empty means tcp), `hostIP` an
//!   address; errors are code 7 and name `runtimeConfig.portMappings[i].<field>`;
//! - DEL does not need `portMappings` (Go's DEL without them is a no-op) nor prevResult, and an
//!   invalid config does not block it; it also flushes the removed UDP host ports' conntrack
//!   entries (plugins#1190);
//! - CHECK looks only at the pod's families (plugins#819) and also at the jumps into
//!   CNI-HOSTPORT-DNAT;
//! - a repeated ADD replaces the container's rules instead of keeping stale ones next to them;
//! - nftables rules carry a per-(network, container) named counter, see [`nft`];
//! - a prevResult of another version than the conf's is converted (Go 1.1.1 refuses);
//! - old `CNI-SN-<hash>` chains (portmap before v0.7) are not looked for.

pub mod config;
pub mod conntrack;
pub mod iptables;
pub mod mapper;
pub mod nft;

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;
use weft_cni_core::{
    parse_netconf, plugin_main, CmdArgs, CniError, ErrorList, Plugin, Result, Trace,
};
use weft_firewall::Tools;

use config::{Backend, PortMapConf};
use mapper::{IptablesMapper, NftMapper, PortMapper};

pub struct Portmap;

impl Plugin for Portmap {
    fn add(&self, args: &CmdArgs) -> Result<Value> {
        cmd_add(args)
    }
    fn del(&self, args: &CmdArgs) -> Result<()> {
        cmd_del(args)
    }
    fn check(&self, args: &CmdArgs) -> Result<()> {
        cmd_check(args)
    }
    fn gc(&self, args: &CmdArgs) -> Result<()> {
        cmd_gc(args)
    }
    fn status(&self, args: &CmdArgs) -> Result<()> {
        cmd_status(args)
    }
}

pub fn main() -> ! {
    plugin_main(Portmap, "portmap")
}

fn internal(e: impl std::fmt::Display) -> CniError {
    CniError::Internal(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// ADD

pub fn cmd_add(args: &CmdArgs) -> Result<Value> {
    let mut trace = Trace::new("portmap");
    let conf = config::load(&args.stdin, &args.ifname, true)?;
    let Some(result) = &conf.result else {
        return Err(CniError::InvalidConfig(
            "must be called as chained plugin".into(),
        ));
    };
    let out = result.to_value(conf.version())?;
    let nets = conf.container_nets();
    if conf.mappings.is_empty() || nets.is_empty() {
        return Ok(out);
    }
    let tools = Tools::from_env();
    let cid = args.container_id.as_str();
    trace.mark("config");
    match conf.backend {
        Some(backend) => mapper::for_backend(backend, &tools).add(&conf, cid, &nets)?,
        None => {
            // Go probes iptables before every ADD; that costs an exec, so try iptables and
            // probe only if it fails.
            if let Err(e) = IptablesMapper::new(&tools).add(&conf, cid, &nets) {
                // A busy iptables is not a missing one (and probing would wait again).
                if e.source.is_lock_timeout() || config::resolve_auto() != Backend::Nftables {
                    return Err(e.into());
                }
                NftMapper::new(&tools).add(&conf, cid, &nets)?;
            }
        }
    }
    trace.mark("rules");
    after_forwarding(&conf, &nets, &mut trace)?;
    Ok(out)
}

/// After the rules: flush stale UDP conntrack entries (errors only logged, as in Go) and, for
/// IPv4 with snat, set route_localnet on the interface towards the container so 127.0.0.1
/// can be DNATed out of the host (a failure fails ADD, as in Go).
fn after_forwarding(conf: &PortMapConf, nets: &[IpNetwork], trace: &mut Trace) -> Result<()> {
    let udp = iptables::udp_ports(&conf.mappings);
    for net in nets {
        let fam = if net.is_ipv6() {
            conntrack::Family::V6
        } else {
            conntrack::Family::V4
        };
        if let Err(e) = conntrack::delete_udp_by_dport(fam, &udp) {
            eprintln!(
                "portmap: failed to delete stale UDP conntrack entries for {}: {e}",
                net.ip()
            );
        }
    }
    trace.mark("conntrack");
    if let (true, Some(v4)) = (conf.snat, conf.cont_ipv4) {
        if let Some(ifname) = routable_host_if(v4.ip()) {
            trace.mark("route_get");
            let key = format!("net/ipv4/conf/{ifname}/route_localnet");
            weft_netlink::sysctl_set(&key, "1")
                .map_err(|e| internal(format!("unable to enable route_localnet: {e}")))?;
            trace.mark("route_localnet");
        }
    }
    Ok(())
}

/// Go `getRoutableHostIF`: the interface the host routes the container address through;
/// None if there is no route.
fn routable_host_if(ip: IpAddr) -> Option<String> {
    let h = weft_netlink::Handle::new().ok()?;
    let route = h.route_get(ip).ok()?;
    let link = h.link_by_index(route.oif?).ok()?;
    Some(link.name)
}

// ---------------------------------------------------------------------------------------------
// DEL

/// DEL in both backends at once (a conf without `backend` may have used either, and a Go
/// portmap of another version the other one); every error is reported.
pub fn cmd_del(args: &CmdArgs) -> Result<()> {
    let mut trace = Trace::new("portmap");
    let conf = config::load_lenient(&args.stdin, &args.ifname)?;
    let tools = Tools::from_env();
    let cid = args.container_id.as_str();
    let mappers = mapper::all(&tools);
    let results: Vec<mapper::Deleted> = std::thread::scope(|s| {
        let handles: Vec<_> = mappers
            .iter()
            .map(|m| s.spawn(|| m.del(&conf, cid)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| mapper::Deleted {
                    udp_ports: Vec::new(),
                    errors: vec![internal("worker thread panicked")],
                })
            })
            .collect()
    });
    trace.mark("rules");

    let mut errors = ErrorList::new();
    // Only the host ports of rules actually removed: a repeated DEL must not flush the flows
    // of a pod that has taken the port over since.
    let mut ports: Vec<u16> = Vec::new();
    for r in results {
        for p in r.udp_ports {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        for e in r.errors {
            errors.push(e);
        }
    }

    // Flush after the rules are gone (plugins#1190): entries DNATed to the departed pod.
    for fam in [conntrack::Family::V4, conntrack::Family::V6] {
        if let Err(e) = conntrack::delete_udp_by_dport(fam, &ports) {
            eprintln!("portmap: failed to delete stale UDP conntrack entries: {e}");
        }
    }
    trace.mark("conntrack");
    errors.into_result()
}

// ---------------------------------------------------------------------------------------------
// CHECK

pub fn cmd_check(args: &CmdArgs) -> Result<()> {
    let conf = config::load(&args.stdin, &args.ifname, false)?;
    if conf.result.is_none() {
        return Err(CniError::InvalidConfig(
            "Required prevResult missing".into(),
        ));
    }
    if conf.mappings.is_empty() {
        return Ok(());
    }
    let tools = Tools::from_env();
    let cid = args.container_id.as_str();
    let backend = conf.backend.unwrap_or_else(config::resolve_auto);
    let mapper = mapper::for_backend(backend, &tools);
    // Only the families the pod has (Go 1.1.1 also checked ip6tables for an IPv4-only pod,
    // plugins#819).
    for net in conf.container_nets() {
        let label = mapper::ip_label(net.is_ipv6());
        mapper
            .check(&conf, cid, net)
            .map_err(|e| internal(format!("could not check {label} dnat: {e}")))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GC and STATUS

/// GC (CNI 1.1; Go's portmap has none): removes this network's per-container chains and rules,
/// in both backends, whose container is not among `cni.dev/valid-attachments`. Keeps going
/// past errors and reports them all.
pub fn cmd_gc(args: &CmdArgs) -> Result<()> {
    let netconf = parse_netconf(&args.stdin)?;
    let attachments = netconf.valid_attachments()?;
    let valid: BTreeSet<&str> = attachments.iter().map(|(cid, _)| cid.as_str()).collect();
    let net = netconf.name.as_str();
    let tools = Tools::from_env();
    let mappers = mapper::all(&tools);
    let failures: Vec<mapper::MapperError> = std::thread::scope(|s| {
        let handles: Vec<_> = mappers
            .iter()
            .map(|m| s.spawn(|| m.gc(net, &valid)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut errors = ErrorList::new();
    for e in failures {
        errors.push(internal(format!("failed to collect port mappings: {e}")));
    }
    errors.into_result()
}

/// STATUS: ready when the backend the config selects is usable (without one: either
/// backend); code 50 naming what is missing otherwise.
pub fn cmd_status(args: &CmdArgs) -> Result<()> {
    let conf = config::load(&args.stdin, &args.ifname, false)?;
    let tools = Tools::from_env();
    let problem = match conf.backend {
        Some(backend) => {
            let m = mapper::for_backend(backend, &tools);
            m.status()
                .err()
                .map(|p| format!("{} backend not usable: {p}", m.backend()))
        }
        None => match (
            IptablesMapper::new(&tools).status(),
            NftMapper::new(&tools).status(),
        ) {
            (Err(a), Err(b)) => Some(format!("neither iptables nor nftables is usable: {a}; {b}")),
            _ => None,
        },
    };
    match problem {
        Some(p) => Err(CniError::NotAvailable(p)),
        None => Ok(()),
    }
}
