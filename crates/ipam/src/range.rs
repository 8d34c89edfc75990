//! Ranges and range sets (Go: `backend/allocator/range.go`, `range_set.go`).
//!
//! A [`RangeConf`] is a range as configured; [`RangeConf::canonicalize`]
//! validates it and fills in the defaults, giving a [`Range`]. Error texts
//! are Go's, so tooling that matches on them keeps working.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::ip::{self, Cidr};

/// One range as written in the configuration; every field may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeConf {
    /// `subnet`, as written (host bits kept, so they can be rejected).
    pub subnet: Option<Cidr>,
    /// `rangeStart`, the first address handed out (inclusive).
    pub range_start: Option<IpAddr>,
    /// `rangeEnd`, the last address handed out (inclusive).
    pub range_end: Option<IpAddr>,
    /// `gateway`, never handed out.
    pub gateway: Option<IpAddr>,
}

/// A validated range with all defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The subnet, host bits clear.
    pub subnet: IpNetwork,
    /// First allocatable address (inclusive).
    pub range_start: IpAddr,
    /// Last allocatable address (inclusive).
    pub range_end: IpAddr,
    /// The gateway returned with every address of this range; skipped by
    /// the allocator.
    pub gateway: IpAddr,
}

/// Whether `addr` lies in `net` (same family, network bits equal).
fn subnet_contains(net: &IpNetwork, addr: IpAddr) -> bool {
    let addr = ip::canonical(addr);
    if !ip::same_family(net.ip(), addr) {
        return false;
    }
    let mask = ip::mask(net.prefix(), addr);
    ip::to_u128(addr) & mask == ip::to_u128(net.ip()) & mask
}

/// Go's `ip.Cmp`: both sides as integers, so it also orders across
/// families (any IPv4 address sorts before any non-mapped IPv6 one).
fn cmp(a: IpAddr, b: IpAddr) -> std::cmp::Ordering {
    ip::to_u128(ip::canonical(a)).cmp(&ip::to_u128(ip::canonical(b)))
}

/// The last address of a subnet, less the broadcast address for IPv4.
fn last_ip(net: &IpNetwork) -> IpAddr {
    let family_bits = if net.is_ipv4() { 32 } else { 128 };
    let all_ones = ip::mask(family_bits, net.ip());
    let host = all_ones & !ip::mask(net.prefix(), net.ip());
    let last = ip::to_u128(net.ip()) | host;
    match net.ip() {
        IpAddr::V4(_) => ip::from_u128(last.saturating_sub(1), net.ip()),
        IpAddr::V6(_) => ip::from_u128(last, net.ip()),
    }
}

/// Whether `addr` is in the subnet and between the bounds that are known
/// (Go's `Range.Contains`, which tolerates unset bounds while the range is
/// being canonicalized).
fn within(net: &IpNetwork, start: Option<IpAddr>, end: Option<IpAddr>, addr: IpAddr) -> bool {
    if !subnet_contains(net, addr) {
        return false;
    }
    if let Some(start) = start {
        if cmp(addr, start).is_lt() {
            return false;
        }
    }
    if let Some(end) = end {
        if cmp(addr, end).is_gt() {
            return false;
        }
    }
    true
}

