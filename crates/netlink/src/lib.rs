//! weft-netlink: a small synchronous RTNETLINK wrapper for the weft CNI
//! plugins and flanneld.
//!
//! Built on netlink-packet-route / netlink-packet-core / netlink-sys without
//! an async runtime, in the style of netavark's `netlink_route.rs`. The
//! public API uses plain std / ipnetwork types only; no npr type leaks out,
//! so bumping the pinned netlink crates touches this crate alone.
//!
//! - [`Netns`] opens a network namespace and runs code inside it on a
//!   short-lived thread ([`Netns::run`]); the caller's thread never changes
//!   namespace.
//! - [`Handle`] is one NETLINK_ROUTE socket bound to one netns
//!   ([`Handle::new`] for the current one, [`Handle::for_netns`] for
//!   another). Links, addresses, routes, bridge ports, VLANs, neighbours,
//!   FDB entries and VXLAN devices are methods on it.
//! - [`LinkMonitor`] reports link creation / deletion (RTNLGRP_LINK).
//! - [`Ethtool`] reads and changes device features through the kernel's
//!   ethtool generic netlink family (no `ethtool` binary).
//! - [`sysctl_set`] / [`sysctl_get`] act on the calling thread's netns.
//!
//! ```no_run
//! use weft_netlink::{Handle, Netns};
//! # fn main() -> Result<(), weft_netlink::NlError> {
//! let pod = Netns::open("/var/run/netns/pod1")?;
//! let host = Handle::new()?;
//! let br = host.bridge_create("cni0", Some(1500), false)?;
//! let veth = host.veth_create("veth1234abcd", "eth0", &pod, Some(1500), None)?;
//! host.link_set_master(veth.index, br.index)?;
//! host.link_set_up(veth.index)?;
//! let inside = Handle::for_netns(&pod)?;
//! let eth0 = inside.link_by_name("eth0")?;
//! inside.link_set_up(eth0.index)?;
//! # Ok(()) }
//! ```

mod addr;
mod error;
mod ethtool;
mod handle;
mod link;
mod monitor;
mod neigh;
mod netns;
mod route;
mod sysctl;

pub use addr::{
    Address, Family, IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_NODAD, IFA_F_OPTIMISTIC,
    IFA_F_PERMANENT, IFA_F_SECONDARY, IFA_F_TENTATIVE, RT_SCOPE_HOST, RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE, RT_SCOPE_SITE, RT_SCOPE_UNIVERSE,
};
pub use error::{NlError, Result};
pub use ethtool::{Ethtool, TX_CHECKSUM_IP_GENERIC};
pub use handle::Handle;
pub use link::{
    mac_to_string, parse_mac, BridgeInfo, BridgePortInfo, BridgeVlan, Link, VxlanInfo, VxlanSpec,
};
pub use monitor::{LinkEvent, LinkMonitor};
pub use neigh::{
    Fdb, Neigh, NTF_MASTER, NTF_SELF, NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP, NUD_PERMANENT,
    NUD_REACHABLE, NUD_STALE,
};
pub use netns::{join_netns_thread, Netns};
pub use route::{
    NextHop, Route, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, RTN_UNREACHABLE,
    RTPROT_BOOT, RTPROT_KERNEL, RTPROT_STATIC, RTPROT_UNSPEC, RT_TABLE_LOCAL, RT_TABLE_MAIN,
    RT_TABLE_UNSPEC,
};
pub use sysctl::{sysctl_get, sysctl_set};

#[cfg(test)]
mod tests {
    /// flanneld moves handles into worker threads.
    #[test]
    fn handles_are_send() {
        fn is_send<T: Send>() {}
        is_send::<super::Handle>();
        is_send::<super::Netns>();
        is_send::<super::LinkMonitor>();
        is_send::<super::NlError>();
    }
}
