//! Neighbours (ARP/NDP) and bridge/VXLAN forwarding database entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::addr::{af_of, Family};
use crate::error::{Kind, Result};
use crate::handle::Handle;
use crate::link::mac_to_string;

/// NUD_* neighbour states.
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_REACHABLE: u16 = 0x02;
pub const NUD_STALE: u16 = 0x04;
pub const NUD_FAILED: u16 = 0x20;
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;

/// NTF_* neighbour flags.
pub const NTF_SELF: u8 = 0x02;
pub const NTF_MASTER: u8 = 0x04;

/// An ARP / NDP entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neigh {
    pub index: u32,
    pub ip: IpAddr,
    /// NDA_LLADDR; None while unresolved.
    pub mac: Option<[u8; 6]>,
    /// NUD_* state.
    pub state: u16,
    /// NTF_* flags.
    pub flags: u8,
}

impl Neigh {
    pub fn permanent(&self) -> bool {
        self.state & NUD_PERMANENT != 0
    }
}

/// A forwarding database entry (`bridge fdb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fdb {
    pub index: u32,
    pub mac: [u8; 6],
    /// NDA_DST: the remote VTEP of a VXLAN entry.
    pub dst: Option<IpAddr>,
    pub vlan: Option<u16>,
    /// NDA_MASTER: the bridge, for entries of a bridge port.
    pub master: Option<u32>,
    pub state: u16,
    pub flags: u8,
}

impl Fdb {
    pub fn permanent(&self) -> bool {
        self.state & NUD_PERMANENT != 0
    }
}

fn neigh_message(family: AddressFamily, index: u32) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family;
    msg.header.ifindex = index;
    msg
}

fn fdb_message(index: u32, mac: [u8; 6], dst: Option<IpAddr>) -> NeighbourMessage {
    let mut msg = neigh_message(AddressFamily::Bridge, index);
    // NTF_SELF: the entry belongs to the device itself (the vxlan driver's
    // own table), not to a bridge it may be a port of.
    msg.header.flags = NeighbourFlags::Own;
    msg.header.state = NeighbourState::Permanent;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    if let Some(dst) = dst {
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(dst)));
    }
    msg
}

impl Handle {
    /// `ip neigh replace <ip> lladdr <mac> dev <index> [permanent]`
    /// (flannel's ARP entry for a remote VTEP is permanent). Without
    /// `permanent` the entry is added as REACHABLE.
    pub fn neigh_replace(
        &self,
        index: u32,
        ip: IpAddr,
        mac: [u8; 6],
        permanent: bool,
    ) -> Result<()> {
        let mut msg = neigh_message(af_of(&ip), index);
        msg.header.state = if permanent {
            NeighbourState::Permanent
        } else {
            NeighbourState::Reachable
        };
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        let op = format!(
            "replace neighbour {ip} lladdr {} on link {index}",
            mac_to_string(&mac)
        );
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(|e| e.into_nl(op, Kind::Change))?;
        Ok(())
    }

    /// `ip neigh del <ip> dev <index>`; [`crate::NlError::NotFound`] if absent.
    pub fn neigh_del(&self, index: u32, ip: IpAddr) -> Result<()> {
        let mut msg = neigh_message(af_of(&ip), index);
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
        self.request(RouteNetlinkMessage::DelNeighbour(msg), 0)
            .map_err(|e| {
                e.into_nl(
                    format!("delete neighbour {ip} on link {index}"),
                    Kind::Lookup,
                )
            })?;
        Ok(())
    }

    /// ARP/NDP entries of one link (`Some(index)`) or all links.
    pub fn neighs(&self, index: Option<u32>, family: Family) -> Result<Vec<Neigh>> {
        let msg = neigh_message(family.to_af(), 0);
        let answers = self
            .dump(RouteNetlinkMessage::GetNeighbour(msg))
            .map_err(|e| e.into_nl("list neighbours", Kind::Lookup))?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => parse_neigh(n),
                _ => None,
            })
            .filter(|n| index.is_none_or(|i| n.index == i))
            .filter(|n| family.matches(&n.ip))
            .collect())
    }

    /// `bridge fdb replace <mac> dev <index> dst <dst> self permanent`:
    /// flannel's FDB entry sending `mac` to the VTEP at `dst`.
    pub fn fdb_replace(&self, index: u32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        let msg = fdb_message(index, mac, Some(dst));
        let op = format!(
            "replace fdb {} dst {dst} on link {index}",
            mac_to_string(&mac)
        );
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(|e| e.into_nl(op, Kind::Change))?;
        Ok(())
    }

    /// `bridge fdb del <mac> dev <index> [dst <dst>] self`. On a vxlan device
    /// a `dst` removes only that remote. [`crate::NlError::NotFound`] if absent.
    pub fn fdb_del(&self, index: u32, mac: [u8; 6], dst: Option<IpAddr>) -> Result<()> {
        let msg = fdb_message(index, mac, dst);
        let op = format!("delete fdb {} on link {index}", mac_to_string(&mac));
        self.request(RouteNetlinkMessage::DelNeighbour(msg), 0)
            .map_err(|e| e.into_nl(op, Kind::Lookup))?;
        Ok(())
    }

    /// FDB entries of one device (`Some(index)`) or all (`bridge fdb show`).
    pub fn fdbs(&self, index: Option<u32>) -> Result<Vec<Fdb>> {
        let msg = neigh_message(AddressFamily::Bridge, 0);
        let answers = self
            .dump(RouteNetlinkMessage::GetNeighbour(msg))
            .map_err(|e| e.into_nl("list fdb", Kind::Lookup))?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => parse_fdb(n),
                _ => None,
            })
            .filter(|f| index.is_none_or(|i| f.index == i))
            .collect())
    }
}

fn neigh_ip(addr: &NeighbourAddress) -> Option<IpAddr> {
    match addr {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        // AF_BRIDGE entries carry a raw NDA_DST of either family.
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(bytes.as_slice())
                .ok()
                .map(IpAddr::from),
            _ => None,
        },
        _ => None,
    }
}

fn parse_neigh(msg: &NeighbourMessage) -> Option<Neigh> {
    let mut ip = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(a) => ip = neigh_ip(a),
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok(),
            _ => {}
        }
    }
    Some(Neigh {
        index: msg.header.ifindex,
        ip: ip?,
        mac,
        state: u16::from(msg.header.state),
        flags: msg.header.flags.bits(),
    })
}

fn parse_fdb(msg: &NeighbourMessage) -> Option<Fdb> {
    let mut entry = Fdb {
        index: msg.header.ifindex,
        mac: [0; 6],
        dst: None,
        vlan: None,
        master: None,
        state: u16::from(msg.header.state),
        flags: msg.header.flags.bits(),
    };
    let mut have_mac = false;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(l) => {
                if let Ok(mac) = <[u8; 6]>::try_from(l.as_slice()) {
                    entry.mac = mac;
                    have_mac = true;
                }
            }
            NeighbourAttribute::Destination(a) => entry.dst = neigh_ip(a),
            NeighbourAttribute::Vlan(v) => entry.vlan = Some(*v),
            NeighbourAttribute::Controller(m) => entry.master = Some(*m),
            _ => {}
        }
    }
    have_mac.then_some(entry)
}
