//! The peers in kube mode: LIST the nodes, then WATCH from the list's
//! resourceVersion with bookmarks. Each node with
//! `<p>/kube-subnet-manager=true` becomes a lease (`nodeToLease`); the
//! dataplane gets the whole set after every (re)list and then one command
//! per change.
//!
//! Where this does better than Go's informer (flannel-kube.md §6, §8):
//! - the change test compares the computed lease (subnet, endpoint, MAC,
//!   backend type), not three annotation strings, so a podCIDR change or a
//!   dual-stack peer whose v4 data alone changed is propagated, and the
//!   kubelet's heartbeats cost a comparison and nothing else;
//! - no event queue to overflow or reorder: each event is applied in order,
//!   and the dataplane channel is unbounded (EVENT_QUEUE_DEPTH is checked
//!   but has nothing to size);
//! - a relist (after 410 Gone or a reconnect that lost history) is diffed
//!   against the kernel state by the dataplane, so peers deleted meanwhile
//!   lose their routes;
//! - a node whose annotations turn bad is logged once per distinct error
//!   and keeps its last good lease; one that drops the annotation keeps it
//!   too (as in Go): only a deletion removes a peer;
//! - our own node's flannel annotations are put back when something else
//!   (another controller, a human) changes or removes them.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch as signal;
use tracing::{debug, info, warn};

use super::annotations::{self, Keys};
use super::client::Client;
use super::types::{Node, WatchEvent};
use crate::backoff::Backoff;
use crate::dataplane::Cmd;
use crate::lease::Lease;

/// What the watch needs to know about us.
#[derive(Clone)]
pub struct PeerWatch {
    pub client: Client,
    pub node_name: String,
    pub keys: Keys,
    pub v4: bool,
    pub v6: bool,
    /// Our lease: its subnet filters nodes that claim it, its attributes
    /// are what our annotations must say.
    pub own: Lease,
    /// Set once the first list reached the dataplane.
    pub listed: signal::Sender<bool>,
}

/// How long the server keeps one watch open (client-go picks 5-10 min).
const WATCH_SECS: u64 = 300;
/// A watch that says nothing (not even a bookmark) this much longer than
/// its timeout is dead: reconnect.
const WATCH_GRACE: Duration = Duration::from_secs(30);
/// Our own annotations are re-asserted at most this often.
const REASSERT_EVERY: Duration = Duration::from_secs(5);

/// The peers we know, by node name, and the last error per bad node.
#[derive(Default)]
struct Peers {
    leases: HashMap<String, Lease>,
    bad: HashMap<String, String>,
    last_reassert: Option<tokio::time::Instant>,
}

