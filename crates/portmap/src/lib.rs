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
//! backend is usable.
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
pub mod nft;

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;
use weft_cni_core::{
    parse_netconf, plugin_main, CmdArgs, CniError, ErrorList, Plugin, Result, Trace,
};
use weft_firewall::iptables::Iptables as Ipt;
use weft_firewall::nft::Nft;
use weft_firewall::{Family, FwError, Tools};

use config::{Backend, PortMapConf};
use iptables::{DelError, DnatSpec, Shared};
use nft::NftSpec;

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

fn family_of(net: &IpNetwork) -> Family {
    if net.is_ipv6() {
        Family::V6
    } else {
        Family::V4
    }
}

fn ip_label(v6: bool) -> &'static str {
    if v6 {
        "ipv6"
    } else {
        "ipv4"
    }
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
        Some(Backend::Nftables) => add_nft(&tools, &conf, cid, &nets)?,
        None => {
            // Go probes iptables before every ADD; that costs an exec, so try iptables and
            // probe only if it fails.
            if let Err(e) = add_iptables(&tools, &conf, cid, &nets) {
                // A busy iptables is not a missing one (and probing would wait again).
                if e.source.is_lock_timeout() {
                    return Err(e.into());
                }
                if config::resolve_auto() == Backend::Nftables {
                    add_nft(&tools, &conf, cid, &nets)?;
                } else {
                    return Err(e.into());
                }
            }
        }
        Some(Backend::Iptables) => add_iptables(&tools, &conf, cid, &nets)?,
    }
    trace.mark("rules");
    after_forwarding(&conf, &nets, &mut trace)?;
    Ok(out)
}

/// An iptables ADD failure, kept typed until cmd_add has decided on it (a busy iptables
/// is an error; a missing one may mean nftables).
struct IptAddError {
    v6: bool,
    source: Box<FwError>,
}

impl From<IptAddError> for CniError {
    fn from(e: IptAddError) -> CniError {
        internal(format!(
            "unable to set up port forwarding ({} {}): {}",
            ip_label(e.v6),
            if e.v6 { "ip6tables" } else { "iptables" },
            e.source
        ))
    }
}

/// Both families at once, each one transaction (plus a parallel read of the shared chains).
fn add_iptables(
    tools: &Tools,
    conf: &PortMapConf,
    cid: &str,
    nets: &[IpNetwork],
) -> std::result::Result<(), IptAddError> {
    let shared = Shared::new(conf);
    let results: Vec<(bool, std::result::Result<(), FwError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = nets
            .iter()
            .map(|net| {
                let spec = DnatSpec::new(conf, cid, *net);
                let ipt = Ipt::new(tools, family_of(net));
                let v6 = net.is_ipv6();
                s.spawn(move || (v6, iptables::add(&ipt, &spec, &shared)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (false, Err(thread_failed("iptables"))))
            })
            .collect()
    });
    for (v6, r) in results {
        r.map_err(|source| IptAddError {
            v6,
            source: Box::new(source),
        })?;
    }
    Ok(())
}

fn thread_failed(what: &str) -> FwError {
    FwError::Parse {
        binary: what.to_string(),
        msg: "worker thread panicked".into(),
    }
}

