//! UDP: bound sockets, datagrams in flight, and their receive queues.
//!
//! A datagram is copied at `sendto`, shaped by its link's knobs (loss, corruption, latency,
//! reordering, duplication), flies as a timer, and lands in the destination socket's bounded
//! queue or in a waiting `recvfrom`. Paths keep datagrams in order unless the reorder knob
//! delays one. Every datagram ends in exactly one bucket of the accounting. This is not a
//! model of IP fragmentation, checksums (a corrupted datagram is delivered corrupted, as a
//! checksum-less path would), broadcast or ICMP.

use std::collections::VecDeque;
use std::net::{SocketAddr, SocketAddrV4};

use tina::io::{IoError, IoHandle, IoOpKind, IoResult};

use super::faults::NetFaultKind;
use super::op::{OpId, Wait};
use super::ports::Protocol;
use super::socket::SocketKind;
use super::{DATAGRAM_SIZE_MAX, DATAGRAMS_IN_FLIGHT_MAX, Net, Start, Timer, UdpDrop};

/// A datagram queued at a socket.
#[derive(Debug)]
pub(super) struct Datagram {
    pub from: SocketAddrV4,
    pub bytes: Vec<u8>,
}

/// A datagram in flight (or held by a clog at its link's far end).
#[derive(Debug)]
pub(super) struct Flight {
    pub from_node: u16,
    pub to_node: u16,
    pub to_port: u16,
    pub datagram: Datagram,
}

impl Net {
    /// Opens a UDP socket on `node` at `addr` (port 0: an ephemeral port).
    pub(super) fn udp_bind(&mut self, node: u16, addr: SocketAddr) -> Result<IoResult, IoError> {
        let ip = self.local_ip(node, addr)?;
        if !self.socket_room(node) {
            return Err(IoError::Other);
        }
        let ports = &mut self.ports[usize::from(node)];
        let port = ports.choose(Protocol::Udp, addr.port()).ok_or(if addr.port() == 0 {
            IoError::AddrNotAvailable
        } else {
            IoError::AddrInUse
        })?;
        let local = SocketAddrV4::new(ip, port);
        let raw = self.open_socket(node, local, SocketKind::Udp { queue: VecDeque::new() })?;
        self.ports[usize::from(node)].book(Protocol::Udp, port, raw);
        Ok(IoResult::Opened(IoHandle::from_raw(raw)))
    }

    /// Sends one datagram; it is taken at once (`Transferred(len)`) whatever becomes of it.
    pub(super) fn udp_send_to(
        &mut self,
        node: u16,
        handle: IoHandle,
        addr: SocketAddr,
        data: &[u8],
    ) -> Result<IoResult, IoError> {
        let raw = self.socket(node, handle)?;
        let socket = &self.sockets[&raw];
        if !matches!(socket.kind, SocketKind::Udp { .. }) {
            return Err(IoError::InvalidInput);
        }
        if data.len() > DATAGRAM_SIZE_MAX {
            return Err(IoError::InvalidInput);
        }
        let from = socket.local;
        // The length fits: it is at most DATAGRAM_SIZE_MAX.
        let sent = IoResult::Transferred(data.len() as u32);
        self.tally.udp_sent += 1;
        let Some((to_node, to)) = self.route(addr) else {
            self.tally.udp_drop(UdpDrop::Unroutable);
            return Ok(sent);
        };
        let now_ns = self.now_ns;
        let link = self.links.get(node, to_node);
        if link.cut {
            self.tally.udp_drop(UdpDrop::Partition);
            return Ok(sent);
        }
        if link.draw_loss() {
            self.log.inject(now_ns, NetFaultKind::UdpLoss, node, to_node);
            self.tally.udp_drop(UdpDrop::Loss);
            return Ok(sent);
        }
        let mut bytes = self.spare.copy(data);
        if link.draw_corrupt(&mut bytes) {
            self.log.inject(now_ns, NetFaultKind::UdpCorrupt, node, to_node);
        }
        let duplicate = link.draw_duplicate().then(|| self.spare.copy(&bytes));
        let flight = |bytes| Flight {
            from_node: node,
            to_node,
            to_port: to.port(),
            datagram: Datagram { from, bytes },
        };
        let reorder = link.draw_reorder();
        self.launch(flight(bytes), reorder);
        if let Some(copy) = duplicate {
            self.log.inject(now_ns, NetFaultKind::UdpDuplicate, node, to_node);
            self.tally.udp_duplicates += 1;
            self.launch(flight(copy), None);
        }
        Ok(sent)
    }

