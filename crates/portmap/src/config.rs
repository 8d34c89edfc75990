//! portmap's network configuration (Go `main.go` `PortMapConf` / `parseConfig`).
//!
//! Every key is matched the way Go's encoding/json matches struct fields: exactly, else
//! case-insensitively. That matters for `runtimeConfig.portMappings`: containerd's CRI sends
//! `HostPort`, `ContainerPort`, `Protocol` and `HostIP`, and a reader that only knows camelCase
//! silently maps nothing.
//!
//! Validation is stricter than Go's (ports must be 1-65535, protocol tcp/udp/sctp, hostIP an
//! address) and every error names the mapping and field (code 7). The checks Go has keep Go's
//! order and wording, behind Go's "failed to parse config: " prefix.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};
use weft_cni_core::{gojson, parse_netconf, CniError, CniResult, NetConf, Result};

/// Go's `DefaultMarkBit`: Kubernetes uses 14 and 15, Calico 20-31.
pub const DEFAULT_MARK_BIT: u32 = 13;

/// The mark chain portmap manages itself when `externalSetMarkChain` is not given (the
/// iptables layer builds it; the config only names it).
pub const SETMARK_CHAIN: &str = "CNI-HOSTPORT-SETMARK";

/// iptables chain names are at most 28 characters.
const MAX_CHAIN_NAME: usize = 28;

/// `protocol` of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Sctp,
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sctp => "sctp",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// tcp, udp or sctp in any case; empty means tcp (runtimes often leave it out).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

/// One `runtimeConfig.portMappings` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    /// None for a missing or empty `hostIP`. An IPv4-mapped IPv6 address counts as IPv4, as
    /// Go's `To4()` does.
    pub host_ip: Option<IpAddr>,
}

impl PortMapping {
    /// Whether the mapping applies to a container address of this family: a `hostIP` of the
    /// other family skips it (Go: "only process the entry if host and container address
    /// families match").
    pub fn applies_to(&self, v6: bool) -> bool {
        match self.host_ip {
            None => true,
            Some(ip) => ip.is_ipv6() == v6,
        }
    }

    /// The destination address to match, if any: 0.0.0.0 and :: mean "every local address".
    pub fn dest_ip(&self) -> Option<IpAddr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }
}

/// The netfilter API (firewall's one Backend enum).
pub use weft_firewall::Backend;

#[derive(Debug, Clone)]
pub struct PortMapConf {
    pub cni_version: String,
    pub name: String,
    /// The `backend` key; None without one: iptables unless iptables is unusable and nft is
    /// usable. The probe costs an exec, so it is made only when needed (see [`resolve_auto`]).
    pub backend: Option<Backend>,
    pub snat: bool,
    pub masq_all: bool,
    pub mark_masq_bit: u32,
    pub external_set_mark_chain: Option<String>,
    pub conditions_v4: Option<Vec<String>>,
    pub conditions_v6: Option<Vec<String>>,
    pub mappings: Vec<PortMapping>,
    /// The raw prevResult, if any.
    pub prev_result: Option<Value>,
    /// prevResult parsed (in the 1.1.0 model).
    pub result: Option<CniResult>,
    /// The container's addresses chosen from prevResult (Go `ContIPv4` / `ContIPv6`).
    pub cont_ipv4: Option<IpNetwork>,
    pub cont_ipv6: Option<IpNetwork>,
    /// The base config, for GC (valid attachments).
    pub netconf: NetConf,
}

impl PortMapConf {
    pub fn version(&self) -> &str {
        if self.cni_version.is_empty() {
            weft_cni_core::DEFAULT_VERSION
        } else {
            &self.cni_version
        }
    }

    /// The conditions for a family, if any were given and non-empty.
    pub fn conditions(&self, v6: bool) -> &[String] {
        let c = if v6 {
            &self.conditions_v6
        } else {
            &self.conditions_v4
        };
        c.as_deref().unwrap_or_default()
    }

    /// The chain the hairpin/localhost rules jump to.
    pub fn set_mark_chain(&self) -> &str {
        self.external_set_mark_chain
            .as_deref()
            .unwrap_or(SETMARK_CHAIN)
    }

