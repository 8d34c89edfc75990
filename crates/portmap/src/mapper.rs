//! The two backends behind one trait (netavark's FirewallDriver, Go's `PortMapper`): what
//! ADD, DEL, CHECK, GC and STATUS do to the rules of one netfilter API. `lib.rs` picks a
//! backend (or both, for DEL and GC, which clean whatever either left) and dispatches.

use std::collections::BTreeSet;

use ipnetwork::IpNetwork;
use weft_cni_core::CniError;
use weft_firewall::iptables::{Family, Iptables};
use weft_firewall::nft::Nft;
use weft_firewall::{Backend, FwError, Tools};

use crate::config::PortMapConf;
use crate::iptables::{self, DelError, DnatSpec, Shared};
use crate::nft::{self, NftSpec};

/// A backend failure, kept typed (`source`) until the caller has decided on it (a busy
/// iptables is an error; a missing one may mean nftables), with the words saying where.
#[derive(Debug)]
pub struct MapperError {
    /// E.g. `unable to set up port forwarding (ipv4 iptables)`.
    pub context: String,
    pub source: Box<FwError>,
}

impl std::fmt::Display for MapperError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl From<MapperError> for CniError {
    fn from(e: MapperError) -> CniError {
        CniError::Internal(e.to_string())
    }
}

/// What a DEL did in one backend: the UDP host ports of the rules it removed (for the
/// conntrack flush) and every error, in order.
#[derive(Debug, Default)]
pub struct Deleted {
    pub udp_ports: Vec<u16>,
    pub errors: Vec<CniError>,
}

/// One netfilter API's port forwarding.
pub trait PortMapper: Sync {
    /// The `backend` spelling, for messages.
    fn backend(&self) -> Backend;
    /// Installs the rules of container `cid` for all of its addresses.
    fn add(&self, conf: &PortMapConf, cid: &str, nets: &[IpNetwork]) -> Result<(), MapperError>;
    /// Removes the rules of container `cid` on this network, wherever they are; needs neither
    /// prevResult nor portMappings. Nothing there (or no such backend here) is not an error.
    fn del(&self, conf: &PortMapConf, cid: &str) -> Deleted;
    /// Whether every rule ADD would make for address `net` exists.
    fn check(&self, conf: &PortMapConf, cid: &str, net: IpNetwork) -> Result<(), String>;
    /// Removes the rules of network `net` whose container is not in `valid`; every error.
    fn gc(&self, net: &str, valid: &BTreeSet<&str>) -> Vec<MapperError>;
    /// Why this backend cannot be used here, if it cannot.
    fn status(&self) -> Result<(), String>;
}

/// The backend named by `backend`.
pub fn for_backend(backend: Backend, tools: &Tools) -> Box<dyn PortMapper> {
    match backend {
        Backend::Iptables => Box::new(IptablesMapper::new(tools)),
        Backend::Nftables => Box::new(NftMapper::new(tools)),
    }
}

/// Both backends, iptables first (DEL and GC clean both).
pub fn all(tools: &Tools) -> [Box<dyn PortMapper>; 2] {
    [
        Box::new(IptablesMapper::new(tools)),
        Box::new(NftMapper::new(tools)),
    ]
}

/// `ipv4` / `ipv6`, as the messages name a family.
pub fn ip_label(v6: bool) -> &'static str {
    if v6 {
        "ipv6"
    } else {
        "ipv4"
    }
}

