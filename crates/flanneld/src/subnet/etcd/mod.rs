//! The etcd subnet manager (`pkg/subnet/etcd`): leases are keys under
//! `<prefix>/subnets` with a 24 h etcd lease, renewed before expiry.

pub mod lease;
pub mod watch;

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{anyhow, Result};
use tokio::sync::{mpsc, watch as signal};

use crate::config::NetConfig;
use crate::dataplane::Cmd;
use crate::flags::Opts;
use crate::lease::{Lease, LeaseAttrs};
use crate::registry::{EtcdConfig, Registry};
use crate::subnet::{Own, OwnEvent, StoredMacs, SubnetManager};
use crate::subnet_file::PrevSubnets;

/// The registry's view of the `--etcd-*` flags.
pub fn etcd_config(opts: &Opts) -> EtcdConfig {
    EtcdConfig {
        endpoints: opts.etcd_endpoints.clone(),
        prefix: opts.etcd_prefix.clone(),
        cafile: opts.etcd_cafile.clone(),
        certfile: opts.etcd_certfile.clone(),
        keyfile: opts.etcd_keyfile.clone(),
        username: opts.etcd_username.clone(),
        password: opts.etcd_password.clone(),
    }
}

/// `LocalManager`: the registry plus what acquisition and renewal need.
#[derive(Clone)]
pub struct EtcdManager {
    reg: Registry,
    /// The subnets of subnet.env from the previous run (`PreviousSubnet`).
    prev: PrevSubnets,
    /// The etcd lease TTL asked for, in seconds.
    ttl: i64,
    /// Renew this long before expiry (`--subnet-lease-renew-margin`).
    margin: Duration,
}

impl EtcdManager {
    pub fn new(reg: Registry, prev: PrevSubnets, ttl: i64, margin: Duration) -> EtcdManager {
        EtcdManager {
            reg,
            prev,
            ttl,
            margin,
        }
    }
}

impl SubnetManager for EtcdManager {
    fn name(&self) -> String {
        format!(
            "Etcd Local Manager with Previous Subnet: {}",
            self.prev
                .subnet
                .map_or("None".to_string(), |s| s.to_string())
        )
    }

    async fn get_network_config(&self) -> Result<NetConfig> {
        let text = self.reg.get_config().await?;
        let cfg = NetConfig::parse(&text).map_err(|e| anyhow!(e))?;
        // Leases are allocated from Network: an IPv6-only network needs the
        // Kubernetes subnet manager (podCIDRs) here.
        if !cfg.enable_ipv4 {
            anyhow::bail!(
                "weft's etcd subnet manager needs EnableIPv4: IPv6-only networks are supported \
                 with --kube-subnet-mgr only"
            );
        }
        Ok(cfg)
    }

    /// weft looks the MACs up in the lease for our public IP (flannel makes
    /// new random ones in etcd mode).
    async fn get_stored_macs(&self, public_ip: Ipv4Addr) -> Result<StoredMacs> {
        let (leases, _) = self.reg.get_subnets().await?;
        let previous = leases.iter().find(|l| l.attrs.public_ip == public_ip);
        Ok(StoredMacs {
            v4: previous.and_then(|l| l.attrs.vxlan()).map(|d| d.mac),
            v6: previous.and_then(|l| l.attrs.vxlan_v6()).map(|d| d.mac),
        })
    }

    async fn acquire_lease(
        &self,
        cfg: &NetConfig,
        attrs: &LeaseAttrs,
        stop: &mut signal::Receiver<bool>,
    ) -> Result<Option<Own>> {
        lease::acquire(&self.reg, cfg, attrs, &self.prev, self.ttl, stop).await
    }

    async fn watch_leases(
        self,
        own: Lease,
        dp: std::sync::mpsc::Sender<Cmd>,
        own_tx: mpsc::UnboundedSender<OwnEvent>,
    ) {
        watch::watch_leases(self.reg, own.subnet, dp, own_tx).await;
    }

    async fn keep_lease(
        self,
        own: Own,
        own_rx: mpsc::UnboundedReceiver<OwnEvent>,
        stop: signal::Receiver<bool>,
    ) -> i32 {
        lease::lease_loop(self.reg, own, own_rx, self.margin, self.ttl, stop).await
    }
}
