//! The nftables backend: Go's `portmap_nftables.go` (v1.9) tables, chains and rules, written
//! in one `nft -f -` transaction for all of the pod's families.
//!
//! ```text
//! table ip cni_hostport {                      comment "CNI portmap plugin"
//!   chain hostports          per mapping: [ip daddr HIP] tcp dport H dnat to IP:P comment "<cid>"
//!   chain hostip_hostports   (kept empty, for upgrades from older Go versions)
//!   chain hostports_all      jump hostip_hostports; jump hostports
//!   chain prerouting         nat prerouting -100: <conditions> fib daddr type local jump hostports_all
//!   chain output             nat output -100: the same
//!   chain masquerading       nat postrouting 100 (snat): ip saddr IP ip daddr IP masquerade,
//!                            ip saddr 127.0.0.1 ip daddr IP masquerade (v4)
//! }
//! ```
//!
//! Keying. Go knows a rule only by its comment, the container ID, so two networks attaching
//! the same container (podman with several networks) share rules: a DEL on one network deletes
//! the other's, and a GC could not tell them apart. weft keeps the comment exactly as Go writes
//! it (so Go's DEL and CHECK still find weft's rules, and weft finds Go's) and adds a named
//! counter to each rule, `counter name "weft_<hash16(net)>_<hash16(cid)>"`, one counter object
//! per (network, container). The counter is the key: weft's DEL removes only the rules that
//! use its counter (plus Go-made rules of the cid, which carry no counter and which Go would
//! delete the same way), GC attributes rules to networks through it, and `create counter`
//! (which fails if the object exists) detects a repeated ADD without listing the table. If Go's
//! DEL removes weft's rules, the empty counter object stays until weft's GC or DEL of that
//! container removes it; it holds no rule and no address.

use std::collections::BTreeSet;
use std::net::IpAddr;

use weft_firewall::names::go_quote;
use weft_firewall::nft::{
    is_exists, sig, truncate_comment, Nft, NftListing, NftRule, NftScript, Sig,
};
use weft_firewall::{hash_with_prefix, FwError};

use crate::config::{PortMapConf, PortMapping};

pub const TABLE: &str = "cni_hostport";
pub const HOSTPORTS: &str = "hostports";
pub const HOSTIP_HOSTPORTS: &str = "hostip_hostports";
pub const HOSTPORTS_ALL: &str = "hostports_all";
pub const MASQUERADING: &str = "masquerading";
const TABLE_COMMENT: &str = "CNI portmap plugin";
/// Every counter weft creates starts with this.
pub const COUNTER_PREFIX: &str = "weft_";
/// The chains holding per-container rules (Go's DEL looks at these three).
const RULE_CHAINS: [&str; 3] = [HOSTPORTS, HOSTIP_HOSTPORTS, MASQUERADING];

/// `ip` or `ip6`.
pub fn family(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

/// The counter naming (network, container).
pub fn counter_name(net: &str, cid: &str) -> String {
    format!(
        "{}{}",
        net_counter_prefix(net),
        hash_with_prefix(16, "", cid)
    )
}

/// The start of every counter of network `net`.
pub fn net_counter_prefix(net: &str) -> String {
    format!("{COUNTER_PREFIX}{}_", hash_with_prefix(16, "", net))
}

/// The rule comment: the container ID, as Go writes it (cut to what the kernel keeps).
pub fn rule_comment(cid: &str) -> String {
    truncate_comment(cid.to_string())
}

fn ip_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// One container address's rules.
#[derive(Debug, Clone)]
pub struct NftSpec<'a> {
    pub net: &'a str,
    pub cid: &'a str,
    pub mappings: &'a [PortMapping],
    pub snat: bool,
    pub masq_all: bool,
    pub conditions: &'a [String],
    pub container: IpAddr,
}

