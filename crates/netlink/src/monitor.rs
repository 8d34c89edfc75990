//! Link change notifications (RTNLGRP_LINK), for flanneld's "recreate the
//! VXLAN device when somebody deletes it" watch. Blocking; run it on a
//! dedicated thread.

use std::io;
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::TimeVal;

use crate::error::{NlError, Result};
use crate::handle::{align4, parse_header, recv_datagram};
use crate::link::{parse_link, Link};
use crate::netns::Netns;

/// One link notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// RTM_NEWLINK: a link appeared or changed (flags, name, master...).
    New(Link),
    /// RTM_DELLINK: a link is gone.
    Del(Link),
}

/// A socket subscribed to link notifications of one netns.
#[derive(Debug)]
pub struct LinkMonitor {
    socket: Socket,
    buf: Vec<u8>,
}

impl LinkMonitor {
    /// Watch the calling thread's netns.
    pub fn new() -> Result<LinkMonitor> {
        let op = "open link monitor";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| NlError::io(op, e))?;
        socket
            .bind(&SocketAddr::new(0, 0))
            .map_err(|e| NlError::io(op, e))?;
        socket
            .add_membership(libc::RTNLGRP_LINK)
            .map_err(|e| NlError::io(op, e))?;
        Ok(LinkMonitor {
            socket,
            buf: vec![0; 32 * 1024],
        })
    }

    /// Watch `ns` (the socket is created inside it).
    pub fn for_netns(ns: &Netns) -> Result<LinkMonitor> {
        ns.run(LinkMonitor::new)?
    }

    /// Make [`LinkMonitor::recv`] give up after `timeout` (None: block).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        let tv = TimeVal::from(libc::timeval {
            tv_sec: timeout.map_or(0, |t| {
                libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX)
            }),
            tv_usec: timeout.map_or(0, |t| libc::suseconds_t::from(t.subsec_micros())),
        });
        setsockopt(&self.socket, ReceiveTimeout, &tv)
            .map_err(|e| NlError::io("set link monitor timeout", e.into()))
    }

    /// Wait for the next batch of events. Returns an empty list when the
    /// timeout passed. An ENOBUFS error means notifications were lost (the
    /// socket buffer overflowed): re-read the state with a dump.
    pub fn recv(&mut self) -> Result<Vec<LinkEvent>> {
        let size = match recv_datagram(&self.socket, &mut self.buf) {
            Ok(size) => size,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(NlError::io("read link events", e)),
        };
        let mut events = Vec::new();
        let mut offset = 0;
        while offset < size {
            let rest = self.buf.get(offset..size).unwrap_or_default();
            let Ok((len, _, _)) = parse_header(rest) else {
                break;
            };
            offset += align4(len);
            let frame = rest.get(..len).unwrap_or_default();
            let Ok(packet) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame) else {
                continue;
            };
            match packet.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    events.push(LinkEvent::New(parse_link(&m)))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                    events.push(LinkEvent::Del(parse_link(&m)))
                }
                _ => {}
            }
        }
        Ok(events)
    }
}
