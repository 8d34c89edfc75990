//! Masquerade and forward rules (`pkg/trafficmngr/{iptables,nftables}`).
//!
//! iptables mode: `nat FLANNEL-POSTRTG` with flannel's seven rules (the
//! golden set of `e2e/rules.go`) and `filter FLANNEL-FWD`, written with one
//! `iptables-restore --noflush` per table; every `--iptables-resync` seconds,
//! if any rule or chain is missing, the whole set is rebuilt in order.
//! nftables mode (`EnableNFTables`): tables `ip flannel-ipv4` / `ip6
//! flannel-ipv6` with chains `postrtg` and `forward`, rebuilt in one
//! transaction (and, unlike Go, also checked every resync period).

use anyhow::{anyhow, Result};
use ipnetwork::IpNetwork;
use tracing::{debug, info, warn};
use weft_firewall::iptables::{rule, Iptables, RestoreBatch, RuleArgs, TableDump};
use weft_firewall::nft::{Nft, NftScript};
use weft_firewall::{Family, Tools};

pub const MASQ_CHAIN: &str = "FLANNEL-POSTRTG";
pub const FWD_CHAIN: &str = "FLANNEL-FWD";
const MASQ_COMMENT: &str = "flanneld masq";
const FWD_COMMENT: &str = "flanneld forward";
/// kube-proxy's masquerade mark (`trafficmngr.KubeProxyMark`).
const KUBE_PROXY_MARK: &str = "0x4000/0x4000";

/// One address family's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyNets {
    /// The cluster network (`Network` / `IPv6Network`).
    pub cluster: IpNetwork,
    /// Our lease.
    pub pod: IpNetwork,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub nftables: bool,
    pub masq: bool,
    pub forward: bool,
    /// `--ip-masq-fully-random-disable` not set.
    pub random_fully: bool,
    pub v4: Option<FamilyNets>,
    pub v6: Option<FamilyNets>,
}

impl Spec {
    fn families(&self) -> impl Iterator<Item = (Family, FamilyNets)> + '_ {
        self.v4
            .map(|n| (Family::V4, n))
            .into_iter()
            .chain(self.v6.map(|n| (Family::V6, n)))
    }
}

