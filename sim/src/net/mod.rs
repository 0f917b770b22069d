//! A deterministic virtual network between the simulator's nodes: UDP datagrams and TCP byte
//! streams, with latency, loss, duplication, reordering, corruption, retransmission delay,
//! partitions, clogs, resets and node crashes, every random decision drawn from the seed.
//!
//! The model is sans-IO, in the manner of quinn-proto: a pure state machine with no sockets,
//! threads or clock inside. The caller passes the virtual time into every call, starts
//! operations with [`Net::start`], asks [`Net::next_deadline`] when something is due, and
//! collects [`Completion`]s with [`Net::poll`]. The same calls with the same seed give the
//! same completions, bytes and events, because every collection iterates in a fixed order
//! (`BTreeMap`, `VecDeque`) and every draw comes from a link's own stream.
//!
//! # Addresses
//!
//! Node `n` (counted from 0) has the IPv4 address `10.0.0.(n + 1)`; see [`node_ip`]. A node
//! binds and listens on its own address or on `0.0.0.0`; any other local address is
//! `AddrNotAvailable`. Port 0 picks the lowest free ephemeral port at or after the last one
//! given (from [`EPHEMERAL_PORT_MIN`]). TCP and UDP ports are separate namespaces.
//!
//! # Decisions
//!
//! - An address no node has is an unroutable host that answers nothing: datagrams to it
//!   vanish (counted as `unroutable`), and a TCP connect to it stays pending until
//!   [`NetConfig::connect_timeout_ns`], then fails with `TimedOut`.
//! - A TCP connect to a node where nothing listens on the port (or whose backlog is full)
//!   fails with `ConnectionRefused` after one round trip of latency.
//! - A partition cuts links. A UDP datagram sent across a cut link, or arriving while its
//!   link is cut, is lost. TCP packets are never lost to a partition: data segments wait on
//!   the link and arrive in order once it heals (as retransmission would deliver them), and
//!   handshake packets are retried every [`HANDSHAKE_RETRY_NS`]. A stream across a partition
//!   therefore stalls rather than fails; the caller bounds the wait with [`Net::cancel`],
//!   and a connect with its timeout.
//! - A clog holds every packet of its link (UDP and TCP) and releases them in order when
//!   the link is unclogged.
//! - A reset (a fault, a crash, or a close with unread data) reaches both ends at once: the
//!   reset's own packet is not modelled, so a reset is never lost or delayed.
//! - [`Net::crash_node`] removes every socket of the node at once: its pending operations
//!   and undelivered completions vanish (the process is gone), its connections reset, and
//!   datagrams in flight to it are lost. The node is at once usable again as a rebooted
//!   host; the world decides when its processes submit again.
//! - TCP flow control is a window: a segment is sent only when the receiver's buffer has
//!   room for it and everything already in flight, so data never arrives to a full buffer.
//!   Window updates reach the sender at once (their latency is not modelled).
//! - A cancelled operation completes with `Failed(TimedOut)`, because the world cancels
//!   when an operation's deadline passes.
//!
//! # What this is not
//!
//! No wire format, IPv6, congestion control, Nagle, TIME_WAIT, half-close (`shutdown`),
//! socket options or multicast. It is not yet wired into the world: the world will feed it
//! I/O submissions, its fault knobs and its clock.

mod accounting;
mod faults;
mod link;
mod ports;
mod tcp;
mod udp;

use core::fmt;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tina::io::{IoError, IoHandle, IoOpKind, IoResult};

use crate::prng::{PrngTree, Seed, Stream};

pub use accounting::{Accounting, UDP_DROP_REASONS, UdpDrop};
pub use faults::{DELAY_NS_LIMIT, NET_FAULT_KINDS, NetEvent, NetFaultKind, NetFaults};

use accounting::Tally;
use faults::FaultLog;
use link::Links;
use ports::{NodePorts, Protocol};
use tcp::{Conn, ConnId};
use udp::Flight;

