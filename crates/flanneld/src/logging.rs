//! flanneld's logging: klog's flags (`-v`, `--vmodule`, `--log_backtrace_at`,
//! the three Go flanneld copies from klog) and two line formats.
//!
//! - `-v N`: weft's events at INFO for 0, DEBUG for 1-3, TRACE for 4+.
//! - `--vmodule pattern=N,...`: klog's syntax and first-match rule. The
//!   patterns are matched (`*`, `?` globs, like klog's `filepath.Match`)
//!   against weft's source file names without `.rs` (`daemon`, `vxlan`, ...,
//!   [`SOURCES`]), or `dir/name` for a pattern with a slash. Go's own file
//!   names (`vxlan_network`, `main`...) mostly match nothing here: such a
//!   pattern, and a level of 0 (which klog ignores), has no effect, and a
//!   note at start-up says so.
//! - `--log_backtrace_at file:N`: klog's syntax is checked; weft has no
//!   goroutine stacks to dump, so it has no effect (noted at start-up).
//! - `--log-format klog`: klog's header (`Lmmdd hh:mm:ss.uuuuuu pid
//!   file:line] msg`, local time) instead of the default text lines.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::flags::Opts;

/// weft flanneld's source files (name for `--vmodule`, tracing target).
/// `tests::sources_list_every_file` keeps it in step with `src/`.
pub const SOURCES: &[(&str, &str)] = &[
    ("main", "flanneld"),
    ("alloc", "weft_flanneld::alloc"),
    ("backoff", "weft_flanneld::backoff"),
    ("config", "weft_flanneld::config"),
    ("daemon", "weft_flanneld::daemon"),
    ("dataplane/mod", "weft_flanneld::dataplane"),
    ("dataplane/hostgw", "weft_flanneld::dataplane::hostgw"),
    ("dataplane/vxlan", "weft_flanneld::dataplane::vxlan"),
    ("dataplane/backend", "weft_flanneld::dataplane::backend"),
    ("flags", "weft_flanneld::flags"),
    ("healthz", "weft_flanneld::healthz"),
    ("iface", "weft_flanneld::iface"),
    ("lease", "weft_flanneld::lease"),
    ("lib", "weft_flanneld"),
    ("logging", "weft_flanneld::logging"),
    ("registry", "weft_flanneld::registry"),
    ("subnet/mod", "weft_flanneld::subnet"),
    ("subnet/etcd/mod", "weft_flanneld::subnet::etcd"),
    ("subnet/etcd/lease", "weft_flanneld::subnet::etcd::lease"),
    ("subnet/etcd/watch", "weft_flanneld::subnet::etcd::watch"),
    ("subnet/kube/mod", "weft_flanneld::subnet::kube"),
    (
        "subnet/kube/annotations",
        "weft_flanneld::subnet::kube::annotations",
    ),
    ("subnet/kube/client", "weft_flanneld::subnet::kube::client"),
    (
        "subnet/kube/condition",
        "weft_flanneld::subnet::kube::condition",
    ),
    ("subnet/kube/env", "weft_flanneld::subnet::kube::env"),
    (
        "subnet/kube/kubeconfig",
        "weft_flanneld::subnet::kube::kubeconfig",
    ),
    (
        "subnet/kube/manager",
        "weft_flanneld::subnet::kube::manager",
    ),
    ("subnet/kube/types", "weft_flanneld::subnet::kube::types"),
    ("subnet/kube/watch", "weft_flanneld::subnet::kube::watch"),
    ("subnet_file", "weft_flanneld::subnet_file"),
    ("task", "weft_flanneld::task"),
    ("traffic", "weft_flanneld::traffic"),
];

const VMODULE_SYNTAX: &str = "syntax error: expect comma-separated list of filename=N";

/// klog's `parseModuleSpec`: (pattern, level) pairs; empty items are
/// skipped, level-0 items are kept (and reported as without effect).
pub fn parse_vmodule(value: &str) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for pat in value.split(',') {
        if pat.is_empty() {
            continue;
        }
        let parts: Vec<&str> = pat.split('=').collect();
        let [pattern, level] = parts.as_slice() else {
            return Err(VMODULE_SYNTAX.into());
        };
        if pattern.is_empty() || level.is_empty() {
            return Err(VMODULE_SYNTAX.into());
        }
        let v: i32 = level.parse().map_err(|_| VMODULE_SYNTAX.to_string())?;
        if v < 0 {
            return Err("negative value for vmodule level".into());
        }
        out.push((pattern.to_string(), v.unsigned_abs()));
    }
    Ok(out)
}

/// clap value parser for `--vmodule`.
pub fn check_vmodule(value: &str) -> Result<String, String> {
    parse_vmodule(value).map(|_| value.to_string())
}

/// klog's `traceLocation.Set`: "" or `file.ext:N` with N > 0.
pub fn check_backtrace_at(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    const SYNTAX: &str = "syntax error: expect file.go:234";
    let fields: Vec<&str> = value.split(':').collect();
    let [file, line] = fields.as_slice() else {
        return Err(SYNTAX.into());
    };
    if !file.contains('.') {
        return Err(SYNTAX.into());
    }
    let n: i64 = line.parse().map_err(|_| SYNTAX.to_string())?;
    if n <= 0 {
        return Err("negative or zero value for level".into());
    }
    Ok(value.to_string())
}

