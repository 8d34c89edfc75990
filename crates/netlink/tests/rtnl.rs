//! Root tests against the real kernel. Every test works in its own
//! throw-away netns (see `common::TestNs`) through `Handle::for_netns`, and
//! checks the result with `ip -j` / `bridge -j`.

// Test code: failing loudly is the point (helpers outside #[test] included).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{can_run, first, has_flag, wait_for, TestNs};
use ipnetwork::IpNetwork;
use weft_netlink::{
    mac_to_string, sysctl_get, sysctl_set, Family, Handle, LinkEvent, LinkMonitor, Netns, NlError,
    Route, VxlanSpec, RT_SCOPE_LINK, TX_CHECKSUM_IP_GENERIC,
};

const MAC_A: [u8; 6] = [0x0a, 0x58, 0x0a, 0xf4, 0x00, 0x05];
const MAC_B: [u8; 6] = [0x0a, 0x58, 0x0a, 0xf4, 0x00, 0x06];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

/// Two veth ends `a` and `b` in the same netns, both up.
fn veth_in(t: &TestNs, h: &Handle, a: &str, b: &str) -> (u32, u32) {
    let la = h.veth_create(a, b, &t.ns, None, None).unwrap();
    let lb = h.link_by_name(b).unwrap();
    h.link_set_up(la.index).unwrap();
    h.link_set_up(lb.index).unwrap();
    (la.index, lb.index)
}

#[test]
fn netns_open_maps_errors() {
    if !can_run() {
        return;
    }
    let e = Netns::open("/run/netns/weft-nl-does-not-exist").unwrap_err();
    assert!(matches!(e, NlError::NotFound(_)), "{e:?}");
    assert!(e.to_string().contains("weft-nl-does-not-exist"), "{e}");

    let e = Netns::open("/tmp").unwrap_err();
    assert!(matches!(e, NlError::NotNetns(_)), "{e:?}");
    assert!(
        e.to_string().starts_with("unknown FS magic on \"/tmp\""),
        "{e}"
    );

    let t = TestNs::new();
    let cur = Netns::current().unwrap();
    let by_pid = Netns::open(format!("/proc/{}/ns/net", std::process::id())).unwrap();
    assert!(cur.is_same(&by_pid).unwrap());
    assert!(cur.is_current().unwrap());
    assert!(!t.ns.is_same(&cur).unwrap());
    assert!(!t.ns.is_current().unwrap());

    // run() enters the netns on another thread and leaves ours alone.
    let inside =
        t.ns.run(|| Netns::current().unwrap().is_same(&t.ns).unwrap());
    assert!(inside.unwrap());
    assert!(Netns::current().unwrap().is_same(&cur).unwrap());
}

/// True if this kernel has CONFIG_BRIDGE_VLAN_FILTERING; creating a
/// vlan_filtering bridge answers EOPNOTSUPP otherwise (checked here too).
fn vlan_filtering_supported(h: &Handle, name: &str) -> bool {
    match h.bridge_create(name, None, true) {
        Ok(_) => true,
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {
            assert_eq!(
                e.to_string(),
                format!("add bridge {name}: Operation not supported")
            );
            eprintln!("skipping VLAN checks: kernel without CONFIG_BRIDGE_VLAN_FILTERING");
            false
        }
        Err(e) => panic!("create vlan_filtering bridge: {e:?}"),
    }
}

#[test]
fn bridge_create() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();

    let br = h.bridge_create("br-a", Some(1400), false).unwrap();
    assert!(br.is_kind("bridge"));
    assert_eq!(br.mtu, 1400);
    assert_eq!(br.bridge.as_ref().map(|b| b.vlan_filtering), Some(false));
    let j = t.link("br-a");
    assert_eq!(j["linkinfo"]["info_kind"], "bridge");
    assert_eq!(j["linkinfo"]["info_data"]["vlan_filtering"], 0);
    assert_eq!(j["mtu"], 1400);
    assert_eq!(j["ifindex"], br.index);
    assert_eq!(j["address"], mac_to_string(&br.mac));
    assert!(!br.up);

    let e = h.bridge_create("br-a", None, false).unwrap_err();
    assert!(e.is_exists(), "{e:?}");
    assert_eq!(e.to_string(), "add bridge br-a: File exists");
}

