//! flannel's subnet manager (`pkg/subnet`'s `Manager` interface): where the
//! network config comes from, how our lease is acquired and kept, and how
//! the other nodes' leases reach the dataplane. The etcd manager
//! (`subnet::etcd`) and the Kubernetes manager (`subnet::kube`) implement
//! it; the daemon's main sequence only talks to the trait.

pub mod etcd;
pub mod kube;

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::Result;
use tokio::sync::{mpsc, watch};

use crate::config::NetConfig;
use crate::dataplane::Cmd;
use crate::lease::{Lease, LeaseAttrs};

/// Our lease and when to renew it.
#[derive(Debug, Clone)]
pub struct Own {
    pub lease: Lease,
    /// The TTL the store granted; None for a lease that is never renewed
    /// (an etcd reservation: a key without an etcd lease).
    pub granted: Option<i64>,
}

/// What the lease watch tells the keeper of our lease about our own key.
#[derive(Debug)]
pub enum OwnEvent {
    Put { etcd_lease: i64 },
    Deleted,
}

/// The VTEP MACs of our previous lease (`GetStoredMacAddresses`), so a
/// recreated device keeps its MAC and the peers' ARP/FDB entries stay valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredMacs {
    pub v4: Option<[u8; 6]>,
    pub v6: Option<[u8; 6]>,
}

/// `subnet.Manager`. Methods that run for the whole life of the daemon take
/// the manager by value (it is a cheap handle), so they can be spawned.
pub trait SubnetManager: Clone + Send + Sync + 'static {
    /// `Name()`, for "Created subnet manager: ...".
    fn name(&self) -> String;

    /// `GetNetworkConfig`: the parsed network config (an error is retried).
    fn get_network_config(&self) -> impl Future<Output = Result<NetConfig>> + Send;

    /// `GetStoredPublicIP`: addresses that replace `--public-ip(v6)` (the
    /// `node-public-ip(v6)` annotations in kube mode; none in etcd mode).
    fn get_stored_public_ips(
        &self,
    ) -> impl Future<Output = Result<(Option<Ipv4Addr>, Option<Ipv6Addr>)>> + Send {
        async { Ok((None, None)) }
    }

    /// `GetStoredMacAddresses`: the VTEP MACs our node published last time.
    fn get_stored_macs(
        &self,
        public_ip: Ipv4Addr,
    ) -> impl Future<Output = Result<StoredMacs>> + Send;

    /// `AcquireLease`, retried until it works or `stop` (None).
    fn acquire_lease(
        &self,
        cfg: &NetConfig,
        attrs: &LeaseAttrs,
        stop: &mut watch::Receiver<bool>,
    ) -> impl Future<Output = Result<Option<Own>>> + Send;

    /// `WatchLeases`: the other nodes' leases go to the dataplane as
    /// commands, events about our own lease to `own_tx`. Runs until the
    /// dataplane is gone.
    fn watch_leases(
        self,
        own: Lease,
        dp: std::sync::mpsc::Sender<Cmd>,
        own_tx: mpsc::UnboundedSender<OwnEvent>,
    ) -> impl Future<Output = ()> + Send;

    /// `RenewLease` + `WatchLease`: keep our lease until a signal (exit
    /// code 0) or until it is taken away (0 too, like Go).
    fn keep_lease(
        self,
        own: Own,
        own_rx: mpsc::UnboundedReceiver<OwnEvent>,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = i32> + Send;
}
