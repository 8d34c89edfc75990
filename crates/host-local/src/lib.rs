//! host-local: the IPAM plugin that hands out addresses from configured
//! ranges and records them on disk, a drop-in for the Go plugin of the same
//! name (same config, same results, same files, same lock).
//!
//! All the work is in weft-ipam; this binary maps CNI verbs onto it.

use serde_json::Value;
use weft_cni_core::{
    parse_cni_args, parse_netconf, plugin_main, CmdArgs, CniError, CniResult, Dns, IpConfig,
    Plugin, Result, Route, CURRENT_VERSION, DEFAULT_VERSION,
};
use weft_ipam::{AddResult, IpamConfig, IpamError};

pub struct HostLocal;

/// Keeps the code chosen by weft-ipam.
fn cni_error(e: IpamError) -> CniError {
    CniError::from_code(e.code(), e.msg(), "")
}

/// Parses stdin and the `IP` of CNI_ARGS (Go: `LoadIPAMConfig`).
fn load(args: &CmdArgs) -> Result<IpamConfig> {
    let env = parse_cni_args(&args.args, &["IP"])
        .map_err(|e| CniError::InvalidEnv(e.msg().to_string()))?;
    weft_ipam::load_config(&args.stdin, env.get("IP").map(String::as_str)).map_err(cni_error)
}

/// The IPAM result: addresses, routes and DNS, no interfaces.
fn to_result(res: AddResult) -> CniResult {
    let ips = res
        .ips
        .iter()
        .map(|a| IpConfig::new(a.address, Some(a.gateway), None))
        .collect();
    let routes = res
        .routes
        .iter()
        .map(|r| Route {
            mtu: r.mtu,
            advmss: r.advmss,
            priority: r.priority,
            table: r.table,
            scope: r.scope,
            ..Route::new(r.dst, r.gw)
        })
        .collect();
    let dns = res
        .dns
        .map(|d| Dns {
            nameservers: d.nameservers,
            domain: d.domain,
            search: d.search,
            options: d.options,
        })
        .unwrap_or_default();
    CniResult {
        cni_version: CURRENT_VERSION.to_string(),
        ips,
        routes,
        dns,
        ..CniResult::default()
    }
}

impl Plugin for HostLocal {
    fn add(&self, args: &CmdArgs) -> Result<Value> {
        let conf = load(args)?;
        let res = weft_ipam::add(&conf, &args.container_id, &args.ifname).map_err(cni_error)?;
        let version = if conf.cni_version.is_empty() {
            DEFAULT_VERSION
        } else {
            conf.cni_version.as_str()
        };
        to_result(res).to_value(version)
    }

    fn del(&self, args: &CmdArgs) -> Result<()> {
        let conf = load(args)?;
        weft_ipam::del(&conf, &args.container_id, &args.ifname).map_err(cni_error)
    }

    fn check(&self, args: &CmdArgs) -> Result<()> {
        let conf = load(args)?;
        weft_ipam::check(&conf, &args.container_id, &args.ifname).map_err(cni_error)
    }

    fn gc(&self, args: &CmdArgs) -> Result<()> {
        let conf = load(args)?;
        // cni-core's GC rule (the skeleton has already refused a request without the list).
        let valid: Vec<weft_ipam::Attachment> = parse_netconf(&args.stdin)?
            .valid_attachments()?
            .into_iter()
            .map(|(container_id, ifname)| weft_ipam::Attachment {
                container_id,
                ifname,
            })
            .collect();
        weft_ipam::gc(&conf, &valid).map(drop).map_err(cni_error)
    }

    fn status(&self, args: &CmdArgs) -> Result<()> {
        let conf = load(args)?;
        weft_ipam::status(&conf).map_err(cni_error)
    }
}

/// The `host-local` binary (or the multicall binary run as `host-local`).
pub fn main() -> ! {
    plugin_main(HostLocal, "host-local")
}
