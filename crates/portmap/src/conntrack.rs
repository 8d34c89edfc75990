//! Flushing stale UDP conntrack entries (plugins#123, #1190), over NETLINK_NETFILTER.
//!
//! A UDP "connection" to a host port keeps its conntrack entry (and so its DNAT to the old
//! pod's address) for as long as packets keep coming, so a client that keeps sending
//! black-holes after the pod is replaced. Go deletes, after ADD, every UDP entry whose original
//! destination port is a mapped host port (`netlink.ConntrackDeleteFilters`: dump the table,
//! delete the matches one by one). weft deletes the same entries, on ADD and on DEL, with one
//! filtered flush per port (`IPCTNL_MSG_CT_DELETE` + `CTA_FILTER`), which the kernel runs
//! itself in well under a millisecond; kernels that refuse it get Go's dump-and-delete.
//!
//! Messages: nlmsghdr + nfgenmsg {family, version 0, res_id 0} + attributes. For the dump
//! path, each matching entry's `CTA_TUPLE_ORIG` (and `CTA_ID`, `CTA_ZONE`) is copied unchanged
//! into its `IPCTNL_MSG_CT_DELETE`.

use std::io;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const NLA_TYPE_MASK: u16 = 0x3fff;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_FILTER: u16 = 25;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;
/// `CTA_FILTER_FLAG(CTA_PROTO_NUM) | CTA_FILTER_FLAG(CTA_PROTO_DST_PORT)`.
const FILTER_PROTO_NUM_DST_PORT: u32 = (1 << 3) | (1 << 5);
const NLA_F_NESTED: u16 = 0x8000;

const HDR: usize = 16;
const NFGEN: usize = 4;
const IPPROTO_UDP: u8 = 17;

/// Address family of the entries to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn af(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The attributes in `b`: (type without flags, whole attribute bytes, payload).
fn attrs(b: &[u8]) -> Vec<(u16, &[u8], &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 4 <= b.len() {
        let (Some(len), Some(kind)) = (u16_at(b, off), u16_at(b, off + 2)) else {
            break;
        };
        let len = len as usize;
        if len < 4 || off + len > b.len() {
            break;
        }
        let (Some(whole), Some(payload)) = (b.get(off..off + len), b.get(off + 4..off + len))
        else {
            break;
        };
        out.push((kind & NLA_TYPE_MASK, whole, payload));
        off += align4(len);
    }
    out
}

fn find<'a>(list: &[(u16, &'a [u8], &'a [u8])], kind: u16) -> Option<(&'a [u8], &'a [u8])> {
    list.iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, w, p)| (*w, *p))
}

/// One entry to delete: the raw attributes that identify it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Victim {
    attrs: Vec<u8>,
}

/// From one dumped conntrack message body (after nfgenmsg): the entry's identifying
/// attributes if it is UDP to one of `ports`.
fn match_entry(body: &[u8], ports: &[u16]) -> Option<Victim> {
    let top = attrs(body);
    let (orig_whole, orig) = find(&top, CTA_TUPLE_ORIG)?;
    let tuple = attrs(orig);
    let (_, proto) = find(&tuple, CTA_TUPLE_PROTO)?;
    let proto = attrs(proto);
    let num = *find(&proto, CTA_PROTO_NUM)?.1.first()?;
    let dport = find(&proto, CTA_PROTO_DST_PORT)?.1;
    let dport = u16::from_be_bytes(dport.get(..2)?.try_into().ok()?);
    if num != IPPROTO_UDP || !ports.contains(&dport) {
        return None;
    }
    let mut v = orig_whole.to_vec();
    v.resize(align4(v.len()), 0);
    for kind in [CTA_ID, CTA_ZONE] {
        if let Some((whole, _)) = find(&top, kind) {
            v.extend_from_slice(whole);
            v.resize(align4(v.len()), 0);
        }
    }
    Some(Victim { attrs: v })
}

