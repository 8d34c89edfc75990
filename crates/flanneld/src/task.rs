//! Small async helpers shared by the daemon, the dataplane set-up and the
//! subnet managers: blocking work off the runtime thread, retry-until-ok,
//! and the shutdown signal.

use std::time::Duration;

use anyhow::{anyhow, Result};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::backoff::Backoff;

/// Run netlink/iptables work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("worker thread failed: {e}"))?
}

/// Retry `f` every second (logging each failure) until it succeeds or a
/// signal arrives (None).
pub async fn until_ok<T, F, Fut>(
    stop: &mut watch::Receiver<bool>,
    what: &str,
    mut f: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut retry = Backoff::fixed(Duration::from_secs(1));
    loop {
        match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) => error!("{what} (retrying in 1s): {e:#}"),
        }
        if !retry.wait_or_stop(stop).await {
            return Ok(None);
        }
    }
}

/// True once SIGTERM or SIGINT arrived.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    warn!("cannot install a SIGTERM handler: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => info!("received SIGTERM"),
            _ = tokio::signal::ctrl_c() => info!("received SIGINT"),
        }
        let _ = tx.send(true);
    });
    rx
}
