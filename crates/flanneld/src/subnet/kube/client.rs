//! The Kubernetes API client of the kube subnet manager: the five calls
//! flannel makes (GET pod, GET/LIST/WATCH nodes, strategic-merge PATCH of
//! `nodes/{n}/status`) over reqwest (hyper + rustls with ring, the TLS
//! stack tonic already links for etcd). Chosen by measurement over kube-rs:
//! see docs/kube-client.md.
//!
//! Like client-go it sends `Accept: application/json`, re-reads a bearer
//! token file on every request (projected service-account tokens rotate)
//! and decodes only the typed subset in `types.rs`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::types::{Node, NodeList, Pod, Status, WatchEvent};

/// How we authenticate to the API server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    /// A fixed bearer token (kubeconfig `token:`).
    Token(String),
    /// A file holding the bearer token, re-read per request.
    TokenFile(PathBuf),
}

/// Where the API server is and how to reach it (from `--kube-api-url`,
/// `--kubeconfig-file` or the in-cluster environment: see `kubeconfig.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// `https://host:port` or `http://host:port`, no trailing slash.
    pub server: String,
    pub auth: Auth,
    /// PEM CA bundle to trust (instead of no roots at all).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key, concatenated.
    pub identity_pem: Option<Vec<u8>>,
    /// kubeconfig `insecure-skip-tls-verify`.
    pub insecure: bool,
}

/// An API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status (its Status message).
    #[error("{method} {path}: {code} {message}")]
    Status {
        method: Method,
        path: String,
        code: u16,
        message: String,
    },
    /// No answer: connection refused, TLS, timeout...
    #[error("{method} {path}: {source}")]
    Transport {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{path}: cannot read the body: {msg}")]
    Decode { path: String, msg: String },
    #[error("cannot read the token file {}: {source}", path.display())]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kube client: {0}")]
    Setup(String),
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// How long a plain request may take (client-go has no default; the
/// watch has its own deadline).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A cheap handle (clone it freely).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    auth: Auth,
}

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Client, ApiError> {
        // reqwest is built without a crypto provider of its own; ring is
        // the one tonic uses too. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let setup = |what: &str, e: reqwest::Error| ApiError::Setup(format!("{what}: {e}"));
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("flanneld/weft-", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30));
        // Only the cluster's CA is trusted (client-go does the same):
        // never the machine's public roots.
        let roots = match &cfg.ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| setup("certificate-authority", e))?,
            None => Vec::new(),
        };
        b = b.tls_certs_only(roots);
        if let Some(pem) = &cfg.identity_pem {
            b = b.identity(
                reqwest::Identity::from_pem(pem).map_err(|e| setup("client certificate", e))?,
            );
        }
        if cfg.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        Ok(Client {
            http: b.build().map_err(|e| setup("building the client", e))?,
            server: cfg.server.trim_end_matches('/').to_string(),
            auth: cfg.auth.clone(),
        })
    }

    fn bearer(&self) -> Result<Option<String>, ApiError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Token(t) => Ok(Some(t.clone())),
            Auth::TokenFile(p) => std::fs::read_to_string(p)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|source| ApiError::Token {
                    path: p.clone(),
                    source,
                }),
        }
    }

    /// Send one request; an error status becomes `ApiError::Status` with
    /// the server's Status message.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, String)>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ApiError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.server))
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(token) = self.bearer()? {
            req = req.bearer_auth(token);
        }
        if let Some((ctype, body)) = body {
            req = req.header(CONTENT_TYPE, ctype).body(body);
        }
        let resp = req.send().await.map_err(|source| ApiError::Transport {
            method: method.clone(),
            path: path.to_string(),
            source,
        })?;
        let code = resp.status();
        if code.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Status>(&text)
            .ok()
            .map(|s| s.message)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| reason(code, &text));
        Err(ApiError::Status {
            method,
            path: path.to_string(),
            code: code.as_u16(),
            message,
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let resp = self
            .send(Method::GET, path, None, Some(REQUEST_TIMEOUT))
            .await?;
        let bytes = resp.bytes().await.map_err(|e| ApiError::Decode {
            path: path.to_string(),
            msg: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            path: path.to_string(),
            msg: e.to_string(),
        })
    }

    /// `GET /api/v1/nodes/{name}` (a quorum read, as Go's fresh GETs).
    pub async fn get_node(&self, name: &str) -> Result<Node, ApiError> {
        self.get_json(&format!("/api/v1/nodes/{}", seg(name))).await
    }

    /// `spec.nodeName` of `GET /api/v1/namespaces/{ns}/pods/{name}`.
    pub async fn pod_node_name(&self, ns: &str, name: &str) -> Result<String, ApiError> {
        let path = format!("/api/v1/namespaces/{}/pods/{}", seg(ns), seg(name));
        let pod: Pod = self.get_json(&path).await?;
        Ok(pod.spec.node_name)
    }

    /// LIST all nodes (a consistent read: no `resourceVersion=0`, so the
    /// list is never older than what a previous watch already showed).
    pub async fn list_nodes(&self) -> Result<NodeList, ApiError> {
        self.get_json("/api/v1/nodes").await
    }

    /// WATCH nodes from `rv`, with bookmarks; the server ends the stream
    /// after `timeout_secs` (client-go asks for 5-10 min).
    pub async fn watch_nodes(&self, rv: &str, timeout_secs: u64) -> Result<Watch, ApiError> {
        let path = format!(
            "/api/v1/nodes?watch=true&allowWatchBookmarks=true&resourceVersion={}&timeoutSeconds={timeout_secs}",
            seg(rv)
        );
        let resp = self.send(Method::GET, &path, None, None).await?;
        Ok(Watch {
            resp,
            buf: Vec::new(),
            path,
        })
    }

    /// Strategic-merge PATCH of `nodes/{name}/status` (the subresource
    /// upstream's ClusterRole grants `patch` on).
    pub async fn patch_node_status(&self, name: &str, body: String) -> Result<(), ApiError> {
        let path = format!("/api/v1/nodes/{}/status", seg(name));
        self.send(
            Method::PATCH,
            &path,
            Some(("application/strategic-merge-patch+json", body)),
            Some(REQUEST_TIMEOUT),
        )
        .await
        .map(drop)
    }
}

