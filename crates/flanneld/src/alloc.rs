//! Which subnet to claim: flannel's `tryAcquireLease` decision
//! (`pkg/subnet/etcd/local_manager.go`), as a pure function over the
//! current leases so it can be unit-tested.
//!
//! 1. A lease whose PublicIP is ours and that fits the config is reused; one
//!    that does not fit is deleted.
//! 2. Else the previous subnet (from subnet.env), if it fits and nobody holds
//!    it (flannel PR #1505: reusing a taken one made duplicates).
//! 3. Else one of the first 100 free subnets between SubnetMin and SubnetMax,
//!    picked uniformly at random.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnetwork::{Ipv4Network, Ipv6Network};

use crate::config::NetConfig;
use crate::lease::Lease;
use crate::subnet_file::PrevSubnets;

/// How many free subnets flannel collects before picking one at random.
const MAX_CANDIDATES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Our existing lease: re-put it with a fresh etcd lease.
    Reuse(Lease),
    /// Claim these subnets with a create-if-absent transaction.
    Create {
        subnet: Ipv4Network,
        ipv6_subnet: Option<Ipv6Network>,
        /// For the log: "previous" or "new".
        previous: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Our lease that no longer fits the config: delete it first.
    pub delete: Option<Lease>,
    pub choice: Choice,
}

pub fn v4_fits(cfg: &NetConfig, sn: Ipv4Network) -> bool {
    sn.ip() >= cfg.subnet_min && sn.ip() <= cfg.subnet_max && sn.prefix() == cfg.subnet_len
}

pub fn v6_fits(cfg: &NetConfig, sn6: Option<Ipv6Network>) -> bool {
    match (cfg.enable_ipv6, sn6) {
        (false, sn6) => sn6.is_none(),
        (true, None) => false,
        (true, Some(sn6)) => {
            sn6.ip() >= cfg.ipv6_subnet_min
                && sn6.ip() <= cfg.ipv6_subnet_max
                && sn6.prefix() == cfg.ipv6_subnet_len
        }
    }
}

/// Decide. `pick(n)` returns a uniformly random index below `n`.
pub fn plan(
    cfg: &NetConfig,
    leases: &[Lease],
    public_ip: Ipv4Addr,
    prev: &PrevSubnets,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Result<Plan, String> {
    let mut delete = None;
    if let Some(mine) = leases.iter().find(|l| l.attrs.public_ip == public_ip) {
        if v4_fits(cfg, mine.subnet) && v6_fits(cfg, mine.ipv6_subnet) {
            return Ok(Plan {
                delete: None,
                choice: Choice::Reuse(mine.clone()),
            });
        }
        delete = Some(mine.clone());
    }

    if let Some(prev_sn) = prev.subnet {
        let taken = leases.iter().any(|l| l.subnet == prev_sn);
        let prev6 = if cfg.enable_ipv6 {
            prev.ipv6_subnet
        } else {
            None
        };
        if !taken && v4_fits(cfg, prev_sn) && v6_fits(cfg, prev6) {
            return Ok(Plan {
                delete,
                choice: Choice::Create {
                    subnet: prev_sn,
                    ipv6_subnet: prev6,
                    previous: true,
                },
            });
        }
    }

    let (subnet, ipv6_subnet) = allocate(cfg, leases, pick)?;
    Ok(Plan {
        delete,
        choice: Choice::Create {
            subnet,
            ipv6_subnet,
            previous: false,
        },
    })
}

fn overlaps4(a: Ipv4Network, b: Ipv4Network) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

fn overlaps6(a: Ipv6Network, b: Ipv6Network) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// `allocateSubnet`: up to 100 free candidates of each family, one picked
/// at random; none → "out of subnets".
pub fn allocate(
    cfg: &NetConfig,
    leases: &[Lease],
    pick: &mut dyn FnMut(usize) -> usize,
) -> Result<(Ipv4Network, Option<Ipv6Network>), String> {
    let size = 1u64 << (32 - u32::from(cfg.subnet_len));
    let mut free4 = Vec::new();
    let mut ip = u64::from(u32::from(cfg.subnet_min));
    while ip <= u64::from(u32::from(cfg.subnet_max)) && free4.len() < MAX_CANDIDATES {
        let sn = Ipv4Network::new(Ipv4Addr::from(ip as u32), cfg.subnet_len)
            .map_err(|e| e.to_string())?;
        // Go steps one subnet at a time; a lease larger than a subnet (a corrupt or hostile
        // `10.0.0.0-8` key) then costs one step per subnet it covers, up to 2^30. Jumping
        // past the end of the overlapping leases skips only subnets they cover, so the
        // candidates are Go's.
        let taken_until = leases
            .iter()
            .filter(|l| overlaps4(sn, l.subnet))
            .map(|l| u64::from(u32::from(l.subnet.broadcast())) + 1)
            .max();
        match taken_until {
            None => {
                free4.push(sn);
                ip += size;
            }
            Some(end) => ip = end.max(ip + size),
        }
    }

    let mut free6 = Vec::new();
    if cfg.enable_ipv6 {
        let size6 = 1u128 << (128 - u32::from(cfg.ipv6_subnet_len));
        let mut ip6 = u128::from(cfg.ipv6_subnet_min);
        let max6 = u128::from(cfg.ipv6_subnet_max);
        while ip6 <= max6 && free6.len() < MAX_CANDIDATES {
            let sn6 = Ipv6Network::new(Ipv6Addr::from(ip6), cfg.ipv6_subnet_len)
                .map_err(|e| e.to_string())?;
            // As for IPv4; here a large lease (`&::-0`) would make the walk endless. None:
            // a lease reaches the end of the address space.
            let taken_until = leases
                .iter()
                .filter_map(|l| l.ipv6_subnet)
                .filter(|l6| overlaps6(sn6, *l6))
                .map(|l6| u128::from(l6.broadcast()).checked_add(1))
                .max();
            let next = match taken_until {
                None => {
                    free6.push(sn6);
                    ip6.checked_add(size6)
                }
                Some(Some(end)) => ip6.checked_add(size6).map(|n| n.max(end)),
                Some(None) => None,
            };
            match next {
                Some(n) => ip6 = n,
                None => break,
            }
        }
    }

    if free4.is_empty() || (cfg.enable_ipv6 && free6.is_empty()) {
        return Err("out of subnets".into());
    }
    let sn = free4[pick(free4.len()).min(free4.len() - 1)];
    let sn6 = if cfg.enable_ipv6 {
        Some(free6[pick(free6.len()).min(free6.len() - 1)])
    } else {
        None
    };
    Ok((sn, sn6))
}

/// 8 random bytes from the kernel (subnet choice, VTEP MAC).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // getrandom(2) cannot fail for 8 bytes once the pool is initialised; a
    // failure leaves a time-based value, which is still fine for a choice.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_ne_bytes(buf)
}