    /// Puts a datagram on the wire with a drawn latency. A reordered one takes
    /// `reorder_ns` more and does not hold back the datagrams after it; the others arrive no
    /// earlier than the link's previous in-order datagram.
    fn launch(&mut self, flight: Flight, reorder_ns: Option<u64>) {
        if self.flights.len() >= DATAGRAMS_IN_FLIGHT_MAX {
            self.tally.udp_drop(UdpDrop::InFlightFull);
            return;
        }
        let now_ns = self.now_ns;
        let link = self.links.get(flight.from_node, flight.to_node);
        let drawn = link.latency();
        link.record(&mut self.log, now_ns, drawn);
        let plain_ns = now_ns.saturating_add(drawn.delay_ns);
        let arrive_ns = match reorder_ns {
            Some(extra_ns) => {
                self.log.inject(now_ns, NetFaultKind::UdpReorder, flight.from_node, flight.to_node);
                plain_ns.saturating_add(extra_ns)
            }
            None => {
                let arrive_ns = plain_ns.max(link.udp_last_arrival_ns);
                link.udp_last_arrival_ns = arrive_ns;
                arrive_ns
            }
        };
        self.next_flight += 1;
        self.flights.insert(self.next_flight, flight);
        self.timers.at(arrive_ns, Timer::Datagram { flight: self.next_flight });
    }

    /// A datagram reaches its link's far end: lost if the link is cut, held if clogged,
    /// else delivered.
    pub(super) fn datagram_arrives(&mut self, id: u64) {
        let Some(flight) = self.flights.get(&id) else { return };
        let link = self.links.get(flight.from_node, flight.to_node);
        if link.cut {
            self.flights.remove(&id);
            self.tally.udp_drop(UdpDrop::Partition);
        } else if link.clogged {
            link.held.push_back(id);
        } else {
            self.deliver_datagram(id);
        }
    }

    /// Releases, in order, the datagrams a clog held on `from -> to`.
    pub(super) fn release_held(&mut self, from: u16, to: u16) {
        let held = core::mem::take(&mut self.links.get(from, to).held);
        for id in held {
            // A crash may have dropped a held datagram already.
            if self.flights.contains_key(&id) {
                self.datagram_arrives(id);
            }
        }
    }

    /// Hands a datagram to its socket: a waiting `recvfrom`, else the queue if it has room.
    fn deliver_datagram(&mut self, id: u64) {
        let flight = self.flights.remove(&id).expect("delivering a datagram in flight");
        let ports = &self.ports[usize::from(flight.to_node)];
        let Some(&raw) = ports.udp.get(&flight.to_port) else {
            self.tally.udp_drop(UdpDrop::NoSocket);
            return;
        };
        let capacity = self.config.udp_queue_datagrams as usize;
        let socket = self.sockets.get_mut(&raw).expect("a booked port names an open socket");
        let SocketKind::Udp { queue } = &mut socket.kind else {
            unreachable!("the UDP port table names only UDP sockets")
        };
        if queue.len() >= capacity {
            self.tally.udp_drop(UdpDrop::QueueFull);
            return;
        }
        queue.push_back(flight.datagram);
        self.serve_udp_readers(raw);
    }

    /// Starts a `recvfrom`; it finishes when a datagram is queued (possibly at once).
    pub(super) fn udp_recv_from(
        &mut self,
        node: u16,
        owner: u64,
        handle: IoHandle,
        len_max: u32,
    ) -> Result<Start, IoError> {
        let raw = self.socket(node, handle)?;
        if !matches!(self.sockets[&raw].kind, SocketKind::Udp { .. }) || len_max == 0 {
            return Err(IoError::InvalidInput);
        }
        let wait = Wait::RecvFrom { socket: raw, len_max };
        let op = self.pending.park(node, owner, IoOpKind::UdpRecvFrom, wait)?;
        self.sockets.get_mut(&raw).expect("looked up").readers.push_back(op);
        self.serve_udp_readers(raw);
        Ok(Start::Pending(OpId(op)))
    }

    /// Pairs waiting `recvfrom`s with queued datagrams, first come first served; a datagram
    /// longer than the reader's `len_max` is truncated, the rest discarded (as UDP does).
    fn serve_udp_readers(&mut self, raw: u32) {
        let socket = self.sockets.get_mut(&raw).expect("serving an open socket");
        let SocketKind::Udp { queue } = &mut socket.kind else { return };
        while !queue.is_empty() {
            let Some(op) = socket.readers.pop_front() else { break };
            let Some(Wait::RecvFrom { len_max, .. }) = self.pending.ops.get(&op).map(|op| &op.wait)
            else {
                unreachable!("a UDP socket's readers are recvfrom operations")
            };
            let len_max = *len_max as usize;
            let mut datagram = queue.pop_front().expect("checked non-empty");
            datagram.bytes.truncate(len_max);
            self.tally.udp_delivered += 1;
            let result = IoResult::Received {
                // The length fits: it is at most DATAGRAM_SIZE_MAX.
                len: datagram.bytes.len() as u32,
                from: Some(SocketAddr::V4(datagram.from)),
            };
            self.pending.complete(op, result, datagram.bytes);
        }
    }
}