    /// Whether this conf manages CNI-HOSTPORT-SETMARK / CNI-HOSTPORT-MASQ itself.
    pub fn own_mark_chains(&self) -> bool {
        self.snat && self.external_set_mark_chain.is_none()
    }

    /// The container addresses that get rules: v4 first, as in Go.
    pub fn container_nets(&self) -> Vec<IpNetwork> {
        self.cont_ipv4.into_iter().chain(self.cont_ipv6).collect()
    }
}

/// Where the error happened, for the "failed to parse config: " prefix Go puts on ADD and DEL
/// (CHECK returns parseConfig's error bare).
fn parse_error(msg: impl Into<String>) -> CniError {
    CniError::InvalidConfig(format!("failed to parse config: {}", msg.into()))
}

/// Reads the config on stdin. `ifname` selects the container addresses from prevResult.
/// `prefix` adds Go's "failed to parse config: " to config errors (ADD, DEL).
pub fn load(stdin: &[u8], ifname: &str, prefix: bool) -> Result<PortMapConf> {
    let netconf = parse_netconf(stdin)?;
    let wrap = |e: CniError| -> CniError {
        if !prefix {
            return e;
        }
        match e {
            CniError::InvalidConfig(m) => parse_error(m),
            other => other,
        }
    };
    parse(netconf, ifname).map_err(wrap)
}

/// DEL's reading of the config: a DEL must not get stuck on a config the runtime can no longer
/// fix, and it does not need the mappings (the rules are found by chain name and comment). So
/// anything wrong past the shared keys is logged and replaced by the defaults.
pub fn load_lenient(stdin: &[u8], ifname: &str) -> Result<PortMapConf> {
    let netconf = parse_netconf(stdin)?;
    match parse(netconf.clone(), ifname) {
        Ok(c) => Ok(c),
        Err(e) => {
            eprintln!("portmap: DEL: ignoring invalid settings: {}", e.msg());
            Ok(PortMapConf {
                cni_version: netconf.cni_version.clone(),
                name: netconf.name.clone(),
                backend: None,
                snat: true,
                masq_all: false,
                mark_masq_bit: DEFAULT_MARK_BIT,
                external_set_mark_chain: None,
                conditions_v4: None,
                conditions_v6: None,
                mappings: Vec::new(),
                prev_result: None,
                result: None,
                cont_ipv4: None,
                cont_ipv6: None,
                netconf,
            })
        }
    }
}

fn parse(netconf: NetConf, ifname: &str) -> Result<PortMapConf> {
    let extra = &netconf.extra;
    let result = netconf
        .parsed_prev_result()
        .map_err(|e| CniError::InvalidConfig(e.msg()))?;

    let snat = get_bool(extra, "snat")?.unwrap_or(true);
    let masq_all = get_bool(extra, "masqAll")?.unwrap_or(false);
    let mark_bit = get_int(extra, "markMasqBit")?;
    let external = get_string(extra, "externalSetMarkChain")?;
    if mark_bit.is_some() && external.is_some() {
        return Err(CniError::InvalidConfig(
            "Cannot specify externalSetMarkChain and markMasqBit".into(),
        ));
    }
    let mark_masq_bit = match mark_bit {
        None => DEFAULT_MARK_BIT,
        Some(b @ 0..=31) => b as u32,
        Some(_) => {
            return Err(CniError::InvalidConfig(
                "MasqMarkBit must be between 0 and 31".into(),
            ))
        }
    };
    if let Some(chain) = &external {
        validate_chain_name(chain)?;
    }
    let conditions_v4 = get_strings(extra, "conditionsV4")?;
    let conditions_v6 = get_strings(extra, "conditionsV6")?;
    let backend_key = get_string(extra, "backend")?;
    let backend = validate_backend(
        backend_key.as_deref(),
        external.is_some(),
        &conditions_v4,
        &conditions_v6,
    )?;
    for c in [&conditions_v4, &conditions_v6].into_iter().flatten() {
        match backend {
            Some(Backend::Nftables) => validate_nft_conditions(c)?,
            _ => validate_iptables_conditions(c)?,
        }
    }
    let mappings = parse_mappings(&netconf.runtime_config)?;

    let (cont_ipv4, cont_ipv6) = match &result {
        Some(r) => container_ips(r, ifname),
        None => (None, None),
    };
    Ok(PortMapConf {
        cni_version: netconf.cni_version.clone(),
        name: netconf.name.clone(),
        backend,
        snat,
        masq_all,
        mark_masq_bit,
        external_set_mark_chain: external,
        conditions_v4,
        conditions_v6,
        mappings,
        prev_result: netconf.prev_result.clone(),
        result,
        cont_ipv4,
        cont_ipv6,
        netconf,
    })
}

