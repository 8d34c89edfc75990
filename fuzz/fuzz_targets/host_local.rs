//! host-local's outside input: the IPAM config (`load_config`, with CNI_ARGS' `IP`), GC's
//! attachment list, a resolv.conf, and the files in its data directory: a reservation file
//! (`<cid>\r\n<ifname>`, or a legacy bare id) and `last_reserved_ip.0`, read back through the
//! real store in a scratch directory (never the config's `dataDir`). Then a round-robin
//! allocation from the first range set starting at the fuzzed last reserved address, next
//! to a fuzzed reservation of the walk's first candidate.
//!
//! Input: `config\0IP arg\0reservation content\0last_reserved_ip.0\0cid\0ifname\0resolv.conf`.
//!
//! Invariants: the walk only yields addresses of the set, never a gateway; an allocation is
//! in the set, not the gateway, and not the address already reserved by someone else.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weft_fuzz::{field, scratch_dir, text};
use weft_ipam::{
    allocate, load_config, parse_resolv_text, parse_valid_attachments, reservation_key, Attachment,
    RangeIter, Store, LAST_IP_FILE_PREFIX, LOCK_FILE,
};

const NETWORK: &str = "fuzznet";

fn data_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch_dir("host-local"))
}

/// Empties the network directory (except the lock file) between runs.
fn clear(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name() != LOCK_FILE {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let config = field(data, 0);
    let env_ip = text(data, 1);
    let id = text(data, 4);
    let ifname = text(data, 5);
    let _ = parse_resolv_text(&text(data, 6));
    let _ = parse_valid_attachments(config);
    let conf = load_config(config, Some(env_ip.as_str()).filter(|s| !s.is_empty())).ok();

    let dir = data_dir();
    let net_dir = dir.join(NETWORK);
    clear(&net_dir);

    // The reservation sits on the walk's first candidate, so the allocation must skip it.
    let set = conf.as_ref().and_then(|c| c.ranges.first());
    let taken: IpAddr = set
        .and_then(|s| RangeIter::new(s, None).next())
        .map_or(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), |(ip, _)| ip);
    let _ = std::fs::create_dir_all(&net_dir);
    let _ = std::fs::write(net_dir.join(taken.to_string()), field(data, 2));
    let _ = std::fs::write(
        net_dir.join(format!("{LAST_IP_FILE_PREFIX}0")),
        field(data, 3),
    );

    let store = match Store::open(dir, NETWORK).and_then(Store::lock) {
        Ok(s) => s,
        Err(e) => panic!("scratch store: {e:?}"),
    };
    let last = store.last_reserved_ip(0);
    let _ = store.reservations();
    let held = store.get_by_id(&id, &ifname).unwrap_or_default();
    let _ = store.find_by_id(&id, &ifname);

    if let (Some(conf), Some(set)) = (&conf, set) {
        for (ip, range) in RangeIter::new(set, last).take(64) {
            assert!(range.contains(ip) && set.contains(ip), "{ip} not in {set}");
            assert_ne!(ip, range.gateway, "the walk yielded the gateway");
        }
        let wanted = conf
            .requested_ips
            .iter()
            .copied()
            .find(|ip| set.contains(*ip));
        if let Ok(a) = allocate(&store, set, 0, &id, &ifname, wanted) {
            let ip = a.address.ip();
            let range = set.range_for(ip).expect("allocation in the set");
            assert_ne!(ip, range.gateway, "allocated the gateway");
            let ours = std::fs::read(net_dir.join(taken.to_string()))
                .is_ok_and(|c| String::from_utf8_lossy(&c).trim() == reservation_key(&id, &ifname));
            assert!(ip != taken || ours, "allocated {ip}, which was reserved");
            assert!(held.is_empty() || !held.iter().any(|h| set.contains(*h)) || wanted.is_some());
        }
    }
    let valid = [Attachment {
        container_id: id,
        ifname,
    }];
    let _ = store.gc(&valid);
});
