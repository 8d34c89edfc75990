//! The bridge plugin's `ipMasq`: masquerade traffic from the container's
//! addresses to anything outside its subnet, byte-compatible with Go's
//! `pkg/ip/ipmasq_{iptables,nftables}_linux.go`.
//!
//! iptables (nat table), per container chain `CNI-<hash(net+cid)>`:
//! ```text
//! -A POSTROUTING -s <ip>/32 -m comment --comment "name: \"<net>\" id: \"<cid>\"" -j CNI-…
//! -A CNI-… -d <subnet> -m comment --comment "…" -j ACCEPT
//! -A CNI-… ! -d 224.0.0.0/4 -m comment --comment "…" -j MASQUERADE   (ff00::/8 for v6)
//! ```
//! nftables: table `inet cni_plugins_masquerade`, base chain `postrouting`
//! (rewritten on every setup), one rule per address in `masq_checks`
//! carrying a comment that starts with hash16(net)-hash16(ifname:cid).

use std::collections::HashSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;

use crate::error::FwError;
use crate::exec::Tools;
use crate::iptables::{rule, Family, Iptables, RestoreBatch, RuleArgs, TableDump};
use crate::names::{chain_name, format_comment, hash_with_prefix, CHAIN_PREFIX, MAX_CHAIN_LEN};
use crate::nft::{nft_literal, truncate_comment, Nft, NftRule, NftScript};
use crate::Backend;

/// nft table holding the masquerade rules (family inet).
pub const NFT_TABLE: &str = "cni_plugins_masquerade";
/// nft chain holding one rule per masqueraded address.
pub const NFT_CHAIN: &str = "masq_checks";
/// nft base chain hooked into postrouting.
pub const NFT_POSTROUTING: &str = "postrouting";
const NFT_FAMILY: &str = "inet";
const NFT_TABLE_COMMENT: &str =
    "Masquerading for plugins from github.com/containernetworking/plugins";
const NFT_CHAIN_COMMENT: &str =
    "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet";
/// knftables' `SNATPriority` ("srcnat") as a number, as it writes it.
const SRCNAT_PRIORITY: i32 = 100;

const NAT: &str = "nat";
const POSTROUTING: &str = "POSTROUTING";

// ---------------------------------------------------------------------------
// Names and rule text

/// iptables chain for one container on one network (ifname is ignored, as
/// in Go).
pub fn iptables_chain(net: &str, cid: &str) -> String {
    chain_name("", net, cid)
}

/// Go `hashForNetwork`: 16 hex characters of sha512(net).
pub fn hash_for_network(net: &str) -> String {
    hash_with_prefix(16, "", net)
}

/// Go `hashForInstance`: `hash16(net)-hash16(ifname:cid)`.
pub fn hash_for_instance(net: &str, ifname: &str, cid: &str) -> String {
    format!(
        "{}-{}",
        hash_for_network(net),
        hash_with_prefix(16, "", &format!("{ifname}:{cid}"))
    )
}

/// Go `commentForInstance`: the instance hash, then a readable description
/// with `"` removed, cut to 128 bytes.
///
/// Control characters are removed too, so the comment is exactly what nft
/// stores from [`crate::nft::nft_quote`]. Go removes only `"` and then writes the
/// comment with `%q`, so for an ifname holding `\` (which CNI allows) nft
/// stores a different text than Go computes and Go's GC deletes the rule of
/// a live container. The hash prefix, which DEL matches on, is computed on
/// the raw names, as in Go.
pub fn comment_for_instance(net: &str, ifname: &str, cid: &str) -> String {
    let c = format!(
        "{}, net: {}, if: {}, id: {}",
        hash_for_instance(net, ifname, cid),
        nft_literal(net),
        nft_literal(ifname),
        nft_literal(cid)
    );
    truncate_comment(c)
}

fn multicast_net(family: Family) -> &'static str {
    match family {
        Family::V4 => "224.0.0.0/4",
        Family::V6 => "ff00::/8",
    }
}

/// `-d <ip/prefix> -j ACCEPT -m comment --comment C` (Go prints the
/// address with its host bits; iptables stores the network).
pub fn accept_rule(ip: &IpNetwork, comment: &str) -> RuleArgs {
    let dst = ip.to_string();
    rule(&[
        "-d",
        &dst,
        "-j",
        "ACCEPT",
        "-m",
        "comment",
        "--comment",
        comment,
    ])
}

