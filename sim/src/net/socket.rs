//! The socket table: which node owns each handle, its local address, who waits on it, and
//! the addresses a node may bind or reach.
//!
//! Handles are numbered across the whole network and never reused, so a closed handle or
//! another node's handle is `InvalidHandle`, never someone else's socket. Protocol behaviour
//! lives in `udp` and `tcp`.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tina::io::{IoError, IoHandle, IoResult};

use super::ports::Protocol;
use super::tcp::ConnId;
use super::{Net, SOCKETS_PER_NODE_MAX, UdpDrop, node_ip, node_of, udp};

/// A socket: which node owns it, its local address, and who waits on it.
#[derive(Debug)]
pub(super) struct Socket {
    pub node: u16,
    pub local: SocketAddrV4,
    pub kind: SocketKind,
    /// Operations waiting for something to read or accept, first come first served.
    pub readers: VecDeque<u64>,
    /// Operations waiting for room to send, first come first served.
    pub writers: VecDeque<u64>,
}

#[derive(Debug)]
pub(super) enum SocketKind {
    Udp { queue: VecDeque<udp::Datagram> },
    Listener { backlog: u32, queue: VecDeque<u32> },
    Stream { conn: ConnId, side: usize },
}

impl Net {
    /// Closes `handle`: a UDP socket drops its queue, a listener resets the connections in
    /// its backlog, a connection sends FIN after its queued data (or resets, when unread data
    /// waits). Operations waiting on it fail with `ConnectionAborted`.
    pub(super) fn close(&mut self, node: u16, handle: IoHandle) -> Result<IoResult, IoError> {
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
    pub(super) fn socket(&self, node: u16, handle: IoHandle) -> Result<u32, IoError> {
        match self.sockets.get(&handle.to_raw()) {
            Some(socket) if socket.node == node => Ok(handle.to_raw()),
            _ => Err(IoError::InvalidHandle),
        }
    }

    /// Opens a socket on `node` if the node's table has room.
    pub(super) fn open_socket(
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
    pub(super) fn drop_socket(&mut self, raw: u32) -> Option<Socket> {
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
    pub(super) fn socket_room(&self, node: u16) -> bool {
        self.ports[usize::from(node)].socket_count < SOCKETS_PER_NODE_MAX
    }

    /// The local address `addr` names on `node`: its own address or `0.0.0.0`, else
    /// `AddrNotAvailable`.
    pub(super) fn local_ip(&self, node: u16, addr: SocketAddr) -> Result<Ipv4Addr, IoError> {
        match addr {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() || *v4.ip() == node_ip(node) => {
                Ok(node_ip(node))
            }
            _ => Err(IoError::AddrNotAvailable),
        }
    }

    /// The node a remote address names, if any node has it.
    pub(super) fn route(&self, addr: SocketAddr) -> Option<(u16, SocketAddrV4)> {
        match addr {
            SocketAddr::V4(v4) => node_of(*v4.ip(), self.node_count).map(|node| (node, v4)),
            SocketAddr::V6(_) => None,
        }
    }
}
