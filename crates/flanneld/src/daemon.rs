//! flanneld's main sequence (`main.go`): config, interface, backend device,
//! lease, rules, subnet.env, then the watch of the other nodes' leases and
//! the renewal loop of our own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use ipnetwork::IpNetwork;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};
use weft_firewall::Tools;
use weft_netlink::Handle;

use crate::config::NetConfig;
use crate::dataplane::{self, Backend};
use crate::flags::Opts;
use crate::healthz;
use crate::iface;
use crate::lease::Lease;
use crate::registry::Registry;
use crate::subnet::etcd::{etcd_config, EtcdManager};
use crate::subnet::kube::env as kube_env;
use crate::subnet::kube::kubeconfig;
use crate::subnet::kube::manager::{KubeManager, KubeSetup};
use crate::subnet::{StoredMacs, SubnetManager};
use crate::subnet_file::{read_prev, SubnetEnv};
use crate::task::{blocking, shutdown_signal, until_ok};
use crate::traffic;

/// `subnetTTL`: etcd leases last 24 h.
const SUBNET_TTL: i64 = 24 * 3600;
/// `--net-config-path`'s default in kube mode (as in Go).
const DEFAULT_NET_CONF_PATH: &str = "/etc/kube-flannel/net-conf.json";
/// Go's host-gw route check period; used for every backend's reconcile.
const RECONCILE_PERIOD: Duration = Duration::from_secs(10);

/// Knobs for tests (not flags: flannel has no equivalent).
#[derive(Debug, Clone)]
struct Tunables {
    /// `WEFT_FLANNELD_LEASE_TTL`: etcd lease TTL in seconds.
    lease_ttl: i64,
    /// `WEFT_FLANNELD_RECONCILE_SECS`: dataplane reconcile period.
    reconcile: Duration,
}

impl Tunables {
    fn from_env() -> Tunables {
        let num = |name: &str| -> Option<u64> {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|n| *n > 0)
        };
        Tunables {
            lease_ttl: num("WEFT_FLANNELD_LEASE_TTL")
                .and_then(|n| i64::try_from(n).ok())
                .unwrap_or(SUBNET_TTL),
            reconcile: num("WEFT_FLANNELD_RECONCILE_SECS")
                .map(Duration::from_secs)
                .unwrap_or(RECONCILE_PERIOD),
        }
    }
}

/// Run until a signal (exit 0, dataplane left in place), a revoked lease
/// (exit 0, like Go) or a fatal error (exit 1).
pub async fn run(opts: Opts) -> i32 {
    match run_inner(opts).await {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            1
        }
    }
}

fn parse_opt_ip<T: std::str::FromStr>(flag: &str, v: &str) -> Result<Option<T>> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| anyhow!("invalid --{flag} {v:?}"))
}
async fn run_inner(opts: Opts) -> Result<i32> {
    let tun = Tunables::from_env();
    let mut stop = shutdown_signal();
    let subnet_path = PathBuf::from(&opts.subnet_file);
    let public_ip: Option<Ipv4Addr> = parse_opt_ip("public-ip", &opts.public_ip)?;
    let public_ipv6: Option<Ipv6Addr> = parse_opt_ip("public-ipv6", &opts.public_ipv6)?;

    let ready = Arc::new(AtomicBool::new(false));
    if opts.healthz_port > 0 {
        let ip: IpAddr = opts
            .healthz_ip
            .parse()
            .map_err(|_| anyhow!("invalid --healthz-ip {:?}", opts.healthz_ip))?;
        let listener = healthz::bind(SocketAddr::new(ip, opts.healthz_port)).await?;
        tokio::spawn(healthz::serve(listener, ready.clone()));
    }
    let start = Start {
        subnet_path: subnet_path.clone(),
        public_ip,
        public_ipv6,
        ready,
        reconcile: tun.reconcile,
    };

    if opts.kube_subnet_mgr {
        let Some(mgr) = KubeManager::new(kube_setup(&opts)?, &mut stop).await? else {
            return Ok(0);
        };
        return run_with(&opts, mgr, start, stop).await;
    }

    let prev = read_prev(&subnet_path);
    let etcd = etcd_config(&opts);
    let Some(reg) = until_ok(&mut stop, "Failed to connect to etcd", || {
        Registry::connect(&etcd)
    })
    .await?
    else {
        return Ok(0);
    };
    let margin =
        Duration::from_secs(u64::try_from(opts.subnet_lease_renew_margin).unwrap_or(60) * 60);
    let mgr = EtcdManager::new(reg, prev, tun.lease_ttl, margin);
    run_with(&opts, mgr, start, stop).await
}

/// The kube manager's inputs from the flags and the environment.
fn kube_setup(opts: &Opts) -> Result<KubeSetup> {
    let get = |k: &str| std::env::var(k).ok();
    let client = kubeconfig::client_config(&opts.kube_api_url, &opts.kubeconfig_file, get)
        .map_err(|e| anyhow!("fail to create kubernetes config: {e}"))?;
    let node = kube_env::node_name(get).map_err(|e| anyhow!(e))?;
    Ok(KubeSetup {
        client,
        node,
        net_conf_path: opts
            .net_config_path
            .clone()
            .unwrap_or_else(|| DEFAULT_NET_CONF_PATH.to_string()),
        prefix: opts.kube_annotation_prefix.clone(),
        set_network_unavailable: opts.set_node_network_unavailable,
    })
}