#[test]
fn bridge_vlan_filtering() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    if !vlan_filtering_supported(&h, "br-vf") {
        return;
    }
    assert_eq!(
        t.link("br-vf")["linkinfo"]["info_data"]["vlan_filtering"],
        1
    );
    let vf = h.link_by_name("br-vf").unwrap();
    assert_eq!(vf.bridge.map(|b| b.vlan_filtering), Some(true));

    let plain = h.bridge_create("br-plain", None, false).unwrap();
    h.bridge_set_vlan_filtering(plain.index, true).unwrap();
    assert_eq!(
        t.link("br-plain")["linkinfo"]["info_data"]["vlan_filtering"],
        1
    );
    let again = h.link_by_index(plain.index).unwrap();
    assert_eq!(again.bridge.map(|b| b.vlan_filtering), Some(true));
}

#[test]
fn veth_peer_lands_in_other_netns() {
    if !can_run() {
        return;
    }
    let host = TestNs::new();
    let pod = TestNs::new();
    let h = host.handle();

    let v = h
        .veth_create("vethweft0", "eth0", &pod.ns, Some(1410), Some(MAC_A))
        .unwrap();
    assert!(v.is_kind("veth"));
    assert_eq!(v.mtu, 1410);
    assert!(v.link_netnsid.is_some(), "{v:?}");

    let eth0 = pod.link("eth0");
    assert_eq!(eth0["address"], mac_to_string(&MAC_A));
    assert_eq!(eth0["mtu"], 1410);
    assert_eq!(eth0["linkinfo"]["info_kind"], "veth");
    assert_eq!(v.peer_index, eth0["ifindex"].as_u64().map(|i| i as u32));
    assert!(!host.ip_ok(&["link", "show", "dev", "eth0"]));
    assert_eq!(host.link("vethweft0")["mtu"], 1410);

    // The pod end seen from a handle inside the pod netns points back.
    let p = pod.handle();
    let inside = p.link_by_name("eth0").unwrap();
    assert_eq!(inside.mac, MAC_A);
    assert_eq!(inside.peer_index, Some(v.index));

    let e = h
        .veth_create("vethweft0", "eth1", &pod.ns, None, None)
        .unwrap_err();
    assert!(e.is_exists(), "{e:?}");
    assert_eq!(e.to_string(), "add veth vethweft0 (peer eth1): File exists");
    // The pod-side name is taken too: also Exists, and nothing left behind.
    let e = h
        .veth_create("vethweft1", "eth0", &pod.ns, None, None)
        .unwrap_err();
    assert!(e.is_exists(), "{e:?}");
    assert!(!host.ip_ok(&["link", "show", "dev", "vethweft1"]));
}

#[test]
fn link_attribute_setters() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let br = h.bridge_create("br0", None, false).unwrap();
    let (a, b) = veth_in(&t, &h, "va", "vb");

    h.link_set_master(a, br.index).unwrap();
    h.link_set_mtu(a, 1300).unwrap();
    h.link_set_mac(a, MAC_B).unwrap();
    h.link_set_promisc(br.index, true).unwrap();
    h.link_set_up(br.index).unwrap();

    let j = t.link("va");
    assert_eq!(j["master"], "br0");
    assert_eq!(j["mtu"], 1300);
    assert_eq!(j["address"], mac_to_string(&MAC_B));
    assert!(has_flag(&j, "UP"), "{j}");
    assert!(has_flag(&t.link("br0"), "PROMISC"));

    let l = h.link_by_index(a).unwrap();
    assert_eq!(l.master, Some(br.index));
    assert_eq!(l.mtu, 1300);
    assert_eq!(l.mac, MAC_B);
    assert!(l.up);
    assert!(!l.promisc, "a bridge port is not user-promisc");
    assert_eq!(l.peer_index, Some(b));
    assert_eq!(l.link_netnsid, None, "peer in the same netns");
    assert!(h.link_by_index(br.index).unwrap().promisc);
    assert!(
        wait_for(Duration::from_secs(3), || h
            .link_by_index(a)
            .unwrap()
            .oper_up),
        "veth with both ends up never became operationally up"
    );
    assert_eq!(h.link_by_index(a).unwrap().oper_state, "up");

    h.link_set_promisc(br.index, false).unwrap();
    assert!(!has_flag(&t.link("br0"), "PROMISC"));
    h.link_set_nomaster(a).unwrap();
    assert!(t.link("va").get("master").is_none());
    assert_eq!(h.link_by_index(a).unwrap().master, None);
    h.link_set_down(a).unwrap();
    assert!(!has_flag(&t.link("va"), "UP"));
    assert!(!h.link_by_index(a).unwrap().up);

    h.link_set_name(a, "va-renamed").unwrap();
    assert_eq!(h.link_by_name("va-renamed").unwrap().index, a);

    let names: Vec<String> = h.links().unwrap().into_iter().map(|l| l.name).collect();
    for n in ["lo", "br0", "va-renamed", "vb"] {
        assert!(names.iter().any(|x| x == n), "{n} missing in {names:?}");
    }
}

