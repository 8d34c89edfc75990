//! flanneld's `subnet.env` (Go's `loadFlannelSubnetEnv`).
//!
//! Go's parser is naive: `SplitN(line, "=", 2)` per line, no trimming, quotes, `export` or
//! comments, and a known key without `=` makes it panic. weft first parses exactly like Go; only
//! when Go would reject the file (or crash) does it retry tolerantly (trimmed lines, comments,
//! `export `, quotes, CRLF). A file Go accepts therefore always gives Go's result, and a file
//! Go rejects may still work.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

pub const NETWORK: &str = "FLANNEL_NETWORK";
pub const SUBNET: &str = "FLANNEL_SUBNET";
pub const IPV6_NETWORK: &str = "FLANNEL_IPV6_NETWORK";
pub const IPV6_SUBNET: &str = "FLANNEL_IPV6_SUBNET";
pub const MTU: &str = "FLANNEL_MTU";
pub const IPMASQ: &str = "FLANNEL_IPMASQ";

const KNOWN_KEYS: [&str; 6] = [NETWORK, SUBNET, IPV6_NETWORK, IPV6_SUBNET, MTU, IPMASQ];

/// bufio.Scanner's default limit: Go fails on a longer line.
const GO_MAX_LINE: usize = 64 * 1024;

/// The parsed file. Networks and subnets are masked (`10.1.17.1/24` is `10.1.17.0/24`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetEnv {
    pub networks: Vec<IpNetwork>,
    pub subnet: Option<IpNetwork>,
    pub ip6_networks: Vec<IpNetwork>,
    pub ip6_subnet: Option<IpNetwork>,
    pub mtu: Option<u32>,
    pub ipmasq: Option<bool>,
}

/// Why the file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvError {
    /// The file does not exist: flanneld has not written it (yet). Go-style text.
    NotFound(String),
    /// Any other I/O error, Go-style text (`open <path>: permission denied`).
    Io(String),
    /// Unparsable or incomplete content.
    Invalid(String),
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::NotFound(m) | EnvError::Io(m) | EnvError::Invalid(m) => f.write_str(m),
        }
    }
}

/// An I/O error as Go prints a `*PathError`: `<op> <path>: <lower-case strerror>`.
pub fn go_io_error(op: &str, path: &str, e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    let lower = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{op} {path}: {lower}")
}

/// Reads and parses `path`.
pub fn load(path: &str) -> Result<SubnetEnv, EnvError> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        let text = go_io_error("open", path, &e);
        if e.kind() == std::io::ErrorKind::NotFound {
            EnvError::NotFound(text)
        } else {
            EnvError::Io(text)
        }
    })?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| EnvError::Io(go_io_error("read", path, &e)))?;
    parse(&data, path).map_err(EnvError::Invalid)
}

/// Parses the content of `path`: Go's way first, then tolerantly.
pub fn parse(data: &[u8], path: &str) -> Result<SubnetEnv, String> {
    match parse_go(data) {
        Ok(env) if env.missing().is_empty() => Ok(env),
        _ => parse_tolerant(data, path),
    }
}

impl SubnetEnv {
    /// Go's `missing()`: the required keys that are absent, comma-separated.
    pub fn missing(&self) -> String {
        let mut m: Vec<&str> = Vec::new();
        if self.networks.is_empty() && self.ip6_networks.is_empty() {
            m.extend([NETWORK, IPV6_NETWORK]);
        }
        if self.subnet.is_none() && self.ip6_subnet.is_none() {
            m.extend([SUBNET, IPV6_SUBNET]);
        }
        if self.mtu.is_none() {
            m.push(MTU);
        }
        if self.ipmasq.is_none() {
            m.push(IPMASQ);
        }
        m.join(", ")
    }

    /// Sets one key from its (already unquoted) value.
    fn set(&mut self, key: &str, value: &str, tolerant: bool) -> Result<(), String> {
        let invalid = |why: String| {
            format!(
                "invalid {key} value {}: {why}",
                weft_cni_core::gojson::quote(value)
            )
        };
        match key {
            NETWORK => self.networks = parse_cidr_list(value, tolerant).map_err(invalid)?,
            IPV6_NETWORK => {
                self.ip6_networks = parse_cidr_list(value, tolerant).map_err(invalid)?
            }
            SUBNET => self.subnet = Some(parse_masked_cidr(value).map_err(invalid)?),
            IPV6_SUBNET => self.ip6_subnet = Some(parse_masked_cidr(value).map_err(invalid)?),
            MTU => self.mtu = Some(parse_mtu(value).map_err(invalid)?),
            // Exactly "true": "True" or "1" mean false to Go, and so to us.
            IPMASQ => self.ipmasq = Some(value == "true"),
            _ => {}
        }
        Ok(())
    }
}

