//! The watch of `<prefix>/subnets`: other nodes' leases go to the
//! dataplane, changes of our own key to the lease keeper. Reconnects with
//! backoff from the last seen revision and re-lists when that revision was
//! compacted.

use std::time::Duration;

use ipnetwork::Ipv4Network;
use tokio::sync::mpsc;
use tracing::warn;

use crate::backoff::Backoff;
use crate::dataplane::Cmd;
use crate::lease::{make_subnet_key, parse_subnet_key, Lease};
use crate::registry::{lease_from_kv, EventType, Registry};
use crate::subnet::OwnEvent;

/// Watch every lease: others go to the dataplane, ours to the renewal loop.
/// Reconnects with backoff (100 ms → 5 s) from the last seen revision and
/// re-lists when that revision was compacted.
pub async fn watch_leases(
    reg: Registry,
    own_subnet: Ipv4Network,
    dp: std::sync::mpsc::Sender<Cmd>,
    own_tx: mpsc::UnboundedSender<OwnEvent>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut since: i64 = 0;
    let prefix = reg.subnets_prefix();
    loop {
        if since == 0 {
            match reg.get_subnets().await {
                Ok((leases, rev)) => {
                    let (mine, peers): (Vec<Lease>, Vec<Lease>) =
                        leases.into_iter().partition(|l| l.subnet == own_subnet);
                    match mine.first() {
                        Some(l) => {
                            let _ = own_tx.send(OwnEvent::Put {
                                etcd_lease: l.etcd_lease,
                            });
                        }
                        None => {
                            let _ = own_tx.send(OwnEvent::Deleted);
                        }
                    }
                    if dp.send(Cmd::Snapshot(peers)).is_err() {
                        return;
                    }
                    since = rev + 1;
                    backoff.reset();
                }
                Err(e) => {
                    warn!("failed to retrieve subnet leases: {e:#}");
                    backoff.wait().await;
                    continue;
                }
            }
        }
        let mut stream = match reg.watch_subnets(since).await {
            Ok(s) => s,
            Err(e) => {
                warn!("etcd watch for {prefix} failed ({e:#}), retrying from rev {since}");
                backoff.wait().await;
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(resp)) => {
                    if resp.canceled {
                        if resp.compact_revision > 0 {
                            warn!(
                                "etcd watch for {prefix} fell behind compaction (rev {since} < {}), re-listing and resuming",
                                resp.compact_revision
                            );
                            since = 0;
                        } else {
                            warn!("etcd watch for {prefix} canceled: {}", resp.cancel_reason);
                            backoff.wait().await;
                        }
                        break;
                    }
                    backoff.reset();
                    for ev in &resp.events {
                        let Some(kv) = &ev.kv else { continue };
                        since = since.max(kv.mod_revision + 1);
                        let key = String::from_utf8_lossy(&kv.key).into_owned();
                        let Some((sn, sn6)) = parse_subnet_key(&key) else {
                            warn!("{key:?}: not a subnet, skipping");
                            continue;
                        };
                        let own = sn == own_subnet;
                        let sent = match ev.r#type() {
                            EventType::Delete if own => own_tx.send(OwnEvent::Deleted).is_ok(),
                            EventType::Delete => {
                                dp.send(Cmd::Remove(make_subnet_key(sn, sn6))).is_ok()
                            }
                            EventType::Put if own => own_tx
                                .send(OwnEvent::Put {
                                    etcd_lease: kv.lease,
                                })
                                .is_ok(),
                            EventType::Put => match lease_from_kv(&key, &kv.value, kv.lease) {
                                Ok(l) => dp.send(Cmd::Upsert(l)).is_ok(),
                                Err(e) => {
                                    warn!("error parsing etcd event: {e}");
                                    true
                                }
                            },
                        };
                        if !sent && !own {
                            return;
                        }
                    }
                }
                Ok(None) => {
                    warn!(
                        "etcd watch channel for {prefix} closed, reconnecting from rev {since}..."
                    );
                    backoff.wait().await;
                    break;
                }
                Err(e) => {
                    warn!("etcd watch channel for {prefix} closed ({e}), reconnecting from rev {since}...");
                    backoff.wait().await;
                    break;
                }
            }
        }
    }
}