#[test]
fn link_del_and_not_found() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let br = h.bridge_create("br-del", None, false).unwrap();
    h.link_del(br.index).unwrap();
    assert!(!t.ip_ok(&["link", "show", "dev", "br-del"]));

    let e = h.link_del(br.index).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(h.find_link_by_name("br-del").unwrap(), None);
    let e = h.link_by_name("br-del").unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.to_string(), "lookup link br-del: No such device");
    assert!(h.link_by_index(999_999).unwrap_err().is_not_found());
    assert!(h.link_set_up(999_999).unwrap_err().is_not_found());
}

#[test]
fn link_moves_to_other_netns() {
    if !can_run() {
        return;
    }
    let a = TestNs::new();
    let b = TestNs::new();
    let h = a.handle();
    let (va, _) = veth_in(&a, &h, "v-move", "v-stay");
    h.link_set_netns(va, &b.ns).unwrap();
    assert!(!a.ip_ok(&["link", "show", "dev", "v-move"]));
    assert_eq!(b.link("v-move")["linkinfo"]["info_kind"], "veth");

    // Bridges are netns-local; the kernel's extended ack text is kept.
    let br = h.bridge_create("br-move", None, false).unwrap();
    let e = h.link_set_netns(br.index, &b.ns).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e:?}");
    assert!(e.to_string().contains("immutable"), "{e}");
}

#[test]
fn bridge_port_hairpin_and_isolated() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let br = h.bridge_create("br0", None, false).unwrap();
    let (a, _) = veth_in(&t, &h, "port0", "peer0");
    h.link_set_master(a, br.index).unwrap();

    let show = |t: &TestNs| first(t.bridge(&["-d", "link", "show", "dev", "port0"]));
    let j = show(&t);
    assert_eq!(j["hairpin"], false);
    assert_eq!(j["isolated"], false);

    h.bridge_port_set(a, true, true).unwrap();
    let j = show(&t);
    assert_eq!(j["hairpin"], true, "{j}");
    assert_eq!(j["isolated"], true, "{j}");
    let port = h.link_by_index(a).unwrap().bridge_port.unwrap();
    assert!(port.hairpin && port.isolated);

    h.bridge_port_set(a, false, true).unwrap();
    let j = show(&t);
    assert_eq!(j["hairpin"], false);
    assert_eq!(j["isolated"], true);
    let port = h.link_by_index(a).unwrap().bridge_port.unwrap();
    assert!(!port.hairpin && port.isolated);
}

#[test]
fn bridge_port_vlans() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let plain = h.bridge_create("br-plain", None, false).unwrap();
    let (p, _) = veth_in(&t, &h, "port1", "peer1");
    h.link_set_master(p, plain.index).unwrap();
    // The AF_BRIDGE dump works on any kernel.
    h.bridge_vlans(p).unwrap();

    if !vlan_filtering_supported(&h, "br0") {
        let e = h.bridge_vlan_add(p, 100, true, true).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e:?}");
        assert!(
            e.to_string().starts_with("add vlan 100 to bridge port "),
            "{e}"
        );
        return;
    }
    let br = h.link_by_name("br0").unwrap();
    let (a, _) = veth_in(&t, &h, "port0", "peer0");
    h.link_set_master(a, br.index).unwrap();

    // vlan_filtering bridges give new ports the default PVID 1.
    let vlans = h.bridge_vlans(a).unwrap();
    assert_eq!(vlans.len(), 1, "{vlans:?}");
    assert!(vlans[0].vid == 1 && vlans[0].pvid && vlans[0].untagged);

    h.bridge_vlan_del(a, 1).unwrap();
    h.bridge_vlan_add(a, 100, true, true).unwrap();
    h.bridge_vlan_add(a, 200, false, false).unwrap();

    let j = first(t.bridge(&["vlan", "show", "dev", "port0"]));
    let entries = j["vlans"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{j}");
    assert_eq!(entries[0]["vlan"], 100);
    let flags = entries[0]["flags"].as_array().unwrap();
    assert!(flags.iter().any(|f| f == "PVID") && flags.iter().any(|f| f == "Egress Untagged"));
    assert_eq!(entries[1]["vlan"], 200);
    assert!(entries[1].get("flags").is_none(), "{j}");

    let vlans = h.bridge_vlans(a).unwrap();
    let summary: Vec<(u16, bool, bool)> =
        vlans.iter().map(|v| (v.vid, v.pvid, v.untagged)).collect();
    assert_eq!(summary, vec![(100, true, true), (200, false, false)]);

    let e = h.bridge_vlan_del(a, 300).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(h.bridge_vlans(999_999).unwrap().is_empty());
}

