//! `resolvConf` support (Go: `plugins/ipam/host-local/dns.go`).

use std::path::Path;

use crate::error::{IpamError, Result};

/// The DNS block of the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConf {
    /// `nameserver` lines, in order.
    pub nameservers: Vec<String>,
    /// The last `domain` line.
    pub domain: String,
    /// Every word of every `search` line.
    pub search: Vec<String>,
    /// Every word of every `options` line.
    pub options: Vec<String>,
}

/// Reads a resolv.conf file into a [`DnsConf`].
pub fn parse_resolv_conf(path: &Path) -> Result<DnsConf> {
    let bytes = std::fs::read(path).map_err(|e| IpamError::io("open", path, &e))?;
    Ok(parse_resolv_text(&String::from_utf8_lossy(&bytes)))
}

/// Parses resolv.conf text: blank lines and lines starting with `#` or `;`
/// are skipped, as are keywords without a value.
pub fn parse_resolv_text(text: &str) -> DnsConf {
    let mut dns = DnsConf::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some((keyword, values)) = fields.split_first() else {
            continue;
        };
        let Some(first) = values.first() else {
            continue;
        };
        match *keyword {
            "nameserver" => dns.nameservers.push((*first).to_string()),
            "domain" => dns.domain = (*first).to_string(),
            "search" => dns.search.extend(values.iter().map(|v| v.to_string())),
            "options" => dns.options.extend(values.iter().map(|v| v.to_string())),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from Go's dns_test.go.
    #[test]
    fn simple() {
        let dns = parse_resolv_text("\n\t\tnameserver 192.0.2.0\n\t\tnameserver 192.0.2.1\n\t\t");
        assert_eq!(
            dns,
            DnsConf {
                nameservers: vec!["192.0.2.0".into(), "192.0.2.1".into()],
                ..Default::default()
            }
        );
    }

    #[test]
    fn comments_ignored() {
        let dns = parse_resolv_text("\nnameserver 192.0.2.0\n;nameserver 192.0.2.1\n");
        assert_eq!(dns.nameservers, vec!["192.0.2.0".to_string()]);
    }

    #[test]
    fn all_fields() {
        let dns = parse_resolv_text(
            "\nnameserver 192.0.2.0\nnameserver 192.0.2.2\ndomain example.com\n;nameserver comment\n#nameserver comment\nsearch example.net example.org\nsearch example.gov\noptions one two three\noptions four\n",
        );
        assert_eq!(
            dns,
            DnsConf {
                nameservers: vec!["192.0.2.0".into(), "192.0.2.2".into()],
                domain: "example.com".into(),
                search: vec![
                    "example.net".into(),
                    "example.org".into(),
                    "example.gov".into()
                ],
                options: vec!["one".into(), "two".into(), "three".into(), "four".into()],
            }
        );
    }

    #[test]
    fn keyword_without_value_is_skipped() {
        let dns = parse_resolv_text("nameserver\ndomain\nsearch\nnameserver 10.0.0.1 extra\n");
        assert_eq!(dns.nameservers, vec!["10.0.0.1".to_string()]);
        assert!(dns.search.is_empty());
        assert_eq!(dns.domain, "");
    }

    #[test]
    fn missing_file_is_io_error() {
        let err = parse_resolv_conf(Path::new("/nonexistent/weft/resolv.conf"));
        match err {
            Err(IpamError::Io(m)) => {
                assert_eq!(
                    m,
                    "open /nonexistent/weft/resolv.conf: no such file or directory"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
