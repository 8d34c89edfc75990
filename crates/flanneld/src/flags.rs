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

    /// Path to the network configuration file, read by the Kubernetes subnet
    /// manager only. In etcd mode the config is `<etcd-prefix>/config`, as in
    /// Go, and a path given here is ignored with a warning
    /// [default in kube mode: /etc/kube-flannel/net-conf.json].
    #[arg(long, env = "FLANNELD_NET_CONFIG_PATH")]
    pub net_config_path: Option<String>,

    /// Contact the Kubernetes API for subnet assignment instead of etcd.
    #[arg(long, env = "FLANNELD_KUBE_SUBNET_MGR", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub kube_subnet_mgr: bool,

    /// Kubernetes API server URL (not needed in a cluster; with
    /// --kubeconfig-file it replaces the file's server).
    #[arg(long, env = "FLANNELD_KUBE_API_URL", default_value = "")]
    pub kube_api_url: String,

    /// kubeconfig file location (not needed in a cluster; $KUBECONFIG is not read).
    #[arg(long, env = "FLANNELD_KUBECONFIG_FILE", default_value = "")]
    pub kubeconfig_file: String,

    /// Kubernetes annotation prefix.
    #[arg(
        long,
        env = "FLANNELD_KUBE_ANNOTATION_PREFIX",
        default_value = "flannel.alpha.coreos.com"
    )]
    pub kube_annotation_prefix: String,

    /// Set the NetworkUnavailable condition of the node to False once the
    /// network is up (kube mode).
    #[arg(long, env = "FLANNELD_SET_NODE_NETWORK_UNAVAILABLE", default_value = "true",
          num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool,
          action = ArgAction::Set)]
    pub set_node_network_unavailable: bool,

    /// Log level for V logs (0: info; 1-3: debug; 4+: trace).
    #[arg(short = 'v', long = "v", env = "FLANNELD_V", default_value_t = 0)]
    pub v: u32,

    /// klog's comma-separated list of pattern=N settings for file-filtered
    /// logging. The patterns are matched against weft's source file names
    /// (daemon, vxlan, registry, ...); Go's file names match nothing here,
    /// which is logged.
    #[arg(long = "vmodule", env = "FLANNELD_VMODULE", default_value = "",
          value_parser = crate::logging::check_vmodule)]
    pub vmodule: String,

    /// klog's file:N: emit a stack trace when logging hits that line.
    /// Accepted and checked as klog does; it has no effect (logged).
    #[arg(long = "log_backtrace_at", env = "FLANNELD_LOG_BACKTRACE_AT", default_value = "",
          value_parser = crate::logging::check_backtrace_at)]
    pub log_backtrace_at: String,

    /// Log line format: "text" (timestamp, level, message) or "klog"
    /// (`I1202 13:42:06.123456    1234 daemon.rs:270] ...`, the lines of Go
    /// flanneld, for tools that grep kube-flannel logs). weft only.
    #[arg(long, env = "FLANNELD_LOG_FORMAT", default_value = "text",
          value_parser = ["text", "klog"])]
    pub log_format: String,

    /// Print version and exit.
    #[arg(long, env = "FLANNELD_VERSION", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub version: bool,
}

/// The warning for `--net-config-path` in etcd mode (Go's etcd subnet
/// manager never reads that file either), or None when it is not given.
pub fn net_config_path_warning(opts: &Opts) -> Option<String> {
    if opts.kube_subnet_mgr {
        return None;
    }
    opts.net_config_path.as_ref().map(|p| {
        format!(
            "--net-config-path={p} is ignored in etcd mode: the network config is read from \
             {}/config in etcd, as Go flanneld does (the file is for --kube-subnet-mgr)",
            opts.etcd_prefix.trim_end_matches('/')
        )
    })
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
    fn net_config_path_is_only_a_warning_in_etcd_mode() {
        assert_eq!(net_config_path_warning(&parse(&[])), None);
        let o = parse(&["--net-config-path=/etc/kube-flannel/net-conf.json"]);
        let w = net_config_path_warning(&o).unwrap();
        assert!(
            w.contains("--net-config-path=/etc/kube-flannel/net-conf.json is ignored in etcd mode"),
            "{w}"
        );
        assert!(w.contains("/coreos.com/network/config"), "{w}");
        let o = parse(&["--net-config-path=/x.json", "--kube-subnet-mgr"]);
        assert_eq!(net_config_path_warning(&o), None);
    }

    #[test]
    fn klog_flags_are_accepted() {
        // kube-flannel manifests pass klog's flags; Go flanneld copies v,
        // vmodule and log_backtrace_at from klog.
        let o = parse(&[
            "--v=4",
            "--vmodule=vxlan=4,registry=2",
            "-log_backtrace_at=main.go:123",
        ]);
        assert_eq!(o.v, 4);
        assert_eq!(o.vmodule, "vxlan=4,registry=2");
        assert_eq!(o.log_backtrace_at, "main.go:123");
        let o = parse(&["-vmodule", "daemon=1", "--log_backtrace_at="]);
        assert_eq!(o.vmodule, "daemon=1");
        assert_eq!(o.log_backtrace_at, "");
        // klog's syntax errors are still errors (Go exits 2 on them).
        let bad = |args: &[&str]| {
            let v = normalize_args(
                std::iter::once("flanneld".to_string()).chain(args.iter().map(|s| s.to_string())),
            );
            Opts::try_parse_from(v).unwrap_err().to_string()
        };
        assert!(bad(&["--vmodule=vxlan"]).contains("expect comma-separated list of filename=N"));
        assert!(bad(&["--vmodule=vxlan=-1"]).contains("negative value for vmodule level"));
        assert!(bad(&["--log_backtrace_at=main:12"]).contains("expect file.go:234"));
        assert!(bad(&["--log_backtrace_at=main.go:0"]).contains("negative or zero"));
        assert_eq!(parse(&["--log-format=klog"]).log_format, "klog");
        assert!(bad(&["--log-format=json"]).contains("json"));
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("T"), Ok(true));
        assert_eq!(parse_go_bool("0"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
    }
}
