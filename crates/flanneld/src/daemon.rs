//! flanneld's main sequence (`main.go`): config, interface, backend device,
//! lease, rules, subnet.env, then the watch of the other nodes' leases and
//! the renewal loop of our own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};
use weft_firewall::Tools;
use weft_netlink::{mac_to_string, Handle};

use crate::alloc::{self, Choice};
use crate::config::{NetConfig, BACKEND_HOST_GW, BACKEND_VXLAN};
use crate::dataplane::{self, vxlan, Cmd, Datapath, HostGw, VxlanDev};
use crate::flags::Opts;
use crate::healthz;
use crate::iface::{self, ExtIface};
use crate::lease::{parse_subnet_key, Lease, LeaseAttrs, VxlanData};
use crate::registry::{Created, EventType, Registry};
use crate::subnet_file::{read_prev, PrevSubnets, SubnetEnv};
use crate::traffic;

/// `subnetTTL`: etcd leases last 24 h.
const SUBNET_TTL: i64 = 24 * 3600;
/// `raceRetries`.
const RACE_RETRIES: usize = 10;
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

/// Our lease and when to renew it.
#[derive(Debug, Clone)]
struct Own {
    lease: Lease,
    /// The TTL etcd granted; None for a reservation (a key without an etcd
    /// lease), which is never renewed.
    granted: Option<i64>,
}

/// What the watcher tells the renewal loop about our own key.
#[derive(Debug)]
enum OwnEvent {
    Put { etcd_lease: i64 },
    Deleted,
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

fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    warn!("cannot install a SIGTERM handler: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => info!("received SIGTERM"),
            _ = tokio::signal::ctrl_c() => info!("received SIGINT"),
        }
        let _ = tx.send(true);
    });
    rx
}

/// Sleep, or return false if asked to stop meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.changed() => false,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("worker thread failed: {e}"))?
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
    if opts.kube_subnet_mgr {
        bail!("--kube-subnet-mgr is not supported by weft flanneld (etcd subnet manager only)");
    }
    let tun = Tunables::from_env();
    let mut stop = shutdown_signal();
    let subnet_path = PathBuf::from(&opts.subnet_file);
    let prev = read_prev(&subnet_path);
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

    let reg = connect(&opts, &mut stop).await?;
    let Some(reg) = reg else { return Ok(0) };
    info!(
        "Created subnet manager: Etcd Local Manager with Previous Subnet: {}",
        prev.subnet.map_or("None".to_string(), |s| s.to_string())
    );

    let Some(cfg) = get_config(&opts, &reg, &mut stop).await? else {
        return Ok(0);
    };
    info!("Found network config - Backend type: {}", cfg.backend.kind);
    cfg.check_backend()
        .map_err(|e| anyhow!("Error fetching backend: {e}"))?;
    if !cfg.enable_ipv4 {
        bail!("the etcd subnet manager needs EnableIPv4: IPv6-only networks are not supported");
    }
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
    let ext_addr = ext
        .ext_addr
        .ok_or_else(|| anyhow!("no IPv4 external address"))?;
    info!("Using {ext_addr} as external address");

    // The MAC of our previous lease, so a recreated device keeps it and the
    // peers' ARP/FDB entries stay valid (flannel makes a new random one).
    let Some((leases, _)) = until_ok(&mut stop, "Failed to list subnet leases", || {
        reg.get_subnets()
    })
    .await?
    else {
        return Ok(0);
    };
    let previous = leases.iter().find(|l| l.attrs.public_ip == ext_addr);
    let mac_hint = previous.and_then(|l| l.attrs.vxlan()).map(|d| d.mac);
    let mac6_hint = previous.and_then(|l| l.attrs.vxlan_v6()).map(|d| d.mac);

    let mut backend = Backend::register(&cfg, &ext, mac_hint, mac6_hint).await?;
    let attrs = backend.attrs(&ext);

    let Some(own) = acquire(&reg, &cfg, &attrs, &prev, tun.lease_ttl, &mut stop).await? else {
        return Ok(0);
    };
    let lease = own.lease.clone();
    backend.configure(&cfg, &lease).await?;

    // Masquerade and forward rules.
    let spec = traffic_spec(&opts, &cfg, &lease);
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
        network: cfg.network,
        subnet: Some(lease.subnet),
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
        let mut v = vec![IpNetwork::V4(lease.subnet)];
        v.extend(lease.ipv6_subnet.map(IpNetwork::V6));
        v
    } else {
        Vec::new()
    };
    let settings = dataplane::Settings {
        period: tun.reconcile,
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
    tokio::spawn(watch_leases(reg.clone(), lease.subnet, dp_tx, own_tx));

    let margin =
        Duration::from_secs(u64::try_from(opts.subnet_lease_renew_margin).unwrap_or(60) * 60);
    Ok(lease_loop(reg, own, own_rx, margin, tun.lease_ttl, stop).await)
}