/// Most nodes a network holds: addresses run from `10.0.0.1` to `10.0.0.254`.
pub const NODE_COUNT_MAX: u16 = 254;
/// Most open sockets per node (listeners, connections including those waiting in a
/// backlog, UDP sockets); beyond it, opening fails with `IoError::Other`.
pub const SOCKETS_PER_NODE_MAX: usize = 1024;
/// Most TCP connections in the whole network, including those still connecting.
pub const CONNECTIONS_MAX: usize = 4096;
/// Largest listen backlog; a larger request is clamped to it, and 0 counts as 1.
pub const BACKLOG_MAX: u32 = 128;
/// Largest configurable TCP send or receive buffer, in bytes.
pub const STREAM_BUFFER_SIZE_MAX: u32 = 1 << 20;
/// Largest TCP segment payload (an Ethernet MSS).
pub const SEGMENT_SIZE_MAX: usize = 1460;
/// Most TCP segments in flight per direction of a connection.
pub const SEGMENTS_IN_FLIGHT_MAX: usize = 64;
/// Most retransmissions one TCP packet takes.
pub const RETRANSMITS_PER_SEGMENT_MAX: u32 = 8;
/// How often a TCP handshake packet that meets a cut or clogged link is tried again.
pub const HANDSHAKE_RETRY_NS: u64 = 200_000_000;
/// Largest UDP payload (IPv4's limit); a larger datagram fails with `InvalidInput`.
pub const DATAGRAM_SIZE_MAX: usize = 65_507;
/// Largest configurable receive queue of a UDP socket, in datagrams.
pub const UDP_QUEUE_DATAGRAMS_MAX: u32 = 1024;
/// Most UDP datagrams in flight in the whole network; beyond it they are dropped, counted.
pub const DATAGRAMS_IN_FLIGHT_MAX: usize = 4096;
/// Most bits one corruption flips.
pub const CORRUPT_BITS_MAX: u64 = 3;
/// Most pending operations in the whole network; beyond it, starting one fails with
/// `IoError::Other`.
pub const PENDING_OPS_MAX: usize = 4096;
/// Most fault events kept until `drain_events`; later ones are counted, not kept.
pub const EVENTS_MAX: usize = 4096;
/// Most timers one `poll` (or `start`) fires; any left over stay due, and
/// `next_deadline` says so.
pub const TIMERS_PER_ADVANCE_MAX: usize = 1 << 20;
/// The first ephemeral port (IANA's dynamic range runs from here to 65535).
pub const EPHEMERAL_PORT_MIN: u16 = 49_152;

const _: () = assert!(NODE_COUNT_MAX <= 254, "node addresses are 10.0.0.1 to 10.0.0.254");
const _: () = assert!(SEGMENT_SIZE_MAX as u32 <= STREAM_BUFFER_SIZE_MAX);
const _: () = assert!(DATAGRAM_SIZE_MAX <= u32::MAX as usize);
const _: () = assert!(STREAM_BUFFER_SIZE_MAX as usize <= u32::MAX as usize);

/// The IPv4 address of node `node`: `10.0.0.(node + 1)`. Only meaningful for
/// `node < NODE_COUNT_MAX`.
pub const fn node_ip(node: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, (node as u8).wrapping_add(1))
}

/// The node whose address is `ip`, among `node_count` nodes.
fn node_of(ip: Ipv4Addr, node_count: u16) -> Option<u16> {
    let [a, b, c, d] = ip.octets();
    let node = u16::from(d).checked_sub(1)?;
    ((a, b, c) == (10, 0, 0) && node < node_count).then_some(node)
}

/// The sizes a network is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The knobs of every link not given its own with [`Net::set_link_faults`].
    pub faults: NetFaults,
    /// Bytes a TCP socket buffers between `send` and the wire.
    pub send_buffer_size: u32,
    /// Bytes a TCP socket buffers between the wire and `recv` (the flow-control window).
    pub receive_buffer_size: u32,
    /// Datagrams a UDP socket queues before dropping new ones.
    pub udp_queue_datagrams: u32,
    /// How long a TCP connect waits for an answer before failing with `TimedOut`.
    pub connect_timeout_ns: u64,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            faults: NetFaults::HEALTHY,
            send_buffer_size: 64 * 1024,
            receive_buffer_size: 64 * 1024,
            udp_queue_datagrams: 64,
            connect_timeout_ns: 10_000_000_000,
        }
    }
}