/// `! -d 224.0.0.0/4 -j MASQUERADE -m comment --comment C` (ff00::/8 for v6).
pub fn masquerade_rule(family: Family, comment: &str) -> RuleArgs {
    rule(&[
        "!",
        "-d",
        multicast_net(family),
        "-j",
        "MASQUERADE",
        "-m",
        "comment",
        "--comment",
        comment,
    ])
}

/// `-s <ip> -j CHAIN -m comment --comment C`, for POSTROUTING.
pub fn jump_rule(ip: &IpNetwork, chain: &str, comment: &str) -> RuleArgs {
    let src = ip.ip().to_string();
    rule(&[
        "-s",
        &src,
        "-j",
        chain,
        "-m",
        "comment",
        "--comment",
        comment,
    ])
}

/// The restore batch that brings `dump` to what Go's `SetupIPMasq` would
/// leave after handling `ips` in order with AppendUnique: the chain is
/// created if missing and only the rules not yet present are appended.
pub fn iptables_setup_batch(
    dump: &TableDump,
    family: Family,
    ips: &[IpNetwork],
    chain: &str,
    comment: &str,
) -> RestoreBatch {
    let mut view = dump.clone();
    let mut batch = RestoreBatch::new(NAT);
    let ips: Vec<&IpNetwork> = ips
        .iter()
        .filter(|ip| Family::of_net(ip) == family)
        .collect();
    if ips.is_empty() {
        return batch;
    }
    if !view.has_chain(chain) {
        batch.declare_chain(chain);
        view.push_chain(chain);
    }
    for ip in ips {
        let wanted = [
            (chain, accept_rule(ip, comment)),
            (chain, masquerade_rule(family, comment)),
            (POSTROUTING, jump_rule(ip, chain, comment)),
        ];
        for (c, args) in wanted {
            if !view.contains(c, &args) {
                batch.append(c, &args);
                view.push(c, &args);
            }
        }
    }
    batch
}

/// Adds to `batch` the removal of `chain`: every rule jumping to it (found
/// by target, so no address is needed), then the chain itself.
pub fn remove_chain_into(batch: &mut RestoreBatch, dump: &TableDump, chain: &str) {
    for r in dump.rules.iter() {
        if r.chain != chain && r.target() == Some(chain) {
            batch.delete(&r.chain, &r.args);
        }
    }
    if dump.user_chains.iter().any(|c| c == chain) {
        batch.flush_chain(chain).delete_chain(chain);
    }
}

/// The cid an ipMasq chain of `net` belongs to, if `chain` is one: one of
/// its rules carries Go's comment for (`net`, cid) and the chain name is
/// the hash of exactly that pair.
pub fn ipmasq_chain_owner(dump: &TableDump, chain: &str, net: &str) -> Option<String> {
    if !chain.starts_with(CHAIN_PREFIX) || chain.len() != MAX_CHAIN_LEN {
        return None;
    }
    dump.rules_in(chain)
        .filter_map(|r| r.comment())
        .filter_map(|c| cid_from_comment(c, net))
        .find(|cid| iptables_chain(net, cid) == chain)
}

/// Inverse of [`format_comment`] for a known network name.
fn cid_from_comment(comment: &str, net: &str) -> Option<String> {
    let head = format!("name: {} id: \"", crate::names::go_quote(net));
    let rest = comment.strip_prefix(&head)?.strip_suffix('"')?;
    // Accept the cid only if quoting it again gives back the same comment.
    (format_comment(net, rest) == comment).then(|| rest.to_string())
}