/// What the main sequence needs besides the options and the manager.
struct Start {
    subnet_path: PathBuf,
    public_ip: Option<Ipv4Addr>,
    public_ipv6: Option<Ipv6Addr>,
    /// The healthz readiness flag.
    ready: Arc<AtomicBool>,
    reconcile: Duration,
}

/// `main.go` from the subnet manager on: config, interface, backend,
/// lease, rules, subnet.env, the peers' watch and our lease's keeper.
async fn run_with<M: SubnetManager>(
    opts: &Opts,
    mgr: M,
    start: Start,
    mut stop: watch::Receiver<bool>,
) -> Result<i32> {
    let Start {
        subnet_path,
        public_ip,
        public_ipv6,
        ready,
        reconcile,
    } = start;
    info!("Created subnet manager: {}", mgr.name());

    let Some(cfg) = get_config(opts, &mgr, &mut stop).await? else {
        return Ok(0);
    };
    info!("Found network config - Backend type: {}", cfg.backend.kind);
    cfg.check_backend()
        .map_err(|e| anyhow!("Error fetching backend: {e}"))?;
    // `GetStoredPublicIP`: node-public-ip(v6) beat the flags (kube mode).
    let (public_ip, public_ipv6) = match mgr.get_stored_public_ips().await {
        Ok((v4, v6)) => {
            if let Some(ip) = v4 {
                info!("Using the node-public-ip annotation {ip} as the public IP");
            }
            if let Some(ip) = v6 {
                info!("Using the node-public-ipv6 annotation {ip} as the public IPv6");
            }
            (v4.or(public_ip), v6.or(public_ipv6))
        }
        Err(e) => {
            warn!("Failed to read the stored public IP: {e:#}");
            (public_ip, public_ipv6)
        }
    };
    let mut cfg = cfg;
    if !cfg.enable_nftables {
        if let Some(why) = traffic::iptables_missing(&Tools::from_env(), cfg.enable_ipv6) {
            warn!("{why}: using nftables for the masquerade and forward rules, as with \"EnableNFTables\": true");
            cfg.enable_nftables = true;
        }
    }
    if !cfg.enable_nftables {
        check_br_netfilter(cfg.enable_ipv6)?;
    }

    let wanted = iface::Wanted {
        ifaces: opts.iface.clone(),
        regexes: opts.iface_regex.clone(),
        can_reach: opts.iface_can_reach.clone(),
        public_ip,
        public_ipv6,
        v4: cfg.enable_ipv4,
        v6: cfg.enable_ipv6,
    };
    let ext = blocking(move || {
        let h = Handle::new()?;
        iface::lookup(&h, &wanted)
    })
    .await?;
    info!(
        "Using interface with name {} and address {}",
        ext.name,
        ext.iface_addr.map_or("-".into(), |a| a.to_string())
    );
    let ext_addr = match (ext.ext_addr, cfg.enable_ipv4) {
        (Some(a), _) => a,
        (None, true) => bail!("no IPv4 external address"),
        // IPv6 only: the MAC lookup below does not use it in kube mode.
        (None, false) => Ipv4Addr::UNSPECIFIED,
    };
    if cfg.enable_ipv4 {
        info!("Using {ext_addr} as external address");
    }
    if let Some(a6) = ext.ext_v6_addr.filter(|_| cfg.enable_ipv6) {
        info!("Using {a6} as external IPv6 address");
    }

    // The MAC of our previous lease, so a recreated device keeps it and the
    // peers' ARP/FDB entries stay valid (flannel makes a new random one).
    let Some(StoredMacs { v4, v6 }) = until_ok(&mut stop, "Failed to list subnet leases", || {
        mgr.get_stored_macs(ext_addr)
    })
    .await?
    else {
        return Ok(0);
    };

    let mut backend = Backend::register(&cfg, &ext, v4, v6).await?;
    let attrs = backend.attrs(&ext);

    let Some(own) = mgr.acquire_lease(&cfg, &attrs, &mut stop).await? else {
        return Ok(0);
    };
    let lease = own.lease.clone();
    backend.configure(&cfg, &lease).await?;

    // Masquerade and forward rules.
    let spec = traffic_spec(opts, &cfg, &lease);
    let tools = Tools::from_env();
    let rules_ok = {
        let (tools, spec) = (tools.clone(), spec.clone());
        blocking(move || {
            traffic::cleanup_other(&tools, &spec);
            traffic::ensure(&tools, &spec)
        })
        .await
    };
    let rules_ok = match rules_ok {
        Ok(_) => true,
        Err(e) => {
            error!(
                "Failed to set up the masquerade/forward rules (retried every {}s): {e:#}",
                opts.iptables_resync
            );
            false
        }
    };

    let env = SubnetEnv {
        network: cfg.network.filter(|_| cfg.enable_ipv4),
        subnet: cfg.enable_ipv4.then_some(lease.subnet),
        ipv6_network: if cfg.enable_ipv6 {
            cfg.ipv6_network
        } else {
            None
        },
        ipv6_subnet: if cfg.enable_ipv6 {
            lease.ipv6_subnet
        } else {
            None
        },
        mtu: backend.mtu(&ext),
        ip_masq: opts.ip_masq,
    };
    match env.write(&subnet_path) {
        Ok(()) => info!("Wrote subnet file to {}", subnet_path.display()),
        Err(e) => warn!("Failed to write subnet file: {e}"),
    }

    let blackhole = if opts.ip_blackhole_route {
        let mut v: Vec<IpNetwork> = if cfg.enable_ipv4 {
            vec![IpNetwork::V4(lease.subnet)]
        } else {
            Vec::new()
        };
        v.extend(lease.ipv6_subnet.map(IpNetwork::V6));
        v
    } else {
        Vec::new()
    };
    let settings = dataplane::Settings {
        period: reconcile,
        blackhole,
    };
    let dp_tx = dataplane::spawn(backend.into_datapath(), settings, ext.index);

    ready.store(rules_ok, Ordering::Relaxed);
    tokio::spawn(resync_rules(
        tools,
        spec,
        opts.iptables_resync.max(1),
        ready.clone(),
    ));
    sd_notify_ready();
    info!("Running backend.");

    let (own_tx, own_rx) = mpsc::unbounded_channel();
    tokio::spawn(mgr.clone().watch_leases(lease, dp_tx, own_tx));

    Ok(mgr.keep_lease(own, own_rx, stop).await)
}

