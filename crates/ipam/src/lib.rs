//! weft-ipam: the host-local IPAM plugin as a library.
//!
//! Configuration ([`load_config`]), the round-robin allocator
//! ([`allocate`]) and the on-disk store ([`Store`]) reproduce the Go
//! plugin (`containernetworking/plugins`, `plugins/ipam/host-local`) down to
//! the bytes on disk, so the two can share one data directory, even at the
//! same time. The command functions ([`add`], [`del`], [`check`], [`gc`],
//! [`status`]) are what the `host-local` binary runs; each takes the lock
//! once for the whole command.

mod allocator;
mod config;
mod dns;
mod error;
pub mod ip;
mod range;
mod store;

use std::net::IpAddr;

pub use allocator::{allocate, Allocation, RangeIter};
pub use config::{load_config, Attachment, IpamConfig, RouteConf, DEFAULT_DATA_DIR};
pub use dns::{parse_resolv_conf, parse_resolv_text, DnsConf};
pub use error::{IpamError, Result};
pub use range::{Range, RangeConf, RangeSet};
pub use store::{
    reservation_key, LockedStore, Owner, Reservation, Store, LAST_IP_FILE_PREFIX, LINE_BREAK,
    LOCK_FILE,
};

/// What ADD hands back: one address per range set, plus routes and DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddResult {
    /// One allocation per range set, in set order.
    pub ips: Vec<Allocation>,
    /// `ipam.routes`, as configured.
    pub routes: Vec<RouteConf>,
    /// From `resolvConf`, when set.
    pub dns: Option<DnsConf>,
}

/// ADD: one address from every range set for `id`/`ifname`. Requested
/// addresses go to the set containing them. If any set fails, the
/// addresses already taken by this ADD are released again.
pub fn add(conf: &IpamConfig, id: &str, ifname: &str) -> Result<AddResult> {
    let dns = conf
        .resolv_conf
        .as_deref()
        .map(parse_resolv_conf)
        .transpose()?;
    let store = Store::open(&conf.data_dir, &conf.name)?.lock()?;

    let mut requested: Vec<IpAddr> = conf.requested_ips.clone();
    let mut ips: Vec<Allocation> = Vec::with_capacity(conf.ranges.len());
    for (idx, set) in conf.ranges.iter().enumerate() {
        let wanted = requested
            .iter()
            .position(|ip| set.contains(*ip))
            .map(|pos| requested.remove(pos));
        match allocate(&store, set, idx, id, ifname, wanted) {
            Ok(alloc) => ips.push(alloc),
            Err(e) => {
                rollback(&store, &ips, id, ifname);
                return Err(e.context(&format!("failed to allocate for range {idx}")));
            }
        }
    }
    if !requested.is_empty() {
        rollback(&store, &ips, id, ifname);
        let list: Vec<String> = requested.iter().map(IpAddr::to_string).collect();
        return Err(IpamError::Failed(format!(
            "failed to allocate all requested IPs: {}",
            list.join(" ")
        )));
    }
    Ok(AddResult {
        ips,
        routes: conf.routes.clone(),
        dns,
    })
}

/// Releases exactly the addresses this ADD took. (Go releases everything
/// the container holds, which also drops a reservation from an earlier,
/// successful ADD when a repeated ADD fails.)
fn rollback(store: &LockedStore, ips: &[Allocation], id: &str, ifname: &str) {
    for alloc in ips {
        if let Err(e) = store.release_ip(alloc.address.ip(), id, ifname) {
            eprintln!(
                "host-local: releasing {} after a failed ADD: {e}",
                alloc.address.ip()
            );
        }
    }
}

/// DEL: releases what `id`/`ifname` holds (or, failing that, legacy files
/// of the bare `id`). Nothing to release is success.
pub fn del(conf: &IpamConfig, id: &str, ifname: &str) -> Result<()> {
    let Some(store) = Store::open_existing(&conf.data_dir, &conf.name)? else {
        return Ok(());
    };
    store.lock()?.release_by_id(id, ifname).map(drop)
}

/// CHECK: `id`/`ifname` (or the legacy bare `id`) must hold an address.
pub fn check(conf: &IpamConfig, id: &str, ifname: &str) -> Result<()> {
    let found = match Store::open_existing(&conf.data_dir, &conf.name)? {
        Some(store) => store.lock()?.find_by_id(id, ifname)?,
        None => false,
    };
    if found {
        Ok(())
    } else {
        Err(IpamError::Failed(format!(
            "host-local: Failed to find address added by container {id}"
        )))
    }
}

/// GC: releases every reservation in this network's directory whose
/// holder is not among `valid`. Returns the released addresses.
pub fn gc(conf: &IpamConfig, valid: &[Attachment]) -> Result<Vec<IpAddr>> {
    match Store::open_existing(&conf.data_dir, &conf.name)? {
        Some(store) => store.lock()?.gc(valid),
        None => Ok(Vec::new()),
    }
}

/// STATUS: code 50 when no ADD could succeed: the data directory cannot be
/// created or written, or a range set has no free address left (every ADD
/// needs one address from every set).
pub fn status(conf: &IpamConfig) -> Result<()> {
    let unusable = |e: IpamError| {
        IpamError::NotAvailable(format!(
            "data directory {} is unusable: {}",
            conf.data_dir.join(&conf.name).display(),
            e.msg()
        ))
    };
    let store = Store::open(&conf.data_dir, &conf.name)
        .and_then(Store::lock)
        .map_err(unusable)?;
    store.probe_writable().map_err(unusable)?;

    let held = store.ip_names().map_err(unusable)?;
    let exhausted: Vec<String> = conf
        .ranges
        .iter()
        .enumerate()
        .filter(|(_, set)| {
            let used = held
                .iter()
                .filter(|(ip, _)| set.is_allocatable(*ip))
                .count() as u128;
            used >= set.capacity()
        })
        .map(|(idx, set)| format!("range set {idx} ({set})"))
        .collect();
    if exhausted.is_empty() {
        Ok(())
    } else {
        Err(IpamError::NotAvailable(format!(
            "no IP addresses available in {}",
            exhausted.join(", ")
        )))
    }
}
