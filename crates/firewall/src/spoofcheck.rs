//! macspoofchk: nftables rules on the bridge that drop frames from the host veth whose source
//! MAC is not the container's. Same table, chains and comments as Go's pkg/link/spoofcheck.go,
//! so either implementation can tear down what the other set up:
//!
//! ```text
//! table bridge nat
//!   chain PREROUTING (filter, prerouting, -300, accept): iifname <veth> jump cni-br-iface-<ref>
//!   chain cni-br-iface-<ref>:     jump cni-br-iface-<ref>-mac
//!   chain cni-br-iface-<ref>-mac: ether saddr <mac> return; drop
//! ```
//! with every rule commented `macspoofchk-<ref>` and `<ref>` = `<containerID>-<ifname>`.
//!
//! We feed nft JSON (`nft -j -f -`), never nft syntax, so no container-supplied string is
//! ever parsed as a rule. nft runs through [`Nft`], like every other nft call: `WEFT_NFT`,
//! the sbin fallback and `LC_ALL=C` apply.

use serde_json::{json, Value};

use crate::error::FwError;
use crate::exec::Tools;
use crate::nft::Nft;

const TABLE: &str = "nat";
const BASE_CHAIN: &str = "PREROUTING";

fn ref_id(container_id: &str, ifname: &str) -> String {
    format!("{container_id}-{ifname}")
}

fn iface_chain(refid: &str) -> String {
    format!("cni-br-iface-{refid}")
}

fn comment(refid: &str) -> String {
    format!("macspoofchk-{refid}")
}

fn rule(chain: &str, expr: Value, refid: &str) -> Value {
    json!({"add": {"rule": {"family": "bridge", "table": TABLE, "chain": chain,
        "expr": expr, "comment": comment(refid)}}})
}

/// The nft JSON batch that installs the rules (one transaction: declare, flush, add).
pub fn setup_batch(container_id: &str, ifname: &str, host_veth: &str, mac: &str) -> Value {
    let refid = ref_id(container_id, ifname);
    let ifc = iface_chain(&refid);
    let macc = format!("{ifc}-mac");
    let chain =
        |name: &str| json!({"add": {"chain": {"family": "bridge", "table": TABLE, "name": name}}});
    let flush = |name: &str| json!({"flush": {"chain": {"family": "bridge", "table": TABLE, "name": name}}});
    json!({"nftables": [
        {"add": {"table": {"family": "bridge", "name": TABLE}}},
        {"add": {"chain": {"family": "bridge", "table": TABLE, "name": BASE_CHAIN,
            "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"}}},
        chain(&ifc),
        chain(&macc),
        flush(&ifc),
        flush(&macc),
        rule(BASE_CHAIN, json!([
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": host_veth}},
            {"jump": {"target": ifc}}]), &refid),
        rule(&ifc, json!([{"jump": {"target": macc}}]), &refid),
        rule(&macc, json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ether", "field": "saddr"}}, "right": mac}},
            {"return": null}]), &refid),
        rule(&macc, json!([{"drop": null}]), &refid),
    ]})
}

/// Installs the rules for one attachment (one transaction).
pub fn setup(container_id: &str, ifname: &str, host_veth: &str, mac: &str) -> Result<(), FwError> {
    setup_with(&Tools::from_env(), container_id, ifname, host_veth, mac)
}

/// [`setup`] with explicit binaries.
pub fn setup_with(
    tools: &Tools,
    container_id: &str,
    ifname: &str,
    host_veth: &str,
    mac: &str,
) -> Result<(), FwError> {
    Nft::new(tools).run_json(&setup_batch(container_id, ifname, host_veth, mac))
}

/// The objects of one kind (`rule`, `chain`) in an `nft -j list` answer.
fn listed<'a>(listing: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    listing
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(move |i| i.get(kind))
}

/// Handles of the base-chain rules that carry this attachment's comment.
fn base_rule_handles(listing: &Value, want_comment: &str) -> Vec<u64> {
    listed(listing, "rule")
        .filter(|r| r.get("comment").and_then(Value::as_str) == Some(want_comment))
        .filter_map(|r| r.get("handle").and_then(Value::as_u64))
        .collect()
}

