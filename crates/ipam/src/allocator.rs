//! Round-robin allocation (Go: `backend/allocator/allocator.go`).
//!
//! The walk is exactly Go's, so a node that alternates between the Go
//! plugin and this one hands out the same sequence of addresses: start
//! after `last_reserved_ip.N` when that address is in the set (else at the
//! first range's start), step forward through the set's ranges, wrapping,
//! skip each range's gateway, and stop on returning to the start.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::error::{IpamError, Result};
use crate::ip;
use crate::range::{Range, RangeSet};
use crate::store::LockedStore;

/// An address handed out, with its subnet's prefix and gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// `ip/prefix`, the prefix being the range's subnet's.
    pub address: IpNetwork,
    /// The range's gateway.
    pub gateway: IpAddr,
}

impl Allocation {
    fn new(addr: IpAddr, range: &Range) -> Result<Allocation> {
        let address = IpNetwork::new(addr, range.subnet.prefix())
            .map_err(|e| IpamError::Failed(format!("{addr}/{}: {e}", range.subnet.prefix())))?;
        Ok(Allocation {
            address,
            gateway: range.gateway,
        })
    }
}

/// Go's `RangeIter`: the candidate walk over one set.
#[derive(Debug, Clone)]
pub struct RangeIter<'a> {
    set: &'a RangeSet,
    /// Index of the range `cur` is in.
    range_idx: usize,
    /// The last candidate returned (or the last reserved address).
    cur: Option<IpAddr>,
    /// The first candidate; meeting it again ends the walk.
    start_ip: Option<IpAddr>,
}

impl<'a> RangeIter<'a> {
    /// Starts after `last_reserved` when the set contains it, else at the
    /// first range's start.
    pub fn new(set: &'a RangeSet, last_reserved: Option<IpAddr>) -> RangeIter<'a> {
        let ranges = set.ranges();
        let resume = last_reserved.map(ip::canonical).and_then(|last| {
            ranges
                .iter()
                .position(|r| r.contains(last))
                .map(|i| (i, last))
        });
        match resume {
            // Every step advances first, so the first candidate is last + 1.
            Some((idx, last)) => RangeIter {
                set,
                range_idx: idx,
                cur: Some(last),
                start_ip: None,
            },
            None => RangeIter {
                set,
                range_idx: 0,
                cur: None,
                start_ip: ranges.first().map(|r| r.range_start),
            },
        }
    }

    /// The first candidate seen, once the walk has begun (Go's `startIP`).
    pub fn start_ip(&self) -> Option<IpAddr> {
        self.start_ip
    }

    /// The next candidate and the range it belongs to, or `None` when the
    /// walk is back where it began.
    pub fn next_candidate(&mut self) -> Option<(IpAddr, &'a Range)> {
        let ranges = self.set.ranges();
        loop {
            let mut range = ranges.get(self.range_idx)?;
            let cur = match self.cur {
                None => {
                    // First step of a walk from the top: rangeStart itself.
                    self.cur = Some(range.range_start);
                    self.start_ip = Some(range.range_start);
                    if range.range_start == range.gateway {
                        continue;
                    }
                    return Some((range.range_start, range));
                }
                Some(cur) => cur,
            };
            let next = if cur == range.range_end {
                // RangeEnd is inclusive: move to the next range, wrapping.
                self.range_idx = (self.range_idx + 1) % ranges.len();
                range = ranges.get(self.range_idx)?;
                range.range_start
            } else {
                ip::next_ip(cur)
            };
            self.cur = Some(next);
            match self.start_ip {
                None => self.start_ip = Some(next),
                Some(start) if start == next => return None,
                Some(_) => {}
            }
            if next == range.gateway {
                continue;
            }
            return Some((next, range));
        }
    }
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (IpAddr, &'a Range);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_candidate()
    }
}

/// Allocates one address from set `set_idx` for `id`/`ifname`: the
/// requested one, or the next free one in round-robin order.
pub fn allocate(
    store: &LockedStore,
    set: &RangeSet,
    set_idx: usize,
    id: &str,
    ifname: &str,
    requested: Option<IpAddr>,
) -> Result<Allocation> {
    match requested {
        Some(addr) => allocate_requested(store, set, set_idx, id, ifname, ip::canonical(addr)),
        None => allocate_next(store, set, set_idx, id, ifname),
    }
}

fn allocate_requested(
    store: &LockedStore,
    set: &RangeSet,
    set_idx: usize,
    id: &str,
    ifname: &str,
    addr: IpAddr,
) -> Result<Allocation> {
    let range = set.range_for(addr).map_err(IpamError::Failed)?;
    if addr == range.gateway {
        return Err(IpamError::Failed(format!(
            "requested ip {addr} is subnet's gateway"
        )));
    }
    if !store.reserve(id, ifname, addr, set_idx)? {
        return Err(IpamError::Failed(format!(
            "requested IP address {addr} is not available in range set {set}"
        )));
    }
    Allocation::new(addr, range)
}

fn allocate_next(
    store: &LockedStore,
    set: &RangeSet,
    set_idx: usize,
    id: &str,
    ifname: &str,
) -> Result<Allocation> {
    // A second ADD for the same attachment is an error in the spec.
    for held in store.get_by_id(id, ifname)? {
        if set.contains(held) {
            return Err(IpamError::Failed(format!(
                "{held} has been allocated to {id}, duplicate allocation is not allowed"
            )));
        }
    }
    let mut iter = RangeIter::new(set, store.last_reserved_ip(set_idx));
    while let Some((candidate, range)) = iter.next_candidate() {
        if store.reserve(id, ifname, candidate, set_idx)? {
            return Allocation::new(candidate, range);
        }
    }
    Err(IpamError::Failed(format!(
        "no IP addresses available in range set: {set}"
    )))
}

#[cfg(test)]
mod tests {
    //! Vectors from Go's allocator_test.go, run against the real disk
    //! store in a temporary directory instead of Go's fake store.
    use super::*;
    use crate::range::RangeConf;
    use crate::store::Store;

