//! Interface addresses.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{Kind, Result};
use crate::handle::Handle;

/// IFA_F_* address flags (see `Address::flags`).
pub const IFA_F_SECONDARY: u32 = 0x01;
pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_OPTIMISTIC: u32 = 0x04;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_DEPRECATED: u32 = 0x20;
pub const IFA_F_TENTATIVE: u32 = 0x40;
pub const IFA_F_PERMANENT: u32 = 0x80;

/// RT_SCOPE_* values (address and route scopes).
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_SITE: u8 = 200;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;
pub const RT_SCOPE_NOWHERE: u8 = 255;

/// Address family filter for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    All,
    V4,
    V6,
}

impl Family {
    pub(crate) fn to_af(self) -> AddressFamily {
        match self {
            Family::All => AddressFamily::Unspec,
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }

    /// True if `ip` belongs to this family.
    pub fn matches(self, ip: &IpAddr) -> bool {
        match self {
            Family::All => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

pub(crate) fn af_of(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    /// Address with its prefix length (host bits kept).
    pub net: IpNetwork,
    /// RT_SCOPE_* (0 universe, 253 link, 254 host).
    pub scope: u8,
    /// IFA_F_* flags (IFA_FLAGS when present, else the header byte).
    pub flags: u32,
    /// IFA_F_TENTATIVE: IPv6 duplicate address detection still running.
    pub tentative: bool,
    /// IFA_F_DADFAILED: IPv6 duplicate address detection found a duplicate.
    pub dad_failed: bool,
    /// IFA_LABEL (IPv4 only).
    pub label: Option<String>,
}

fn address_message(index: u32, addr: &IpNetwork) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = addr.prefix();
    msg.header.family = af_of(&addr.ip());
    msg.header.scope = AddressScope::Universe;
    // Like iproute2 and Go's netlink: IFA_LOCAL and IFA_ADDRESS both carry
    // the address (they differ only for point-to-point peers).
    msg.attributes.push(AddressAttribute::Local(addr.ip()));
    msg.attributes.push(AddressAttribute::Address(addr.ip()));
    if let IpNetwork::V4(v4) = addr {
        // Go sets the broadcast address when the subnet is big enough to
        // have one (/30 or larger).
        if v4.prefix() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(v4.broadcast()));
        }
    }
    msg
}

impl Handle {
    /// `ip addr add <addr> dev <index>`; [`crate::NlError::Exists`] if the
    /// interface already has it.
    pub fn addr_add(&self, index: u32, addr: IpNetwork) -> Result<()> {
        let msg = address_message(index, &addr);
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(|e| {
            let mut op = format!("add address {addr} to link {index}");
            // The kernel answers EACCES for IPv6 addresses when IPv6 is
            // disabled (netavark's hint).
            if addr.is_ipv6() && e.errno() == Some(libc::EACCES) {
                op.push_str(" (is IPv6 enabled in the kernel?)");
            }
            e.into_nl(op, Kind::Change)
        })?;
        Ok(())
    }

    /// `ip addr del <addr> dev <index>`; [`crate::NlError::NotFound`] if it is
    /// not there.
    pub fn addr_del(&self, index: u32, addr: IpNetwork) -> Result<()> {
        let msg = address_message(index, &addr);
        self.request(RouteNetlinkMessage::DelAddress(msg), 0)
            .map_err(|e| {
                e.into_nl(
                    format!("delete address {addr} from link {index}"),
                    Kind::Lookup,
                )
            })?;
        Ok(())
    }

    /// Addresses of one interface (`Some(index)`) or of all, of `family`.
    pub fn addrs(&self, index: Option<u32>, family: Family) -> Result<Vec<Address>> {
        let mut msg = AddressMessage::default();
        msg.header.family = family.to_af();
        let answers = self
            .dump(RouteNetlinkMessage::GetAddress(msg))
            .map_err(|e| e.into_nl("list addresses", Kind::Lookup))?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => parse_address(a),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .filter(|a| family.matches(&a.net.ip()))
            .collect())
    }
}

fn parse_address(msg: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut flags = u32::from(msg.header.flags.bits());
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and the only one sent for IPv6.
    let ip = local.or(address)?;
    let net = IpNetwork::new(ip, msg.header.prefix_len).ok()?;
    Some(Address {
        index: msg.header.index,
        net,
        scope: u8::from(msg.header.scope),
        flags,
        tentative: flags & IFA_F_TENTATIVE != 0,
        dad_failed: flags & IFA_F_DADFAILED != 0,
        label,
    })
}