impl PeerWatch {
    /// Runs until the dataplane is gone.
    pub async fn run(self, dp: std::sync::mpsc::Sender<Cmd>) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut peers = Peers::default();
        let mut rv = String::new();
        loop {
            if rv.is_empty() {
                match self.client.list_nodes().await {
                    Ok(list) => {
                        // Nodes gone from the list are dropped; a node whose
                        // annotations turned bad keeps its last good lease.
                        let before = std::mem::take(&mut peers.leases);
                        for node in &list.items {
                            let name = &node.metadata.name;
                            self.consider(&mut peers, node, false).await;
                            if peers.bad.contains_key(name) {
                                if let Some(l) = before.get(name) {
                                    peers.leases.insert(name.clone(), l.clone());
                                }
                            }
                        }
                        info!(
                            "Listed {} nodes (resourceVersion {}): {} peers",
                            list.items.len(),
                            list.metadata.resource_version,
                            peers.leases.len()
                        );
                        let all = peers.leases.values().cloned().collect();
                        if dp.send(Cmd::Snapshot(all)).is_err() {
                            return;
                        }
                        let _ = self.listed.send(true);
                        rv = list.metadata.resource_version;
                        backoff.reset();
                    }
                    Err(e) => {
                        warn!(
                            "Failed to list nodes (retrying in {:?}): {e}",
                            backoff.current()
                        );
                        backoff.wait().await;
                        continue;
                    }
                }
            }
            match self
                .watch_from(&mut rv, &mut peers, &dp, &mut backoff)
                .await
            {
                Flow::Stop => return,
                Flow::Relist => rv.clear(),
                Flow::Rewatch => {}
            }
        }
    }

    /// One watch connection, until it ends.
    async fn watch_from(
        &self,
        rv: &mut String,
        peers: &mut Peers,
        dp: &std::sync::mpsc::Sender<Cmd>,
        backoff: &mut Backoff,
    ) -> Flow {
        let mut w = match self.client.watch_nodes(rv, WATCH_SECS).await {
            Ok(w) => w,
            Err(e) => {
                warn!(
                    "Failed to watch nodes from resourceVersion {rv} (retrying in {:?}): {e}",
                    backoff.current()
                );
                let gone = e.code() == Some(410);
                backoff.wait().await;
                return if gone { Flow::Relist } else { Flow::Rewatch };
            }
        };
        let idle = Duration::from_secs(WATCH_SECS) + WATCH_GRACE;
        loop {
            let ev = match tokio::time::timeout(idle, w.next()).await {
                Err(_) => {
                    warn!("The node watch went silent for {idle:?}: reconnecting");
                    return Flow::Rewatch;
                }
                Ok(Ok(None)) => {
                    debug!("The node watch ended (resourceVersion {rv}): watching again");
                    return Flow::Rewatch;
                }
                Ok(Err(e)) => {
                    warn!(
                        "The node watch failed (reconnecting in {:?}): {e}",
                        backoff.current()
                    );
                    backoff.wait().await;
                    return Flow::Rewatch;
                }
                Ok(Ok(Some(Err(e)))) => {
                    warn!("Skipping a watch event: {e}");
                    continue;
                }
                Ok(Ok(Some(Ok(ev)))) => ev,
            };
            backoff.reset();
            match ev {
                WatchEvent::Added(node) | WatchEvent::Modified(node) => {
                    set_rv(rv, &node);
                    if let Some(cmds) = self.consider(peers, &node, true).await {
                        for c in cmds {
                            if dp.send(c).is_err() {
                                return Flow::Stop;
                            }
                        }
                    }
                }
                WatchEvent::Deleted(node) => {
                    set_rv(rv, &node);
                    peers.bad.remove(&node.metadata.name);
                    if let Some(old) = peers.leases.remove(&node.metadata.name) {
                        info!(
                            "Node {:?} deleted: removing its subnet {}",
                            node.metadata.name, old.subnet
                        );
                        if dp.send(Cmd::Remove(old.key())).is_err() {
                            return Flow::Stop;
                        }
                    }
                }
                WatchEvent::Bookmark(v) => {
                    if !v.is_empty() {
                        *rv = v;
                    }
                }
                WatchEvent::Error(st) if st.is_gone() => {
                    info!(
                        "The node watch's resourceVersion {rv} is gone ({}): listing again",
                        st.message
                    );
                    return Flow::Relist;
                }
                WatchEvent::Error(st) => {
                    warn!(
                        "The node watch sent an error ({} {}): reconnecting",
                        st.code, st.message
                    );
                    backoff.wait().await;
                    return Flow::Rewatch;
                }
            }
        }
    }

    /// A node as seen in a list or an event. In the watch (`live`), the
    /// dataplane commands it calls for; in a list, the lease is only
    /// recorded (the caller sends the snapshot).
    async fn consider(&self, peers: &mut Peers, node: &Node, live: bool) -> Option<Vec<Cmd>> {
        let name = &node.metadata.name;
        let ann = &node.metadata.annotations;
        if *name == self.node_name {
            self.reassert(peers, node).await;
            return None;
        }
        if ann.get(&self.keys.subnet_manager).map(String::as_str) != Some("true") {
            return None;
        }
        let lease = match annotations::node_to_lease(
            &self.keys,
            ann,
            node.spec.pod_cidr.as_deref(),
            &node.spec.pod_cidrs,
            self.v4,
            self.v6,
        ) {
            Ok(l) => l,
            Err(e) => {
                if peers.bad.get(name) != Some(&e) {
                    let kept = peers.leases.get(name).map_or(String::new(), |l| {
                        format!(" (keeping its last good subnet {})", l.subnet)
                    });
                    warn!("Error turning node {name:?} to lease: {e}{kept}");
                    peers.bad.insert(name.clone(), e);
                }
                return None;
            }
        };
        peers.bad.remove(name);
        if (self.v4 && lease.subnet == self.own.subnet)
            || (self.v6 && lease.ipv6_subnet.is_some() && lease.ipv6_subnet == self.own.ipv6_subnet)
        {
            warn!("Node {name:?} claims our subnet {}: ignored", lease.subnet);
            return None;
        }
        let old = peers.leases.insert(name.clone(), lease.clone());
        if !live || old.as_ref() == Some(&lease) {
            return None;
        }
        let mut cmds = Vec::new();
        if let Some(old) = old {
            if old.key() != lease.key() {
                cmds.push(Cmd::Remove(old.key()));
            }
        }
        info!(
            "Peer {name:?}: subnet {} via {} ({})",
            lease.subnet, lease.attrs.public_ip, lease.attrs.backend_type
        );
        cmds.push(Cmd::Upsert(lease));
        Some(cmds)
    }

    /// Put our flannel annotations back when they drifted.
    async fn reassert(&self, peers: &mut Peers, node: &Node) {
        let ann = &node.metadata.annotations;
        let Some(new) = annotations::desired(&self.keys, ann, &self.own.attrs) else {
            return;
        };
        // With an overwrite annotation Go's test always says "patch"; only
        // a patch that changes something is sent.
        let body = annotations::patch_body(ann, &new);
        if body == "{}" {
            return;
        }
        let now = tokio::time::Instant::now();
        if peers
            .last_reassert
            .is_some_and(|t| now - t < REASSERT_EVERY)
        {
            return;
        }
        peers.last_reassert = Some(now);
        warn!("Our node's flannel annotations changed underneath: writing them again");
        if let Err(e) = self.client.patch_node_status(&self.node_name, body).await {
            warn!("Failed to restore our node's annotations: {e}");
        }
    }
}

enum Flow {
    Stop,
    Relist,
    Rewatch,
}

fn set_rv(rv: &mut String, node: &Node) {
    if !node.metadata.resource_version.is_empty() {
        rv.clone_from(&node.metadata.resource_version);
    }
}
