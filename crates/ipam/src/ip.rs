//! Address helpers that reproduce Go's `net` package behaviour where it
//! matters for compatibility: IPv4-mapped IPv6 addresses are IPv4 (Go's
//! `To4()`), and addresses print the way `net.IP.String()` prints them,
//! which is also how host-local names its reservation files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Go's `canonicalizeIP`: an IPv4-mapped IPv6 address becomes IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parses an address the way Go's `net.ParseIP` does, canonicalized.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical)
}

/// Parses Go's `ip.IP` text form, `<ip>[/<prefix>]`; the prefix is
/// validated and then dropped, as host-local only uses the address.
pub fn parse_ip_maybe_prefix(s: &str) -> Option<IpAddr> {
    match s.split_once('/') {
        Some(_) => parse_cidr(s).map(|c| canonical(c.ip)),
        None => parse_ip(s),
    }
}

/// A CIDR as written, before any canonicalization: the address keeps its
/// host bits and its original family, like the result of Go's
/// `types.ParseCIDR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address exactly as written (an IPv4-mapped address stays IPv6).
    pub ip: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

/// Parses `<ip>/<prefix>`; the prefix must be decimal and fit the family.
pub fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, len) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = len.parse().ok()?;
    if u32::from(prefix) > width(ip) {
        return None;
    }
    Some(Cidr { ip, prefix })
}

/// Address width in bits.
pub fn width(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The integer back as an address of the same family as `like`.
pub fn from_u128(value: u128, like: IpAddr) -> IpAddr {
    match like {
        // Truncation is intended: callers stay within the IPv4 space.
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// The mask of a prefix length, as an integer of the family's width.
pub fn mask(prefix: u8, ip: IpAddr) -> u128 {
    let bits = width(ip);
    let all = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let host_bits = bits.saturating_sub(u32::from(prefix));
    if host_bits >= 128 {
        0
    } else {
        all & !((1u128 << host_bits) - 1)
    }
}

/// Go's `ip.NextIP`, wrapping at the end of the family's space.
pub fn next_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(1))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6).wrapping_add(1))),
    }
}

/// Whether two addresses are of the same family.
pub fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v6_is_v4() {
        assert_eq!(parse_ip("::ffff:10.1.2.3"), parse_ip("10.1.2.3"));
        assert_eq!(
            parse_ip("::ffff:10.1.2.3").map(|i| i.to_string()),
            Some("10.1.2.3".into())
        );
    }

    #[test]
    fn v6_text_matches_go() {
        // Go's net.IP.String(): RFC 5952, lower case, "::" for the longest
        // run of two or more zero groups, never for a single one.
        let cases = [
            ("2001:DB8:1::2", "2001:db8:1::2"),
            ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
            ("1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1"),
            ("::1.2.3.4", "::102:304"),
            ("0:0:1::", "0:0:1::"),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_ip(input).map(|i| i.to_string()).as_deref(),
                Some(want),
                "{input}"
            );
        }
    }

    #[test]
    fn cidr_parsing() {
        let c = parse_cidr("192.0.2.12/24");
        assert_eq!(
            c.map(|c| (c.ip.to_string(), c.prefix)),
            Some(("192.0.2.12".into(), 24))
        );
        assert!(parse_cidr("10.0.0.0").is_none());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0.0/").is_none());
        assert!(parse_cidr("10.0.0.0/+1").is_none());
        assert!(parse_cidr("2001:db8::/129").is_none());
        assert_eq!(parse_cidr("2001:db8::/128").map(|c| c.prefix), Some(128));
        assert_eq!(parse_ip_maybe_prefix("10.1.2.11/24"), parse_ip("10.1.2.11"));
        assert_eq!(parse_ip_maybe_prefix("10.1.2.11/40"), None);
    }

    #[test]
    fn masks_and_arith() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(mask(24, v4), 0xffff_ff00);
        assert_eq!(mask(0, v4), 0);
        assert_eq!(mask(32, v4), 0xffff_ffff);
        let v6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert_eq!(mask(0, v6), 0);
        assert_eq!(mask(128, v6), u128::MAX);
        assert_eq!(
            next_ip(IpAddr::V4(Ipv4Addr::BROADCAST)),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
        assert_eq!(from_u128(to_u128(v4) + 1, v4).to_string(), "10.0.0.1");
    }
}