impl<'a> NftSpec<'a> {
    pub fn new(conf: &'a PortMapConf, cid: &'a str, container: IpAddr) -> NftSpec<'a> {
        NftSpec {
            net: &conf.name,
            cid,
            mappings: &conf.mappings,
            snat: conf.snat,
            masq_all: conf.masq_all,
            conditions: conf.conditions(container.is_ipv6()),
            container,
        }
    }

    pub fn v6(&self) -> bool {
        self.container.is_ipv6()
    }

    pub fn family(&self) -> &'static str {
        family(self.v6())
    }

    pub fn counter(&self) -> String {
        counter_name(self.net, self.cid)
    }

    /// (chain, rule) of every per-container rule, without the comment.
    pub fn rules(&self) -> Vec<(&'static str, String)> {
        let v6 = self.v6();
        let ip = self.family();
        let ctr = self.counter();
        let mut out = Vec::new();
        for m in self.mappings.iter().filter(|m| m.applies_to(v6)) {
            // Go v1.9 puts hostIP rules in `hostports` too (hostip_hostports is kept empty).
            let daddr = m
                .dest_ip()
                .map(|d| format!("{ip} daddr {d} "))
                .unwrap_or_default();
            out.push((
                HOSTPORTS,
                format!(
                    "{daddr}{} dport {} counter name \"{ctr}\" dnat to {}",
                    m.protocol.as_str(),
                    m.host_port,
                    ip_port(self.container, m.container_port)
                ),
            ));
        }
        if self.snat {
            let saddr = match (self.masq_all, v6) {
                (true, false) => "0.0.0.0/0".to_string(),
                (true, true) => "::/0".to_string(),
                (false, _) => self.container.to_string(),
            };
            let c = self.container;
            out.push((
                MASQUERADING,
                format!("{ip} saddr {saddr} {ip} daddr {c} counter name \"{ctr}\" masquerade"),
            ));
            if !v6 && !self.masq_all {
                out.push((
                    MASQUERADING,
                    format!("ip saddr 127.0.0.1 ip daddr {c} counter name \"{ctr}\" masquerade"),
                ));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Scripts (crates/firewall's NftScript writes the commands, quotes the comments and refuses
// control characters)

/// An empty script on `fam`'s cni_hostport table.
fn table_script(fam: &str) -> NftScript {
    NftScript::new(fam, TABLE)
}

/// The table and chains, and the rewritten dispatch chains (Go rewrites them on every ADD).
pub fn base(fam: &str, conditions: &[String], snat: bool) -> NftScript {
    let mut s = table_script(fam);
    s.add_table(Some(TABLE_COMMENT))
        .add_chain(HOSTPORTS, None)
        .add_chain(HOSTIP_HOSTPORTS, None)
        .add_chain(HOSTPORTS_ALL, None)
        .flush_chain(HOSTPORTS_ALL)
        .add_rule(HOSTPORTS_ALL, &format!("jump {HOSTIP_HOSTPORTS}"), None)
        .add_rule(HOSTPORTS_ALL, &format!("jump {HOSTPORTS}"), None);
    let mut dispatch: Vec<&str> = conditions.iter().map(String::as_str).collect();
    dispatch.extend(["fib", "daddr", "type", "local", "jump", HOSTPORTS_ALL]);
    let dispatch = dispatch.join(" ");
    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        // knftables writes priorities as numbers: dstnat is -100.
        s.add_base_chain(chain, "nat", hook, -100)
            .flush_chain(chain)
            .add_rule(chain, &dispatch, None);
    }
    if snat {
        s.add_base_chain(MASQUERADING, "nat", "postrouting", 100);
    }
    s
}

/// The container's counter, `create`d (fails if it exists: a repeated ADD) or `add`ed
/// (idempotent), then its rules, each with the cid as comment (nft's quoting; a container ID
/// is [A-Za-z0-9_.-], so this is the text Go's %q writes too).
pub fn container(spec: &NftSpec, create: bool) -> NftScript {
    let mut s = table_script(spec.family());
    let ctr = spec.counter();
    if create {
        s.create_counter(&ctr);
    } else {
        s.add_counter(&ctr);
    }
    let comment = rule_comment(spec.cid);
    for (chain, rule) in spec.rules() {
        s.add_rule(chain, &rule, Some(&comment));
    }
    s
}

/// The ADD transaction for `specs` (one per pod address), with the table comment (see
/// [`NftScript::without_object_comments`] for kernels without). `stale` are rules to delete
/// first (slow path); `create` makes the counters with `create` (fast path).
pub fn add_script(
    specs: &[NftSpec],
    stale: &[(&'static str, String, u64)],
    create: bool,
) -> NftScript {
    // The commands of both families go into one transaction; the table of this (empty)
    // starting script does not matter.
    let mut s = table_script(family(false));
    for spec in specs {
        s.extend(base(spec.family(), spec.conditions, spec.snat));
    }
    for (fam, chain, handle) in stale {
        s.extend({
            let mut d = table_script(fam);
            d.delete_rule(chain, *handle);
            d
        });
    }
    for spec in specs {
        s.extend(container(spec, create));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Listing (crates/firewall's NftListing parses `nft -j list table`)

/// Which rules of a cni_hostport listing belong to whom.
pub trait Owned {
    /// The per-container rules of (net, cid): those using its counter, and Go-made ones (no
    /// weft counter) whose comment is the cid.
    fn owned<'a>(&'a self, net: &str, cid: &str) -> impl Iterator<Item = &'a NftRule> + 'a;
}

impl Owned for NftListing {
    fn owned<'a>(&'a self, net: &str, cid: &str) -> impl Iterator<Item = &'a NftRule> + 'a {
        let ctr = counter_name(net, cid);
        let comment = rule_comment(cid);
        self.rules.iter().filter(move |r| {
            RULE_CHAINS.contains(&r.chain.as_str())
                && match r.counter.as_deref() {
                    Some(c) if c.starts_with(COUNTER_PREFIX) => c == ctr,
                    _ => r.comment.as_deref() == Some(comment.as_str()),
                }
        })
    }
}

/// What CHECK expects from `spec`, as signatures.
pub fn expected_sigs(spec: &NftSpec) -> Vec<(&'static str, Sig)> {
    let v6 = spec.v6();
    let c = spec.container.to_string();
    let mut out = Vec::new();
    for m in spec.mappings.iter().filter(|m| m.applies_to(v6)) {
        out.push((
            HOSTPORTS,
            Sig {
                daddr: m.dest_ip().map(|d| d.to_string()),
                proto: Some(m.protocol.as_str().to_string()),
                dport: Some(u64::from(m.host_port)),
                dnat: Some((c.clone(), u64::from(m.container_port))),
                ..Sig::default()
            },
        ));
    }
    if spec.snat {
        let saddr = match (spec.masq_all, v6) {
            (true, false) => "0.0.0.0/0".to_string(),
            (true, true) => "::/0".to_string(),
            (false, _) => c.clone(),
        };
        out.push((
            MASQUERADING,
            Sig {
                saddr: Some(saddr),
                daddr: Some(c.clone()),
                masquerade: true,
                ..Sig::default()
            },
        ));
        if !v6 && !spec.masq_all {
            out.push((
                MASQUERADING,
                Sig {
                    saddr: Some("127.0.0.1".into()),
                    daddr: Some(c),
                    masquerade: true,
                    ..Sig::default()
                },
            ));
        }
    }
    out
}

/// UDP host ports of DNAT rules.
pub fn udp_ports<'a>(rules: impl Iterator<Item = &'a NftRule>) -> Vec<u16> {
    let mut out = Vec::new();
    for r in rules {
        let s = sig(&r.expr);
        if s.dnat.is_some() && s.proto.as_deref() == Some("udp") {
            if let Some(p) = s.dport.and_then(|p| u16::try_from(p).ok()) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running it (crates/firewall's `Nft` runs the tool)

/// ADD for all of the pod's addresses in one transaction.
pub fn add(nft: &Nft, specs: &[NftSpec]) -> Result<(), FwError> {
    if specs.is_empty() {
        return Ok(());
    }
    let script = add_script(specs, &[], true);
    let err = match nft.apply(&script) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if !is_exists(&err) {
        // Kernels without table comments: knftables drops them; so do we.
        match nft.apply(&script.without_object_comments()) {
            Ok(()) => return Ok(()),
            Err(e) if is_exists(&e) => {}
            Err(_) => return Err(err),
        }
    }
    // A repeated ADD: replace the container's rules.
    let mut stale: Vec<(&'static str, String, u64)> = Vec::new();
    for spec in specs {
        if let Some(listing) = nft.listing(spec.family(), TABLE)? {
            for r in listing.owned(spec.net, spec.cid) {
                stale.push((spec.family(), r.chain.clone(), r.handle));
            }
        }
    }
    let script = add_script(specs, &stale, false);
    match nft.apply(&script) {
        Ok(()) => Ok(()),
        Err(e) => nft.apply(&script.without_object_comments()).map_err(|_| e),
    }
}

/// DEL in both families: the container's rules and counter. Returns the UDP host ports the
/// removed rules mapped. `Ok` with nothing done when nft is missing or has no table.
pub fn del(nft: &Nft, net: &str, cid: &str) -> Result<Vec<u16>, FwError> {
    let mut script = table_script(family(false));
    let mut ports = Vec::new();
    let ctr = counter_name(net, cid);
    for (fam, listing) in nft.listings_ip_ip6(TABLE) {
        let listing = match listing {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(FwError::MissingBinary { .. }) => return Ok(Vec::new()),
            // An nft that cannot work here (no nf_tables) holds no rules of ours.
            Err(_) if !nft.supported() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mine: Vec<&NftRule> = listing.owned(net, cid).collect();
        for p in udp_ports(mine.iter().copied()) {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let mut del = table_script(fam);
        for r in mine {
            del.delete_rule(&r.chain, r.handle);
        }
        if listing.counters.contains(&ctr) {
            del.delete_counter(&ctr);
        }
        script.extend(del);
    }
    nft.apply(&script)?;
    Ok(ports)
}

/// CHECK of one address: every expected rule exists (with weft's counter, or Go-made), and the
/// dispatch chains exist.
pub fn check(nft: &Nft, spec: &NftSpec) -> Result<(), String> {
    let fam = spec.family();
    let listing = nft
        .listing(fam, TABLE)
        .map_err(|e| format!("could not list nftables table {fam} {TABLE}: {e}"))?
        .ok_or_else(|| format!("nftables table {fam} {TABLE} not found"))?;
    // (hostports_all is not required: Go before v1.9 jumped to the rule chains directly.)
    for chain in ["prerouting", "output"] {
        if !listing.chains.iter().any(|c| c == chain) {
            return Err(format!(
                "chain {chain} not found in nftables table {fam} {TABLE}"
            ));
        }
    }
    let mine: Vec<(&str, Sig)> = listing
        .owned(spec.net, spec.cid)
        .map(|r| (r.chain.as_str(), sig(&r.expr)))
        .collect();
    for (chain, want) in expected_sigs(spec) {
        let found = mine.iter().any(|(c, s)| {
            let chain_ok = *c == chain || (chain == HOSTPORTS && *c == HOSTIP_HOSTPORTS);
            chain_ok && *s == want
        });
        if !found {
            return Err(format!(
                "missing hostport rules in {} chain",
                go_quote(chain)
            ));
        }
    }
    Ok(())
}

/// GC in both families: removes the rules of network `net` whose container is not in
/// `valid`, and the network's counters no rule uses any more.
pub fn gc(nft: &Nft, net: &str, valid: &BTreeSet<&str>) -> Result<usize, FwError> {
    let prefix = net_counter_prefix(net);
    let mut script = table_script(family(false));
    let mut removed = 0;
    for (fam, listing) in nft.listings_ip_ip6(TABLE) {
        let listing = match listing {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(FwError::MissingBinary { .. }) => return Ok(0),
            Err(_) if !nft.supported() => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut del = table_script(fam);
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        for r in &listing.rules {
            let (Some(ctr), Some(cid)) = (r.counter.as_deref(), r.comment.as_deref()) else {
                continue;
            };
            if !ctr.starts_with(&prefix) || !RULE_CHAINS.contains(&r.chain.as_str()) {
                continue;
            }
            if counter_name(net, cid) == ctr && !valid.contains(cid) {
                del.delete_rule(&r.chain, r.handle);
                gone.insert(r.handle);
                removed += 1;
            }
        }
        for ctr in listing.counters.iter().filter(|c| c.starts_with(&prefix)) {
            let used = listing
                .rules
                .iter()
                .any(|r| !gone.contains(&r.handle) && r.counter.as_deref() == Some(ctr.as_str()));
            if !used {
                del.delete_counter(ctr);
            }
        }
        script.extend(del);
    }
    nft.apply(&script)?;
    Ok(removed)
}

#[cfg(test)]
mod tests;
