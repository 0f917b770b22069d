//! Byte and datagram accounting: every byte a TCP send accepts and every UDP datagram sent
//! ends in exactly one bucket, and [`Net::check_accounting`] proves the sums at any moment.
//!
//! The counters only grow; the live buckets (buffered bytes, queued and in-flight
//! datagrams) are measured from the state when asked. This is a checker's view, not a
//! statistic the model consults.

use super::Net;
use super::socket::SocketKind;

/// Why a UDP datagram did not reach a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum UdpDrop {
    /// The loss knob fired.
    Loss = 0,
    /// Its link was cut when it was sent or when it arrived.
    Partition = 1,
    /// No node has the destination address.
    Unroutable = 2,
    /// The destination socket's queue was full.
    QueueFull = 3,
    /// Nothing was bound at the destination port.
    NoSocket = 4,
    /// The destination node crashed while it flew or waited in a queue.
    Crash = 5,
    /// Its socket was closed while it waited in the queue.
    Closed = 6,
    /// The network already had `DATAGRAMS_IN_FLIGHT_MAX` datagrams in flight.
    InFlightFull = 7,
}

/// Every drop reason, in report order.
pub const UDP_DROP_REASONS: [UdpDrop; 8] = [
    UdpDrop::Loss,
    UdpDrop::Partition,
    UdpDrop::Unroutable,
    UdpDrop::QueueFull,
    UdpDrop::NoSocket,
    UdpDrop::Crash,
    UdpDrop::Closed,
    UdpDrop::InFlightFull,
];

impl UdpDrop {
    /// Kebab-case name.
    pub const fn name(self) -> &'static str {
        match self {
            UdpDrop::Loss => "loss",
            UdpDrop::Partition => "partition",
            UdpDrop::Unroutable => "unroutable",
            UdpDrop::QueueFull => "queue-full",
            UdpDrop::NoSocket => "no-socket",
            UdpDrop::Crash => "crash",
            UdpDrop::Closed => "closed",
            UdpDrop::InFlightFull => "in-flight-full",
        }
    }
}

/// The counters the network keeps as it goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub tcp_bytes_accepted: u64,
    pub tcp_bytes_delivered: u64,
    pub tcp_bytes_discarded_reset: u64,
    pub tcp_bytes_discarded_crash: u64,
    pub tcp_bytes_discarded_close: u64,
    pub udp_sent: u64,
    pub udp_duplicates: u64,
    pub udp_delivered: u64,
    pub udp_dropped: [u64; UDP_DROP_REASONS.len()],
}

impl Tally {
    pub fn udp_drop(&mut self, reason: UdpDrop) {
        self.udp_dropped[reason as usize] += 1;
    }
}

/// Where every byte and datagram is, at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accounting {
    /// Bytes TCP sends took into send buffers.
    pub tcp_bytes_accepted: u64,
    /// Bytes TCP receives returned.
    pub tcp_bytes_delivered: u64,
    /// Bytes in send buffers, in flight or in receive buffers now.
    pub tcp_bytes_buffered: u64,
    /// Bytes discarded because their connection was reset (a fault, a close with unread
    /// data, data reaching a closed socket, an abandoned connect).
    pub tcp_bytes_discarded_reset: u64,
    /// Bytes discarded because a node crashed.
    pub tcp_bytes_discarded_crash: u64,
    /// Bytes discarded because both ends closed before they could be read.
    pub tcp_bytes_discarded_close: u64,
    /// Datagrams `sendto` took.
    pub udp_sent: u64,
    /// Extra copies the duplicate knob made.
    pub udp_duplicates: u64,
    /// Datagrams `recvfrom` returned.
    pub udp_delivered: u64,
    /// Datagrams waiting in socket queues now.
    pub udp_queued: u64,
    /// Datagrams in flight or held by a clog now.
    pub udp_in_flight: u64,
    /// Datagrams dropped, by reason (indexed by `UdpDrop as usize`).
    pub udp_dropped: [u64; UDP_DROP_REASONS.len()],
}

impl Accounting {
    /// Datagrams dropped for every reason.
    pub fn udp_dropped_total(&self) -> u64 {
        self.udp_dropped.iter().sum()
    }

