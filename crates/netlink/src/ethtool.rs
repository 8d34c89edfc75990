//! The kernel's ethtool interface over generic netlink (`ethtool_netlink.h`,
//! Linux 5.6+): read a device's active features and change the wanted ones,
//! by their kernel names (`tx-checksum-ip-generic`, ...), as `ethtool -k` /
//! `ethtool -K` do, without running the `ethtool` binary.
//!
//! The messages are built by hand: a family lookup through `nlctrl`, then
//! `ETHTOOL_MSG_FEATURES_GET` / `ETHTOOL_MSG_FEATURES_SET` with non-compact
//! (named) bitsets.

use std::io;

use netlink_sys::{protocols::NETLINK_GENERIC, Socket};

use crate::error::{errno_desc, NlError, Result};
use crate::handle::{align4, open_socket, parse_header, recv_datagram};
use crate::netns::Netns;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

const ETHTOOL_GENL_NAME: &str = "ethtool";
const ETHTOOL_GENL_VERSION: u8 = 1;
const ETHTOOL_MSG_FEATURES_GET: u8 = 11;
const ETHTOOL_MSG_FEATURES_SET: u8 = 12;
const ETHTOOL_A_HEADER_DEV_INDEX: u16 = 1;
const ETHTOOL_A_HEADER_FLAGS: u16 = 3;
const ETHTOOL_FLAG_OMIT_REPLY: u32 = 1 << 1;
const ETHTOOL_A_FEATURES_HEADER: u16 = 1;
const ETHTOOL_A_FEATURES_WANTED: u16 = 3;
const ETHTOOL_A_FEATURES_ACTIVE: u16 = 4;
const ETHTOOL_A_BITSET_BITS: u16 = 3;
const ETHTOOL_A_BITSET_BITS_BIT: u16 = 1;
const ETHTOOL_A_BITSET_BIT_NAME: u16 = 2;
const ETHTOOL_A_BITSET_BIT_VALUE: u16 = 3;

/// The checksum offload flannel#2152 turns off on `flannel.1`
/// (`ethtool -K flannel.1 tx-checksum-ip-generic off`).
pub const TX_CHECKSUM_IP_GENERIC: &str = "tx-checksum-ip-generic";

/// A generic netlink socket talking to the `ethtool` family of one netns.
pub struct Ethtool {
    socket: Socket,
    family: u16,
    seq: u32,
}

impl std::fmt::Debug for Ethtool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ethtool")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// netlink attribute writer.
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align4(self.0.len()), 0);
        self
    }
    fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    fn string(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v)
    }
    fn flag(&mut self, kind: u16) -> &mut Self {
        self.put(kind, &[])
    }
    fn nest(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
}

/// (type without flags, payload) of each attribute in `b`.
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[4..len]));
        b = b.get(align4(len).min(b.len())..).unwrap_or_default();
    }
    out
}

/// One generic netlink request: nlmsghdr + genlmsghdr + attributes.
fn genl_message(family: u16, flags: u16, seq: u32, cmd: u8, version: u8, body: &Attrs) -> Vec<u8> {
    let len = 16 + 4 + body.0.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, version, 0, 0]);
    m.extend_from_slice(&body.0);
    m
}

/// `ETHTOOL_A_*_HEADER` naming the device by index.
fn dev_header(ifindex: u32, flags: u32) -> Attrs {
    let mut h = Attrs::default();
    h.u32(ETHTOOL_A_HEADER_DEV_INDEX, ifindex);
    if flags != 0 {
        h.u32(ETHTOOL_A_HEADER_FLAGS, flags);
    }
    h
}

/// The attributes of `ETHTOOL_MSG_FEATURES_SET`: a non-compact WANTED bitset
/// that lists each named feature (so each is in the mask) with
/// `ETHTOOL_A_BITSET_BIT_VALUE` present for on, absent for off.
pub(crate) fn features_set_attrs(ifindex: u32, features: &[(&str, bool)]) -> Vec<u8> {
    let mut bits = Attrs::default();
    for (name, on) in features {
        let mut bit = Attrs::default();
        bit.string(ETHTOOL_A_BITSET_BIT_NAME, name);
        if *on {
            bit.flag(ETHTOOL_A_BITSET_BIT_VALUE);
        }
        bits.nest(ETHTOOL_A_BITSET_BITS_BIT, &bit);
    }
    let mut wanted = Attrs::default();
    wanted.nest(ETHTOOL_A_BITSET_BITS, &bits);
    let mut body = Attrs::default();
    body.nest(
        ETHTOOL_A_FEATURES_HEADER,
        &dev_header(ifindex, ETHTOOL_FLAG_OMIT_REPLY),
    );
    body.nest(ETHTOOL_A_FEATURES_WANTED, &wanted);
    body.0
}

