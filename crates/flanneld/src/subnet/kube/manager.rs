//! `kubeSubnetManager`: our lease is our Node's podCIDR(s), our attributes
//! go into its annotations, the peers are the other Nodes (watch.rs).
//!
//! The order of a start (flannel-kube.md §2), and where weft differs:
//! 1. the client, the node name (NODE_NAME, or the `spec.nodeName` of
//!    POD_NAMESPACE/POD_NAME), net-conf.json (read once; an error exits 1);
//! 2. `node-public-ip(v6)` from our node replace `--public-ip(v6)`;
//! 3. the VTEP MACs from our own `backend-data` (JSON, normalised keys);
//! 4. `AcquireLease`: **a node without a podCIDR waits** (Go exits and
//!    crash-loops; see docs/kube-client.md), and everything is checked
//!    (containment in Network, every enabled family present) **before**
//!    anything is written, so a node that is going to fail never
//!    advertises itself to the peers;
//! 5. after subnet.env: NetworkUnavailable=False, **once the first list of
//!    peers reached the dataplane** (Go sends it before any peer route
//!    exists), retried until it works (Go tries once).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use ipnetwork::Ipv4Network;
use tokio::sync::{mpsc, watch as signal};
use tracing::{info, warn};

use super::annotations::{self, Keys};
use super::client::{Client, ClientConfig};
use super::condition;
use super::env::{self, NodeName};
use super::types::Node;
use super::watch::PeerWatch;
use crate::backoff::Backoff;
use crate::config::NetConfig;
use crate::dataplane::Cmd;
use crate::lease::{Lease, LeaseAttrs};
use crate::subnet::{Own, OwnEvent, StoredMacs, SubnetManager};
use crate::task::until_ok;

/// How often a node without a podCIDR is looked at again.
const POD_CIDR_POLL: Duration = Duration::from_secs(2);
/// The NetworkUnavailable patch waits this long at most for the first
/// list of peers.
const LIST_WAIT: Duration = Duration::from_secs(30);

/// What the manager was built from (the kube flags and environment).
pub struct KubeSetup {
    pub client: ClientConfig,
    pub node: NodeName,
    pub net_conf_path: String,
    pub prefix: String,
    pub set_network_unavailable: bool,
}

struct Inner {
    client: Client,
    node_name: String,
    keys: Keys,
    cfg: NetConfig,
    set_network_unavailable: bool,
    /// True once the first list of peers reached the dataplane.
    listed: signal::Sender<bool>,
}

/// A cheap handle.
#[derive(Clone)]
pub struct KubeManager(Arc<Inner>);

impl KubeManager {
    /// `NewSubnetManager`: every error here ends flanneld (exit 1), as in
    /// Go, except that finding our node name through the Pod is retried
    /// (the API server may not be reachable yet at boot). None: a signal
    /// came first.
    pub async fn new(
        setup: KubeSetup,
        stop: &mut signal::Receiver<bool>,
    ) -> Result<Option<KubeManager>> {
        let client = Client::new(&setup.client)
            .map_err(|e| anyhow!("fail to create kubernetes config: {e}"))?;
        let node_name = match setup.node {
            NodeName::Given(n) => n,
            NodeName::FromPod { namespace, name } => {
                let what = format!("Failed to get pod {namespace}/{name} for its node name");
                let Some(n) = until_ok(stop, &what, || async {
                    let n = client.pod_node_name(&namespace, &name).await?;
                    if n.is_empty() {
                        bail!("node name not present in pod spec {namespace}/{name}");
                    }
                    Ok(n)
                })
                .await?
                else {
                    return Ok(None);
                };
                n
            }
        };
        let text = std::fs::read_to_string(&setup.net_conf_path)
            .map_err(|e| anyhow!("failed to read net conf: {}: {e}", setup.net_conf_path))?;
        let cfg = NetConfig::parse_kube(&text).map_err(|e| anyhow!(e))?;
        let keys = Keys::new(&setup.prefix).map_err(|e| anyhow!("{e}"))?;
        env::event_queue_depth(|k| std::env::var(k).ok()).map_err(|e| anyhow!(e))?;
        let (listed, _) = signal::channel(false);
        Ok(Some(KubeManager(Arc::new(Inner {
            client,
            node_name,
            keys,
            cfg,
            set_network_unavailable: setup.set_network_unavailable,
            listed,
        }))))
    }

