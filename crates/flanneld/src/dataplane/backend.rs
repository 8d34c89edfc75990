//! The backend between registration and running (`RegisterNetwork`): the
//! vxlan devices or the host-gw settings exist before the lease, because the
//! VTEP MAC goes into the lease; once the lease is known the devices get
//! their addresses, and the backend becomes the running `Datapath`.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{bail, Context, Result};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use tracing::info;
use weft_netlink::{mac_to_string, Handle};

use crate::alloc;
use crate::config::{NetConfig, BACKEND_HOST_GW, BACKEND_VXLAN};
use crate::dataplane::{vxlan, Datapath, HostGw, VxlanDev};
use crate::iface::ExtIface;
use crate::lease::{Lease, LeaseAttrs, VxlanData};
use crate::task::blocking;

/// The backend between registration and running (one per process).
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Vxlan {
        vni: u32,
        v4: Option<(vxlan::DevConfig, weft_netlink::Link)>,
        v6: Option<(vxlan::DevConfig, weft_netlink::Link)>,
    },
    HostGw {
        gw: HostGw,
        mtu: u32,
    },
}

impl Backend {
    /// `RegisterNetwork`, first half: the devices exist before the lease,
    /// because their MAC goes into the lease.
    pub async fn register(
        cfg: &NetConfig,
        ext: &ExtIface,
        mac: Option<[u8; 6]>,
        mac6: Option<[u8; 6]>,
    ) -> Result<Backend> {
        match cfg.backend.kind.as_str() {
            BACKEND_VXLAN => {
                let b = &cfg.backend;
                let base_mtu = if b.mtu > 0 { b.mtu } else { ext.mtu };
                let unset4 = IpNetwork::V4(Ipv4Network::from(Ipv4Addr::UNSPECIFIED));
                let mk = |name: String, local: IpAddr, network: IpNetwork| {
                    let overhead = if local.is_ipv6() {
                        vxlan::OVERHEAD_V6
                    } else {
                        vxlan::OVERHEAD_V4
                    };
                    vxlan::DevConfig {
                        name,
                        vni: b.vni,
                        port: (b.port > 0).then_some(b.port),
                        local,
                        underlay: ext.index,
                        learning: b.learning,
                        gbp: b.gbp,
                        mtu: base_mtu.saturating_sub(overhead),
                        network,
                        address: unset4,
                        own: unset4,
                        direct_routing: b.direct_routing,
                        tx_checksum_off: b.disable_tx_checksum_offload,
                    }
                };
                let v4cfg = match (cfg.enable_ipv4, cfg.network, ext.ext_addr) {
                    (true, Some(net), Some(local)) => Some(mk(
                        format!("flannel.{}", b.vni),
                        IpAddr::V4(local),
                        IpNetwork::V4(net),
                    )),
                    _ => None,
                };
                let v6cfg = match (cfg.enable_ipv6, cfg.ipv6_network, ext.ext_v6_addr) {
                    (true, Some(net), Some(local)) => Some(mk(
                        format!("flannel-v6.{}", b.vni),
                        IpAddr::V6(local),
                        IpNetwork::V6(net),
                    )),
                    (true, _, None) => {
                        bail!("IPv6 is enabled but the interface has no IPv6 address")
                    }
                    _ => None,
                };
                let (v4, v6) = blocking(move || {
                    let h = Handle::new()?;
                    let v4 = match v4cfg {
                        Some(c) => {
                            let l = vxlan::ensure_device(
                                &h,
                                &c,
                                mac.unwrap_or_else(alloc::random_mac),
                            )?;
                            Some((c, l))
                        }
                        None => None,
                    };
                    let v6 = match v6cfg {
                        Some(c) => {
                            let l = vxlan::ensure_device(
                                &h,
                                &c,
                                mac6.unwrap_or_else(alloc::random_mac),
                            )?;
                            Some((c, l))
                        }
                        None => None,
                    };
                    Ok((v4, v6))
                })
                .await?;
                Ok(Backend::Vxlan { vni: b.vni, v4, v6 })
            }
            BACKEND_HOST_GW => {
                if ext.ext_addr != ext.iface_addr {
                    bail!(
                        "your PublicIP differs from interface IP, meaning that probably you're on a NAT, \
                         which is not supported by host-gw backend"
                    );
                }
                let mut networks: Vec<IpNetwork> =
                    cfg.network.map(IpNetwork::V4).into_iter().collect();
                if cfg.enable_ipv6 {
                    networks.extend(cfg.ipv6_network.map(IpNetwork::V6));
                }
                Ok(Backend::HostGw {
                    gw: HostGw {
                        ext_index: ext.index,
                        ext_name: ext.name.clone(),
                        networks,
                        own: Vec::new(),
                    },
                    mtu: ext.mtu,
                })
            }
            other => bail!("unknown backend type: {other}"),
        }
    }

