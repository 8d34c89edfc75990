//! The VXLAN backend's kernel side (`pkg/backend/vxlan/{device,vxlan_network}.go`):
//! the `flannel.<VNI>` device and, per remote lease, a permanent ARP entry,
//! an FDB entry and an onlink route.
//!
//! Unlike Go, the state is reconciled: at start and periodically the entries
//! on the device are compared with the lease set (missing ones programmed,
//! stale ones removed), and a deleted device is recreated and every peer
//! replayed.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use anyhow::{anyhow, Context, Result};
use ipnetwork::IpNetwork;
use tracing::{info, warn};
use weft_netlink::{mac_to_string, Family, Handle, Link, NlError, Route, VxlanSpec, RTPROT_BOOT};

use crate::lease::Lease;

/// UDP + VXLAN + outer IPv4 + Ethernet headers (Go uses 50 for both families).
pub const OVERHEAD_V4: u32 = 50;
/// The same over an IPv6 underlay (40-byte IP header); Go still uses 50.
pub const OVERHEAD_V6: u32 = 70;

/// Everything needed to (re)create one VXLAN device.
#[derive(Debug, Clone)]
pub struct DevConfig {
    pub name: String,
    pub vni: u32,
    /// None: kernel default (8472).
    pub port: Option<u16>,
    /// The VTEP source address (`--public-ip`, flannel ≥ 0.27 uses ExtAddr).
    pub local: IpAddr,
    /// The underlay interface.
    pub underlay: u32,
    pub learning: bool,
    pub gbp: bool,
    /// Device MTU (underlay or Backend.MTU, minus the overhead).
    pub mtu: u32,
    /// The cluster network of this family (`Network` / `IPv6Network`).
    pub network: IpNetwork,
    /// The address on the device: our lease's network address as /32 (/128).
    pub address: IpNetwork,
    /// Our own lease subnet of this family.
    pub own: IpNetwork,
    pub direct_routing: bool,
    /// `Backend.DisableTxChecksumOffload`: tx-checksum-ip-generic off.
    pub tx_checksum_off: bool,
}

