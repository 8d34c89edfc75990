//! The etcd v3 side of flannel's subnet manager
//! (`pkg/subnet/etcd/registry.go`): config, lease listing, create-if-absent,
//! update, delete and the watch of `<prefix>/subnets`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ipnetwork::{Ipv4Network, Ipv6Network};
use tracing::{info, warn};
use weft_etcd_rpc::pb::etcdserverpb as rpc;
use weft_etcd_rpc::{is_tls_endpoint, Client, Config, Credentials, Tls};

pub use weft_etcd_rpc::pb::mvccpb::event::EventType;
pub use weft_etcd_rpc::WatchStream;

use crate::lease::{make_subnet_key, parse_subnet_key, Lease, LeaseAttrs};

/// `errConfigNotFound`.
pub const CONFIG_NOT_FOUND: &str =
    "flannel config not found in etcd store. Did you create your config using etcdv3 API?";

/// The outcome of a create-if-absent transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The key is ours, attached to this etcd lease.
    Yes { etcd_lease: i64, ttl: i64 },
    /// Somebody holds the key already (flannel's errTryAgain).
    Taken,
}

/// Where etcd is and how to authenticate (the `--etcd-*` flags; the
/// daemon builds it, the registry never sees the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Comma-separated endpoint URLs; https:// ones use TLS.
    pub endpoints: String,
    /// The key prefix (`/coreos.com/network`).
    pub prefix: String,
    pub cafile: String,
    pub certfile: String,
    pub keyfile: String,
    pub username: String,
    pub password: String,
}

#[derive(Clone)]
pub struct Registry {
    client: Client,
    prefix: String,
}

/// `path.Join(prefix, rest)` for the two names flannel uses.
fn join(prefix: &str, rest: &str) -> String {
    let p = prefix.trim_end_matches('/');
    format!("{p}/{rest}")
}

impl Registry {
    /// Connect (lazily: an unreachable etcd shows up on the first request,
    /// unless a username forces an authentication round trip).
    pub async fn connect(etcd: &EtcdConfig) -> Result<Registry> {
        let endpoints: Vec<String> = etcd
            .endpoints
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if endpoints.is_empty() {
            bail!("--etcd-endpoints is empty");
        }
        let security = Security::of(etcd, &endpoints)?;
        security.log();
        let cfg = Config {
            tls: security.tls(etcd)?,
            credentials: (!etcd.username.is_empty()).then(|| Credentials {
                user: etcd.username.clone(),
                password: etcd.password.clone(),
            }),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            keep_alive: Some((Duration::from_secs(5), Duration::from_secs(5))),
            endpoints,
        };
        let what = cfg.endpoints.join(",");
        let client = Client::connect(cfg)
            .await
            .with_context(|| format!("connect to etcd at {what}"))?;
        Ok(Registry {
            client,
            prefix: etcd.prefix.clone(),
        })
    }

    pub fn subnets_prefix(&self) -> String {
        join(&self.prefix, "subnets")
    }

    pub fn subnet_key(&self, sn: Ipv4Network, sn6: Option<Ipv6Network>) -> String {
        join(&self.subnets_prefix(), &make_subnet_key(sn, sn6))
    }

    /// `<prefix>/config`.
    pub async fn get_config(&self) -> Result<String> {
        let key = join(&self.prefix, "config");
        let resp = self.client.get(key).await?;
        let kv = resp.kvs.first().ok_or_else(|| anyhow!(CONFIG_NOT_FOUND))?;
        Ok(String::from_utf8_lossy(&kv.value).into_owned())
    }

    /// All leases under `<prefix>/subnets` and the revision of the listing.
    /// Keys that do not parse are skipped with a warning, like Go. Unlike
    /// Go, keys without an etcd lease (reservations) are kept: Go's
    /// TimeToLive(0) fails and drops them (flannel#1329).
    pub async fn get_subnets(&self) -> Result<(Vec<Lease>, i64)> {
        let resp = self.client.get_prefix(self.subnets_prefix()).await?;
        let rev = resp.header.as_ref().map_or(0, |h| h.revision);
        let mut leases = Vec::new();
        for kv in &resp.kvs {
            let key = String::from_utf8_lossy(&kv.key);
            match lease_from_kv(&key, &kv.value, kv.lease) {
                Ok(l) => leases.push(l),
                Err(e) => warn!("Ignoring bad subnet node: {e}"),
            }
        }
        Ok((leases, rev))
    }