#[test]
fn addresses_v4_and_v6() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let (a, _) = veth_in(&t, &h, "va", "vb");

    h.addr_add(a, net("10.1.2.3/24")).unwrap();
    let e = h.addr_add(a, net("10.1.2.3/24")).unwrap_err();
    assert!(e.is_exists(), "{e:?}");
    let j = first(t.ip(&["addr", "show", "dev", "va"]));
    let info: Vec<_> = j["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["family"] == "inet")
        .cloned()
        .collect();
    assert_eq!(info.len(), 1, "{j}");
    assert_eq!(info[0]["local"], "10.1.2.3");
    assert_eq!(info[0]["prefixlen"], 24);
    assert_eq!(info[0]["broadcast"], "10.1.2.255");

    h.addr_add(a, net("2001:db8::5/64")).unwrap();
    // Right after the add, DAD is still running: callers can see and wait.
    let v6 = h.addrs(Some(a), Family::V6).unwrap();
    let ours = v6.iter().find(|x| x.net == net("2001:db8::5/64")).unwrap();
    assert!(ours.tentative, "{ours:?}");
    assert!(wait_for(Duration::from_secs(5), || {
        h.addrs(Some(a), Family::V6)
            .unwrap()
            .iter()
            .any(|x| x.net == net("2001:db8::5/64") && !x.tentative && !x.dad_failed)
    }));
    // The link-local address shows up with link scope.
    assert!(v6.iter().any(|x| x.scope == RT_SCOPE_LINK));

    let v4 = h.addrs(Some(a), Family::V4).unwrap();
    assert_eq!(v4.len(), 1);
    assert_eq!(v4[0].net, net("10.1.2.3/24"));
    let all = h.addrs(None, Family::All).unwrap();
    assert!(all
        .iter()
        .any(|x| x.index == a && x.net == net("10.1.2.3/24")));
    assert!(all.iter().any(|x| x.index == a && x.net.is_ipv6()));

    h.addr_del(a, net("10.1.2.3/24")).unwrap();
    h.addr_del(a, net("2001:db8::5/64")).unwrap();
    assert!(h.addrs(Some(a), Family::V4).unwrap().is_empty());
    let e = h.addr_del(a, net("10.1.2.3/24")).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}