/// Go's `validateBackend` + the `unrecognized backend` check. Options of the other backend are
/// an error. With no `backend` key the choice depends on which tools work, which is only probed
/// here if the config carries backend-specific options (otherwise the None of no choice is
/// resolved lazily by the caller).
fn validate_backend(
    requested: Option<&str>,
    has_external_chain: bool,
    v4: &Option<Vec<String>>,
    v6: &Option<Vec<String>>,
) -> Result<Option<Backend>> {
    let mut iptables_opts: Vec<&str> = Vec::new();
    let mut nft_opts: Vec<&str> = Vec::new();
    if has_external_chain {
        iptables_opts.push("externalSetMarkChain");
    }
    for (key, conds) in [("conditionsV4", v4), ("conditionsV6", v6)] {
        match conditions_backend(conds) {
            Some(Backend::Iptables) => iptables_opts.push(key),
            Some(_) => nft_opts.push(key),
            None => {}
        }
    }
    let choice = match requested {
        Some("iptables") => Some(Backend::Iptables),
        Some("nftables") => Some(Backend::Nftables),
        None if iptables_opts.is_empty() && nft_opts.is_empty() => None,
        None => Some(resolve_auto()),
        Some(other) => {
            // Go checks the options first, treating any other name as "not iptables".
            if !iptables_opts.is_empty() {
                return Err(CniError::InvalidConfig(format!(
                    "{other} backend was requested but configuration contains iptables-specific options {}",
                    gojson::plain_list(&iptables_opts)
                )));
            }
            return Err(CniError::InvalidConfig(format!(
                "unrecognized backend {}",
                gojson::quote(other)
            )));
        }
    };
    let (name, wrong, opts) = match choice {
        Some(Backend::Nftables) => ("nftables", "iptables", &iptables_opts),
        _ => ("iptables", "nftables", &nft_opts),
    };
    if !opts.is_empty() {
        return Err(CniError::InvalidConfig(format!(
            "{name} backend was requested but configuration contains {wrong}-specific options {}",
            gojson::plain_list(opts)
        )));
    }
    Ok(choice)
}

/// Go's default: iptables unless iptables is unusable and nft is usable.
pub fn resolve_auto() -> Backend {
    match weft_firewall::select_backend(None) {
        Ok(Backend::Nftables) => Backend::Nftables,
        _ => Backend::Iptables,
    }
}

/// Go's `detectBackendOfConditions`: a first token starting with `-` (or `!`, as in
/// `! -d 10.0.0.1`) is iptables syntax, anything else nft; none or an empty first token says
/// nothing.
fn conditions_backend(conds: &Option<Vec<String>>) -> Option<Backend> {
    let first = conds.as_ref()?.first()?;
    match first.chars().next()? {
        '-' | '!' => Some(Backend::Iptables),
        _ => Some(Backend::Nftables),
    }
}

/// nft conditions are spliced into an nft script as they are. They may use quotes and sets,
/// but nothing that ends or comments out the rule (a newline, `;`, `#`) or leaves a string
/// open (which would swallow the following lines).
fn validate_nft_conditions(conds: &[String]) -> Result<()> {
    for c in conds {
        let bad = c.chars().any(|ch| matches!(ch, '\n' | '\r' | ';' | '#'))
            || c.matches('"').count() % 2 == 1;
        if bad {
            return Err(CniError::InvalidConfig(format!(
                "invalid nftables condition {}: newlines, ';', '#' and unbalanced quotes are not allowed",
                gojson::quote(c)
            )));
        }
    }
    Ok(())
}

/// iptables conditions are argv words; in an iptables-restore batch a line break would end
/// the rule and start another command, so control characters are refused.
fn validate_iptables_conditions(conds: &[String]) -> Result<()> {
    for c in conds {
        if c.chars().any(char::is_control) {
            return Err(CniError::InvalidConfig(format!(
                "invalid iptables condition {}: control characters are not allowed",
                gojson::quote(c)
            )));
        }
    }
    Ok(())
}