/// The names of the features listed in a non-compact bitset with their
/// values. A bit without `ETHTOOL_A_BITSET_BIT_VALUE` is off.
fn bitset_names(bitset: &[u8]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (k, bits) in attrs(bitset) {
        if k != ETHTOOL_A_BITSET_BITS {
            continue;
        }
        for (k, bit) in attrs(bits) {
            if k != ETHTOOL_A_BITSET_BITS_BIT {
                continue;
            }
            let mut name = None;
            let mut value = false;
            for (k, v) in attrs(bit) {
                match k {
                    ETHTOOL_A_BITSET_BIT_NAME => {
                        let s = v.split(|b| *b == 0).next().unwrap_or_default();
                        name = Some(String::from_utf8_lossy(s).into_owned());
                    }
                    ETHTOOL_A_BITSET_BIT_VALUE => value = true,
                    _ => {}
                }
            }
            if let Some(n) = name {
                out.push((n, value));
            }
        }
    }
    out
}

impl Ethtool {
    /// A socket on the calling thread's netns, with the family resolved.
    /// Fails with [`NlError::NotFound`] on a kernel without the ethtool
    /// netlink interface (before 5.6).
    pub fn new() -> Result<Ethtool> {
        let socket = open_socket(NETLINK_GENERIC, "open generic netlink socket")?;
        let mut e = Ethtool {
            socket,
            family: 0,
            seq: 0,
        };
        let mut body = Attrs::default();
        body.string(CTRL_ATTR_FAMILY_NAME, ETHTOOL_GENL_NAME);
        let answers = e
            .request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, &body)
            .map_err(|err| match err {
                NlError::Kernel { errno, .. } if errno == libc::ENOENT => NlError::NotFound(
                    "generic netlink family \"ethtool\" not found (kernel older than 5.6?)".into(),
                ),
                other => other,
            })?;
        e.family = answers
            .iter()
            .flat_map(|a| attrs(a))
            .find(|(k, v)| *k == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
            .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
            .ok_or_else(|| NlError::Io(io::Error::other("nlctrl sent no ethtool family id")))?;
        Ok(e)
    }

    /// A socket on `ns`.
    pub fn for_netns(ns: &Netns) -> Result<Ethtool> {
        ns.run(Ethtool::new)?
    }