    async fn own_node(&self) -> Result<Node> {
        Ok(self.0.client.get_node(&self.0.node_name).await?)
    }

    /// Our podCIDRs once the node has one, checked against the config.
    async fn wait_for_pod_cidrs(
        &self,
        cfg: &NetConfig,
        stop: &mut signal::Receiver<bool>,
    ) -> Result<Option<(Node, Lease)>> {
        let name = &self.0.node_name;
        let mut told = false;
        loop {
            let Some(node) = until_ok(stop, &format!("Failed to get node {name:?}"), || {
                self.own_node()
            })
            .await?
            else {
                return Ok(None);
            };
            let spec = &node.spec;
            // Go needs the singular podCIDR (#1224); podCIDRs alone will do.
            let single = spec
                .pod_cidr
                .clone()
                .filter(|c| !c.is_empty())
                .or_else(|| spec.pod_cidrs.first().cloned());
            if single.is_some() {
                let (v4, v6) = annotations::own_pod_cidrs(name, single.as_deref(), &spec.pod_cidrs)
                    .map_err(|e| anyhow!(e))?;
                annotations::check_contained(cfg, name, v4, v6).map_err(|e| anyhow!(e))?;
                let v4 = match (cfg.enable_ipv4, v4) {
                    (true, Some(n)) => n,
                    (true, None) => bail!(
                        "IPv4 is enabled but node {name:?} has no IPv4 podCIDR (spec.podCIDRs: {:?})",
                        spec.pod_cidrs
                    ),
                    // IPv6 only: a placeholder, as Go's zero IP4Net (never
                    // written, routed or compared: every use checks EnableIPv4).
                    (false, _) => Ipv4Network::from(Ipv4Addr::UNSPECIFIED),
                };
                let v6 = match (cfg.enable_ipv6, v6) {
                    (true, None) => bail!(
                        "IPv6 is enabled but node {name:?} has no IPv6 podCIDR (spec.podCIDRs: {:?})",
                        spec.pod_cidrs
                    ),
                    (true, v6) => v6,
                    (false, _) => None,
                };
                let lease = Lease {
                    subnet: v4,
                    ipv6_subnet: v6,
                    attrs: LeaseAttrs {
                        public_ip: Ipv4Addr::UNSPECIFIED,
                        public_ipv6: None,
                        backend_type: String::new(),
                        backend_data: None,
                        backend_v6_data: None,
                    },
                    etcd_lease: 0,
                };
                return Ok(Some((node, lease)));
            }
            if !told {
                warn!(
                    "node {name:?} pod cidr not assigned: waiting for spec.podCIDR (kube-controller-manager \
                     --allocate-node-cidrs, or set it on the Node); /readyz answers 503 until then"
                );
                told = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(POD_CIDR_POLL) => {}
                _ = stop.changed() => return Ok(None),
            }
        }
    }

    /// NetworkUnavailable=False, after the first list of peers (or
    /// LIST_WAIT), retried with backoff until it works or a signal.
    async fn complete_lease(&self, stop: &mut signal::Receiver<bool>) {
        let mut listed = self.0.listed.subscribe();
        let _ = tokio::time::timeout(LIST_WAIT, listed.wait_for(|l| *l)).await;
        let name = &self.0.node_name;
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            let sent = async {
                let node = self.own_node().await?;
                let body =
                    condition::patch_body(&condition::now_rfc3339(), &node.status.conditions);
                self.0.client.patch_node_status(name, body).await?;
                anyhow::Ok(())
            }
            .await;
            match sent {
                Ok(()) => {
                    info!("Set the NetworkUnavailable condition of node {name:?} to False");
                    return;
                }
                Err(e) => warn!(
                    "Failed to set the NetworkUnavailable condition of node {name:?} (retrying in {:?}): {e:#}",
                    backoff.current()
                ),
            }
            if !backoff.wait_or_stop(stop).await {
                return;
            }
        }
    }
}