impl NetConfig {
    /// Checks every size against its limit and every knob.
    pub fn validate(&self) -> Result<(), NetError> {
        let sizes = [
            ("send_buffer_size", self.send_buffer_size, STREAM_BUFFER_SIZE_MAX),
            ("receive_buffer_size", self.receive_buffer_size, STREAM_BUFFER_SIZE_MAX),
            ("udp_queue_datagrams", self.udp_queue_datagrams, UDP_QUEUE_DATAGRAMS_MAX),
        ];
        for (name, value, max) in sizes {
            if value == 0 || value > max {
                return Err(NetError::BadSize {
                    name,
                    value: u64::from(value),
                    max: u64::from(max),
                });
            }
        }
        if self.connect_timeout_ns == 0 || self.connect_timeout_ns > DELAY_NS_LIMIT {
            return Err(NetError::BadSize {
                name: "connect_timeout_ns",
                value: self.connect_timeout_ns,
                max: DELAY_NS_LIMIT,
            });
        }
        self.faults.validate()
    }
}

/// Why the network refused a call: always the caller's input, never an internal state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The node count is 0 or above [`NODE_COUNT_MAX`].
    NodeCount {
        /// The count given.
        node_count: u16,
    },
    /// The node does not exist.
    NoSuchNode {
        /// The node given.
        node: u16,
        /// How many nodes there are.
        node_count: u16,
    },
    /// A node cannot be cut or clogged from itself.
    SelfLink {
        /// The node given twice.
        node: u16,
    },
    /// A size is 0 or above its limit.
    BadSize {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: u64,
        /// Its limit.
        max: u64,
    },
    /// A fault knob is out of range.
    BadFaults {
        /// The knob (a range's common prefix).
        knob: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::NodeCount { node_count } => {
                write!(f, "{node_count} nodes: a network has 1 to {NODE_COUNT_MAX}")
            }
            NetError::NoSuchNode { node, node_count } => {
                write!(f, "no node {node}: the network has {node_count} nodes")
            }
            NetError::SelfLink { node } => write!(f, "node {node} cannot be cut from itself"),
            NetError::BadSize { name, value, max } => {
                write!(f, "{name} = {value}: it must be between 1 and {max}")
            }
            NetError::BadFaults { knob, reason } => write!(f, "fault knob {knob}: {reason}"),
        }
    }
}

impl std::error::Error for NetError {}

/// One operation, as the world hands it over. Bytes to send are borrowed and copied in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetOp<'a> {
    /// Open a listening TCP socket.
    TcpListen {
        /// Local address.
        addr: SocketAddr,
        /// Pending-connection queue length (clamped to `1..=BACKLOG_MAX`).
        backlog: u32,
    },
    /// Accept one connection.
    TcpAccept {
        /// The listener.
        listener: IoHandle,
    },
    /// Connect to a remote address.
    TcpConnect {
        /// Remote address.
        addr: SocketAddr,
    },
    /// Send bytes on a connection (the completion may say fewer were taken).
    TcpSend {
        /// The connected socket.
        socket: IoHandle,
        /// The bytes.
        data: &'a [u8],
    },
    /// Receive at most `len_max` bytes (at least 1).
    TcpRecv {
        /// The connected socket.
        socket: IoHandle,
        /// Upper bound.
        len_max: u32,
    },
    /// Open a UDP socket.
    UdpBind {
        /// Local address.
        addr: SocketAddr,
    },
    /// Send one datagram.
    UdpSendTo {
        /// The socket.
        socket: IoHandle,
        /// Destination.
        addr: SocketAddr,
        /// The payload, at most [`DATAGRAM_SIZE_MAX`] bytes.
        data: &'a [u8],
    },
    /// Receive one datagram, truncated to `len_max` bytes (at least 1).
    UdpRecvFrom {
        /// The socket.
        socket: IoHandle,
        /// Upper bound.
        len_max: u32,
    },
    /// Close a socket.
    Close {
        /// What to close.
        handle: IoHandle,
    },
}