impl DevConfig {
    pub fn family(&self) -> Family {
        if self.network.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// What one remote lease needs on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtepEntry {
    pub subnet: IpNetwork,
    /// The remote flannel.N address (the remote subnet's network address).
    pub vtep_ip: IpAddr,
    pub mac: [u8; 6],
    /// The remote node's public IP (the VXLAN destination).
    pub dst: IpAddr,
}

/// The v4 entry of a lease (None if the lease is not a usable vxlan lease).
pub fn entry_v4(l: &Lease) -> Option<VtepEntry> {
    if l.attrs.backend_type != crate::config::BACKEND_VXLAN {
        return None;
    }
    let d = l.attrs.vxlan()?;
    Some(VtepEntry {
        subnet: IpNetwork::V4(l.subnet),
        vtep_ip: IpAddr::V4(l.subnet.network()),
        mac: d.mac,
        dst: IpAddr::V4(l.attrs.public_ip),
    })
}

/// The v6 entry of a dual-stack lease.
pub fn entry_v6(l: &Lease) -> Option<VtepEntry> {
    if l.attrs.backend_type != crate::config::BACKEND_VXLAN {
        return None;
    }
    let sn6 = l.ipv6_subnet?;
    let d = l.attrs.vxlan_v6()?;
    Some(VtepEntry {
        subnet: IpNetwork::V6(sn6),
        vtep_ip: IpAddr::V6(sn6.network()),
        mac: d.mac,
        dst: IpAddr::V6(l.attrs.public_ipv6?),
    })
}

/// Go's `vxlanLinksIncompat`: "" if the existing device can be reused.
fn incompat(cfg: &DevConfig, l: &Link) -> Option<String> {
    if !l.is_kind("vxlan") {
        return Some(format!(
            "link type: vxlan vs {}",
            l.kind.as_deref().unwrap_or("?")
        ));
    }
    let v = l.vxlan.as_ref()?;
    if v.vni != cfg.vni {
        return Some(format!("vni: {} vs {}", cfg.vni, v.vni));
    }
    if let Some(link) = v.link {
        if link > 0 && link != cfg.underlay {
            return Some(format!(
                "vtep (external) interface: {} vs {link}",
                cfg.underlay
            ));
        }
    }
    if let Some(local) = v.local {
        if local != cfg.local {
            return Some(format!("vtep (external) IP: {} vs {local}", cfg.local));
        }
    }
    if v.group.is_some() {
        return Some(format!("group address: none vs {:?}", v.group));
    }
    if v.l2miss {
        return Some("l2miss: false vs true".into());
    }
    if let Some(port) = cfg.port {
        if port > 0 && v.port > 0 && v.port != port {
            return Some(format!("port: {port} vs {}", v.port));
        }
    }
    if v.gbp != cfg.gbp {
        return Some(format!("gbp: {} vs {}", cfg.gbp, v.gbp));
    }
    None
}

/// Create the device, or reuse a compatible existing one (keeping its MAC
/// and MTU, so a restart changes nothing). `mac` is used for a new device:
/// the MAC of our previous lease, so peers need no update, else random.
pub fn ensure_device(h: &Handle, cfg: &DevConfig, mac: [u8; 6]) -> Result<Link> {
    if let Some(existing) = h.find_link_by_name(&cfg.name)? {
        match incompat(cfg, &existing) {
            None => {
                info!("VXLAN device {} already exists, reusing it", cfg.name);
                disable_ra(&cfg.name);
                tx_checksum(cfg, existing.index)?;
                return Ok(existing);
            }
            Some(why) => {
                warn!(
                    "{:?} already exists with incompatible configuration: {why}; recreating device",
                    cfg.name
                );
                h.link_del(existing.index)
                    .with_context(|| format!("failed to delete interface {}", cfg.name))?;
            }
        }
    }
    let spec = VxlanSpec {
        name: cfg.name.clone(),
        vni: cfg.vni,
        port: cfg.port,
        local: Some(cfg.local),
        dev: Some(cfg.underlay),
        learning: cfg.learning,
        gbp: cfg.gbp,
        mtu: Some(cfg.mtu),
        mac: Some(mac),
    };
    let link = h
        .vxlan_create(&spec)
        .with_context(|| format!("failed to create vxlan interface {}", cfg.name))?;
    info!(
        "created VXLAN device {} (vni {}, local {}, mac {}, mtu {})",
        cfg.name,
        cfg.vni,
        cfg.local,
        mac_to_string(&mac),
        cfg.mtu
    );
    disable_ra(&cfg.name);
    tx_checksum(cfg, link.index)?;
    Ok(link)
}

/// `Backend.DisableTxChecksumOffload`: through the kernel's ethtool netlink
/// interface (`ethtool -K DEV tx-checksum-ip-generic off`), on every device
/// we create or adopt, so a recreated device gets it again.
fn tx_checksum(cfg: &DevConfig, index: u32) -> Result<()> {
    if !cfg.tx_checksum_off {
        return Ok(());
    }
    let mut et = weft_netlink::Ethtool::new()
        .with_context(|| format!("failed to turn tx checksum offload off on {}", cfg.name))?;
    et.set_features(index, &[(weft_netlink::TX_CHECKSUM_IP_GENERIC, false)])
        .with_context(|| format!("failed to turn tx checksum offload off on {}", cfg.name))?;
    info!(
        "{}: tx checksum offload off ({} off, DisableTxChecksumOffload)",
        cfg.name,
        weft_netlink::TX_CHECKSUM_IP_GENERIC
    );
    Ok(())
}

fn disable_ra(name: &str) {
    let _ = weft_netlink::sysctl_set(&format!("net/ipv6/conf/{name}/accept_ra"), "0");
}

/// `EnsureV4AddressOnLink` + link up: keep exactly our address among the
/// device's addresses inside the cluster network.
pub fn configure(h: &Handle, index: u32, cfg: &DevConfig) -> Result<()> {
    let fam = cfg.family();
    let mut have = false;
    for a in h.addrs(Some(index), fam)? {
        if a.net.ip() == cfg.address.ip() && a.net.prefix() == cfg.address.prefix() {
            have = true;
        } else if cfg.network.contains(a.net.ip()) {
            h.addr_del(index, a.net)?;
            info!("removed IP address {} from {}", a.net, cfg.name);
        }
    }
    if !have {
        h.addr_add(index, cfg.address)
            .with_context(|| format!("failed to ensure address of interface {}", cfg.name))?;
    }
    h.link_set_up(index)
        .with_context(|| format!("failed to set interface {} to UP state", cfg.name))?;
    Ok(())
}

/// One VXLAN device and what is programmed on it.
#[derive(Debug)]
pub struct VxlanDev {
    pub cfg: DevConfig,
    pub index: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// subnet → (entry, programmed as a direct route).
    programmed: HashMap<IpNetwork, (VtepEntry, bool)>,
}

fn ignore_missing(r: Result<(), NlError>) -> Result<(), NlError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

impl VxlanDev {
    pub fn new(cfg: DevConfig, link: &Link) -> VxlanDev {
        VxlanDev {
            cfg,
            index: link.index,
            mac: link.mac,
            mtu: link.mtu,
            programmed: HashMap::new(),
        }
    }