#[test]
fn routes_add_replace_del_get() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let (a, _) = veth_in(&t, &h, "va", "vb");
    h.addr_add(a, net("10.9.0.1/24")).unwrap();

    let mut r = Route::new(net("10.20.0.0/16"));
    r.gw = Some(ip("10.9.0.2"));
    r.oif = Some(a);
    h.route_add(&r).unwrap();
    // (iproute2 prints "proto boot" only with -d)
    let j = first(t.ip(&["-d", "route", "show", "10.20.0.0/16"]));
    assert_eq!(j["gateway"], "10.9.0.2");
    assert_eq!(j["dev"], "va");
    assert_eq!(j["protocol"], "boot");
    let e = h.route_add(&r).unwrap_err();
    assert!(e.is_exists(), "{e:?}");

    let listed = h.routes(Family::V4, None).unwrap();
    let got = listed.iter().find(|x| x.dst == r.dst).unwrap();
    assert_eq!((got.gw, got.oif, got.table), (r.gw, Some(a), Some(254)));
    // The connected route of 10.9.0.0/24 is there too, as kernel/link.
    let connected = listed.iter().find(|x| x.dst == net("10.9.0.0/24")).unwrap();
    assert_eq!(connected.scope, Some(RT_SCOPE_LINK));
    assert_eq!(connected.gw, None);

    // replace switches the gateway in place.
    r.gw = Some(ip("10.9.0.3"));
    h.route_replace(&r).unwrap();
    let routes = t.ip(&["route", "show", "10.20.0.0/16"]);
    assert_eq!(routes.as_array().unwrap().len(), 1);
    assert_eq!(routes[0]["gateway"], "10.9.0.3");

    // route get picks it.
    let g = h.route_get(ip("10.20.7.7")).unwrap();
    assert_eq!((g.gw, g.oif), (Some(ip("10.9.0.3")), Some(a)));
    assert_eq!(g.dst, net("10.20.7.7/32"));
    let g = h.route_get(ip("10.9.0.77")).unwrap();
    assert_eq!((g.gw, g.oif), (None, Some(a)));
    assert_eq!(g.src, Some(ip("10.9.0.1")));
    let e = h.route_get(ip("192.0.2.1")).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENETUNREACH), "{e:?}");

    // A default route has no RTA_DST; it reads back as 0.0.0.0/0.
    let mut d = Route::new(net("0.0.0.0/0"));
    d.gw = Some(ip("10.9.0.254"));
    h.route_add(&d).unwrap();
    assert_eq!(
        first(t.ip(&["route", "show", "default"]))["gateway"],
        "10.9.0.254"
    );
    let listed = h.routes(Family::V4, None).unwrap();
    assert!(listed
        .iter()
        .any(|x| x.dst == net("0.0.0.0/0") && x.gw == d.gw));

    // Table, metric, mtu, advmss, scope.
    let mut m = Route::new(net("10.40.0.0/16"));
    m.gw = Some(ip("10.9.0.2"));
    m.table = Some(100);
    m.priority = Some(50);
    m.mtu = Some(1400);
    m.advmss = Some(1360);
    h.route_add(&m).unwrap();
    let j = first(t.ip(&["-d", "route", "show", "table", "100"]));
    assert_eq!(j["dst"], "10.40.0.0/16");
    assert_eq!(j["metric"], 50);
    let metrics = &j["metrics"][0];
    assert_eq!(metrics["mtu"], 1400, "{j}");
    assert_eq!(metrics["advmss"], 1360, "{j}");
    assert!(h
        .routes(Family::V4, None)
        .unwrap()
        .iter()
        .all(|x| x.dst != m.dst));
    let t100 = h.routes(Family::V4, Some(100)).unwrap();
    assert_eq!(t100.len(), 1);
    assert_eq!(
        (t100[0].priority, t100[0].mtu, t100[0].advmss),
        (Some(50), Some(1400), Some(1360))
    );
    let all_tables = h.routes(Family::All, Some(0)).unwrap();
    assert!(all_tables.iter().any(|x| x.dst == m.dst));
    assert!(
        all_tables.iter().any(|x| x.table == Some(255)),
        "local table missing"
    );

    // Table ids above 255 travel in RTA_TABLE.
    let mut big = Route::new(net("10.41.0.0/16"));
    big.oif = Some(a);
    big.scope = Some(RT_SCOPE_LINK);
    big.table = Some(1000);
    h.route_add(&big).unwrap();
    let j = first(t.ip(&["route", "show", "table", "1000"]));
    assert_eq!(j["dst"], "10.41.0.0/16");
    assert_eq!(j["scope"], "link");
    assert_eq!(h.routes(Family::V4, Some(1000)).unwrap().len(), 1);

    // Delete: unset fields are wildcards; a second delete is NotFound.
    h.route_del(&Route::new(net("10.20.0.0/16"))).unwrap();
    assert!(t
        .ip(&["route", "show", "10.20.0.0/16"])
        .as_array()
        .unwrap()
        .is_empty());
    let e = h.route_del(&Route::new(net("10.20.0.0/16"))).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    h.route_del(&m).unwrap();
    h.route_del(&big).unwrap();
    assert!(h.routes(Family::V4, Some(100)).unwrap().is_empty());
}

