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
fn within(
    net: &IpNetwork,
    start: Option<IpAddr>,
    end: Option<IpAddr>,
    addr: IpAddr,
) -> bool {
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
            return Err(format!("RangeStart {range_start} is after RangeEnd {range_end}"));
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
        within(&self.subnet, Some(self.range_start), Some(self.range_end), addr)
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
        self.0.iter().any(|r| other.0.iter().any(|r1| r.overlaps(r1)))
    }

    /// True for an IPv4 set.
    pub fn is_ipv4(&self) -> bool {
        self.0.first().is_some_and(|r| r.range_start.is_ipv4())
    }

    /// How many addresses the allocator can hand out from the whole set.
    pub fn capacity(&self) -> u128 {
        self.0.iter().fold(0u128, |acc, r| acc.saturating_add(r.capacity()))
    }

    /// Whether `addr` is one the allocator could hand out: in a range and
    /// not that range's gateway.
    pub fn is_allocatable(&self, addr: IpAddr) -> bool {
        self.range_for(addr).is_ok_and(|r| r.gateway != ip::canonical(addr))
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
