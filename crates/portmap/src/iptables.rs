//! The iptables backend, rule for rule what Go's `portmap_iptables.go` / `chain.go` make (nat
//! table):
//!
//! ```text
//! -A PREROUTING  -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT          (appended)
//! -A OUTPUT      -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT          (appended)
//! -I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
//! -A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
//! -A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
//! -A CNI-HOSTPORT-DNAT -m comment --comment "dnat name: \"<net>\" id: \"<cid>\"" -m multiport -p tcp --destination-ports 8080,8081 -j CNI-DN-<hash>
//! -A CNI-DN-<hash> -p tcp --dport 8080 -s 10.0.0.2/24 -j CNI-HOSTPORT-SETMARK   (hairpin)
//! -A CNI-DN-<hash> -p tcp --dport 8080 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK     (localhost, v4)
//! -A CNI-DN-<hash> -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80
//! ```
//!
//! Speed. Go runs two or three iptables commands per rule, each of which lists the whole nat
//! table, so ADD costs ~55 ms on an empty node and ~140 ms with 500 mapped containers. Here an
//! ADD is one `iptables-restore --noflush` transaction per family that creates the container's
//! chain with `-N` (which fails if the chain exists: a repeated ADD) and appends its entry
//! rules, run next to a second restore that only lists the five small shared chains
//! (`-S PREROUTING` ...) to check the jumps and mark rules are still there. Neither touches the
//! per-container part of the table, so the cost does not grow with the number of containers.
//! Anything unexpected (first ADD on the node, a repeated ADD, a missing shared piece) takes the
//! slow path: list the nat table, compute exactly what is missing, apply it in one transaction.

use std::collections::BTreeSet;
use std::path::Path;

use ipnetwork::IpNetwork;
use weft_firewall::iptables::{same_rule, Iptables, RestoreBatch, RuleArgs, SavedRule, TableDump};
use weft_firewall::{chain_name, FwError, SharedLock, SHARED_LOCK_PATH};

use crate::config::{PortMapConf, PortMapping, Protocol};

pub const TOP_DNAT_CHAIN: &str = "CNI-HOSTPORT-DNAT";
pub const SETMARK_CHAIN: &str = crate::config::SETMARK_CHAIN;
pub const MASQ_CHAIN: &str = "CNI-HOSTPORT-MASQ";
const NAT: &str = "nat";
/// multiport takes at most 15 ports.
const MULTIPORT_MAX: usize = 15;
/// iptables comments are at most 255 characters.
const COMMENT_MAX: usize = 255;
/// Slow-path attempts (another ADD may change the table between our listing and our restore).
const ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------------------------
// Names and rules (pure data; the unit tests hold them to Go's golden lists)

/// `CNI-DN-` + hex(sha512(net + cid)), 28 characters.
pub fn dnat_chain_name(net: &str, cid: &str) -> String {
    chain_name("DN-", net, cid)
}

/// Go `trimComment`: at most 255 characters, else cut to 253 and "...".
pub fn trim_comment(s: String) -> String {
    if s.len() <= COMMENT_MAX {
        return s;
    }
    let mut cut = COMMENT_MAX - 2;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &s[..cut])
}

/// The entry rules' comment. Go formats it with `%s` between literal quotes, not `%q`.
pub fn dnat_comment(net: &str, cid: &str) -> String {
    trim_comment(format!("dnat name: \"{net}\" id: \"{cid}\""))
}

/// The cid of an entry-rule comment of network `net`, if the comment is one (and was not
/// trimmed).
pub fn cid_from_dnat_comment(comment: &str, net: &str) -> Option<String> {
    let rest = comment.strip_prefix(&format!("dnat name: \"{net}\" id: \""))?;
    let cid = rest.strip_suffix('"')?;
    (dnat_comment(net, cid) == comment).then(|| cid.to_string())
}

/// `1<<bit` as Go's `%#x/%#x`: bit 13 is `0x2000/0x2000`.
pub fn mark_def(bit: u32) -> String {
    let v: u64 = 1u64 << bit.min(31);
    format!("{v:#x}/{v:#x}")
}