/// A rule and the chain it goes in.
pub type ChainRule = (&'static str, RuleArgs);

/// flannel's masquerade rules, in order (`masqRules` / `masqIP6Rules`).
pub fn masq_rules(n: FamilyNets, random_fully: bool) -> Vec<ChainRule> {
    let c = n.cluster.to_string();
    let p = n.pod.to_string();
    let multicast = if n.cluster.is_ipv4() {
        "224.0.0.0/4"
    } else {
        "ff00::/8"
    };
    let masq = |args: &[&str]| -> RuleArgs {
        let mut r = rule(args);
        r.extend(rule(&[
            "-m",
            "comment",
            "--comment",
            MASQ_COMMENT,
            "-j",
            "MASQUERADE",
        ]));
        if random_fully {
            r.push("--random-fully".into());
        }
        r
    };
    let ret = |args: &[&str]| -> RuleArgs {
        let mut r = rule(args);
        r.extend(rule(&[
            "-m",
            "comment",
            "--comment",
            MASQ_COMMENT,
            "-j",
            "RETURN",
        ]));
        r
    };
    vec![
        (
            "POSTROUTING",
            rule(&["-m", "comment", "--comment", MASQ_COMMENT, "-j", MASQ_CHAIN]),
        ),
        (MASQ_CHAIN, ret(&["-m", "mark", "--mark", KUBE_PROXY_MARK])),
        (MASQ_CHAIN, ret(&["-s", &p, "-d", &c])),
        (MASQ_CHAIN, ret(&["-s", &c, "-d", &p])),
        (MASQ_CHAIN, ret(&["!", "-s", &c, "-d", &p])),
        (MASQ_CHAIN, masq(&["-s", &c, "!", "-d", multicast])),
        (MASQ_CHAIN, masq(&["!", "-s", &c, "-d", &c])),
    ]
}

/// `forwardRules`.
pub fn forward_rules(cluster: IpNetwork) -> Vec<ChainRule> {
    let c = cluster.to_string();
    vec![
        (
            "FORWARD",
            rule(&["-m", "comment", "--comment", FWD_COMMENT, "-j", FWD_CHAIN]),
        ),
        (
            FWD_CHAIN,
            rule(&[
                "-s",
                &c,
                "-m",
                "comment",
                "--comment",
                FWD_COMMENT,
                "-j",
                "ACCEPT",
            ]),
        ),
        (
            FWD_CHAIN,
            rule(&[
                "-d",
                &c,
                "-m",
                "comment",
                "--comment",
                FWD_COMMENT,
                "-j",
                "ACCEPT",
            ]),
        ),
    ]
}

fn all_present(dump: &TableDump, own_chain: &str, rules: &[ChainRule]) -> bool {
    dump.has_chain(own_chain) && rules.iter().all(|(ch, args)| dump.contains(ch, args))
}

/// flannel's `ipTablesBootstrap` in one restore: our chain is (re)created
/// empty, copies of the jump rule are deleted, and every rule is appended
/// in order.
fn bootstrap_batch(
    table: &str,
    dump: &TableDump,
    own_chain: &str,
    rules: &[ChainRule],
) -> RestoreBatch {
    let mut b = RestoreBatch::new(table);
    b.declare_chain(own_chain);
    for (ch, args) in rules.iter().filter(|(ch, _)| *ch != own_chain) {
        let copies = dump
            .rules_in(ch)
            .filter(|r| weft_firewall::iptables::same_rule(&r.args, args))
            .count();
        for _ in 0..copies {
            b.delete(ch, args);
        }
    }
    for (ch, args) in rules {
        b.append(ch, args);
    }
    b
}

/// Make sure every rule is there; rebuild the set if not. True if rebuilt.
fn ensure_table(ipt: &Iptables, table: &str, own_chain: &str, rules: &[ChainRule]) -> Result<bool> {
    let dump = ipt.list_table(table)?;
    if all_present(&dump, own_chain, rules) {
        return Ok(false);
    }
    ipt.restore(&bootstrap_batch(table, &dump, own_chain, rules))?;
    Ok(true)
}

/// iptables ≥ 1.6.2 knows `--random-fully` (go-iptables' HasRandomFully).
pub fn iptables_has_random_fully(tools: &Tools) -> bool {
    let Ok(out) = tools.iptables.run(&["--version".to_string()], None) else {
        return false;
    };
    let v = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix('v'))
        .unwrap_or("");
    let parts: Vec<u32> = v.split('.').filter_map(|p| p.parse().ok()).collect();
    matches!(parts.as_slice(), [a, b, c, ..] if (*a, *b, *c) >= (1, 6, 2))
}

fn nft_family(f: Family) -> (&'static str, &'static str) {
    match f {
        Family::V4 => ("ip", "flannel-ipv4"),
        Family::V6 => ("ip6", "flannel-ipv6"),
    }
}

/// The nft transaction of one family (tables are created for both families
/// like Go's `Init`; chains only for what is enabled).
pub fn nft_script(f: Family, n: Option<FamilyNets>, spec: &Spec) -> NftScript {
    let (fam, table) = nft_family(f);
    let mut s = NftScript::new(fam, table);
    s.add_table(Some(&format!("rules for {table}")));
    let Some(n) = n else { return s };
    let (c, p) = (n.cluster.to_string(), n.pod.to_string());
    let masquerade = if spec.random_fully {
        "masquerade fully-random"
    } else {
        "masquerade"
    };
    let multicast = if f == Family::V4 {
        "224.0.0.0/4"
    } else {
        "ff00::/8"
    };
    if spec.masq {
        let chain = "postrtg";
        s.add_named_base_chain(
            chain,
            "nat",
            "postrouting",
            "srcnat",
            Some("chain to manage traffic masquerading by flannel"),
        )
        .flush_chain(chain)
        .add_rule(chain, "meta mark 0x4000 return", None)
        .add_rule(
            chain,
            &format!("{fam} saddr {p} {fam} daddr {c} return"),
            None,
        )
        .add_rule(
            chain,
            &format!("{fam} saddr {c} {fam} daddr {p} return"),
            None,
        )
        .add_rule(
            chain,
            &format!("{fam} saddr != {p} {fam} daddr {c} return"),
            None,
        )
        .add_rule(
            chain,
            &format!("{fam} saddr {c} {fam} daddr != {multicast} {masquerade}"),
            None,
        )
        .add_rule(
            chain,
            &format!("{fam} saddr != {c} {fam} daddr {c} {masquerade}"),
            None,
        );
    }
    if spec.forward {
        let chain = "forward";
        s.add_named_base_chain(
            chain,
            "filter",
            "forward",
            "filter",
            Some("chain to accept flannel traffic"),
        )
        .flush_chain(chain)
        .add_rule(chain, &format!("{fam} saddr {c} accept"), None)
        .add_rule(chain, &format!("{fam} daddr {c} accept"), None);
    }
    s
}

