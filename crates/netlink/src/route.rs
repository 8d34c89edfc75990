//! Routes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::{IpNetwork, Ipv4Network};
use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::addr::{af_of, Family, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE};
use crate::error::{Kind, NlError, Result};
use crate::handle::Handle;

/// Routing table ids.
pub const RT_TABLE_UNSPEC: u32 = 0;
pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;

/// Route protocols (RTPROT_*). Go's netlink adds routes as RTPROT_BOOT
/// unless told otherwise, and so does this crate.
pub const RTPROT_UNSPEC: u8 = 0;
pub const RTPROT_KERNEL: u8 = 2;
pub const RTPROT_BOOT: u8 = 3;
pub const RTPROT_STATIC: u8 = 4;

/// Route types (RTN_*).
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BROADCAST: u8 = 3;
pub const RTN_BLACKHOLE: u8 = 6;
pub const RTN_UNREACHABLE: u8 = 7;

/// One route. For adding, `None` fields mean "default" (table main, scope
/// universe, proto boot, type unicast, the kernel's metric); routes read
/// from the kernel have `table`, `scope`, `proto` and `kind` filled in.
/// `Route::default()` is a route to 0.0.0.0/0 with nothing else set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNetwork,
    pub gw: Option<IpAddr>,
    /// RTA_OIF (output device).
    pub oif: Option<u32>,
    /// RTA_PREFSRC.
    pub src: Option<IpAddr>,
    pub table: Option<u32>,
    /// RTA_PRIORITY (metric).
    pub priority: Option<u32>,
    pub scope: Option<u8>,
    /// RTAX_MTU.
    pub mtu: Option<u32>,
    /// RTAX_ADVMSS.
    pub advmss: Option<u32>,
    /// RTNH_F_ONLINK: the gateway is on the link even if no address says so.
    pub onlink: bool,
    pub proto: Option<u8>,
    /// RTN_* route type.
    pub kind: Option<u8>,
    /// RTA_MULTIPATH next hops (ECMP); empty for a single-path route.
    pub nexthops: Vec<NextHop>,
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
    /// Relative weight, 1..=256 (rtnh_hops + 1).
    pub weight: u16,
    pub onlink: bool,
}

impl Route {
    /// A route to `dst` with every other field unset.
    pub fn new(dst: IpNetwork) -> Route {
        Route {
            dst,
            gw: None,
            oif: None,
            src: None,
            table: None,
            priority: None,
            scope: None,
            mtu: None,
            advmss: None,
            onlink: false,
            proto: None,
            kind: None,
            nexthops: Vec::new(),
        }
    }
}

impl Route {
    /// Every gateway of the route: `gw` and those of the ECMP next hops.
    pub fn gateways(&self) -> Vec<IpAddr> {
        self.gw
            .into_iter()
            .chain(self.nexthops.iter().filter_map(|n| n.gw))
            .collect()
    }
}

impl Default for Route {
    fn default() -> Route {
        Route::new(IpNetwork::V4(Ipv4Network::from(Ipv4Addr::UNSPECIFIED)))
    }
}

impl fmt::Display for Route {
    /// `ip route` style: "10.1.0.0/24 via 10.1.0.1 dev 3 table 254".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(gw) = self.gw {
            write!(f, " via {gw}")?;
        }
        if let Some(oif) = self.oif {
            write!(f, " dev {oif}")?;
        }
        if let Some(table) = self.table {
            write!(f, " table {table}")?;
        }
        if let Some(metric) = self.priority {
            write!(f, " metric {metric}")?;
        }
        if self.onlink {
            write!(f, " onlink")?;
        }
        Ok(())
    }
}

/// How an RTM_NEWROUTE treats an existing route with the same key.
#[derive(Clone, Copy)]
enum AddMode {
    Exclusive,
    Ecmp,
    Append,
    Replace,
}

impl AddMode {
    fn flags(self) -> u16 {
        match self {
            AddMode::Exclusive => NLM_F_CREATE | NLM_F_EXCL,
            AddMode::Ecmp => NLM_F_CREATE,
            AddMode::Append => NLM_F_CREATE | NLM_F_APPEND,
            AddMode::Replace => NLM_F_CREATE | NLM_F_REPLACE,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            AddMode::Exclusive | AddMode::Ecmp => "add",
            AddMode::Append => "append",
            AddMode::Replace => "replace",
        }
    }
}

