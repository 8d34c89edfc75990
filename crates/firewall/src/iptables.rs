//! A thin iptables wrapper of our own: rules are argv vectors, reads use
//! `iptables -S`, writes go through one `iptables-restore --noflush` batch,
//! and every call waits for the xtables lock for a bounded time.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::error::FwError;
use crate::exec::{Tool, Tools};

/// Address family: picks `iptables` or `ip6tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`iptables`).
    V4,
    /// IPv6 (`ip6tables`).
    V6,
}

impl Family {
    /// Both families, v4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// Family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Family of a network.
    pub fn of_net(net: &IpNetwork) -> Family {
        Family::of(net.ip())
    }

    /// The usual command of the family, `iptables` or `ip6tables` (for messages).
    pub fn command(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

/// An argv vector for one rule, without the `-A CHAIN` part, e.g.
/// `["-s", "10.0.0.2", "-j", "CNI-…", "-m", "comment", "--comment", "…"]`.
pub type RuleArgs = Vec<String>;

/// Builds a [`RuleArgs`] from string slices.
pub fn rule(args: &[&str]) -> RuleArgs {
    args.iter().map(|s| s.to_string()).collect()
}

/// `iptables` or `ip6tables`, with their restore companions.
#[derive(Debug, Clone)]
pub struct Iptables {
    family: Family,
    bin: Tool,
    restore: Tool,
    wait: u32,
}

impl Iptables {
    /// The wrapper for `family`, using the binaries in `tools`.
    pub fn new(tools: &Tools, family: Family) -> Iptables {
        let (bin, restore) = match family {
            Family::V4 => (tools.iptables.clone(), tools.iptables_restore.clone()),
            Family::V6 => (tools.ip6tables.clone(), tools.ip6tables_restore.clone()),
        };
        Iptables {
            family,
            bin,
            restore,
            wait: tools.lock_wait_secs,
        }
    }

    /// The family this wrapper handles.
    pub fn family(&self) -> Family {
        self.family
    }

    /// How long a call waits for the xtables lock (`-w`), also the bound for
    /// weft's own [`crate::SharedLock`] around a read-modify-write.
    pub fn lock_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.wait))
    }

    /// Runs `iptables -w N <args>` and returns stdout.
    pub fn run(&self, args: &[String]) -> Result<String, FwError> {
        let mut argv = vec!["-w".to_string(), self.wait.to_string()];
        argv.extend_from_slice(args);
        self.bin.run(&argv, None)
    }

    /// `iptables -w N -t <table> -S`: every chain and rule of the table.
    ///
    /// The whole table is listed even when one chain would do, because
    /// iptables-nft answers `-S <missing chain>` with a misleading
    /// "chain ... is incompatible, use 'nft' tool" instead of "no such chain".
    pub fn list_table(&self, table: &str) -> Result<TableDump, FwError> {
        let out = self.run(&["-t".to_string(), table.to_string(), "-S".to_string()])?;
        TableDump::parse(&out).map_err(|msg| FwError::Parse {
            binary: self.bin.name.clone(),
            msg,
        })
    }

    /// Applies `batch` with `iptables-restore --noflush -w N` (atomic: all
    /// lines or none). An empty batch is not sent.
    pub fn restore(&self, batch: &RestoreBatch) -> Result<(), FwError> {
        if batch.is_empty() {
            return Ok(());
        }
        let input = batch.checked_render(&self.restore.name)?;
        self.restore
            .run(&self.restore_args(), Some(&input))
            .map(|_| ())
    }

    /// Runs a batch of `-S` lines ([`RestoreBatch::list`]) and parses what was listed, even
    /// when a later line failed (a missing chain): the chains missing from the dump do not
    /// exist, or were not reached. The flag says whether the whole batch succeeded. `Err`
    /// only when the tool could not run at all, or the batch is unsafe.
    ///
    /// One restore process lists several chains for the price of one exec, and never the
    /// whole table (whose size grows with the number of containers).
    pub fn read(&self, batch: &RestoreBatch) -> Result<(TableDump, bool), FwError> {
        let input = batch.checked_render(&self.restore.name)?;
        let out = self.restore.capture(&self.restore_args(), Some(&input))?;
        let dump = TableDump::parse(&out.stdout).map_err(|msg| FwError::Parse {
            binary: self.restore.name.clone(),
            msg,
        })?;
        Ok((dump, out.success))
    }

    fn restore_args(&self) -> Vec<String> {
        vec![
            "--noflush".to_string(),
            "-w".to_string(),
            self.wait.to_string(),
        ]
    }

    /// Whether `iptables -t <table> -S <chain>` works (Go portmap's `maybeGetIptables`
    /// looks at `nat OUTPUT`).
    pub fn can_list(&self, table: &str, chain: &str) -> bool {
        let args = ["-t", table, "-S", chain].map(String::from);
        self.run(&args).is_ok()
    }

    /// Go's `SupportsIPTables`: the binary exists and can list
    /// `filter INPUT` (whether or not anything is in it).
    pub fn supported(&self) -> bool {
        self.probe().is_ok()
    }

    /// [`Iptables::supported`], with the reason when it is not.
    pub fn probe(&self) -> Result<(), FwError> {
        let args = ["-t", "filter", "-n", "-L", "INPUT"].map(String::from);
        self.run(&args).map(|_| ())
    }
}

