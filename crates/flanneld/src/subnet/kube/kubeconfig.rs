//! Where the API server is: client-go's `BuildConfigFromFlags(apiURL,
//! kubeconfig)` for the cases flannel deployments use.
//!
//! - neither flag: the in-cluster config (service-account token and CA);
//! - `--kubeconfig-file`: its current context (server, CA file or data,
//!   client certificate and key as files or data, token or token file,
//!   `insecure-skip-tls-verify`); relative paths are relative to the file,
//!   as in kubectl. Exec and auth-provider plugins are refused with a clear
//!   error: a node agent has no interactive login;
//! - `--kube-api-url` alone: that URL, no credentials; with a kubeconfig it
//!   replaces the kubeconfig's server.
//!
//! `$KUBECONFIG` is not consulted (as in Go flanneld).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use super::client::{Auth, ClientConfig};
use super::env;

#[derive(Debug, Default, Deserialize)]
struct KubeConfig {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default, rename = "current-context")]
    current_context: String,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context")]
    item: T,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    #[serde(default)]
    server: String,
    #[serde(default)]
    certificate_authority: String,
    #[serde(default)]
    certificate_authority_data: String,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    #[serde(default)]
    token: String,
    #[serde(default, rename = "tokenFile")]
    token_file: String,
    #[serde(default)]
    client_certificate: String,
    #[serde(default)]
    client_certificate_data: String,
    #[serde(default)]
    client_key: String,
    #[serde(default)]
    client_key_data: String,
    #[serde(default)]
    exec: Option<serde_norway::Value>,
    #[serde(default)]
    auth_provider: Option<serde_norway::Value>,
    #[serde(default)]
    username: String,
}

#[derive(Debug, Default, Deserialize)]
struct Context {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    user: String,
}

