//! weft flanneld: flannel's node agent with the etcd subnet manager and the
//! vxlan and host-gw backends, wire-compatible with Go flanneld (same etcd
//! keys and values, same subnet.env, same devices, routes and rules).
//!
//! Logs go to stderr. Exit status: 0 on SIGTERM/SIGINT (the dataplane stays
//! in place) and when our lease is deleted (like Go, so a supervisor
//! restarts us), 1 on fatal errors.

use weft_flanneld::{daemon, flags};

use clap::Parser;
use tracing::error;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn init_logging(v: u32) {
    let level = match v {
        0 => LevelFilter::INFO,
        1..=3 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // Our own events at the chosen level; libraries (tonic, h2) only warn.
    // The modules live in the weft_flanneld library, so that is their target.
    let filter = Targets::new()
        .with_target("weft_flanneld", level)
        .with_target("flanneld", level)
        .with_default(LevelFilter::WARN);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
}

fn main() {
    let args = flags::normalize_args(std::env::args());
    let opts = flags::Opts::parse_from(args);
    if opts.version {
        // Go flanneld prints its bare version to stderr; this one names the
        // build (weft, version, commit) on stdout, like the plugins' --version.
        println!("{}", weft_build_info::version_line("flanneld"));
        std::process::exit(0);
    }
    init_logging(opts.v);
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