/// The nft transaction Go's `setupIPMasqNFTablesWithInterface` runs:
/// ensure table and chains, rewrite `postrouting`, drop this instance's
/// stale rules (by handle), add one rule per address.
pub fn nft_setup_script(
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
    stale_handles: &[u64],
) -> NftScript {
    let mut s = NftScript::new(NFT_FAMILY, NFT_TABLE);
    s.add_table(Some(NFT_TABLE_COMMENT))
        .add_chain(NFT_CHAIN, Some(NFT_CHAIN_COMMENT))
        .add_base_chain(NFT_POSTROUTING, "nat", "postrouting", SRCNAT_PRIORITY)
        .flush_chain(NFT_POSTROUTING)
        // Two spaces before "return": Go's literal, kept byte for byte.
        .add_rule(NFT_POSTROUTING, "ip daddr == 224.0.0.0/4  return", None)
        .add_rule(NFT_POSTROUTING, "ip6 daddr == ff00::/8  return", None)
        .add_rule(NFT_POSTROUTING, &format!("goto {NFT_CHAIN}"), None);
    for h in stale_handles {
        s.delete_rule(NFT_CHAIN, *h);
    }
    let comment = comment_for_instance(net, ifname, cid);
    for ip in ips {
        let proto = match Family::of_net(ip) {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        };
        // e.g. 192.168.1.4/24 -> 192.168.1.0/24
        let dst = format!("{}/{}", ip.network(), ip.prefix());
        let r = format!(
            "{proto} saddr == {} {proto} daddr != {dst} masquerade",
            ip.ip()
        );
        s.add_rule(NFT_CHAIN, &r, Some(&comment));
    }
    s
}

fn rules_with_prefix<'a>(
    rules: &'a [NftRule],
    prefix: &'a str,
) -> impl Iterator<Item = &'a NftRule> {
    rules
        .iter()
        .filter(move |r| r.comment.as_deref().is_some_and(|c| c.starts_with(prefix)))
}

// ---------------------------------------------------------------------------
// Setup