fn args(a: &[&str]) -> RuleArgs {
    a.iter().map(|s| s.to_string()).collect()
}

/// PREROUTING / OUTPUT -> CNI-HOSTPORT-DNAT.
pub fn top_entry_rule() -> RuleArgs {
    args(&[
        "-m",
        "addrtype",
        "--dst-type",
        "LOCAL",
        "-j",
        TOP_DNAT_CHAIN,
    ])
}

/// The only rule of CNI-HOSTPORT-SETMARK.
pub fn setmark_rule(bit: u32) -> RuleArgs {
    let mark = mark_def(bit);
    args(&[
        "-m",
        "comment",
        "--comment",
        "CNI portfwd masquerade mark",
        "-j",
        "MARK",
        "--set-xmark",
        &mark,
    ])
}

/// The only rule of CNI-HOSTPORT-MASQ.
pub fn masq_rule(bit: u32) -> RuleArgs {
    let mark = mark_def(bit);
    args(&["-m", "mark", "--mark", &mark, "-j", "MASQUERADE"])
}

/// POSTROUTING -> CNI-HOSTPORT-MASQ (inserted at position 1, or the bridge's masquerade rules
/// would catch the traffic first).
pub fn masq_entry_rule() -> RuleArgs {
    args(&[
        "-m",
        "comment",
        "--comment",
        "CNI portfwd requiring masquerade",
        "-j",
        MASQ_CHAIN,
    ])
}

/// `ip:port`, `[ip6]:port`.
fn ip_port(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Everything one container needs in one family.
#[derive(Debug, Clone)]
pub struct DnatSpec<'a> {
    pub net: &'a str,
    pub cid: &'a str,
    pub mappings: &'a [PortMapping],
    pub snat: bool,
    pub masq_all: bool,
    pub set_mark_chain: &'a str,
    pub conditions: &'a [String],
    /// The container's address with its prefix, as prevResult gave it.
    pub container: IpNetwork,
}

impl<'a> DnatSpec<'a> {
    pub fn new(conf: &'a PortMapConf, cid: &'a str, container: IpNetwork) -> DnatSpec<'a> {
        DnatSpec {
            net: &conf.name,
            cid,
            mappings: &conf.mappings,
            snat: conf.snat,
            masq_all: conf.masq_all,
            set_mark_chain: conf.set_mark_chain(),
            conditions: conf.conditions(container.is_ipv6()),
            container,
        }
    }

    pub fn v6(&self) -> bool {
        self.container.is_ipv6()
    }

    pub fn chain(&self) -> String {
        dnat_chain_name(self.net, self.cid)
    }

    /// Go's `entryRules` (without the `-j <chain>`): one per protocol, protocols sorted, at
    /// most 15 ports each, every mapping's host port whatever its hostIP family.
    pub fn entry_matches(&self) -> Vec<RuleArgs> {
        let comment = dnat_comment(self.net, self.cid);
        let protos: BTreeSet<&str> = self.mappings.iter().map(|m| m.protocol.as_str()).collect();
        let mut out = Vec::new();
        for proto in protos {
            let ports: Vec<String> = self
                .mappings
                .iter()
                .filter(|m| m.protocol.as_str() == proto)
                .map(|m| m.host_port.to_string())
                .collect();
            for chunk in ports.chunks(MULTIPORT_MAX) {
                let mut r = args(&["-m", "comment", "--comment", &comment, "-m", "multiport"]);
                r.extend(args(&[
                    "-p",
                    proto,
                    "--destination-ports",
                    &chunk.join(","),
                ]));
                r.extend(self.conditions.iter().cloned());
                out.push(r);
            }
        }
        out
    }

    /// The rules in CNI-HOSTPORT-DNAT that lead to this container's chain.
    pub fn entry_rules(&self) -> Vec<RuleArgs> {
        let chain = self.chain();
        self.entry_matches()
            .into_iter()
            .map(|mut r| {
                r.extend(args(&["-j", &chain]));
                r
            })
            .collect()
    }

    /// Go's `fillDnatRules` rules: per applicable mapping the hairpin mark, the localhost mark
    /// (v4 without masqAll) and the DNAT. The mark rules come first.
    pub fn rules(&self) -> Vec<RuleArgs> {
        let v6 = self.v6();
        let mut out = Vec::with_capacity(3 * self.mappings.len());
        for m in self.mappings.iter().filter(|m| m.applies_to(v6)) {
            let mut base = args(&[
                "-p",
                m.protocol.as_str(),
                "--dport",
                &m.host_port.to_string(),
            ]);
            if let Some(dst) = m.dest_ip() {
                base.extend(args(&["-d", &dst.to_string()]));
            }
            if self.snat {
                let masq_cidr = match (self.masq_all, v6) {
                    (true, false) => "0.0.0.0/0".to_string(),
                    (true, true) => "::/0".to_string(),
                    // Go prints the address with its prefix, host bits included.
                    (false, _) => self.container.to_string(),
                };
                let mut hairpin = base.clone();
                hairpin.extend(args(&["-s", &masq_cidr, "-j", self.set_mark_chain]));
                out.push(hairpin);
                if !v6 && !self.masq_all {
                    let mut local = base.clone();
                    local.extend(args(&["-s", "127.0.0.1", "-j", self.set_mark_chain]));
                    out.push(local);
                }
            }
            let mut dnat = base;
            let to = ip_port(self.container.ip(), m.container_port);
            dnat.extend(args(&["-j", "DNAT", "--to-destination", &to]));
            out.push(dnat);
        }
        out
    }
}

