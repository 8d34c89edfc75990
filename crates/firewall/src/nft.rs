//! nftables through the `nft` binary: scripts in nft's own syntax on stdin
//! (`nft -f -`, exactly what Go's knftables writes, so the kernel ends up
//! with the same rules) and listings in JSON (`nft -j list …`).

use serde_json::Value;

use crate::error::FwError;
use crate::exec::{Tool, Tools};

/// knftables' `CommentLengthMax`: the kernel keeps 128 bytes of comment.
pub const COMMENT_MAX: usize = 128;

/// A rule as listed by `nft -j list chain …`.
#[derive(Debug, Clone, PartialEq)]
pub struct NftRule {
    /// Chain it is in.
    pub chain: String,
    /// Kernel handle (for `delete rule … handle N`).
    pub handle: u64,
    /// Its comment, if any.
    pub comment: Option<String>,
    /// The named counter the rule uses (`counter name "…"`), if any.
    pub counter: Option<String>,
    /// The `expr` array, as nft printed it.
    pub expr: Value,
}

/// What `nft -j list table F T` shows of a table: its chains, named
/// counters and rules, each in listing order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NftListing {
    /// Chain names.
    pub chains: Vec<String>,
    /// Named counter objects.
    pub counters: Vec<String>,
    /// Every rule of every chain.
    pub rules: Vec<NftRule>,
}

impl NftListing {
    /// Parses `nft -j list …` output (JSON schema version 1).
    pub fn parse(out: &str) -> Result<NftListing, String> {
        let v: Value = serde_json::from_str(out).map_err(|e| format!("invalid JSON: {e}"))?;
        let items = v
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or("no \"nftables\" array")?;
        let schema = items
            .first()
            .and_then(|m| m.get("metainfo"))
            .and_then(|m| m.get("json_schema_version"))
            .and_then(Value::as_u64);
        if schema != Some(1) {
            return Err(format!("unsupported json_schema_version {schema:?}"));
        }
        let mut out = NftListing::default();
        for item in items {
            if let Some(c) = item.get("chain") {
                out.chains.extend(object_name(c));
            } else if let Some(c) = item.get("counter") {
                out.counters.extend(object_name(c));
            } else if let Some(r) = item.get("rule") {
                out.rules.push(parse_rule(r)?);
            }
        }
        Ok(out)
    }
}

fn object_name(obj: &Value) -> Option<String> {
    obj.get("name").and_then(Value::as_str).map(String::from)
}

fn parse_rule(rule: &Value) -> Result<NftRule, String> {
    let chain = rule
        .get("chain")
        .and_then(Value::as_str)
        .ok_or("rule with no chain")?;
    let handle = rule
        .get("handle")
        .and_then(Value::as_u64)
        .ok_or("rule with no handle")?;
    let expr = rule.get("expr").cloned().unwrap_or(Value::Null);
    // A named counter is listed as `{"counter": "<name>"}`; an anonymous one
    // as `{"counter": {"packets": …}}`.
    let counter = expr.as_array().and_then(|a| {
        a.iter()
            .find_map(|e| e.get("counter").and_then(Value::as_str).map(String::from))
    });
    Ok(NftRule {
        chain: chain.to_string(),
        handle,
        comment: rule
            .get("comment")
            .and_then(Value::as_str)
            .map(String::from),
        counter,
        expr,
    })
}

/// The `nft` binary.
#[derive(Debug, Clone)]
pub struct Nft {
    bin: Tool,
}

impl Nft {
    /// The wrapper around `tools.nft`.
    pub fn new(tools: &Tools) -> Nft {
        Nft {
            bin: tools.nft.clone(),
        }
    }

    /// Runs `nft -f -` with `script` on stdin (one atomic transaction). An
    /// empty script is not sent; one holding a control character is refused
    /// ([`NftScript::checked_render`]).
    pub fn apply(&self, script: &NftScript) -> Result<(), FwError> {
        if script.is_empty() {
            return Ok(());
        }
        let text = script.checked_render(&self.bin.name)?;
        let args = ["-f", "-"].map(String::from);
        self.bin.run(&args, Some(&text)).map(|_| ())
    }

