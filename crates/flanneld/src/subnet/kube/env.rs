//! What kube mode reads from the environment (`main.go`, `kube.go`,
//! client-go's `rest.InClusterConfig`): where the API server is when no
//! `--kube-api-url`/`--kubeconfig-file` is given, which node we are, and
//! the two tuning variables. Pure: the caller passes the lookup.
//!
//! Reference: `/work/shared/reference/flannel-kube.md` §1, §2 step 1.

use std::net::Ipv6Addr;

/// The service-account files mounted into every pod.
pub const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub const CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// `EVENT_QUEUE_DEPTH`'s default.
pub const DEFAULT_EVENT_QUEUE_DEPTH: usize = 5000;

/// The in-cluster API endpoint and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InCluster {
    /// `https://host:port`, an IPv6 host in brackets (`net.JoinHostPort`).
    pub url: String,
    pub token_file: &'static str,
    pub ca_file: &'static str,
}

/// `rest.InClusterConfig`: KUBERNETES_SERVICE_HOST and _PORT, both non-empty.
pub fn in_cluster(get: impl Fn(&str) -> Option<String>) -> Result<InCluster, String> {
    let host = get("KUBERNETES_SERVICE_HOST").unwrap_or_default();
    let port = get("KUBERNETES_SERVICE_PORT").unwrap_or_default();
    if host.is_empty() || port.is_empty() {
        return Err(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and \
                    KUBERNETES_SERVICE_PORT must be defined"
                .into(),
        );
    }
    let host = if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host
    };
    Ok(InCluster {
        url: format!("https://{host}:{port}"),
        token_file: TOKEN_FILE,
        ca_file: CA_FILE,
    })
}

/// Where our node name comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeName {
    /// `NODE_NAME`.
    Given(String),
    /// The `spec.nodeName` of this pod (`GET /api/v1/namespaces/{ns}/pods/{name}`).
    FromPod { namespace: String, name: String },
}

/// `NODE_NAME` if non-empty, else POD_NAME + POD_NAMESPACE (both needed).
pub fn node_name(get: impl Fn(&str) -> Option<String>) -> Result<NodeName, String> {
    let non_empty = |k: &str| get(k).filter(|v| !v.is_empty());
    if let Some(n) = non_empty("NODE_NAME") {
        return Ok(NodeName::Given(n));
    }
    match (non_empty("POD_NAME"), non_empty("POD_NAMESPACE")) {
        (Some(name), Some(namespace)) => Ok(NodeName::FromPod { namespace, name }),
        _ => Err("env variables POD_NAME and POD_NAMESPACE must be set".into()),
    }
}

/// `EVENT_QUEUE_DEPTH`: unset → 5000; not an integer → error; ≤ 0 ignored.
pub fn event_queue_depth(get: impl Fn(&str) -> Option<String>) -> Result<usize, String> {
    let Some(v) = get("EVENT_QUEUE_DEPTH").filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_EVENT_QUEUE_DEPTH);
    };
    let n: i64 = v
        .parse()
        .map_err(|_| format!("EVENT_QUEUE_DEPTH={v:?} is not an integer"))?;
    Ok(usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_EVENT_QUEUE_DEPTH))
}

/// `CONT_WHEN_CACHE_NOT_READY`: only the exact text `true` counts.
pub fn cont_when_cache_not_ready(get: impl Fn(&str) -> Option<String>) -> bool {
    get("CONT_WHEN_CACHE_NOT_READY").as_deref() == Some("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kv: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let kv: Vec<(String, String)> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| kv.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn in_cluster_url() {
        let ic = in_cluster(env(&[
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ]))
        .unwrap();
        assert_eq!(ic.url, "https://10.96.0.1:443");
        assert_eq!(ic.token_file, TOKEN_FILE);
        let ic = in_cluster(env(&[
            ("KUBERNETES_SERVICE_HOST", "fd00::1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ]))
        .unwrap();
        assert_eq!(ic.url, "https://[fd00::1]:443");
        let e = in_cluster(env(&[("KUBERNETES_SERVICE_HOST", "10.96.0.1")])).unwrap_err();
        assert!(e.contains("KUBERNETES_SERVICE_PORT must be defined"), "{e}");
    }

    #[test]
    fn node_name_sources() {
        assert_eq!(
            node_name(env(&[("NODE_NAME", "n1"), ("POD_NAME", "p")])).unwrap(),
            NodeName::Given("n1".into())
        );
        assert_eq!(
            node_name(env(&[
                ("NODE_NAME", ""),
                ("POD_NAME", "kube-flannel-ds-x"),
                ("POD_NAMESPACE", "kube-flannel")
            ]))
            .unwrap(),
            NodeName::FromPod {
                namespace: "kube-flannel".into(),
                name: "kube-flannel-ds-x".into()
            }
        );
        assert_eq!(
            node_name(env(&[("POD_NAME", "p")])).unwrap_err(),
            "env variables POD_NAME and POD_NAMESPACE must be set"
        );
    }

    #[test]
    fn tuning_variables() {
        assert_eq!(event_queue_depth(env(&[])).unwrap(), 5000);
        assert_eq!(
            event_queue_depth(env(&[("EVENT_QUEUE_DEPTH", "20000")])).unwrap(),
            20000
        );
        assert_eq!(
            event_queue_depth(env(&[("EVENT_QUEUE_DEPTH", "-3")])).unwrap(),
            5000
        );
        assert_eq!(
            event_queue_depth(env(&[("EVENT_QUEUE_DEPTH", "0")])).unwrap(),
            5000
        );
        assert!(event_queue_depth(env(&[("EVENT_QUEUE_DEPTH", "lots")])).is_err());
        assert!(cont_when_cache_not_ready(env(&[(
            "CONT_WHEN_CACHE_NOT_READY",
            "true"
        )])));
        assert!(!cont_when_cache_not_ready(env(&[(
            "CONT_WHEN_CACHE_NOT_READY",
            "True"
        )])));
        assert!(!cont_when_cache_not_ready(env(&[])));
    }
}
