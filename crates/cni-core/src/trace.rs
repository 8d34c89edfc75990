//! Step timings of a plugin verb, printed to stderr when `WEFT_TRACE=1`
//! (for profiling; stdout, the protocol channel, is untouched). One line per
//! step: "weft-trace PLUGIN STEP: X ms (total Y ms)".

use std::time::Instant;

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
            on: std::env::var_os("WEFT_TRACE").is_some_and(|v| v == "1"),
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
