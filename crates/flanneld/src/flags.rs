//! Command-line flags: flannel's names and defaults (`main.go`), each also
//! settable as `FLANNELD_<NAME_IN_UPPER_SNAKE>` (a flag on the command line
//! wins over the environment, as with Go's `flagutil.SetFlagsFromEnv`).
//!
//! Go's `flag` package accepts `-name`, `--name`, `-name=value` and, for
//! booleans, a bare `-name` or `-name=false`; [`normalize_args`] turns the
//! single-dash long forms into clap's `--name` so systemd units written for
//! Go flanneld work unchanged.

use clap::{ArgAction, Parser};

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {s:?}")),
    }
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "flanneld",
    about = "weft flanneld: flannel's node agent (etcd subnet manager, vxlan and host-gw backends)",
    disable_version_flag = true
)]
pub struct Opts {
    /// A comma-delimited list of etcd endpoints.
    #[arg(
        long,
        env = "FLANNELD_ETCD_ENDPOINTS",
        default_value = "http://127.0.0.1:4001,http://127.0.0.1:2379"
    )]
    pub etcd_endpoints: String,

    /// etcd prefix.
    #[arg(
        long,
        env = "FLANNELD_ETCD_PREFIX",
        default_value = "/coreos.com/network"
    )]
    pub etcd_prefix: String,

    /// SSL key file used to secure etcd communication.
    #[arg(long, env = "FLANNELD_ETCD_KEYFILE", default_value = "")]
    pub etcd_keyfile: String,

    /// SSL certification file used to secure etcd communication.
    #[arg(long, env = "FLANNELD_ETCD_CERTFILE", default_value = "")]
    pub etcd_certfile: String,

    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long, env = "FLANNELD_ETCD_CAFILE", default_value = "")]
    pub etcd_cafile: String,

    /// Username for BasicAuth to etcd.
    #[arg(long, env = "FLANNELD_ETCD_USERNAME", default_value = "")]
    pub etcd_username: String,

    /// Password for BasicAuth to etcd.
    #[arg(long, env = "FLANNELD_ETCD_PASSWORD", default_value = "")]
    pub etcd_password: String,

    /// Interface to use (IP or name) for inter-host communication. Can be
    /// given several times; the first match wins.
    #[arg(long, env = "FLANNELD_IFACE", action = ArgAction::Append)]
    pub iface: Vec<String>,

    /// Regex of the interface to use (IPs are matched first, then names).
    /// Can be given several times.
    #[arg(long, env = "FLANNELD_IFACE_REGEX", action = ArgAction::Append)]
    pub iface_regex: Vec<String>,

    /// Use the interface of the route to this IP.
    #[arg(long, env = "FLANNELD_IFACE_CAN_REACH", default_value = "")]
    pub iface_can_reach: String,

    /// Filename where env variables (subnet, MTU, ...) will be written to.
    #[arg(
        long,
        env = "FLANNELD_SUBNET_FILE",
        default_value = "/run/flannel/subnet.env"
    )]
    pub subnet_file: String,

    /// IP accessible by other nodes for inter-host communication.
    #[arg(long, env = "FLANNELD_PUBLIC_IP", default_value = "")]
    pub public_ip: String,

    /// IPv6 accessible by other nodes for inter-host communication.
    #[arg(long, env = "FLANNELD_PUBLIC_IPV6", default_value = "")]
    pub public_ipv6: String,

    /// Subnet lease renewal margin, in minutes, ranging from 1 to 1439.
    #[arg(
        long,
        env = "FLANNELD_SUBNET_LEASE_RENEW_MARGIN",
        default_value_t = 60,
        allow_negative_numbers = true
    )]
    pub subnet_lease_renew_margin: i64,

    /// Set up IP masquerade rules for traffic leaving the overlay network.
    #[arg(long, env = "FLANNELD_IP_MASQ", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub ip_masq: bool,

    /// Do not use --random-fully in the MASQUERADE rules.
    #[arg(long, visible_alias = "ip-masq-random-fully-disable",
          env = "FLANNELD_IP_MASQ_FULLY_RANDOM_DISABLE", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool,
          action = ArgAction::Set)]
    pub ip_masq_fully_random_disable: bool,

    /// Resync period for iptables rules, in seconds.
    #[arg(long, env = "FLANNELD_IPTABLES_RESYNC", default_value_t = 5)]
    pub iptables_resync: u64,

    /// Add default accept rules to the FORWARD chain.
    #[arg(long, env = "FLANNELD_IPTABLES_FORWARD_RULES", default_value = "true",
          num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool,
          action = ArgAction::Set)]
    pub iptables_forward_rules: bool,

    /// Keep a blackhole route for the node's own subnet.
    #[arg(long, env = "FLANNELD_IP_BLACKHOLE_ROUTE", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool,
          action = ArgAction::Set)]
    pub ip_blackhole_route: bool,

    /// The IP address for the healthz server to listen on.
    #[arg(long, env = "FLANNELD_HEALTHZ_IP", default_value = "0.0.0.0")]
    pub healthz_ip: String,

    /// The port for the healthz server to listen on (0 to disable).
    #[arg(long, env = "FLANNELD_HEALTHZ_PORT", default_value_t = 0)]
    pub healthz_port: u16,

    /// Path to the network configuration file. In etcd mode (weft's only
    /// mode) it is read instead of `<etcd-prefix>/config` when given
    /// [default in kube mode: /etc/kube-flannel/net-conf.json].
    #[arg(long, env = "FLANNELD_NET_CONFIG_PATH")]
    pub net_config_path: Option<String>,

    /// Contact the Kubernetes API for subnet assignment instead of etcd
    /// (not supported by weft flanneld).
    #[arg(long, env = "FLANNELD_KUBE_SUBNET_MGR", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub kube_subnet_mgr: bool,

    /// Kubernetes-mode flags, accepted so that Go command lines parse.
    #[arg(long, env = "FLANNELD_KUBE_API_URL", default_value = "", hide = true)]
    pub kube_api_url: String,
    #[arg(
        long,
        env = "FLANNELD_KUBECONFIG_FILE",
        default_value = "",
        hide = true
    )]
    pub kubeconfig_file: String,
    #[arg(
        long,
        env = "FLANNELD_KUBE_ANNOTATION_PREFIX",
        default_value = "flannel.alpha.coreos.com",
        hide = true
    )]
    pub kube_annotation_prefix: String,
    #[arg(long, env = "FLANNELD_SET_NODE_NETWORK_UNAVAILABLE", default_value = "true",
          num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool,
          action = ArgAction::Set, hide = true)]
    pub set_node_network_unavailable: bool,

    /// Log level for V logs (0: info; 1-3: debug; 4+: trace).
    #[arg(short = 'v', long = "v", env = "FLANNELD_V", default_value_t = 0)]
    pub v: u32,

    /// Print version and exit.
    #[arg(long, env = "FLANNELD_VERSION", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub version: bool,
}