    /// Datagrams dropped for `reason`.
    pub fn udp_dropped(&self, reason: UdpDrop) -> u64 {
        self.udp_dropped[reason as usize]
    }
}

impl Net {
    /// Where every byte and datagram is now.
    pub fn accounting(&self) -> Accounting {
        let tally = self.tally;
        let tcp_bytes_buffered = self.conns.values().map(|conn| conn.buffered_bytes()).sum();
        let udp_queued = self
            .sockets
            .values()
            .map(|socket| match &socket.kind {
                SocketKind::Udp { queue } => queue.len() as u64,
                _ => 0,
            })
            .sum();
        Accounting {
            tcp_bytes_accepted: tally.tcp_bytes_accepted,
            tcp_bytes_delivered: tally.tcp_bytes_delivered,
            tcp_bytes_buffered,
            tcp_bytes_discarded_reset: tally.tcp_bytes_discarded_reset,
            tcp_bytes_discarded_crash: tally.tcp_bytes_discarded_crash,
            tcp_bytes_discarded_close: tally.tcp_bytes_discarded_close,
            udp_sent: tally.udp_sent,
            udp_duplicates: tally.udp_duplicates,
            udp_delivered: tally.udp_delivered,
            udp_queued,
            udp_in_flight: self.flights.len() as u64,
            udp_dropped: tally.udp_dropped,
        }
    }

    /// Checks that every TCP byte accepted and every datagram sent is in exactly one bucket,
    /// and that no buffer exceeds its size; the message says which sum is off.
    pub fn check_accounting(&self) -> Result<(), String> {
        let a = self.accounting();
        let tcp_out = a.tcp_bytes_delivered
            + a.tcp_bytes_buffered
            + a.tcp_bytes_discarded_reset
            + a.tcp_bytes_discarded_crash
            + a.tcp_bytes_discarded_close;
        if a.tcp_bytes_accepted != tcp_out {
            return Err(format!(
                "TCP: {} bytes accepted, but delivered + buffered + discarded = {tcp_out} ({a:?})",
                a.tcp_bytes_accepted
            ));
        }
        let udp_in = a.udp_sent + a.udp_duplicates;
        let udp_out = a.udp_delivered + a.udp_queued + a.udp_in_flight + a.udp_dropped_total();
        if udp_in != udp_out {
            return Err(format!(
                "UDP: {udp_in} datagrams sent (with duplicates), but delivered + queued + in \
                 flight + dropped = {udp_out} ({a:?})"
            ));
        }
        for (id, conn) in &self.conns {
            conn.check(id, self.config.send_buffer_size, self.config.receive_buffer_size)?;
        }
        Ok(())
    }

    /// [`Net::check_accounting`], panicking with its message.
    pub fn assert_accounting(&self) {
        if let Err(message) = self.check_accounting() {
            panic!("network accounting: {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tina::io::IoResult;

    use crate::net::{Net, NetConfig, NetOp, Start, node_ip};
    use crate::prng::Seed;

    fn udp(net: &mut Net, node: u16, port: u16) -> tina::io::IoHandle {
        let addr = SocketAddr::from((node_ip(node), port));
        let Start::Done(IoResult::Opened(handle)) = net.start(0, node, 0, NetOp::UdpBind { addr })
        else {
            panic!("bind failed")
        };
        handle
    }

    /// Canary: the checker fires when a datagram or a TCP byte goes missing from the books.
    #[test]
    fn check_accounting_catches_a_missing_datagram_or_byte() {
        let mut net = Net::new(2, NetConfig::default(), Seed::new(1)).unwrap();
        let socket = udp(&mut net, 0, 1);
        udp(&mut net, 1, 1);
        let to = SocketAddr::from((node_ip(1), 1));
        net.start(0, 0, 0, NetOp::UdpSendTo { socket, addr: to, data: b"x" });
        assert_eq!(net.check_accounting(), Ok(()));
        net.tally.udp_delivered += 1;
        assert!(net.check_accounting().unwrap_err().starts_with("UDP"));
        net.tally.udp_delivered -= 1;
        net.tally.tcp_bytes_accepted += 1;
        assert!(net.check_accounting().unwrap_err().starts_with("TCP"));
    }
}