    /// Our LeaseAttrs (`newSubnetAttrs`).
    pub fn attrs(&self, ext: &ExtIface) -> LeaseAttrs {
        let (backend_type, data, data6) = match self {
            Backend::Vxlan { vni, v4, v6 } => (
                BACKEND_VXLAN,
                v4.as_ref().map(|(_, l)| {
                    VxlanData {
                        vni: *vni,
                        mac: l.mac,
                    }
                    .to_value()
                }),
                v6.as_ref().map(|(_, l)| {
                    VxlanData {
                        vni: *vni,
                        mac: l.mac,
                    }
                    .to_value()
                }),
            ),
            Backend::HostGw { .. } => (BACKEND_HOST_GW, None, None),
        };
        if let Backend::Vxlan {
            v4: Some((_, l)), ..
        } = self
        {
            info!("VXLAN device MAC {}", mac_to_string(&l.mac));
        }
        LeaseAttrs {
            public_ip: ext.ext_addr.unwrap_or(Ipv4Addr::UNSPECIFIED),
            public_ipv6: ext.ext_v6_addr.filter(|_| self.v6_enabled()),
            backend_type: backend_type.into(),
            backend_data: data,
            backend_v6_data: data6,
        }
    }

    fn v6_enabled(&self) -> bool {
        match self {
            Backend::Vxlan { v6, .. } => v6.is_some(),
            Backend::HostGw { gw, .. } => gw.networks.iter().any(|n| n.is_ipv6()),
        }
    }

    /// `RegisterNetwork`, second half: address the devices.
    pub async fn configure(&mut self, cfg: &NetConfig, lease: &Lease) -> Result<()> {
        match self {
            Backend::Vxlan { v4, v6, .. } => {
                if let Some((c, _)) = v4.as_mut() {
                    c.address = IpNetwork::V4(Ipv4Network::new(lease.subnet.network(), 32)?);
                    c.own = IpNetwork::V4(lease.subnet);
                }
                if let (Some((c, _)), Some(sn6)) = (v6.as_mut(), lease.ipv6_subnet) {
                    c.address = IpNetwork::V6(Ipv6Network::new(sn6.network(), 128)?);
                    c.own = IpNetwork::V6(sn6);
                }
                let todo: Vec<(vxlan::DevConfig, u32)> = v4
                    .iter()
                    .chain(v6.iter())
                    .map(|(c, l)| (c.clone(), l.index))
                    .collect();
                blocking(move || {
                    let h = Handle::new()?;
                    for (c, index) in &todo {
                        vxlan::configure(&h, *index, c)
                            .with_context(|| format!("failed to configure interface {}", c.name))?;
                    }
                    Ok(())
                })
                .await
            }
            Backend::HostGw { gw, .. } => {
                if cfg.enable_ipv4 {
                    gw.own.push(IpNetwork::V4(lease.subnet));
                }
                if cfg.enable_ipv6 {
                    gw.own.extend(lease.ipv6_subnet.map(IpNetwork::V6));
                }
                Ok(())
            }
        }
    }

    /// FLANNEL_MTU: the VXLAN device's MTU, or the interface's for host-gw.
    pub fn mtu(&self, ext: &ExtIface) -> u32 {
        match self {
            Backend::Vxlan { v4, v6, .. } => {
                v4.as_ref().or(v6.as_ref()).map_or(ext.mtu, |(_, l)| l.mtu)
            }
            Backend::HostGw { mtu, .. } => *mtu,
        }
    }

    pub fn into_datapath(self) -> Datapath {
        match self {
            Backend::Vxlan { v4, v6, .. } => Datapath::Vxlan {
                v4: v4.map(|(c, l)| VxlanDev::new(c, &l)),
                v6: v6.map(|(c, l)| VxlanDev::new(c, &l)),
            },
            Backend::HostGw { gw, .. } => Datapath::HostGw(gw),
        }
    }
}