/// One `-A CHAIN args…` line of `iptables -S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedRule {
    /// Chain the rule is in.
    pub chain: String,
    /// The rule without `-A CHAIN`, unquoted.
    pub args: RuleArgs,
}

impl SavedRule {
    /// Target of `-j`/`-g`, if any.
    pub fn target(&self) -> Option<&str> {
        option_value(&self.args, &["-j", "--jump", "-g", "--goto"])
    }

    /// Value of `--comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        option_value(&self.args, &["--comment"])
    }

    /// The word after the first of `names` (e.g. `["-p", "--protocol"]`), if any.
    pub fn value(&self, names: &[&str]) -> Option<&str> {
        option_value(&self.args, names)
    }
}

fn option_value<'a>(args: &'a [String], names: &[&str]) -> Option<&'a str> {
    args.iter()
        .position(|a| names.contains(&a.as_str()))
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// A table as printed by `iptables -t T -S`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDump {
    /// Built-in chains (`-P` lines), in order.
    pub builtin_chains: Vec<String>,
    /// User-defined chains (`-N` lines), in order.
    pub user_chains: Vec<String>,
    /// All rules, in order.
    pub rules: Vec<SavedRule>,
}

impl TableDump {
    /// Parses `iptables -S` output.
    pub fn parse(text: &str) -> Result<TableDump, String> {
        let mut dump = TableDump::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_rule_line(line)?;
            let mut it = words.into_iter();
            let (Some(op), Some(chain)) = (it.next(), it.next()) else {
                return Err(format!("short line {line:?}"));
            };
            match op.as_str() {
                "-P" => dump.builtin_chains.push(chain),
                "-N" => dump.user_chains.push(chain),
                "-A" => dump.rules.push(SavedRule {
                    chain,
                    args: it.collect(),
                }),
                _ => return Err(format!("unexpected line {line:?}")),
            }
        }
        Ok(dump)
    }

    /// Whether the chain exists (built-in or user-defined).
    pub fn has_chain(&self, chain: &str) -> bool {
        self.user_chains.iter().any(|c| c == chain)
            || self.builtin_chains.iter().any(|c| c == chain)
    }

    /// The rules of one chain, in order.
    pub fn rules_in<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = &'a SavedRule> + 'a {
        self.rules.iter().filter(move |r| r.chain == chain)
    }

    /// Whether `chain` holds a rule equivalent to `args` (same matches and
    /// target in any order, addresses compared as networks; the semantics
    /// of `iptables -C`).
    pub fn contains(&self, chain: &str, args: &[String]) -> bool {
        self.rules_in(chain).any(|r| same_rule(&r.args, args))
    }

    /// Records a rule we are about to append, so later checks see it.
    pub fn push(&mut self, chain: &str, args: &[String]) {
        self.rules.push(SavedRule {
            chain: chain.to_string(),
            args: args.to_vec(),
        });
    }

    /// Records a chain we are about to create.
    pub fn push_chain(&mut self, chain: &str) {
        if !self.has_chain(chain) {
            self.user_chains.push(chain.to_string());
        }
    }
}