/// On a node without iptables (the binaries, not the kernel: nftables-only
/// distributions), why iptables mode cannot work, when nft is there to
/// take over; None when iptables is usable or nft is missing too (then
/// iptables mode goes on and its errors name the missing binary).
pub fn iptables_missing(tools: &Tools, v6: bool) -> Option<String> {
    let mut needed = vec![&tools.iptables, &tools.iptables_restore];
    if v6 {
        needed.extend([&tools.ip6tables, &tools.ip6tables_restore]);
    }
    let missing: Vec<String> = needed
        .into_iter()
        .filter(|t| t.resolve().is_err())
        .map(|t| t.name.clone())
        .collect();
    if missing.is_empty() || tools.nft.resolve().is_err() {
        return None;
    }
    Some(format!(
        "no iptables on this node ({} not found)",
        missing.join(", ")
    ))
}

/// Set up (or check and repair) everything. Returns true if anything had
/// to be (re)written.
pub fn ensure(tools: &Tools, spec: &Spec) -> Result<bool> {
    let mut changed = false;
    if spec.nftables {
        let nft = Nft::new(tools);
        for f in [Family::V4, Family::V6] {
            let n = match f {
                Family::V4 => spec.v4,
                Family::V6 => spec.v6,
            };
            if nft_complete(&nft, f, n, spec) {
                continue;
            }
            nft.apply(&nft_script(f, n, spec))
                .map_err(|e| anyhow!("nftables: couldn't setup rules: {e}"))?;
            changed = true;
        }
        return Ok(changed);
    }
    for (f, n) in spec.families() {
        let ipt = Iptables::new(tools, f);
        if spec.masq && ensure_table(&ipt, "nat", MASQ_CHAIN, &masq_rules(n, spec.random_fully))? {
            changed = true;
        }
        if spec.forward && ensure_table(&ipt, "filter", FWD_CHAIN, &forward_rules(n.cluster))? {
            changed = true;
        }
    }
    Ok(changed)
}

fn nft_complete(nft: &Nft, f: Family, n: Option<FamilyNets>, spec: &Spec) -> bool {
    let (fam, table) = nft_family(f);
    let Ok(Some(rules)) = nft.list_table(fam, table) else {
        return false;
    };
    if n.is_none() {
        return true;
    }
    let count = |chain: &str| rules.iter().filter(|r| r.chain == chain).count();
    (!spec.masq || count("postrtg") == 6) && (!spec.forward || count("forward") == 2)
}

