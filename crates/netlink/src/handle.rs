//! The NETLINK_ROUTE socket: request/ack, dumps, error decoding.

use std::cell::Cell;
use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{NlError, RawError, Result};
use crate::netns::Netns;

/// nlmsghdr length.
const HEADER_LEN: usize = 16;
/// NLM_F_CAPPED / NLM_F_ACK_TLVS live in the flags of an NLMSG_ERROR answer.
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
/// Extended ack attribute carrying the kernel's error text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// How often an interrupted dump (the table changed while it was read) is
/// retried before giving up.
const DUMP_RETRIES: usize = 10;

/// One NETLINK_ROUTE socket, bound for its whole life to the network
/// namespace it was created in.
///
/// A [`Handle`] made with [`Handle::for_netns`] operates on that netns from
/// any thread without further `setns`. Methods take `&self`; the handle is
/// `Send` but not `Sync` (requests and answers are matched by a per-socket
/// sequence number, so one handle serves one thread at a time).
pub struct Handle {
    socket: Socket,
    seq: Cell<u32>,
    /// Receive buffer, taken out while a request runs.
    buf: Cell<Vec<u8>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("socket", &self.socket)
            .field("seq", &self.seq.get())
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// A handle on the calling thread's network namespace.
    pub fn new() -> Result<Handle> {
        let socket = open_socket(NETLINK_ROUTE, "open netlink socket")?;
        Ok(Handle {
            socket,
            seq: Cell::new(0),
            buf: Cell::new(vec![0; 32 * 1024]),
        })
    }

    /// A handle on `ns`: the socket is created on a scoped thread inside the
    /// netns and stays bound to it.
    pub fn for_netns(ns: &Netns) -> Result<Handle> {
        ns.run(Handle::new)?
    }

    /// Send a request that the kernel acknowledges (create, change, delete,
    /// or a single GET) and collect the messages it answered before the ack.
    pub(crate) fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, RawError> {
        self.send(msg, flags | NLM_F_ACK)?;
        let (msgs, _) = self.receive(false)?;
        Ok(msgs)
    }

