//! What the firewall code reads back from the kernel tools: `iptables -t nat -S` output
//! (`TableDump::parse`, `split_rule_line`) and `nft -j list` JSON (portmap's
//! `Listing::parse`, weft_firewall's `parse_json_rules`), then what DEL, CHECK and GC compute
//! from them (UDP ports to flush, stale chains, rule ownership, rule signatures). Rule
//! comments there are written by whoever else uses the table, so they are outside input.
//!
//! Invariant: every parsed rule, quoted for iptables-restore, splits back into the same
//! words (what weft deletes is exactly what it listed).

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use weft_firewall::iptables::{quote_restore_word, same_rule, split_rule_line, TableDump};
use weft_firewall::nft::parse_json_rules;
use weft_portmap::iptables::{cid_from_dnat_comment, stale_chains, udp_dnat_ports};
use weft_portmap::nft::{self, Listing};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(dump) = TableDump::parse(&text) {
        for r in &dump.rules {
            let line: Vec<String> = r.args.iter().map(|w| quote_restore_word(w)).collect();
            let line = line.join(" ");
            assert_eq!(split_rule_line(&line).as_ref(), Ok(&r.args), "{line}");
            assert!(same_rule(&r.args, &r.args));
            let _ = (
                r.target(),
                r.comment().map(|c| cid_from_dnat_comment(c, "mynet")),
            );
        }
        let _ = udp_dnat_ports(dump.rules.iter());
        let valid = BTreeSet::from(["c1"]);
        let _ = stale_chains(&dump, "mynet", &valid);
        if let (Some(a), Some(b)) = (dump.rules.first(), dump.rules.last()) {
            let _ = (
                same_rule(&a.args, &b.args),
                dump.contains(&b.chain, &a.args),
            );
        }
    }
    if let Ok(listing) = Listing::parse(&text) {
        for r in &listing.rules {
            let _ = nft::sig(&r.expr);
        }
        let _ = listing.owned("mynet", "c1").count();
        let _ = nft::udp_ports(listing.rules.iter());
    }
    let _ = parse_json_rules(&text);
});
