//! subnet.env: written exactly like Go's `subnet.WriteSubnetFile` (the CNI
//! plugin's parser is naive: no quotes, no spaces), read tolerantly like
//! godotenv (flanneld reads its previous subnet from it at start).

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ipnetwork::{Ipv4Network, Ipv6Network};

/// What goes into subnet.env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetEnv {
    pub network: Option<Ipv4Network>,
    pub subnet: Option<Ipv4Network>,
    pub ipv6_network: Option<Ipv6Network>,
    pub ipv6_subnet: Option<Ipv6Network>,
    pub mtu: u32,
    pub ip_masq: bool,
}

impl SubnetEnv {
    /// The file's bytes. FLANNEL_SUBNET is the lease's first address with the
    /// lease's prefix length (10.5.52.0/24 → 10.5.52.1/24).
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let (Some(net), Some(sn)) = (self.network, self.subnet) {
            let first = Ipv4Addr::from(u32::from(sn.network()).wrapping_add(1));
            s.push_str(&format!(
                "FLANNEL_NETWORK={net}\nFLANNEL_SUBNET={first}/{}\n",
                sn.prefix()
            ));
        }
        if let (Some(net), Some(sn)) = (self.ipv6_network, self.ipv6_subnet) {
            let first = Ipv6Addr::from(u128::from(sn.network()).wrapping_add(1));
            s.push_str(&format!(
                "FLANNEL_IPV6_NETWORK={net}\nFLANNEL_IPV6_SUBNET={first}/{}\n",
                sn.prefix()
            ));
        }
        s.push_str(&format!(
            "FLANNEL_MTU={}\nFLANNEL_IPMASQ={}\n",
            self.mtu, self.ip_masq
        ));
        s
    }

    /// Atomically replace `path`: the directory is created 0755, the content
    /// goes to a temp file in the same directory (fsync'd, mode 0644 whatever
    /// the umask), which is then renamed over the target.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "subnet.env".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&tmp)?;
            f.write_all(self.render().as_bytes())?;
            f.set_permissions(fs::Permissions::from_mode(0o644))?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// The values of a previous subnet.env, godotenv style: `export ` prefixes,
/// quotes, comments and blank lines are tolerated. Unparsable values are
/// ignored (flannel then allocates a fresh subnet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrevSubnets {
    pub network: Option<Ipv4Network>,
    pub subnet: Option<Ipv4Network>,
    pub ipv6_network: Option<Ipv6Network>,
    pub ipv6_subnet: Option<Ipv6Network>,
}

pub fn read_prev(path: &Path) -> PrevSubnets {
    match fs::read_to_string(path) {
        Ok(text) => parse_prev(&text),
        Err(_) => PrevSubnets::default(),
    }
}

/// Parses the text of a previous subnet.env (see [`PrevSubnets`]).
pub fn parse_prev(text: &str) -> PrevSubnets {
    let mut p = PrevSubnets::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "FLANNEL_NETWORK" => p.network = masked_v4(value),
            "FLANNEL_SUBNET" => p.subnet = masked_v4(value),
            "FLANNEL_IPV6_NETWORK" => p.ipv6_network = masked_v6(value),
            "FLANNEL_IPV6_SUBNET" => p.ipv6_subnet = masked_v6(value),
            _ => {}
        }
    }
    p
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    // An unquoted value may carry a trailing comment.
    v.split(" #").next().unwrap_or(v).trim()
}

fn masked_v4(s: &str) -> Option<Ipv4Network> {
    if !s.contains('/') {
        return None;
    }
    let n: Ipv4Network = s.parse().ok()?;
    Ipv4Network::new(n.network(), n.prefix()).ok()
}

fn masked_v6(s: &str) -> Option<Ipv6Network> {
    if !s.contains('/') {
        return None;
    }
    let n: Ipv6Network = s.parse().ok()?;
    Ipv6Network::new(n.network(), n.prefix()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> SubnetEnv {
        SubnetEnv {
            network: Some("10.5.0.0/16".parse().unwrap()),
            subnet: Some("10.5.52.0/24".parse().unwrap()),
            ipv6_network: None,
            ipv6_subnet: None,
            mtu: 1450,
            ip_masq: true,
        }
    }

    #[test]
    fn renders_like_go() {
        assert_eq!(
            env().render(),
            "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        let dual = SubnetEnv {
            ipv6_network: Some("fc00::/48".parse().unwrap()),
            ipv6_subnet: Some("fc00:0:0:34::/64".parse().unwrap()),
            ip_masq: false,
            ..env()
        };
        assert_eq!(
            dual.render(),
            "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\n\
             FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:34::1/64\n\
             FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        );
    }

    #[test]
    fn writes_atomically_with_mode_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/flannel/subnet.env");
        env().write(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), env().render());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let dmode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode & 0o755, 0o755);
        // No temp file left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn reads_previous_tolerantly() {
        let p = parse_prev(
            "# flannel\nexport FLANNEL_NETWORK=\"10.5.0.0/16\"\nFLANNEL_SUBNET=10.5.52.1/24\n\
             FLANNEL_IPV6_SUBNET='fc00:0:0:34::1/64'\nFLANNEL_MTU=1450\nGARBAGE\n",
        );
        assert_eq!(p.network, Some("10.5.0.0/16".parse().unwrap()));
        assert_eq!(p.subnet, Some("10.5.52.0/24".parse().unwrap()));
        assert_eq!(p.ipv6_subnet, Some("fc00:0:0:34::/64".parse().unwrap()));
        assert_eq!(parse_prev("FLANNEL_SUBNET=bogus").subnet, None);
    }
}