    /// Run a dump; retried when the kernel flags it as interrupted.
    pub(crate) fn dump(
        &self,
        msg: RouteNetlinkMessage,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, RawError> {
        for _ in 0..DUMP_RETRIES {
            self.send(msg.clone(), NLM_F_DUMP)?;
            let (msgs, interrupted) = self.receive(true)?;
            if !interrupted {
                return Ok(msgs);
            }
        }
        Err(RawError::Errno {
            errno: libc::EINTR,
            ext_ack: Some("dump interrupted too often".into()),
        })
    }

    fn send(&self, msg: RouteNetlinkMessage, flags: u16) -> std::result::Result<(), RawError> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        loop {
            match self.socket.send(&out, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RawError::Io(e)),
            }
        }
    }

    /// Read answers to the current sequence number until the ack (single
    /// request) or NLMSG_DONE (dump). Returns the messages and whether the
    /// dump was interrupted.
    fn receive(
        &self,
        dump: bool,
    ) -> std::result::Result<(Vec<RouteNetlinkMessage>, bool), RawError> {
        let mut buf = self.buf.take();
        let answer = self.receive_into(&mut buf, dump);
        self.buf.set(buf);
        answer
    }

    fn receive_into(
        &self,
        buf: &mut Vec<u8>,
        dump: bool,
    ) -> std::result::Result<(Vec<RouteNetlinkMessage>, bool), RawError> {
        let mut msgs = Vec::new();
        let mut interrupted = false;
        let mut decode_error = None;
        loop {
            let size = recv_datagram(&self.socket, buf).map_err(RawError::Io)?;
            let mut offset = 0;
            while offset < size {
                let rest = buf.get(offset..size).unwrap_or_default();
                let (len, flags, seq) = parse_header(rest)?;
                let frame = rest.get(..len).unwrap_or_default();
                offset += align4(len);
                if seq != self.seq.get() {
                    // An answer to an earlier request that was abandoned
                    // half-way; not ours.
                    continue;
                }
                if flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                let packet = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame) {
                    Ok(p) => p,
                    Err(e) => {
                        // In a dump, skip an object npr cannot decode (an
                        // exotic device elsewhere in the netns) instead of
                        // failing the whole listing.
                        if !dump && decode_error.is_none() {
                            decode_error = Some(e.to_string());
                        }
                        continue;
                    }
                };
                match packet.payload {
                    NetlinkPayload::InnerMessage(m) => msgs.push(m),
                    NetlinkPayload::Done(done) => {
                        if done.code < 0 {
                            return Err(RawError::Errno {
                                errno: done.code.saturating_neg(),
                                ext_ack: None,
                            });
                        }
                        return finish(msgs, interrupted, decode_error);
                    }
                    NetlinkPayload::Error(err) => {
                        let code = err.raw_code();
                        if code == 0 {
                            return finish(msgs, interrupted, decode_error);
                        }
                        return Err(RawError::Errno {
                            errno: code.saturating_neg(),
                            ext_ack: ext_ack_text(flags, &err.header),
                        });
                    }
                    NetlinkPayload::Overrun(_) => {
                        return Err(RawError::Decode("netlink overrun".into()));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_GENERIC) in the
/// calling thread's netns, bound to a kernel-chosen port id and connected to
/// the kernel; `op` names the step in errors.
pub(crate) fn open_socket(protocol: isize, op: &str) -> Result<Socket> {
    let mut socket = Socket::new(protocol).map_err(|e| NlError::io(op, e))?;
    socket.bind_auto().map_err(|e| NlError::io(op, e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| NlError::io(op, e))?;
    // Best effort: ask for the kernel's error text (extended ack) and for
    // errors that do not echo our whole request back.
    let _ = socket.set_ext_ack(true);
    let _ = socket.set_cap_ack(true);
    Ok(socket)
}

/// Receive one datagram into `buf`, growing it first if the datagram is
/// bigger (peeked with MSG_TRUNC), so a large dump message is never cut.
pub(crate) fn recv_datagram(socket: &Socket, buf: &mut Vec<u8>) -> io::Result<usize> {
    let wanted = recv_retry(socket, buf, libc::MSG_PEEK | libc::MSG_TRUNC)?;
    if wanted > buf.len() {
        buf.resize(wanted, 0);
    }
    let got = recv_retry(socket, buf, 0)?;
    Ok(got.min(buf.len()))
}

fn recv_retry(socket: &Socket, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    loop {
        let mut slice: &mut [u8] = &mut buf[..];
        match socket.recv(&mut slice, flags) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn finish(
    msgs: Vec<RouteNetlinkMessage>,
    interrupted: bool,
    decode_error: Option<String>,
) -> std::result::Result<(Vec<RouteNetlinkMessage>, bool), RawError> {
    match decode_error {
        Some(e) => Err(RawError::Decode(e)),
        None => Ok((msgs, interrupted)),
    }
}

pub(crate) fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

/// (length, flags, sequence) of the nlmsghdr at the start of `b`.
pub(crate) fn parse_header(b: &[u8]) -> std::result::Result<(usize, u16, u32), RawError> {
    let bad = || RawError::Decode(format!("truncated netlink message ({} bytes)", b.len()));
    let len = read_u32(b, 0).ok_or_else(bad)? as usize;
    let flags = read_u16(b, 6).ok_or_else(bad)?;
    let seq = read_u32(b, 8).ok_or_else(bad)?;
    if len < HEADER_LEN || len > b.len() {
        return Err(bad());
    }
    Ok((len, flags, seq))
}

/// The NLMSGERR_ATTR_MSG text of an NLMSG_ERROR answer. `payload` is what
/// follows the error code: our request's header (only the header when
/// NLM_F_CAPPED), then the extended ack attributes.
fn ext_ack_text(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        HEADER_LEN
    } else {
        read_u32(payload, 0)? as usize
    };
    let mut attrs = payload.get(align4(echoed)..)?;
    while attrs.len() >= 4 {
        let len = read_u16(attrs, 0)? as usize;
        let kind = read_u16(attrs, 2)? & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let value = attrs.get(4..len)?;
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(text).trim().to_string();
            return (!text.is_empty()).then_some(text);
        }
        attrs = attrs.get(align4(len).min(attrs.len())..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_is_decoded() {
        // capped echo of a 16 byte header, then NLMSGERR_ATTR_MSG "bad\0"
        let mut payload = vec![0u8; 16];
        payload.extend_from_slice(&8u16.to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(b"bad\0");
        assert_eq!(
            ext_ack_text(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).as_deref(),
            Some("bad")
        );
        assert_eq!(ext_ack_text(NLM_F_CAPPED, &payload), None);
        assert_eq!(
            ext_ack_text(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload[..18]),
            None
        );
    }

    #[test]
    fn short_header_is_an_error() {
        assert!(parse_header(&[1, 2, 3]).is_err());
        let mut h = vec![0u8; 16];
        h[0] = 200; // claims 200 bytes, only 16 present
        assert!(parse_header(&h).is_err());
    }
}