    /// DirectRouting: the peer is on our L2 segment when the kernel's route
    /// to it has no gateway.
    fn is_direct(&self, h: &Handle, dst: IpAddr) -> bool {
        self.cfg.direct_routing
            && h.route_get(dst)
                .map(|r| r.gw.is_none() && r.nexthops.is_empty())
                .unwrap_or(false)
    }

    fn vxlan_route(&self, e: &VtepEntry) -> Route {
        let mut r = Route::new(e.subnet);
        r.gw = Some(e.vtep_ip);
        r.oif = Some(self.index);
        r.onlink = true;
        r
    }

    fn direct_route(e: &VtepEntry) -> Route {
        let mut r = Route::new(e.subnet);
        r.gw = Some(e.dst);
        r
    }

    /// Program a remote lease: ARP, then FDB, then the route (last, so the
    /// kernel never has to resolve the gateway), undoing on failure. A peer
    /// whose MAC or public IP changed loses its old FDB entry first (Go
    /// leaves it behind).
    pub fn add(&mut self, h: &Handle, e: &VtepEntry) -> Result<()> {
        let direct = self.is_direct(h, e.dst);
        if let Some((old, old_direct)) = self.programmed.get(&e.subnet).cloned() {
            if !old_direct && (old.mac != e.mac || old.dst != e.dst) {
                let _ = ignore_missing(h.fdb_del(self.index, old.mac, Some(old.dst)));
            }
            if !old_direct && direct {
                let _ = ignore_missing(h.neigh_del(self.index, old.vtep_ip));
            }
        }
        if direct {
            h.route_replace(&Self::direct_route(e))
                .with_context(|| format!("add direct route to {}", e.subnet))?;
            info!("Subnet {} programmed: direct route via {}", e.subnet, e.dst);
        } else {
            h.neigh_replace(self.index, e.vtep_ip, e.mac, true)
                .with_context(|| format!("add ARP entry for {}", e.subnet))?;
            if let Err(err) = h.fdb_replace(self.index, e.mac, e.dst) {
                let _ = h.neigh_del(self.index, e.vtep_ip);
                return Err(anyhow!(err).context(format!("add FDB entry for {}", e.subnet)));
            }
            if let Err(err) = h.route_replace(&self.vxlan_route(e)) {
                let _ = h.neigh_del(self.index, e.vtep_ip);
                let _ = h.fdb_del(self.index, e.mac, Some(e.dst));
                return Err(anyhow!(err).context(format!("add route to {}", e.subnet)));
            }
            info!(
                "Subnet {} programmed: via {} dev {} onlink, vtep {} at {}",
                e.subnet,
                e.vtep_ip,
                self.cfg.name,
                mac_to_string(&e.mac),
                e.dst
            );
        }
        self.programmed.insert(e.subnet, (e.clone(), direct));
        Ok(())
    }

    /// Remove a lease's entries (best effort, like Go's EventRemoved).
    pub fn remove(&mut self, h: &Handle, e: &VtepEntry) {
        let direct = self
            .programmed
            .remove(&e.subnet)
            .map(|(_, d)| d)
            .unwrap_or(false);
        if direct {
            if let Err(err) = ignore_missing(h.route_del(&Self::direct_route(e))) {
                warn!("delete direct route to {}: {err}", e.subnet);
            }
        } else {
            if let Err(err) = ignore_missing(h.neigh_del(self.index, e.vtep_ip)) {
                warn!("delete ARP entry {}: {err}", e.vtep_ip);
            }
            if let Err(err) = ignore_missing(h.fdb_del(self.index, e.mac, Some(e.dst))) {
                warn!("delete FDB entry {}: {err}", mac_to_string(&e.mac));
            }
            if let Err(err) = ignore_missing(h.route_del(&self.vxlan_route(e))) {
                warn!("delete route to {}: {err}", e.subnet);
            }
        }
        info!("Subnet {} removed from {}", e.subnet, self.cfg.name);
    }

    /// Make sure the device exists (recreating it with the same MAC and
    /// settings if somebody deleted it). Returns true if it was recreated:
    /// every entry on it is gone then.
    pub fn ensure_present(&mut self, h: &Handle) -> Result<bool> {
        match h.find_link_by_name(&self.cfg.name)? {
            Some(l) if l.index == self.index && incompat(&self.cfg, &l).is_none() => Ok(false),
            _ => {
                warn!(
                    "VXLAN device {} is gone or changed; recreating it",
                    self.cfg.name
                );
                let link = ensure_device(h, &self.cfg, self.mac)?;
                configure(h, link.index, &self.cfg)?;
                self.index = link.index;
                self.mac = link.mac;
                self.mtu = link.mtu;
                self.programmed.clear();
                Ok(true)
            }
        }
    }

