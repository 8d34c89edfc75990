//! The typed subset of the Kubernetes API the kube manager reads: a Node's
//! name, resourceVersion, annotations and podCIDR(s), the NodeList, the
//! watch events (including BOOKMARK and the ERROR that carries a 410
//! `Expired` Status), the Status itself, and a Pod's `spec.nodeName`. Unknown fields are ignored,
//! so full API objects decode (see docs/kube-client.md for why this is not
//! k8s-openapi).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub resource_version: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NodeSpec {
    #[serde(default, rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    #[serde(default, rename = "podCIDRs")]
    pub pod_cidrs: Vec<String>,
}

/// One `status.conditions` entry (the fields flanneld reads back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCondition {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub last_transition_time: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NodeStatus {
    #[serde(default)]
    pub conditions: Vec<NodeCondition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub node_name: String,
}

/// A Pod, for `spec.nodeName` only (POD_NAME + POD_NAMESPACE).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Pod {
    #[serde(default)]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default)]
    pub resource_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NodeList {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default)]
    pub items: Vec<Node>,
}

/// `metav1.Status`, as in error bodies and watch ERROR events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub code: u16,
}

impl Status {
    /// 410: the resourceVersion was compacted; relist.
    pub fn is_gone(&self) -> bool {
        self.code == 410 || self.reason == "Expired" || self.reason == "Gone"
    }
}

/// One line of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Added(Node),
    Modified(Node),
    Deleted(Node),
    /// Only the resourceVersion is meaningful.
    Bookmark(String),
    Error(Status),
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

impl WatchEvent {
    /// Parse one JSON line of a watch stream.
    pub fn parse(line: &[u8]) -> Result<WatchEvent, String> {
        let raw: RawEvent =
            serde_json::from_slice(line).map_err(|e| format!("bad watch event: {e}"))?;
        let node = |v: serde_json::Value| {
            serde_json::from_value::<Node>(v).map_err(|e| format!("bad node in watch event: {e}"))
        };
        match raw.kind.as_str() {
            "ADDED" => node(raw.object).map(WatchEvent::Added),
            "MODIFIED" => node(raw.object).map(WatchEvent::Modified),
            "DELETED" => node(raw.object).map(WatchEvent::Deleted),
            "BOOKMARK" => {
                node(raw.object).map(|n| WatchEvent::Bookmark(n.metadata.resource_version))
            }
            "ERROR" => serde_json::from_value::<Status>(raw.object)
                .map(WatchEvent::Error)
                .map_err(|e| format!("bad status in watch event: {e}")),
            other => Err(format!("unknown watch event type {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_node_decodes_to_the_subset() {
        let j = br#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"42"},"items":[
            {"kind":"Node","metadata":{"name":"n1","uid":"u","resourceVersion":"41","labels":{"a":"b"},
             "annotations":{"flannel.alpha.coreos.com/public-ip":"10.99.0.1"}},
             "spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24","fd00:1::/64"],"taints":[]},
             "status":{"conditions":[{"type":"Ready","status":"True"}],"capacity":{"cpu":"2"}}},
            {"metadata":{"name":"n2"}}]}"#;
        let l: NodeList = serde_json::from_slice(j).unwrap();
        assert_eq!(l.metadata.resource_version, "42");
        assert_eq!(l.items[0].metadata.name, "n1");
        assert_eq!(l.items[0].spec.pod_cidrs.len(), 2);
        assert_eq!(
            l.items[0].metadata.annotations["flannel.alpha.coreos.com/public-ip"],
            "10.99.0.1"
        );
        assert_eq!(l.items[1].spec, NodeSpec::default());
    }

    #[test]
    fn watch_events() {
        let e = WatchEvent::parse(
            br#"{"type":"MODIFIED","object":{"metadata":{"name":"n1","resourceVersion":"7"}}}"#,
        )
        .unwrap();
        assert!(matches!(e, WatchEvent::Modified(n) if n.metadata.resource_version == "7"));
        let e = WatchEvent::parse(br#"{"type":"BOOKMARK","object":{"kind":"Node","apiVersion":"v1","metadata":{"resourceVersion":"9"}}}"#).unwrap();
        assert_eq!(e, WatchEvent::Bookmark("9".into()));
        // What the test API server (and the watch cache) sends for a compacted resourceVersion.
        let e = WatchEvent::parse(br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 2 (8)","reason":"Expired","code":410}}"#).unwrap();
        assert!(matches!(&e, WatchEvent::Error(s) if s.is_gone()), "{e:?}");
        assert!(WatchEvent::parse(b"{\"type\":\"ADDED\"").is_err());
        assert!(WatchEvent::parse(br#"{"type":"WHAT","object":{}}"#).is_err());
    }
}
