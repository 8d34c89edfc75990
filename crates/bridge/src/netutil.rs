//! Small helpers shared by ADD, DEL and CHECK: netns opening, error mapping, an undo stack,
//! veth names and address arithmetic.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use weft_cni_core::CniError;
use weft_netlink::{Handle, Link, Netns, NlError};

/// A link lookup where "no such link" is an answer, not an error.
pub fn find_link(h: &Handle, name: &str) -> Result<Option<Link>, NlError> {
    match h.link_by_name(name) {
        Ok(l) => Ok(Some(l)),
        Err(NlError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Maps a netlink error to a CNI error, prefixed with what we were doing.
pub fn nl(ctx: impl AsRef<str>) -> impl FnOnce(NlError) -> CniError {
    move |e| CniError::Internal(format!("{}: {}", ctx.as_ref(), e))
}

/// Opens the pod netns for ADD/CHECK with Go's message, but a precise code: a path that is
/// not a network namespace is invalid input (code 4, like other bad CNI_* values).
pub fn open_netns(path: &str) -> Result<Netns, CniError> {
    Netns::open(path).map_err(|e| match e {
        NlError::NotFound(_) | NlError::NotNetns(_) => {
            CniError::InvalidEnv(format!("failed to open netns {path:?}: {e}"))
        }
        other => CniError::Internal(format!("failed to open netns {path:?}: {other}")),
    })
}

/// Cleanup actions run in reverse order when ADD fails part-way, so a failed ADD leaves
/// nothing behind. `disarm` on success.
type UndoStep = Box<dyn FnOnce() -> Result<(), String>>;

#[derive(Default)]
pub struct Undo {
    steps: Vec<(String, UndoStep)>,
    armed: bool,
}

impl Undo {
    pub fn new() -> Self {
        Undo {
            steps: Vec::new(),
            armed: true,
        }
    }

    pub fn push(&mut self, what: &str, f: impl FnOnce() -> Result<(), String> + 'static) {
        self.steps.push((what.to_string(), Box::new(f)));
    }

    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        while let Some((what, f)) = self.steps.pop() {
            if let Err(e) = f() {
                eprintln!("bridge: cleanup after failed ADD: {what}: {e}");
            }
        }
    }
}

/// `veth` + 8 random hex digits, as Go's ip.RandomVethName.
pub fn random_veth_name() -> String {
    let mut b = [0u8; 4];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        // Fall back to time + pid; uniqueness is re-checked by the kernel (EEXIST retry).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b = (t ^ std::process::id().rotate_left(16)).to_be_bytes();
    }
    format!("veth{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3])
}

/// The network address + 1: the default gateway when IPAM gives none.
pub fn gateway_of(addr: &IpNetwork) -> IpAddr {
    match addr.network() {
        IpAddr::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n).wrapping_add(1))),
        IpAddr::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n).wrapping_add(1))),
    }
}

pub fn default_net(v4: bool) -> IpNetwork {
    // Both constructions are statically valid (prefix 0).
    if v4 {
        IpNetwork::V4(ipnetwork::Ipv4Network::from(Ipv4Addr::UNSPECIFIED)).with_prefix(0)
    } else {
        IpNetwork::V6(ipnetwork::Ipv6Network::from(Ipv6Addr::UNSPECIFIED)).with_prefix(0)
    }
}

trait WithPrefix {
    fn with_prefix(self, p: u8) -> IpNetwork;
}

impl WithPrefix for IpNetwork {
    fn with_prefix(self, p: u8) -> IpNetwork {
        IpNetwork::new(self.ip(), p).unwrap_or(self)
    }
}

pub fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway() {
        let a: IpNetwork = "10.1.2.7/24".parse().unwrap();
        assert_eq!(gateway_of(&a).to_string(), "10.1.2.1");
        let a: IpNetwork = "2001:db8::5/64".parse().unwrap();
        assert_eq!(gateway_of(&a).to_string(), "2001:db8::1");
        assert_eq!(default_net(true).to_string(), "0.0.0.0/0");
        assert_eq!(default_net(false).to_string(), "::/0");
    }

    #[test]
    fn veth_names() {
        let n = random_veth_name();
        assert_eq!(n.len(), 12);
        assert!(n.starts_with("veth"));
        assert_ne!(random_veth_name(), n);
    }

    #[test]
    fn undo_runs_in_reverse_unless_disarmed() {
        use std::sync::{Arc, Mutex};
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let mut u = Undo::new();
            for i in 0..3 {
                let l = log.clone();
                u.push("step", move || {
                    l.lock().unwrap().push(i);
                    Ok(())
                });
            }
        }
        assert_eq!(*log.lock().unwrap(), vec![2, 1, 0]);
        let mut u = Undo::new();
        let l = log.clone();
        u.push("x", move || {
            l.lock().unwrap().push(9);
            Ok(())
        });
        u.disarm();
        drop(u);
        assert_eq!(log.lock().unwrap().len(), 3);
    }
}
