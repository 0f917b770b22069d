//! TCP: listeners, the handshake, and connections as two ordered byte flows.
//!
//! A connection has two sides (0 connected, 1 accepted) and one [`Flow`] per direction:
//! bytes wait in the sender's send buffer, cross the link in segments of at most
//! `SEGMENT_SIZE_MAX` bytes, and wait in the receiver's receive buffer for `recv`. A segment
//! leaves only when the receive buffer has room for it and for everything already in flight
//! (the window), so backpressure reaches the sender as a full send buffer. Segments of one
//! direction arrive in the order sent: a retransmission delays its segment and every later
//! one, as TCP's in-order delivery does, so a stream is never corrupted, duplicated or
//! reordered. Loss shows only as delay.
//!
//! This is not a model of sequence numbers, acknowledgements, congestion windows, Nagle,
//! half-close or TIME_WAIT; it keeps what an application can observe of them.

use std::collections::VecDeque;
use std::net::{SocketAddr, SocketAddrV4};

use tina::io::{IoError, IoHandle, IoOpKind, IoResult};

use super::faults::NetFaultKind;
use super::op::Wait;
use super::ports::Protocol;
use super::socket::SocketKind;
use super::{
    BACKLOG_MAX, CONNECTIONS_MAX, HANDSHAKE_RETRY_NS, Net, OpId, PENDING_OPS_MAX, SEGMENT_SIZE_MAX,
    SEGMENTS_IN_FLIGHT_MAX, Start, Timer, node_ip,
};

/// Names a connection. Never reused within one network.
pub(super) type ConnId = u64;

/// How many rounds of reading, sending and refilling one progress step may take. Each
/// round after the first moves something only because a pending operation finished in the
/// round before, so the pending-operation limit bounds the rounds.
const PROGRESS_ROUNDS_MAX: usize = PENDING_OPS_MAX + 2;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConnState {
    /// The SYN is on its way (or the host is unreachable).
    SynSent,
    /// Nothing listens (or the backlog was full); the refusal is on its way back.
    Refused,
    /// The server side exists; bytes may flow.
    Established,
    /// Reset: every buffer is empty and every operation on it fails.
    Reset,
}

/// Why bytes were discarded, for the accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Discard {
    /// A reset that is not a crash.
    Reset,
    /// A node crashed.
    Crash,
}

/// A segment on the wire.
#[derive(Debug)]
struct Segment {
    arrive_ns: u64,
    bytes: Vec<u8>,
    /// The sender closed; this segment carries no bytes.
    fin: bool,
}

/// One direction of a connection, from the sender's send buffer to the receiver's receive
/// buffer.
#[derive(Debug, Default)]
pub(super) struct Flow {
    send_buffer: VecDeque<u8>,
    in_flight: VecDeque<Segment>,
    in_flight_bytes: usize,
    receive_buffer: VecDeque<u8>,
    /// The sender closed: a FIN follows the buffered bytes.
    fin_queued: bool,
    /// The FIN is on the wire (or arrived).
    fin_sent: bool,
    /// The FIN arrived: once the receive buffer is empty, reads return 0.
    eof: bool,
    /// When the last segment sent arrives: later ones never arrive earlier.
    last_arrival_ns: u64,
}

impl Flow {
    fn bytes(&self) -> u64 {
        (self.send_buffer.len() + self.in_flight_bytes + self.receive_buffer.len()) as u64
    }

    /// Empties every buffer; returns how many bytes were discarded.
    fn clear(&mut self) -> u64 {
        let bytes = self.bytes();
        self.send_buffer.clear();
        self.in_flight.clear();
        self.in_flight_bytes = 0;
        self.receive_buffer.clear();
        bytes
    }
}

/// A TCP connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// The connecting node, then the accepting node.
    pub nodes: [u16; 2],
    /// The connecting socket's address, then the address connected to.
    addrs: [SocketAddrV4; 2],
    /// Each side's socket while it is open.
    handles: [Option<u32>; 2],
    /// `flows[side]` carries bytes from `side` to the other side.
    flows: [Flow; 2],
    state: ConnState,
    /// The connect operation, until it finishes.
    connect_op: Option<u64>,
}

