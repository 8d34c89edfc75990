//! The NetworkUnavailable condition our node gets once the network is up
//! (`kube.go:CompleteLease`, flannel-kube.md §5.2): the strategic-merge
//! body Go sends, field for field, with one improvement: when the
//! condition is already `False`, its `lastTransitionTime` is kept (Go
//! moves it to "now" on every restart, although nothing changed).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::types::NodeCondition;

pub const TYPE: &str = "NetworkUnavailable";
pub const REASON: &str = "FlannelIsUp";
pub const MESSAGE: &str = "Flannel is running on this node";

/// `{"status":{"conditions":[{type,status,lastHeartbeatTime,lastTransitionTime,reason,message}]}}`,
/// keys in Go's struct order (serde_json keeps insertion order here).
pub fn patch_body(now: &str, current: &[NodeCondition]) -> String {
    let transition = current
        .iter()
        .find(|c| c.kind == TYPE && c.status == "False" && !c.last_transition_time.is_empty())
        .map_or(now, |c| c.last_transition_time.as_str());
    json!({"status": {"conditions": [{
        "type": TYPE,
        "status": "False",
        "lastHeartbeatTime": now,
        "lastTransitionTime": transition,
        "reason": REASON,
        "message": MESSAGE,
    }]}})
    .to_string()
}

/// `metav1.Now()` as the API serialises it: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's
/// days-to-civil algorithm; no date crate for one format).
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_786_708_987), "2026-08-14T12:03:07Z");
    }

    #[test]
    fn body_is_gos_and_keeps_an_unchanged_transition() {
        let b = patch_body("2026-08-14T12:03:07Z", &[]);
        assert_eq!(
            b,
            r#"{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2026-08-14T12:03:07Z","lastTransitionTime":"2026-08-14T12:03:07Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}"#
        );
        let old = |status: &str| NodeCondition {
            kind: TYPE.into(),
            status: status.into(),
            last_transition_time: "2026-01-01T00:00:00Z".into(),
        };
        assert!(patch_body("2026-08-14T12:03:07Z", &[old("False")])
            .contains(r#""lastTransitionTime":"2026-01-01T00:00:00Z""#));
        assert!(patch_body("2026-08-14T12:03:07Z", &[old("True")])
            .contains(r#""lastTransitionTime":"2026-08-14T12:03:07Z""#));
    }
}