fn route_message(r: &Route, delete: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let table = r.table.unwrap_or(RT_TABLE_MAIN);
    let h: &mut RouteHeader = &mut msg.header;
    h.address_family = af_of(&r.dst.ip());
    h.destination_prefix_length = r.dst.prefix();
    // Tables above 255 only fit in RTA_TABLE (iproute2 does the same).
    h.table = u8::try_from(table).unwrap_or(0);
    // For a delete, unset fields act as wildcards: proto 0, type 0 and
    // scope NOWHERE match anything (fib_table_delete).
    if delete {
        h.protocol = RouteProtocol::from(r.proto.unwrap_or(RTPROT_UNSPEC));
        h.scope = RouteScope::from(r.scope.unwrap_or(RT_SCOPE_NOWHERE));
        h.kind = RouteType::from(r.kind.unwrap_or(0));
    } else {
        h.protocol = RouteProtocol::from(r.proto.unwrap_or(RTPROT_BOOT));
        h.scope = RouteScope::from(r.scope.unwrap_or(RT_SCOPE_UNIVERSE));
        h.kind = RouteType::from(r.kind.unwrap_or(RTN_UNICAST));
    }
    if r.onlink {
        h.flags |= RouteFlags::Onlink;
    }

    let attrs = &mut msg.attributes;
    attrs.push(RouteAttribute::Destination(RouteAddress::from(
        r.dst.network(),
    )));
    if let Some(gw) = r.gw {
        attrs.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(src) = r.src {
        attrs.push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    if let Some(oif) = r.oif {
        attrs.push(RouteAttribute::Oif(oif));
    }
    if let Some(metric) = r.priority {
        attrs.push(RouteAttribute::Priority(metric));
    }
    if table > 255 {
        attrs.push(RouteAttribute::Table(table));
    }
    let mut metrics = Vec::new();
    if let Some(mtu) = r.mtu {
        metrics.push(RouteMetric::Mtu(mtu));
    }
    if let Some(advmss) = r.advmss {
        metrics.push(RouteMetric::Advmss(advmss));
    }
    if !metrics.is_empty() {
        attrs.push(RouteAttribute::Metrics(metrics));
    }
    if !r.nexthops.is_empty() {
        attrs.push(RouteAttribute::MultiPath(
            r.nexthops.iter().map(nexthop_message).collect(),
        ));
    }
    msg
}

fn nexthop_message(nh: &NextHop) -> RouteNextHop {
    let mut hop = RouteNextHop::default();
    hop.hops = u8::try_from(nh.weight.clamp(1, 256) - 1).unwrap_or(0);
    hop.interface_index = nh.oif.unwrap_or(0);
    if nh.onlink {
        hop.flags |= RouteNextHopFlags::Onlink;
    }
    if let Some(gw) = nh.gw {
        hop.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    hop
}

impl Handle {
    fn route_new(&self, r: &Route, mode: AddMode) -> Result<()> {
        let msg = route_message(r, false);
        self.request(RouteNetlinkMessage::NewRoute(msg), mode.flags())
            .map_err(|e| e.into_nl(format!("{} route {r}", mode.verb()), Kind::Change))?;
        Ok(())
    }

    /// `ip route add`: [`NlError::Exists`] if the same route is there.
    pub fn route_add(&self, r: &Route) -> Result<()> {
        self.route_new(r, AddMode::Exclusive)
    }

    /// Go's `netlink.RouteAddEcmp` (NLM_F_CREATE without EXCL), what the
    /// bridge plugin's `ipam.ConfigureIface` uses: an IPv6 route with the
    /// same destination and metric but another gateway becomes an ECMP
    /// next hop; an identical route is still [`NlError::Exists`].
    pub fn route_add_ecmp(&self, r: &Route) -> Result<()> {
        self.route_new(r, AddMode::Ecmp)
    }

    /// `ip route append` (NLM_F_CREATE|NLM_F_APPEND).
    pub fn route_append(&self, r: &Route) -> Result<()> {
        self.route_new(r, AddMode::Append)
    }

    /// `ip route replace`: add or overwrite (flanneld's RouteReplace).
    pub fn route_replace(&self, r: &Route) -> Result<()> {
        self.route_new(r, AddMode::Replace)
    }

    /// `ip route del`; unset fields match any route.
    /// [`NlError::NotFound`] if no route matches.
    pub fn route_del(&self, r: &Route) -> Result<()> {
        let msg = route_message(r, true);
        self.request(RouteNetlinkMessage::DelRoute(msg), 0)
            .map_err(|e| e.into_nl(format!("delete route {r}"), Kind::Lookup))?;
        Ok(())
    }

    /// Routes of `family`. `table`: None = main table only (like Go's
    /// `RouteList`), `Some(RT_TABLE_UNSPEC)` = all tables, `Some(t)` = t.
    /// Cached (cloned) routes are left out.
    pub fn routes(&self, family: Family, table: Option<u32>) -> Result<Vec<Route>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family.to_af();
        let answers = self
            .dump(RouteNetlinkMessage::GetRoute(msg))
            .map_err(|e| e.into_nl("list routes", Kind::Lookup))?;
        let wanted = table.unwrap_or(RT_TABLE_MAIN);
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .filter(|r| !r.header.flags.contains(RouteFlags::Cloned))
            .filter_map(parse_route)
            .filter(|r| family.matches(&r.dst.ip()))
            .filter(|r| wanted == RT_TABLE_UNSPEC || r.table == Some(wanted))
            .collect())
    }

    /// `ip route get <dst>`: the route the kernel would use (oif, gateway,
    /// preferred source). The returned `dst` is `<dst>/32` (or /128).
    pub fn route_get(&self, dst: IpAddr) -> Result<Route> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = af_of(&dst);
        msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let op = format!("get route to {dst}");
        let answers = self
            .request(RouteNetlinkMessage::GetRoute(msg), 0)
            .map_err(|e| e.into_nl(&op, Kind::Change))?;
        answers
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => parse_route(r),
                _ => None,
            })
            .ok_or_else(|| NlError::NotFound(format!("{op}: no route")))
    }
}