/// Connect to etcd, retrying (an unreachable etcd is logged, not fatal).
async fn connect(opts: &Opts, stop: &mut watch::Receiver<bool>) -> Result<Option<Registry>> {
    until_ok(stop, "Failed to connect to etcd", || {
        Registry::connect(opts)
    })
    .await
}

/// Retry `f` with a backoff of 1 s, doubling up to [`RETRY_MAX`] (Go retries
/// every second), until it succeeds or a signal arrives (None). Each failure
/// is logged once, with the error's Display chain and the next delay.
async fn until_ok<T, F, Fut>(
    stop: &mut watch::Receiver<bool>,
    what: &str,
    mut f: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut delay = Duration::from_secs(1);
    loop {
        match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) => error!("{what} (retrying in {}s): {e:#}", delay.as_secs()),
        }
        if !sleep_or_stop(stop, delay).await {
            return Ok(None);
        }
        delay = next_delay(delay);
    }
}

/// The longest wait between two tries of [`until_ok`].
const RETRY_MAX: Duration = Duration::from_secs(5);

fn next_delay(d: Duration) -> Duration {
    (d * 2).min(RETRY_MAX)
}

/// `getConfig`: `<prefix>/config`, retried every second while missing or
/// invalid. Like Go's etcd subnet manager, `--net-config-path` is not read in
/// etcd mode (only the Kubernetes subnet manager reads it); given anyway, it
/// is named in a warning so that nobody wonders why the file has no effect.
async fn get_config(
    opts: &Opts,
    reg: &Registry,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<NetConfig>> {
    if let Some(w) = crate::flags::net_config_path_warning(opts) {
        warn!("{w}");
    }
    until_ok(stop, "Couldn't fetch network config", || async {
        let text = reg.get_config().await?;
        NetConfig::parse(&text).map_err(|e| anyhow!(e))
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
    let v4 = cfg.network.map(|c| traffic::FamilyNets {
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

/// The backend between registration and running (one per process).
#[allow(clippy::large_enum_variant)]
enum Backend {
    Vxlan {
        vni: u32,
        v4: Option<(vxlan::DevConfig, weft_netlink::Link)>,
        v6: Option<(vxlan::DevConfig, weft_netlink::Link)>,
    },
    HostGw {
        gw: HostGw,
        mtu: u32,
    },
}

impl Backend {
    /// `RegisterNetwork`, first half: the devices exist before the lease,
    /// because their MAC goes into the lease.
    async fn register(
        cfg: &NetConfig,
        ext: &ExtIface,
        mac: Option<[u8; 6]>,
        mac6: Option<[u8; 6]>,
    ) -> Result<Backend> {
        match cfg.backend.kind.as_str() {
            BACKEND_VXLAN => {
                let b = &cfg.backend;
                let base_mtu = if b.mtu > 0 { b.mtu } else { ext.mtu };
                let unset4 = IpNetwork::V4(Ipv4Network::from(Ipv4Addr::UNSPECIFIED));
                let mk = |name: String, local: IpAddr, network: IpNetwork| {
                    let overhead = if local.is_ipv6() {
                        vxlan::OVERHEAD_V6
                    } else {
                        vxlan::OVERHEAD_V4
                    };
                    vxlan::DevConfig {
                        name,
                        vni: b.vni,
                        port: (b.port > 0).then_some(b.port),
                        local,
                        underlay: ext.index,
                        learning: b.learning,
                        gbp: b.gbp,
                        mtu: base_mtu.saturating_sub(overhead),
                        network,
                        address: unset4,
                        own: unset4,
                        direct_routing: b.direct_routing,
                        tx_checksum_off: b.disable_tx_checksum_offload,
                    }
                };
                let v4cfg = match (cfg.enable_ipv4, cfg.network, ext.ext_addr) {
                    (true, Some(net), Some(local)) => Some(mk(
                        format!("flannel.{}", b.vni),
                        IpAddr::V4(local),
                        IpNetwork::V4(net),
                    )),
                    _ => None,
                };
                let v6cfg = match (cfg.enable_ipv6, cfg.ipv6_network, ext.ext_v6_addr) {
                    (true, Some(net), Some(local)) => Some(mk(
                        format!("flannel-v6.{}", b.vni),
                        IpAddr::V6(local),
                        IpNetwork::V6(net),
                    )),
                    (true, _, None) => {
                        bail!("IPv6 is enabled but the interface has no IPv6 address")
                    }
                    _ => None,
                };
                let (v4, v6) = blocking(move || {
                    let h = Handle::new()?;
                    let v4 = match v4cfg {
                        Some(c) => {
                            let l = vxlan::ensure_device(
                                &h,
                                &c,
                                mac.unwrap_or_else(alloc::random_mac),
                            )?;
                            Some((c, l))
                        }
                        None => None,
                    };
                    let v6 = match v6cfg {
                        Some(c) => {
                            let l = vxlan::ensure_device(
                                &h,
                                &c,
                                mac6.unwrap_or_else(alloc::random_mac),
                            )?;
                            Some((c, l))
                        }
                        None => None,
                    };
                    Ok((v4, v6))
                })
                .await?;
                Ok(Backend::Vxlan { vni: b.vni, v4, v6 })
            }
            BACKEND_HOST_GW => {
                if ext.ext_addr != ext.iface_addr {
                    bail!(
                        "your PublicIP differs from interface IP, meaning that probably you're on a NAT, \
                         which is not supported by host-gw backend"
                    );
                }
                let mut networks: Vec<IpNetwork> =
                    cfg.network.map(IpNetwork::V4).into_iter().collect();
                if cfg.enable_ipv6 {
                    networks.extend(cfg.ipv6_network.map(IpNetwork::V6));
                }
                Ok(Backend::HostGw {
                    gw: HostGw {
                        ext_index: ext.index,
                        ext_name: ext.name.clone(),
                        networks,
                        own: Vec::new(),
                    },
                    mtu: ext.mtu,
                })
            }
            other => bail!("unknown backend type: {other}"),
        }
    }

    /// Our LeaseAttrs (`newSubnetAttrs`).
    fn attrs(&self, ext: &ExtIface) -> LeaseAttrs {
        let (backend_type, data, data6) = match self {
            Backend::Vxlan { vni, v4, v6 } => (
                BACKEND_VXLAN,
                v4.as_ref().map(|(_, l)| {
                    VxlanData {
                        vni: *vni,
                        mac: l.mac,
                    }
                    .to_value()
                }),
                v6.as_ref().map(|(_, l)| {
                    VxlanData {
                        vni: *vni,
                        mac: l.mac,
                    }
                    .to_value()
                }),
            ),
            Backend::HostGw { .. } => (BACKEND_HOST_GW, None, None),
        };
        if let Backend::Vxlan {
            v4: Some((_, l)), ..
        } = self
        {
            info!("VXLAN device MAC {}", mac_to_string(&l.mac));
        }
        LeaseAttrs {
            public_ip: ext.ext_addr.unwrap_or(Ipv4Addr::UNSPECIFIED),
            public_ipv6: ext.ext_v6_addr.filter(|_| self.v6_enabled()),
            backend_type: backend_type.into(),
            backend_data: data,
            backend_v6_data: data6,
        }
    }

    fn v6_enabled(&self) -> bool {
        match self {
            Backend::Vxlan { v6, .. } => v6.is_some(),
            Backend::HostGw { gw, .. } => gw.networks.iter().any(|n| n.is_ipv6()),
        }
    }

    /// `RegisterNetwork`, second half: address the devices.
    async fn configure(&mut self, cfg: &NetConfig, lease: &Lease) -> Result<()> {
        match self {
            Backend::Vxlan { v4, v6, .. } => {
                if let Some((c, _)) = v4.as_mut() {
                    c.address = IpNetwork::V4(Ipv4Network::new(lease.subnet.network(), 32)?);
                    c.own = IpNetwork::V4(lease.subnet);
                }
                if let (Some((c, _)), Some(sn6)) = (v6.as_mut(), lease.ipv6_subnet) {
                    c.address = IpNetwork::V6(Ipv6Network::new(sn6.network(), 128)?);
                    c.own = IpNetwork::V6(sn6);
                }
                let todo: Vec<(vxlan::DevConfig, u32)> = v4
                    .iter()
                    .chain(v6.iter())
                    .map(|(c, l)| (c.clone(), l.index))
                    .collect();
                blocking(move || {
                    let h = Handle::new()?;
                    for (c, index) in &todo {
                        vxlan::configure(&h, *index, c)
                            .with_context(|| format!("failed to configure interface {}", c.name))?;
                    }
                    Ok(())
                })
                .await
            }
            Backend::HostGw { gw, .. } => {
                gw.own.push(IpNetwork::V4(lease.subnet));
                if cfg.enable_ipv6 {
                    gw.own.extend(lease.ipv6_subnet.map(IpNetwork::V6));
                }
                Ok(())
            }
        }
    }

    /// FLANNEL_MTU: the VXLAN device's MTU, or the interface's for host-gw.
    fn mtu(&self, ext: &ExtIface) -> u32 {
        match self {
            Backend::Vxlan { v4, v6, .. } => {
                v4.as_ref().or(v6.as_ref()).map_or(ext.mtu, |(_, l)| l.mtu)
            }
            Backend::HostGw { mtu, .. } => *mtu,
        }
    }

    fn into_datapath(self) -> Datapath {
        match self {
            Backend::Vxlan { v4, v6, .. } => Datapath::Vxlan {
                v4: v4.map(|(c, l)| VxlanDev::new(c, &l)),
                v6: v6.map(|(c, l)| VxlanDev::new(c, &l)),
            },
            Backend::HostGw { gw, .. } => Datapath::HostGw(gw),
        }
    }
}

/// Seconds until renewal: flannel renews `margin` before expiry. With a
/// test TTL shorter than the margin, halfway.
fn renew_in(remaining: i64, margin: Duration, full_ttl: i64) -> Duration {
    let m = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
    let secs = if m < full_ttl {
        remaining.saturating_sub(m)
    } else {
        remaining / 2
    };
    Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1))
}

/// `AcquireLease`, retried until it works (flannel exits on the first etcd
/// error here; a supervisor then restarts it).
async fn acquire(
    reg: &Registry,
    cfg: &NetConfig,
    attrs: &LeaseAttrs,
    prev: &PrevSubnets,
    ttl: i64,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Own>> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match try_acquire(reg, cfg, attrs, prev, ttl).await {
            Ok(own) => return Ok(Some(own)),
            Err(e) => error!(
                "Failed to acquire lease (retrying in {}s): {e:#}",
                backoff.as_secs()
            ),
        }
        if !sleep_or_stop(stop, backoff).await {
            return Ok(None);
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn try_acquire(
    reg: &Registry,
    cfg: &NetConfig,
    attrs: &LeaseAttrs,
    prev: &PrevSubnets,
    ttl: i64,
) -> Result<Own> {
    for _ in 0..RACE_RETRIES {
        let (leases, _) = reg.get_subnets().await?;
        let plan = alloc::plan(
            cfg,
            &leases,
            attrs.public_ip,
            prev,
            &mut alloc::random_index,
        )
        .map_err(|e| anyhow!(e))?;
        if let Some(old) = plan.delete {
            info!(
                "Found lease ({}) for current IP ({}) but not compatible with current config, deleting",
                old.subnet, attrs.public_ip
            );
            reg.delete_subnet(old.subnet, old.ipv6_subnet).await?;
        }
        match plan.choice {
            Choice::Reuse(l) => {
                info!(
                    "Found lease (ip: {} ipv6: {}) for current IP ({}), reusing",
                    l.subnet,
                    l.ipv6_subnet.map_or("-".into(), |s| s.to_string()),
                    attrs.public_ip
                );
                // A key without an etcd lease is a reservation: keep it so.
                let t = if l.etcd_lease == 0 { 0 } else { ttl };
                let (id, granted) = reg.update_subnet(l.subnet, l.ipv6_subnet, attrs, t).await?;
                if l.etcd_lease != 0 && l.etcd_lease != id {
                    reg.revoke(l.etcd_lease).await;
                }
                return Ok(own_from(l.subnet, l.ipv6_subnet, attrs, id, granted));
            }
            Choice::Create {
                subnet,
                ipv6_subnet,
                previous,
            } => {
                if previous {
                    info!("Found previously leased subnet ({subnet}), reusing");
                } else {
                    info!(
                        "Picking subnet in range {} ... {}",
                        cfg.subnet_min, cfg.subnet_max
                    );
                }
                match reg.create_subnet(subnet, ipv6_subnet, attrs, ttl).await? {
                    Created::Yes {
                        etcd_lease,
                        ttl: granted,
                    } => {
                        info!(
                            "Allocated lease (ip: {subnet} ipv6: {}) to current node ({})",
                            ipv6_subnet.map_or("-".into(), |s| s.to_string()),
                            attrs.public_ip
                        );
                        return Ok(own_from(subnet, ipv6_subnet, attrs, etcd_lease, granted));
                    }
                    Created::Taken => {
                        warn!("subnet {subnet} was taken meanwhile, trying again");
                        continue;
                    }
                }
            }
        }
    }
    bail!("Max retries reached trying to acquire a subnet")
}

fn own_from(
    subnet: Ipv4Network,
    ipv6_subnet: Option<Ipv6Network>,
    attrs: &LeaseAttrs,
    etcd_lease: i64,
    granted: i64,
) -> Own {
    Own {
        lease: Lease {
            subnet,
            ipv6_subnet,
            attrs: attrs.clone(),
            etcd_lease,
        },
        granted: (etcd_lease != 0).then_some(granted),
    }
}

/// `CompleteLease`: renew before expiry (retrying every minute, forever),
/// follow our key's changes, exit when it is deleted.
async fn lease_loop(
    reg: Registry,
    mut own: Own,
    mut own_rx: mpsc::UnboundedReceiver<OwnEvent>,
    margin: Duration,
    ttl: i64,
    mut stop: watch::Receiver<bool>,
) -> i32 {
    let mut renew_at = own
        .granted
        .map(|g| Instant::now() + renew_in(g, margin, ttl));
    if let Some(t) = renew_at {
        info!(
            "Waiting for {}s to renew lease",
            t.saturating_duration_since(Instant::now()).as_secs()
        );
    }
    let far = Duration::from_secs(365 * 24 * 3600);
    loop {
        let wait = renew_at.map_or(far, |t| t.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = stop.changed() => {
                info!("Exiting: the VXLAN device, routes and rules stay in place");
                return 0;
            }
            _ = tokio::time::sleep(wait) => {
                let l = &own.lease;
                match reg.update_subnet(l.subnet, l.ipv6_subnet, &l.attrs, ttl).await {
                    Ok((id, granted)) => {
                        let old = own.lease.etcd_lease;
                        own.lease.etcd_lease = id;
                        renew_at = Some(Instant::now() + renew_in(granted, margin, ttl));
                        info!("Lease renewed, new expiration in {granted}s (etcd lease {id:x})");
                        if old != id {
                            reg.revoke(old).await;
                        }
                    }
                    Err(e) => {
                        error!("Error renewing lease (trying again in 1 min): {e:#}");
                        renew_at = Some(Instant::now() + Duration::from_secs(60));
                    }
                }
            }
            ev = own_rx.recv() => match ev {
                Some(OwnEvent::Put { etcd_lease }) if etcd_lease != own.lease.etcd_lease => {
                    // Somebody re-put our key (another agent, or an admin).
                    own.lease.etcd_lease = etcd_lease;
                    if etcd_lease == 0 {
                        renew_at = None;
                        info!("Our lease is now a reservation (no etcd lease): no renewal needed");
                    } else {
                        let remaining = reg.time_to_live(etcd_lease).await.unwrap_or(ttl);
                        let d = renew_in(remaining, margin, ttl);
                        renew_at = Some(Instant::now() + d);
                        info!("Waiting for {}s to renew lease", d.as_secs());
                    }
                }
                Some(OwnEvent::Put { .. }) => {}
                Some(OwnEvent::Deleted) => {
                    error!("Lease has been revoked. Shutting down daemon.");
                    return 0;
                }
                None => {
                    // The watcher is gone; keep renewing regardless.
                    warn!("lease watch ended; renewal continues on its timer");
                    own_rx = mpsc::unbounded_channel().1;
                }
            }
        }
    }
}

/// Watch every lease: others go to the dataplane, ours to the renewal loop.
/// Reconnects with backoff (100 ms → 5 s) from the last seen revision and
/// re-lists when that revision was compacted.
async fn watch_leases(
    reg: Registry,
    own_subnet: Ipv4Network,
    dp: std::sync::mpsc::Sender<Cmd>,
    own_tx: mpsc::UnboundedSender<OwnEvent>,
) {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);
    let mut backoff = MIN;
    let mut since: i64 = 0;
    let prefix = reg.subnets_prefix();
    loop {
        if since == 0 {
            match reg.get_subnets().await {
                Ok((leases, rev)) => {
                    let (mine, peers): (Vec<Lease>, Vec<Lease>) =
                        leases.into_iter().partition(|l| l.subnet == own_subnet);
                    match mine.first() {
                        Some(l) => {
                            let _ = own_tx.send(OwnEvent::Put {
                                etcd_lease: l.etcd_lease,
                            });
                        }
                        None => {
                            let _ = own_tx.send(OwnEvent::Deleted);
                        }
                    }
                    if dp.send(Cmd::Snapshot(peers)).is_err() {
                        return;
                    }
                    since = rev + 1;
                    backoff = MIN;
                }
                Err(e) => {
                    warn!("failed to retrieve subnet leases: {e:#}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX);
                    continue;
                }
            }
        }
        let mut stream = match reg.watch_subnets(since).await {
            Ok(s) => s,
            Err(e) => {
                warn!("etcd watch for {prefix} failed ({e:#}), retrying from rev {since}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX);
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(resp)) => {
                    if resp.canceled {
                        if resp.compact_revision > 0 {
                            warn!(
                                "etcd watch for {prefix} fell behind compaction (rev {since} < {}), re-listing and resuming",
                                resp.compact_revision
                            );
                            since = 0;
                        } else {
                            warn!("etcd watch for {prefix} canceled: {}", resp.cancel_reason);
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX);
                        }
                        break;
                    }
                    backoff = MIN;
                    for ev in &resp.events {
                        let Some(kv) = &ev.kv else { continue };
                        since = since.max(kv.mod_revision + 1);
                        let key = String::from_utf8_lossy(&kv.key).into_owned();
                        let Some((sn, sn6)) = parse_subnet_key(&key) else {
                            warn!("{key:?}: not a subnet, skipping");
                            continue;
                        };
                        let own = sn == own_subnet;
                        let sent = match ev.r#type() {
                            EventType::Delete if own => own_tx.send(OwnEvent::Deleted).is_ok(),
                            EventType::Delete => dp
                                .send(Cmd::Remove(crate::lease::make_subnet_key(sn, sn6)))
                                .is_ok(),
                            EventType::Put if own => own_tx
                                .send(OwnEvent::Put {
                                    etcd_lease: kv.lease,
                                })
                                .is_ok(),
                            EventType::Put => {
                                match crate::registry::lease_from_kv(&key, &kv.value, kv.lease) {
                                    Ok(l) => dp.send(Cmd::Upsert(l)).is_ok(),
                                    Err(e) => {
                                        warn!("error parsing etcd event: {e}");
                                        true
                                    }
                                }
                            }
                        };
                        if !sent && !own {
                            return;
                        }
                    }
                }
                Ok(None) => {
                    warn!(
                        "etcd watch channel for {prefix} closed, reconnecting from rev {since}..."
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX);
                    break;
                }
                Err(e) => {
                    warn!("etcd watch channel for {prefix} closed ({e}), reconnecting from rev {since}...");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_schedule() {
        let hour = Duration::from_secs(3600);
        // Go: renew at expiration - margin.
        assert_eq!(renew_in(86400, hour, 86400), Duration::from_secs(82800));
        assert_eq!(renew_in(60, hour, 86400), Duration::from_secs(1));
        // A test TTL below the margin: halfway.
        assert_eq!(renew_in(10, hour, 10), Duration::from_secs(5));
    }

    #[test]
    fn retries_back_off() {
        let mut d = Duration::from_secs(1);
        let mut seen = vec![d.as_secs()];
        for _ in 0..5 {
            d = next_delay(d);
            seen.push(d.as_secs());
        }
        assert_eq!(seen, vec![1, 2, 4, 5, 5, 5]);
    }
}