impl Conn {
    pub fn established(&self) -> bool {
        self.state == ConnState::Established
    }

    /// Bytes in its buffers and on the wire.
    pub fn buffered_bytes(&self) -> u64 {
        self.flows.iter().map(Flow::bytes).sum()
    }

    /// Checks the connection's own invariants.
    pub fn check(&self, id: &ConnId, send_size: u32, receive_size: u32) -> Result<(), String> {
        for (side, flow) in self.flows.iter().enumerate() {
            let in_flight: usize = flow.in_flight.iter().map(|segment| segment.bytes.len()).sum();
            let ordered = flow
                .in_flight
                .iter()
                .zip(flow.in_flight.iter().skip(1))
                .all(|(earlier, later)| earlier.arrive_ns <= later.arrive_ns);
            let problem = if in_flight != flow.in_flight_bytes {
                "in-flight bytes miscounted"
            } else if !ordered {
                "segments would arrive out of order"
            } else if flow.send_buffer.len() > send_size as usize {
                "send buffer over its size"
            } else if flow.receive_buffer.len() + in_flight > receive_size as usize {
                "receive window overrun"
            } else if self.state == ConnState::Reset && flow.bytes() > 0 {
                "a reset connection still holds bytes"
            } else {
                continue;
            };
            return Err(format!("connection {id}, flow from side {side}: {problem}"));
        }
        Ok(())
    }
}

impl Net {
    /// Opens a listener on `node` at `addr` (port 0: an ephemeral port).
    pub(super) fn tcp_listen(
        &mut self,
        node: u16,
        addr: SocketAddr,
        backlog: u32,
    ) -> Result<IoResult, IoError> {
        let ip = self.local_ip(node, addr)?;
        if !self.socket_room(node) {
            return Err(IoError::Other);
        }
        let port = self.ports[usize::from(node)]
            .choose(Protocol::Tcp, addr.port())
            .ok_or(if addr.port() == 0 { IoError::AddrNotAvailable } else { IoError::AddrInUse })?;
        let kind =
            SocketKind::Listener { backlog: backlog.clamp(1, BACKLOG_MAX), queue: VecDeque::new() };
        let raw = self.open_socket(node, SocketAddrV4::new(ip, port), kind)?;
        self.ports[usize::from(node)].book(Protocol::Tcp, port, raw);
        Ok(IoResult::Opened(IoHandle::from_raw(raw)))
    }

    /// Starts a connect from an ephemeral port of `node`. It finishes with the socket once
    /// the server's answer arrives, `ConnectionRefused` if nothing listens, or `TimedOut`.
    pub(super) fn tcp_connect(
        &mut self,
        node: u16,
        owner: u64,
        addr: SocketAddr,
    ) -> Result<Start, IoError> {
        let timeout_ns = self.now_ns.saturating_add(self.config.connect_timeout_ns);
        let Some((to_node, to)) = self.route(addr) else {
            // An unroutable host answers nothing: only the timeout ends the wait.
            let wait = Wait::Connect { conn: None };
            let op = self.pending.park(node, owner, IoOpKind::TcpConnect, wait)?;
            self.timers.at(timeout_ns, Timer::ConnectTimeout { op });
            return Ok(Start::Pending(OpId(op)));
        };
        if self.conns.len() >= CONNECTIONS_MAX || self.pending.ops.len() >= PENDING_OPS_MAX {
            return Err(IoError::Other);
        }
        let port = self.ports[usize::from(node)]
            .choose(Protocol::Tcp, 0)
            .ok_or(IoError::AddrNotAvailable)?;
        let local = SocketAddrV4::new(node_ip(node), port);
        let id = self.next_conn + 1;
        let raw = self.open_socket(node, local, SocketKind::Stream { conn: id, side: 0 })?;
        self.next_conn = id;
        self.ports[usize::from(node)].book(Protocol::Tcp, port, raw);
        let wait = Wait::Connect { conn: Some(id) };
        let op = self.pending.park(node, owner, IoOpKind::TcpConnect, wait)?;
        let conn = Conn {
            nodes: [node, to_node],
            addrs: [local, to],
            handles: [Some(raw), None],
            flows: Default::default(),
            state: ConnState::SynSent,
            connect_op: Some(op),
        };
        self.conns.insert(id, conn);
        self.timers.at(timeout_ns, Timer::ConnectTimeout { op });
        self.send_handshake(node, to_node, Timer::Syn { conn: id });
        Ok(Start::Pending(OpId(op)))
    }