/// Splits one `iptables -S` / `iptables-save` line into words. Words may be
/// double-quoted; inside quotes `\"` and `\\` stand for `"` and `\`, which
/// is how iptables prints comments.
pub fn split_rule_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some(n @ ('"' | '\\')) => word.push(n),
                        Some(n) => {
                            word.push('\\');
                            word.push(n);
                        }
                        None => word.push('\\'),
                    },
                    c => word.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quote in {line:?}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_ascii_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// Quotes one word for an iptables-restore line: plain words stay bare,
/// anything else is double-quoted with `"` and `\` escaped (the inverse of
/// [`split_rule_line`]).
pub fn quote_restore_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%!*[]".contains(c));
    if plain {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether two rule specs are the same rule as far as iptables is
/// concerned: the options may come in a different order (`-S` prints
/// matches before the target), addresses may be written with host bits or
/// without a prefix, `-m tcp` after `-p tcp` is implicit, and multiport's
/// `--destination-ports` is printed back as `--dports` (likewise the other
/// port options).
pub fn same_rule(a: &[String], b: &[String]) -> bool {
    canonical_rule(a) == canonical_rule(b)
}

/// One option with its values: (`!` before it, option, values).
type Unit = (bool, String, Vec<String>);

fn canonical_rule(args: &[String]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut negate = false;
    for word in args {
        if word == "!" {
            negate = true;
            continue;
        }
        if is_option(word) {
            units.push((negate, long_to_short(word).to_string(), Vec::new()));
            negate = false;
            continue;
        }
        match units.last_mut() {
            Some((_, _, values)) => values.push(word.clone()),
            // A value before any option: keep it as its own unit.
            None => units.push((negate, String::new(), vec![word.clone()])),
        }
    }

    let protocol = units
        .iter()
        .find(|(_, opt, _)| opt == "-p")
        .and_then(|(_, _, v)| v.first().cloned());
    units.retain(|(neg, opt, values)| {
        // `-p tcp` loads `-m tcp` implicitly; -S prints it, we may not.
        !(opt == "-m" && !neg && values.len() == 1 && values.first() == protocol.as_ref())
    });
    for (_, opt, values) in units.iter_mut() {
        if opt == "-s" || opt == "-d" {
            for v in values.iter_mut() {
                *v = canonical_address(v);
            }
        }
    }
    units.sort();
    units
}

fn is_option(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next() == Some('-')
        && chars
            .next()
            .is_some_and(|c| c == '-' || c.is_ascii_alphabetic())
}

fn long_to_short(opt: &str) -> &str {
    match opt {
        "--source" | "--src" => "-s",
        "--destination" | "--dst" => "-d",
        "--jump" => "-j",
        "--goto" => "-g",
        "--match" => "-m",
        "--protocol" => "-p",
        "--in-interface" => "-i",
        "--out-interface" => "-o",
        // multiport and tcp/udp print their long options back in the short form.
        "--destination-ports" => "--dports",
        "--source-ports" => "--sports",
        "--destination-port" => "--dport",
        "--source-port" => "--sport",
        other => other,
    }
}

/// `10.1.2.3/24` -> `10.1.2.0/24`, `10.1.2.3` -> `10.1.2.3/32`, as
/// iptables stores them. Anything unparsable (a hostname) is kept as is.
fn canonical_address(v: &str) -> String {
    if let Ok(ip) = v.parse::<IpAddr>() {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        return format!("{ip}/{len}");
    }
    match v.parse::<IpNetwork>() {
        Ok(net) => format!("{}/{}", net.network(), net.prefix()),
        Err(_) => v.to_string(),
    }
}

/// One `*table … COMMIT` block for `iptables-restore --noflush`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreBatch {
    table: String,
    lines: Vec<String>,
    /// Words that cannot be written safely (see [`RestoreBatch::unsafe_word`]).
    unsafe_words: Vec<String>,
}

