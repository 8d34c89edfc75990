//! The etcd lease: acquisition (`AcquireLease`: reuse ours, the previous
//! subnet, or a free one, with create-if-absent against racing nodes) and
//! renewal (`RenewLease` before expiry, following changes of our own key).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use ipnetwork::{Ipv4Network, Ipv6Network};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::alloc::{self, Choice};
use crate::backoff::Backoff;
use crate::config::NetConfig;
use crate::lease::{Lease, LeaseAttrs};
use crate::registry::{Created, Registry};
use crate::subnet::{Own, OwnEvent};
use crate::subnet_file::PrevSubnets;

/// `raceRetries`.
const RACE_RETRIES: usize = 10;

/// Seconds until renewal: flannel renews `margin` before expiry. With a
/// test TTL shorter than the margin, halfway.
fn renew_in(remaining: i64, margin: Duration, full_ttl: i64) -> Duration {
    let m = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
    let secs = if m < full_ttl {
        remaining.saturating_sub(m)
    } else {
        remaining / 2
    };
    Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1))
}

/// `AcquireLease`, retried until it works (flannel exits on the first etcd
/// error here; a supervisor then restarts it).
pub async fn acquire(
    reg: &Registry,
    cfg: &NetConfig,
    attrs: &LeaseAttrs,
    prev: &PrevSubnets,
    ttl: i64,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Own>> {
    let mut retry = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        match try_acquire(reg, cfg, attrs, prev, ttl).await {
            Ok(own) => return Ok(Some(own)),
            Err(e) => error!(
                "Failed to acquire lease (retrying in {}s): {e:#}",
                retry.current().as_secs()
            ),
        }
        if !retry.wait_or_stop(stop).await {
            return Ok(None);
        }
    }
}

async fn try_acquire(
    reg: &Registry,
    cfg: &NetConfig,
    attrs: &LeaseAttrs,
    prev: &PrevSubnets,
    ttl: i64,
) -> Result<Own> {
    for _ in 0..RACE_RETRIES {
        let (leases, _) = reg.get_subnets().await?;
        let plan = alloc::plan(
            cfg,
            &leases,
            attrs.public_ip,
            prev,
            &mut alloc::random_index,
        )
        .map_err(|e| anyhow!(e))?;
        if let Some(old) = plan.delete {
            info!(
                "Found lease ({}) for current IP ({}) but not compatible with current config, deleting",
                old.subnet, attrs.public_ip
            );
            reg.delete_subnet(old.subnet, old.ipv6_subnet).await?;
        }
        match plan.choice {
            Choice::Reuse(l) => {
                info!(
                    "Found lease (ip: {} ipv6: {}) for current IP ({}), reusing",
                    l.subnet,
                    l.ipv6_subnet.map_or("-".into(), |s| s.to_string()),
                    attrs.public_ip
                );
                // A key without an etcd lease is a reservation: keep it so.
                let t = if l.etcd_lease == 0 { 0 } else { ttl };
                let (id, granted) = reg.update_subnet(l.subnet, l.ipv6_subnet, attrs, t).await?;
                if l.etcd_lease != 0 && l.etcd_lease != id {
                    reg.revoke(l.etcd_lease).await;
                }
                return Ok(own_from(l.subnet, l.ipv6_subnet, attrs, id, granted));
            }
            Choice::Create {
                subnet,
                ipv6_subnet,
                previous,
            } => {
                if previous {
                    info!("Found previously leased subnet ({subnet}), reusing");
                } else {
                    info!(
                        "Picking subnet in range {} ... {}",
                        cfg.subnet_min, cfg.subnet_max
                    );
                }
                match reg.create_subnet(subnet, ipv6_subnet, attrs, ttl).await? {
                    Created::Yes {
                        etcd_lease,
                        ttl: granted,
                    } => {
                        info!(
                            "Allocated lease (ip: {subnet} ipv6: {}) to current node ({})",
                            ipv6_subnet.map_or("-".into(), |s| s.to_string()),
                            attrs.public_ip
                        );
                        return Ok(own_from(subnet, ipv6_subnet, attrs, etcd_lease, granted));
                    }
                    Created::Taken => {
                        warn!("subnet {subnet} was taken meanwhile, trying again");
                        continue;
                    }
                }
            }
        }
    }
    bail!("Max retries reached trying to acquire a subnet")
}