    /// Puts a handshake packet on `from -> to`, with a TCP packet's delay.
    fn send_handshake(&mut self, from: u16, to: u16, timer: Timer) {
        let now_ns = self.now_ns;
        let link = self.links.get(from, to);
        let drawn = link.tcp_delay();
        link.record(&mut self.log, now_ns, drawn);
        self.timers.at(now_ns.saturating_add(drawn.delay_ns), timer);
    }

    /// The SYN reaches the server: a listener with room in its backlog (and a node with room
    /// for a socket) takes the connection, else it is refused. Either answer flies back.
    pub(super) fn syn_arrives(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get(&id) else { return };
        if conn.state != ConnState::SynSent {
            return;
        }
        let [client, server] = conn.nodes;
        if !self.links.open(client, server) {
            self.timers.at(self.now_ns + HANDSHAKE_RETRY_NS, Timer::Syn { conn: id });
            return;
        }
        let port = conn.addrs[1].port();
        let listener = self.ports[usize::from(server)].tcp.get(&port).copied().filter(|raw| {
            matches!(&self.sockets[raw].kind,
                SocketKind::Listener { backlog, queue } if queue.len() < *backlog as usize)
        });
        let local = SocketAddrV4::new(node_ip(server), port);
        let accepted = listener.and_then(|listener| {
            let kind = SocketKind::Stream { conn: id, side: 1 };
            self.open_socket(server, local, kind).ok().map(|raw| (listener, raw))
        });
        let conn = self.conns.get_mut(&id).expect("looked up");
        match accepted {
            Some((listener, raw)) => {
                conn.handles[1] = Some(raw);
                conn.state = ConnState::Established;
                let socket = self.sockets.get_mut(&listener).expect("a booked listener");
                if let SocketKind::Listener { queue, .. } = &mut socket.kind {
                    queue.push_back(raw);
                }
                self.serve_accepts(listener);
            }
            None => conn.state = ConnState::Refused,
        }
        self.send_handshake(server, client, Timer::Answer { conn: id });
    }

    /// The server's answer reaches the client: the connect finishes.
    pub(super) fn answer_arrives(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Some(op) = conn.connect_op else { return };
        let [client, server] = conn.nodes;
        if !self.links.open(server, client) {
            self.timers.at(self.now_ns + HANDSHAKE_RETRY_NS, Timer::Answer { conn: id });
            return;
        }
        conn.connect_op = None;
        match conn.state {
            ConnState::Established => {
                let raw = conn.handles[0].expect("a connecting side is open");
                self.pending.complete(op, IoResult::Opened(IoHandle::from_raw(raw)), Vec::new());
                self.progress(id);
            }
            ConnState::Refused => {
                let raw = conn.handles[0].take().expect("a connecting side is open");
                self.drop_socket(raw);
                self.conns.remove(&id);
                self.pending.complete(op, IoResult::Failed(IoError::ConnectionRefused), Vec::new());
            }
            ConnState::SynSent | ConnState::Reset => {
                unreachable!("an answer follows the SYN, and a reset takes the connect operation")
            }
        }
    }

    /// A connect's deadline passed while it still waited.
    pub(super) fn connect_times_out(&mut self, op: u64) {
        let Some(pending) = self.pending.ops.get(&op) else { return };
        let Wait::Connect { conn } = pending.wait else {
            unreachable!("connect timers name connect operations")
        };
        self.abandon_connect(conn);
        self.pending.complete(op, IoResult::Failed(IoError::TimedOut), Vec::new());
    }