impl RestoreBatch {
    /// An empty batch for `table`.
    pub fn new(table: &str) -> RestoreBatch {
        RestoreBatch {
            table: table.to_string(),
            lines: Vec::new(),
            unsafe_words: Vec::new(),
        }
    }

    /// `:CHAIN - [0:0]`: creates a user chain. With `--noflush` this also
    /// flushes the chain if it already exists, so only declare chains you
    /// own and mean to rewrite.
    pub fn declare_chain(&mut self, chain: &str) -> &mut Self {
        self.lines.push(format!(":{chain} - [0:0]"));
        self
    }

    /// `-A CHAIN args…`.
    pub fn append(&mut self, chain: &str, args: &[String]) -> &mut Self {
        self.command("-A", chain, None, args)
    }

    /// `-I CHAIN pos args…` (pos is 1-based).
    pub fn insert(&mut self, chain: &str, pos: u32, args: &[String]) -> &mut Self {
        self.command("-I", chain, Some(pos), args)
    }

    /// `-D CHAIN args…` (the rule must exist or the whole batch fails).
    pub fn delete(&mut self, chain: &str, args: &[String]) -> &mut Self {
        self.command("-D", chain, None, args)
    }

    /// `-N CHAIN`: creates a user chain (the batch fails if it exists).
    pub fn new_chain(&mut self, chain: &str) -> &mut Self {
        self.command("-N", chain, None, &[])
    }

    /// `-S CHAIN`: prints the chain's rules as iptables-restore parses the line, so a
    /// batch that stops at a missing chain still shows the chains listed before it.
    pub fn list(&mut self, chain: &str) -> &mut Self {
        self.command("-S", chain, None, &[])
    }

    /// `-F CHAIN`.
    pub fn flush_chain(&mut self, chain: &str) -> &mut Self {
        self.command("-F", chain, None, &[])
    }

    /// `-X CHAIN` (must exist, be empty and unreferenced).
    pub fn delete_chain(&mut self, chain: &str) -> &mut Self {
        self.command("-X", chain, None, &[])
    }

    fn command(&mut self, op: &str, chain: &str, pos: Option<u32>, args: &[String]) -> &mut Self {
        // iptables-restore splits its input into lines before it unquotes
        // words, so no quoting can carry a line break: a word holding one
        // would end this rule and start a command of the caller's choosing.
        // Such words are recorded and the batch is refused as a whole.
        for w in std::iter::once(chain).chain(args.iter().map(String::as_str)) {
            if w.chars().any(char::is_control) {
                self.unsafe_words.push(w.to_string());
            }
        }
        let mut line = format!("{op} {}", quote_restore_word(chain));
        if let Some(pos) = pos {
            line.push_str(&format!(" {pos}"));
        }
        for a in args {
            line.push(' ');
            line.push_str(&quote_restore_word(a));
        }
        self.lines.push(line);
        self
    }