fn validate_chain_name(chain: &str) -> Result<()> {
    let ok = !chain.is_empty()
        && chain.len() <= MAX_CHAIN_NAME
        && !chain.starts_with('-')
        && chain.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CniError::InvalidConfig(format!(
            "invalid externalSetMarkChain {}: must be an iptables chain name (1-{MAX_CHAIN_NAME} printable characters)",
            gojson::quote(chain)
        )))
    }
}

/// `runtimeConfig.portMappings`, validated. Go's own checks (container port, then host port,
/// "> 0") come first with Go's wording; the range and protocol checks are weft's.
fn parse_mappings(runtime_config: &Map<String, Value>) -> Result<Vec<PortMapping>> {
    let items = match gojson::field(runtime_config, "portMappings") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(CniError::InvalidConfig(format!(
                "invalid value {} for runtimeConfig.portMappings: expected an array",
                short(other)
            )))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(parse_mapping(i, item)?);
    }
    Ok(out)
}

fn parse_mapping(i: usize, item: &Value) -> Result<PortMapping> {
    let field = |name: &str| format!("runtimeConfig.portMappings[{i}].{name}");
    let Value::Object(obj) = item else {
        return Err(CniError::InvalidConfig(format!(
            "invalid value {} for runtimeConfig.portMappings[{i}]: expected an object",
            short(item)
        )));
    };
    let int = |name: &str| -> Result<i64> {
        match gojson::field(obj, name) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v.as_i64().ok_or_else(|| {
                CniError::InvalidConfig(format!(
                    "invalid value {} for {}: expected an integer",
                    short(v),
                    field(name)
                ))
            }),
        }
    };
    let text = |name: &str| -> Result<String> {
        match gojson::field(obj, name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(CniError::InvalidConfig(format!(
                "invalid value {} for {}: expected a string",
                short(v),
                field(name)
            ))),
        }
    };
    let container_port = int("containerPort")?;
    let host_port = int("hostPort")?;
    let port = |value: i64, name: &str, go_name: &str| -> Result<u16> {
        if value <= 0 {
            return Err(CniError::InvalidConfig(format!(
                "Invalid {go_name} port number: {value} ({} must be between 1 and 65535)",
                field(name)
            )));
        }
        u16::try_from(value).map_err(|_| {
            CniError::InvalidConfig(format!(
                "Invalid {go_name} port number: {value} ({} must be between 1 and 65535)",
                field(name)
            ))
        })
    };
    let container_port = port(container_port, "containerPort", "container")?;
    let host_port = port(host_port, "hostPort", "host")?;
    let proto_text = text("protocol")?;
    let protocol = Protocol::parse(&proto_text).ok_or_else(|| {
        CniError::InvalidConfig(format!(
            "invalid protocol {} in {}: must be tcp, udp or sctp",
            gojson::quote(&proto_text),
            field("protocol")
        ))
    })?;
    let host_ip_text = text("hostIP")?;
    let host_ip = if host_ip_text.is_empty() {
        None
    } else {
        let ip: IpAddr = host_ip_text.parse().map_err(|_| {
            CniError::InvalidConfig(format!(
                "invalid IP address {} in {}",
                gojson::quote(&host_ip_text),
                field("hostIP")
            ))
        })?;
        Some(canonical_ip(ip))
    };
    Ok(PortMapping {
        host_port,
        container_port,
        protocol,
        host_ip,
    })
}