#[test]
fn routes_onlink_and_ecmp() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let (a, b) = veth_in(&t, &h, "va", "vb");
    h.addr_add(a, net("10.9.0.1/24")).unwrap();

    // Without onlink, a gateway outside every connected prefix is refused.
    let mut r = Route::new(net("10.244.1.0/24"));
    r.gw = Some(ip("10.244.1.0"));
    r.oif = Some(a);
    let e = h.route_add(&r).unwrap_err();
    assert!(matches!(e, NlError::Kernel { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("add route 10.244.1.0/24 via 10.244.1.0 dev"),
        "{e}"
    );
    // flanneld's route: "<subnet> via <remote .0> dev flannel.1 onlink".
    r.onlink = true;
    h.route_replace(&r).unwrap();
    let j = first(t.ip(&["route", "show", "10.244.1.0/24"]));
    assert_eq!(j["gateway"], "10.244.1.0");
    assert!(has_flag(&j, "onlink"), "{j}");
    let listed = h.routes(Family::V4, None).unwrap();
    assert!(listed.iter().find(|x| x.dst == r.dst).unwrap().onlink);

    // IPv6 ECMP, as Go's RouteAddEcmp does it: the second gateway joins.
    h.addr_add(a, net("2001:db8:9::1/64")).unwrap();
    h.addr_add(b, net("2001:db8:8::1/64")).unwrap();
    let mut e1 = Route::new(net("2001:db8:1::/64"));
    e1.gw = Some(ip("2001:db8:9::2"));
    e1.oif = Some(a);
    let mut e2 = Route::new(net("2001:db8:1::/64"));
    e2.gw = Some(ip("2001:db8:8::2"));
    e2.oif = Some(b);
    h.route_add_ecmp(&e1).unwrap();
    h.route_add_ecmp(&e2).unwrap();
    let j = first(t.ip(&["-6", "route", "show", "2001:db8:1::/64"]));
    let hops = j["nexthops"]
        .as_array()
        .unwrap_or_else(|| panic!("no nexthops: {j}"));
    assert_eq!(hops.len(), 2, "{j}");
    let listed = h.routes(Family::V6, None).unwrap();
    let ecmp = listed.iter().find(|x| x.dst == e1.dst).unwrap();
    let gws = ecmp.gateways();
    assert_eq!(gws.len(), 2, "{ecmp:?}");
    assert!(gws.contains(&ip("2001:db8:9::2")) && gws.contains(&ip("2001:db8:8::2")));
    // The same next hop again is a duplicate.
    assert!(h.route_add_ecmp(&e1).unwrap_err().is_exists());

    // IPv4 append: a second route with the same key but another gateway.
    h.addr_add(b, net("10.8.0.1/24")).unwrap();
    let mut p1 = Route::new(net("10.50.0.0/16"));
    p1.gw = Some(ip("10.9.0.2"));
    let mut p2 = Route::new(net("10.50.0.0/16"));
    p2.gw = Some(ip("10.8.0.2"));
    h.route_add(&p1).unwrap();
    assert!(h.route_add(&p2).unwrap_err().is_exists());
    h.route_append(&p2).unwrap();
    let both = t.ip(&["route", "show", "10.50.0.0/16"]);
    assert_eq!(both.as_array().unwrap().len(), 2, "{both}");
}

#[test]
fn vxlan_with_flannel_attributes() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let (ext, _) = veth_in(&t, &h, "ext0", "ext1");
    h.addr_add(ext, net("192.168.50.10/24")).unwrap();

    let spec = VxlanSpec {
        name: "flannel.1".into(),
        vni: 1,
        port: None,
        local: Some(ip("192.168.50.10")),
        dev: Some(ext),
        learning: false,
        gbp: false,
        mtu: Some(1450),
        mac: Some(MAC_A),
    };
    let v = h.vxlan_create(&spec).unwrap();
    let j = t.link("flannel.1");
    assert_eq!(j["mtu"], 1450);
    assert_eq!(j["address"], mac_to_string(&MAC_A));
    let d = &j["linkinfo"]["info_data"];
    assert_eq!(j["linkinfo"]["info_kind"], "vxlan");
    assert_eq!(d["id"], 1);
    assert_eq!(d["local"], "192.168.50.10");
    assert_eq!(d["link"], "ext0");
    assert_eq!(d["port"], 8472);
    assert_eq!(d["learning"], false);
    assert_eq!(d["ttl"], 0, "{d}");
    // iproute2 prints l2miss/l3miss/gbp only when set.
    assert!(
        d.get("l2miss").is_none() && d.get("l3miss").is_none(),
        "{d}"
    );
    assert_eq!(d["udp_zero_csum6_tx"], false);
    assert_eq!(d["udp_csum"], true, "kernel default udpcsum kept: {d}");
    assert!(d.get("gbp").is_none(), "{d}");

    let info = v.vxlan.clone().unwrap();
    assert_eq!(info.vni, 1);
    assert_eq!(info.local, Some(ip("192.168.50.10")));
    assert_eq!(info.port, 8472);
    assert!(!info.learning && !info.gbp);
    assert_eq!(info.link, Some(ext));

    let e = h.vxlan_create(&spec).unwrap_err();
    assert!(e.is_exists(), "{e:?}");

    let gbp = VxlanSpec {
        name: "flannel.2".into(),
        vni: 2,
        port: Some(4789),
        gbp: true,
        learning: true,
        mac: None,
        mtu: None,
        ..spec.clone()
    };
    let v2 = h.vxlan_create(&gbp).unwrap();
    let d = t.link("flannel.2")["linkinfo"]["info_data"].clone();
    assert_eq!(d["port"], 4789);
    assert_eq!(d["gbp"], true, "{d}");
    assert_eq!(d["learning"], true);
    let info = v2.vxlan.unwrap();
    assert!(info.gbp && info.learning);
    assert_eq!(info.port, 4789);
}

