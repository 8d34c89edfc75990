//! The host-gw backend (`pkg/backend/hostgw`, `pkg/backend/route_network.go`):
//! one route per remote lease, `<subnet> via <public IP> dev <iface>`.
//! Go re-adds missing routes every 10 s but never removes extra ones; here
//! the same periodic pass also removes routes of leases that are gone.

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{Context, Result};
use ipnetwork::IpNetwork;
use tracing::{info, warn};
use weft_netlink::{Family, Handle, Route};

use crate::lease::Lease;

#[derive(Debug, Clone)]
pub struct HostGw {
    /// The external interface.
    pub ext_index: u32,
    pub ext_name: String,
    /// Cluster networks and our own subnets (never touched).
    pub networks: Vec<IpNetwork>,
    pub own: Vec<IpNetwork>,
}

/// A route a remote lease needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GwEntry {
    pub subnet: IpNetwork,
    pub gw: IpAddr,
}

/// The routes of one lease (v4, and v6 when it has an IPv6 subnet and IP).
pub fn entries(l: &Lease) -> Vec<GwEntry> {
    if l.attrs.backend_type != crate::config::BACKEND_HOST_GW {
        return Vec::new();
    }
    let mut v = Vec::new();
    // An IPv6-only lease has no v4 subnet (a 0.0.0.0 placeholder): never a
    // route for it, which could be a default route.
    if !l.attrs.public_ip.is_unspecified() && !l.subnet.ip().is_unspecified() {
        v.push(GwEntry {
            subnet: IpNetwork::V4(l.subnet),
            gw: IpAddr::V4(l.attrs.public_ip),
        });
    }
    if let (Some(sn6), Some(ip6)) = (l.ipv6_subnet, l.attrs.public_ipv6) {
        v.push(GwEntry {
            subnet: IpNetwork::V6(sn6),
            gw: IpAddr::V6(ip6),
        });
    }
    v
}

impl HostGw {
    fn route(&self, e: &GwEntry) -> Route {
        let mut r = Route::new(e.subnet);
        r.gw = Some(e.gw);
        r.oif = Some(self.ext_index);
        r
    }

    /// Go deletes a route with the same destination but another gateway or
    /// link, then adds; a replace does both at once.
    pub fn add(&self, h: &Handle, e: &GwEntry) -> Result<()> {
        h.route_replace(&self.route(e))
            .with_context(|| format!("add route {} via {}", e.subnet, e.gw))?;
        info!(
            "Subnet {} programmed: via {} dev {}",
            e.subnet, e.gw, self.ext_name
        );
        Ok(())
    }

    pub fn remove(&self, h: &Handle, e: &GwEntry) {
        match h.route_del(&self.route(e)) {
            Ok(()) => info!("Subnet {} removed", e.subnet),
            Err(err) if err.is_not_found() => {}
            Err(err) => warn!("delete route {} via {}: {err}", e.subnet, e.gw),
        }
    }

    /// Re-add missing routes, remove routes on the external interface into
    /// the cluster network that belong to no lease.
    pub fn reconcile(
        &self,
        h: &Handle,
        desired: &HashMap<IpNetwork, GwEntry>,
    ) -> Result<(usize, usize)> {
        let mut routes = h.routes(Family::V4, None)?;
        if self.networks.iter().any(|n| n.is_ipv6()) {
            routes.extend(h.routes(Family::V6, None)?);
        }
        let mut fixed = 0;
        for e in desired.values() {
            let ok = routes
                .iter()
                .any(|r| r.dst == e.subnet && r.gw == Some(e.gw) && r.oif == Some(self.ext_index));
            if !ok {
                match self.add(h, e) {
                    Ok(()) => fixed += 1,
                    Err(err) => warn!("reconcile {}: {err:#}", e.subnet),
                }
            }
        }
        let mut removed = 0;
        for r in &routes {
            let ours = r.oif == Some(self.ext_index)
                && r.gw.is_some()
                && r.dst.prefix() > 0
                && self.networks.iter().any(|n| n.contains(r.dst.ip()))
                && !self.own.contains(&r.dst);
            if ours && desired.get(&r.dst).is_none_or(|e| Some(e.gw) != r.gw) {
                let mut del = Route::new(r.dst);
                del.gw = r.gw;
                del.oif = r.oif;
                if h.route_del(&del).is_ok() {
                    info!("removed stale route {} via {:?}", r.dst, r.gw);
                    removed += 1;
                }
            }
        }
        Ok((fixed, removed))
    }
}