/// The shared chains an ADD makes sure of.
#[derive(Debug, Clone, Copy)]
pub struct Shared {
    /// snat without externalSetMarkChain: CNI-HOSTPORT-SETMARK / -MASQ and the POSTROUTING jump.
    pub mark_chains: bool,
    pub mark_bit: u32,
}

impl Shared {
    pub fn new(conf: &PortMapConf) -> Shared {
        Shared {
            mark_chains: conf.own_mark_chains(),
            mark_bit: conf.mark_masq_bit,
        }
    }
}

/// Whether `chain` in `dump` holds `rule` (crates/firewall's [`same_rule`]: any option order,
/// canonical addresses, multiport's `--destination-ports` read back as `--dports`).
fn dump_contains(dump: &TableDump, chain: &str, rule: &[String]) -> bool {
    dump.contains(chain, rule)
}

// ---------------------------------------------------------------------------------------------
// iptables-restore batches

/// An empty `*nat ... COMMIT` transaction (crates/firewall's [`RestoreBatch`]: its quoting,
/// its refusal of control characters; `-S` lines list chains, see [`Iptables::read`]).
pub fn nat_batch() -> RestoreBatch {
    RestoreBatch::new(NAT)
}

/// The fast-path ADD: create the container's chain (fails if it exists), fill it, append the
/// entry rules. Fails as a whole if CNI-HOSTPORT-DNAT or the mark chain is missing.
pub fn fresh_add_batch(chain: &str, rules: &[RuleArgs], entries: &[RuleArgs]) -> RestoreBatch {
    let mut b = nat_batch();
    b.new_chain(chain);
    for r in rules {
        b.append(chain, r);
    }
    for e in entries {
        b.append(TOP_DNAT_CHAIN, e);
    }
    b
}

/// The fast-path read: the five small shared chains (only PREROUTING and OUTPUT without the
/// mark chains).
pub fn shared_read_batch(shared: &Shared) -> RestoreBatch {
    let mut b = nat_batch();
    b.list("PREROUTING").list("OUTPUT");
    if shared.mark_chains {
        b.list("POSTROUTING").list(SETMARK_CHAIN).list(MASQ_CHAIN);
    }
    b
}

/// Adds to `b` what the shared part lacks according to `dump`: chains, their rules, the jumps.
/// With `with_top` false the dump does not list CNI-HOSTPORT-DNAT (the fast path, where the
/// successful write proved it exists).
pub fn ensure_shared(b: &mut RestoreBatch, dump: &TableDump, shared: &Shared, with_top: bool) {
    if shared.mark_chains {
        ensure_chain(b, dump, SETMARK_CHAIN, &[setmark_rule(shared.mark_bit)]);
        ensure_chain(b, dump, MASQ_CHAIN, &[masq_rule(shared.mark_bit)]);
        let jump = masq_entry_rule();
        if !dump_contains(dump, "POSTROUTING", &jump) {
            b.insert("POSTROUTING", 1, &jump);
        }
    }
    if with_top {
        ensure_chain(b, dump, TOP_DNAT_CHAIN, &[]);
    }
    let jump = top_entry_rule();
    for entry in ["PREROUTING", "OUTPUT"] {
        if !dump_contains(dump, entry, &jump) {
            b.append(entry, &jump);
        }
    }
}