/// Lines as Go's bufio.ScanLines yields them: split on '\n', one trailing '\r' dropped, no
/// empty last line.
fn go_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// Exactly Go's parser. Err where Go returns an error or panics.
fn parse_go(data: &[u8]) -> Result<SubnetEnv, String> {
    let mut env = SubnetEnv::default();
    for line in go_lines(data) {
        if line.len() >= GO_MAX_LINE {
            return Err("line too long".to_string());
        }
        let (key, value) = match line.iter().position(|b| *b == b'=') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        if !KNOWN_KEYS.contains(&key) {
            continue;
        }
        // Go indexes parts[1] here and panics.
        let value = value.ok_or_else(|| format!("{key} has no '='"))?;
        let value = std::str::from_utf8(value).map_err(|_| format!("{key} is not UTF-8"))?;
        env.set(key, value, false)?;
    }
    Ok(env)
}

/// The forgiving parser, for files Go rejects.
fn parse_tolerant(data: &[u8], path: &str) -> Result<SubnetEnv, String> {
    let mut env = SubnetEnv::default();
    let mut no_equals: Vec<String> = Vec::new();
    let text = String::from_utf8_lossy(data);
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            if KNOWN_KEYS.contains(&line) {
                no_equals.push(format!("line {} {:?} has no '='", n + 1, line));
            }
            continue;
        };
        let key = key.trim();
        if !KNOWN_KEYS.contains(&key) {
            continue;
        }
        env.set(key, unquote(value.trim()), true)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    let missing = env.missing();
    if missing.is_empty() {
        return Ok(env);
    }
    // Go's wording, plus why a key that is there did not count.
    let mut msg = format!("{path} is missing {missing}");
    if !no_equals.is_empty() {
        msg.push_str(&format!(" ({})", no_equals.join(", ")));
    }
    Err(msg)
}

/// `"v"` or `'v'` -> `v`; an unquoted value loses a trailing ` # comment`.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    match v.find(" #").or_else(|| v.find("\t#")) {
        Some(i) => v[..i].trim_end(),
        None => v,
    }
}

fn parse_cidr_list(value: &str, tolerant: bool) -> Result<Vec<IpNetwork>, String> {
    let mut out: Vec<IpNetwork> = Vec::new();
    for item in value.split(',') {
        let item = if tolerant { item.trim() } else { item };
        if tolerant && item.is_empty() {
            continue;
        }
        let net = parse_masked_cidr(item)?;
        // Go's isSubnetAlreadyPresent: duplicates are dropped, first one kept.
        if !out.contains(&net) {
            out.push(net);
        }
    }
    if out.is_empty() {
        return Err("no CIDR".to_string());
    }
    Ok(out)
}

/// Go's `net.ParseCIDR` followed by `IPNet.String()`: the network address (host bits
/// cleared). Like Go, the prefix may have leading zeros, and an IPv4-mapped IPv6 network
/// prints as IPv4 (`::ffff:10.1.0.0/112` is `10.1.0.0/16`).
pub fn parse_masked_cidr(s: &str) -> Result<IpNetwork, String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix: u32 = prefix.parse().map_err(|_| bad())?;
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    match ip {
        IpAddr::V4(a) => {
            let p = u8::try_from(prefix)
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(bad)?;
            let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
            Ipv4Network::new(net, p)
                .map(IpNetwork::V4)
                .map_err(|_| bad())
        }
        IpAddr::V6(a) => {
            let p = u8::try_from(prefix)
                .ok()
                .filter(|p| *p <= 128)
                .ok_or_else(bad)?;
            let mask = u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            // Still mapped after masking means the prefix is at least 96.
            if let Some(v4) = net.to_ipv4_mapped() {
                return Ipv4Network::new(v4, p.saturating_sub(96))
                    .map(IpNetwork::V4)
                    .map_err(|_| bad());
            }
            Ipv6Network::new(net, p)
                .map(IpNetwork::V6)
                .map_err(|_| bad())
        }
    }
}

