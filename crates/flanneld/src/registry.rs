//! The etcd v3 side of flannel's subnet manager
//! (`pkg/subnet/etcd/registry.go`): config, lease listing, create-if-absent,
//! update, delete and the watch of `<prefix>/subnets`.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, PutOptions,
    TlsOptions, Txn, TxnOp, WatchOptions, WatchStream,
};
use ipnetwork::{Ipv4Network, Ipv6Network};
use tracing::{info, warn};

use crate::flags::Opts;
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
    pub async fn connect(opts: &Opts) -> Result<Registry> {
        let endpoints: Vec<String> = opts
            .etcd_endpoints
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(anyhow!("--etcd-endpoints is empty"));
        }
        let mut copts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(10))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if !opts.etcd_username.is_empty() {
            copts = copts.with_user(opts.etcd_username.clone(), opts.etcd_password.clone());
        }
        // tonic refuses TLS options for http:// endpoints.
        let plain = endpoints.iter().any(|e| e.starts_with("http://"));
        match tls_options(opts)? {
            Some(tls) if !plain => copts = copts.with_tls(tls),
            Some(_) => warn!("TLS files given but the etcd endpoints are http://: not using TLS"),
            None => {}
        }
        let client = Client::connect(&endpoints, Some(copts))
            .await
            .with_context(|| format!("connect to etcd at {}", endpoints.join(",")))?;
        Ok(Registry {
            client,
            prefix: opts.etcd_prefix.clone(),
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
        let resp = self.client.clone().get(key, None).await?;
        let kv = resp
            .kvs()
            .first()
            .ok_or_else(|| anyhow!(CONFIG_NOT_FOUND))?;
        Ok(String::from_utf8_lossy(kv.value()).into_owned())
    }

    /// All leases under `<prefix>/subnets` and the revision of the listing.
    /// Keys that do not parse are skipped with a warning, like Go. Unlike
    /// Go, keys without an etcd lease (reservations) are kept: Go's
    /// TimeToLive(0) fails and drops them (flannel#1329).
    pub async fn get_subnets(&self) -> Result<(Vec<Lease>, i64)> {
        let resp = self
            .client
            .clone()
            .get(self.subnets_prefix(), Some(GetOptions::new().with_prefix()))
            .await?;
        let rev = resp.header().map_or(0, |h| h.revision());
        let mut leases = Vec::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key());
            match lease_from_kv(&key, kv.value(), kv.lease()) {
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
        let mut c = self.client.clone();
        let grant = c.lease_grant(ttl, None).await.context("grant etcd lease")?;
        let put = TxnOp::put(
            key.clone(),
            attrs.to_json(),
            Some(PutOptions::new().with_lease(grant.id())),
        );
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([put]);
        let outcome = c.txn(txn).await;
        match outcome {
            Ok(r) if r.succeeded() => Ok(Created::Yes {
                etcd_lease: grant.id(),
                ttl: grant.ttl(),
            }),
            other => {
                if let Err(e) = c.lease_revoke(grant.id()).await {
                    warn!("revoke unused etcd lease {:x}: {e}", grant.id());
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
        let mut c = self.client.clone();
        if ttl <= 0 {
            c.put(key.clone(), attrs.to_json(), None)
                .await
                .with_context(|| format!("put {key}"))?;
            return Ok((0, 0));
        }
        let grant = c.lease_grant(ttl, None).await.context("grant etcd lease")?;
        let put = c
            .put(
                key.clone(),
                attrs.to_json(),
                Some(PutOptions::new().with_lease(grant.id())),
            )
            .await;
        if let Err(e) = put {
            if let Err(re) = c.lease_revoke(grant.id()).await {
                warn!("revoke unused etcd lease {:x}: {re}", grant.id());
            }
            return Err(anyhow!(e).context(format!("put {key}")));
        }
        Ok((grant.id(), grant.ttl()))
    }

    pub async fn delete_subnet(&self, sn: Ipv4Network, sn6: Option<Ipv6Network>) -> Result<()> {
        let key = self.subnet_key(sn, sn6);
        self.client.clone().delete(key, None).await?;
        Ok(())
    }

    /// Revoke an etcd lease we no longer use (weft: flannel leaves superseded
    /// grants to expire on their own after 24 h).
    pub async fn revoke(&self, id: i64) {
        if id == 0 {
            return;
        }
        match self.client.clone().lease_revoke(id).await {
            Ok(_) => info!("revoked superseded etcd lease {id:x}"),
            Err(e) => warn!("revoke superseded etcd lease {id:x}: {e}"),
        }
    }

    /// Remaining TTL of an etcd lease in seconds (-1: expired or none).
    pub async fn time_to_live(&self, id: i64) -> Result<i64> {
        let r = self.client.clone().lease_time_to_live(id, None).await?;
        Ok(r.ttl())
    }

    /// Watch `<prefix>/subnets` from revision `from` (inclusive).
    pub async fn watch_subnets(&self, from: i64) -> Result<WatchStream> {
        let mut wo = WatchOptions::new().with_prefix();
        if from > 0 {
            wo = wo.with_start_revision(from);
        }
        Ok(self
            .client
            .clone()
            .watch(self.subnets_prefix(), Some(wo))
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

/// TLS only when a certificate and key are given (Go's newTlsConfig), plus
/// the CA if set. tonic's TLS needs https:// endpoints.
fn tls_options(opts: &Opts) -> Result<Option<TlsOptions>> {
    if opts.etcd_keyfile.is_empty() || opts.etcd_certfile.is_empty() {
        if opts.etcd_cafile.is_empty() {
            warn!("no certificate provided: connecting to etcd with http. This is insecure");
            return Ok(None);
        }
        // A CA alone: server-authenticated TLS.
        let ca = std::fs::read(&opts.etcd_cafile)
            .with_context(|| format!("read --etcd-cafile {}", opts.etcd_cafile))?;
        return Ok(Some(
            TlsOptions::new().ca_certificate(Certificate::from_pem(ca)),
        ));
    }
    let cert = std::fs::read(&opts.etcd_certfile)
        .with_context(|| format!("read --etcd-certfile {}", opts.etcd_certfile))?;
    let key = std::fs::read(&opts.etcd_keyfile)
        .with_context(|| format!("read --etcd-keyfile {}", opts.etcd_keyfile))?;
    let mut tls = TlsOptions::new().identity(Identity::from_pem(cert, key));
    if !opts.etcd_cafile.is_empty() {
        let ca = std::fs::read(&opts.etcd_cafile)
            .with_context(|| format!("read --etcd-cafile {}", opts.etcd_cafile))?;
        tls = tls.ca_certificate(Certificate::from_pem(ca));
    }
    Ok(Some(tls))
}