fn ensure_chain(b: &mut RestoreBatch, dump: &TableDump, chain: &str, rules: &[RuleArgs]) {
    if !dump.has_chain(chain) {
        b.new_chain(chain);
    }
    for r in rules {
        if !dump_contains(dump, chain, r) {
            b.append(chain, r);
        }
    }
}

/// Adds to `b` what makes the container's chain hold exactly `rules` and CNI-HOSTPORT-DNAT
/// exactly `entries` towards it (stale entries from an earlier ADD are removed; Go keeps them).
pub fn reconcile_container(
    b: &mut RestoreBatch,
    dump: &TableDump,
    chain: &str,
    rules: &[RuleArgs],
    entries: &[RuleArgs],
) {
    if dump.has_chain(chain) {
        let existing: Vec<&SavedRule> = dump.rules_in(chain).collect();
        let same = existing.len() == rules.len()
            && existing
                .iter()
                .zip(rules)
                .all(|(have, want)| same_rule(&have.args, want));
        if !same {
            b.flush_chain(chain);
            for r in rules {
                b.append(chain, r);
            }
        }
    } else {
        b.new_chain(chain);
        for r in rules {
            b.append(chain, r);
        }
    }
    let mut matched = vec![false; entries.len()];
    for have in dump
        .rules_in(TOP_DNAT_CHAIN)
        .filter(|r| r.target() == Some(chain))
    {
        let hit = entries.iter().enumerate().position(|(i, e)| {
            !matched.get(i).copied().unwrap_or(true) && same_rule(&have.args, e)
        });
        match hit.and_then(|i| matched.get_mut(i)) {
            Some(slot) => *slot = true,
            None => {
                b.delete(TOP_DNAT_CHAIN, &have.args);
            }
        }
    }
    for (e, done) in entries.iter().zip(&matched) {
        if !done {
            b.append(TOP_DNAT_CHAIN, e);
        }
    }
}

/// Removes every rule that jumps to `chain` (anywhere), then the chain.
pub fn remove_chain_batch(dump: &TableDump, chain: &str) -> RestoreBatch {
    let mut b = nat_batch();
    for r in dump.rules.iter().filter(|r| r.chain != chain) {
        if r.target() == Some(chain) {
            b.delete(&r.chain, &r.args);
        }
    }
    if dump.has_chain(chain) {
        b.flush_chain(chain).delete_chain(chain);
    }
    b
}