    /// Compare the kernel with `desired` (subnet → entry): program what is
    /// missing or different, remove routes/ARP/FDB entries on the device
    /// that belong to no lease. Returns (programmed, removed) counts.
    pub fn reconcile(
        &mut self,
        h: &Handle,
        desired: &HashMap<IpNetwork, VtepEntry>,
    ) -> Result<(usize, usize)> {
        if self.ensure_present(h)? {
            info!("replaying {} peers on {}", desired.len(), self.cfg.name);
        }
        let fam = self.cfg.family();
        let routes = h.routes(fam, None)?;
        let neighs = h.neighs(Some(self.index), fam)?;
        let fdbs = h.fdbs(Some(self.index))?;

        let mut fixed = 0;
        let mut removed = 0;
        let mut keep_vxlan: HashSet<IpNetwork> = HashSet::new();
        let mut keep_direct: HashSet<(IpNetwork, IpAddr)> = HashSet::new();
        for e in desired.values() {
            let direct = self.is_direct(h, e.dst);
            let ok = if direct {
                routes
                    .iter()
                    .any(|r| r.dst == e.subnet && r.gw == Some(e.dst))
            } else {
                routes.iter().any(|r| {
                    r.dst == e.subnet && r.gw == Some(e.vtep_ip) && r.oif == Some(self.index)
                }) && neighs
                    .iter()
                    .any(|n| n.ip == e.vtep_ip && n.mac == Some(e.mac) && n.permanent())
                    && fdbs.iter().any(|f| f.mac == e.mac && f.dst == Some(e.dst))
            };
            if direct {
                keep_direct.insert((e.subnet, e.dst));
            } else {
                keep_vxlan.insert(e.subnet);
            }
            if !ok {
                match self.add(h, e) {
                    Ok(()) => fixed += 1,
                    Err(err) => warn!("reconcile {}: {err:#}", e.subnet),
                }
            } else {
                self.programmed.insert(e.subnet, (e.clone(), direct));
            }
        }
        let vtep_ips: HashSet<IpAddr> = desired
            .values()
            .filter(|e| keep_vxlan.contains(&e.subnet))
            .map(|e| e.vtep_ip)
            .collect();
        let fdb_keep: HashSet<([u8; 6], IpAddr)> = desired
            .values()
            .filter(|e| keep_vxlan.contains(&e.subnet))
            .map(|e| (e.mac, e.dst))
            .collect();

        for r in &routes {
            if !self.cfg.network.contains(r.dst.ip()) || r.dst.prefix() == 0 {
                continue;
            }
            let stale_vxlan = r.oif == Some(self.index) && !keep_vxlan.contains(&r.dst);
            let stale_direct = self.cfg.direct_routing
                && r.oif != Some(self.index)
                && r.proto == Some(RTPROT_BOOT)
                && r.gw.is_some_and(|gw| !keep_direct.contains(&(r.dst, gw)))
                && !keep_vxlan.contains(&r.dst)
                && r.dst != self.cfg.own;
            if stale_vxlan || stale_direct {
                let mut del = Route::new(r.dst);
                del.gw = r.gw;
                del.oif = r.oif;
                if ignore_missing(h.route_del(&del)).is_ok() {
                    info!("removed stale route {} via {:?}", r.dst, r.gw);
                    removed += 1;
                }
            }
        }
        for n in &neighs {
            if n.permanent()
                && self.cfg.network.contains(n.ip)
                && !vtep_ips.contains(&n.ip)
                && ignore_missing(h.neigh_del(self.index, n.ip)).is_ok()
            {
                info!("removed stale ARP entry {} on {}", n.ip, self.cfg.name);
                removed += 1;
            }
        }
        for f in &fdbs {
            let Some(dst) = f.dst else { continue };
            if f.permanent()
                && !fdb_keep.contains(&(f.mac, dst))
                && ignore_missing(h.fdb_del(self.index, f.mac, Some(dst))).is_ok()
            {
                info!(
                    "removed stale FDB entry {} dst {dst} on {}",
                    mac_to_string(&f.mac),
                    self.cfg.name
                );
                removed += 1;
            }
        }
        self.programmed.retain(|k, _| desired.contains_key(k));
        Ok((fixed, removed))
    }
}