impl NetOp<'_> {
    /// Which operation this is, in the runtime's vocabulary.
    pub fn kind(&self) -> IoOpKind {
        match self {
            NetOp::TcpListen { .. } => IoOpKind::TcpListen,
            NetOp::TcpAccept { .. } => IoOpKind::TcpAccept,
            NetOp::TcpConnect { .. } => IoOpKind::TcpConnect,
            NetOp::TcpSend { .. } => IoOpKind::TcpSend,
            NetOp::TcpRecv { .. } => IoOpKind::TcpRecv,
            NetOp::UdpBind { .. } => IoOpKind::UdpBind,
            NetOp::UdpSendTo { .. } => IoOpKind::UdpSendTo,
            NetOp::UdpRecvFrom { .. } => IoOpKind::UdpRecvFrom,
            NetOp::Close { .. } => IoOpKind::Close,
        }
    }
}

/// Names a pending operation. Never reused within one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(u64);

impl OpId {
    /// The raw number.
    pub const fn to_raw(self) -> u64 {
        self.0
    }
}

/// How a started operation went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Finished at once (bind, listen, close, a send that fit, any error found at once).
    Done(IoResult),
    /// Its completion comes through [`Net::poll`] (possibly at the current time, when it
    /// could be satisfied at once but carries received bytes).
    Pending(OpId),
}

/// A finished pending operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The operation.
    pub op: OpId,
    /// The node that started it.
    pub node: u16,
    /// The caller's token, as given to `start`.
    pub owner: u64,
    /// Which operation it was.
    pub kind: IoOpKind,
    /// What it produced.
    pub result: IoResult,
    /// Received bytes (for `Received`), at most the operation's `len_max`; empty otherwise.
    pub data: Vec<u8>,
}

/// Which way a partition or clog goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Both `a -> b` and `b -> a`.
    Both,
    /// Only `a -> b`: `b` still reaches `a`.
    OneWay,
}

/// What a pending operation waits for.
#[derive(Debug)]
enum Wait {
    /// A connection in a listener's backlog.
    Accept { listener: u32 },
    /// The handshake of a connection (`None`: the host is unroutable).
    Connect { conn: Option<ConnId> },
    /// Room in a send buffer, for these bytes (at most the buffer's size).
    Send { socket: u32, data: Vec<u8> },
    /// Bytes, EOF or a reset on a connection.
    Recv { socket: u32, len_max: u32 },
    /// A datagram on a UDP socket.
    RecvFrom { socket: u32, len_max: u32 },
}

/// A pending operation.
#[derive(Debug)]
struct Op {
    node: u16,
    owner: u64,
    kind: IoOpKind,
    wait: Wait,
}

/// Pending operations and finished ones not yet polled.
#[derive(Debug, Default)]
struct Pending {
    ops: BTreeMap<u64, Op>,
    ready: VecDeque<Completion>,
    next: u64,
}

impl Pending {
    /// Registers an operation, if the table has room.
    fn park(&mut self, node: u16, owner: u64, kind: IoOpKind, wait: Wait) -> Result<u64, IoError> {
        if self.ops.len() >= PENDING_OPS_MAX {
            return Err(IoError::Other);
        }
        self.next += 1;
        self.ops.insert(self.next, Op { node, owner, kind, wait });
        Ok(self.next)
    }

    /// Finishes pending operation `id`; its completion waits for the next poll.
    fn complete(&mut self, id: u64, result: IoResult, data: Vec<u8>) {
        let op = self.ops.remove(&id).expect("completing an operation that is pending");
        self.ready.push_back(Completion {
            op: OpId(id),
            node: op.node,
            owner: op.owner,
            kind: op.kind,
            result,
            data,
        });
    }
}

/// Something due at a virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// A UDP datagram reaches the far end of its link.
    Datagram { flight: u64 },
    /// TCP segments of one direction of a connection may be due.
    Segment { conn: ConnId, dir: usize },
    /// A connection's SYN reaches the server.
    Syn { conn: ConnId },
    /// The server's answer reaches the client.
    Answer { conn: ConnId },
    /// A connect's deadline.
    ConnectTimeout { op: u64 },
}

/// Timers by due time, then by scheduling order (so equal times fire first-in first-out).
#[derive(Debug, Default)]
struct Timers {
    map: BTreeMap<(u64, u64), Timer>,
    sequence: u64,
}