/// Names of the chains in `bridge nat`, from `nft -j list chains bridge`.
///
/// The chain names hold the ifname, which may contain `"`, `;` or `#`. nft
/// joins its command-line words and parses them as nft syntax, so a name is
/// never put on the command line: it would not be found (and the chains
/// would leak on DEL), or worse.
fn bridge_nat_chains(nft: &Nft) -> Vec<String> {
    let listing = nft
        .list_json(&["list", "chains", "bridge"])
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    chain_names(&listing, TABLE)
}

fn chain_names(listing: &Value, table: &str) -> Vec<String> {
    listed(listing, "chain")
        .filter(|c| c.get("table").and_then(Value::as_str) == Some(table))
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

/// Removes the jump rule and both per-attachment chains. Best effort: a missing table or chain
/// is success, so DEL stays idempotent.
pub fn teardown(container_id: &str, ifname: &str) -> Result<(), FwError> {
    teardown_with(&Tools::from_env(), container_id, ifname)
}

/// [`teardown`] with explicit binaries.
pub fn teardown_with(tools: &Tools, container_id: &str, ifname: &str) -> Result<(), FwError> {
    let nft = Nft::new(tools);
    let refid = ref_id(container_id, ifname);
    let ifc = iface_chain(&refid);
    let mut cmds = Vec::new();
    match nft.list_json(&["list", "chain", "bridge", TABLE, BASE_CHAIN]) {
        Ok(Some(v)) => {
            for h in base_rule_handles(&v, &comment(&refid)) {
                cmds.push(
                    json!({"delete": {"rule": {"family": "bridge", "table": TABLE,
                    "chain": BASE_CHAIN, "handle": h}}}),
                );
            }
        }
        // No table or base chain: nothing of ours can exist.
        Ok(None) => return Ok(()),
        // No nft at all: nothing of ours can exist either (Go: the same).
        Err(FwError::MissingBinary { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    // Flush both chains before deleting either: the iface chain's jump references the mac chain,
    // and nft refuses to delete a chain that is still referenced (EBUSY).
    let macc = format!("{ifc}-mac");
    let existing = bridge_nat_chains(&nft);
    let present: Vec<&String> = [&ifc, &macc]
        .into_iter()
        .filter(|name| existing.contains(name))
        .collect();
    for name in &present {
        cmds.push(json!({"flush": {"chain": {"family": "bridge", "table": TABLE, "name": name}}}));
    }
    for name in &present {
        cmds.push(json!({"delete": {"chain": {"family": "bridge", "table": TABLE, "name": name}}}));
    }
    if cmds.is_empty() {
        return Ok(());
    }
    nft.run_json(&json!({ "nftables": cmds }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_shape() {
        let b = setup_batch("cid", "eth0", "veth1234abcd", "02:00:00:00:00:01");
        let s = b.to_string();
        assert!(s.contains("\"cni-br-iface-cid-eth0-mac\""));
        assert!(s.contains("\"macspoofchk-cid-eth0\""));
        assert!(s.contains("\"prio\":-300"));
        assert_eq!(b["nftables"].as_array().unwrap().len(), 10);
    }

    #[test]
    fn chain_names_from_json() {
        let v = json!({"nftables":[{"metainfo":{}},
            {"chain":{"family":"bridge","table":"nat","name":"cni-br-iface-c-e\";#0"}},
            {"chain":{"family":"bridge","table":"filter","name":"other"}}]});
        assert_eq!(
            chain_names(&v, "nat"),
            vec!["cni-br-iface-c-e\";#0".to_string()]
        );
        assert!(chain_names(&Value::Null, "nat").is_empty());
    }

    #[test]
    fn finds_handles_by_comment() {
        let v = json!({"nftables":[{"metainfo":{}},{"chain":{}},
            {"rule":{"handle":4,"comment":"macspoofchk-a-eth0"}},
            {"rule":{"handle":5,"comment":"macspoofchk-b-eth0"}}]});
        assert_eq!(base_rule_handles(&v, "macspoofchk-a-eth0"), vec![4]);
    }
}