/// Installs the masquerade rules for `ips` with `backend`.
pub fn setup(
    tools: &Tools,
    backend: Backend,
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<(), FwError> {
    match backend {
        Backend::Iptables => setup_iptables(tools, ips, net, cid),
        Backend::Nftables => setup_nftables(tools, ips, net, ifname, cid),
    }
}

/// One restore per family. If a family fails, the families already set up in this call are
/// removed again, so a failed setup leaves nothing and the caller does not need to tear down
/// (with the xtables lock held by someone else, every iptables call waits its full
/// `lock_wait_secs`; a rollback of all families after the first timeout would multiply that).
fn setup_iptables(tools: &Tools, ips: &[IpNetwork], net: &str, cid: &str) -> Result<(), FwError> {
    let chain = iptables_chain(net, cid);
    let comment = format_comment(net, cid);
    let mut done: Vec<Iptables> = Vec::new();
    for family in Family::ALL {
        if !ips.iter().any(|ip| Family::of_net(ip) == family) {
            continue;
        }
        let ipt = Iptables::new(tools, family);
        let applied = ipt.list_table(NAT).and_then(|dump| {
            ipt.restore(&iptables_setup_batch(&dump, family, ips, &chain, &comment))
        });
        if let Err(e) = applied {
            for ipt in &done {
                // Best effort: DEL removes whatever this leaves.
                let _ = apply_with_retry(ipt, |dump| {
                    let mut batch = RestoreBatch::new(NAT);
                    remove_chain_into(&mut batch, dump, &chain);
                    batch
                });
            }
            return Err(e);
        }
        done.push(ipt);
    }
    Ok(())
}

fn setup_nftables(
    tools: &Tools,
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<(), FwError> {
    let nft = Nft::new(tools);
    let existing = nft
        .list_chain(NFT_FAMILY, NFT_TABLE, NFT_CHAIN)?
        .unwrap_or_default();
    let prefix = hash_for_instance(net, ifname, cid);
    let stale: Vec<u64> = rules_with_prefix(&existing, &prefix)
        .map(|r| r.handle)
        .collect();
    let script = nft_setup_script(ips, net, ifname, cid, &stale);
    match nft.apply(&script) {
        Ok(()) => Ok(()),
        // Old kernels reject comments on tables and chains; knftables then
        // drops them, so do we.
        Err(first) => nft
            .apply(&script.without_object_comments())
            .map_err(|_| first),
    }
}

// ---------------------------------------------------------------------------
// Teardown

/// Removes what [`setup`] made, with both backends, best effort. The
/// addresses are not needed: the iptables chain and its POSTROUTING jumps
/// are found by name, the nft rules by comment.
pub fn teardown(
    tools: &Tools,
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<(), FwError> {
    let mut errs = Vec::new();
    let chain = iptables_chain(net, cid);
    for family in Family::ALL {
        let given = ips.iter().any(|ip| Family::of_net(ip) == family);
        let ipt = Iptables::new(tools, family);
        if let Err(e) = apply_with_retry(&ipt, |dump| {
            let mut batch = RestoreBatch::new(NAT);
            remove_chain_into(&mut batch, dump, &chain);
            batch
        }) {
            if error_counts(&ipt, &e, given) {
                errs.push(e.into());
            }
        }
    }

    if let Err(e) = teardown_nftables(tools, net, ifname, cid) {
        if Nft::new(tools).supported() {
            errs.push(e);
        }
    }
    FwError::from_list(errs)
}

/// Whether an iptables failure is reported. Like Go, nothing is reported
/// when iptables is unusable on this host (an nft-only host must still be
/// able to DEL). A family whose table cannot even be listed only matters if
/// we were given an address of that family (IPv4 always matters), so a
/// host without IPv6 NAT does not fail every DEL.
fn error_counts(ipt: &Iptables, e: &ApplyError, given: bool) -> bool {
    match e {
        ApplyError::List(_) => (given || ipt.family() == Family::V4) && ipt.supported(),
        ApplyError::Apply(_) => ipt.supported(),
    }
}

/// Where [`apply_with_retry`] failed.
#[derive(Debug)]
enum ApplyError {
    List(FwError),
    Apply(FwError),
}

impl From<ApplyError> for FwError {
    fn from(e: ApplyError) -> FwError {
        match e {
            ApplyError::List(e) | ApplyError::Apply(e) => e,
        }
    }
}

/// Lists the nat table, plans a batch from it and applies it. If the
/// batch fails (someone changed the table in between, so a `-D` no longer
/// matches), lists and tries once more.
fn apply_with_retry(
    ipt: &Iptables,
    plan: impl Fn(&TableDump) -> RestoreBatch,
) -> Result<(), ApplyError> {
    let dump = ipt.list_table(NAT).map_err(ApplyError::List)?;
    let batch = plan(&dump);
    match ipt.restore(&batch) {
        Ok(()) => Ok(()),
        Err(_) => {
            let dump = ipt.list_table(NAT).map_err(ApplyError::List)?;
            ipt.restore(&plan(&dump)).map_err(ApplyError::Apply)
        }
    }
}

fn teardown_nftables(tools: &Tools, net: &str, ifname: &str, cid: &str) -> Result<(), FwError> {
    let nft = Nft::new(tools);
    let Some(rules) = nft.list_chain(NFT_FAMILY, NFT_TABLE, NFT_CHAIN)? else {
        return Ok(());
    };
    let prefix = hash_for_instance(net, ifname, cid);
    let mut script = NftScript::new(NFT_FAMILY, NFT_TABLE);
    for r in rules_with_prefix(&rules, &prefix) {
        script.delete_rule(NFT_CHAIN, r.handle);
    }
    if script.is_empty() {
        return Ok(());
    }
    nft.apply(&script)
}

// ---------------------------------------------------------------------------
// GC

/// Removes the masquerade rules of `net` that belong to none of the
/// `valid` (container id, ifname) attachments, with both backends.
///
/// iptables: chains are per (net, cid), so a chain stays when its cid is
/// in `valid` with any ifname. Go's iptables backend has no GC at all; the
/// chain's owner is recognised by its rules' comment and name.
/// nftables: exactly Go's `gcIPMasqNFTables`.
pub fn gc(tools: &Tools, net: &str, valid: &[(String, String)]) -> Result<(), FwError> {
    let mut errs = Vec::new();
    let valid_cids: HashSet<&str> = valid.iter().map(|(cid, _)| cid.as_str()).collect();
    for family in Family::ALL {
        let ipt = Iptables::new(tools, family);
        if let Err(e) = apply_with_retry(&ipt, |dump| iptables_gc_batch(dump, net, &valid_cids)) {
            if error_counts(&ipt, &e, false) {
                errs.push(e.into());
            }
        }
    }
    if let Err(e) = gc_nftables(tools, net, valid) {
        if Nft::new(tools).supported() {
            errs.push(e);
        }
    }
    FwError::from_list(errs)
}

/// The batch removing every ipMasq chain of `net` whose cid is not valid.
pub fn iptables_gc_batch(dump: &TableDump, net: &str, valid_cids: &HashSet<&str>) -> RestoreBatch {
    let mut batch = RestoreBatch::new(NAT);
    for chain in &dump.user_chains {
        match ipmasq_chain_owner(dump, chain, net) {
            Some(cid) if !valid_cids.contains(cid.as_str()) => {
                remove_chain_into(&mut batch, dump, chain);
            }
            _ => {}
        }
    }
    batch
}

fn gc_nftables(tools: &Tools, net: &str, valid: &[(String, String)]) -> Result<(), FwError> {
    let nft = Nft::new(tools);
    let Some(rules) = nft.list_chain(NFT_FAMILY, NFT_TABLE, NFT_CHAIN)? else {
        return Ok(());
    };
    let keep: HashSet<String> = valid
        .iter()
        .map(|(cid, ifname)| comment_for_instance(net, ifname, cid))
        .collect();
    let prefix = hash_for_network(net);
    let mut script = NftScript::new(NFT_FAMILY, NFT_TABLE);
    for r in rules_with_prefix(&rules, &prefix) {
        if !r.comment.as_ref().is_some_and(|c| keep.contains(c)) {
            script.delete_rule(NFT_CHAIN, r.handle);
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    nft.apply(&script)
}

// ---------------------------------------------------------------------------
// Check

/// Whether every rule [`setup`] would make for `ips` exists.
pub fn check(
    tools: &Tools,
    backend: Backend,
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<bool, FwError> {
    match backend {
        Backend::Iptables => check_iptables(tools, ips, net, cid),
        Backend::Nftables => check_nftables(tools, ips, net, ifname, cid),
    }
}

fn check_iptables(tools: &Tools, ips: &[IpNetwork], net: &str, cid: &str) -> Result<bool, FwError> {
    let chain = iptables_chain(net, cid);
    let comment = format_comment(net, cid);
    for family in Family::ALL {
        let mine: Vec<&IpNetwork> = ips
            .iter()
            .filter(|ip| Family::of_net(ip) == family)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let dump = Iptables::new(tools, family).list_table(NAT)?;
        if !dump.has_chain(&chain) {
            return Ok(false);
        }
        for ip in mine {
            let ok = dump.contains(&chain, &accept_rule(ip, &comment))
                && dump.contains(&chain, &masquerade_rule(family, &comment))
                && dump.contains(POSTROUTING, &jump_rule(ip, &chain, &comment));
            if !ok {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn check_nftables(
    tools: &Tools,
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<bool, FwError> {
    let nft = Nft::new(tools);
    let Some(rules) = nft.list_chain(NFT_FAMILY, NFT_TABLE, NFT_CHAIN)? else {
        return Ok(ips.is_empty());
    };
    let comment = comment_for_instance(net, ifname, cid);
    let mine: Vec<&NftRule> = rules
        .iter()
        .filter(|r| r.comment.as_deref() == Some(comment.as_str()))
        .collect();
    Ok(ips
        .iter()
        .all(|ip| mine.iter().any(|r| matches_saddr(&r.expr, ip.ip()))))
}

/// Whether an nft JSON `expr` array matches `ip saddr == <ip>`.
fn matches_saddr(expr: &Value, ip: IpAddr) -> bool {
    let want = ip.to_string();
    expr.as_array().is_some_and(|items| {
        items.iter().any(|item| {
            let Some(m) = item.get("match") else {
                return false;
            };
            let field = m
                .get("left")
                .and_then(|l| l.get("payload"))
                .and_then(|p| p.get("field"))
                .and_then(Value::as_str);
            field == Some("saddr") && m.get("right").and_then(Value::as_str) == Some(want.as_str())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    // Golden comments from pkg/ip/ipmasq_nftables_linux_test.go.
    #[test]
    fn nft_comments_match_go() {
        assert_eq!(
            comment_for_instance("unit-test", "eth0", "one"),
            "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one"
        );
        assert_eq!(
            comment_for_instance("unit-test", "eth0", "two"),
            "6fd94d501e58f0aa-d750b2c8f0f25d5f, net: unit-test, if: eth0, id: two"
        );
        assert_eq!(
            comment_for_instance("unit-test", "eth0", "three"),
            "6fd94d501e58f0aa-a4d4adb82b669cfe, net: unit-test, if: eth0, id: three"
        );
        assert_eq!(
            comment_for_instance("alternate", "net1", "three"),
            "82783ef24bdc7036-acb19d111858e348, net: alternate, if: net1, id: three"
        );
        assert_eq!(
            comment_for_instance("unit-test", "eth0", "four"),
            "6fd94d501e58f0aa-e766de567ef6c543, net: unit-test, if: eth0, id: four"
        );
        assert_eq!(hash_for_network("unit-test"), "6fd94d501e58f0aa");
        // Quotes dropped, long ids cut to 128 bytes.
        let c = comment_for_instance("n\"x", "eth0", &"a".repeat(200));
        assert_eq!(c.len(), 128);
        assert!(c.contains("net: nx,"));
    }

    #[test]
    fn nft_comment_is_what_nft_stores() {
        // CNI allows `"` and `\` in an ifname. The comment must be the
        // literal text nft stores, or CHECK and GC would not recognise it.
        let c = comment_for_instance("n", r#"e"\;#{$0"#, "c");
        assert!(c.ends_with(r", net: n, if: e\;#{$0, id: c"), "{c}");
        assert_eq!(
            c.split(',').next(),
            Some(hash_for_instance("n", r#"e"\;#{$0"#, "c").as_str())
        );
        let s = nft_setup_script(&[net("10.0.0.2/24")], "n", r#"e"\;#{$0"#, "c", &[]);
        let last = s.render().lines().last().unwrap_or_default().to_string();
        assert!(
            last.ends_with(&format!("masquerade comment \"{c}\"")),
            "{last}"
        );
        assert_eq!(last.matches('"').count(), 2, "{last}");
    }

    #[test]
    fn nft_script_matches_knftables_transaction() {
        let s = nft_setup_script(&[net("192.168.1.1/24")], "unit-test", "eth0", "one", &[]);
        let expected = "\
add table inet cni_plugins_masquerade { comment \"Masquerading for plugins from github.com/containernetworking/plugins\" ; }
add chain inet cni_plugins_masquerade masq_checks { comment \"Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet\" ; }
add chain inet cni_plugins_masquerade postrouting { type nat hook postrouting priority 100 ; }
flush chain inet cni_plugins_masquerade postrouting
add rule inet cni_plugins_masquerade postrouting ip daddr == 224.0.0.0/4  return
add rule inet cni_plugins_masquerade postrouting ip6 daddr == ff00::/8  return
add rule inet cni_plugins_masquerade postrouting goto masq_checks
add rule inet cni_plugins_masquerade masq_checks ip saddr == 192.168.1.1 ip daddr != 192.168.1.0/24 masquerade comment \"6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one\"
";
        assert_eq!(s.render(), expected);

        let s = nft_setup_script(&[net("fd00::5/64")], "n", "eth0", "c", &[11, 12]);
        let text = s.render();
        assert!(text.contains("delete rule inet cni_plugins_masquerade masq_checks handle 11\n"));
        assert!(text.contains("delete rule inet cni_plugins_masquerade masq_checks handle 12\n"));
        assert!(text.contains(
            "masq_checks ip6 saddr == fd00::5 ip6 daddr != fd00::/64 masquerade comment"
        ));
    }

    #[test]
    fn iptables_argv_matches_go() {
        let c = format_comment("testnet", "ctr1234");
        let ip = net("10.77.0.2/24");
        assert_eq!(
            accept_rule(&ip, &c),
            rule(&[
                "-d",
                "10.77.0.2/24",
                "-j",
                "ACCEPT",
                "-m",
                "comment",
                "--comment",
                &c
            ])
        );
        assert_eq!(
            masquerade_rule(Family::V6, &c),
            rule(&[
                "!",
                "-d",
                "ff00::/8",
                "-j",
                "MASQUERADE",
                "-m",
                "comment",
                "--comment",
                &c
            ])
        );
        assert_eq!(
            jump_rule(&ip, "CNI-x", &c),
            rule(&[
                "-s",
                "10.77.0.2",
                "-j",
                "CNI-x",
                "-m",
                "comment",
                "--comment",
                &c
            ])
        );
    }

    #[test]
    fn setup_batch_on_empty_table() {
        let chain = iptables_chain("testnet", "ctr1234");
        assert_eq!(chain, "CNI-9161bb64bf5037c63c3c4f94");
        let c = format_comment("testnet", "ctr1234");
        let empty = TableDump::parse("-P POSTROUTING ACCEPT\n").unwrap();
        // Two v4 addresses and a v6 one: only the v4 ones, and the shared
        // MASQUERADE rule once (Go's AppendUnique order).
        let ips = [net("10.77.0.2/24"), net("fd77::2/64"), net("10.78.0.2/24")];
        let b = iptables_setup_batch(&empty, Family::V4, &ips, &chain, &c);
        let q = r#""name: \"testnet\" id: \"ctr1234\"""#;
        assert_eq!(
            b.lines(),
            &[
                format!(":{chain} - [0:0]"),
                format!("-A {chain} -d 10.77.0.2/24 -j ACCEPT -m comment --comment {q}"),
                format!("-A {chain} ! -d 224.0.0.0/4 -j MASQUERADE -m comment --comment {q}"),
                format!("-A POSTROUTING -s 10.77.0.2 -j {chain} -m comment --comment {q}"),
                format!("-A {chain} -d 10.78.0.2/24 -j ACCEPT -m comment --comment {q}"),
                format!("-A POSTROUTING -s 10.78.0.2 -j {chain} -m comment --comment {q}"),
            ]
        );
        let b6 = iptables_setup_batch(&empty, Family::V6, &ips, &chain, &c);
        assert_eq!(b6.lines().len(), 4);
        assert!(iptables_setup_batch(&empty, Family::V6, &ips[..1], &chain, &c).is_empty());
    }

    #[test]
    fn setup_batch_is_empty_when_rules_exist() {
        let chain = iptables_chain("testnet", "ctr1234");
        let saved = format!(
            r#"-P POSTROUTING ACCEPT
-N {chain}
-A POSTROUTING -s 10.77.0.2/32 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j {chain}
-A {chain} -d 10.77.0.0/24 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j ACCEPT
-A {chain} ! -d 224.0.0.0/4 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j MASQUERADE
"#
        );
        let dump = TableDump::parse(&saved).unwrap();
        let c = format_comment("testnet", "ctr1234");
        let b = iptables_setup_batch(&dump, Family::V4, &[net("10.77.0.2/24")], &chain, &c);
        assert!(b.is_empty(), "{:?}", b.lines());

        // Teardown: the jump (by target), then flush and delete.
        let mut t = RestoreBatch::new("nat");
        remove_chain_into(&mut t, &dump, &chain);
        assert_eq!(
            t.lines(),
            &[
                format!(
                    r#"-D POSTROUTING -s 10.77.0.2/32 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j {chain}"#
                ),
                format!("-F {chain}"),
                format!("-X {chain}"),
            ]
        );
        assert_eq!(
            ipmasq_chain_owner(&dump, &chain, "testnet").as_deref(),
            Some("ctr1234")
        );
        assert_eq!(ipmasq_chain_owner(&dump, &chain, "othernet"), None);

        let valid: HashSet<&str> = ["ctr1234"].into_iter().collect();
        assert!(iptables_gc_batch(&dump, "testnet", &valid).is_empty());
        assert_eq!(
            iptables_gc_batch(&dump, "testnet", &HashSet::new())
                .lines()
                .len(),
            3
        );
        assert!(iptables_gc_batch(&dump, "othernet", &HashSet::new()).is_empty());
    }

    #[test]
    fn gc_ignores_chains_whose_name_does_not_match_the_comment() {
        // A chain carrying our comment but another name (e.g. portmap's
        // CNI-DN-…) is not an ipMasq chain.
        let saved = r#"-N CNI-DN-0123456789abcdef01234
-A CNI-DN-0123456789abcdef01234 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j ACCEPT
"#;
        let dump = TableDump::parse(saved).unwrap();
        assert!(iptables_gc_batch(&dump, "testnet", &HashSet::new()).is_empty());
    }

    #[test]
    fn saddr_match_in_json() {
        let expr: Value = serde_json::from_str(
            r#"[{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"fd00::3"}},
                {"masquerade":null}]"#,
        )
        .unwrap();
        assert!(matches_saddr(&expr, "fd00::3".parse().unwrap()));
        assert!(!matches_saddr(&expr, "fd00::4".parse().unwrap()));
    }
}