/// ::ffff:a.b.c.d is IPv4 for Go (`To4()`), so it is for us.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Go's container address choice: per family, the first IP whose interface index points at
/// an interface named `ifname` that has a sandbox. IPs without an index (or with an index out
/// of range) qualify too.
pub fn container_ips(result: &CniResult, ifname: &str) -> (Option<IpNetwork>, Option<IpNetwork>) {
    let mut v4 = None;
    let mut v6 = None;
    for ip in &result.ips {
        let is_v4 = ip.address.is_ipv4();
        if (is_v4 && v4.is_some()) || (!is_v4 && v6.is_some()) {
            continue;
        }
        if let Some(idx) = ip.interface {
            if let Some(intf) = result.interfaces.get(idx) {
                if intf.name != ifname || intf.sandbox.is_empty() {
                    continue;
                }
            }
        }
        if is_v4 {
            v4 = Some(ip.address);
        } else {
            v6 = Some(ip.address);
        }
    }
    (v4, v6)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 64 {
        let mut cut = 64;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

fn type_error(key: &str, v: &Value, want: &str) -> CniError {
    CniError::InvalidConfig(format!(
        "invalid value {} for \"{key}\": expected {want}",
        short(v)
    ))
}

fn get_bool(m: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match gojson::field(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(type_error(key, v, "a boolean")),
    }
}

fn get_int(m: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match gojson::field(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| type_error(key, v, "an integer")),
    }
}

fn get_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match gojson::field(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(type_error(key, v, "a string")),
    }
}

