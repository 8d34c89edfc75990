//! Step timings of a plugin verb, printed to stderr when `WEFT_TRACE=1`
//! (for profiling; stdout, the protocol channel, is untouched). One line per
//! step: "weft-trace PLUGIN STEP: X ms (total Y ms)". Layers below the plugin
//! (crates/firewall) print single durations with [`trace_duration`]:
//! "weft-trace LAYER WHAT: X ms".

use std::time::{Duration, Instant};

/// Whether `WEFT_TRACE=1`.
pub fn trace_enabled() -> bool {
    std::env::var_os("WEFT_TRACE").is_some_and(|v| v == "1")
}

/// Prints "weft-trace LAYER WHAT: X ms" when `WEFT_TRACE=1` (e.g. how long
/// one iptables-restore ran, how long a lock was waited for).
pub fn trace_duration(layer: &str, what: &str, took: Duration) {
    if trace_enabled() {
        eprintln!(
            "weft-trace {layer} {what}: {:.3} ms",
            took.as_secs_f64() * 1e3
        );
    }
}

pub struct Trace {
    plugin: &'static str,
    on: bool,
    start: Instant,
    last: Instant,
}

impl Trace {
    /// Starts the clock for `plugin` ("bridge", "portmap").
    pub fn new(plugin: &'static str) -> Trace {
        let now = Instant::now();
        Trace {
            plugin,
            on: trace_enabled(),
            start: now,
            last: now,
        }
    }

    /// Prints the time since the previous mark (or the start) and in total.
    pub fn mark(&mut self, step: &str) {
        if self.on {
            let now = Instant::now();
            eprintln!(
                "weft-trace {} {step}: {:.3} ms (total {:.3} ms)",
                self.plugin,
                (now - self.last).as_secs_f64() * 1e3,
                (now - self.start).as_secs_f64() * 1e3
            );
            self.last = now;
        }
    }
}
