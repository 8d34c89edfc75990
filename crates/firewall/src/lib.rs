//! weft's firewall layer: Go-compatible chain names and comments, a thin
//! iptables wrapper (argv vectors, bounded xtables lock wait,
//! iptables-restore batches), nftables through the `nft` binary, and the
//! bridge plugin's ipMasq and macspoofchk on top of them.
//!
//! Everything runs the real binaries in the network namespace of the
//! calling thread, so callers that work on another netns run these
//! functions on a thread that `setns`'d into it.
//!
//! The binaries can be overridden with `WEFT_IPTABLES`, `WEFT_IP6TABLES`,
//! `WEFT_IPTABLES_RESTORE`, `WEFT_IP6TABLES_RESTORE` and `WEFT_NFT`, or by
//! passing a [`Tools`] to the `*_with` functions.

mod error;
mod exec;
pub mod ipmasq;
pub mod iptables;
mod lock;
pub mod names;
pub mod nft;
pub mod spoofcheck;

use ipnetwork::IpNetwork;

pub use error::FwError;
pub use exec::{display_command, resolve_binary, Output, Tool, Tools, DEFAULT_LOCK_WAIT_SECS};
pub use iptables::Family;
pub use lock::{SharedLock, SHARED_LOCK_PATH};
pub use names::{chain_name, format_comment, go_quote, hash_with_prefix};

/// Which netfilter API a plugin writes its rules with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `iptables`/`ip6tables` (legacy or nf_tables flavour).
    Iptables,
    /// `nft`, in the plugins' own tables.
    Nftables,
}

impl Backend {
    /// The config spelling: `"iptables"` or `"nftables"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Iptables => "iptables",
            Backend::Nftables => "nftables",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Go's backend choice: an explicit `"iptables"` or `"nftables"`; with none,
/// iptables unless iptables is unusable and nft is usable. Anything else is
/// `unknown ipmasq backend "<value>"`.
///
/// An iptables that is only busy (the xtables lock held past the bounded
/// wait) is not "unusable": that is an error, not a reason to put the rules
/// in nftables instead. (Go waits for the lock without limit here.)
pub fn select_backend(requested: Option<&str>) -> Result<Backend, FwError> {
    select_backend_with(&Tools::from_env(), requested)
}

/// [`select_backend`] with explicit binaries.
pub fn select_backend_with(tools: &Tools, requested: Option<&str>) -> Result<Backend, FwError> {
    match requested {
        Some("iptables") => Ok(Backend::Iptables),
        Some("nftables") => Ok(Backend::Nftables),
        Some(other) => Err(FwError::UnknownBackend(other.to_string())),
        None => match iptables::Iptables::new(tools, Family::V4).probe() {
            Ok(()) => Ok(Backend::Iptables),
            Err(e) if e.is_lock_timeout() => Err(e),
            Err(_) if nft::Nft::new(tools).supported() => Ok(Backend::Nftables),
            Err(_) => Ok(Backend::Iptables),
        },
    }
}

/// Whether iptables (IPv4) is usable here (Go `SupportsIPTables`).
pub fn supports_iptables(tools: &Tools) -> bool {
    iptables::Iptables::new(tools, Family::V4).supported()
}

/// Whether nft is usable here (Go `SupportsNFTables`).
pub fn supports_nftables(tools: &Tools) -> bool {
    nft::Nft::new(tools).supported()
}

/// Masquerades traffic from `ips` to anything outside their subnets
/// (bridge `ipMasq`). Idempotent.
pub fn setup_ipmasq(
    backend: Backend,
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<(), FwError> {
    ipmasq::setup(&Tools::from_env(), backend, ips, net, ifname, cid)
}

/// Removes the masquerade rules of one attachment from both backends, best
/// effort and idempotent. `ips` may be empty: the rules are found by chain
/// name and comment.
pub fn teardown_ipmasq(
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<(), FwError> {
    ipmasq::teardown(&Tools::from_env(), ips, net, ifname, cid)
}

/// Removes the masquerade rules of network `net` that belong to none of the
/// `valid` (container id, ifname) attachments, from both backends.
pub fn gc_ipmasq(net: &str, valid: &[(String, String)]) -> Result<(), FwError> {
    ipmasq::gc(&Tools::from_env(), net, valid)
}

/// Whether every masquerade rule [`setup_ipmasq`] would make exists.
pub fn check_ipmasq(
    backend: Backend,
    ips: &[IpNetwork],
    net: &str,
    ifname: &str,
    cid: &str,
) -> Result<bool, FwError> {
    ipmasq::check(&Tools::from_env(), backend, ips, net, ifname, cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_backends() {
        let tools = Tools::from_env();
        assert_eq!(
            select_backend_with(&tools, Some("iptables")).unwrap(),
            Backend::Iptables
        );
        assert_eq!(
            select_backend_with(&tools, Some("nftables")).unwrap(),
            Backend::Nftables
        );
        let err = select_backend_with(&tools, Some("ebtables")).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown ipmasq backend "ebtables""#);
        let err = select_backend_with(&tools, Some("")).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown ipmasq backend """#);
    }

    #[test]
    fn busy_iptables_is_an_error_not_a_reason_for_nftables() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("iptables");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'Another app is currently holding the xtables lock. Stopped waiting after 10s.' >&2\nexit 4\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut tools = Tools::from_env();
        tools.iptables.name = fake.display().to_string();
        // nft "works" (`true` accepts anything): still not chosen.
        tools.nft.name = "true".into();
        let err = select_backend_with(&tools, None).unwrap_err();
        assert!(err.is_lock_timeout(), "{err}");
        assert!(err.to_string().contains("xtables lock"), "{err}");
    }

    #[test]
    fn default_backend_without_any_binary_is_iptables() {
        let mut tools = Tools::from_env();
        tools.iptables.name = "/nonexistent/iptables".into();
        tools.nft.name = "/nonexistent/nft".into();
        assert_eq!(
            select_backend_with(&tools, None).unwrap(),
            Backend::Iptables
        );
        assert_eq!(Backend::Nftables.to_string(), "nftables");
    }
}