fn add_nft(tools: &Tools, conf: &PortMapConf, cid: &str, nets: &[IpNetwork]) -> Result<()> {
    let specs: Vec<NftSpec> = nets
        .iter()
        .map(|n| NftSpec::new(conf, cid, n.ip()))
        .collect();
    nft::add(&Nft::new(tools), &specs).map_err(|e| {
        internal(format!(
            "unable to set up nftables rules for port mappings: {e}"
        ))
    })
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

/// The entry rules this conf would have made in a family (so DEL can remove them without
/// listing CNI-HOSTPORT-DNAT).
fn known_entries(conf: &PortMapConf, cid: &str, v6: bool) -> Vec<Vec<String>> {
    if conf.mappings.is_empty() {
        return Vec::new();
    }
    let any: IpNetwork = if v6 {
        IpNetwork::V6(ipnetwork::Ipv6Network::from(
            std::net::Ipv6Addr::UNSPECIFIED,
        ))
    } else {
        IpNetwork::V4(ipnetwork::Ipv4Network::from(
            std::net::Ipv4Addr::UNSPECIFIED,
        ))
    };
    DnatSpec::new(conf, cid, any).entry_rules()
}

pub fn cmd_del(args: &CmdArgs) -> Result<()> {
    let mut trace = Trace::new("portmap");
    let conf = config::load_lenient(&args.stdin, &args.ifname)?;
    let tools = Tools::from_env();
    let cid = args.container_id.as_str();
    let chain = iptables::dnat_chain_name(&conf.name, cid);
    let known4 = known_entries(&conf, cid, false);
    let known6 = known_entries(&conf, cid, true);
    let known_udp = iptables::udp_ports(&conf.mappings);

    let (v4, v6, nft_res) = std::thread::scope(|s| {
        let t6 =
            s.spawn(|| iptables::del(&Ipt::new(&tools, Family::V6), &chain, &known6, &known_udp));
        let tn = s.spawn(|| nft::del(&Nft::new(&tools), &conf.name, cid));
        let v4 = iptables::del(&Ipt::new(&tools, Family::V4), &chain, &known4, &known_udp);
        trace.mark("iptables v4");
        let v6 = t6
            .join()
            .unwrap_or_else(|_| Err(DelError::Failed(thread_failed("ip6tables"))));
        trace.mark("iptables v6");
        let n = tn.join().unwrap_or_else(|_| Err(thread_failed("nft")));
        trace.mark("nft");
        (v4, v6, n)
    });

    let mut errors = ErrorList::new();
    // Only the host ports of rules actually removed: a repeated DEL must not flush the flows
    // of a pod that has taken the port over since.
    let mut ports: Vec<u16> = Vec::new();
    let mut unusable = Vec::new();
    for (label, r) in [("ipv4", v4), ("ipv6", v6)] {
        match r {
            Ok(removed) => merge(&mut ports, &removed.udp_ports),
            Err(DelError::Unusable(e)) => unusable.push(format!("({label}) {e}")),
            Err(DelError::Failed(e)) => {
                errors.push(internal(format!("could not teardown {label} dnat: {e}")))
            }
        }
    }
    // Go: an error only if neither family is usable; an nft-only host must still DEL.
    if unusable.len() == 2 && conf.backend == Some(Backend::Iptables) {
        errors.push(internal(format!(
            "neither iptables nor ip6tables is usable, {}",
            unusable.join(", ")
        )));
    }
    match nft_res {
        Ok(p) => merge(&mut ports, &p),
        Err(e) => errors.push(internal(format!("error deleting nftables rules: {e}"))),
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

fn merge(into: &mut Vec<u16>, from: &[u16]) {
    for p in from {
        if !into.contains(p) {
            into.push(*p);
        }
    }
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
    // Only the families the pod has (Go 1.1.1 also checked ip6tables for an IPv4-only pod,
    // plugins#819).
    for net in conf.container_nets() {
        let v6 = net.is_ipv6();
        let res = match backend {
            Backend::Nftables => nft::check(&Nft::new(&tools), &NftSpec::new(&conf, cid, net.ip())),
            _ => iptables::check(
                &Ipt::new(&tools, family_of(&net)),
                &DnatSpec::new(&conf, cid, net),
            ),
        };
        res.map_err(|e| internal(format!("could not check {} dnat: {e}", ip_label(v6))))?;
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
    let results: Vec<std::result::Result<(), String>> = std::thread::scope(|s| {
        let fams = [Family::V4, Family::V6].map(|fam| {
            let ipt = Ipt::new(&tools, fam);
            let valid = &valid;
            s.spawn(move || match iptables::gc(&ipt, net, valid) {
                Ok(_) => Ok(()),
                Err(_) if !ipt.can_list("nat", "OUTPUT") => Ok(()),
                Err(e) => Err(format!("{}: {e}", fam.command())),
            })
        });
        let n = match nft::gc(&Nft::new(&tools), net, &valid) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("nft: {e}")),
        };
        let mut out: Vec<_> = fams
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("worker thread panicked".into()))
            })
            .collect();
        out.push(n);
        out
    });
    let mut errors = ErrorList::new();
    for e in results.into_iter().filter_map(|r| r.err()) {
        errors.push(internal(format!("failed to collect port mappings: {e}")));
    }
    errors.into_result()
}

/// STATUS: ready when the backend the config selects is usable; code 50 naming what is
/// missing otherwise.
pub fn cmd_status(args: &CmdArgs) -> Result<()> {
    let conf = config::load(&args.stdin, &args.ifname, false)?;
    let tools = Tools::from_env();
    let iptables_problem = || -> Option<String> {
        for tool in [&tools.iptables, &tools.iptables_restore] {
            if let Err(e) = tool.resolve() {
                return Some(e.to_string());
            }
        }
        (!Ipt::new(&tools, Family::V4).can_list("nat", "OUTPUT"))
            .then(|| format!("{} cannot list the nat table", tools.iptables.name))
    };
    let nft_problem = || -> Option<String> {
        if let Err(e) = tools.nft.resolve() {
            return Some(e.to_string());
        }
        (!Nft::new(&tools).supported()).then(|| {
            format!(
                "{} cannot create tables (needs nftables v1.0.1 or later)",
                tools.nft.name
            )
        })
    };
    let problem = match conf.backend {
        Some(Backend::Iptables) => {
            iptables_problem().map(|p| format!("iptables backend not usable: {p}"))
        }
        Some(Backend::Nftables) => {
            nft_problem().map(|p| format!("nftables backend not usable: {p}"))
        }
        None => match (iptables_problem(), nft_problem()) {
            (Some(a), Some(b)) => {
                Some(format!("neither iptables nor nftables is usable: {a}; {b}"))
            }
            _ => None,
        },
    };
    match problem {
        Some(p) => Err(CniError::NotAvailable(p)),
        None => Ok(()),
    }
}