#[test]
fn neigh_and_fdb_on_vxlan() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let (ext, _) = veth_in(&t, &h, "ext0", "ext1");
    h.addr_add(ext, net("192.168.50.10/24")).unwrap();
    let v = h
        .vxlan_create(&VxlanSpec {
            name: "flannel.1".into(),
            vni: 1,
            port: None,
            local: Some(ip("192.168.50.10")),
            dev: Some(ext),
            learning: false,
            gbp: false,
            mtu: Some(1450),
            mac: None,
        })
        .unwrap();
    h.link_set_up(v.index).unwrap();

    // ARP: <remote .0> lladdr <vtep mac> PERMANENT
    h.neigh_replace(v.index, ip("10.244.1.0"), MAC_B, true)
        .unwrap();
    let j = first(t.ip(&["neigh", "show", "dev", "flannel.1"]));
    assert_eq!(j["dst"], "10.244.1.0");
    assert_eq!(j["lladdr"], mac_to_string(&MAC_B));
    assert_eq!(j["state"][0], "PERMANENT", "{j}");
    // replace is idempotent
    h.neigh_replace(v.index, ip("10.244.1.0"), MAC_B, true)
        .unwrap();
    let listed = h.neighs(Some(v.index), Family::V4).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].mac, Some(MAC_B));
    assert!(listed[0].permanent());

    // FDB: <vtep mac> dst <public ip> self permanent
    h.fdb_replace(v.index, MAC_B, ip("192.168.50.20")).unwrap();
    let entries = t.bridge(&["fdb", "show", "dev", "flannel.1"]);
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == mac_to_string(&MAC_B))
        .cloned()
        .unwrap_or_else(|| panic!("fdb entry missing: {entries}"));
    assert_eq!(entry["dst"], "192.168.50.20");
    assert_eq!(entry["state"], "permanent", "{entry}");
    assert!(has_flag(&entry, "self"), "{entry}");
    // replace moves the MAC to another VTEP instead of adding a second one.
    h.fdb_replace(v.index, MAC_B, ip("192.168.50.21")).unwrap();
    let fdbs = h.fdbs(Some(v.index)).unwrap();
    let ours: Vec<_> = fdbs.iter().filter(|f| f.mac == MAC_B).collect();
    assert_eq!(ours.len(), 1, "{fdbs:?}");
    assert_eq!(ours[0].dst, Some(ip("192.168.50.21")));
    assert!(ours[0].permanent());

    h.fdb_del(v.index, MAC_B, Some(ip("192.168.50.21")))
        .unwrap();
    assert!(h
        .fdbs(Some(v.index))
        .unwrap()
        .iter()
        .all(|f| f.mac != MAC_B));
    assert!(h.fdb_del(v.index, MAC_B, None).unwrap_err().is_not_found());

    h.neigh_del(v.index, ip("10.244.1.0")).unwrap();
    assert!(t
        .ip(&["neigh", "show", "dev", "flannel.1"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(h
        .neigh_del(v.index, ip("10.244.1.0"))
        .unwrap_err()
        .is_not_found());

    // Non-permanent IPv6 neighbour.
    h.neigh_replace(ext, ip("2001:db8::7"), MAC_A, false)
        .unwrap();
    let n = h.neighs(Some(ext), Family::V6).unwrap();
    assert!(
        n.iter()
            .any(|x| x.ip == ip("2001:db8::7") && !x.permanent()),
        "{n:?}"
    );
}

#[test]
fn sysctl_inside_netns() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    // A key that only exists inside the test netns: if we were not in it,
    // the write would fail rather than touch the host.
    h.bridge_create("br-sysctl", None, false).unwrap();
    t.ns.run(|| sysctl_set("net/ipv6/conf/br-sysctl/accept_ra", "0"))
        .unwrap()
        .unwrap();
    let val =
        t.ns.run(|| sysctl_get("net.ipv6.conf.br-sysctl.accept_ra"))
            .unwrap()
            .unwrap();
    assert_eq!(val, "0");
    let out = common::run(
        "ip",
        &[
            "netns",
            "exec",
            &t.name,
            "cat",
            "/proc/sys/net/ipv6/conf/br-sysctl/accept_ra",
        ],
    );
    assert_eq!(out.trim(), "0");
    // Not visible from our own netns.
    assert!(sysctl_get("net/ipv6/conf/br-sysctl/accept_ra").is_err());
    // A fresh netns does not forward.
    let fwd =
        t.ns.run(|| sysctl_get("net/ipv4/ip_forward"))
            .unwrap()
            .unwrap();
    assert_eq!(fwd, "0");
}

#[test]
fn link_monitor_sees_create_and_delete() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let mut mon = LinkMonitor::for_netns(&t.ns).unwrap();
    mon.set_timeout(Some(Duration::from_millis(200))).unwrap();
    // An idle netns: the timeout returns an empty batch.
    assert!(mon.recv().unwrap().is_empty());
    let h = t.handle();
    let br = h.bridge_create("br-watch", None, false).unwrap();
    h.link_del(br.index).unwrap();

    let mut seen = Vec::new();
    let got_del = wait_for(Duration::from_secs(5), || {
        seen.extend(mon.recv().unwrap());
        seen.iter()
            .any(|e| matches!(e, LinkEvent::Del(l) if l.name == "br-watch"))
    });
    assert!(got_del, "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, LinkEvent::New(l) if l.name == "br-watch" && l.is_kind("bridge"))),
        "{seen:?}"
    );
}