impl RangeConf {
    /// Validates the range and fills in Go's defaults: gateway and
    /// rangeStart are network+1, rangeEnd the last address (less the IPv4
    /// broadcast).
    pub fn canonicalize(&self) -> Result<Range, String> {
        let cidr = self.subnet.ok_or_else(|| "subnet is missing".to_string())?;
        let addr = ip::canonical(cidr.ip);
        let mask_bits = ip::width(cidr.ip);
        let ones = u32::from(cidr.prefix);

        // No allocator for a network without host addresses, e.g. a /31.
        if ones + 2 > mask_bits {
            return Err(format!("Network {addr}/{ones} too small to allocate from"));
        }
        // "::ffff:10.0.0.0/104": Go turns the address into IPv4 but keeps
        // the 128-bit mask.
        if ip::width(addr) != mask_bits {
            return Err("IPNet IP and Mask version mismatch".to_string());
        }
        let network = ip::from_u128(ip::to_u128(addr) & ip::mask(cidr.prefix, addr), addr);
        if network != addr {
            return Err(format!(
                "Network has host bits set. For a subnet mask of length {ones} the network address is {network}"
            ));
        }
        let subnet = IpNetwork::new(network, cidr.prefix).map_err(|e| e.to_string())?;

        let gateway = match self.gateway {
            None => ip::next_ip(network),
            Some(gw) => {
                let gw = ip::canonical(gw);
                if !subnet_contains(&subnet, gw) {
                    return Err(format!("gateway {gw} not in network {subnet}"));
                }
                gw
            }
        };

        let range_start = match self.range_start {
            Some(start) => {
                let start = ip::canonical(start);
                if !within(&subnet, Some(start), self.range_end, start) {
                    return Err(format!("RangeStart {start} not in network {subnet}"));
                }
                start
            }
            None => ip::next_ip(network),
        };

        let range_end = match self.range_end {
            Some(end) => {
                let end = ip::canonical(end);
                if !within(&subnet, Some(range_start), Some(end), end) {
                    return Err(format!("RangeEnd {end} not in network {subnet}"));
                }
                end
            }
            None => last_ip(&subnet),
        };

        // Go misses this one (a rangeStart on the broadcast address with
        // the default rangeEnd) and then walks off the end of the subnet.
        if cmp(range_start, range_end).is_gt() {
            return Err(format!(
                "RangeStart {range_start} is after RangeEnd {range_end}"
            ));
        }

        Ok(Range {
            subnet,
            range_start,
            range_end,
            gateway,
        })
    }
}

impl Range {
    /// Whether `addr` is an address of this range (subnet and bounds).
    pub fn contains(&self, addr: IpAddr) -> bool {
        within(
            &self.subnet,
            Some(self.range_start),
            Some(self.range_end),
            addr,
        )
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Range) -> bool {
        if !ip::same_family(self.range_start, other.range_start) {
            return false;
        }
        self.contains(other.range_start)
            || self.contains(other.range_end)
            || other.contains(self.range_start)
            || other.contains(self.range_end)
    }

    /// How many addresses the allocator can hand out from this range.
    pub fn capacity(&self) -> u128 {
        let span = ip::to_u128(self.range_end) - ip::to_u128(self.range_start);
        let gateway_inside = u128::from(self.contains(self.gateway));
        // span + 1 overflows only for a full ::/0 range, which is rejected.
        span.saturating_add(1) - gateway_inside
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.range_start, self.range_end)
    }
}

/// The ranges one address per ADD is drawn from; all of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

impl RangeSet {
    /// Validates a configured set: not empty, each range valid, one family,
    /// no two ranges overlapping.
    pub fn canonicalize(confs: &[RangeConf]) -> Result<RangeSet, String> {
        if confs.is_empty() {
            return Err("empty range set".to_string());
        }
        let mut ranges: Vec<Range> = Vec::with_capacity(confs.len());
        for conf in confs {
            let range = conf.canonicalize()?;
            if let Some(first) = ranges.first() {
                if !ip::same_family(first.range_start, range.range_start) {
                    return Err("mixed address families".to_string());
                }
            }
            ranges.push(range);
        }
        for (i, r1) in ranges.iter().enumerate() {
            for r2 in ranges.iter().skip(i + 1) {
                if r1.overlaps(r2) {
                    return Err(format!("subnets {r1} and {r2} overlap"));
                }
            }
        }
        Ok(RangeSet(ranges))
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[Range] {
        &self.0
    }

    /// Whether any range of the set contains `addr`.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.range_for(addr).is_ok()
    }

    /// The range holding `addr`.
    pub fn range_for(&self, addr: IpAddr) -> Result<&Range, String> {
        let addr = ip::canonical(addr);
        self.0
            .iter()
            .find(|r| r.contains(addr))
            .ok_or_else(|| format!("{addr} not in range set {self}"))
    }