/// `-flag[=value]` → `--flag[=value]` for names longer than one letter, so
/// Go-style single-dash long flags parse. `-v=2` and `-v 2` stay as they are.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest_verbatim {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest_verbatim = true;
            out.push(a);
            continue;
        }
        let name_len = a
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-'))
            .map(|r| r.split('=').next().unwrap_or("").len());
        match name_len {
            Some(n) if n > 1 => out.push(format!("-{a}")),
            _ => out.push(a),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Opts {
        let v = normalize_args(
            std::iter::once("flanneld".to_string()).chain(args.iter().map(|s| s.to_string())),
        );
        Opts::try_parse_from(v).unwrap()
    }

    #[test]
    fn defaults() {
        let o = parse(&[]);
        assert_eq!(
            o.etcd_endpoints,
            "http://127.0.0.1:4001,http://127.0.0.1:2379"
        );
        assert_eq!(o.etcd_prefix, "/coreos.com/network");
        assert_eq!(o.subnet_file, "/run/flannel/subnet.env");
        assert_eq!(o.subnet_lease_renew_margin, 60);
        assert!(!o.ip_masq);
        assert!(o.iptables_forward_rules);
        assert_eq!(o.iptables_resync, 5);
        assert_eq!(o.healthz_ip, "0.0.0.0");
        assert_eq!(o.healthz_port, 0);
        assert_eq!(o.net_config_path, None);
    }

    #[test]
    fn go_style_flags() {
        let o = parse(&[
            "-iface=eth0",
            "--iface",
            "10.0.0.1",
            "-ip-masq",
            "--iptables-forward-rules=false",
            "-v=2",
            "-subnet-file",
            "/x/subnet.env",
        ]);
        assert_eq!(o.iface, vec!["eth0", "10.0.0.1"]);
        assert!(o.ip_masq);
        assert!(!o.iptables_forward_rules);
        assert_eq!(o.v, 2);
        assert_eq!(o.subnet_file, "/x/subnet.env");
        let o = parse(&["--ip-masq=false", "--subnet-lease-renew-margin=-5"]);
        assert!(!o.ip_masq);
        assert_eq!(o.subnet_lease_renew_margin, -5);
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("T"), Ok(true));
        assert_eq!(parse_go_bool("0"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
    }
}