    /// `createSubnet`: Grant(ttl) + txn `if version(key) == 0 then put`.
    /// A lost race revokes the grant.
    pub async fn create_subnet(
        &self,
        sn: Ipv4Network,
        sn6: Option<Ipv6Network>,
        attrs: &LeaseAttrs,
        ttl: i64,
    ) -> Result<Created> {
        let key = self.subnet_key(sn, sn6);
        let c = &self.client;
        let grant = c.lease_grant(ttl).await.context("grant etcd lease")?;
        let outcome = c.txn(put_if_absent(&key, attrs.to_json(), grant.id)).await;
        match outcome {
            Ok(r) if r.succeeded => Ok(Created::Yes {
                etcd_lease: grant.id,
                ttl: grant.ttl,
            }),
            other => {
                if let Err(e) = c.lease_revoke(grant.id).await {
                    warn!("revoke unused etcd lease {:x}: {e}", grant.id);
                }
                match other {
                    Ok(_) => Ok(Created::Taken),
                    Err(e) => Err(anyhow!(e).context(format!("create {key}"))),
                }
            }
        }
    }

    /// `updateSubnet`: a fresh Grant(ttl) and a Put (ttl 0: a reservation,
    /// no etcd lease). Returns the new etcd lease id (0 for none) and TTL.
    pub async fn update_subnet(
        &self,
        sn: Ipv4Network,
        sn6: Option<Ipv6Network>,
        attrs: &LeaseAttrs,
        ttl: i64,
    ) -> Result<(i64, i64)> {
        let key = self.subnet_key(sn, sn6);
        let c = &self.client;
        if ttl <= 0 {
            c.put(key.clone(), attrs.to_json(), 0)
                .await
                .with_context(|| format!("put {key}"))?;
            return Ok((0, 0));
        }
        let grant = c.lease_grant(ttl).await.context("grant etcd lease")?;
        let put = c.put(key.clone(), attrs.to_json(), grant.id).await;
        if let Err(e) = put {
            if let Err(re) = c.lease_revoke(grant.id).await {
                warn!("revoke unused etcd lease {:x}: {re}", grant.id);
            }
            return Err(anyhow!(e).context(format!("put {key}")));
        }
        Ok((grant.id, grant.ttl))
    }

    pub async fn delete_subnet(&self, sn: Ipv4Network, sn6: Option<Ipv6Network>) -> Result<()> {
        let key = self.subnet_key(sn, sn6);
        self.client.delete(key).await?;
        Ok(())
    }

    /// Revoke an etcd lease we no longer use (weft: flannel leaves superseded
    /// grants to expire on their own after 24 h).
    pub async fn revoke(&self, id: i64) {
        if id == 0 {
            return;
        }
        match self.client.lease_revoke(id).await {
            Ok(_) => info!("revoked superseded etcd lease {id:x}"),
            Err(e) => warn!("revoke superseded etcd lease {id:x}: {e}"),
        }
    }

    /// Remaining TTL of an etcd lease in seconds (-1: expired or none).
    pub async fn time_to_live(&self, id: i64) -> Result<i64> {
        let r = self.client.lease_time_to_live(id).await?;
        Ok(r.ttl)
    }

    /// Watch `<prefix>/subnets` from revision `from` (inclusive).
    pub async fn watch_subnets(&self, from: i64) -> Result<WatchStream> {
        Ok(self
            .client
            .watch_prefix(self.subnets_prefix(), from.max(0))
            .await?)
    }
}

/// `kvToIPLease`.
pub fn lease_from_kv(key: &str, value: &[u8], etcd_lease: i64) -> Result<Lease, String> {
    let (subnet, ipv6_subnet) =
        parse_subnet_key(key).ok_or_else(|| format!("failed to parse subnet key {key}"))?;
    let attrs = LeaseAttrs::parse(value).map_err(|e| format!("{key}: {e}"))?;
    Ok(Lease {
        subnet,
        ipv6_subnet,
        attrs,
        etcd_lease,
    })
}

