//! `/proc/sys` access.
//!
//! Kernel quirk: the `/proc/sys/net/...` entries resolve to the network
//! namespace of the task that *opens* them, not to the netns /proc was
//! mounted in. So these functions act on the calling thread's netns. To
//! act on another netns, call them inside [`crate::Netns::run`]:
//!
//! ```no_run
//! # fn main() -> Result<(), weft_netlink::NlError> {
//! let ns = weft_netlink::Netns::open("/var/run/netns/pod1")?;
//! let forwarding = ns.run(|| weft_netlink::sysctl_get("net/ipv4/ip_forward"))?;
//! # Ok(()) }
//! ```

use std::fs;
use std::io;
use std::path::PathBuf;

/// Write `value` to `/proc/sys/<key>` in the calling thread's netns.
///
/// `key` uses `/` (`net/ipv6/conf/eth0/accept_ra`) or `.`
/// (`net.ipv4.ip_forward`) as separator, like Go's `sysctl.Sysctl`: when the
/// first separator is a dot, dots and slashes are swapped, so interface
/// names containing dots work in the slash form (`net/ipv4/conf/br0.5/...`).
pub fn sysctl_set(key: &str, value: &str) -> io::Result<()> {
    let path = sysctl_path(key)?;
    fs::write(&path, value.as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))
}

/// Read `/proc/sys/<key>` in the calling thread's netns, without the
/// trailing newline.
pub fn sysctl_get(key: &str) -> io::Result<String> {
    let path = sysctl_path(key)?;
    let text = fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", path.display())))?;
    Ok(text.trim_end_matches('\n').to_string())
}

fn sysctl_path(key: &str) -> io::Result<PathBuf> {
    let name = normalize(key);
    let name = name.trim_start_matches('/');
    let bad = name.is_empty()
        || name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid sysctl key {key:?}"),
        ));
    }
    Ok(PathBuf::from("/proc/sys").join(name))
}

/// Go's `toNormalName`: if the first separator is '.', swap '.' and '/'.
fn normalize(key: &str) -> String {
    let dotted = key.chars().find(|c| *c == '.' || *c == '/') == Some('.');
    if !dotted {
        return key.to_string();
    }
    key.chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_normalized_like_go() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/br0.5/forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/br0.5/forwarding")
        );
        assert_eq!(
            sysctl_path("net.ipv4.conf.br0/5.forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/br0.5/forwarding")
        );
        // Go's bridge writes "/net/ipv6/conf/%s/enhanced_dad" with a leading slash.
        assert_eq!(
            sysctl_path("/net/ipv6/conf/eth0/enhanced_dad").unwrap(),
            PathBuf::from("/proc/sys/net/ipv6/conf/eth0/enhanced_dad")
        );
    }

    #[test]
    fn traversal_is_rejected() {
        assert!(sysctl_path("net/../../etc/passwd").is_err());
        assert!(sysctl_path("").is_err());
        assert!(sysctl_path("net//ipv4").is_err());
    }
}