    /// Whether a range of this set overlaps a range of `other`.
    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0
            .iter()
            .any(|r| other.0.iter().any(|r1| r.overlaps(r1)))
    }

    /// True for an IPv4 set.
    pub fn is_ipv4(&self) -> bool {
        self.0.first().is_some_and(|r| r.range_start.is_ipv4())
    }

    /// How many addresses the allocator can hand out from the whole set.
    pub fn capacity(&self) -> u128 {
        self.0
            .iter()
            .fold(0u128, |acc, r| acc.saturating_add(r.capacity()))
    }

    /// Whether `addr` is one the allocator could hand out: in a range and
    /// not that range's gateway.
    pub fn is_allocatable(&self, addr: IpAddr) -> bool {
        self.range_for(addr)
            .is_ok_and(|r| r.gateway != ip::canonical(addr))
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Vectors from Go's range_test.go and range_set_test.go.
    use super::*;

    fn ipa(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn conf(subnet: &str) -> RangeConf {
        RangeConf {
            subnet: ip::parse_cidr(subnet),
            ..Default::default()
        }
    }

    fn canon(subnet: &str) -> Range {
        conf(subnet).canonicalize().unwrap()
    }

    fn err(c: RangeConf) -> String {
        c.canonicalize().unwrap_err()
    }

    #[test]
    fn ipv4_defaults() {
        let r = canon("192.0.2.0/24");
        assert_eq!(r.subnet.to_string(), "192.0.2.0/24");
        assert_eq!(r.range_start, ipa("192.0.2.1"));
        assert_eq!(r.range_end, ipa("192.0.2.254"));
        assert_eq!(r.gateway, ipa("192.0.2.1"));
    }

    #[test]
    fn smaller_ipv4_subnet_defaults() {
        let r = canon("192.0.2.0/25");
        assert_eq!(r.range_start, ipa("192.0.2.1"));
        assert_eq!(r.range_end, ipa("192.0.2.126"));
        assert_eq!(r.gateway, ipa("192.0.2.1"));
    }

    #[test]
    fn ipv6_defaults() {
        let r = canon("2001:DB8:1::/64");
        assert_eq!(r.subnet.to_string(), "2001:db8:1::/64");
        assert_eq!(r.range_start, ipa("2001:db8:1::1"));
        assert_eq!(r.range_end, ipa("2001:db8:1::ffff:ffff:ffff:ffff"));
        assert_eq!(r.gateway, ipa("2001:db8:1::1"));
    }

    #[test]
    fn gateway_checks() {
        let mut c = conf("10.0.0.0/24");
        c.gateway = Some(ipa("192.168.1.1"));
        assert_eq!(
            err(c.clone()),
            "gateway 192.168.1.1 not in network 10.0.0.0/24"
        );
        c.gateway = Some(ipa("2001:db8::1"));
        assert_eq!(
            err(c.clone()),
            "gateway 2001:db8::1 not in network 10.0.0.0/24"
        );
        c.gateway = Some(ipa("10.0.0.254"));
        assert_eq!(c.canonicalize().unwrap().gateway, ipa("10.0.0.254"));
    }

    #[test]
    fn host_bits_rejected() {
        let cases = [
            ("192.0.2.12/24", "Network has host bits set. For a subnet mask of length 24 the network address is 192.0.2.0"),
            ("2001:DB8:1::24:19ff:fee1:c44a/64", "Network has host bits set. For a subnet mask of length 64 the network address is 2001:db8:1::"),
            ("2001:DB8:24:19ff::/63", "Network has host bits set. For a subnet mask of length 63 the network address is 2001:db8:24:19fe::"),
            ("192.168.127.0/23", "Network has host bits set. For a subnet mask of length 23 the network address is 192.168.126.0"),
        ];
        for (subnet, want) in cases {
            assert_eq!(err(conf(subnet)), want, "{subnet}");
        }
    }

    #[test]
    fn too_small() {
        assert_eq!(
            err(conf("192.0.2.0/31")),
            "Network 192.0.2.0/31 too small to allocate from"
        );
        assert_eq!(
            err(conf("192.0.2.0/32")),
            "Network 192.0.2.0/32 too small to allocate from"
        );
        assert_eq!(
            err(conf("2001:db8::/127")),
            "Network 2001:db8::/127 too small to allocate from"
        );
        assert!(conf("192.0.2.0/30").canonicalize().is_ok());
        assert!(conf("2001:db8::/126").canonicalize().is_ok());
    }

    #[test]
    fn mapped_subnet_is_a_version_mismatch() {
        assert_eq!(
            err(conf("::ffff:10.0.0.0/104")),
            "IPNet IP and Mask version mismatch"
        );
    }

    #[test]
    fn missing_subnet() {
        assert_eq!(err(RangeConf::default()), "subnet is missing");
    }

    #[test]
    fn bad_start_and_end() {
        let mut c = conf("192.0.2.0/24");
        c.range_start = Some(ipa("192.0.3.0"));
        assert_eq!(err(c), "RangeStart 192.0.3.0 not in network 192.0.2.0/24");

        let mut c = conf("192.0.2.0/24");
        c.range_end = Some(ipa("192.0.4.0"));
        assert_eq!(err(c), "RangeEnd 192.0.4.0 not in network 192.0.2.0/24");

        let mut c = conf("192.0.2.0/24");
        c.range_start = Some(ipa("192.0.2.50"));
        c.range_end = Some(ipa("192.0.2.40"));
        assert_eq!(err(c), "RangeStart 192.0.2.50 not in network 192.0.2.0/24");

        // rangeEnd before the default rangeStart (.1).
        let mut c = conf("192.0.2.0/24");
        c.range_end = Some(ipa("192.0.2.0"));
        assert_eq!(err(c), "RangeEnd 192.0.2.0 not in network 192.0.2.0/24");

        // Go accepts this and then walks out of the subnet.
        let mut c = conf("192.0.2.0/24");
        c.range_start = Some(ipa("192.0.2.255"));
        assert_eq!(
            err(c),
            "RangeStart 192.0.2.255 is after RangeEnd 192.0.2.254"
        );

        // Family mismatch.
        let mut c = conf("192.0.2.0/24");
        c.range_end = Some(ipa("2001:db8::5"));
        assert_eq!(err(c), "RangeEnd 2001:db8::5 not in network 192.0.2.0/24");
    }

    #[test]
    fn all_fields() {
        let mut c = conf("192.0.2.0/24");
        c.range_start = Some(ipa("192.0.2.40"));
        c.range_end = Some(ipa("192.0.2.50"));
        c.gateway = Some(ipa("192.0.2.254"));
        let r = c.canonicalize().unwrap();
        assert_eq!(
            r,
            Range {
                subnet: "192.0.2.0/24".parse().unwrap(),
                range_start: ipa("192.0.2.40"),
                range_end: ipa("192.0.2.50"),
                gateway: ipa("192.0.2.254"),
            }
        );
        assert_eq!(r.to_string(), "192.0.2.40-192.0.2.50");
        // Mapped addresses are IPv4.
        assert!(r.contains(ipa("::ffff:192.0.2.45")));
    }

    #[test]
    fn contains_v4() {
        let mut c = conf("192.0.2.0/24");
        c.range_start = Some(ipa("192.0.2.40"));
        c.range_end = Some(ipa("192.0.2.50"));
        c.gateway = Some(ipa("192.0.2.254"));
        let r = c.canonicalize().unwrap();
        assert!(!r.contains(ipa("192.0.3.0")));
        assert!(!r.contains(ipa("192.0.2.39")));
        assert!(r.contains(ipa("192.0.2.40")));
        assert!(r.contains(ipa("192.0.2.50")));
        assert!(!r.contains(ipa("192.0.2.51")));
        assert!(!r.contains(ipa("2001:db8::40")));
    }

    #[test]
    fn contains_v6() {
        let mut c = conf("2001:DB8:1::/64");
        c.range_start = Some(ipa("2001:db8:1::40"));
        c.range_end = Some(ipa("2001:db8:1::50"));
        let r = c.canonicalize().unwrap();
        assert!(!r.contains(ipa("2001:db8:2::")));
        assert!(!r.contains(ipa("2001:db8:1::39")));
        assert!(r.contains(ipa("2001:db8:1::40")));
        assert!(r.contains(ipa("2001:db8:1::50")));
        assert!(!r.contains(ipa("2001:db8:1::51")));
    }

    #[test]
    fn overlap_table() {
        let with = |subnet: &str, start: Option<&str>, end: Option<&str>| {
            let mut c = conf(subnet);
            c.range_start = start.map(ipa);
            c.range_end = end.map(ipa);
            c.canonicalize().unwrap()
        };
        let cases = [
            (
                "non-overlapping",
                canon("10.0.0.0/24"),
                canon("10.0.1.0/24"),
                false,
            ),
            (
                "different families",
                canon("0.0.0.0/24"),
                canon("::/24"),
                false,
            ),
            (
                "identical",
                canon("10.0.0.0/24"),
                canon("10.0.0.0/24"),
                true,
            ),
            (
                "containing",
                canon("10.0.0.0/20"),
                canon("10.0.1.0/24"),
                true,
            ),
            (
                "same subnet, non overlapping start + end",
                with("10.0.0.0/24", None, Some("10.0.0.127")),
                with("10.0.0.0/24", Some("10.0.0.128"), None),
                false,
            ),
            (
                "same subnet, overlapping start + end",
                with("10.0.0.0/24", None, Some("10.0.0.127")),
                with("10.0.0.0/24", Some("10.0.0.127"), None),
                true,
            ),
        ];
        for (name, r1, r2, want) in cases {
            assert_eq!(r1.overlaps(&r2), want, "{name}");
            assert_eq!(r2.overlaps(&r1), want, "{name} (reversed)");
        }
    }

    #[test]
    fn set_membership() {
        let set = RangeSet::canonicalize(&[conf("192.168.0.0/24"), conf("172.16.1.0/24")]).unwrap();
        assert!(set.contains(ipa("192.168.0.55")));
        assert_eq!(set.range_for(ipa("192.168.0.55")).unwrap(), &set.0[0]);
        assert_eq!(
            set.range_for(ipa("192.168.99.99")).unwrap_err(),
            "192.168.99.99 not in range set 192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254"
        );
    }

    #[test]
    fn set_overlaps_within() {
        let e =
            RangeSet::canonicalize(&[conf("192.168.0.0/20"), conf("192.168.2.0/24")]).unwrap_err();
        assert_eq!(
            e,
            "subnets 192.168.0.1-192.168.15.254 and 192.168.2.1-192.168.2.254 overlap"
        );
    }

    #[test]
    fn set_overlaps_outside() {
        let p1 = RangeSet::canonicalize(&[conf("192.168.0.0/20")]).unwrap();
        let p2 = RangeSet::canonicalize(&[conf("192.168.2.0/24")]).unwrap();
        assert!(p1.overlaps(&p2));
        assert!(p2.overlaps(&p1));
    }

    #[test]
    fn set_family_and_empty() {
        assert_eq!(RangeSet::canonicalize(&[]).unwrap_err(), "empty range set");
        assert_eq!(
            RangeSet::canonicalize(&[conf("10.1.0.0/22"), conf("2001:db8:5::/64")]).unwrap_err(),
            "mixed address families"
        );
    }

    #[test]
    fn capacity() {
        // .1-.254 minus the gateway .1
        assert_eq!(canon("10.0.0.0/24").capacity(), 253);
        let mut c = conf("10.0.0.0/24");
        c.range_start = Some(ipa("10.0.0.10"));
        c.range_end = Some(ipa("10.0.0.19"));
        assert_eq!(c.canonicalize().unwrap().capacity(), 10);
        assert_eq!(canon("2001:db8::/64").capacity(), (1u128 << 64) - 2);
        let set = RangeSet::canonicalize(&[conf("10.0.0.0/30"), conf("10.0.1.0/30")]).unwrap();
        assert_eq!(set.capacity(), 2);
        assert!(set.is_allocatable(ipa("10.0.1.2")));
        assert!(!set.is_allocatable(ipa("10.0.1.1")));
        assert!(!set.is_allocatable(ipa("10.0.1.3")));
    }
}