/// Remove the other mode's rules (main.go cleans up the unused traffic
/// manager at start). Best effort.
pub fn cleanup_other(tools: &Tools, spec: &Spec) {
    if spec.nftables {
        for f in [Family::V4, Family::V6] {
            let ipt = Iptables::new(tools, f);
            for (table, builtin, chain) in [
                ("nat", "POSTROUTING", MASQ_CHAIN),
                ("filter", "FORWARD", FWD_CHAIN),
            ] {
                let Ok(dump) = ipt.list_table(table) else {
                    continue;
                };
                if !dump.has_chain(chain) {
                    continue;
                }
                let mut b = RestoreBatch::new(table);
                for r in dump.rules_in(builtin) {
                    if r.target() == Some(chain) {
                        b.delete(builtin, &r.args);
                    }
                }
                b.flush_chain(chain);
                b.delete_chain(chain);
                match ipt.restore(&b) {
                    Ok(()) => info!("removed iptables chain {table} {chain} (nftables mode)"),
                    Err(e) => warn!("remove iptables chain {table} {chain}: {e}"),
                }
            }
        }
    } else {
        let nft = Nft::new(tools);
        for f in [Family::V4, Family::V6] {
            let (fam, table) = nft_family(f);
            if let Ok(Some(_)) = nft.list_table(fam, table) {
                match nft.apply(NftScript::new(fam, table).delete_table()) {
                    Ok(()) => info!("removed nft table {fam} {table} (iptables mode)"),
                    Err(e) => debug!("remove nft table {fam} {table}: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> FamilyNets {
        FamilyNets {
            cluster: "10.244.0.0/16".parse().unwrap(),
            pod: "10.244.1.0/24".parse().unwrap(),
        }
    }

    /// The `-S` form of a rule list, as e2e/rules.go expects it.
    fn s_lines(rules: &[ChainRule]) -> Vec<String> {
        rules
            .iter()
            .map(|(ch, args)| {
                let words: Vec<String> = args
                    .iter()
                    .map(|a| {
                        if a.contains(' ') {
                            format!("\"{a}\"")
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                format!("-A {ch} {}", words.join(" "))
            })
            .collect()
    }

    #[test]
    fn golden_masq_rules() {
        assert_eq!(
            s_lines(&masq_rules(nets(), true)),
            vec![
                r#"-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG"#,
                r#"-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN"#,
                r#"-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN"#,
                r#"-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN"#,
                r#"-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN"#,
                r#"-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully"#,
                r#"-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully"#,
            ]
        );
        let six = FamilyNets {
            cluster: "fc00::/48".parse().unwrap(),
            pod: "fc00:0:0:1::/64".parse().unwrap(),
        };
        let lines = s_lines(&masq_rules(six, false));
        assert!(lines[5].contains("! -d ff00::/8"));
        assert!(lines[5].ends_with("-j MASQUERADE"));
    }

    #[test]
    fn golden_forward_rules() {
        assert_eq!(
            s_lines(&forward_rules("10.244.0.0/16".parse().unwrap())),
            vec![
                r#"-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD"#,
                r#"-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT"#,
                r#"-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT"#,
            ]
        );
    }

    #[test]
    fn bootstrap_moves_jump_and_rebuilds() {
        let rules = masq_rules(nets(), true);
        let dump = TableDump::parse(
            "-P POSTROUTING ACCEPT\n-N FLANNEL-POSTRTG\n\
             -A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG\n\
             -A POSTROUTING -j MASQUERADE\n",
        )
        .unwrap();
        assert!(!all_present(&dump, MASQ_CHAIN, &rules));
        let b = bootstrap_batch("nat", &dump, MASQ_CHAIN, &rules);
        let lines = b.lines();
        assert_eq!(lines[0], ":FLANNEL-POSTRTG - [0:0]");
        assert!(lines[1].starts_with("-D POSTROUTING"));
        assert!(lines[2].starts_with("-A POSTROUTING"));
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn nftables_when_iptables_is_missing() {
        let mut t = Tools::from_env();
        t.nft.name = "/bin/sh".into();
        t.iptables.name = "/bin/sh".into();
        t.iptables_restore.name = "/bin/sh".into();
        t.ip6tables.name = "/nonexistent/ip6tables".into();
        t.ip6tables_restore.name = "/bin/sh".into();
        assert_eq!(iptables_missing(&t, false), None);
        assert_eq!(
            iptables_missing(&t, true).as_deref(),
            Some("no iptables on this node (/nonexistent/ip6tables not found)")
        );
        t.iptables.name = "/nonexistent/iptables".into();
        assert!(iptables_missing(&t, false)
            .unwrap()
            .contains("/nonexistent/iptables not found"));
        // Neither: stay with iptables (its errors name what is missing).
        t.nft.name = "/nonexistent/nft".into();
        assert_eq!(iptables_missing(&t, false), None);
    }

    #[test]
    fn nft_script_matches_go() {
        let spec = Spec {
            nftables: true,
            masq: true,
            forward: true,
            random_fully: true,
            v4: Some(nets()),
            v6: None,
        };
        let s = nft_script(Family::V4, Some(nets()), &spec).render();
        assert!(s.contains("add rule ip flannel-ipv4 postrtg ip saddr != 10.244.1.0/24 ip daddr 10.244.0.0/16 return\n"));
        assert!(
            s.contains("ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random\n")
        );
        assert!(s.contains("add rule ip flannel-ipv4 forward ip daddr 10.244.0.0/16 accept\n"));
        let s6 = nft_script(Family::V6, None, &spec).render();
        assert_eq!(
            s6,
            "add table ip6 flannel-ipv6 { comment \"rules for flannel-ipv6\" ; }\n"
        );
    }
}