/// UDP host ports of the DNAT rules among `rules` (conntrack flush on DEL).
pub fn udp_dnat_ports<'a>(rules: impl Iterator<Item = &'a SavedRule>) -> Vec<u16> {
    let mut out = Vec::new();
    for r in rules {
        if r.target() != Some("DNAT") {
            continue;
        }
        let proto = r.value(&["-p", "--protocol"]);
        let port = r.value(&["--dport", "--destination-port"]);
        if let (Some("udp"), Some(p)) = (proto, port.and_then(|p| p.parse::<u16>().ok())) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running it (crates/firewall's `Iptables` runs the tools)

/// Go's `maybeGetIptables`: the family counts as usable if `nat OUTPUT` can be listed.
pub fn usable(ipt: &Iptables) -> bool {
    ipt.can_list(NAT, "OUTPUT")
}

/// ADD for one family.
pub fn add(ipt: &Iptables, spec: &DnatSpec, shared: &Shared) -> Result<(), FwError> {
    let chain = spec.chain();
    let rules = spec.rules();
    let entries = spec.entry_rules();
    let read = shared_read_batch(shared);
    let write = fresh_add_batch(&chain, &rules, &entries);
    let (written, listed) = std::thread::scope(|s| {
        let reader = s.spawn(|| ipt.read(&read));
        let written = ipt.restore(&write);
        let listed = reader.join().ok().and_then(|r| r.ok());
        (written, listed)
    });
    // Someone held the xtables lock for the whole wait: the slow path would only wait as long
    // again before failing the same way.
    match written {
        Err(e) if e.is_lock_timeout() => return Err(e),
        Err(_) => {}
        Ok(_) => {
            if let Some((dump, _)) = listed {
                let mut repair = nat_batch();
                ensure_shared(&mut repair, &dump, shared, false);
                // Something shared is missing: add it under the lock, from a fresh listing
                // (another ADD may be adding it right now).
                if repair.is_empty() {
                    return Ok(());
                }
            }
        }
    }
    slow_add(ipt, shared, &chain, &rules, &entries)
}

/// ADD from a full listing: whatever is missing, in one transaction; retried if the table
/// changed under us. The listing and the write happen under weft's shared netfilter lock, so
/// parallel ADDs add each shared rule once (see `weft_firewall::SharedLock`). A lock that
/// cannot be had in the xtables wait time is logged and the ADD goes on without it: a
/// duplicated shared rule is harmless, a failed pod is not.
fn slow_add(
    ipt: &Iptables,
    shared: &Shared,
    chain: &str,
    rules: &[RuleArgs],
    entries: &[RuleArgs],
) -> Result<(), FwError> {
    let _lock = match SharedLock::acquire(Path::new(SHARED_LOCK_PATH), ipt.lock_wait()) {
        Ok(lock) => Some(lock),
        Err(e) => {
            eprintln!("portmap: going on without the lock {SHARED_LOCK_PATH}: {e}");
            None
        }
    };
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let dump = ipt.list_table(NAT)?;
        let mut b = nat_batch();
        ensure_shared(&mut b, &dump, shared, true);
        reconcile_container(&mut b, &dump, chain, rules, entries);
        match ipt.restore(&b) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| FwError::Parse {
        binary: ipt.family().command().to_string(),
        msg: "no attempt made".into(),
    }))
}

/// What DEL found in one family.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// UDP host ports the removed chain mapped (for the conntrack flush).
    pub udp_ports: Vec<u16>,
}

/// Why DEL could not look at a family.
#[derive(Debug)]
pub enum DelError {
    /// iptables for this family cannot list `nat OUTPUT` (no binary, no kernel support).
    Unusable(FwError),
    Failed(FwError),
}

/// DEL for one family: removes the container's chain and every jump to it, whatever the
/// format of the entry rules (Go's older versions, other conditions). `known` are the entry
/// rules this conf would make (and `known_udp` its UDP host ports); when given, one
/// transaction removes them, the chain's rules and the chain, and nothing is listed. If that
/// fails (different rules, chain gone), the chain and CNI-HOSTPORT-DNAT are listed and the
/// jumps removed as found. The UDP ports returned are those of what was actually removed.
pub fn del(
    ipt: &Iptables,
    chain: &str,
    known: &[RuleArgs],
    known_udp: &[u16],
) -> Result<Removed, DelError> {
    if !known.is_empty() {
        let mut b = nat_batch();
        for e in known {
            b.delete(TOP_DNAT_CHAIN, e);
        }
        b.flush_chain(chain).delete_chain(chain);
        if ipt.restore(&b).is_ok() {
            return Ok(Removed {
                udp_ports: known_udp.to_vec(),
            });
        }
    }
    let mut last = None;
    for _ in 0..2 {
        let mut read = nat_batch();
        read.list("OUTPUT").list(chain).list(TOP_DNAT_CHAIN);
        let (dump, _) = ipt.read(&read).map_err(DelError::Unusable)?;
        if !dump.builtin_chains.iter().any(|c| c == "OUTPUT") {
            // Cannot even list nat OUTPUT: this family is not usable here.
            return Err(DelError::Unusable(FwError::Parse {
                binary: ipt.family().command().to_string(),
                msg: "cannot list the nat table".into(),
            }));
        }
        if !dump.has_chain(chain) {
            return Ok(Removed::default());
        }
        let removed = Removed {
            udp_ports: udp_dnat_ports(dump.rules_in(chain)),
        };
        let b = remove_chain_batch(&dump, chain);
        match ipt.restore(&b) {
            Ok(_) => return Ok(removed),
            Err(e) => last = Some(e),
        }
    }
    // Jumps from somewhere else than CNI-HOSTPORT-DNAT keep the chain busy: look everywhere.
    let dump = ipt.list_table(NAT).map_err(DelError::Failed)?;
    if !dump.has_chain(chain) {
        return Ok(Removed::default());
    }
    let removed = Removed {
        udp_ports: udp_dnat_ports(dump.rules_in(chain)),
    };
    match ipt.restore(&remove_chain_batch(&dump, chain)) {
        Ok(_) => Ok(removed),
        Err(e) => Err(DelError::Failed(last.unwrap_or(e))),
    }
}