fn thread_failed(what: &str) -> FwError {
    FwError::Parse {
        binary: what.to_string(),
        msg: "worker thread panicked".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// iptables

/// Go's chains and rules in the nat table of iptables and ip6tables.
pub struct IptablesMapper {
    tools: Tools,
}

impl IptablesMapper {
    pub fn new(tools: &Tools) -> IptablesMapper {
        IptablesMapper {
            tools: tools.clone(),
        }
    }

    fn ipt(&self, family: Family) -> Iptables {
        Iptables::new(&self.tools, family)
    }
}

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

impl PortMapper for IptablesMapper {
    fn backend(&self) -> Backend {
        Backend::Iptables
    }

    /// Both families at once, each one transaction (plus a parallel read of the shared
    /// chains).
    fn add(&self, conf: &PortMapConf, cid: &str, nets: &[IpNetwork]) -> Result<(), MapperError> {
        let shared = Shared::new(conf);
        let results: Vec<(bool, Result<(), FwError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = nets
                .iter()
                .map(|net| {
                    let spec = DnatSpec::new(conf, cid, *net);
                    let ipt = self.ipt(Family::of_net(net));
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
            r.map_err(|source| MapperError {
                context: format!(
                    "unable to set up port forwarding ({} {})",
                    ip_label(v6),
                    if v6 { "ip6tables" } else { "iptables" }
                ),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    /// Both families in parallel. A family whose iptables cannot list the nat table has
    /// nothing to remove; only when neither can, and the conf asks for iptables, is that an
    /// error (Go: an nft-only host must still DEL).
    fn del(&self, conf: &PortMapConf, cid: &str) -> Deleted {
        let chain = iptables::dnat_chain_name(&conf.name, cid);
        let known_udp = iptables::udp_ports(&conf.mappings);
        let del_family = |v6: bool| {
            let fam = if v6 { Family::V6 } else { Family::V4 };
            let known = known_entries(conf, cid, v6);
            iptables::del(&self.ipt(fam), &chain, &known, &known_udp)
        };
        let (v4, v6) = std::thread::scope(|s| {
            let t6 = s.spawn(|| del_family(true));
            let v4 = del_family(false);
            let v6 = t6
                .join()
                .unwrap_or_else(|_| Err(DelError::Failed(thread_failed("ip6tables"))));
            (v4, v6)
        });
        let mut out = Deleted::default();
        let mut unusable = Vec::new();
        for (v6, r) in [(false, v4), (true, v6)] {
            match r {
                Ok(removed) => merge(&mut out.udp_ports, &removed.udp_ports),
                Err(DelError::Unusable(e)) => unusable.push(format!("({}) {e}", ip_label(v6))),
                Err(DelError::Failed(e)) => out.errors.push(CniError::Internal(format!(
                    "could not teardown {} dnat: {e}",
                    ip_label(v6)
                ))),
            }
        }
        if unusable.len() == 2 && conf.backend == Some(Backend::Iptables) {
            out.errors.push(CniError::Internal(format!(
                "neither iptables nor ip6tables is usable, {}",
                unusable.join(", ")
            )));
        }
        out
    }

    fn check(&self, conf: &PortMapConf, cid: &str, net: IpNetwork) -> Result<(), String> {
        iptables::check(
            &self.ipt(Family::of_net(&net)),
            &DnatSpec::new(conf, cid, net),
        )
    }

    /// Both families in parallel; a family whose iptables is not usable has nothing to collect.
    fn gc(&self, net: &str, valid: &BTreeSet<&str>) -> Vec<MapperError> {
        std::thread::scope(|s| {
            let handles = Family::ALL.map(|fam| {
                s.spawn(move || {
                    let ipt = self.ipt(fam);
                    match iptables::gc(&ipt, net, valid) {
                        Ok(_) => None,
                        Err(_) if !iptables::usable(&ipt) => None,
                        Err(source) => Some(MapperError {
                            context: fam.command().to_string(),
                            source: Box::new(source),
                        }),
                    }
                })
            });
            handles
                .into_iter()
                .filter_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Some(MapperError {
                            context: "iptables".into(),
                            source: Box::new(thread_failed("iptables")),
                        })
                    })
                })
                .collect()
        })
    }

    fn status(&self) -> Result<(), String> {
        for tool in [&self.tools.iptables, &self.tools.iptables_restore] {
            tool.resolve().map_err(|e| e.to_string())?;
        }
        if iptables::usable(&self.ipt(Family::V4)) {
            Ok(())
        } else {
            Err(format!(
                "{} cannot list the nat table",
                self.tools.iptables.name
            ))
        }
    }
}

fn merge(into: &mut Vec<u16>, from: &[u16]) {
    for p in from {
        if !into.contains(p) {
            into.push(*p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// nftables

/// Go's `cni_hostport` tables, rules keyed by a per-(network, container) counter.
pub struct NftMapper {
    tools: Tools,
}

impl NftMapper {
    pub fn new(tools: &Tools) -> NftMapper {
        NftMapper {
            tools: tools.clone(),
        }
    }

    fn nft(&self) -> Nft {
        Nft::new(&self.tools)
    }
}

impl PortMapper for NftMapper {
    fn backend(&self) -> Backend {
        Backend::Nftables
    }

    /// All of the pod's addresses in one transaction.
    fn add(&self, conf: &PortMapConf, cid: &str, nets: &[IpNetwork]) -> Result<(), MapperError> {
        let specs: Vec<NftSpec> = nets
            .iter()
            .map(|n| NftSpec::new(conf, cid, n.ip()))
            .collect();
        nft::add(&self.nft(), &specs).map_err(|source| MapperError {
            context: "unable to set up nftables rules for port mappings".into(),
            source: Box::new(source),
        })
    }

    fn del(&self, conf: &PortMapConf, cid: &str) -> Deleted {
        match nft::del(&self.nft(), &conf.name, cid) {
            Ok(udp_ports) => Deleted {
                udp_ports,
                errors: Vec::new(),
            },
            Err(e) => Deleted {
                udp_ports: Vec::new(),
                errors: vec![CniError::Internal(format!(
                    "error deleting nftables rules: {e}"
                ))],
            },
        }
    }

    fn check(&self, conf: &PortMapConf, cid: &str, net: IpNetwork) -> Result<(), String> {
        nft::check(&self.nft(), &NftSpec::new(conf, cid, net.ip()))
    }

    fn gc(&self, net: &str, valid: &BTreeSet<&str>) -> Vec<MapperError> {
        match nft::gc(&self.nft(), net, valid) {
            Ok(_) => Vec::new(),
            Err(source) => vec![MapperError {
                context: "nft".into(),
                source: Box::new(source),
            }],
        }
    }

    fn status(&self) -> Result<(), String> {
        self.tools.nft.resolve().map_err(|e| e.to_string())?;
        if self.nft().supported() {
            Ok(())
        } else {
            Err(format!(
                "{} cannot create tables (needs nftables v1.0.1 or later)",
                self.tools.nft.name
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing_tools() -> Tools {
        let mut tools =
            Tools::from_env().with_iptables_variant("/nonexistent/ipt", "/nonexistent/ip6t");
        tools.nft.name = "/nonexistent/nft".into();
        tools
    }

    #[test]
    fn dispatch_by_backend() {
        let tools = missing_tools();
        for b in [Backend::Iptables, Backend::Nftables] {
            assert_eq!(for_backend(b, &tools).backend(), b);
        }
        let [first, second] = all(&tools);
        assert_eq!(first.backend(), Backend::Iptables);
        assert_eq!(second.backend(), Backend::Nftables);
    }

    #[test]
    fn missing_binaries_are_status_errors_and_nothing_to_clean() {
        let tools = missing_tools();
        let ipt = for_backend(Backend::Iptables, &tools).status().unwrap_err();
        assert!(ipt.contains("/nonexistent/ipt"), "{ipt}");
        let nft = for_backend(Backend::Nftables, &tools).status().unwrap_err();
        assert!(nft.contains("/nonexistent/nft"), "{nft}");
        // GC and DEL of a backend that is not there have nothing to remove.
        for m in all(&tools) {
            assert!(
                m.gc("net", &BTreeSet::new()).is_empty(),
                "{:?}",
                m.backend()
            );
        }
    }
}