fn message(kind: u16, flags: u16, seq: u32, family: u8, attrs: &[u8]) -> Vec<u8> {
    let len = HDR + NFGEN + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, 0, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

struct Conn {
    socket: Socket,
    buf: Vec<u8>,
}

impl Conn {
    fn open() -> io::Result<Conn> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Conn {
            socket,
            buf: vec![0; 64 * 1024],
        })
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        loop {
            match self.socket.send(msg, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&mut self) -> io::Result<usize> {
        let wanted = self.recv_flags(libc::MSG_PEEK | libc::MSG_TRUNC)?;
        if wanted > self.buf.len() {
            self.buf.resize(wanted, 0);
        }
        let got = self.recv_flags(0)?;
        Ok(got.min(self.buf.len()))
    }

    fn recv_flags(&mut self, flags: libc::c_int) -> io::Result<usize> {
        loop {
            let mut slice: &mut [u8] = &mut self.buf[..];
            match self.socket.recv(&mut slice, flags) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Reads answers to `seq`; calls `each` with every data message body (after nfgenmsg)
    /// until DONE (dump) or the ack. A negative errno in an error message is returned as Err.
    fn answers(&mut self, seq: u32, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        loop {
            let size = self.recv()?;
            let data = self.buf.get(..size).unwrap_or_default().to_vec();
            let mut off = 0;
            while off + HDR <= data.len() {
                let len = u32_at(&data, off).unwrap_or(0) as usize;
                let kind = u16_at(&data, off + 4).unwrap_or(0);
                let mseq = u32_at(&data, off + 8).unwrap_or(0);
                if len < HDR || off + len > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let msg = data.get(off..off + len).unwrap_or_default();
                off += align4(len);
                if mseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = u32_at(msg, HDR).unwrap_or(0) as i32;
                        if code == 0 {
                            return Ok(());
                        }
                        return Err(io::Error::from_raw_os_error(code.saturating_neg()));
                    }
                    k if k == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW => {
                        if let Some(body) = msg.get(HDR + NFGEN..) {
                            each(body);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(align4(4 + payload.len()));
    a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(payload);
    a.resize(align4(a.len()), 0);
    a
}

/// A filtered flush: `IPCTNL_MSG_CT_DELETE` with no full tuple but a `CTA_FILTER` saying
/// "protocol and original destination port must match". The kernel walks its table once and
/// deletes the matches itself (recent kernels; older ones refuse it). Much cheaper than a dump:
/// the dump walks the whole (global, often 256k-bucket) hash table and copies every entry of
/// the netns to user space, 10-50 ms even when nothing matches.
fn flush_filter_message(seq: u32, af: u8, port: u16) -> Vec<u8> {
    let proto = nla(
        CTA_TUPLE_PROTO | NLA_F_NESTED,
        &[
            nla(CTA_PROTO_NUM, &[IPPROTO_UDP]),
            nla(CTA_PROTO_DST_PORT, &port.to_be_bytes()),
        ]
        .concat(),
    );
    let tuple = nla(CTA_TUPLE_ORIG | NLA_F_NESTED, &proto);
    let filter = nla(
        CTA_FILTER | NLA_F_NESTED,
        &[
            nla(
                CTA_FILTER_ORIG_FLAGS,
                &FILTER_PROTO_NUM_DST_PORT.to_ne_bytes(),
            ),
            nla(CTA_FILTER_REPLY_FLAGS, &0u32.to_ne_bytes()),
        ]
        .concat(),
    );
    message(
        IPCTNL_MSG_CT_DELETE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        af,
        &[tuple, filter].concat(),
    )
}

/// Deletes the UDP conntrack entries of `family` whose original destination port is one of
/// `ports`. Entries that vanish meanwhile are not errors.
pub fn delete_udp_by_dport(family: Family, ports: &[u16]) -> io::Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let mut conn = Conn::open()?;
    let af = family.af();
    // WEFT_PORTMAP_CONNTRACK=dump forces the old-kernel path (tests exercise both).
    let mut supported = std::env::var_os("WEFT_PORTMAP_CONNTRACK").is_none_or(|v| v != "dump");
    for (i, port) in ports.iter().enumerate().filter(|_| supported) {
        let seq = 100 + i as u32;
        conn.send(&flush_filter_message(seq, af, *port))?;
        match conn.answers(seq, |_| {}) {
            Ok(()) => {}
            // Older kernels answer a DELETE with a partial tuple with EINVAL (it is parsed as
            // a full one) or EOPNOTSUPP (CTA_FILTER refused on flush).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {
                supported = false;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if supported {
        return Ok(());
    }
    dump_and_delete(&mut conn, af, ports).map(|_| ())
}

/// Go's way (older kernels): dump the table, delete the matches one by one.
fn dump_and_delete(conn: &mut Conn, af: u8, ports: &[u16]) -> io::Result<usize> {
    let dump = message(
        IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        1_000_000,
        af,
        &[],
    );
    conn.send(&dump)?;
    let mut victims = Vec::new();
    conn.answers(1_000_000, |body| {
        if let Some(v) = match_entry(body, ports) {
            victims.push(v);
        }
    })?;
    let mut deleted = 0;
    for (i, v) in victims.iter().enumerate() {
        let seq = 1_000_001 + i as u32;
        let msg = message(
            IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            af,
            &v.attrs,
        );
        conn.send(&msg)?;
        match conn.answers(seq, |_| {}) {
            Ok(()) => deleted += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        a.resize(align4(a.len()), 0);
        a
    }

    fn entry(proto: u8, dport: u16) -> Vec<u8> {
        let ip = attr(
            1 | 0x8000,
            &[attr(1, &[10, 0, 0, 1]), attr(2, &[10, 0, 0, 2])].concat(),
        );
        let p = attr(
            2 | 0x8000,
            &[
                attr(1, &[proto]),
                attr(2, &1234u16.to_be_bytes()),
                attr(3, &dport.to_be_bytes()),
            ]
            .concat(),
        );
        let orig = attr(1 | 0x8000, &[ip, p].concat());
        let status = attr(3, &8u32.to_be_bytes());
        let id = attr(12, &77u32.to_be_bytes());
        [orig, status, id].concat()
    }

    #[test]
    fn matches_udp_dport_only() {
        assert!(match_entry(&entry(17, 5300), &[5300]).is_some());
        assert!(match_entry(&entry(17, 5301), &[5300]).is_none());
        assert!(match_entry(&entry(6, 5300), &[5300]).is_none());
        assert!(match_entry(&[1, 2, 3], &[5300]).is_none());
        // The delete carries the original tuple and the id, not the status.
        let v = match_entry(&entry(17, 5300), &[5300]).unwrap();
        let kinds: Vec<u16> = attrs(&v.attrs).iter().map(|(k, _, _)| *k).collect();
        assert_eq!(kinds, vec![CTA_TUPLE_ORIG, CTA_ID]);
    }

    #[test]
    fn message_layout() {
        let m = message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 9, 2, &[]);
        assert_eq!(m.len(), 20);
        assert_eq!(u32_at(&m, 0), Some(20));
        assert_eq!(u16_at(&m, 4), Some(0x101));
        assert_eq!(u16_at(&m, 6), Some(0x301));
        assert_eq!(u32_at(&m, 8), Some(9));
        assert_eq!(m[16], 2);
    }
}