/// Go's `strconv.ParseUint(s, 10, 32)` with its error text.
fn parse_mtu(s: &str) -> Result<u32, String> {
    let quoted = weft_cni_core::gojson::quote(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {quoted}: invalid syntax"
        ));
    }
    s.parse::<u32>()
        .map_err(|_| format!("strconv.ParseUint: parsing {quoted}: value out of range"))
}

/// Go's `IPNet.String()` for a network from [`parse_masked_cidr`].
pub fn net_string(n: &IpNetwork) -> String {
    format!("{}/{}", n.ip(), n.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> SubnetEnv {
        parse(s.as_bytes(), "/run/flannel/subnet.env").unwrap()
    }
    fn err(s: &str) -> String {
        parse(s.as_bytes(), "/run/flannel/subnet.env").unwrap_err()
    }
    fn nets(v: &[IpNetwork]) -> Vec<String> {
        v.iter().map(net_string).collect()
    }

    const V4: &str = "\nFLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";

    // flannel_linux_test.go: loadFlannelSubnetEnv
    #[test]
    fn go_v4() {
        let e = ok(V4);
        assert_eq!(nets(&e.networks), ["10.1.0.0/16"]);
        assert_eq!(net_string(&e.subnet.unwrap()), "10.1.17.0/24");
        assert_eq!((e.mtu, e.ipmasq), (Some(1472), Some(true)));
        assert!(e.ip6_networks.is_empty() && e.ip6_subnet.is_none());
    }

    #[test]
    fn go_v6_and_dual_stack() {
        let e = ok("\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n");
        assert_eq!(nets(&e.ip6_networks), ["fc00::/48"]);
        assert_eq!(net_string(&e.ip6_subnet.unwrap()), "fc00::/64");
        assert!(e.networks.is_empty() && e.subnet.is_none());
        let e = ok("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n");
        assert_eq!(nets(&e.networks), ["10.1.0.0/16"]);
        assert_eq!(nets(&e.ip6_networks), ["fc00::/48"]);
    }

    #[test]
    fn go_two_networks_masked_and_deduplicated() {
        let e = ok("FLANNEL_NETWORK=10.1.0.0/16,192.168.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n");
        assert_eq!(nets(&e.networks), ["10.1.0.0/16", "192.168.0.0/16"]);
        let e = ok("FLANNEL_NETWORK=10.1.2.3/16,10.1.0.0/16,10.1.0.0/017\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n");
        assert_eq!(nets(&e.networks), ["10.1.0.0/16", "10.1.0.0/17"]);
    }

    #[test]
    fn go_missing_keys_lists_only_missing() {
        assert_eq!(
            err("foo=bar"),
            "/run/flannel/subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ"
        );
        assert_eq!(
            err("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPMASQ=true\n"),
            "/run/flannel/subnet.env is missing FLANNEL_MTU"
        );
        assert_eq!(
            err("FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=false\n"),
            "/run/flannel/subnet.env is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET"
        );
    }

    #[test]
    fn go_semantics_kept_for_files_go_accepts() {
        // last occurrence wins, unknown keys ignored, IPMASQ is true only for "true"
        let e = ok("FLANNEL_MTU=1\nFLANNEL_NETWORK=10.1.0.0/16\nX=1\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=True\n");
        assert_eq!((e.mtu, e.ipmasq), (Some(1400), Some(false)));
        // a quoted IPMASQ is not "true" for Go: the file is valid, so this stays false
        let e = ok("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=\"true\"\n");
        assert_eq!(e.ipmasq, Some(false));
        // "export FLANNEL_MTU" is an unknown key to Go; here the file is complete without it
        let e = ok("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1400\nexport FLANNEL_MTU=9000\nFLANNEL_IPMASQ=false\n");
        assert_eq!(e.mtu, Some(1400));
        // CRLF: Go's scanner drops the '\r'
        let e = ok("FLANNEL_NETWORK=10.1.0.0/16\r\nFLANNEL_SUBNET=10.1.17.1/24\r\nFLANNEL_MTU=1400\r\nFLANNEL_IPMASQ=true\r\n");
        assert_eq!(e.ipmasq, Some(true));
        // MTU 0 and leading zeros are Go-valid
        let e = ok("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=0\nFLANNEL_IPMASQ=true");
        assert_eq!(e.mtu, Some(0));
        // an IPv4-mapped network prints as IPv4, like Go's IPNet.String
        let e = ok("FLANNEL_NETWORK=::ffff:10.1.0.0/112\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true");
        assert_eq!(nets(&e.networks), ["10.1.0.0/16"]);
    }

    #[test]
    fn tolerant_where_go_fails() {
        // quotes, export, comments, blank lines, spaces, trailing comma
        let e = ok("# written by hand\n\nexport FLANNEL_NETWORK=\"10.1.0.0/16, 10.2.0.0/16,\"\n  FLANNEL_SUBNET = '10.1.17.1/24'\nFLANNEL_MTU=1450 # vxlan\nFLANNEL_IPMASQ=true\n");
        assert_eq!(nets(&e.networks), ["10.1.0.0/16", "10.2.0.0/16"]);
        assert_eq!(net_string(&e.subnet.unwrap()), "10.1.17.0/24");
        assert_eq!((e.mtu, e.ipmasq), (Some(1450), Some(true)));
        // a known key with no '=' panics Go; here it is ignored, and named if it leaves a gap
        let e = ok("FLANNEL_MTU\nFLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n");
        assert_eq!(e.mtu, Some(1400));
        assert_eq!(
            err("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU\nFLANNEL_IPMASQ=true\n"),
            "/run/flannel/subnet.env is missing FLANNEL_MTU (line 3 \"FLANNEL_MTU\" has no '=')"
        );
    }

    #[test]
    fn bad_values_name_key_and_value() {
        assert_eq!(
            err("FLANNEL_NETWORK=10.1.0.0/33\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true"),
            "/run/flannel/subnet.env: invalid FLANNEL_NETWORK value \"10.1.0.0/33\": invalid CIDR address: 10.1.0.0/33"
        );
        assert_eq!(
            err("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true"),
            "/run/flannel/subnet.env: invalid FLANNEL_SUBNET value \"10.1.17.1\": invalid CIDR address: 10.1.17.1"
        );
        assert_eq!(
            err("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=abc\nFLANNEL_IPMASQ=true"),
            "/run/flannel/subnet.env: invalid FLANNEL_MTU value \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert!(err("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=4294967296\nFLANNEL_IPMASQ=true").ends_with("value out of range"));
        assert!(err("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=+1\nFLANNEL_IPMASQ=true").contains("invalid syntax"));
        assert!(err("FLANNEL_NETWORK=10.01.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true").contains("FLANNEL_NETWORK"));
        assert!(err("FLANNEL_IPV6_NETWORK=fe80::%eth0/64\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true").contains("FLANNEL_IPV6_NETWORK"));
    }

    #[test]
    fn masked_cidrs() {
        for (i, o) in [
            ("10.1.17.1/24", "10.1.17.0/24"),
            ("10.1.17.1/0", "0.0.0.0/0"),
            ("10.1.17.1/32", "10.1.17.1/32"),
            ("fc00::1/64", "fc00::/64"),
            ("FC00:0:0::1/48", "fc00::/48"),
            ("::ffff:10.1.2.3/120", "10.1.2.0/24"),
            ("::ffff:10.1.2.3/80", "::/80"),
        ] {
            assert_eq!(net_string(&parse_masked_cidr(i).unwrap()), o, "{i}");
        }
        for bad in [
            "",
            "/24",
            "10.1.1.1",
            "10.1.1.1/",
            "10.1.1.1/ 24",
            " 10.1.1.1/24",
            "fc00::/129",
        ] {
            assert!(parse_masked_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn load_errors_read_like_go() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("subnet.env");
        let ps = p.to_str().unwrap();
        assert_eq!(
            load(ps).unwrap_err(),
            EnvError::NotFound(format!("open {ps}: no such file or directory"))
        );
        std::fs::create_dir(&p).unwrap();
        assert_eq!(
            load(ps).unwrap_err(),
            EnvError::Io(format!("read {ps}: is a directory"))
        );
        std::fs::remove_dir(&p).unwrap();
        std::fs::write(&p, V4).unwrap();
        assert_eq!(load(ps).unwrap(), ok(V4));
    }
}