    /// Gives up a connection attempt (timed out or cancelled): the client socket goes away,
    /// and a server side that already accepted sees a reset.
    pub(super) fn abandon_connect(&mut self, conn: Option<ConnId>) {
        let Some(id) = conn else { return };
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.connect_op = None;
        let client = conn.handles[0].take();
        let established = conn.established();
        if let Some(raw) = client {
            self.drop_socket(raw);
        }
        if established {
            self.reset(id, Discard::Reset);
        }
        self.retire(id);
    }

    /// Starts an accept; it finishes when a connection waits in the backlog (possibly at
    /// once).
    pub(super) fn tcp_accept(
        &mut self,
        node: u16,
        owner: u64,
        listener: IoHandle,
    ) -> Result<Start, IoError> {
        let raw = self.socket(node, listener)?;
        if !matches!(self.sockets[&raw].kind, SocketKind::Listener { .. }) {
            return Err(IoError::InvalidInput);
        }
        let op =
            self.pending.park(node, owner, IoOpKind::TcpAccept, Wait::Accept { listener: raw })?;
        self.sockets.get_mut(&raw).expect("looked up").readers.push_back(op);
        self.serve_accepts(raw);
        Ok(Start::Pending(OpId(op)))
    }

    /// Pairs waiting accepts with queued connections, first come first served.
    fn serve_accepts(&mut self, listener: u32) {
        let socket = self.sockets.get_mut(&listener).expect("serving an open listener");
        let SocketKind::Listener { queue, .. } = &mut socket.kind else { return };
        let mut pairs = Vec::new();
        while !queue.is_empty() {
            let Some(op) = socket.readers.pop_front() else { break };
            pairs.push((op, queue.pop_front().expect("checked non-empty")));
        }
        for (op, raw) in pairs {
            let SocketKind::Stream { conn, .. } = self.sockets[&raw].kind else {
                unreachable!("a backlog holds connections")
            };
            let peer = SocketAddr::V4(self.conns[&conn].addrs[0]);
            let result = IoResult::Accepted { socket: IoHandle::from_raw(raw), peer };
            self.pending.complete(op, result, Vec::new());
        }
    }

    /// The connection and side of `node`'s stream socket `handle`, if it may carry bytes.
    fn stream(&self, node: u16, handle: IoHandle) -> Result<(u32, ConnId, usize), IoError> {
        let raw = self.socket(node, handle)?;
        let SocketKind::Stream { conn: id, side } = self.sockets[&raw].kind else {
            return Err(IoError::InvalidInput);
        };
        let conn = &self.conns[&id];
        match conn.state {
            ConnState::Reset => Err(IoError::ConnectionReset),
            ConnState::Established if conn.connect_op.is_none() || side == 1 => Ok((raw, id, side)),
            _ => Err(IoError::NotConnected),
        }
    }

    /// Starts a send: bytes that fit in the send buffer are taken at once (a partial write
    /// when it is nearly full); when it is full, or earlier sends wait, the send waits.
    pub(super) fn tcp_send(
        &mut self,
        node: u16,
        owner: u64,
        handle: IoHandle,
        data: &[u8],
    ) -> Result<Start, IoError> {
        let (raw, id, side) = self.stream(node, handle)?;
        if data.is_empty() {
            return Ok(Start::Done(IoResult::Transferred(0)));
        }
        let size = self.config.send_buffer_size as usize;
        let flow = &mut self.conns.get_mut(&id).expect("looked up").flows[side];
        let free = size - flow.send_buffer.len();
        if self.sockets[&raw].writers.is_empty() && free > 0 {
            let taken = free.min(data.len());
            flow.send_buffer.extend(&data[..taken]);
            self.tally.tcp_bytes_accepted += taken as u64;
            self.progress(id);
            // At most the buffer size, which fits in u32.
            return Ok(Start::Done(IoResult::Transferred(taken as u32)));
        }
        let wait = Wait::Send { socket: raw, data: data[..data.len().min(size)].to_vec() };
        let op = self.pending.park(node, owner, IoOpKind::TcpSend, wait)?;
        self.sockets.get_mut(&raw).expect("looked up").writers.push_back(op);
        Ok(Start::Pending(OpId(op)))
    }

