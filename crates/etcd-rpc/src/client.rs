//! A thin typed client over the generated stubs: the KV, Lease and Watch
//! calls flanneld makes, TLS, and username/password auth (a token sent as
//! `token` metadata, refreshed when etcd says it expired).

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{chain, describe, Error};
use crate::pb::etcdserverpb as rpc;
use rpc::{
    auth_client::AuthClient, kv_client::KvClient, lease_client::LeaseClient,
    watch_client::WatchClient,
};

/// TLS settings, used for `https://` endpoints only.
#[derive(Clone, Default)]
pub struct Tls {
    /// PEM CA certificates to verify the server with; `None`: the system's
    /// trust store.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key, for etcd's `--client-cert-auth`.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// etcd username and password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// How to reach etcd.
#[derive(Clone)]
pub struct Config {
    /// `http://host:port` or `https://host:port`; a bare `host:port` is http.
    pub endpoints: Vec<String>,
    pub tls: Tls,
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    /// Per unary request, and until a watch is confirmed.
    pub request_timeout: Duration,
    /// HTTP/2 ping interval and how long to wait for the answer.
    pub keep_alive: Option<(Duration, Duration)>,
}

/// True for endpoints this client talks TLS to.
pub fn is_tls_endpoint(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The key just past every key starting with `prefix` (etcd's range end
/// for a prefix): the last byte below 0xff incremented, the rest cut. All
/// 0xff (or empty): `\0`, which etcd reads as "to the end".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The current auth token, shared by every clone of a client and read by
/// the interceptor on each request.
#[derive(Clone, Default)]
struct Token(Arc<RwLock<Option<MetadataValue<Ascii>>>>);

impl Token {
    fn get(&self) -> Option<MetadataValue<Ascii>> {
        // A writer cannot panic mid-assignment, so a poisoned value is intact.
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, v: Option<MetadataValue<Ascii>>) {
        match self.0.write() {
            Ok(mut g) => *g = v,
            Err(p) => *p.into_inner() = v,
        }
    }
}

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = self.get() {
            req.metadata_mut().insert("token", t);
        }
        Ok(req)
    }
}

struct Login {
    creds: Credentials,
    // Not intercepted: Authenticate must not carry a stale token.
    auth: AuthClient<Channel>,
    // One re-authentication at a time when many calls see the expiry.
    lock: tokio::sync::Mutex<()>,
}

type Svc = InterceptedService<Channel, Token>;

/// An etcd v3 client. Cheap to clone; clones share connections and token.
#[derive(Clone)]
pub struct Client {
    kv: KvClient<Svc>,
    lease: LeaseClient<Svc>,
    watch: WatchClient<Svc>,
    token: Token,
    login: Option<Arc<Login>>,
    request_timeout: Duration,
}

impl Client {
    /// Connections are made lazily (an unreachable etcd shows on the first
    /// call), except that credentials are checked right away.
    pub async fn connect(cfg: Config) -> Result<Client, Error> {
        let eps = cfg
            .endpoints
            .iter()
            .map(|u| endpoint(u, &cfg))
            .collect::<Result<Vec<_>, _>>()?;
        if eps.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let channel = Channel::balance_list(eps.into_iter());
        let token = Token::default();
        let svc = InterceptedService::new(channel.clone(), token.clone());
        let login = cfg.credentials.map(|creds| {
            Arc::new(Login {
                creds,
                auth: AuthClient::new(channel.clone()),
                lock: tokio::sync::Mutex::new(()),
            })
        });
        let client = Client {
            kv: KvClient::new(svc.clone()),
            lease: LeaseClient::new(svc.clone()),
            watch: WatchClient::new(svc),
            token,
            login,
            request_timeout: cfg.request_timeout,
        };
        client.authenticate(None).await?;
        Ok(client)
    }