/// The HTTP reason when the body is not a Status.
fn reason(code: StatusCode, body: &str) -> String {
    let r = code.canonical_reason().unwrap_or("error");
    let body = body.trim();
    if body.is_empty() {
        r.to_string()
    } else {
        format!("{r}: {}", body.chars().take(200).collect::<String>())
    }
}

/// A path segment or query value: node, pod and namespace names are DNS
/// names and resourceVersions are opaque digits, but escape anyway.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An open watch: JSON events, one per line, over a chunked response.
pub struct Watch {
    resp: reqwest::Response,
    buf: Vec<u8>,
    path: String,
}

impl Watch {
    /// The next event; `Ok(None)` when the server ended the stream. A
    /// line that does not parse is an error of its own (the caller logs it
    /// and goes on), so one bad object never ends the watch.
    pub async fn next(&mut self) -> Result<Option<Result<WatchEvent, String>>, ApiError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(WatchEvent::parse(line)));
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                Ok(None) => {
                    let rest = std::mem::take(&mut self.buf);
                    let rest = rest.trim_ascii();
                    return Ok((!rest.is_empty()).then(|| WatchEvent::parse(rest)));
                }
                Err(source) => {
                    return Err(ApiError::Transport {
                        method: Method::GET,
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(seg("node-1.example"), "node-1.example");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn status_message_is_kept() {
        let e = ApiError::Status {
            method: Method::GET,
            path: "/api/v1/nodes/x".into(),
            code: 404,
            message: "nodes \"x\" not found".into(),
        };
        assert_eq!(
            e.to_string(),
            "GET /api/v1/nodes/x: 404 nodes \"x\" not found"
        );
        assert_eq!(e.code(), Some(404));
    }
}
