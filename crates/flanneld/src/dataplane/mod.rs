//! The kernel side, on its own thread: netlink is synchronous (weft_netlink)
//! and one socket serves one thread, so every route/ARP/FDB change goes
//! through this thread, fed by a channel from the etcd watcher and the link
//! monitor. It keeps the set of remote leases and reconciles the kernel
//! against it at start, after a snapshot, when the device disappears and
//! every `period`.

pub mod backend;
pub mod hostgw;
pub mod vxlan;

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use tracing::{debug, info, warn};
use weft_netlink::{Handle, LinkEvent, LinkMonitor, Route, RTN_BLACKHOLE};

use crate::lease::Lease;

pub use backend::Backend;
pub use hostgw::HostGw;
pub use vxlan::VxlanDev;

/// What the dataplane thread is told.
#[derive(Debug)]
pub enum Cmd {
    /// The complete set of remote leases (after a listing): diff and reconcile.
    Snapshot(Vec<Lease>),
    /// A remote lease appeared or changed.
    Upsert(Lease),
    /// A remote lease is gone (deleted or expired); the key is the subnet key.
    Remove(String),
    /// A link was deleted (from the link monitor).
    LinkGone(String),
    /// Something changed underneath (underlay link event, lost netlink
    /// notifications): reconcile now.
    Resync,
}

/// The backend's kernel state (one per process, so variant sizes do not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Datapath {
    Vxlan {
        v4: Option<VxlanDev>,
        v6: Option<VxlanDev>,
    },
    HostGw(HostGw),
}

impl Datapath {
    /// Device names the link monitor must report.
    fn watched_links(&self) -> Vec<String> {
        match self {
            Datapath::Vxlan { v4, v6 } => v4
                .iter()
                .chain(v6.iter())
                .map(|d| d.cfg.name.clone())
                .collect(),
            Datapath::HostGw(_) => Vec::new(),
        }
    }

    fn upsert(&mut self, h: &Handle, old: Option<&Lease>, new: &Lease) {
        match self {
            Datapath::Vxlan { v4, v6 } => {
                for (dev, entry_of) in [
                    (v4.as_mut(), vxlan::entry_v4 as fn(&Lease) -> _),
                    (v6.as_mut(), vxlan::entry_v6),
                ] {
                    let Some(dev) = dev else { continue };
                    match entry_of(new) {
                        Some(e) => {
                            if let Err(err) = dev.add(h, &e) {
                                warn!("{err:#} (retried at the next resync)");
                            }
                        }
                        None => {
                            if let Some(old_e) = old.and_then(entry_of) {
                                dev.remove(h, &old_e);
                            }
                            if new.attrs.backend_type != crate::config::BACKEND_VXLAN {
                                warn!(
                                    "Ignoring non-vxlan v4Subnet({}): type={}",
                                    new.subnet, new.attrs.backend_type
                                );
                            }
                        }
                    }
                }
            }
            Datapath::HostGw(gw) => {
                let new_entries = hostgw::entries(new);
                if new_entries.is_empty() {
                    warn!(
                        "Ignoring non-host-gw subnet {}: type={}",
                        new.subnet, new.attrs.backend_type
                    );
                }
                if let Some(old) = old {
                    for e in hostgw::entries(old) {
                        if !new_entries.iter().any(|n| n.subnet == e.subnet) {
                            gw.remove(h, &e);
                        }
                    }
                }
                for e in &new_entries {
                    if let Err(err) = gw.add(h, e) {
                        warn!("{err:#} (retried at the next resync)");
                    }
                }
            }
        }
    }

    fn remove(&mut self, h: &Handle, old: &Lease) {
        match self {
            Datapath::Vxlan { v4, v6 } => {
                if let (Some(dev), Some(e)) = (v4.as_mut(), vxlan::entry_v4(old)) {
                    dev.remove(h, &e);
                }
                if let (Some(dev), Some(e)) = (v6.as_mut(), vxlan::entry_v6(old)) {
                    dev.remove(h, &e);
                }
            }
            Datapath::HostGw(gw) => {
                for e in hostgw::entries(old) {
                    gw.remove(h, &e);
                }
            }
        }
    }

    fn reconcile(&mut self, h: &Handle, peers: &BTreeMap<String, Lease>) -> anyhow::Result<()> {
        let (mut fixed, mut removed) = (0, 0);
        match self {
            Datapath::Vxlan { v4, v6 } => {
                for (dev, entry_of) in [
                    (v4.as_mut(), vxlan::entry_v4 as fn(&Lease) -> _),
                    (v6.as_mut(), vxlan::entry_v6),
                ] {
                    let Some(dev) = dev else { continue };
                    let desired: HashMap<IpNetwork, vxlan::VtepEntry> = peers
                        .values()
                        .filter_map(entry_of)
                        .map(|e| (e.subnet, e))
                        .collect();
                    let (f, r) = dev.reconcile(h, &desired)?;
                    fixed += f;
                    removed += r;
                }
            }
            Datapath::HostGw(gw) => {
                let desired: HashMap<IpNetwork, hostgw::GwEntry> = peers
                    .values()
                    .flat_map(hostgw::entries)
                    .map(|e| (e.subnet, e))
                    .collect();
                let (f, r) = gw.reconcile(h, &desired)?;
                fixed += f;
                removed += r;
            }
        }
        if fixed > 0 || removed > 0 {
            info!("reconciled: {fixed} entries programmed, {removed} stale entries removed");
        } else {
            debug!("reconciled: nothing to do ({} peers)", peers.len());
        }
        Ok(())
    }
}

/// Settings of the dataplane thread.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Periodic reconcile interval.
    pub period: Duration,
    /// `--ip-blackhole-route`: keep `blackhole <own subnet>` in place.
    pub blackhole: Vec<IpNetwork>,
}

