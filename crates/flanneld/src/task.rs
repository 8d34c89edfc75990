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

/// Retry `f` with a backoff of 1 s, doubling up to [`RETRY_MAX`] (Go retries
/// every second), until it succeeds or a signal arrives (None). Each failure
/// is logged once, with the error's Display chain and the next delay.
pub async fn until_ok<T, F, Fut>(
    stop: &mut watch::Receiver<bool>,
    what: &str,
    mut f: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut retry = Backoff::new(Duration::from_secs(1), RETRY_MAX);
    loop {
        match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) => error!("{what} (retrying in {}s): {e:#}", retry.current().as_secs()),
        }
        if !retry.wait_or_stop(stop).await {
            return Ok(None);
        }
    }
}

/// The longest wait between two tries of [`until_ok`].
pub const RETRY_MAX: Duration = Duration::from_secs(5);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off() {
        let mut b = Backoff::new(Duration::from_secs(1), RETRY_MAX);
        let seen: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seen, vec![1, 2, 4, 5, 5, 5]);
    }
}
