//! Each node's port tables (TCP and UDP are separate namespaces) and socket count.
//!
//! This module only books ports; sockets themselves live in the network's socket table.

use std::collections::BTreeMap;

use super::EPHEMERAL_PORT_MIN;

/// How many ephemeral ports there are: a search for a free one tries each at most once.
const EPHEMERAL_PORT_COUNT: u32 = u16::MAX as u32 - EPHEMERAL_PORT_MIN as u32 + 1;

/// The ports one node has bound, each naming its socket's raw handle.
#[derive(Debug, Default)]
pub(super) struct NodePorts {
    /// UDP sockets by port.
    pub udp: BTreeMap<u16, u32>,
    /// TCP listeners and connecting sockets by port (accepted connections share their
    /// listener's port and are not booked here).
    pub tcp: BTreeMap<u16, u32>,
    /// Where the next ephemeral search starts, as an offset from `EPHEMERAL_PORT_MIN`.
    next_ephemeral: u32,
    /// Open sockets of the node, including connections waiting in a backlog.
    pub socket_count: usize,
}

/// Which port table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    Udp,
    Tcp,
}

impl NodePorts {
    fn table(&mut self, protocol: Protocol) -> &mut BTreeMap<u16, u32> {
        match protocol {
            Protocol::Udp => &mut self.udp,
            Protocol::Tcp => &mut self.tcp,
        }
    }

    /// A free port: `port` itself if it is not 0 and free, or the first free ephemeral port
    /// from where the last search stopped. `None` if `port` is taken or none is free.
    pub fn choose(&mut self, protocol: Protocol, port: u16) -> Option<u16> {
        if port != 0 {
            return (!self.table(protocol).contains_key(&port)).then_some(port);
        }
        for _ in 0..EPHEMERAL_PORT_COUNT {
            let offset = self.next_ephemeral % EPHEMERAL_PORT_COUNT;
            self.next_ephemeral = offset + 1;
            // The offset is below the count, so the sum is at most u16::MAX.
            let candidate = (u32::from(EPHEMERAL_PORT_MIN) + offset) as u16;
            if !self.table(protocol).contains_key(&candidate) {
                return Some(candidate);
            }
        }
        None
    }

    /// Books `port` for socket `raw`.
    pub fn book(&mut self, protocol: Protocol, port: u16, raw: u32) {
        let previous = self.table(protocol).insert(port, raw);
        assert!(previous.is_none(), "port {port} booked twice");
    }

    /// Frees `port` if socket `raw` holds it.
    pub fn free(&mut self, protocol: Protocol, port: u16, raw: u32) {
        let table = self.table(protocol);
        if table.get(&port) == Some(&raw) {
            table.remove(&port);
        }
    }
}
