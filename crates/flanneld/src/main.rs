//! weft flanneld: flannel's node agent with the etcd subnet manager and the
//! vxlan and host-gw backends, wire-compatible with Go flanneld (same etcd
//! keys and values, same subnet.env, same devices, routes and rules).
//!
//! Logs go to stderr. Exit status: 0 on SIGTERM/SIGINT (the dataplane stays
//! in place) and when our lease is deleted (like Go, so a supervisor
//! restarts us), 1 on fatal errors.

use weft_flanneld::{daemon, flags, logging};

use clap::Parser;
use tracing::{error, info};

fn main() {
    let args = flags::normalize_args(std::env::args());
    let opts = flags::Opts::parse_from(args);
    if opts.version {
        // Go flanneld prints its bare version to stderr; this one names the
        // build (weft, version, commit) on stdout, like the plugins' --version.
        println!("{}", weft_build_info::version_line("flanneld"));
        std::process::exit(0);
    }
    for note in logging::init(&opts) {
        info!("{note}");
    }
    if !(1..24 * 60).contains(&opts.subnet_lease_renew_margin) {
        error!("Invalid subnet-lease-renew-margin option, out of acceptable range");
        std::process::exit(1);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(daemon::run(opts));
    // Worker threads (dataplane, link monitor, blocking pool) must not keep
    // the process alive.
    std::process::exit(code);
}