/// Start the dataplane thread and the link monitor thread.
pub fn spawn(dp: Datapath, settings: Settings, ext_index: u32) -> Sender<Cmd> {
    let (tx, rx) = std::sync::mpsc::channel();
    let watched = dp.watched_links();
    let spawned = std::thread::Builder::new()
        .name("dataplane".into())
        .spawn(move || run(dp, settings, rx));
    if let Err(e) = spawned {
        warn!("cannot start the dataplane thread: {e}");
    }
    let mon_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("linkmon".into())
        .spawn(move || link_monitor(mon_tx, watched, ext_index));
    if let Err(e) = spawned {
        warn!("cannot start the link monitor thread: {e}");
    }
    tx
}

fn run(mut dp: Datapath, settings: Settings, rx: Receiver<Cmd>) {
    let h = loop {
        match Handle::new() {
            Ok(h) => break h,
            Err(e) => {
                warn!("dataplane: open netlink socket: {e}; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    let mut peers: BTreeMap<String, Lease> = BTreeMap::new();
    // Until the first snapshot arrives the lease set is unknown: do not
    // remove anything before that.
    let mut have_snapshot = false;
    let mut next = Instant::now() + settings.period;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        let mut reconcile_now = false;
        match rx.recv_timeout(wait) {
            Ok(cmd) => {
                let mut batch = vec![cmd];
                while let Ok(c) = rx.try_recv() {
                    batch.push(c);
                }
                let n = batch.len();
                for c in batch {
                    reconcile_now |= handle(&h, &mut dp, &mut peers, &mut have_snapshot, c);
                }
                if n > 1 {
                    debug!("dataplane: applied {n} events, {} peers", peers.len());
                }
            }
            Err(RecvTimeoutError::Timeout) => reconcile_now = true,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if reconcile_now && have_snapshot {
            let ok = match dp.reconcile(&h, &peers) {
                Ok(()) => true,
                Err(e) => {
                    warn!("reconcile failed: {e:#}");
                    false
                }
            };
            ensure_blackholes(&h, &settings.blackhole);
            // After a failure (device cannot be recreated yet, ...) retry
            // sooner than the regular period.
            let delay = if ok {
                settings.period
            } else {
                settings.period.min(Duration::from_secs(2))
            };
            next = Instant::now() + delay;
        } else if reconcile_now {
            next = Instant::now() + settings.period;
        }
    }
}

/// Apply one command; true if a full reconcile should follow.
fn handle(
    h: &Handle,
    dp: &mut Datapath,
    peers: &mut BTreeMap<String, Lease>,
    have_snapshot: &mut bool,
    cmd: Cmd,
) -> bool {
    match cmd {
        Cmd::Snapshot(leases) => {
            let new: BTreeMap<String, Lease> = leases.into_iter().map(|l| (l.key(), l)).collect();
            let gone: Vec<String> = peers
                .keys()
                .filter(|k| !new.contains_key(*k))
                .cloned()
                .collect();
            for k in gone {
                if let Some(old) = peers.remove(&k) {
                    dp.remove(h, &old);
                }
            }
            for (k, l) in &new {
                let old = peers.get(k);
                if old != Some(l) {
                    dp.upsert(h, old, l);
                }
            }
            info!("lease snapshot: {} remote subnets", new.len());
            *peers = new;
            *have_snapshot = true;
            true
        }
        Cmd::Upsert(l) => {
            let key = l.key();
            let old = peers.get(&key);
            if old.map(|o| &o.attrs) != Some(&l.attrs) {
                info!(
                    "Subnet added: {} (public IP {}, backend {})",
                    l.subnet, l.attrs.public_ip, l.attrs.backend_type
                );
                dp.upsert(h, old, &l);
            }
            peers.insert(key, l);
            false
        }
        Cmd::Remove(key) => {
            if let Some(old) = peers.remove(&key) {
                info!("Subnet removed: {}", old.subnet);
                dp.remove(h, &old);
            }
            false
        }
        Cmd::LinkGone(name) => {
            warn!("link {name} was deleted");
            true
        }
        Cmd::Resync => true,
    }
}

fn ensure_blackholes(h: &Handle, nets: &[IpNetwork]) {
    for net in nets {
        let mut r = Route::new(*net);
        r.kind = Some(RTN_BLACKHOLE);
        match h.route_add(&r) {
            Ok(()) => info!("added blackhole route {net}"),
            Err(e) if e.is_exists() => {}
            Err(e) => warn!("add blackhole route {net}: {e}"),
        }
    }
}

/// Reports deletions of our devices and changes of the underlay link.
fn link_monitor(tx: Sender<Cmd>, watched: Vec<String>, ext_index: u32) {
    loop {
        let mut mon = match LinkMonitor::new() {
            Ok(m) => m,
            Err(e) => {
                warn!("link monitor: {e}; retrying in 1s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        loop {
            match mon.recv() {
                Ok(events) => {
                    for ev in events {
                        let cmd = match ev {
                            LinkEvent::Del(l) if watched.contains(&l.name) => {
                                Some(Cmd::LinkGone(l.name))
                            }
                            LinkEvent::New(l) if l.index == ext_index && l.oper_up => {
                                Some(Cmd::Resync)
                            }
                            _ => None,
                        };
                        if let Some(cmd) = cmd {
                            if tx.send(cmd).is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    // ENOBUFS: notifications were dropped; look at everything.
                    warn!("link monitor: {e}; resyncing");
                    if tx.send(Cmd::Resync).is_err() {
                        return;
                    }
                    if e.errno() != Some(libc::ENOBUFS) {
                        std::thread::sleep(Duration::from_secs(1));
                        break;
                    }
                }
            }
        }
    }
}