fn get_strings(m: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>> {
    match gojson::field(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(type_error(key, other, "an array of strings")),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(v) => Err(type_error(key, v, "an array of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str) -> Result<PortMapConf> {
        load(json.as_bytes(), "eth0", true)
    }

    #[test]
    fn camel_and_pascal_case_mappings_are_the_same() {
        let camel = conf(
            r#"{"name":"n","cniVersion":"1.0.0","backend":"iptables","runtimeConfig":{"portMappings":[
                {"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"10.0.0.1"}]}}"#,
        )
        .unwrap();
        let pascal = conf(
            r#"{"name":"n","cniVersion":"1.0.0","backend":"iptables","RuntimeConfig":{"PortMappings":[
                {"HostPort":8080,"ContainerPort":80,"Protocol":"TCP","HostIP":"10.0.0.1"}]}}"#,
        )
        .unwrap();
        assert_eq!(camel.mappings, pascal.mappings);
        assert_eq!(camel.mappings.len(), 1);
        assert_eq!(camel.mappings[0].host_ip, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn defaults() {
        let c = conf(r#"{"name":"n","backend":"iptables"}"#).unwrap();
        assert!(c.snat);
        assert!(!c.masq_all);
        assert_eq!(c.mark_masq_bit, 13);
        assert!(c.mappings.is_empty());
        assert_eq!(c.version(), "0.1.0");
        let c = conf(
            r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":2}]}}"#,
        )
        .unwrap();
        assert_eq!(c.mappings[0].protocol, Protocol::Tcp);
        assert_eq!(c.backend, None);
    }

    #[test]
    fn port_errors_name_the_field() {
        let e = conf(
            r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(
            e.msg()
                .starts_with("failed to parse config: Invalid host port number: 0"),
            "{}",
            e.msg()
        );
        assert!(e.msg().contains("portMappings[0].hostPort"));
        let e = conf(r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":80},{"hostPort":70000,"containerPort":80}]}}"#)
            .unwrap_err();
        assert!(
            e.msg().contains("Invalid host port number: 70000"),
            "{}",
            e.msg()
        );
        assert!(e.msg().contains("portMappings[1].hostPort"));
        let e = conf(
            r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":-1}]}}"#,
        )
        .unwrap_err();
        assert!(
            e.msg().contains("Invalid container port number: -1"),
            "{}",
            e.msg()
        );
        let e = conf(r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":"80","containerPort":80}]}}"#)
            .unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(e.msg().contains("portMappings[0].hostPort"), "{}", e.msg());
        let e = conf(r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":1,"protocol":"icmp"}]}}"#)
            .unwrap_err();
        assert!(
            e.msg()
                .contains(r#"invalid protocol "icmp" in runtimeConfig.portMappings[0].protocol"#),
            "{}",
            e.msg()
        );
        let e = conf(r#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":1,"hostIP":"1.2.3"}]}}"#)
            .unwrap_err();
        assert!(e.msg().contains("portMappings[0].hostIP"), "{}", e.msg());
    }

    #[test]
    fn mark_options() {
        let e = conf(r#"{"name":"n","markMasqBit":5,"externalSetMarkChain":"X"}"#).unwrap_err();
        assert_eq!(
            e.msg(),
            "failed to parse config: Cannot specify externalSetMarkChain and markMasqBit"
        );
        let e = conf(r#"{"name":"n","markMasqBit":32}"#).unwrap_err();
        assert_eq!(
            e.msg(),
            "failed to parse config: MasqMarkBit must be between 0 and 31"
        );
        let c = conf(r#"{"name":"n","markMasqBit":0,"backend":"iptables"}"#).unwrap();
        assert_eq!(c.mark_masq_bit, 0);
    }

    #[test]
    fn backend_options_of_the_other_backend_are_errors() {
        let e = conf(r#"{"name":"n","backend":"iptables","conditionsV4":["aaa","bbbb"],"conditionsV6":["ccc"]}"#)
            .unwrap_err();
        assert_eq!(
            e.msg(),
            "failed to parse config: iptables backend was requested but configuration contains nftables-specific options [conditionsV4 conditionsV6]"
        );
        let e = conf(r#"{"name":"n","backend":"nftables","externalSetMarkChain":"KUBE-MARK-MASQ","conditionsV4":["-a","b"],"conditionsV6":["-c","d"]}"#)
            .unwrap_err();
        assert_eq!(
            e.msg(),
            "failed to parse config: nftables backend was requested but configuration contains iptables-specific options [externalSetMarkChain conditionsV4 conditionsV6]"
        );
        let e = conf(r#"{"name":"n","backend":"ebpf"}"#).unwrap_err();
        assert_eq!(
            e.msg(),
            r#"failed to parse config: unrecognized backend "ebpf""#
        );
        let c = conf(r#"{"name":"n","backend":"nftables","conditionsV4":["ip","daddr","!=","{ 127.0.0.0/8 }"]}"#)
            .unwrap();
        assert_eq!(c.backend, Some(Backend::Nftables));
        let e = conf(r#"{"name":"n","backend":"nftables","conditionsV4":["ip daddr 1.1.1.1; flush ruleset"]}"#)
            .unwrap_err();
        assert_eq!(e.code(), 7);
        let e = conf(r#"{"name":"n","backend":"nftables","conditionsV4":["iifname \"eth0"]}"#)
            .unwrap_err();
        assert_eq!(e.code(), 7);
        let e = conf(r#"{"name":"n","backend":"iptables","conditionsV4":["-s","1.2.3.4\n-F"]}"#)
            .unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(
            e.msg().contains("invalid iptables condition"),
            "{}",
            e.msg()
        );
    }

    #[test]
    fn container_ip_selection_follows_go() {
        // From Go's portmap_test.go: the v4 on the host interface is skipped.
        let c = load(
            br#"{"name":"test","cniVersion":"1.0.0","backend":"iptables","prevResult":{"cniVersion":"1.0.0",
              "interfaces":[{"name":"host"},{"name":"container","sandbox":"netns"}],
              "ips":[{"address":"10.0.0.1/24","gateway":"10.0.0.1","interface":0},
                     {"address":"2001:db8:1::2/64","gateway":"2001:db8:1::1","interface":1},
                     {"address":"10.0.0.2/24","gateway":"10.0.0.1","interface":1}]}}"#,
            "container",
            true,
        )
        .unwrap();
        assert_eq!(c.cont_ipv4.unwrap().to_string(), "10.0.0.2/24");
        assert_eq!(c.cont_ipv6.unwrap().to_string(), "2001:db8:1::2/64");
        // No interface index at all qualifies.
        let c = load(
            br#"{"name":"test","cniVersion":"1.0.0","backend":"iptables","prevResult":{"cniVersion":"1.0.0",
              "interfaces":[{"name":"host"}],"ips":[{"address":"10.0.0.1/24"}]}}"#,
            "eth0",
            true,
        )
        .unwrap();
        assert_eq!(c.cont_ipv4.unwrap().to_string(), "10.0.0.1/24");
        assert!(c.cont_ipv6.is_none());
    }

    #[test]
    fn mapped_v4_host_ip_is_v4() {
        let c = conf(r#"{"name":"n","backend":"iptables","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":1,"hostIP":"::ffff:10.1.2.3"}]}}"#)
            .unwrap();
        assert_eq!(c.mappings[0].host_ip, Some("10.1.2.3".parse().unwrap()));
        assert!(c.mappings[0].applies_to(false));
        assert!(!c.mappings[0].applies_to(true));
    }
}