fn own_from(
    subnet: Ipv4Network,
    ipv6_subnet: Option<Ipv6Network>,
    attrs: &LeaseAttrs,
    etcd_lease: i64,
    granted: i64,
) -> Own {
    Own {
        lease: Lease {
            subnet,
            ipv6_subnet,
            attrs: attrs.clone(),
            etcd_lease,
        },
        granted: (etcd_lease != 0).then_some(granted),
    }
}

/// `CompleteLease`: renew before expiry (retrying every minute, forever),
/// follow our key's changes, exit when it is deleted.
pub async fn lease_loop(
    reg: Registry,
    mut own: Own,
    mut own_rx: mpsc::UnboundedReceiver<OwnEvent>,
    margin: Duration,
    ttl: i64,
    mut stop: watch::Receiver<bool>,
) -> i32 {
    let mut renew_at = own
        .granted
        .map(|g| Instant::now() + renew_in(g, margin, ttl));
    if let Some(t) = renew_at {
        info!(
            "Waiting for {}s to renew lease",
            t.saturating_duration_since(Instant::now()).as_secs()
        );
    }
    let far = Duration::from_secs(365 * 24 * 3600);
    loop {
        let wait = renew_at.map_or(far, |t| t.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = stop.changed() => {
                info!("Exiting: the VXLAN device, routes and rules stay in place");
                return 0;
            }
            _ = tokio::time::sleep(wait) => {
                let l = &own.lease;
                match reg.update_subnet(l.subnet, l.ipv6_subnet, &l.attrs, ttl).await {
                    Ok((id, granted)) => {
                        let old = own.lease.etcd_lease;
                        own.lease.etcd_lease = id;
                        renew_at = Some(Instant::now() + renew_in(granted, margin, ttl));
                        info!("Lease renewed, new expiration in {granted}s (etcd lease {id:x})");
                        if old != id {
                            reg.revoke(old).await;
                        }
                    }
                    Err(e) => {
                        error!("Error renewing lease (trying again in 1 min): {e:#}");
                        renew_at = Some(Instant::now() + Duration::from_secs(60));
                    }
                }
            }
            ev = own_rx.recv() => match ev {
                Some(OwnEvent::Put { etcd_lease }) if etcd_lease != own.lease.etcd_lease => {
                    // Somebody re-put our key (another agent, or an admin).
                    own.lease.etcd_lease = etcd_lease;
                    if etcd_lease == 0 {
                        renew_at = None;
                        info!("Our lease is now a reservation (no etcd lease): no renewal needed");
                    } else {
                        let remaining = reg.time_to_live(etcd_lease).await.unwrap_or(ttl);
                        let d = renew_in(remaining, margin, ttl);
                        renew_at = Some(Instant::now() + d);
                        info!("Waiting for {}s to renew lease", d.as_secs());
                    }
                }
                Some(OwnEvent::Put { .. }) => {}
                Some(OwnEvent::Deleted) => {
                    error!("Lease has been revoked. Shutting down daemon.");
                    return 0;
                }
                None => {
                    // The watcher is gone; keep renewing regardless.
                    warn!("lease watch ended; renewal continues on its timer");
                    own_rx = mpsc::unbounded_channel().1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_schedule() {
        let hour = Duration::from_secs(3600);
        // Go: renew at expiration - margin.
        assert_eq!(renew_in(86400, hour, 86400), Duration::from_secs(82800));
        assert_eq!(renew_in(60, hour, 86400), Duration::from_secs(1));
        // A test TTL below the margin: halfway.
        assert_eq!(renew_in(10, hour, 10), Duration::from_secs(5));
    }
}