impl Timers {
    fn at(&mut self, due_ns: u64, timer: Timer) {
        self.sequence += 1;
        self.map.insert((due_ns, self.sequence), timer);
    }
}

/// A socket: which node owns it, its local address, and who waits on it.
#[derive(Debug)]
struct Socket {
    node: u16,
    local: SocketAddrV4,
    kind: SocketKind,
    /// Operations waiting for something to read or accept, first come first served.
    readers: VecDeque<u64>,
    /// Operations waiting for room to send, first come first served.
    writers: VecDeque<u64>,
}

#[derive(Debug)]
enum SocketKind {
    Udp { queue: VecDeque<udp::Datagram> },
    Listener { backlog: u32, queue: VecDeque<u32> },
    Stream { conn: ConnId, side: usize },
}

/// The virtual network. See the module documentation.
#[derive(Debug)]
pub struct Net {
    config: NetConfig,
    node_count: u16,
    now_ns: u64,
    ports: Vec<NodePorts>,
    sockets: BTreeMap<u32, Socket>,
    next_handle: u32,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    flights: BTreeMap<u64, Flight>,
    next_flight: u64,
    pending: Pending,
    timers: Timers,
    links: Links,
    log: FaultLog,
    tally: Tally,
}

impl Net {
    /// A network of `node_count` nodes with no socket open, every draw derived from `seed`.
    pub fn new(node_count: u16, config: NetConfig, seed: Seed) -> Result<Net, NetError> {
        if node_count == 0 || node_count > NODE_COUNT_MAX {
            return Err(NetError::NodeCount { node_count });
        }
        config.validate()?;
        Ok(Net {
            config,
            node_count,
            now_ns: 0,
            ports: (0..node_count).map(|_| NodePorts::default()).collect(),
            sockets: BTreeMap::new(),
            next_handle: 0,
            conns: BTreeMap::new(),
            next_conn: 0,
            flights: BTreeMap::new(),
            next_flight: 0,
            pending: Pending::default(),
            timers: Timers::default(),
            links: Links::new(PrngTree::new(seed), config.faults),
            log: FaultLog::default(),
            tally: Tally::default(),
        })
    }

    /// How many nodes the network has.
    pub fn node_count(&self) -> u16 {
        self.node_count
    }