    fn ipa(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(subnets: &[&str]) -> RangeSet {
        let confs: Vec<RangeConf> = subnets
            .iter()
            .map(|s| RangeConf {
                subnet: ip::parse_cidr(s),
                ..Default::default()
            })
            .collect();
        RangeSet::canonicalize(&confs).unwrap()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: LockedStore,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "net").unwrap().lock().unwrap();
        Fixture { _dir: dir, store }
    }

    impl Fixture {
        fn path(&self) -> std::path::PathBuf {
            self.store.path().to_path_buf()
        }
        fn hold(&self, ip: &str, owner: &str) {
            std::fs::write(self.path().join(ip), owner).unwrap();
        }
        fn last(&self, ip: &str) {
            std::fs::write(self.path().join("last_reserved_ip.0"), ip).unwrap();
        }
    }

    fn walk(set: &RangeSet, last: Option<&str>) -> Vec<String> {
        RangeIter::new(set, last.map(ipa))
            .map(|(ip, _)| ip.to_string())
            .collect()
    }

    #[test]
    fn iter_from_the_beginning() {
        let s = set(&["192.168.1.0/29"]);
        assert_eq!(
            walk(&s, None),
            [
                "192.168.1.2",
                "192.168.1.3",
                "192.168.1.4",
                "192.168.1.5",
                "192.168.1.6"
            ]
        );
    }

    #[test]
    fn iter_from_the_end() {
        let s = set(&["192.168.1.0/29"]);
        assert_eq!(
            walk(&s, Some("192.168.1.6")),
            [
                "192.168.1.2",
                "192.168.1.3",
                "192.168.1.4",
                "192.168.1.5",
                "192.168.1.6"
            ]
        );
    }

    #[test]
    fn iter_from_the_middle() {
        let s = set(&["192.168.1.0/29"]);
        assert_eq!(
            walk(&s, Some("192.168.1.3")),
            [
                "192.168.1.4",
                "192.168.1.5",
                "192.168.1.6",
                "192.168.1.2",
                "192.168.1.3"
            ]
        );
    }

    #[test]
    fn iter_ignores_a_last_ip_outside_the_set() {
        let s = set(&["192.168.1.0/29"]);
        assert_eq!(
            walk(&s, Some("10.0.0.1")).first().map(String::as_str),
            Some("192.168.1.2")
        );
        assert_eq!(walk(&s, Some("2001:db8::1")).len(), 5);
    }

    #[test]
    fn iter_start_ip_after_the_end_of_a_range() {
        // A reservation at the end of one range continues into the next.
        let confs = [
            RangeConf {
                subnet: ip::parse_cidr("192.168.1.0/24"),
                range_start: Some(ipa("192.168.1.0")),
                range_end: Some(ipa("192.168.1.3")),
                gateway: Some(ipa("192.168.1.254")),
            },
            RangeConf {
                subnet: ip::parse_cidr("192.168.2.0/24"),
                range_start: Some(ipa("192.168.2.0")),
                range_end: Some(ipa("192.168.2.3")),
                gateway: Some(ipa("192.168.2.254")),
            },
        ];
        let s = RangeSet::canonicalize(&confs).unwrap();
        let mut it = RangeIter::new(&s, Some(ipa("192.168.1.3")));
        assert_eq!(it.next().map(|(ip, _)| ip), Some(ipa("192.168.2.0")));
        assert_eq!(it.start_ip(), Some(ipa("192.168.2.0")));

        let mut it = RangeIter::new(&s, None);
        assert_eq!(it.next().map(|(ip, _)| ip), Some(ipa("192.168.1.0")));
        assert_eq!(it.start_ip(), Some(ipa("192.168.1.0")));
        // The whole cycle: 8 addresses, each once.
        assert_eq!(RangeIter::new(&s, None).count(), 8);
    }