    /// Starts a receive: it finishes with up to `len_max` bytes once any are buffered, with
    /// 0 bytes at EOF, or fails when the connection resets.
    pub(super) fn tcp_recv(
        &mut self,
        node: u16,
        owner: u64,
        handle: IoHandle,
        len_max: u32,
    ) -> Result<Start, IoError> {
        let (raw, id, _) = self.stream(node, handle)?;
        if len_max == 0 {
            return Err(IoError::InvalidInput);
        }
        let op = self.pending.park(
            node,
            owner,
            IoOpKind::TcpRecv,
            Wait::Recv { socket: raw, len_max },
        )?;
        self.sockets.get_mut(&raw).expect("looked up").readers.push_back(op);
        self.progress(id);
        Ok(Start::Pending(OpId(op)))
    }

    /// Moves everything that can move on connection `id` now: readers take buffered bytes,
    /// segments leave within the window, waiting senders refill the send buffers; repeated
    /// until nothing moves. A reset drawn on the way resets the connection.
    fn progress(&mut self, id: ConnId) {
        for _ in 0..PROGRESS_ROUNDS_MAX {
            let mut moved = false;
            for side in 0..2 {
                moved |= self.serve_readers(id, side);
                match self.transmit(id, side) {
                    Some(sent) => moved |= sent,
                    None => {
                        self.reset(id, Discard::Reset);
                        return;
                    }
                }
                moved |= self.serve_writers(id, side);
            }
            if !moved {
                break;
            }
        }
        self.retire(id);
    }