    /// Get a new token unless another task already replaced `stale`.
    async fn authenticate(&self, stale: Option<MetadataValue<Ascii>>) -> Result<(), Error> {
        let Some(login) = &self.login else {
            return Ok(());
        };
        let _one = login.lock.lock().await;
        if self.token.get() != stale {
            return Ok(());
        }
        let fail = |detail: String| Error::Auth {
            user: login.creds.user.clone(),
            detail,
        };
        let req = rpc::AuthenticateRequest {
            name: login.creds.user.clone(),
            password: login.creds.password.clone(),
        };
        let token = match login.auth.clone().authenticate(req).await {
            Ok(r) => r.into_inner().token,
            // Like Go's clientv3: credentials for an etcd without auth are
            // not an error, requests simply go without a token.
            Err(s) if s.message().contains("authentication is not enabled") => {
                self.token.set(None);
                return Ok(());
            }
            Err(s) => return Err(fail(describe(&s))),
        };
        let value = MetadataValue::try_from(token)
            .map_err(|e| fail(format!("etcd sent an unusable token: {e}")))?;
        self.token.set(Some(value));
        Ok(())
    }

    /// Run one RPC; if etcd says the token expired, log in again and retry
    /// once (simple tokens expire after 5 idle minutes, and flanneld is
    /// idle for hours between renewals).
    async fn call<T, F, Fut>(&self, mut rpc: F) -> Result<T, Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let used = self.token.get();
        match rpc(self.clone()).await {
            Err(s) if self.login.is_some() && token_expired(&s) => {
                self.authenticate(used).await?;
                Ok(rpc(self.clone()).await?.into_inner())
            }
            r => Ok(r?.into_inner()),
        }
    }

    /// One key.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<rpc::RangeResponse, Error> {
        let req = rpc::RangeRequest {
            key: key.into(),
            ..Default::default()
        };
        self.range(req).await
    }

    /// Every key starting with `prefix`.
    pub async fn get_prefix(
        &self,
        prefix: impl Into<Vec<u8>>,
    ) -> Result<rpc::RangeResponse, Error> {
        let key = prefix.into();
        let req = rpc::RangeRequest {
            range_end: prefix_end(&key),
            key,
            ..Default::default()
        };
        self.range(req).await
    }

    pub async fn range(&self, req: rpc::RangeRequest) -> Result<rpc::RangeResponse, Error> {
        self.call(|mut c| {
            let req = req.clone();
            async move { c.kv.range(req).await }
        })
        .await
    }

    /// Put `value` at `key`, attached to etcd lease `lease` (0: none).
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        lease: i64,
    ) -> Result<rpc::PutResponse, Error> {
        let req = rpc::PutRequest {
            key: key.into(),
            value: value.into(),
            lease,
            ..Default::default()
        };
        self.call(|mut c| {
            let req = req.clone();
            async move { c.kv.put(req).await }
        })
        .await
    }

    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<rpc::DeleteRangeResponse, Error> {
        let req = rpc::DeleteRangeRequest {
            key: key.into(),
            ..Default::default()
        };
        self.call(|mut c| {
            let req = req.clone();
            async move { c.kv.delete_range(req).await }
        })
        .await
    }

    pub async fn txn(&self, req: rpc::TxnRequest) -> Result<rpc::TxnResponse, Error> {
        self.call(|mut c| {
            let req = req.clone();
            async move { c.kv.txn(req).await }
        })
        .await
    }

    pub async fn lease_grant(&self, ttl: i64) -> Result<rpc::LeaseGrantResponse, Error> {
        let req = rpc::LeaseGrantRequest { ttl, id: 0 };
        self.call(|mut c| async move { c.lease.lease_grant(req).await })
            .await
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<rpc::LeaseRevokeResponse, Error> {
        let req = rpc::LeaseRevokeRequest { id };
        self.call(|mut c| async move { c.lease.lease_revoke(req).await })
            .await
    }

    pub async fn lease_time_to_live(&self, id: i64) -> Result<rpc::LeaseTimeToLiveResponse, Error> {
        let req = rpc::LeaseTimeToLiveRequest { id, keys: false };
        self.call(|mut c| async move { c.lease.lease_time_to_live(req).await })
            .await
    }

    /// Watch every key under `prefix` from `start_revision` (0: from now).
    /// Returns once etcd answered the create request; that answer (possibly
    /// a cancellation, e.g. for a compacted revision) is the stream's first
    /// message.
    pub async fn watch_prefix(
        &self,
        prefix: impl Into<Vec<u8>>,
        start_revision: i64,
    ) -> Result<WatchStream, Error> {
        let key = prefix.into();
        let create = rpc::WatchCreateRequest {
            range_end: prefix_end(&key),
            key,
            start_revision,
            ..Default::default()
        };
        let req = rpc::WatchRequest {
            request_union: Some(rpc::watch_request::RequestUnion::CreateRequest(create)),
        };
        let used = self.token.get();
        let stream = self.open_watch(req.clone()).await?;
        // etcd checks the token when the watch is created and answers a
        // stale one with a cancellation, not an RPC error.
        let refused = stream
            .first
            .as_ref()
            .is_some_and(|r| r.canceled && token_refused(&r.cancel_reason));
        if self.login.is_some() && refused {
            self.authenticate(used).await?;
            return self.open_watch(req).await;
        }
        Ok(stream)
    }

    async fn open_watch(&self, req: rpc::WatchRequest) -> Result<WatchStream, Error> {
        let mut inner = self
            .call(|mut c| {
                // The request side stays open for the life of the watch:
                // it is how etcd would learn of further requests.
                let reqs = tokio_stream::once(req.clone()).chain(tokio_stream::pending());
                async move { c.watch.watch(reqs).await }
            })
            .await?;
        let first = tokio::time::timeout(self.request_timeout, inner.message())
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("etcd did not confirm the watch"))??;
        Ok(WatchStream { first, inner })
    }
}