/// Timing of the bridge plugin's hot path: veth_create + set master + up,
/// against `ip link add` doing the same. Run with
/// `cargo test -p weft-netlink --release -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_veth_create_master_up() {
    if !can_run() {
        return;
    }
    let host = TestNs::new();
    let pod = TestNs::new();
    let h = host.handle();
    let br = h.bridge_create("br0", None, false).unwrap();
    let rounds = 200;

    let (mut create, mut master, mut up) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let start = std::time::Instant::now();
    for i in 0..rounds {
        let t0 = std::time::Instant::now();
        let v = h
            .veth_create(&format!("vb{i}"), &format!("eth{i}"), &pod.ns, None, None)
            .unwrap();
        let t1 = std::time::Instant::now();
        h.link_set_master(v.index, br.index).unwrap();
        let t2 = std::time::Instant::now();
        h.link_set_up(v.index).unwrap();
        create += t1 - t0;
        master += t2 - t1;
        up += t2.elapsed();
    }
    let ours = start.elapsed() / rounds;

    let start = std::time::Instant::now();
    for i in 0..rounds {
        let host_if = format!("vi{i}");
        let pod_if = format!("ei{i}");
        let pod_path = pod.path();
        common::run(
            "ip",
            &[
                "-n", &host.name, "link", "add", &host_if, "type", "veth", "peer", "name", &pod_if,
                "netns", &pod_path,
            ],
        );
        common::run(
            "ip",
            &[
                "-n", &host.name, "link", "set", &host_if, "master", "br0", "up",
            ],
        );
    }
    let iproute = start.elapsed() / rounds;
    eprintln!(
        "veth_create+master+up: {:?} per pod (create incl. lookup {:?}, master {:?}, up {:?}); \
         ip link add + ip link set master up: {:?}",
        ours,
        create / rounds,
        master / rounds,
        up / rounds,
        iproute
    );
}

/// `ethtool -k DEV` in the test netns: Some(on) for `name`, None when the
/// ethtool binary is not installed.
fn ethtool_k(t: &TestNs, dev: &str, name: &str) -> Option<bool> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &t.name, "ethtool", "-k", dev])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("ethtool -k {dev} lists no {name}: {text}"));
    Some(line.contains(": on"))
}

#[test]
fn ethtool_tx_checksum_off_on_vxlan() {
    if !can_run() {
        return;
    }
    let t = TestNs::new();
    let h = t.handle();
    let (ext, _) = veth_in(&t, &h, "ext0", "ext1");
    h.addr_add(ext, net("192.168.51.10/24")).unwrap();
    let spec = VxlanSpec {
        name: "flannel.1".into(),
        vni: 1,
        port: None,
        local: Some(ip("192.168.51.10")),
        dev: Some(ext),
        learning: false,
        gbp: false,
        mtu: Some(1450),
        mac: Some(MAC_A),
    };
    let v = h.vxlan_create(&spec).unwrap();
    let mut et = weft_netlink::Ethtool::for_netns(&t.ns).unwrap();
    // The kernel turns checksum offload on for a new vxlan device.
    assert!(et.feature_active(v.index, TX_CHECKSUM_IP_GENERIC).unwrap());
    if let Some(on) = ethtool_k(&t, "flannel.1", TX_CHECKSUM_IP_GENERIC) {
        assert!(on, "ethtool -k before");
    }
    et.set_features(v.index, &[(TX_CHECKSUM_IP_GENERIC, false)])
        .unwrap();
    assert!(!et.feature_active(v.index, TX_CHECKSUM_IP_GENERIC).unwrap());
    if let Some(on) = ethtool_k(&t, "flannel.1", TX_CHECKSUM_IP_GENERIC) {
        assert!(!on, "ethtool -k after: still on");
    }
    // Other features are left alone.
    let features = et.features(v.index).unwrap();
    assert!(
        features.iter().any(|(n, _)| n == "tx-scatter-gather"),
        "{features:?}"
    );
    // Idempotent, and back on.
    et.set_features(v.index, &[(TX_CHECKSUM_IP_GENERIC, false)])
        .unwrap();
    et.set_features(v.index, &[(TX_CHECKSUM_IP_GENERIC, true)])
        .unwrap();
    assert!(et.feature_active(v.index, TX_CHECKSUM_IP_GENERIC).unwrap());
    // A missing device is NotFound.
    let e = et
        .set_features(9999, &[(TX_CHECKSUM_IP_GENERIC, false)])
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}