/// CHECK for one family: the chain, each of its rules, each entry rule, and the jumps into
/// CNI-HOSTPORT-DNAT exist.
pub fn check(ipt: &Iptables, spec: &DnatSpec) -> Result<(), String> {
    let chain = spec.chain();
    let mut read = nat_batch();
    read.list("OUTPUT")
        .list(&chain)
        .list(TOP_DNAT_CHAIN)
        .list("PREROUTING");
    let (dump, _) = ipt
        .read(&read)
        .map_err(|e| format!("{} is not usable: {e}", ipt.family().command()))?;
    if !dump.builtin_chains.iter().any(|c| c == "OUTPUT") {
        return Err(format!(
            "{} is not usable: cannot list the nat table",
            ipt.family().command()
        ));
    }
    if !dump.has_chain(&chain) {
        return Err(format!("chain {chain} not found in iptables table nat"));
    }
    for r in spec.rules() {
        if !dump_contains(&dump, &chain, &r) {
            return Err(format!(
                "rule {} in chain {chain} not found in table nat",
                r.join(" ")
            ));
        }
    }
    for e in spec.entry_rules() {
        if !dump_contains(&dump, TOP_DNAT_CHAIN, &e) {
            return Err(format!(
                "rule {} in chain {TOP_DNAT_CHAIN} not found in table nat",
                e.join(" ")
            ));
        }
    }
    let jump = top_entry_rule();
    for entry in ["PREROUTING", "OUTPUT"] {
        if !dump_contains(&dump, entry, &jump) {
            return Err(format!(
                "rule {} in chain {entry} not found in table nat",
                jump.join(" ")
            ));
        }
    }
    Ok(())
}

/// GC for one family: removes the chains (and jumps) of network `net` whose container is not
/// in `valid`. A chain's owner is read from its entry rules' comment and confirmed by the chain
/// name, so chains of other networks and of other plugins are never touched.
pub fn gc(ipt: &Iptables, net: &str, valid: &BTreeSet<&str>) -> Result<usize, FwError> {
    let dump = ipt.list_table(NAT)?;
    let stale = stale_chains(&dump, net, valid);
    let mut b = nat_batch();
    for chain in &stale {
        b.extend(remove_chain_batch(&dump, chain));
    }
    ipt.restore(&b)?;
    Ok(stale.len())
}

/// Chains of `net` whose container is not in `valid`.
pub fn stale_chains(dump: &TableDump, net: &str, valid: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in dump.rules_in(TOP_DNAT_CHAIN) {
        let (Some(target), Some(comment)) = (r.target(), r.comment()) else {
            continue;
        };
        let Some(cid) = cid_from_dnat_comment(comment, net) else {
            continue;
        };
        if dnat_chain_name(net, &cid) == target && !valid.contains(cid.as_str()) {
            out.insert(target.to_string());
        }
    }
    out
}

/// The UDP host ports of a conf's mappings (deduplicated, in order), for the conntrack flush.
pub fn udp_ports(mappings: &[PortMapping]) -> Vec<u16> {
    let mut out = Vec::new();
    for m in mappings.iter().filter(|m| m.protocol == Protocol::Udp) {
        if !out.contains(&m.host_port) {
            out.push(m.host_port);
        }
    }
    out
}

#[cfg(test)]
mod tests;
