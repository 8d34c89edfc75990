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

use serde_json::Value;
use weft_firewall::names::go_quote;
use weft_firewall::nft::{nft_quote, truncate_comment};
use weft_firewall::{hash_with_prefix, FwError, Tool, Tools};

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

/// An nft script, one command per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    lines: Vec<String>,
}

impl Script {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    /// The table and chains, and the rewritten dispatch chains (Go rewrites them on every ADD).
    pub fn base(&mut self, fam: &str, conditions: &[String], snat: bool, table_comment: bool) {
        let t = format!("{fam} {TABLE}");
        if table_comment {
            self.push(format!(
                "add table {t} {{ comment {} ; }}",
                nft_quote(TABLE_COMMENT)
            ));
        } else {
            self.push(format!("add table {t}"));
        }
        self.push(format!("add chain {t} {HOSTPORTS}"));
        self.push(format!("add chain {t} {HOSTIP_HOSTPORTS}"));
        self.push(format!("add chain {t} {HOSTPORTS_ALL}"));
        self.push(format!("flush chain {t} {HOSTPORTS_ALL}"));
        self.push(format!(
            "add rule {t} {HOSTPORTS_ALL} jump {HOSTIP_HOSTPORTS}"
        ));
        self.push(format!("add rule {t} {HOSTPORTS_ALL} jump {HOSTPORTS}"));
        let mut dispatch: Vec<&str> = conditions.iter().map(String::as_str).collect();
        dispatch.extend(["fib", "daddr", "type", "local", "jump", HOSTPORTS_ALL]);
        let dispatch = dispatch.join(" ");
        for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
            // knftables writes priorities as numbers: dstnat is -100.
            self.push(format!(
                "add chain {t} {chain} {{ type nat hook {hook} priority -100 ; }}"
            ));
            self.push(format!("flush chain {t} {chain}"));
            self.push(format!("add rule {t} {chain} {dispatch}"));
        }
        if snat {
            self.push(format!(
                "add chain {t} {MASQUERADING} {{ type nat hook postrouting priority 100 ; }}"
            ));
        }
    }

    /// `create counter` (fails if it exists: a repeated ADD) or `add counter` (idempotent).
    pub fn counter(&mut self, fam: &str, name: &str, create: bool) {
        let verb = if create { "create" } else { "add" };
        self.push(format!("{verb} counter {fam} {TABLE} {name}"));
    }

    pub fn container(&mut self, spec: &NftSpec) {
        let fam = spec.family();
        // nft's quoting (crates/firewall's, for every nft script): a container ID is
        // [A-Za-z0-9_.-], so this is the text Go's %q writes too.
        let comment = nft_quote(&rule_comment(spec.cid));
        for (chain, rule) in spec.rules() {
            self.push(format!(
                "add rule {fam} {TABLE} {chain} {rule} comment {comment}"
            ));
        }
    }

    pub fn delete_rule(&mut self, fam: &str, chain: &str, handle: u64) {
        self.push(format!("delete rule {fam} {TABLE} {chain} handle {handle}"));
    }

    pub fn delete_counter(&mut self, fam: &str, name: &str) {
        self.push(format!("delete counter {fam} {TABLE} {name}"));
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// The ADD transaction for `specs` (one per pod address). `stale` are rules to delete first
/// (slow path); `create` makes the counters with `create` (fast path).
pub fn add_script(
    specs: &[NftSpec],
    stale: &[(&'static str, String, u64)],
    create: bool,
    table_comment: bool,
) -> Script {
    let mut s = Script::default();
    for spec in specs {
        s.base(spec.family(), spec.conditions, spec.snat, table_comment);
    }
    for (fam, chain, handle) in stale {
        s.delete_rule(fam, chain, *handle);
    }
    for spec in specs {
        s.counter(spec.family(), &spec.counter(), create);
        s.container(spec);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Listing

/// A rule of the cni_hostport table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub chain: String,
    pub handle: u64,
    pub comment: Option<String>,
    /// The named counter the rule uses, if any.
    pub counter: Option<String>,
    pub expr: Value,
}

/// What `nft -j list table <fam> cni_hostport` shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub chains: Vec<String>,
    pub rules: Vec<Rule>,
    pub counters: Vec<String>,
}

impl Listing {
    pub fn parse(text: &str) -> Result<Listing, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let items = v
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or("no \"nftables\" array")?;
        let mut out = Listing::default();
        for item in items {
            if let Some(c) = item.get("chain") {
                if let Some(name) = c.get("name").and_then(Value::as_str) {
                    out.chains.push(name.to_string());
                }
            } else if let Some(c) = item.get("counter") {
                if let Some(name) = c.get("name").and_then(Value::as_str) {
                    out.counters.push(name.to_string());
                }
            } else if let Some(r) = item.get("rule") {
                let chain = r
                    .get("chain")
                    .and_then(Value::as_str)
                    .ok_or("rule with no chain")?;
                let handle = r
                    .get("handle")
                    .and_then(Value::as_u64)
                    .ok_or("rule with no handle")?;
                let expr = r.get("expr").cloned().unwrap_or(Value::Null);
                let counter = expr.as_array().and_then(|a| {
                    a.iter()
                        .find_map(|e| e.get("counter").and_then(Value::as_str).map(String::from))
                });
                out.rules.push(Rule {
                    chain: chain.to_string(),
                    handle,
                    comment: r.get("comment").and_then(Value::as_str).map(String::from),
                    counter,
                    expr,
                });
            }
        }
        Ok(out)
    }

    /// The per-container rules of (net, cid): those using its counter, and Go-made ones (no
    /// weft counter) whose comment is the cid.
    pub fn owned<'a>(&'a self, net: &str, cid: &str) -> impl Iterator<Item = &'a Rule> + 'a {
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

/// The match/NAT parts of a rule that CHECK compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sig {
    pub saddr: Option<String>,
    pub daddr: Option<String>,
    pub proto: Option<String>,
    pub dport: Option<u64>,
    pub dnat: Option<(String, u64)>,
    pub masquerade: bool,
}

fn addr_text(v: &Value) -> Option<String> {
    if let Some(s) = v.as_str() {
        return Some(s.to_string());
    }
    let p = v.get("prefix")?;
    Some(format!(
        "{}/{}",
        p.get("addr")?.as_str()?,
        p.get("len")?.as_u64()?
    ))
}

/// Reads a rule's expressions into a [`Sig`].
pub fn sig(expr: &Value) -> Sig {
    let mut s = Sig::default();
    for e in expr.as_array().into_iter().flatten() {
        if let Some(m) = e.get("match") {
            let Some(payload) = m.get("left").and_then(|l| l.get("payload")) else {
                continue;
            };
            let proto = payload
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("");
            let field = payload.get("field").and_then(Value::as_str).unwrap_or("");
            let right = m.get("right").cloned().unwrap_or(Value::Null);
            match field {
                "saddr" => s.saddr = addr_text(&right),
                "daddr" => s.daddr = addr_text(&right),
                "dport" => {
                    s.proto = Some(proto.to_string());
                    s.dport = right.as_u64();
                }
                _ => {}
            }
        } else if let Some(d) = e.get("dnat") {
            let addr = d.get("addr").and_then(addr_text);
            let port = d.get("port").and_then(Value::as_u64);
            if let (Some(a), Some(p)) = (addr, port) {
                s.dnat = Some((a, p));
            }
        } else if e.get("masquerade").is_some() {
            s.masquerade = true;
        }
    }
    s
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
pub fn udp_ports<'a>(rules: impl Iterator<Item = &'a Rule>) -> Vec<u16> {
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
// Running it

/// The `nft` binary.
#[derive(Debug, Clone)]
pub struct Nft {
    tool: Tool,
}

/// An ADD transaction failed because the container's counter exists (a repeated ADD).
fn is_exists(e: &FwError) -> bool {
    e.stderr_contains("File exists")
}

impl Nft {
    pub fn new(tools: &Tools) -> Nft {
        Nft {
            tool: tools.nft.clone(),
        }
    }

    pub fn run(&self, script: &Script) -> Result<(), FwError> {
        if script.is_empty() {
            return Ok(());
        }
        let args = ["-f", "-"].map(String::from);
        self.tool.run(&args, Some(&script.render())).map(|_| ())
    }

    /// The table of `fam`, or None when it does not exist.
    pub fn list(&self, fam: &str) -> Result<Option<Listing>, FwError> {
        let args = ["-j", "list", "table", fam, TABLE].map(String::from);
        match self.tool.run(&args, None) {
            Ok(out) => Listing::parse(&out)
                .map(Some)
                .map_err(|msg| FwError::Parse {
                    binary: self.tool.name.clone(),
                    msg,
                }),
            Err(e) if weft_firewall::nft::is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Both tables, listed in parallel.
    pub fn list_both(&self) -> [(&'static str, Result<Option<Listing>, FwError>); 2] {
        std::thread::scope(|s| {
            let v6 = s.spawn(|| self.list("ip6"));
            let v4 = self.list("ip");
            let v6 = v6.join().unwrap_or_else(|_| {
                Err(FwError::Parse {
                    binary: self.tool.name.clone(),
                    msg: "listing thread failed".into(),
                })
            });
            [("ip", v4), ("ip6", v6)]
        })
    }

    pub fn supported(&self) -> bool {
        let mut tools = Tools::from_env();
        tools.nft = self.tool.clone();
        weft_firewall::supports_nftables(&tools)
    }
}

/// ADD for all of the pod's addresses in one transaction.
pub fn add(nft: &Nft, specs: &[NftSpec]) -> Result<(), FwError> {
    if specs.is_empty() {
        return Ok(());
    }
    let err = match nft.run(&add_script(specs, &[], true, true)) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if !is_exists(&err) {
        // Kernels without table comments: knftables drops them; so do we.
        match nft.run(&add_script(specs, &[], true, false)) {
            Ok(()) => return Ok(()),
            Err(e) if is_exists(&e) => {}
            Err(_) => return Err(err),
        }
    }
    // A repeated ADD: replace the container's rules.
    let mut stale: Vec<(&'static str, String, u64)> = Vec::new();
    for spec in specs {
        if let Some(listing) = nft.list(spec.family())? {
            for r in listing.owned(spec.net, spec.cid) {
                stale.push((spec.family(), r.chain.clone(), r.handle));
            }
        }
    }
    match nft.run(&add_script(specs, &stale, false, true)) {
        Ok(()) => Ok(()),
        Err(e) => nft
            .run(&add_script(specs, &stale, false, false))
            .map_err(|_| e),
    }
}

/// DEL in both families: the container's rules and counter. Returns the UDP host ports the
/// removed rules mapped. `Ok` with nothing done when nft is missing or has no table.
pub fn del(nft: &Nft, net: &str, cid: &str) -> Result<Vec<u16>, FwError> {
    let mut script = Script::default();
    let mut ports = Vec::new();
    let ctr = counter_name(net, cid);
    for (fam, listing) in nft.list_both() {
        let listing = match listing {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(FwError::MissingBinary { .. }) => return Ok(Vec::new()),
            // An nft that cannot work here (no nf_tables) holds no rules of ours.
            Err(_) if !nft.supported() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let owned: Vec<&Rule> = listing.owned(net, cid).collect();
        for p in udp_ports(owned.iter().copied()) {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        for r in owned {
            script.delete_rule(fam, &r.chain, r.handle);
        }
        if listing.counters.contains(&ctr) {
            script.delete_counter(fam, &ctr);
        }
    }
    nft.run(&script)?;
    Ok(ports)
}

/// CHECK of one address: every expected rule exists (with weft's counter, or Go-made), and the
/// dispatch chains exist.
pub fn check(nft: &Nft, spec: &NftSpec) -> Result<(), String> {
    let fam = spec.family();
    let listing = nft
        .list(fam)
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
    let owned: Vec<(&str, Sig)> = listing
        .owned(spec.net, spec.cid)
        .map(|r| (r.chain.as_str(), sig(&r.expr)))
        .collect();
    for (chain, want) in expected_sigs(spec) {
        let found = owned.iter().any(|(c, s)| {
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
    let mut script = Script::default();
    let mut removed = 0;
    for (fam, listing) in nft.list_both() {
        let listing = match listing {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(FwError::MissingBinary { .. }) => return Ok(0),
            Err(_) if !nft.supported() => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        for r in &listing.rules {
            let (Some(ctr), Some(cid)) = (r.counter.as_deref(), r.comment.as_deref()) else {
                continue;
            };
            if !ctr.starts_with(&prefix) || !RULE_CHAINS.contains(&r.chain.as_str()) {
                continue;
            }
            if counter_name(net, cid) == ctr && !valid.contains(cid) {
                script.delete_rule(fam, &r.chain, r.handle);
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
                script.delete_counter(fam, ctr);
            }
        }
    }
    nft.run(&script)?;
    Ok(removed)
}

#[cfg(test)]
mod tests;