    /// Send one request and collect the attribute payloads of the answers
    /// (after the genlmsghdr) until the ack.
    fn request(&mut self, family: u16, cmd: u8, version: u8, body: &Attrs) -> Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let msg = genl_message(family, NLM_F_ACK, self.seq, cmd, version, body);
        let op = if family == GENL_ID_CTRL {
            "resolve generic netlink family ethtool".to_string()
        } else {
            format!("ethtool netlink command {cmd}")
        };
        loop {
            match self.socket.send(&msg, 0) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NlError::io(&op, e)),
            }
        }
        let mut buf = vec![0u8; 16 * 1024];
        let mut out = Vec::new();
        loop {
            let size = recv_datagram(&self.socket, &mut buf).map_err(|e| NlError::io(&op, e))?;
            let mut offset = 0;
            while offset < size {
                let rest = buf.get(offset..size).unwrap_or_default();
                let (len, _flags, seq) = parse_header(rest)
                    .map_err(|_| NlError::Io(io::Error::other(format!("{op}: bad answer"))))?;
                let frame = rest.get(..len).unwrap_or_default();
                offset += align4(len);
                if seq != self.seq {
                    continue;
                }
                let kind = u16::from_ne_bytes([frame[4], frame[5]]);
                match kind {
                    NLMSG_ERROR => {
                        let code = frame
                            .get(16..20)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(-libc::EIO);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(NlError::Kernel {
                            op,
                            errno: code.saturating_neg(),
                        });
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push(frame.get(20..).unwrap_or_default().to_vec()),
                }
            }
        }
    }

    /// The active features of device `ifindex`, by name (`ethtool -k`).
    pub fn features(&mut self, ifindex: u32) -> Result<Vec<(String, bool)>> {
        let mut body = Attrs::default();
        body.nest(ETHTOOL_A_FEATURES_HEADER, &dev_header(ifindex, 0));
        let family = self.family;
        let answers = self
            .request(
                family,
                ETHTOOL_MSG_FEATURES_GET,
                ETHTOOL_GENL_VERSION,
                &body,
            )
            .map_err(|e| with_op(e, format!("get features of interface {ifindex}")))?;
        let mut out = Vec::new();
        for a in &answers {
            for (k, v) in attrs(a) {
                if k == ETHTOOL_A_FEATURES_ACTIVE {
                    // The active set is sent as a list: a named bit is on.
                    out.extend(bitset_names(v).into_iter().map(|(n, _)| (n, true)));
                }
            }
        }
        Ok(out)
    }

    /// Whether feature `name` is active on device `ifindex`.
    pub fn feature_active(&mut self, ifindex: u32, name: &str) -> Result<bool> {
        Ok(self.features(ifindex)?.iter().any(|(n, _)| n == name))
    }

    /// Turn features on or off (`ethtool -K DEV NAME on|off`).
    pub fn set_features(&mut self, ifindex: u32, features: &[(&str, bool)]) -> Result<()> {
        let body = Attrs(features_set_attrs(ifindex, features));
        let family = self.family;
        let what = features
            .iter()
            .map(|(n, on)| format!("{n} {}", if *on { "on" } else { "off" }))
            .collect::<Vec<_>>()
            .join(", ");
        self.request(
            family,
            ETHTOOL_MSG_FEATURES_SET,
            ETHTOOL_GENL_VERSION,
            &body,
        )
        .map_err(|e| with_op(e, format!("set {what} on interface {ifindex}")))?;
        Ok(())
    }
}

fn with_op(e: NlError, op: String) -> NlError {
    match e {
        NlError::Kernel { errno, .. } if errno == libc::ENODEV => {
            NlError::NotFound(format!("{op}: {}", errno_desc(errno)))
        }
        NlError::Kernel { errno, .. } => NlError::Kernel { op, errno },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_set_request_is_a_named_wanted_bitset() {
        let b = features_set_attrs(7, &[(TX_CHECKSUM_IP_GENERIC, false), ("rx-gro", true)]);
        let top = attrs(&b);
        assert_eq!(top.len(), 2);
        // NLA_F_NESTED is set on every nest (strict validation needs it).
        assert_eq!(
            u16::from_ne_bytes([b[2], b[3]]),
            ETHTOOL_A_FEATURES_HEADER | NLA_F_NESTED
        );
        let (k, header) = top[0];
        assert_eq!(k, ETHTOOL_A_FEATURES_HEADER);
        let h = attrs(header);
        assert_eq!(h[0], (ETHTOOL_A_HEADER_DEV_INDEX, &7u32.to_ne_bytes()[..]));
        assert_eq!(
            h[1],
            (
                ETHTOOL_A_HEADER_FLAGS,
                &ETHTOOL_FLAG_OMIT_REPLY.to_ne_bytes()[..]
            )
        );
        let (k, wanted) = top[1];
        assert_eq!(k, ETHTOOL_A_FEATURES_WANTED);
        assert_eq!(
            bitset_names(wanted),
            vec![
                (TX_CHECKSUM_IP_GENERIC.to_string(), false),
                ("rx-gro".to_string(), true)
            ]
        );
        // No NOMASK flag: only the listed bits change.
        assert!(attrs(wanted)
            .iter()
            .all(|(k, _)| *k == ETHTOOL_A_BITSET_BITS));
    }

    #[test]
    fn genl_header() {
        let mut body = Attrs::default();
        body.string(CTRL_ATTR_FAMILY_NAME, "ethtool");
        let m = genl_message(GENL_ID_CTRL, NLM_F_ACK, 9, CTRL_CMD_GETFAMILY, 1, &body);
        assert_eq!(m.len(), 16 + 4 + 12);
        assert_eq!(
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), GENL_ID_CTRL);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(&m[16..20], &[CTRL_CMD_GETFAMILY, 1, 0, 0]);
        assert_eq!(&m[24..32], b"ethtool\0");
    }
}