/// The events of one watch.
pub struct WatchStream {
    first: Option<rpc::WatchResponse>,
    inner: tonic::Streaming<rpc::WatchResponse>,
}

impl WatchStream {
    /// The next response; `None` once etcd closed the stream.
    pub async fn message(&mut self) -> Result<Option<rpc::WatchResponse>, Error> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        Ok(self.inner.message().await?)
    }
}

fn token_expired(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unauthenticated && token_refused(s.message())
}

fn token_refused(msg: &str) -> bool {
    msg.contains("invalid auth token") || msg.contains("permission denied")
}

fn endpoint(url: &str, cfg: &Config) -> Result<Endpoint, Error> {
    let bad = |e: tonic::transport::Error| Error::Endpoint {
        endpoint: url.to_string(),
        detail: chain(&e),
    };
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let mut ep = Endpoint::from_shared(full)
        .map_err(bad)?
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.request_timeout);
    if let Some((interval, timeout)) = cfg.keep_alive {
        ep = ep
            .http2_keep_alive_interval(interval)
            .keep_alive_timeout(timeout)
            .keep_alive_while_idle(true);
    }
    if is_tls_endpoint(url) {
        ep = ep.tls_config(tls_config(&cfg.tls)).map_err(bad)?;
    }
    Ok(ep)
}

/// A given CA replaces the system roots (Go's TrustedCAFile does the same).
fn tls_config(t: &Tls) -> ClientTlsConfig {
    let c = match &t.ca_pem {
        Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    match &t.identity {
        Some((cert, key)) => c.identity(Identity::from_pem(cert, key)),
        None => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/a/subnets"), b"/a/subnett".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn tls_only_for_https() {
        assert!(is_tls_endpoint("https://10.0.0.1:2379"));
        assert!(is_tls_endpoint("HTTPS://etcd:2379"));
        assert!(!is_tls_endpoint("http://10.0.0.1:2379"));
        assert!(!is_tls_endpoint("10.0.0.1:2379"));
    }

    #[tokio::test]
    async fn no_endpoints_is_an_error() {
        let cfg = Config {
            endpoints: vec![],
            tls: Tls::default(),
            credentials: None,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            keep_alive: None,
        };
        assert!(matches!(
            Client::connect(cfg).await,
            Err(Error::NoEndpoints)
        ));
    }
}