    /// Runs `nft -j -f -` with a JSON batch on stdin (one atomic transaction).
    pub fn run_json(&self, batch: &Value) -> Result<(), FwError> {
        let args = ["-j", "-f", "-"].map(String::from);
        self.bin.run(&args, Some(&batch.to_string())).map(|_| ())
    }

    /// `nft -j <args>` parsed as JSON, or `None` when the table or chain does
    /// not exist.
    pub fn list_json(&self, args: &[&str]) -> Result<Option<Value>, FwError> {
        let args: Vec<String> = std::iter::once("-j")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        match self.bin.run(&args, None) {
            Ok(out) => serde_json::from_str(&out)
                .map(Some)
                .map_err(|e| FwError::Parse {
                    binary: self.bin.name.clone(),
                    msg: e.to_string(),
                }),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Rules of `family table chain`, or `None` when the table or chain
    /// does not exist.
    pub fn list_chain(
        &self,
        family: &str,
        table: &str,
        chain: &str,
    ) -> Result<Option<Vec<NftRule>>, FwError> {
        let args = ["-j", "list", "chain", family, table, chain].map(String::from);
        match self.bin.run(&args, None) {
            Ok(out) => self.parse_rules(&out).map(Some),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Rules of every chain of `family table`, or `None` when the table
    /// does not exist.
    pub fn list_table(&self, family: &str, table: &str) -> Result<Option<Vec<NftRule>>, FwError> {
        Ok(self.listing(family, table)?.map(|l| l.rules))
    }

    /// Chains, counters and rules of `family table`, or `None` when the
    /// table does not exist.
    pub fn listing(&self, family: &str, table: &str) -> Result<Option<NftListing>, FwError> {
        let args = ["-j", "list", "table", family, table].map(String::from);
        match self.bin.run(&args, None) {
            Ok(out) => NftListing::parse(&out)
                .map(Some)
                .map_err(|msg| self.parse_error(msg)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Nft::listing`] of `ip table` and `ip6 table`, listed in parallel.
    pub fn listings_ip_ip6(
        &self,
        table: &str,
    ) -> [(&'static str, Result<Option<NftListing>, FwError>); 2] {
        std::thread::scope(|s| {
            let v6 = s.spawn(|| self.listing("ip6", table));
            let v4 = self.listing("ip", table);
            let v6 = v6
                .join()
                .unwrap_or_else(|_| Err(self.parse_error("listing thread failed".into())));
            [("ip", v4), ("ip6", v6)]
        })
    }

    fn parse_rules(&self, out: &str) -> Result<Vec<NftRule>, FwError> {
        parse_json_rules(out).map_err(|msg| self.parse_error(msg))
    }

    fn parse_error(&self, msg: String) -> FwError {
        FwError::Parse {
            binary: self.bin.name.clone(),
            msg,
        }
    }

    /// Go's `SupportsNFTables` (knftables.New): nft is v1.0.1 or later and
    /// `nft --check` accepts adding a table.
    pub fn supported(&self) -> bool {
        let version = match self.bin.run(&["--version".to_string()], None) {
            Ok(v) => v,
            Err(_) => return false,
        };
        if version.starts_with("nftables v0.") || version.starts_with("nftables v1.0.0 ") {
            return false;
        }
        let check = ["--check", "-f", "-"].map(String::from);
        let with_comment = "add table ip supports_nftables_test { comment \"test\" ; }\n";
        let plain = "add table ip supports_nftables_test\n";
        self.bin.run(&check, Some(with_comment)).is_ok()
            || self.bin.run(&check, Some(plain)).is_ok()
    }
}

/// nft's answer when the table or chain is missing.
pub fn is_not_found(e: &FwError) -> bool {
    e.stderr_contains("No such file or directory") || e.stderr_contains("does not exist")
}

/// An nft transaction failed because an object it `create`s exists.
pub fn is_exists(e: &FwError) -> bool {
    e.stderr_contains("File exists")
}

/// Extracts the rules from `nft -j list …` output.
pub fn parse_json_rules(out: &str) -> Result<Vec<NftRule>, String> {
    NftListing::parse(out).map(|l| l.rules)
}

/// Builds an nft script the way knftables writes a transaction, one
/// command per line, for a fixed family and table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftScript {
    family: String,
    table: String,
    lines: Vec<String>,
    /// Lines holding a control character (see [`NftScript::checked_render`]).
    unsafe_lines: Vec<String>,
}

impl NftScript {
    /// An empty script for `family table`.
    pub fn new(family: &str, table: &str) -> NftScript {
        NftScript {
            family: family.to_string(),
            table: table.to_string(),
            lines: Vec::new(),
            unsafe_lines: Vec::new(),
        }
    }

    /// One command. nft reads one command per line, so a control character
    /// (a line break above all) in any piece spliced into it would end the
    /// command and start one of someone else's choosing; such lines are
    /// recorded and the script is refused as a whole.
    fn push(&mut self, line: String) {
        if line.chars().any(char::is_control) {
            self.unsafe_lines.push(line.clone());
        }
        self.lines.push(line);
    }

    /// `add table F T [{ comment "…" ; }]`.
    pub fn add_table(&mut self, comment: Option<&str>) -> &mut Self {
        let mut l = format!("add table {} {}", self.family, self.table);
        if let Some(c) = comment {
            l.push_str(&format!(" {{ comment {} ; }}", nft_quote(c)));
        }
        self.push(l);
        self
    }

    /// `add chain F T NAME [{ comment "…" ; }]` (a regular chain).
    pub fn add_chain(&mut self, name: &str, comment: Option<&str>) -> &mut Self {
        let mut l = format!("add chain {} {} {name}", self.family, self.table);
        if let Some(c) = comment {
            l.push_str(&format!(" {{ comment {} ; }}", nft_quote(c)));
        }
        self.push(l);
        self
    }

    /// `add chain F T NAME { type T hook H priority P ; }` (a base chain).
    pub fn add_base_chain(
        &mut self,
        name: &str,
        kind: &str,
        hook: &str,
        priority: i32,
    ) -> &mut Self {
        self.push(format!(
            "add chain {} {} {name} {{ type {kind} hook {hook} priority {priority} ; }}",
            self.family, self.table
        ));
        self
    }

    /// `add chain F T NAME { type T hook H priority P ; [comment "…" ;] }`, with a
    /// priority that may be one of nft's names (`srcnat`, `filter`, …).
    pub fn add_named_base_chain(
        &mut self,
        name: &str,
        kind: &str,
        hook: &str,
        priority: &str,
        comment: Option<&str>,
    ) -> &mut Self {
        let mut l = format!(
            "add chain {} {} {name} {{ type {kind} hook {hook} priority {priority} ;",
            self.family, self.table
        );
        if let Some(c) = comment {
            l.push_str(&format!(" comment {} ;", nft_quote(c)));
        }
        l.push_str(" }");
        self.push(l);
        self
    }

    /// `delete table F T`.
    pub fn delete_table(&mut self) -> &mut Self {
        self.push(format!("delete table {} {}", self.family, self.table));
        self
    }

    /// `flush chain F T NAME`.
    pub fn flush_chain(&mut self, name: &str) -> &mut Self {
        self.push(format!("flush chain {} {} {name}", self.family, self.table));
        self
    }

    /// `delete chain F T NAME`.
    pub fn delete_chain(&mut self, name: &str) -> &mut Self {
        self.push(format!(
            "delete chain {} {} {name}",
            self.family, self.table
        ));
        self
    }

    /// `add rule F T CHAIN RULE [comment "…"]`.
    pub fn add_rule(&mut self, chain: &str, rule: &str, comment: Option<&str>) -> &mut Self {
        let mut l = format!("add rule {} {} {chain} {rule}", self.family, self.table);
        if let Some(c) = comment {
            l.push_str(&format!(" comment {}", nft_quote(c)));
        }
        self.push(l);
        self
    }

    /// `insert rule F T CHAIN RULE [comment "…"]` (at the top).
    pub fn insert_rule(&mut self, chain: &str, rule: &str, comment: Option<&str>) -> &mut Self {
        let mut l = format!("insert rule {} {} {chain} {rule}", self.family, self.table);
        if let Some(c) = comment {
            l.push_str(&format!(" comment {}", nft_quote(c)));
        }
        self.push(l);
        self
    }

    /// `delete rule F T CHAIN handle N`.
    pub fn delete_rule(&mut self, chain: &str, handle: u64) -> &mut Self {
        self.push(format!(
            "delete rule {} {} {chain} handle {handle}",
            self.family, self.table
        ));
        self
    }

    /// `add counter F T NAME` (a named counter; idempotent).
    pub fn add_counter(&mut self, name: &str) -> &mut Self {
        self.push(format!("add counter {} {} {name}", self.family, self.table));
        self
    }

    /// `create counter F T NAME` (fails with "File exists" if it exists, see [`is_exists`]).
    pub fn create_counter(&mut self, name: &str) -> &mut Self {
        self.push(format!(
            "create counter {} {} {name}",
            self.family, self.table
        ));
        self
    }

    /// `delete counter F T NAME`.
    pub fn delete_counter(&mut self, name: &str) -> &mut Self {
        self.push(format!(
            "delete counter {} {} {name}",
            self.family, self.table
        ));
        self
    }

    /// Appends the commands of `other`, which may be on another table: one
    /// `nft -f -` applies them all as one transaction (portmap writes a
    /// pod's `ip` and `ip6` tables together).
    pub fn extend(&mut self, other: NftScript) -> &mut Self {
        self.lines.extend(other.lines);
        self.unsafe_lines.extend(other.unsafe_lines);
        self
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The commands added so far, one a line.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// [`NftScript::render`], refused with [`FwError::UnsafeArgument`] when a
    /// command holds a control character (`binary` names nft in the message).
    pub fn checked_render(&self, binary: &str) -> Result<String, FwError> {
        match self.unsafe_lines.first() {
            Some(line) => Err(FwError::UnsafeArgument {
                binary: binary.to_string(),
                arg: line.clone(),
            }),
            None => Ok(self.render()),
        }
    }

    /// The script text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// The same script with table and chain comments dropped, for kernels
    /// or nft builds without object comments (knftables does the same).
    pub fn without_object_comments(&self) -> NftScript {
        let lines = self
            .lines
            .iter()
            .map(|l| {
                if l.starts_with("add table ") || l.starts_with("add chain ") {
                    strip_object_comment(l)
                } else {
                    l.clone()
                }
            })
            .collect();
        NftScript {
            family: self.family.clone(),
            table: self.table.clone(),
            lines,
            unsafe_lines: self.unsafe_lines.clone(),
        }
    }
}

fn strip_object_comment(line: &str) -> String {
    let Some(start) = line.find(" comment \"") else {
        return line.to_string();
    };
    let (head, tail) = line.split_at(start);
    // The comment ends at the `" ;` that closes it.
    let Some(end) = tail.find("\" ;") else {
        return line.to_string();
    };
    let rest = tail.get(end + 3..).unwrap_or_default();
    let out = format!("{head}{rest}");
    // `add table x { }` is valid nft, but keep it tidy.
    out.replace(" { }", "")
}

/// What nft stores for a comment written with [`nft_quote`]: the text
/// without `"` and control characters.
pub fn nft_literal(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && !c.is_control()).collect()
}

/// Quotes a string for an nft script. nft's scanner reads a quoted string
/// as every byte up to the next `"` (`quotedstring \"[^"]*\"` in
/// scanner.l, in every release): there are no escapes, so a backslash is
/// stored as is and a `"` would end the string and let the rest be parsed
/// as nft syntax. The only safe encoding is therefore to drop `"`. Control
/// characters are dropped as well: no comment needs them, and it keeps one
/// command per line. (Go writes `%q`, which nft stores with the escaping
/// backslashes, so Go's stored comment differs from the one it computes
/// whenever the text holds a `\`.)
pub fn nft_quote(s: &str) -> String {
    format!("\"{}\"", nft_literal(s))
}

/// Cuts a comment to what the kernel keeps, like knftables (which slices
/// bytes; here never inside a character).
pub fn truncate_comment(mut s: String) -> String {
    if s.len() > COMMENT_MAX {
        let mut cut = COMMENT_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The match and NAT parts of a listed rule that a CHECK compares: the
/// address, port and protocol matches, a `dnat to` target, `masquerade`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sig {
    /// `ip saddr` / `ip6 saddr`, `ADDR` or `ADDR/LEN`.
    pub saddr: Option<String>,
    /// `ip daddr` / `ip6 daddr`.
    pub daddr: Option<String>,
    /// The protocol of a `dport` match (`tcp`, `udp`, `sctp`).
    pub proto: Option<String>,
    /// The `dport` matched.
    pub dport: Option<u64>,
    /// `dnat to ADDR:PORT`.
    pub dnat: Option<(String, u64)>,
    /// Whether the rule masquerades.
    pub masquerade: bool,
}

/// An address as nft lists it: a string, or `{"prefix": {"addr", "len"}}`.
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

/// Reads a rule's `expr` array into a [`Sig`].
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_base_chain_with_comment() {
        let mut s = NftScript::new("ip", "flannel-ipv4");
        s.add_named_base_chain("postrtg", "nat", "postrouting", "srcnat", Some("a \"b\""))
            .add_named_base_chain("forward", "filter", "forward", "filter", None)
            .delete_table();
        assert_eq!(
            s.render(),
            "add chain ip flannel-ipv4 postrtg { type nat hook postrouting priority srcnat ; comment \"a b\" ; }\n\
             add chain ip flannel-ipv4 forward { type filter hook forward priority filter ; }\n\
             delete table ip flannel-ipv4\n"
        );
        assert!(s.without_object_comments().render().starts_with(
            "add chain ip flannel-ipv4 postrtg { type nat hook postrouting priority srcnat ; }\n"
        ));
    }

    #[test]
    fn script_text_matches_knftables() {
        let mut s = NftScript::new("inet", "cni_plugins_masquerade");
        s.add_table(Some("T c"))
            .add_chain("masq_checks", Some("C c"))
            .add_base_chain("postrouting", "nat", "postrouting", 100)
            .flush_chain("postrouting")
            .add_rule("postrouting", "goto masq_checks", None)
            .delete_rule("masq_checks", 7)
            .add_rule("masq_checks", "masquerade", Some("x, y"));
        assert_eq!(
            s.render(),
            "add table inet cni_plugins_masquerade { comment \"T c\" ; }\n\
             add chain inet cni_plugins_masquerade masq_checks { comment \"C c\" ; }\n\
             add chain inet cni_plugins_masquerade postrouting { type nat hook postrouting priority 100 ; }\n\
             flush chain inet cni_plugins_masquerade postrouting\n\
             add rule inet cni_plugins_masquerade postrouting goto masq_checks\n\
             delete rule inet cni_plugins_masquerade masq_checks handle 7\n\
             add rule inet cni_plugins_masquerade masq_checks masquerade comment \"x, y\"\n"
        );
        let plain = s.without_object_comments().render();
        assert!(plain.starts_with(
            "add table inet cni_plugins_masquerade\n\
             add chain inet cni_plugins_masquerade masq_checks\n\
             add chain inet cni_plugins_masquerade postrouting { type nat hook postrouting priority 100 ; }\n"
        ));
        // Rule comments stay.
        assert!(plain.contains("masquerade comment \"x, y\""));
    }

    #[test]
    fn parses_json_listing() {
        let out = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"chain": {"family": "inet", "table": "t", "name": "masq_checks", "handle": 1}},
            {"rule": {"family": "inet", "table": "t", "chain": "masq_checks", "handle": 6,
                      "comment": "abc-def, net: n", "expr": [{"masquerade": null}]}},
            {"rule": {"family": "inet", "table": "t", "chain": "masq_checks", "handle": 7,
                      "expr": []}}]}"#;
        let rules = parse_json_rules(out).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].handle, 6);
        assert_eq!(rules[0].comment.as_deref(), Some("abc-def, net: n"));
        assert_eq!(rules[1].comment, None);
        assert!(parse_json_rules("{}").is_err());
        assert!(
            parse_json_rules(r#"{"nftables":[{"metainfo":{"json_schema_version":2}}]}"#).is_err()
        );
    }

    #[test]
    fn quoting_cannot_be_escaped() {
        // A `"` would close the string; nft has no escapes, so it is dropped.
        assert_eq!(
            nft_quote("e\"; flush ruleset; #"),
            "\"e; flush ruleset; #\""
        );
        // A backslash is literal in nft: written once, stored once.
        assert_eq!(nft_quote(r"a\b\"), r#""a\b\""#);
        assert_eq!(nft_quote("x\ny\u{1}z"), "\"xyz\"");
        assert_eq!(nft_literal("é\"ü"), "éü");
        let mut s = NftScript::new("inet", "t");
        s.add_rule("c", "accept", Some("q\"\n add rule inet t c drop"));
        assert_eq!(
            s.render(),
            "add rule inet t c accept comment \"q add rule inet t c drop\"\n"
        );
    }

    #[test]
    fn comment_truncation() {
        assert_eq!(truncate_comment("a".repeat(200)).len(), COMMENT_MAX);
        let s = format!("{}é", "a".repeat(127));
        assert_eq!(truncate_comment(s).len(), 127);
        assert_eq!(truncate_comment("short".into()), "short");
    }

    #[test]
    fn control_characters_make_a_script_unsafe() {
        let mut s = NftScript::new("ip", "t");
        s.add_rule("c", "accept", None);
        assert!(s.checked_render("nft").is_ok());
        // A rule text (a condition) holding a line break would start a second command.
        s.add_rule("c", "tcp dport 1\nflush ruleset", None);
        let mut all = NftScript::new("ip6", "t");
        all.create_counter("k").extend(s);
        let err = all.checked_render("nft").unwrap_err();
        assert!(matches!(err, FwError::UnsafeArgument { .. }), "{err}");
        assert!(all.without_object_comments().checked_render("nft").is_err());
        // Refused before anything runs (the binary does not even exist).
        let mut tools = Tools::from_env();
        tools.nft.name = "/nonexistent/nft".into();
        let nft = Nft::new(&tools);
        assert!(matches!(
            nft.apply(&all),
            Err(FwError::UnsafeArgument { .. })
        ));
        assert!(matches!(
            nft.apply(NftScript::new("ip", "t").delete_table()),
            Err(FwError::MissingBinary { .. })
        ));
        // An empty script is not sent at all.
        assert!(nft.apply(&NftScript::new("ip", "t")).is_ok());
    }

    #[test]
    fn listing_has_chains_counters_and_named_counters_of_rules() {
        let out = r#"{"nftables": [{"metainfo": {"json_schema_version": 1}},
            {"counter": {"family": "ip", "name": "weft_a", "table": "t", "handle": 3}},
            {"chain": {"family": "ip", "table": "t", "name": "hostports", "handle": 1}},
            {"rule": {"family": "ip", "table": "t", "chain": "hostports", "handle": 6,
                      "expr": [{"counter": "weft_a"}, {"masquerade": null}]}},
            {"rule": {"family": "ip", "table": "t", "chain": "hostports", "handle": 7,
                      "expr": [{"counter": {"packets": 0, "bytes": 0}}]}}]}"#;
        let l = NftListing::parse(out).unwrap();
        assert_eq!(l.chains, vec!["hostports"]);
        assert_eq!(l.counters, vec!["weft_a"]);
        assert_eq!(l.rules[0].counter.as_deref(), Some("weft_a"));
        assert_eq!(l.rules[1].counter, None);
        assert!(sig(&l.rules[0].expr).masquerade);
        let mut s = NftScript::new("ip", "t");
        s.add_counter("weft_a").delete_counter("weft_a");
        assert_eq!(
            s.lines(),
            ["add counter ip t weft_a", "delete counter ip t weft_a"]
        );
    }
}