    /// Finishes the receives waiting on `side` with the bytes (or EOF) flowing to it.
    fn serve_readers(&mut self, id: ConnId, side: usize) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else { return false };
        let Some(raw) = conn.handles[side] else { return false };
        let socket = self.sockets.get_mut(&raw).expect("an open side names an open socket");
        let flow = &mut conn.flows[1 - side];
        let mut moved = false;
        while let Some(&op) = socket.readers.front() {
            let Some(Wait::Recv { len_max, .. }) = self.pending.ops.get(&op).map(|op| &op.wait)
            else {
                unreachable!("a connection's readers are receives")
            };
            let taken = flow.receive_buffer.len().min(*len_max as usize);
            if taken == 0 && !flow.eof {
                break;
            }
            socket.readers.pop_front();
            let mut data = self.spare.take();
            move_front(&mut flow.receive_buffer, taken, &mut data);
            self.tally.tcp_bytes_delivered += taken as u64;
            // At most len_max, a u32.
            let result = IoResult::Received { len: taken as u32, from: None };
            self.pending.complete(op, result, data);
            moved = true;
        }
        moved
    }

    /// Refills `side`'s send buffer from its waiting sends, first come first served; each
    /// takes what fits and finishes with that count.
    fn serve_writers(&mut self, id: ConnId, side: usize) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else { return false };
        let Some(raw) = conn.handles[side] else { return false };
        if !conn.established() {
            return false;
        }
        let socket = self.sockets.get_mut(&raw).expect("an open side names an open socket");
        let flow = &mut conn.flows[side];
        let size = self.config.send_buffer_size as usize;
        let mut moved = false;
        while let Some(&op) = socket.writers.front() {
            let free = size - flow.send_buffer.len();
            if free == 0 {
                break;
            }
            let Some(Wait::Send { data, .. }) = self.pending.ops.get(&op).map(|op| &op.wait) else {
                unreachable!("a connection's writers are sends")
            };
            let taken = free.min(data.len());
            flow.send_buffer.extend(&data[..taken]);
            self.tally.tcp_bytes_accepted += taken as u64;
            socket.writers.pop_front();
            // At most the buffer size, which fits in u32.
            self.pending.complete(op, IoResult::Transferred(taken as u32), Vec::new());
            moved = true;
        }
        moved
    }

    /// Sends segments from `dir`'s send buffer (and its FIN after them) while the window and
    /// the in-flight limit allow. `None` when the reset knob fired: the caller resets.
    fn transmit(&mut self, id: ConnId, dir: usize) -> Option<bool> {
        let Some(conn) = self.conns.get_mut(&id) else { return Some(false) };
        if !conn.established() {
            return Some(false);
        }
        let (from, to) = (conn.nodes[dir], conn.nodes[1 - dir]);
        let window_size = self.config.receive_buffer_size as usize;
        let now_ns = self.now_ns;
        let flow = &mut conn.flows[dir];
        let link = self.links.get(from, to);
        let mut moved = false;
        for _ in 0..SEGMENTS_IN_FLIGHT_MAX {
            if flow.in_flight.len() >= SEGMENTS_IN_FLIGHT_MAX {
                break;
            }
            let used = flow.receive_buffer.len() + flow.in_flight_bytes;
            let window = window_size.saturating_sub(used);
            let (bytes, fin) = if !flow.send_buffer.is_empty() && window > 0 {
                if link.draw_reset() {
                    self.log.inject(now_ns, NetFaultKind::Reset, from, to);
                    return None;
                }
                let len = SEGMENT_SIZE_MAX.min(flow.send_buffer.len()).min(window);
                let mut bytes = self.spare.take();
                move_front(&mut flow.send_buffer, len, &mut bytes);
                (bytes, false)
            } else if flow.send_buffer.is_empty() && flow.fin_queued && !flow.fin_sent {
                flow.fin_sent = true;
                (Vec::new(), true)
            } else {
                break;
            };
            let drawn = link.tcp_delay();
            link.record(&mut self.log, now_ns, drawn);
            let arrive_ns = now_ns.saturating_add(drawn.delay_ns).max(flow.last_arrival_ns);
            flow.last_arrival_ns = arrive_ns;
            flow.in_flight_bytes += bytes.len();
            flow.in_flight.push_back(Segment { arrive_ns, bytes, fin });
            self.timers.at(arrive_ns, Timer::Segment { conn: id, dir });
            moved = true;
        }
        assert!(flow.receive_buffer.len() + flow.in_flight_bytes <= window_size, "window overrun");
        Some(moved)
    }

    /// Segments of `dir` that are due reach the receiver, in order, unless the link is cut
    /// or clogged (they wait; healing wakes them). Data reaching a closed socket resets the
    /// connection, as a kernel answers it with RST.
    pub(super) fn segments_arrive(&mut self, id: ConnId, dir: usize) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if !conn.established() || !self.links.open(conn.nodes[dir], conn.nodes[1 - dir]) {
            return;
        }
        let receiver_open = conn.handles[1 - dir].is_some();
        let flow = &mut conn.flows[dir];
        let mut refused = false;
        for _ in 0..SEGMENTS_IN_FLIGHT_MAX {
            let Some(head) = flow.in_flight.front() else { break };
            if head.arrive_ns > self.now_ns {
                break;
            }
            if !head.fin && !receiver_open {
                refused = true;
                break;
            }
            let segment = flow.in_flight.pop_front().expect("checked non-empty");
            flow.in_flight_bytes -= segment.bytes.len();
            flow.eof |= segment.fin;
            flow.receive_buffer.extend(&segment.bytes);
            self.spare.give(segment.bytes);
        }
        if refused {
            self.reset(id, Discard::Reset);
        } else {
            self.progress(id);
        }
    }

    /// After a heal or an unclog: segments that waited on a link look again, now.
    pub(super) fn wake_streams(&mut self) {
        for (&id, conn) in &self.conns {
            for dir in 0..2 {
                if conn.established() && !conn.flows[dir].in_flight.is_empty() {
                    self.timers.at(self.now_ns, Timer::Segment { conn: id, dir });
                }
            }
        }
    }

    /// Resets connection `id`: every buffered byte is discarded, and every operation waiting
    /// on either side (a connect too) fails with `ConnectionReset`. The sockets stay open
    /// until closed; every later operation on them fails the same way.
    pub(super) fn reset(&mut self, id: ConnId, why: Discard) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if !conn.established() {
            return;
        }
        let discarded: u64 = conn.flows.iter_mut().map(Flow::clear).sum();
        match why {
            Discard::Reset => self.tally.tcp_bytes_discarded_reset += discarded,
            Discard::Crash => self.tally.tcp_bytes_discarded_crash += discarded,
        }
        conn.state = ConnState::Reset;
        for raw in conn.handles.iter().flatten() {
            let socket = self.sockets.get_mut(raw).expect("an open side names an open socket");
            let waiting = socket.readers.drain(..).chain(socket.writers.drain(..));
            for op in waiting {
                let failed = IoResult::Failed(IoError::ConnectionReset);
                self.pending.complete(op, failed, Vec::new());
            }
        }
        if let Some(op) = conn.connect_op.take() {
            // The caller never learned the connecting socket's handle: it goes too.
            let raw = conn.handles[0].take().expect("a connecting side is open");
            self.pending.complete(op, IoResult::Failed(IoError::ConnectionReset), Vec::new());
            self.drop_socket(raw);
        }
        self.retire(id);
    }

    /// Closes `side` of connection `id` (its socket is already gone): a FIN follows the
    /// buffered bytes, or a reset when unread bytes wait, as kernels do.
    pub(super) fn close_stream(&mut self, id: ConnId, side: usize) {
        let conn = self.conns.get_mut(&id).expect("an open socket's connection exists");
        conn.handles[side] = None;
        if let Some(op) = conn.connect_op.take() {
            let failed = IoResult::Failed(IoError::ConnectionAborted);
            self.pending.complete(op, failed, Vec::new());
        }
        if conn.established() {
            if conn.flows[1 - side].receive_buffer.is_empty() {
                conn.flows[side].fin_queued = true;
                self.progress(id);
            } else {
                self.reset(id, Discard::Reset);
            }
        }
        self.retire(id);
    }

    /// A closed listener's backlog: connections never accepted reset, their sockets go.
    pub(super) fn close_backlog(&mut self, queue: VecDeque<u32>) {
        for raw in queue {
            let Some(socket) = self.drop_socket(raw) else { continue };
            let SocketKind::Stream { conn: id, side } = socket.kind else {
                unreachable!("a backlog holds connections")
            };
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.handles[side] = None;
            }
            self.reset(id, Discard::Reset);
            self.retire(id);
        }
    }

    /// `node` crashed: its sides of connection `id` vanish (its sockets and operations are
    /// removed by the caller) and the connection resets for the other side.
    pub(super) fn crash_conn(&mut self, id: ConnId, node: u16) {
        let conn = self.conns.get_mut(&id).expect("crashing a connection that exists");
        for side in 0..2 {
            if conn.nodes[side] == node {
                conn.handles[side] = None;
            }
        }
        if conn.nodes[0] == node {
            conn.connect_op = None;
        }
        self.reset(id, Discard::Crash);
        self.retire(id);
    }

    /// Forgets connection `id` once neither side is open; bytes still buffered can never be
    /// read and are discarded.
    fn retire(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.handles.iter().any(Option::is_some) {
            return;
        }
        assert!(conn.connect_op.is_none(), "a connect waits only while its socket is open");
        let discarded: u64 = conn.flows.iter_mut().map(Flow::clear).sum();
        self.tally.tcp_bytes_discarded_close += discarded;
        self.conns.remove(&id);
    }
}

/// Moves the first `len` bytes of `from` to the end of `into`, as slices (a byte at a time
/// through an iterator is several times slower).
fn move_front(from: &mut VecDeque<u8>, len: usize, into: &mut Vec<u8>) {
    let (head, tail) = from.as_slices();
    let from_head = len.min(head.len());
    into.extend_from_slice(&head[..from_head]);
    into.extend_from_slice(&tail[..len - from_head]);
    from.drain(..len);
}
