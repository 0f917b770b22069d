//! Operations: what the world starts ([`NetOp`]), how a start went ([`Start`]), what a
//! finished operation reports ([`Completion`]), and the table of pending ones.
//!
//! This module books operations; the protocol modules decide when they finish.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use tina::io::{IoError, IoHandle, IoOpKind, IoResult};

use super::PENDING_OPS_MAX;
use super::tcp::ConnId;

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
        /// The payload, at most [`DATAGRAM_SIZE_MAX`](super::DATAGRAM_SIZE_MAX) bytes.
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
pub struct OpId(pub(super) u64);

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
    /// Its completion comes through [`Net::poll`](super::Net::poll) (possibly at the current time, when it
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

/// What a pending operation waits for.
#[derive(Debug)]
pub(super) enum Wait {
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
pub(super) struct Op {
    pub node: u16,
    pub owner: u64,
    pub kind: IoOpKind,
    pub wait: Wait,
}

/// Pending operations and finished ones not yet polled.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub ops: BTreeMap<u64, Op>,
    pub ready: VecDeque<Completion>,
    next: u64,
}

impl Pending {
    /// Registers an operation, if the table has room.
    pub fn park(
        &mut self,
        node: u16,
        owner: u64,
        kind: IoOpKind,
        wait: Wait,
    ) -> Result<u64, IoError> {
        if self.ops.len() >= PENDING_OPS_MAX {
            return Err(IoError::Other);
        }
        self.next += 1;
        self.ops.insert(self.next, Op { node, owner, kind, wait });
        Ok(self.next)
    }

    /// Finishes pending operation `id`; its completion waits for the next poll.
    pub fn complete(&mut self, id: u64, result: IoResult, data: Vec<u8>) {
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