/// Uniform index below `n` (n > 0); the modulo bias is negligible for n ≤ 100.
pub fn random_index(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (random_u64() % n as u64) as usize
}

/// A random locally administered unicast MAC (flannel's `pkg/mac`).
pub fn random_mac() -> [u8; 6] {
    let r = random_u64().to_ne_bytes();
    let mut mac = [r[0], r[1], r[2], r[3], r[4], r[5]];
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::LeaseAttrs;

    fn cfg(text: &str) -> NetConfig {
        NetConfig::parse(text).unwrap()
    }

    fn lease(sn: &str, ip: &str) -> Lease {
        Lease {
            subnet: sn.parse().unwrap(),
            ipv6_subnet: None,
            attrs: LeaseAttrs {
                public_ip: ip.parse().unwrap(),
                public_ipv6: None,
                backend_type: "vxlan".into(),
                backend_data: None,
                backend_v6_data: None,
            },
            etcd_lease: 7,
        }
    }

    fn first(_: usize) -> usize {
        0
    }

    #[test]
    fn reuses_lease_with_our_ip() {
        let c = cfg(r#"{"Network":"10.5.0.0/16"}"#);
        let leases = vec![
            lease("10.5.7.0/24", "10.0.0.2"),
            lease("10.5.9.0/24", "10.0.0.1"),
        ];
        let p = plan(
            &c,
            &leases,
            "10.0.0.1".parse().unwrap(),
            &PrevSubnets::default(),
            &mut first,
        )
        .unwrap();
        assert_eq!(p.delete, None);
        assert_eq!(p.choice, Choice::Reuse(leases[1].clone()));
    }

    #[test]
    fn incompatible_own_lease_is_deleted() {
        let c = cfg(r#"{"Network":"10.5.0.0/16","SubnetLen":25}"#);
        let leases = vec![lease("10.5.9.0/24", "10.0.0.1")];
        let p = plan(
            &c,
            &leases,
            "10.0.0.1".parse().unwrap(),
            &PrevSubnets::default(),
            &mut first,
        )
        .unwrap();
        assert_eq!(p.delete, Some(leases[0].clone()));
        assert!(matches!(
            p.choice,
            Choice::Create {
                previous: false,
                ..
            }
        ));
    }

    #[test]
    fn previous_subnet_only_when_free_and_valid() {
        let c = cfg(r#"{"Network":"10.5.0.0/16"}"#);
        let prev = PrevSubnets {
            subnet: Some("10.5.52.0/24".parse().unwrap()),
            ..PrevSubnets::default()
        };
        let me = "10.0.0.1".parse().unwrap();
        let p = plan(&c, &[], me, &prev, &mut first).unwrap();
        assert_eq!(
            p.choice,
            Choice::Create {
                subnet: "10.5.52.0/24".parse().unwrap(),
                ipv6_subnet: None,
                previous: true
            }
        );
        // Taken by somebody else: allocate a new one (10.5.1.0 is the first).
        let taken = vec![lease("10.5.52.0/24", "10.0.0.9")];
        let p = plan(&c, &taken, me, &prev, &mut first).unwrap();
        assert_eq!(
            p.choice,
            Choice::Create {
                subnet: "10.5.1.0/24".parse().unwrap(),
                ipv6_subnet: None,
                previous: false
            }
        );
        // Outside the configured range: ignored.
        let prev_bad = PrevSubnets {
            subnet: Some("10.6.52.0/24".parse().unwrap()),
            ..PrevSubnets::default()
        };
        let p = plan(&c, &[], me, &prev_bad, &mut first).unwrap();
        assert!(matches!(
            p.choice,
            Choice::Create {
                previous: false,
                ..
            }
        ));
    }

    #[test]
    fn allocation_skips_taken_and_picks_among_100() {
        let c = cfg(r#"{"Network":"10.5.0.0/16"}"#);
        let leases = vec![
            lease("10.5.1.0/24", "10.0.0.2"),
            lease("10.5.2.0/24", "10.0.0.3"),
        ];
        let (sn, _) = allocate(&c, &leases, &mut first).unwrap();
        assert_eq!(sn.to_string(), "10.5.3.0/24");
        let mut seen = 0;
        let (sn, _) = allocate(&c, &leases, &mut |n| {
            seen = n;
            n - 1
        })
        .unwrap();
        assert_eq!(seen, 100);
        assert_eq!(sn.to_string(), "10.5.102.0/24");
    }

    #[test]
    fn out_of_subnets() {
        let c = cfg(r#"{"Network":"10.5.0.0/24"}"#);
        // /24 → /26 subnets, min .64, max .192: three usable.
        let leases = vec![
            lease("10.5.0.64/26", "10.0.0.2"),
            lease("10.5.0.128/26", "10.0.0.3"),
            lease("10.5.0.192/26", "10.0.0.4"),
        ];
        assert_eq!(
            allocate(&c, &leases, &mut first).unwrap_err(),
            "out of subnets"
        );
    }

    #[test]
    fn dual_stack_allocation() {
        let c = cfg(r#"{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}"#);
        let (sn, sn6) = allocate(&c, &[], &mut first).unwrap();
        assert_eq!(sn.to_string(), "10.5.1.0/24");
        assert_eq!(sn6.unwrap().to_string(), "fc00:0:0:1::/64");
    }

    #[test]
    fn huge_lease_does_not_stall_the_subnet_walk() {
        // A hang in fuzz/fuzz_targets/flanneld.rs: a lease covering the whole network made
        // allocate step through every subnet it covers (2^30 for IPv4, 2^56 and more for
        // IPv6: a hang).
        let c = cfg(r#"{"Network":"0.0.0.0/0","SubnetLen":30}"#);
        let start = std::time::Instant::now();
        let all = vec![lease("0.0.0.0/0", "10.0.0.2")];
        assert_eq!(
            allocate(&c, &all, &mut first).unwrap_err(),
            "out of subnets"
        );
        // Candidates are still Go's: the first subnet after the covering lease.
        let c = cfg(r#"{"Network":"10.5.0.0/16"}"#);
        let half = vec![lease("10.5.0.0/17", "10.0.0.2")];
        let (sn, _) = allocate(&c, &half, &mut first).unwrap();
        assert_eq!(sn.to_string(), "10.5.128.0/24");

        let c = cfg(r#"{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/8"}"#);
        let mut l = lease("10.5.7.0/24", "10.0.0.2");
        l.ipv6_subnet = Some("::/0".parse().unwrap());
        assert_eq!(
            allocate(&c, &[l.clone()], &mut first).unwrap_err(),
            "out of subnets"
        );
        l.ipv6_subnet = Some("fd00::/9".parse().unwrap());
        let (sn, sn6) = allocate(&c, &[l], &mut first).unwrap();
        assert_eq!(sn.to_string(), "10.5.1.0/24");
        assert_eq!(sn6.unwrap().to_string(), "fd80::/64");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn macs_are_local_unicast() {
        for _ in 0..50 {
            let m = random_mac();
            assert_eq!(m[0] & 0x03, 0x02);
        }
    }
}