/// The client config for `--kube-api-url` / `--kubeconfig-file`, or the
/// in-cluster one. `get` looks environment variables up.
pub fn client_config(
    api_url: &str,
    kubeconfig: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<ClientConfig, String> {
    if kubeconfig.is_empty() {
        if !api_url.is_empty() {
            return Ok(ClientConfig {
                server: api_url.to_string(),
                ..ClientConfig::default()
            });
        }
        let ic = env::in_cluster(get)?;
        let ca = std::fs::read(ic.ca_file).map_err(|e| {
            format!(
                "unable to load in-cluster configuration: {}: {e}",
                ic.ca_file
            )
        })?;
        if std::fs::metadata(ic.token_file).is_err() {
            return Err(format!(
                "unable to load in-cluster configuration: open {}: no such file or directory",
                ic.token_file
            ));
        }
        return Ok(ClientConfig {
            server: ic.url,
            auth: Auth::TokenFile(PathBuf::from(ic.token_file)),
            ca_pem: Some(ca),
            ..ClientConfig::default()
        });
    }
    let text = std::fs::read_to_string(kubeconfig)
        .map_err(|e| format!("cannot read --kubeconfig-file {kubeconfig}: {e}"))?;
    let dir = Path::new(kubeconfig)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut cfg = from_kubeconfig(&text, &dir).map_err(|e| format!("{kubeconfig}: {e}"))?;
    if !api_url.is_empty() {
        cfg.server = api_url.to_string();
    }
    Ok(cfg)
}

/// The current context of a kubeconfig text; `dir` resolves relative paths.
fn from_kubeconfig(text: &str, dir: &Path) -> Result<ClientConfig, String> {
    let kc: KubeConfig =
        serde_norway::from_str(text).map_err(|e| format!("invalid kubeconfig: {e}"))?;
    let ctx_name = &kc.current_context;
    let ctx = if ctx_name.is_empty() && kc.contexts.len() == 1 {
        &kc.contexts[0].item
    } else {
        &kc.contexts
            .iter()
            .find(|c| &c.name == ctx_name)
            .ok_or_else(|| format!("context {ctx_name:?} not found"))?
            .item
    };
    let cluster = &kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .ok_or_else(|| format!("cluster {:?} not found", ctx.cluster))?
        .item;
    let users: BTreeMap<&str, &User> = kc
        .users
        .iter()
        .map(|u| (u.name.as_str(), &u.user))
        .collect();
    let default_user = User::default();
    let user = match users.get(ctx.user.as_str()) {
        Some(u) => *u,
        None if ctx.user.is_empty() => &default_user,
        None => return Err(format!("user {:?} not found", ctx.user)),
    };
    if cluster.server.is_empty() {
        return Err(format!("cluster {:?} has no server", ctx.cluster));
    }
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(format!(
            "user {:?}: exec and auth-provider credential plugins are not supported by weft \
             flanneld; use a token, a token file or a client certificate",
            ctx.user
        ));
    }
    if !user.username.is_empty() {
        return Err(format!(
            "user {:?}: basic authentication is not supported (removed from Kubernetes)",
            ctx.user
        ));
    }
    let file_or_data = |file: &str, data: &str, what: &str| -> Result<Option<Vec<u8>>, String> {
        if !data.is_empty() {
            return base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map(Some)
                .map_err(|e| format!("{what}-data: invalid base64: {e}"));
        }
        if file.is_empty() {
            return Ok(None);
        }
        let p = dir.join(file);
        std::fs::read(&p)
            .map(Some)
            .map_err(|e| format!("{what} {}: {e}", p.display()))
    };
    let ca_pem = file_or_data(
        &cluster.certificate_authority,
        &cluster.certificate_authority_data,
        "certificate-authority",
    )?;
    let cert = file_or_data(
        &user.client_certificate,
        &user.client_certificate_data,
        "client-certificate",
    )?;
    let key = file_or_data(&user.client_key, &user.client_key_data, "client-key")?;
    let identity_pem = match (cert, key) {
        (Some(mut c), Some(k)) => {
            c.push(b'\n');
            c.extend_from_slice(&k);
            Some(c)
        }
        (None, None) => None,
        _ => return Err("client-certificate and client-key must be given together".into()),
    };
    let auth = if !user.token.is_empty() {
        Auth::Token(user.token.clone())
    } else if !user.token_file.is_empty() {
        Auth::TokenFile(dir.join(&user.token_file))
    } else {
        Auth::None
    };
    Ok(ClientConfig {
        server: cluster.server.clone(),
        auth,
        ca_pem,
        identity_pem,
        insecure: cluster.insecure_skip_tls_verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: LS0tLS1CRUdJTg==
- name: other
  cluster: {server: "http://other"}
users:
- name: admin
  user:
    tokenFile: tok
contexts:
- name: c1
  context: {cluster: test, user: admin}
- name: c2
  context: {cluster: other, user: ""}
current-context: c1
"#;

    #[test]
    fn current_context_is_read() {
        let c = from_kubeconfig(KC, Path::new("/etc/k")).unwrap();
        assert_eq!(c.server, "https://10.0.0.1:6443");
        assert_eq!(c.ca_pem.as_deref(), Some(&b"-----BEGIN"[..]));
        assert_eq!(c.auth, Auth::TokenFile(PathBuf::from("/etc/k/tok")));
        let c = from_kubeconfig(
            &KC.replace("current-context: c1", "current-context: c2"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.server, "http://other");
        assert_eq!(c.auth, Auth::None);
    }

    #[test]
    fn plugins_and_missing_parts_are_refused() {
        let e = from_kubeconfig(
            &KC.replace("tokenFile: tok", "exec: {command: aws}"),
            Path::new("/"),
        )
        .unwrap_err();
        assert!(e.contains("credential plugins are not supported"), "{e}");
        let e = from_kubeconfig(
            &KC.replace("current-context: c1", "current-context: nope"),
            Path::new("/"),
        )
        .unwrap_err();
        assert!(e.contains("context \"nope\" not found"), "{e}");
        assert!(from_kubeconfig("clusters: 3", Path::new("/")).is_err());
    }

    #[test]
    fn api_url_alone_or_over_kubeconfig() {
        let none = |_: &str| None;
        let c = client_config("http://127.0.0.1:6443", "", none).unwrap();
        assert_eq!(c.server, "http://127.0.0.1:6443");
        assert_eq!(c.auth, Auth::None);
        let e = client_config("", "", none).unwrap_err();
        assert!(e.contains("KUBERNETES_SERVICE_HOST"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(&p, KC).unwrap();
        let c = client_config("http://x:1", p.to_str().unwrap(), none).unwrap();
        assert_eq!(c.server, "http://x:1");
        assert_eq!(c.auth, Auth::TokenFile(dir.path().join("tok")));
    }
}