    /// Appends the commands of `other` (a batch on the same table).
    pub fn extend(&mut self, other: RestoreBatch) -> &mut Self {
        self.lines.extend(other.lines);
        self.unsafe_words.extend(other.unsafe_words);
        self
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The first word holding a control character (`\n`, `\r`, NUL, ...),
    /// if any: such a batch must not be sent ([`Iptables::restore`] refuses
    /// it).
    pub fn unsafe_word(&self) -> Option<&str> {
        self.unsafe_words.first().map(String::as_str)
    }

    /// [`RestoreBatch::render`], refused with [`FwError::UnsafeArgument`] when a word
    /// holds a control character (`binary` names the tool in the message).
    pub fn checked_render(&self, binary: &str) -> Result<String, FwError> {
        match self.unsafe_word() {
            Some(arg) => Err(FwError::UnsafeArgument {
                binary: binary.to_string(),
                arg: arg.to_string(),
            }),
            None => Ok(self.render()),
        }
    }

    /// The lines added so far, without the `*table`/`COMMIT` frame.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text fed to iptables-restore.
    pub fn render(&self) -> String {
        let mut out = format!("*{}\n", self.table);
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("COMMIT\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = r#"-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N CNI-9161bb64bf5037c63c3c4f94
-A POSTROUTING -s 10.77.0.2/32 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j CNI-9161bb64bf5037c63c3c4f94
-A CNI-9161bb64bf5037c63c3c4f94 -d 10.77.0.0/24 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j ACCEPT
-A CNI-9161bb64bf5037c63c3c4f94 ! -d 224.0.0.0/4 -m comment --comment "name: \"testnet\" id: \"ctr1234\"" -j MASQUERADE
"#;

    const COMMENT: &str = r#"name: "testnet" id: "ctr1234""#;
    const CHAIN: &str = "CNI-9161bb64bf5037c63c3c4f94";

    #[test]
    fn parses_iptables_s_output() {
        let d = TableDump::parse(SAVED).unwrap();
        assert_eq!(d.builtin_chains.len(), 4);
        assert_eq!(d.user_chains, vec![CHAIN.to_string()]);
        assert_eq!(d.rules.len(), 3);
        let jump = &d.rules[0];
        assert_eq!(jump.chain, "POSTROUTING");
        assert_eq!(jump.target(), Some(CHAIN));
        assert_eq!(jump.comment(), Some(COMMENT));
        assert!(d.has_chain(CHAIN));
        assert!(d.has_chain("POSTROUTING"));
        assert!(!d.has_chain("CNI-other"));
    }

    #[test]
    fn go_argv_matches_saved_rule() {
        let d = TableDump::parse(SAVED).unwrap();
        // The argv Go passes to AppendUnique, with host bits and no /32.
        let accept = rule(&[
            "-d",
            "10.77.0.2/24",
            "-j",
            "ACCEPT",
            "-m",
            "comment",
            "--comment",
            COMMENT,
        ]);
        let masq = rule(&[
            "!",
            "-d",
            "224.0.0.0/4",
            "-j",
            "MASQUERADE",
            "-m",
            "comment",
            "--comment",
            COMMENT,
        ]);
        let jump = rule(&[
            "-s",
            "10.77.0.2",
            "-j",
            CHAIN,
            "-m",
            "comment",
            "--comment",
            COMMENT,
        ]);
        assert!(d.contains(CHAIN, &accept));
        assert!(d.contains(CHAIN, &masq));
        assert!(d.contains("POSTROUTING", &jump));
        // Not the same: other address, other comment, negation dropped.
        let other = rule(&[
            "-s",
            "10.77.0.3",
            "-j",
            CHAIN,
            "-m",
            "comment",
            "--comment",
            COMMENT,
        ]);
        assert!(!d.contains("POSTROUTING", &other));
        let masq_no_neg = rule(&[
            "-d",
            "224.0.0.0/4",
            "-j",
            "MASQUERADE",
            "-m",
            "comment",
            "--comment",
            COMMENT,
        ]);
        assert!(!d.contains(CHAIN, &masq_no_neg));
        let wrong_comment = rule(&[
            "-d",
            "10.77.0.0/24",
            "-j",
            "ACCEPT",
            "-m",
            "comment",
            "--comment",
            "x",
        ]);
        assert!(!d.contains(CHAIN, &wrong_comment));
        assert!(!d.contains("POSTROUTING", &accept));
    }

    #[test]
    fn implicit_protocol_match() {
        let mine = rule(&["-p", "tcp", "--dport", "80", "-j", "ACCEPT"]);
        let saved = rule(&["-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "ACCEPT"]);
        assert!(same_rule(&mine, &saved));
        let udp = rule(&["-p", "udp", "-m", "udp", "--dport", "80", "-j", "ACCEPT"]);
        assert!(!same_rule(&mine, &udp));
    }

    #[test]
    fn port_option_aliases() {
        let mine = rule(&[
            "-m",
            "multiport",
            "-p",
            "tcp",
            "--destination-ports",
            "80,81",
        ]);
        let saved = rule(&["-p", "tcp", "-m", "multiport", "--dports", "80,81"]);
        assert!(same_rule(&mine, &saved));
        let other = rule(&["-p", "tcp", "-m", "multiport", "--sports", "80,81"]);
        assert!(!same_rule(&mine, &other));
    }

    #[test]
    fn v6_addresses_are_canonical() {
        let a = rule(&["-s", "fd77::2", "-d", "fd77::5/64"]);
        let b = rule(&["-d", "fd77::/64", "-s", "fd77::2/128"]);
        assert!(same_rule(&a, &b));
    }

    #[test]
    fn split_handles_quotes_and_escapes() {
        let w = split_rule_line(r#"-A X --comment "a \"q\" \\ b" -j ACCEPT"#).unwrap();
        assert_eq!(
            w,
            vec!["-A", "X", "--comment", r#"a "q" \ b"#, "-j", "ACCEPT"]
        );
        assert!(split_rule_line(r#"-A X --comment "open"#).is_err());
        assert_eq!(split_rule_line("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn quote_round_trips() {
        for w in [r#"name: "n" id: "c""#, "plain", r"back\slash", "", "a b"] {
            let line = format!("-A X {}", quote_restore_word(w));
            let words = split_rule_line(&line).unwrap();
            assert_eq!(words[2], w, "{line}");
        }
        assert_eq!(quote_restore_word("10.0.0.0/24"), "10.0.0.0/24");
        assert_eq!(quote_restore_word("!"), "!");
    }

    #[test]
    fn control_characters_make_a_batch_unsafe() {
        let mut b = RestoreBatch::new("nat");
        b.append("X", &rule(&["-j", "ACCEPT"]));
        assert_eq!(b.unsafe_word(), None);
        let evil = "x\"\nCOMMIT\n*filter\n-A INPUT -j DROP\n#";
        b.append("X", &rule(&["-m", "comment", "--comment", evil]));
        assert_eq!(b.unsafe_word(), Some(evil));
        let mut c = RestoreBatch::new("nat");
        c.delete_chain("X\r");
        assert_eq!(c.unsafe_word(), Some("X\r"));
        // Refused before anything runs (the binary does not even exist).
        let mut tools = Tools::from_env();
        tools.iptables_restore.name = "/nonexistent/iptables-restore".into();
        let err = Iptables::new(&tools, Family::V4).restore(&b).unwrap_err();
        assert!(matches!(err, FwError::UnsafeArgument { .. }), "{err}");
        assert!(err.to_string().contains("control character"), "{err}");
    }

    #[test]
    fn restore_batch_text() {
        let mut b = RestoreBatch::new("nat");
        assert!(b.is_empty());
        b.declare_chain(CHAIN)
            .append(
                CHAIN,
                &rule(&[
                    "-d",
                    "10.77.0.2/24",
                    "-j",
                    "ACCEPT",
                    "-m",
                    "comment",
                    "--comment",
                    COMMENT,
                ]),
            )
            .insert("POSTROUTING", 1, &rule(&["-j", "X"]))
            .delete("POSTROUTING", &rule(&["-s", "10.77.0.2", "-j", CHAIN]))
            .flush_chain(CHAIN)
            .delete_chain(CHAIN);
        let expected = format!(
            "*nat\n:{CHAIN} - [0:0]\n\
             -A {CHAIN} -d 10.77.0.2/24 -j ACCEPT -m comment --comment \"name: \\\"testnet\\\" id: \\\"ctr1234\\\"\"\n\
             -I POSTROUTING 1 -j X\n\
             -D POSTROUTING -s 10.77.0.2 -j {CHAIN}\n\
             -F {CHAIN}\n-X {CHAIN}\nCOMMIT\n"
        );
        assert_eq!(b.render(), expected);
    }
}