/// `filepath.Match` for `*` and `?` (no character classes in practice).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            let rest = pattern.get(1..).unwrap_or_default();
            (0..=name.len()).any(|i| {
                let tail = name.get(i..).unwrap_or_default();
                // `*` does not cross a path separator.
                !name.get(..i).unwrap_or_default().contains(&b'/') && glob(rest, tail)
            })
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(
            pattern.get(1..).unwrap_or_default(),
            name.get(1..).unwrap_or_default(),
        ),
        (Some(p), Some(c)) if p == c => glob(
            pattern.get(1..).unwrap_or_default(),
            name.get(1..).unwrap_or_default(),
        ),
        _ => false,
    }
}

/// Does klog pattern `pattern` select source `source` (`dir/name`)?
fn selects(pattern: &str, source: &str) -> bool {
    let pattern = pattern.strip_suffix(".rs").unwrap_or(pattern);
    let subject = if pattern.contains('/') {
        source
    } else {
        source.rsplit('/').next().unwrap_or(source)
    };
    glob(pattern.as_bytes(), subject.as_bytes())
}

/// klog V level → the tracing level of weft's events.
pub fn level_of(v: u32) -> LevelFilter {
    match v {
        0 => LevelFilter::INFO,
        1..=3 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The filter for `-v` and `--vmodule`, and the notes to log about what has
/// no effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// (target, level) for every weft source.
    pub targets: Vec<(&'static str, LevelFilter)>,
    pub notes: Vec<String>,
}

pub fn plan(v: u32, vmodule: &str, backtrace_at: &str) -> Plan {
    let pats = parse_vmodule(vmodule).unwrap_or_default();
    let mut notes = Vec::new();
    for (pat, level) in &pats {
        let hits: Vec<&str> = SOURCES
            .iter()
            .filter(|(s, _)| selects(pat, s))
            .map(|(s, _)| *s)
            .collect();
        if *level == 0 {
            notes.push(format!(
                "--vmodule {pat}=0 has no effect (klog ignores level 0; -v={v} applies)"
            ));
        } else if hits.is_empty() {
            let names: Vec<&str> = SOURCES.iter().map(|(s, _)| *s).collect();
            notes.push(format!(
                "--vmodule {pat}={level} has no effect: it matches none of weft flanneld's source files ({})",
                names.join(", ")
            ));
        }
    }
    let targets = SOURCES
        .iter()
        .map(|(source, target)| {
            // klog: the first pattern that matches the file decides.
            let v = pats
                .iter()
                .filter(|(_, level)| *level > 0)
                .find(|(p, _)| selects(p, source))
                .map_or(v, |(_, level)| *level);
            (*target, level_of(v))
        })
        .collect();
    if !backtrace_at.is_empty() {
        notes.push(format!(
            "--log_backtrace_at={backtrace_at} has no effect: weft flanneld does not dump stack traces"
        ));
    }
    Plan { targets, notes }
}

/// Set up logging to stderr; returns the notes to log once it is running.
pub fn init(opts: &Opts) -> Vec<String> {
    let p = plan(opts.v, &opts.vmodule, &opts.log_backtrace_at);
    // Libraries (tonic, h2) only warn.
    let mut filter = Targets::new().with_default(LevelFilter::WARN);
    for (target, level) in &p.targets {
        filter = filter.with_target(*target, *level);
    }
    let base = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let done = if opts.log_format == "klog" {
        tracing_subscriber::registry()
            .with(base.event_format(Klog))
            .with(filter)
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(base)
            .with(filter)
            .try_init()
    };
    let _ = done;
    p.notes
}

/// klog's line header: `Lmmdd hh:mm:ss.uuuuuu pid file:line] `.
pub fn klog_header(level: &Level, tm: &LocalTime, pid: u32, file: &str, line: u32) -> String {
    let c = match *level {
        Level::ERROR => 'E',
        Level::WARN => 'W',
        _ => 'I',
    };
    let base = file.rsplit('/').next().unwrap_or(file);
    format!(
        "{c}{:02}{:02} {:02}:{:02}:{:02}.{:06} {pid:>7} {base}:{line}] ",
        tm.month, tm.day, tm.hour, tm.minute, tm.second, tm.micros
    )
}

/// The local wall-clock time, broken down (klog logs local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

impl LocalTime {
    pub fn now() -> LocalTime {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = libc::time_t::try_from(now.as_secs()).unwrap_or_default();
        // SAFETY: localtime_r only writes the tm we pass; a zeroed tm is valid.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
        let n = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
        if !ok {
            return LocalTime {
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                micros: now.subsec_micros(),
            };
        }
        LocalTime {
            month: n(tm.tm_mon) + 1,
            day: n(tm.tm_mday),
            hour: n(tm.tm_hour),
            minute: n(tm.tm_min),
            second: n(tm.tm_sec),
            micros: now.subsec_micros(),
        }
    }
}

/// The klog event format.
struct Klog;

impl<S, N> FormatEvent<S, N> for Klog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let header = klog_header(
            meta.level(),
            &LocalTime::now(),
            std::process::id(),
            meta.file().unwrap_or("???"),
            meta.line().unwrap_or(0),
        );
        writer.write_str(&header)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(p: &Plan, target: &str) -> LevelFilter {
        p.targets
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, l)| *l)
            .unwrap()
    }

    #[test]
    fn sources_list_every_file() {
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut found = Vec::new();
        for dir in ["", "dataplane", "subnet", "subnet/etcd", "subnet/kube"] {
            for e in std::fs::read_dir(format!("{src}/{dir}")).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if let Some(stem) = name.strip_suffix(".rs") {
                    found.push(if dir.is_empty() {
                        stem.to_string()
                    } else {
                        format!("{dir}/{stem}")
                    });
                }
            }
        }
        found.sort();
        let mut listed: Vec<String> = SOURCES.iter().map(|(s, _)| s.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }

    #[test]
    fn v_sets_every_weft_target() {
        let p = plan(0, "", "");
        assert!(p.notes.is_empty());
        assert!(p.targets.iter().all(|(_, l)| *l == LevelFilter::INFO));
        let p = plan(2, "", "");
        assert_eq!(level(&p, "weft_flanneld::daemon"), LevelFilter::DEBUG);
        let p = plan(5, "", "");
        assert_eq!(level(&p, "flanneld"), LevelFilter::TRACE);
    }

    #[test]
    fn vmodule_selects_weft_files_first_match_wins() {
        let p = plan(0, "vxlan=4,regis*=2,v*=1", "");
        assert_eq!(
            level(&p, "weft_flanneld::dataplane::vxlan"),
            LevelFilter::TRACE
        );
        assert_eq!(level(&p, "weft_flanneld::registry"), LevelFilter::DEBUG);
        assert_eq!(level(&p, "weft_flanneld::daemon"), LevelFilter::INFO);
        // dataplane/mod.rs is not its children: they keep their own level.
        let p = plan(1, "dataplane/mod=5", "");
        assert_eq!(level(&p, "weft_flanneld::dataplane"), LevelFilter::TRACE);
        assert_eq!(
            level(&p, "weft_flanneld::dataplane::hostgw"),
            LevelFilter::DEBUG
        );
        // A file can be given a lower level than -v.
        let p = plan(4, "daemon.rs=1", "");
        assert_eq!(level(&p, "weft_flanneld::daemon"), LevelFilter::DEBUG);
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn vmodule_notes_what_has_no_effect() {
        let p = plan(0, "vxlan_network=4,daemon=0,,iface=2", "main.go:12");
        assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
        assert!(p.notes[0].starts_with("--vmodule vxlan_network=4 has no effect: it matches none"));
        assert!(
            p.notes[0].contains("daemon, dataplane/mod, dataplane/hostgw"),
            "{}",
            p.notes[0]
        );
        assert!(p.notes[1].contains("daemon=0 has no effect"));
        assert!(p.notes[2].contains("--log_backtrace_at=main.go:12 has no effect"));
        assert_eq!(level(&p, "weft_flanneld::iface"), LevelFilter::DEBUG);
        assert_eq!(level(&p, "weft_flanneld::daemon"), LevelFilter::INFO);
    }

    #[test]
    fn vmodule_syntax_is_klogs() {
        assert_eq!(parse_vmodule("").unwrap(), vec![]);
        assert_eq!(
            parse_vmodule("a=1,b*=3,").unwrap(),
            vec![("a".into(), 1), ("b*".into(), 3)]
        );
        for bad in ["a", "=1", "a=", "a=1=2", "a=x"] {
            assert_eq!(parse_vmodule(bad).unwrap_err(), VMODULE_SYNTAX, "{bad}");
        }
        assert!(check_backtrace_at("").is_ok());
        assert!(check_backtrace_at("x.go:7").is_ok());
        assert!(check_backtrace_at("x:7").is_err());
        assert!(check_backtrace_at("x.go:y").is_err());
        assert!(check_backtrace_at("a.go:1:2").is_err());
    }

    #[test]
    fn klog_header_layout() {
        let tm = LocalTime {
            month: 3,
            day: 7,
            hour: 9,
            minute: 5,
            second: 1,
            micros: 42,
        };
        assert_eq!(
            klog_header(
                &Level::INFO,
                &tm,
                1234,
                "crates/flanneld/src/daemon.rs",
                270
            ),
            "I0307 09:05:01.000042    1234 daemon.rs:270] "
        );
        assert_eq!(
            klog_header(&Level::ERROR, &tm, 12345678, "main.rs", 1),
            "E0307 09:05:01.000042 12345678 main.rs:1] "
        );
        assert!(klog_header(&Level::WARN, &tm, 1, "a.rs", 1).starts_with('W'));
        assert!(klog_header(&Level::DEBUG, &tm, 1, "a.rs", 1).starts_with('I'));
    }
}
