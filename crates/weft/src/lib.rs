//! One executable for every weft CNI plugin, chosen by the name it is run
//! as (argv[0]'s basename), busybox-style: `/opt/cni/bin/bridge` and
//! `/opt/cni/bin/host-local` are links (symbolic or hard) to `weft`.
//!
//! Why one binary: each static plugin carried its own copy of std, serde
//! and netlink (loopback alone was 2.4 MB); one file holds them once, and a
//! plugin that delegates to another role of the same file (bridge to
//! host-local, flannel to bridge) runs it in-process instead of paying an
//! exec (see `weft_cni_core::set_in_process`).

pub mod install;

use std::ffi::OsStr;
use std::path::Path;

use weft_cni_core::Plugin;

/// One plugin this binary can act as.
pub struct Role {
    /// The CNI type name, which is also the link name.
    pub name: &'static str,
    /// The plugin, for in-process delegation.
    pub plugin: &'static (dyn Plugin + Sync),
    /// Its process entry point (`--version`, panic hook, env, stdin, exit).
    pub main: fn() -> !,
}

/// Every role, in the order `weft` lists them.
pub const ROLES: &[Role] = &[
    Role {
        name: "bridge",
        plugin: &weft_bridge::Bridge,
        main: weft_bridge::main,
    },
    Role {
        name: "host-local",
        plugin: &weft_host_local::HostLocal,
        main: weft_host_local::main,
    },
    Role {
        name: "portmap",
        plugin: &weft_portmap::Portmap,
        main: weft_portmap::main,
    },
    Role {
        name: "loopback",
        plugin: &weft_loopback::Loopback,
        main: weft_loopback::main,
    },
    Role {
        name: "flannel",
        plugin: &weft_flannel::Flannel,
        main: weft_flannel::main,
    },
];

pub fn role(name: &str) -> Option<&'static Role> {
    ROLES.iter().find(|r| r.name == name)
}

/// The in-process lookup handed to cni-core.
pub fn role_plugin(name: &str) -> Option<&'static (dyn Plugin + Sync)> {
    role(name).map(|r| r.plugin)
}

/// argv[0]'s file name, as run ("/opt/cni/bin/bridge" -> "bridge").
pub fn invoked_name(argv0: Option<&OsStr>) -> Option<&str> {
    Path::new(argv0?).file_name()?.to_str()
}

/// Every role's name, comma-separated, for messages.
pub fn role_names() -> String {
    ROLES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoked_name_is_the_basename() {
        assert_eq!(
            invoked_name(Some(OsStr::new("/opt/cni/bin/bridge"))),
            Some("bridge")
        );
        assert_eq!(
            invoked_name(Some(OsStr::new("host-local"))),
            Some("host-local")
        );
        assert_eq!(invoked_name(None), None);
    }

    #[test]
    fn every_role_is_found_by_its_name() {
        for r in ROLES {
            assert!(role(r.name).is_some_and(|found| found.name == r.name));
        }
        assert!(role("weft").is_none());
        assert!(role("Bridge").is_none());
    }
}