/// `if version(key) == 0 then put(key, value, lease)`: create-if-absent.
fn put_if_absent(key: &str, value: String, lease: i64) -> rpc::TxnRequest {
    use rpc::compare::{CompareResult, CompareTarget, TargetUnion};
    let compare = rpc::Compare {
        result: i32::from(CompareResult::Equal),
        target: i32::from(CompareTarget::Version),
        key: key.as_bytes().to_vec(),
        target_union: Some(TargetUnion::Version(0)),
        range_end: Vec::new(),
    };
    let put = rpc::PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.into_bytes(),
        lease,
        ..Default::default()
    };
    rpc::TxnRequest {
        compare: vec![compare],
        success: vec![rpc::RequestOp {
            request: Some(rpc::request_op::Request::RequestPut(put)),
        }],
        failure: Vec::new(),
    }
}

/// Which endpoints get TLS: it follows the scheme of each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plain,
    Tls,
    Mixed,
}

/// How flanneld will talk to etcd, decided once from the flags and the
/// endpoints so that the log states what is really used. (Go logs "no
/// certificate provided ... http" whenever cert and key are missing, even
/// for https:// endpoints that then use TLS with the system roots.)
#[derive(Debug, PartialEq, Eq)]
struct Security {
    transport: Transport,
    /// --etcd-cafile; None: the system's trusted CAs.
    ca: Option<String>,
    /// --etcd-certfile (its key is --etcd-keyfile).
    client_cert: Option<String>,
    user: Option<String>,
    /// TLS files given that http:// endpoints cannot use.
    ignored_files: bool,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl Security {
    fn of(etcd: &EtcdConfig, endpoints: &[String]) -> Result<Security> {
        let https = endpoints.iter().filter(|e| is_tls_endpoint(e)).count();
        let transport = match https {
            0 => Transport::Plain,
            n if n == endpoints.len() => Transport::Tls,
            _ => Transport::Mixed,
        };
        // Go silently drops a lone half of the pair; a typo there would
        // otherwise only show as etcd refusing the connection.
        match (etcd.certfile.is_empty(), etcd.keyfile.is_empty()) {
            (false, true) => bail!("--etcd-certfile is set but --etcd-keyfile is not"),
            (true, false) => bail!("--etcd-keyfile is set but --etcd-certfile is not"),
            _ => {}
        }
        let files = !etcd.cafile.is_empty() || !etcd.certfile.is_empty();
        Ok(Security {
            transport,
            ca: non_empty(&etcd.cafile),
            client_cert: non_empty(&etcd.certfile),
            user: non_empty(&etcd.username),
            ignored_files: transport == Transport::Plain && files,
        })
    }

    /// One line naming transport, server verification, client certificate
    /// and authentication. Never the password.
    fn describe(&self) -> String {
        let tls = {
            let verify = match &self.ca {
                Some(ca) => format!("verifying the server certificate with --etcd-cafile {ca}"),
                None => "verifying the server certificate with the system's trusted CAs".into(),
            };
            let cert = match &self.client_cert {
                Some(c) => format!("client certificate {c}"),
                None => "no client certificate".into(),
            };
            format!("TLS, {verify}, {cert}")
        };
        let mut line = match self.transport {
            Transport::Plain => "connecting to etcd with plain http (no TLS). This is insecure".into(),
            Transport::Tls => format!("connecting to etcd with {tls}"),
            Transport::Mixed => format!(
                "connecting to etcd with {tls} for the https:// endpoints and plain http (insecure) for the others"
            ),
        };
        if self.ignored_files {
            line.push_str(
                "; --etcd-cafile/--etcd-certfile/--etcd-keyfile are not used for http:// endpoints",
            );
        }
        match &self.user {
            Some(u) => line.push_str(&format!("; authenticating as etcd user {u:?}")),
            None => line.push_str("; no etcd username"),
        }
        line
    }

    fn log(&self) {
        if self.transport == Transport::Tls {
            info!("{}", self.describe());
        } else {
            warn!("{}", self.describe());
        }
    }

    /// Read the PEM files (only if some endpoint uses TLS).
    fn tls(&self, etcd: &EtcdConfig) -> Result<Tls> {
        if self.transport == Transport::Plain {
            return Ok(Tls::default());
        }
        let read = |flag: &str, path: &str| {
            std::fs::read(path).with_context(|| format!("read --{flag} {path}"))
        };
        let ca_pem = match &self.ca {
            Some(ca) => Some(read("etcd-cafile", ca)?),
            None => None,
        };
        let identity = match &self.client_cert {
            Some(cert) => Some((
                read("etcd-certfile", cert)?,
                read("etcd-keyfile", &etcd.keyfile)?,
            )),
            None => None,
        };
        Ok(Tls { ca_pem, identity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Opts;
    use crate::subnet::etcd::etcd_config;
    use clap::Parser;

    fn security(args: &[&str]) -> Result<Security> {
        let opts = Opts::try_parse_from(std::iter::once(&"flanneld").chain(args))?;
        let etcd = etcd_config(&opts);
        let endpoints: Vec<String> = etcd.endpoints.split(',').map(str::to_string).collect();
        Security::of(&etcd, &endpoints)
    }

    fn line(args: &[&str]) -> String {
        match security(args) {
            Ok(s) => s.describe(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn plain_http_says_so() {
        assert_eq!(
            line(&["--etcd-endpoints=http://10.0.0.1:2379"]),
            "connecting to etcd with plain http (no TLS). This is insecure; no etcd username"
        );
        let l = line(&[
            "--etcd-endpoints=http://10.0.0.1:2379",
            "--etcd-cafile=/ca.pem",
            "--etcd-username=flannel",
            "--etcd-password=secret",
        ]);
        assert!(l.contains("are not used for http:// endpoints"), "{l}");
        assert!(
            l.ends_with("authenticating as etcd user \"flannel\""),
            "{l}"
        );
        assert!(!l.contains("secret"), "{l}");
    }

    #[test]
    fn https_without_files_is_tls_with_system_roots() {
        // The case Go logs as "connecting to etcd with http".
        assert_eq!(
            line(&["--etcd-endpoints=https://10.0.0.1:2379"]),
            "connecting to etcd with TLS, verifying the server certificate with the system's \
             trusted CAs, no client certificate; no etcd username"
        );
    }

    #[test]
    fn https_names_ca_and_client_certificate() {
        let l = line(&[
            "--etcd-endpoints=https://10.0.0.1:2379",
            "--etcd-cafile=/etc/ca.pem",
            "--etcd-certfile=/etc/c.pem",
            "--etcd-keyfile=/etc/c.key",
        ]);
        assert_eq!(
            l,
            "connecting to etcd with TLS, verifying the server certificate with --etcd-cafile \
             /etc/ca.pem, client certificate /etc/c.pem; no etcd username"
        );
    }

    #[test]
    fn mixed_endpoints_and_half_pairs() {
        let l = line(&["--etcd-endpoints=https://10.0.0.1:2379,http://10.0.0.2:2379"]);
        assert!(l.contains("plain http (insecure) for the others"), "{l}");
        assert_eq!(
            line(&["--etcd-certfile=/c.pem"]),
            "error: --etcd-certfile is set but --etcd-keyfile is not"
        );
        assert_eq!(
            line(&["--etcd-keyfile=/c.key"]),
            "error: --etcd-keyfile is set but --etcd-certfile is not"
        );
    }

    #[test]
    fn create_if_absent_compares_version_zero() {
        let t = put_if_absent("/k", "v".into(), 7);
        assert_eq!(t.compare.len(), 1);
        assert_eq!(
            t.compare[0].target_union,
            Some(rpc::compare::TargetUnion::Version(0))
        );
        let Some(rpc::request_op::Request::RequestPut(p)) = &t.success[0].request else {
            panic!("not a put: {t:?}");
        };
        assert_eq!((p.key.as_slice(), p.lease), (b"/k".as_slice(), 7));
    }
}