impl SubnetManager for KubeManager {
    fn name(&self) -> String {
        format!("Kubernetes Subnet Manager - {}", self.0.node_name)
    }

    async fn get_network_config(&self) -> Result<NetConfig> {
        Ok(self.0.cfg.clone())
    }

    /// `node-public-ip` / `node-public-ipv6` (they beat the flags).
    async fn get_stored_public_ips(&self) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>)> {
        let node = self.own_node().await?;
        let ann = &node.metadata.annotations;
        let k = &self.0.keys;
        let pick = |key: &str| ann.get(key).filter(|v| !v.is_empty());
        let v4 = pick(&k.node_public_ip).and_then(|v| match v.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                warn!(
                    "Ignoring the annotation {}={v:?}: not an IPv4 address",
                    k.node_public_ip
                );
                None
            }
        });
        let v6 = pick(&k.node_public_ipv6).and_then(|v| match v.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                warn!(
                    "Ignoring the annotation {}={v:?}: not an IPv6 address",
                    k.node_public_ipv6
                );
                None
            }
        });
        Ok((v4, v6))
    }

    async fn get_stored_macs(&self, _public_ip: Ipv4Addr) -> Result<StoredMacs> {
        let node = self.own_node().await?;
        let ann = &node.metadata.annotations;
        Ok(StoredMacs {
            v4: annotations::stored_mac(ann.get(&self.0.keys.backend_data)),
            v6: annotations::stored_mac(ann.get(&self.0.keys.backend_v6_data)),
        })
    }

    async fn acquire_lease(
        &self,
        cfg: &NetConfig,
        attrs: &LeaseAttrs,
        stop: &mut signal::Receiver<bool>,
    ) -> Result<Option<Own>> {
        let Some((node, mut lease)) = self.wait_for_pod_cidrs(cfg, stop).await? else {
            return Ok(None);
        };
        lease.attrs = attrs.clone();
        let name = &self.0.node_name;
        let current = &node.metadata.annotations;
        let body = annotations::desired(&self.0.keys, current, attrs)
            .map(|new| annotations::patch_body(current, &new))
            .filter(|b| b != "{}");
        if let Some(body) = body {
            let what = format!("Failed to patch the annotations of node {name:?}");
            let patched = until_ok(stop, &what, || async {
                Ok(self.0.client.patch_node_status(name, body.clone()).await?)
            })
            .await?;
            if patched.is_none() {
                return Ok(None);
            }
            info!("Wrote the flannel annotations of node {name:?}");
        }
        info!(
            "Acquired lease: subnet {} (node {name:?} spec.podCIDR)",
            lease.subnet
        );
        Ok(Some(Own {
            lease,
            granted: None,
        }))
    }

    async fn watch_leases(
        self,
        own: Lease,
        dp: std::sync::mpsc::Sender<Cmd>,
        _own_tx: mpsc::UnboundedSender<OwnEvent>,
    ) {
        let w = PeerWatch {
            client: self.0.client.clone(),
            node_name: self.0.node_name.clone(),
            keys: self.0.keys.clone(),
            v4: self.0.cfg.enable_ipv4,
            v6: self.0.cfg.enable_ipv6,
            own,
            listed: self.0.listed.clone(),
        };
        w.run(dp).await;
    }

    /// Kube mode has no lease to renew: the condition, then wait for a
    /// signal (exit 0; annotations, routes and subnet.env stay, as in Go).
    async fn keep_lease(
        self,
        _own: Own,
        _own_rx: mpsc::UnboundedReceiver<OwnEvent>,
        mut stop: signal::Receiver<bool>,
    ) -> i32 {
        if self.0.set_network_unavailable {
            self.complete_lease(&mut stop).await;
        }
        let _ = stop.wait_for(|s| *s).await;
        0
    }
}
