//! Step timings, printed to stderr when `WEFT_TRACE=1` (profiling; stdout untouched).

use std::time::Instant;

pub struct Trace {
    on: bool,
    start: Instant,
    last: Instant,
}

impl Trace {
    pub fn new() -> Trace {
        let now = Instant::now();
        Trace {
            on: std::env::var_os("WEFT_TRACE").is_some_and(|v| v == "1"),
            start: now,
            last: now,
        }
    }

    pub fn mark(&mut self, step: &str) {
        if self.on {
            let now = Instant::now();
            eprintln!(
                "weft-trace portmap {step}: {:.3} ms (total {:.3} ms)",
                (now - self.last).as_secs_f64() * 1e3,
                (now - self.start).as_secs_f64() * 1e3
            );
            self.last = now;
        }
    }
}