    #[test]
    fn iter_single_address_that_is_the_gateway_ends() {
        let confs = [RangeConf {
            subnet: ip::parse_cidr("10.0.0.0/29"),
            range_start: Some(ipa("10.0.0.1")),
            range_end: Some(ipa("10.0.0.1")),
            gateway: None,
        }];
        let s = RangeSet::canonicalize(&confs).unwrap();
        assert!(walk(&s, None).is_empty());
        assert!(walk(&s, Some("10.0.0.1")).is_empty());
    }

    struct Case {
        subnets: &'static [&'static str],
        held: &'static [&'static str],
        last: Option<&'static str>,
        want: &'static str,
    }

    #[test]
    fn round_robin_table() {
        let cases = [
            // fresh start
            Case {
                subnets: &["10.0.0.0/29"],
                held: &[],
                last: None,
                want: "10.0.0.2",
            },
            Case {
                subnets: &["2001:db8:1::0/64"],
                held: &[],
                last: None,
                want: "2001:db8:1::2",
            },
            Case {
                subnets: &["10.0.0.0/30"],
                held: &[],
                last: None,
                want: "10.0.0.2",
            },
            Case {
                subnets: &["10.0.0.0/29"],
                held: &["10.0.0.2"],
                last: None,
                want: "10.0.0.3",
            },
            // next ip of last reserved ip
            Case {
                subnets: &["10.0.0.0/29"],
                held: &[],
                last: Some("10.0.0.5"),
                want: "10.0.0.6",
            },
            Case {
                subnets: &["10.0.0.0/29"],
                held: &["10.0.0.4", "10.0.0.5"],
                last: Some("10.0.0.3"),
                want: "10.0.0.6",
            },
            // round robin to the beginning
            Case {
                subnets: &["10.0.0.0/29"],
                held: &["10.0.0.6"],
                last: Some("10.0.0.5"),
                want: "10.0.0.2",
            },
            // lastIP is out of range
            Case {
                subnets: &["10.0.0.0/29"],
                held: &["10.0.0.2"],
                last: Some("10.0.0.128"),
                want: "10.0.0.3",
            },
            // subnet is completely full except for lastip: wrap and reserve it
            Case {
                subnets: &["10.0.0.0/29"],
                held: &["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
                last: Some("10.0.0.3"),
                want: "10.0.0.3",
            },
            // allocate from multiple subnets
            Case {
                subnets: &["10.0.0.0/30", "10.0.1.0/30"],
                held: &[],
                last: None,
                want: "10.0.0.2",
            },
            // advance to next subnet
            Case {
                subnets: &["10.0.0.0/30", "10.0.1.0/30"],
                held: &[],
                last: Some("10.0.0.2"),
                want: "10.0.1.2",
            },
            // roll to start subnet
            Case {
                subnets: &["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"],
                held: &[],
                last: Some("10.0.2.2"),
                want: "10.0.0.2",
            },
        ];
        for (idx, case) in cases.iter().enumerate() {
            let f = fixture();
            for held in case.held {
                f.hold(held, "id");
            }
            if let Some(last) = case.last {
                f.last(last);
            }
            let s = set(case.subnets);
            let got = allocate(&f.store, &s, 0, "ID", "eth0", None).unwrap();
            assert_eq!(got.address.ip().to_string(), case.want, "case {idx}");
            // The cursor moved to the new address.
            let last = std::fs::read_to_string(f.path().join("last_reserved_ip.0")).unwrap();
            assert_eq!(last, case.want, "case {idx}");
        }
    }

    #[test]
    fn broadcast_is_never_allocated() {
        let f = fixture();
        let s = set(&["192.168.1.0/29"]);
        for i in 2..7 {
            let got = allocate(&f.store, &s, 0, &format!("ID{i}"), "eth0", None).unwrap();
            assert_eq!(got.address.to_string(), format!("192.168.1.{i}/29"));
            assert_eq!(got.gateway, ipa("192.168.1.1"));
        }
        let e = allocate(&f.store, &s, 0, "ID8", "eth0", None).unwrap_err();
        assert_eq!(
            e.msg(),
            "no IP addresses available in range set: 192.168.1.1-192.168.1.6"
        );
        assert!(!f.path().join("192.168.1.7").exists());
    }

    #[test]
    fn round_robin_after_release() {
        let f = fixture();
        let s = set(&["192.168.1.0/29"]);
        let got = allocate(&f.store, &s, 0, "ID", "eth0", None).unwrap();
        assert_eq!(got.address.to_string(), "192.168.1.2/29");
        assert_eq!(f.store.release_by_id("ID", "eth0").unwrap(), 1);
        let got = allocate(&f.store, &s, 0, "ID", "eth0", None).unwrap();
        assert_eq!(got.address.to_string(), "192.168.1.3/29");
    }

    #[test]
    fn duplicate_allocation_is_refused() {
        let f = fixture();
        let s = set(&["192.168.1.0/29"]);
        allocate(&f.store, &s, 0, "ID", "eth0", None).unwrap();
        let e = allocate(&f.store, &s, 0, "ID", "eth0", None).unwrap_err();
        assert_eq!(
            e.msg(),
            "192.168.1.2 has been allocated to ID, duplicate allocation is not allowed"
        );
        // A legacy file of the same container counts too.
        let f = fixture();
        f.hold("192.168.1.4", "OLD");
        let e = allocate(&f.store, &s, 0, "OLD", "eth0", None).unwrap_err();
        assert_eq!(
            e.msg(),
            "192.168.1.4 has been allocated to OLD, duplicate allocation is not allowed"
        );
        // Another interface of the same container is a new attachment.
        let got = allocate(&f.store, &s, 0, "ID", "eth1", None).unwrap();
        assert_eq!(got.address.to_string(), "192.168.1.2/29");
        // An address held outside this set does not count.
        let other = set(&["10.0.0.0/29"]);
        let got = allocate(&f.store, &other, 1, "ID", "eth1", None).unwrap();
        assert_eq!(got.address.to_string(), "10.0.0.2/29");
    }

    #[test]
    fn requested_ip() {
        let f = fixture();
        let s = set(&["192.168.1.0/29"]);
        let got = allocate(&f.store, &s, 0, "ID", "eth0", Some(ipa("192.168.1.5"))).unwrap();
        assert_eq!(got.address.to_string(), "192.168.1.5/29");
        let e = allocate(&f.store, &s, 0, "ID", "eth0", Some(ipa("192.168.1.5"))).unwrap_err();
        assert_eq!(
            e.msg(),
            "requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6"
        );
        let e = allocate(&f.store, &s, 0, "ID2", "eth0", Some(ipa("192.168.1.1"))).unwrap_err();
        assert_eq!(e.msg(), "requested ip 192.168.1.1 is subnet's gateway");
        assert_eq!(e.code(), 999);
    }

    #[test]
    fn requested_ip_outside_the_bounds() {
        let f = fixture();
        let confs = [RangeConf {
            subnet: ip::parse_cidr("192.168.1.0/29"),
            range_start: Some(ipa("192.168.1.3")),
            range_end: Some(ipa("192.168.1.4")),
            gateway: None,
        }];
        let s = RangeSet::canonicalize(&confs).unwrap();
        let e = allocate(&f.store, &s, 0, "ID", "eth0", Some(ipa("192.168.1.5"))).unwrap_err();
        assert_eq!(
            e.msg(),
            "192.168.1.5 not in range set 192.168.1.3-192.168.1.4"
        );
        assert!(allocate(&f.store, &s, 0, "ID", "eth0", Some(ipa("192.168.1.2"))).is_err());
    }

    #[test]
    fn out_of_addresses() {
        let cases: [(&[&str], &[&str]); 3] = [
            (&["10.0.0.0/30"], &["10.0.0.2"]),
            (
                &["10.0.0.0/29"],
                &["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
            ),
            (&["10.0.0.0/30", "10.0.1.0/30"], &["10.0.0.2", "10.0.1.2"]),
        ];
        for (subnets, held) in cases {
            let f = fixture();
            for h in held {
                f.hold(h, "id");
            }
            let e = allocate(&f.store, &set(subnets), 0, "ID", "eth0", None).unwrap_err();
            assert!(
                e.msg()
                    .starts_with("no IP addresses available in range set"),
                "{e}"
            );
        }
        let f = fixture();
        f.hold("10.0.0.2", "id");
        f.hold("10.0.1.2", "id");
        let e = allocate(
            &f.store,
            &set(&["10.0.0.0/30", "10.0.1.0/30"]),
            0,
            "ID",
            "eth0",
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.msg(),
            "no IP addresses available in range set: 10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2"
        );
    }
}