    /// The virtual time of the latest call (time never runs backwards here: an earlier
    /// `now_ns` is read as this one).
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Starts `op` for `node` at `now_ns` on behalf of `owner` (opaque here, returned in the
    /// completion). Timers due by `now_ns` fire first. An unknown node is `InvalidInput`.
    pub fn start(&mut self, now_ns: u64, node: u16, owner: u64, op: NetOp<'_>) -> Start {
        self.advance(now_ns);
        if node >= self.node_count {
            return Start::Done(IoResult::Failed(IoError::InvalidInput));
        }
        let started = match op {
            NetOp::UdpBind { addr } => self.udp_bind(node, addr).map(Start::Done),
            NetOp::UdpSendTo { socket, addr, data } => {
                self.udp_send_to(node, socket, addr, data).map(Start::Done)
            }
            NetOp::UdpRecvFrom { socket, len_max } => {
                self.udp_recv_from(node, owner, socket, len_max)
            }
            NetOp::TcpListen { addr, backlog } => {
                self.tcp_listen(node, addr, backlog).map(Start::Done)
            }
            NetOp::TcpConnect { addr } => self.tcp_connect(node, owner, addr),
            NetOp::TcpAccept { listener } => self.tcp_accept(node, owner, listener),
            NetOp::TcpSend { socket, data } => self.tcp_send(node, owner, socket, data),
            NetOp::TcpRecv { socket, len_max } => self.tcp_recv(node, owner, socket, len_max),
            NetOp::Close { handle } => self.close(node, handle).map(Start::Done),
        };
        started.unwrap_or_else(|error| Start::Done(IoResult::Failed(error)))
    }

    /// When something is next due: now, if completions wait to be polled.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.pending.ready.is_empty() {
            return Some(self.now_ns);
        }
        self.timers.map.first_key_value().map(|(&(due_ns, _), _)| due_ns)
    }

    /// Fires every timer due by `now_ns` and appends every finished operation to `out`, in
    /// the order they finished.
    pub fn poll(&mut self, now_ns: u64, out: &mut Vec<Completion>) {
        self.advance(now_ns);
        out.extend(self.pending.ready.drain(..));
    }

    /// Finishes pending operation `op` with `Failed(TimedOut)` and returns its completion
    /// here (not through `poll`); `None` if it is not pending (finished, or never started).
    pub fn cancel(&mut self, op: OpId) -> Option<Completion> {
        let pending = self.pending.ops.get(&op.0)?;
        match pending.wait {
            Wait::Accept { listener: socket }
            | Wait::Recv { socket, .. }
            | Wait::RecvFrom { socket, .. }
            | Wait::Send { socket, .. } => {
                if let Some(socket) = self.sockets.get_mut(&socket) {
                    socket.readers.retain(|&id| id != op.0);
                    socket.writers.retain(|&id| id != op.0);
                }
            }
            Wait::Connect { conn } => self.abandon_connect(conn),
        }
        self.pending.complete(op.0, IoResult::Failed(IoError::TimedOut), Vec::new());
        self.pending.ready.pop_back()
    }

    /// Fires timers due by `now_ns`, each at its own time, within one budget.
    fn advance(&mut self, now_ns: u64) {
        let now_ns = now_ns.max(self.now_ns);
        for _ in 0..TIMERS_PER_ADVANCE_MAX {
            let due = self.timers.map.first_key_value().map(|(&(due_ns, _), _)| due_ns);
            if due.is_none_or(|due_ns| due_ns > now_ns) {
                break;
            }
            let Some(((due_ns, _), timer)) = self.timers.map.pop_first() else { break };
            self.now_ns = self.now_ns.max(due_ns);
            self.fire(timer);
        }
        self.now_ns = now_ns;
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Datagram { flight } => self.datagram_arrives(flight),
            Timer::Segment { conn, dir } => self.segments_arrive(conn, dir),
            Timer::Syn { conn } => self.syn_arrives(conn),
            Timer::Answer { conn } => self.answer_arrives(conn),
            Timer::ConnectTimeout { op } => self.connect_times_out(op),
        }
    }

    /// Closes `handle`: a UDP socket drops its queue, a listener resets the connections in
    /// its backlog, a connection sends FIN after its queued data (or resets, when unread data
    /// waits). Operations waiting on it fail with `ConnectionAborted`.
    fn close(&mut self, node: u16, handle: IoHandle) -> Result<IoResult, IoError> {
        let raw = self.socket(node, handle)?;
        let socket = self.drop_socket(raw).expect("looked up");
        for &op in socket.readers.iter().chain(socket.writers.iter()) {
            self.pending.complete(op, IoResult::Failed(IoError::ConnectionAborted), Vec::new());
        }
        match socket.kind {
            SocketKind::Udp { queue } => {
                self.tally.udp_dropped[UdpDrop::Closed as usize] += queue.len() as u64;
            }
            SocketKind::Listener { queue, .. } => self.close_backlog(queue),
            SocketKind::Stream { conn, side } => self.close_stream(conn, side),
        }
        Ok(IoResult::Done)
    }

    /// The raw handle of `node`'s open socket `handle`; another node's socket, a closed one
    /// or one never opened is `InvalidHandle`.
    fn socket(&self, node: u16, handle: IoHandle) -> Result<u32, IoError> {
        match self.sockets.get(&handle.to_raw()) {
            Some(socket) if socket.node == node => Ok(handle.to_raw()),
            _ => Err(IoError::InvalidHandle),
        }
    }

    /// Opens a socket on `node` if the node's table has room.
    fn open_socket(
        &mut self,
        node: u16,
        local: SocketAddrV4,
        kind: SocketKind,
    ) -> Result<u32, IoError> {
        if !self.socket_room(node) {
            return Err(IoError::Other);
        }
        self.next_handle = self.next_handle.checked_add(1).ok_or(IoError::Other)?;
        let socket =
            Socket { node, local, kind, readers: VecDeque::new(), writers: VecDeque::new() };
        self.sockets.insert(self.next_handle, socket);
        self.ports[usize::from(node)].socket_count += 1;
        Ok(self.next_handle)
    }

    /// Removes socket `raw` from the table and frees its port; its waiting operations are
    /// the caller's to finish.
    fn drop_socket(&mut self, raw: u32) -> Option<Socket> {
        let socket = self.sockets.remove(&raw)?;
        let ports = &mut self.ports[usize::from(socket.node)];
        ports.socket_count -= 1;
        let protocol = match socket.kind {
            SocketKind::Udp { .. } => Protocol::Udp,
            SocketKind::Listener { .. } | SocketKind::Stream { .. } => Protocol::Tcp,
        };
        ports.free(protocol, socket.local.port(), raw);
        Some(socket)
    }

    /// Whether `node` has room for one more socket.
    fn socket_room(&self, node: u16) -> bool {
        self.ports[usize::from(node)].socket_count < SOCKETS_PER_NODE_MAX
    }

    /// The local address `addr` names on `node`: its own address or `0.0.0.0`, else
    /// `AddrNotAvailable`.
    fn local_ip(&self, node: u16, addr: SocketAddr) -> Result<Ipv4Addr, IoError> {
        match addr {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() || *v4.ip() == node_ip(node) => {
                Ok(node_ip(node))
            }
            _ => Err(IoError::AddrNotAvailable),
        }
    }

    /// The node a remote address names, if any node has it.
    fn route(&self, addr: SocketAddr) -> Option<(u16, SocketAddrV4)> {
        match addr {
            SocketAddr::V4(v4) => node_of(*v4.ip(), self.node_count).map(|node| (node, v4)),
            SocketAddr::V6(_) => None,
        }
    }

    /// Checks a node index a fault method was given.
    fn check_node(&self, node: u16) -> Result<(), NetError> {
        if node < self.node_count {
            Ok(())
        } else {
            Err(NetError::NoSuchNode { node, node_count: self.node_count })
        }
    }

    /// The directed links `a -> b` (and `b -> a` for `Both`), after checking both nodes.
    fn pairs(&self, a: u16, b: u16, direction: Direction) -> Result<Vec<(u16, u16)>, NetError> {
        self.check_node(a)?;
        self.check_node(b)?;
        if a == b {
            return Err(NetError::SelfLink { node: a });
        }
        Ok(match direction {
            Direction::Both => vec![(a, b), (b, a)],
            Direction::OneWay => vec![(a, b)],
        })
    }

    /// Gives the link `from -> to` its own knobs (until changed again).
    pub fn set_link_faults(
        &mut self,
        from: u16,
        to: u16,
        faults: NetFaults,
    ) -> Result<(), NetError> {
        self.check_node(from)?;
        self.check_node(to)?;
        faults.validate()?;
        self.links.get(from, to).faults = faults;
        Ok(())
    }

    /// Cuts `a -> b` (and `b -> a` for `Both`). Counted as one `net-partition`.
    pub fn partition(&mut self, a: u16, b: u16, direction: Direction) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, direction)? {
            self.links.get(from, to).cut = true;
        }
        self.log.inject(self.now_ns, NetFaultKind::Partition, a, b);
        Ok(())
    }

    /// Cuts every link to and from `node`. Counted as one `net-partition`.
    pub fn isolate(&mut self, node: u16) -> Result<(), NetError> {
        self.check_node(node)?;
        for other in (0..self.node_count).filter(|&other| other != node) {
            self.links.get(node, other).cut = true;
            self.links.get(other, node).cut = true;
        }
        self.log.inject(self.now_ns, NetFaultKind::Partition, node, node);
        Ok(())
    }

    /// Heals `a <-> b` in both directions; waiting TCP segments move on.
    pub fn heal(&mut self, a: u16, b: u16) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, Direction::Both)? {
            self.links.get(from, to).cut = false;
        }
        self.wake_streams();
        Ok(())
    }

    /// Heals every partition; waiting TCP segments move on.
    pub fn heal_all(&mut self) {
        for link in self.links.all_mut() {
            link.cut = false;
        }
        self.wake_streams();
    }

    /// Clogs `a -> b` (and `b -> a` for `Both`): packets wait on it. Counted as one
    /// `net-clog`.
    pub fn clog(&mut self, a: u16, b: u16, direction: Direction) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, direction)? {
            self.links.get(from, to).clogged = true;
        }
        self.log.inject(self.now_ns, NetFaultKind::Clog, a, b);
        Ok(())
    }

    /// Unclogs `a -> b` (and `b -> a` for `Both`), releasing what it held, in order.
    pub fn unclog(&mut self, a: u16, b: u16, direction: Direction) -> Result<(), NetError> {
        for (from, to) in self.pairs(a, b, direction)? {
            self.links.get(from, to).clogged = false;
            self.release_held(from, to);
        }
        self.wake_streams();
        Ok(())
    }

    /// Unclogs every link, releasing what each held, in order.
    pub fn unclog_all(&mut self) {
        let mut clogged = Vec::new();
        for link in self.links.all_mut().filter(|link| link.clogged) {
            link.clogged = false;
            clogged.push((link.from, link.to));
        }
        for (from, to) in clogged {
            self.release_held(from, to);
        }
        self.wake_streams();
    }

    /// Resets one established connection drawn with `stream`; false if there is none.
    /// Counted as `net-reset`.
    pub fn reset_random_connection(&mut self, stream: &mut Stream) -> bool {
        let established: Vec<ConnId> =
            self.conns.iter().filter(|(_, conn)| conn.established()).map(|(&id, _)| id).collect();
        if established.is_empty() {
            return false;
        }
        let id = established[stream.choose_index(established.len())];
        let nodes = self.conns[&id].nodes;
        self.log.inject(self.now_ns, NetFaultKind::Reset, nodes[0], nodes[1]);
        self.reset(id, tcp::Discard::Reset);
        true
    }

    /// Crashes `node`: every socket of it is gone at once. Its pending operations and
    /// unpolled completions vanish without a completion, its connections reset (their
    /// peers' operations fail with `ConnectionReset`), and datagrams in flight to it are lost.
    pub fn crash_node(&mut self, node: u16) -> Result<(), NetError> {
        self.check_node(node)?;
        self.pending.ops.retain(|_, op| op.node != node);
        self.pending.ready.retain(|completion| completion.node != node);
        let touched: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.nodes.contains(&node))
            .map(|(&id, _)| id)
            .collect();
        for id in touched {
            self.crash_conn(id, node);
        }
        let mut udp_queued = 0;
        self.sockets.retain(|_, socket| {
            if socket.node != node {
                return true;
            }
            if let SocketKind::Udp { queue } = &socket.kind {
                udp_queued += queue.len() as u64;
            }
            false
        });
        self.tally.udp_dropped[UdpDrop::Crash as usize] += udp_queued;
        self.ports[usize::from(node)] = NodePorts::default();
        let before = self.flights.len();
        self.flights.retain(|_, flight| flight.to_node != node);
        self.tally.udp_dropped[UdpDrop::Crash as usize] += (before - self.flights.len()) as u64;
        Ok(())
    }

    /// Injections of `kind` so far.
    pub fn fault_count(&self, kind: NetFaultKind) -> u64 {
        self.log.count(kind)
    }

    /// Injections by kind, every kind in report order.
    pub fn fault_counts(&self) -> Vec<(&'static str, u64)> {
        NET_FAULT_KINDS.iter().map(|&kind| (kind.name(), self.log.count(kind))).collect()
    }

    /// Moves the fault events recorded since the last drain to `out`, oldest first.
    pub fn drain_events(&mut self, out: &mut Vec<NetEvent>) {
        self.log.drain(out);
    }

    /// Events that did not fit in the bounded list since the network was built.
    pub fn events_dropped(&self) -> u64 {
        self.log.events_dropped
    }

    /// Open sockets of `node` (0 for an unknown node).
    pub fn socket_count(&self, node: u16) -> usize {
        self.ports.get(usize::from(node)).map_or(0, |ports| ports.socket_count)
    }

    /// TCP connections the network holds (connecting, established or reset but still open).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Operations started and not yet finished.
    pub fn pending_count(&self) -> usize {
        self.pending.ops.len()
    }
}
