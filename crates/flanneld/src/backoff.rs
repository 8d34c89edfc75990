//! The one retry delay of flanneld: sleep, then double, up to a ceiling;
//! back to the floor after a success. Every retry loop (lease acquisition,
//! the lease watch, the start-up retries) uses it, so the sleep-and-double
//! pattern is written once.

use std::time::Duration;

use tokio::sync::watch;

/// An exponential backoff between `min` and `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    cur: Duration,
}

impl Backoff {
    pub const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, cur: min }
    }

    /// A constant delay (a retry every `d`).
    pub const fn fixed(d: Duration) -> Backoff {
        Backoff::new(d, d)
    }

    /// The delay the next wait will sleep.
    pub fn current(&self) -> Duration {
        self.cur
    }

    /// After a success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.cur = self.min;
    }

    /// The delay to sleep now; the following one is doubled (capped).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.cur;
        self.cur = (self.cur * 2).min(self.max);
        d
    }

    /// Sleep the current delay and double it.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Like `wait`, but false (at once) if `stop` is or becomes true.
    pub async fn wait_or_stop(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let d = self.next_delay();
        sleep_or_stop(stop, d).await
    }
}

/// Sleep, or return false if asked to stop meanwhile.
pub async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.changed() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let got: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(got, vec![ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.current(), ms(100));
        let mut f = Backoff::fixed(ms(1000));
        assert_eq!((f.next_delay(), f.next_delay()), (ms(1000), ms(1000)));
    }

    #[tokio::test]
    async fn wait_or_stop_returns_false_once_stopped() {
        let (tx, mut rx) = watch::channel(false);
        let mut b = Backoff::fixed(Duration::from_secs(3600));
        let _ = tx.send(true);
        assert!(!b.wait_or_stop(&mut rx).await);
    }
}
