//! Choosing the external (underlay) interface, like flannel's
//! `pkg/ipmatch.LookupExtIface` and the loop over `--iface` / `--iface-regex`
//! in `main.go`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{anyhow, Context, Result};
use regex::Regex;
use tracing::info;
use weft_netlink::{Address, Family, Handle, Link, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE};

/// The interface flannel talks to other nodes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtIface {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
    /// The interface's own addresses.
    pub iface_addr: Option<Ipv4Addr>,
    pub iface_v6_addr: Option<Ipv6Addr>,
    /// What other nodes use to reach us (`--public-ip`, else the iface address).
    pub ext_addr: Option<Ipv4Addr>,
    pub ext_v6_addr: Option<Ipv6Addr>,
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub ifaces: Vec<String>,
    pub regexes: Vec<String>,
    pub can_reach: String,
    pub public_ip: Option<Ipv4Addr>,
    pub public_ipv6: Option<Ipv6Addr>,
    pub v4: bool,
    pub v6: bool,
}

enum Selector<'a> {
    NameOrIp(&'a str),
    Regex(&'a str),
    CanReach(IpAddr),
    Default,
}

/// main.go's selection order: the default-route interface when nothing is
/// given; else each `--iface` in order, then each `--iface-regex`, then
/// `--iface-can-reach`; the first match wins, and a miss is logged and the
/// next candidate tried.
pub fn lookup(h: &Handle, w: &Wanted) -> Result<ExtIface> {
    if w.ifaces.is_empty() && w.regexes.is_empty() && w.can_reach.is_empty() {
        if let Some(ip) = w.public_ip {
            // A public IP that is a local address names its interface.
            if let Ok(found) = lookup_one(h, w, Selector::NameOrIp(&ip.to_string())) {
                return Ok(found);
            }
        }
        return lookup_one(h, w, Selector::Default)
            .context("Failed to find any valid interface to use");
    }
    for name in &w.ifaces {
        match lookup_one(h, w, Selector::NameOrIp(name)) {
            Ok(found) => return Ok(found),
            Err(e) => info!("Could not find valid interface matching {name}: {e:#}"),
        }
    }
    for re in &w.regexes {
        match lookup_one(h, w, Selector::Regex(re)) {
            Ok(found) => return Ok(found),
            Err(e) => info!("Could not find valid interface matching {re}: {e:#}"),
        }
    }
    if !w.can_reach.is_empty() {
        let found = match w.can_reach.parse::<IpAddr>() {
            Ok(ip) => lookup_one(h, w, Selector::CanReach(ip)),
            Err(_) => Err(anyhow!(
                "invalid --iface-can-reach {:?}: not an IP",
                w.can_reach
            )),
        };
        match found {
            Ok(found) => return Ok(found),
            Err(e) => info!(
                "Could not find valid interface matching ifaceCanReach: {}: {e:#}",
                w.can_reach
            ),
        }
    }
    Err(anyhow!(
        "Failed to find interface to use that matches the interfaces and/or regexes provided"
    ))
}

fn lookup_one(h: &Handle, w: &Wanted, sel: Selector<'_>) -> Result<ExtIface> {
    let addrs = h.addrs(None, Family::All)?;
    let (link, v4, v6) = match sel {
        Selector::NameOrIp(s) => match s.parse::<IpAddr>() {
            Ok(ip) => {
                let a = addrs.iter().find(|a| a.net.ip() == ip).ok_or_else(|| {
                    anyhow!("error looking up interface {s}: no interface with this IP")
                })?;
                let link = h.link_by_index(a.index)?;
                match ip {
                    IpAddr::V4(v4) => (link, Some(v4), None),
                    IpAddr::V6(v6) => (link, None, Some(v6)),
                }
            }
            Err(_) => {
                let link = h
                    .link_by_name(s)
                    .map_err(|e| anyhow!("error looking up interface {s}: {e}"))?;
                (link, None, None)
            }
        },
        Selector::Regex(re) => {
            let rx = Regex::new(re).map_err(|e| anyhow!("invalid --iface-regex {re:?}: {e}"))?;
            // IPs first, then names (ipmatch).
            if let Some(a) = addrs
                .iter()
                .filter(|a| usable(a))
                .find(|a| rx.is_match(&a.net.ip().to_string()))
            {
                let link = h.link_by_index(a.index)?;
                match a.net.ip() {
                    IpAddr::V4(v4) => (link, Some(v4), None),
                    IpAddr::V6(v6) => (link, None, Some(v6)),
                }
            } else {
                let link = h
                    .links()?
                    .into_iter()
                    .find(|l| rx.is_match(&l.name))
                    .ok_or_else(|| anyhow!("no interface or IP matches {re}"))?;
                (link, None, None)
            }
        }
        Selector::CanReach(ip) => {
            let r = h.route_get(ip)?;
            let oif = r
                .oif
                .ok_or_else(|| anyhow!("the route to {ip} has no output interface"))?;
            let link = h.link_by_index(oif)?;
            let (mut v4, mut v6) = (None, None);
            match r.src {
                Some(IpAddr::V4(s)) => v4 = Some(s),
                Some(IpAddr::V6(s)) => v6 = Some(s),
                None => {}
            }
            (link, v4, v6)
        }
        Selector::Default => {
            let link = default_route_link(h, w)?;
            (link, None, None)
        }
    };
    finish(w, &addrs, link, v4, v6)
}

fn default_route_link(h: &Handle, w: &Wanted) -> Result<Link> {
    let family = if w.v4 { Family::V4 } else { Family::V6 };
    let routes = h.routes(family, None)?;
    let def = routes
        .iter()
        .find(|r| r.dst.prefix() == 0 && (r.oif.is_some() || !r.nexthops.is_empty()))
        .ok_or_else(|| anyhow!("failed to get default interface: no default route"))?;
    let oif = def
        .oif
        .or_else(|| def.nexthops.first().and_then(|n| n.oif))
        .ok_or_else(|| anyhow!("failed to get default interface: route has no device"))?;
    Ok(h.link_by_index(oif)?)
}

/// Not tentative / failed / deprecated, and at least link scope.
fn usable(a: &Address) -> bool {
    !a.tentative && !a.dad_failed && a.flags & weft_netlink::IFA_F_DEPRECATED == 0
}

/// Address preference: global scope before link-local; permanent first.
fn pick<T>(addrs: &[Address], index: u32, conv: impl Fn(IpAddr) -> Option<T>) -> Option<T> {
    let mut cands: Vec<&Address> = addrs
        .iter()
        .filter(|a| a.index == index && usable(a))
        .filter(|a| a.scope == RT_SCOPE_UNIVERSE || a.scope == RT_SCOPE_LINK)
        .collect();
    cands.sort_by_key(|a| {
        (
            a.scope != RT_SCOPE_UNIVERSE,
            a.flags & weft_netlink::IFA_F_PERMANENT == 0,
        )
    });
    cands.into_iter().find_map(|a| conv(a.net.ip()))
}

fn finish(
    w: &Wanted,
    addrs: &[Address],
    link: Link,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
) -> Result<ExtIface> {
    let iface_addr = v4.or_else(|| {
        pick(addrs, link.index, |ip| match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    });
    let iface_v6_addr = v6.or_else(|| {
        pick(addrs, link.index, |ip| match ip {
            IpAddr::V6(a) if !is_link_local6(&a) => Some(a),
            _ => None,
        })
    });
    if w.v4 && iface_addr.is_none() {
        return Err(anyhow!(
            "failed to find IPv4 address for interface {}",
            link.name
        ));
    }
    if w.v6 && iface_v6_addr.is_none() {
        return Err(anyhow!(
            "failed to find IPv6 address for interface {}",
            link.name
        ));
    }
    if link.mtu == 0 {
        return Err(anyhow!(
            "failed to determine MTU for {} interface",
            link.name
        ));
    }
    let ext = ExtIface {
        name: link.name.clone(),
        index: link.index,
        mtu: link.mtu,
        iface_addr,
        iface_v6_addr,
        ext_addr: w.public_ip.or(iface_addr),
        ext_v6_addr: w.public_ipv6.or(iface_v6_addr),
    };
    Ok(ext)
}

fn is_link_local6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}