fn route_ip(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn parse_route(msg: &RouteMessage) -> Option<Route> {
    let h = &msg.header;
    let mut dst = None;
    let mut table = u32::from(h.table);
    let mut route = Route::default();
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = route_ip(a),
            RouteAttribute::Gateway(a) => route.gw = route_ip(a),
            RouteAttribute::PrefSource(a) => route.src = route_ip(a),
            RouteAttribute::Oif(i) => route.oif = Some(*i),
            RouteAttribute::Priority(p) => route.priority = Some(*p),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Metrics(metrics) => {
                for m in metrics {
                    match m {
                        RouteMetric::Mtu(v) => route.mtu = Some(*v),
                        RouteMetric::Advmss(v) => route.advmss = Some(*v),
                        _ => {}
                    }
                }
            }
            RouteAttribute::MultiPath(hops) => {
                route.nexthops = hops.iter().map(parse_nexthop).collect();
            }
            _ => {}
        }
    }
    // A default route has no RTA_DST: it is the family's zero address.
    let dst = match (dst, u8::from(h.address_family)) {
        (Some(ip), _) => ip,
        (None, f) if f == libc::AF_INET as u8 => IpAddr::from([0u8; 4]),
        (None, f) if f == libc::AF_INET6 as u8 => IpAddr::from([0u8; 16]),
        (None, _) => return None,
    };
    route.dst = IpNetwork::new(dst, h.destination_prefix_length).ok()?;
    route.table = Some(table);
    route.scope = Some(u8::from(h.scope));
    route.proto = Some(u8::from(h.protocol));
    route.kind = Some(u8::from(h.kind));
    route.onlink = h.flags.contains(RouteFlags::Onlink);
    Some(route)
}

fn parse_nexthop(hop: &RouteNextHop) -> NextHop {
    let gw = hop.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => route_ip(g),
        _ => None,
    });
    NextHop {
        gw,
        oif: (hop.interface_index != 0).then_some(hop.interface_index),
        weight: u16::from(hop.hops) + 1,
        onlink: hop.flags.contains(RouteNextHopFlags::Onlink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_message_uses_wildcards() {
        let mut r = Route::new("10.1.0.0/16".parse().unwrap());
        r.gw = Some("10.0.0.1".parse().unwrap());
        let add = route_message(&r, false);
        assert_eq!(u8::from(add.header.protocol), RTPROT_BOOT);
        assert_eq!(u8::from(add.header.scope), RT_SCOPE_UNIVERSE);
        assert_eq!(add.header.table, 254);
        let del = route_message(&r, true);
        assert_eq!(u8::from(del.header.protocol), RTPROT_UNSPEC);
        assert_eq!(u8::from(del.header.scope), RT_SCOPE_NOWHERE);
    }

    #[test]
    fn big_table_goes_to_attribute() {
        let mut r = Route::new("10.1.0.0/16".parse().unwrap());
        r.table = Some(1000);
        let msg = route_message(&r, false);
        assert_eq!(msg.header.table, 0);
        assert!(msg.attributes.contains(&RouteAttribute::Table(1000)));
        let parsed = parse_route(&msg).unwrap();
        assert_eq!(parsed.table, Some(1000));
        assert_eq!(parsed.dst, r.dst);
    }

    #[test]
    fn display_reads_like_ip_route() {
        let mut r = Route::new("10.1.0.0/24".parse().unwrap());
        r.gw = Some("10.1.0.1".parse().unwrap());
        r.oif = Some(3);
        r.onlink = true;
        assert_eq!(r.to_string(), "10.1.0.0/24 via 10.1.0.1 dev 3 onlink");
    }
}