/// `getConfig`: `<prefix>/config`, retried while missing or invalid. Like
/// Go's etcd subnet manager, `--net-config-path` is not read in etcd mode
/// (only the Kubernetes subnet manager reads it); given anyway, it is named
/// in a warning so that nobody wonders why the file has no effect.
async fn get_config<M: SubnetManager>(
    opts: &Opts,
    mgr: &M,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<NetConfig>> {
    if let Some(w) = crate::flags::net_config_path_warning(opts) {
        warn!("{w}");
    }
    until_ok(stop, "Couldn't fetch network config", || {
        mgr.get_network_config()
    })
    .await
}

/// main.go exits when br_netfilter is missing (unless nftables mode): the
/// bridge would not pass pod traffic through iptables.
fn check_br_netfilter(v6: bool) -> Result<()> {
    let mut files = vec!["/proc/sys/net/bridge/bridge-nf-call-iptables"];
    if v6 {
        files.push("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
    }
    for f in files {
        if std::fs::metadata(f).is_err() {
            bail!(
                "Failed to check br_netfilter: stat {f}: no such file or directory \
                 (load it with `modprobe br_netfilter`, or set EnableNFTables)"
            );
        }
    }
    Ok(())
}

fn traffic_spec(opts: &Opts, cfg: &NetConfig, lease: &Lease) -> traffic::Spec {
    let v4 = cfg
        .network
        .filter(|_| cfg.enable_ipv4)
        .map(|c| traffic::FamilyNets {
            cluster: IpNetwork::V4(c),
            pod: IpNetwork::V4(lease.subnet),
        });
    let v6 = match (cfg.enable_ipv6, cfg.ipv6_network, lease.ipv6_subnet) {
        (true, Some(c), Some(p)) => Some(traffic::FamilyNets {
            cluster: IpNetwork::V6(c),
            pod: IpNetwork::V6(p),
        }),
        _ => None,
    };
    let random_fully = !opts.ip_masq_fully_random_disable
        && (cfg.enable_nftables || traffic::iptables_has_random_fully(&Tools::from_env()));
    traffic::Spec {
        nftables: cfg.enable_nftables,
        masq: opts.ip_masq,
        forward: opts.iptables_forward_rules,
        random_fully,
        v4,
        v6,
    }
}

async fn resync_rules(tools: Tools, spec: traffic::Spec, secs: u64, ready: Arc<AtomicBool>) {
    if !spec.masq && !spec.forward && !spec.nftables {
        ready.store(true, Ordering::Relaxed);
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (t, s) = (tools.clone(), spec.clone());
        match blocking(move || traffic::ensure(&t, &s)).await {
            Ok(true) => {
                warn!("masquerade/forward rules were missing: restored them");
                ready.store(true, Ordering::Relaxed);
            }
            Ok(false) => ready.store(true, Ordering::Relaxed),
            Err(e) => error!("Failed to ensure the masquerade/forward rules: {e:#}"),
        }
    }
}

/// systemd's `READY=1` (Type=notify units).
fn sd_notify_ready() {
    let Ok(path) = std::env::var("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| sock.send_to_addr(b"READY=1", &a))
    } else {
        sock.send_to(b"READY=1", &path)
    };
    if let Err(e) = sent {
        warn!("sd_notify: {e}");
    }
}
