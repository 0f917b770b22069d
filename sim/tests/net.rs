//! The virtual network end to end, through its public sans-IO API only: UDP and TCP
//! semantics, every fault knob observed doing what it says, partitions, clogs, resets and
//! crashes, byte accounting at every step of randomized runs, and determinism.

use std::net::SocketAddr;

use tina::io::{IoError, IoHandle, IoResult};
use tina_sim::net::{
    Completion, DATAGRAM_SIZE_MAX, Direction, Net, NetConfig, NetError, NetEvent, NetFaultKind,
    NetFaults, NetOp, OpId, Start, UdpDrop, node_ip,
};
use tina_sim::prng::{PrngTree, Ratio, Scope, Seed, Stream};

/// The owner token every test passes; the network hands it back untouched.
const OWNER: u64 = 0xfeed;
/// Most timer steps one wait may take before the test calls it a hang.
const STEPS_MAX: usize = 200_000;
/// One millisecond of virtual time.
const MS: u64 = 1_000_000;

fn ratio(numerator: u32, denominator: u32) -> Ratio {
    Ratio::new(numerator, denominator).expect("a valid ratio")
}

fn addr(node: u16, port: u16) -> SocketAddr {
    SocketAddr::from((node_ip(node), port))
}

/// A stream for a test's own choices, apart from the network's.
fn test_stream(seed: u64, site: &str) -> Stream {
    PrngTree::new(Seed::new(seed)).stream(Scope::World, site)
}

/// A network under test, its virtual clock, and the completions not yet claimed.
struct Sim {
    net: Net,
    now: u64,
    done: Vec<Completion>,
}

impl Sim {
    fn new(nodes: u16, config: NetConfig, seed: u64) -> Sim {
        let net = Net::new(nodes, config, Seed::new(seed)).expect("a valid network");
        Sim { net, now: 0, done: Vec::new() }
    }

    fn start(&mut self, node: u16, op: NetOp<'_>) -> Start {
        let start = self.net.start(self.now, node, OWNER, op);
        self.net.assert_accounting();
        start
    }

    /// Starts an operation that must finish at once.
    fn done(&mut self, node: u16, op: NetOp<'_>) -> IoResult {
        match self.start(node, op) {
            Start::Done(result) => result,
            Start::Pending(id) => panic!("{id:?} is pending, expected it done at once"),
        }
    }

    /// Starts an operation that must wait.
    fn pending(&mut self, node: u16, op: NetOp<'_>) -> OpId {
        match self.start(node, op) {
            Start::Pending(id) => id,
            Start::Done(result) => panic!("done at once with {result:?}, expected pending"),
        }
    }

    /// Fires the next due timers; false when nothing is due ever.
    fn step(&mut self) -> bool {
        let Some(deadline) = self.net.next_deadline() else { return false };
        self.now = self.now.max(deadline);
        self.net.poll(self.now, &mut self.done);
        self.net.assert_accounting();
        true
    }

    /// Moves the clock to `now`, firing everything due by then.
    fn advance_to(&mut self, now: u64) {
        self.now = self.now.max(now);
        self.net.poll(self.now, &mut self.done);
        self.net.assert_accounting();
    }

    /// Runs until nothing is due.
    fn settle(&mut self) {
        for _ in 0..STEPS_MAX {
            if !self.step() {
                return;
            }
        }
        panic!("the network never settles");
    }

    /// Takes `op`'s completion if it has arrived.
    fn take(&mut self, op: OpId) -> Option<Completion> {
        let index = self.done.iter().position(|completion| completion.op == op)?;
        Some(self.done.remove(index))
    }

    /// Runs until `op` completes.
    fn wait(&mut self, op: OpId) -> Completion {
        for _ in 0..STEPS_MAX {
            if let Some(completion) = self.take(op) {
                assert_eq!(completion.owner, OWNER, "the owner token comes back untouched");
                return completion;
            }
            assert!(self.step(), "{op:?} waits forever");
        }
        panic!("{op:?} never completes");
    }

    fn udp(&mut self, node: u16, port: u16) -> IoHandle {
        match self.done(node, NetOp::UdpBind { addr: addr(node, port) }) {
            IoResult::Opened(handle) => handle,
            other => panic!("bind failed: {other:?}"),
        }
    }

    fn listen(&mut self, node: u16, port: u16, backlog: u32) -> IoHandle {
        match self.done(node, NetOp::TcpListen { addr: addr(node, port), backlog }) {
            IoResult::Opened(handle) => handle,
            other => panic!("listen failed: {other:?}"),
        }
    }

    /// Connects `client` to `server`'s listener on `port`; returns (client, server) sockets.
    fn connect(&mut self, client: u16, server: u16, port: u16) -> (IoHandle, IoHandle) {
        let listener = self.listen(server, port, 8);
        self.pair(client, server, port, listener)
    }

    fn pair(
        &mut self,
        client: u16,
        server: u16,
        port: u16,
        listener: IoHandle,
    ) -> (IoHandle, IoHandle) {
        let accept = self.pending(server, NetOp::TcpAccept { listener });
        let connect = self.pending(client, NetOp::TcpConnect { addr: addr(server, port) });
        let IoResult::Opened(client_socket) = self.wait(connect).result else {
            panic!("connect failed")
        };
        let IoResult::Accepted { socket, peer } = self.wait(accept).result else {
            panic!("accept failed")
        };
        assert_eq!(peer.ip(), node_ip(client), "the peer is the connecting node");
        (client_socket, socket)
    }

    /// Sends all of `data`, waiting as the send buffer allows; returns how many sends took
    /// fewer bytes than offered.
    fn send_all(&mut self, node: u16, socket: IoHandle, data: &[u8]) -> usize {
        let (mut sent, mut partial) = (0, 0);
        for _ in 0..STEPS_MAX {
            if sent == data.len() {
                return partial;
            }
            let result = match self.start(node, NetOp::TcpSend { socket, data: &data[sent..] }) {
                Start::Done(result) => result,
                Start::Pending(op) => self.wait(op).result,
            };
            let IoResult::Transferred(taken) = result else { panic!("send failed: {result:?}") };
            partial += usize::from((taken as usize) < data.len() - sent);
            sent += taken as usize;
        }
        panic!("send never finishes");
    }

    /// Receives until EOF or `len` bytes.
    fn recv_exact(&mut self, node: u16, socket: IoHandle, len: usize) -> Vec<u8> {
        let mut received = Vec::new();
        for _ in 0..STEPS_MAX {
            if received.len() >= len {
                break;
            }
            let op = self.pending(node, NetOp::TcpRecv { socket, len_max: 4096 });
            let completion = self.wait(op);
            let IoResult::Received { len, .. } = completion.result else {
                panic!("recv failed: {:?}", completion.result)
            };
            assert_eq!(len as usize, completion.data.len());
            if len == 0 {
                break;
            }
            received.extend(completion.data);
        }
        received
    }

    /// Sends one datagram from `socket` on `node`.
    fn send_to(&mut self, node: u16, socket: IoHandle, to: SocketAddr, data: &[u8]) {
        let result = self.done(node, NetOp::UdpSendTo { socket, addr: to, data });
        assert_eq!(result, IoResult::Transferred(data.len() as u32));
    }

    /// Every datagram queued or arriving at `socket` until the network settles.
    fn drain_udp(&mut self, node: u16, socket: IoHandle) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut received = Vec::new();
        for _ in 0..STEPS_MAX {
            let op = self.pending(node, NetOp::UdpRecvFrom { socket, len_max: 65_535 });
            self.settle();
            let Some(completion) = self.take(op) else {
                self.net.cancel(op).expect("still pending");
                return received;
            };
            let IoResult::Received { from: Some(from), .. } = completion.result else {
                panic!("recvfrom failed: {:?}", completion.result)
            };
            received.push((completion.data, from));
        }
        panic!("datagrams never stop");
    }
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut stream = test_stream(seed, "test.payload");
    (0..len).map(|_| stream.below(256) as u8).collect()
}

fn config(faults: NetFaults) -> NetConfig {
    NetConfig { faults, ..NetConfig::default() }
}

#[test]
fn udp_echo_between_two_nodes() {
    // A datagram goes from node 0 to node 1 and back, with its sender's address, after at
    // least the configured latency each way.
    let mut sim = Sim::new(2, config(NetFaults::fixed_latency(MS, MS)), 1);
    let a = sim.udp(0, 0);
    let b = sim.udp(1, 7000);
    sim.send_to(0, a, addr(1, 7000), b"ping");
    let recv = sim.pending(1, NetOp::UdpRecvFrom { socket: b, len_max: 100 });
    let got = sim.wait(recv);
    assert_eq!(got.data, b"ping");
    assert_eq!(sim.now, MS, "one-way latency is exactly 1 ms");
    let IoResult::Received { len: 4, from: Some(from) } = got.result else { panic!() };
    assert_eq!(from.ip(), node_ip(0));
    assert!(from.port() >= tina_sim::net::EPHEMERAL_PORT_MIN, "port 0 binds an ephemeral port");
    sim.send_to(1, b, from, b"pong");
    let recv = sim.pending(0, NetOp::UdpRecvFrom { socket: a, len_max: 2 });
    let got = sim.wait(recv);
    assert_eq!(got.data, b"po", "a datagram longer than len_max is truncated");
    assert_eq!(got.result, IoResult::Received { len: 2, from: Some(addr(1, 7000)) });
    assert_eq!(sim.now, 2 * MS);
}

/// Sends `count` numbered datagrams from node 0 to node 1 under `faults` and returns what
/// arrived, in arrival order, and the network.
fn udp_burst(faults: NetFaults, seed: u64, count: u32) -> (Vec<Vec<u8>>, Net) {
    let net_config = NetConfig { udp_queue_datagrams: 1024, ..config(faults) };
    let mut sim = Sim::new(2, net_config, seed);
    let a = sim.udp(0, 0);
    let b = sim.udp(1, 9);
    for index in 0..count {
        sim.advance_to(sim.now + 10_000);
        sim.send_to(0, a, addr(1, 9), &index.to_le_bytes());
    }
    let arrived = sim.drain_udp(1, b).into_iter().map(|(data, _)| data).collect();
    (arrived, sim.net)
}

#[test]
fn datagram_faults_are_each_observed_under_their_knob() {
    // Loss, duplication, reordering and corruption each show in what arrives (and in their
    // counters) when their knob is on, across seeds; with every knob off, datagrams arrive
    // exactly once, intact and in order.
    let plain = NetFaults::fixed_latency(100_000, 900_000);
    let sent: Vec<Vec<u8>> = (0..200u32).map(|index| index.to_le_bytes().to_vec()).collect();
    for seed in 0..8 {
        let (arrived, net) = udp_burst(plain, seed, 200);
        assert_eq!(arrived, sent, "no fault: in order, exactly once, intact (seed {seed})");
        assert!(net.fault_counts().iter().all(|&(_, count)| count == 0));

        let lossy = NetFaults { udp_loss_probability: ratio(1, 4), ..plain };
        let (arrived, net) = udp_burst(lossy, seed, 200);
        let lost = net.fault_count(NetFaultKind::UdpLoss);
        assert!(lost > 0 && arrived.len() as u64 == 200 - lost, "seed {seed}");
        assert_eq!(net.accounting().udp_dropped(UdpDrop::Loss), lost);

        let doubled = NetFaults { udp_duplicate_probability: ratio(1, 4), ..plain };
        let (arrived, net) = udp_burst(doubled, seed, 200);
        let copies = net.fault_count(NetFaultKind::UdpDuplicate);
        assert!(copies > 0 && arrived.len() as u64 == 200 + copies, "seed {seed}");

        let shuffled = NetFaults {
            udp_reorder_probability: ratio(1, 4),
            udp_reorder_delay_ns_min: MS,
            udp_reorder_delay_ns_max: 5 * MS,
            ..plain
        };
        let (mut arrived, net) = udp_burst(shuffled, seed, 200);
        assert!(net.fault_count(NetFaultKind::UdpReorder) > 0);
        assert_ne!(arrived, sent, "some datagram was overtaken (seed {seed})");
        arrived.sort_by_key(|data| u32::from_le_bytes(data[..4].try_into().unwrap()));
        assert_eq!(arrived, sent, "reordering neither loses nor adds (seed {seed})");

        let noisy = NetFaults { udp_corrupt_probability: ratio(1, 4), ..plain };
        let (arrived, net) = udp_burst(noisy, seed, 200);
        let corrupted = arrived.iter().zip(&sent).filter(|(got, want)| got != want).count();
        assert!(corrupted > 0, "seed {seed}");
        assert_eq!(corrupted as u64, net.fault_count(NetFaultKind::UdpCorrupt), "seed {seed}");
    }
}

#[test]
fn udp_limits_and_unroutable_hosts() {
    // A datagram over the size limit is refused; one to an address no node has vanishes,
    // counted; one to a port nothing binds is dropped, counted; a full queue drops.
    let net_config = NetConfig { udp_queue_datagrams: 2, ..NetConfig::default() };
    let mut sim = Sim::new(2, net_config, 3);
    let a = sim.udp(0, 0);
    let b = sim.udp(1, 5);
    let huge = vec![0; DATAGRAM_SIZE_MAX + 1];
    let result = sim.done(0, NetOp::UdpSendTo { socket: a, addr: addr(1, 5), data: &huge });
    assert_eq!(result, IoResult::Failed(IoError::InvalidInput));
    sim.send_to(0, a, addr(9, 5), b"nowhere");
    sim.send_to(0, a, "192.168.1.1:5".parse().unwrap(), b"nowhere");
    sim.send_to(0, a, addr(1, 6), b"closed port");
    for _ in 0..3 {
        sim.send_to(0, a, addr(1, 5), b"q");
    }
    sim.settle();
    let accounting = sim.net.accounting();
    assert_eq!(accounting.udp_dropped(UdpDrop::Unroutable), 2);
    assert_eq!(accounting.udp_dropped(UdpDrop::NoSocket), 1);
    assert_eq!(accounting.udp_dropped(UdpDrop::QueueFull), 1);
    assert_eq!(sim.drain_udp(1, b).len(), 2);
}

#[test]
fn bind_errors_are_typed() {
    // A taken port is AddrInUse, another node's address is AddrNotAvailable, and a node
    // outside the network is InvalidInput; none of them panics.
    let mut sim = Sim::new(2, NetConfig::default(), 4);
    sim.udp(0, 53);
    assert_eq!(
        sim.done(0, NetOp::UdpBind { addr: addr(0, 53) }),
        IoResult::Failed(IoError::AddrInUse)
    );
    sim.listen(0, 53, 1);
    assert_eq!(
        sim.done(0, NetOp::TcpListen { addr: addr(0, 53), backlog: 1 }),
        IoResult::Failed(IoError::AddrInUse),
        "TCP and UDP ports are separate namespaces, but each is taken once"
    );
    assert_eq!(
        sim.done(0, NetOp::UdpBind { addr: addr(1, 54) }),
        IoResult::Failed(IoError::AddrNotAvailable)
    );
    let unspecified = NetOp::UdpBind { addr: "0.0.0.0:54".parse().unwrap() };
    assert!(matches!(sim.done(1, unspecified), IoResult::Opened(_)));
    let v6 = NetOp::UdpBind { addr: "[::1]:1".parse().unwrap() };
    assert_eq!(sim.done(0, v6), IoResult::Failed(IoError::AddrNotAvailable));
    assert_eq!(
        sim.done(7, NetOp::UdpBind { addr: addr(7, 1) }),
        IoResult::Failed(IoError::InvalidInput)
    );
}

#[test]
fn bad_configuration_is_a_typed_error() {
    // Sizes and knobs out of range are refused at construction, not at first use.
    let seed = Seed::new(0);
    assert_eq!(
        Net::new(0, NetConfig::default(), seed).unwrap_err(),
        NetError::NodeCount { node_count: 0 }
    );
    assert!(Net::new(255, NetConfig::default(), seed).is_err());
    let zero_buffer = NetConfig { send_buffer_size: 0, ..NetConfig::default() };
    assert!(matches!(Net::new(2, zero_buffer, seed), Err(NetError::BadSize { .. })));
    let inverted = config(NetFaults::fixed_latency(10, 5));
    assert!(matches!(Net::new(2, inverted, seed), Err(NetError::BadFaults { .. })));
    let mut net = Net::new(2, NetConfig::default(), seed).unwrap();
    assert_eq!(net.partition(0, 0, Direction::Both), Err(NetError::SelfLink { node: 0 }));
    assert_eq!(net.isolate(2), Err(NetError::NoSuchNode { node: 2, node_count: 2 }));
}

#[test]
fn connect_is_refused_after_a_round_trip_when_nothing_listens() {
    // With 1 ms each way, a connect to a port nobody listens on fails after exactly 2 ms.
    let mut sim = Sim::new(2, config(NetFaults::fixed_latency(MS, MS)), 5);
    let connect = sim.pending(0, NetOp::TcpConnect { addr: addr(1, 80) });
    let completion = sim.wait(connect);
    assert_eq!(completion.result, IoResult::Failed(IoError::ConnectionRefused));
    assert_eq!(sim.now, 2 * MS);
    assert_eq!((sim.net.socket_count(0), sim.net.connection_count()), (0, 0));
}

#[test]
fn connect_to_an_unroutable_host_times_out() {
    // No node answers for an address outside the network: the connect waits for its
    // timeout, then fails with TimedOut.
    let net_config = NetConfig { connect_timeout_ns: 3 * MS, ..NetConfig::default() };
    let mut sim = Sim::new(2, net_config, 6);
    let connect = sim.pending(0, NetOp::TcpConnect { addr: addr(40, 80) });
    assert_eq!(sim.wait(connect).result, IoResult::Failed(IoError::TimedOut));
    assert_eq!(sim.now, 3 * MS);
}

#[test]
fn backlog_full_refuses() {
    // A listener with a backlog of one takes one connection and refuses the next until
    // the first is accepted.
    let mut sim = Sim::new(2, NetConfig::default(), 7);
    let listener = sim.listen(1, 80, 1);
    let first = sim.pending(0, NetOp::TcpConnect { addr: addr(1, 80) });
    assert!(matches!(sim.wait(first).result, IoResult::Opened(_)));
    let second = sim.pending(0, NetOp::TcpConnect { addr: addr(1, 80) });
    assert_eq!(sim.wait(second).result, IoResult::Failed(IoError::ConnectionRefused));
    let accept = sim.pending(1, NetOp::TcpAccept { listener });
    assert!(matches!(sim.wait(accept).result, IoResult::Accepted { .. }));
    let third = sim.pending(0, NetOp::TcpConnect { addr: addr(1, 80) });
    assert!(matches!(sim.wait(third).result, IoResult::Opened(_)));
}

#[test]
fn accept_and_connect_carry_bytes_both_ways() {
    // A connected pair carries bytes both ways and each side names the other.
    let mut sim = Sim::new(3, NetConfig::default(), 8);
    let (client, server) = sim.connect(2, 0, 443);
    sim.send_all(2, client, b"hello");
    assert_eq!(sim.recv_exact(0, server, 5), b"hello");
    sim.send_all(0, server, b"world");
    assert_eq!(sim.recv_exact(2, client, 5), b"world");
}

/// One side of a connection in the stream property test: what it still has to send, what it
/// got, and its operations in flight.
struct End {
    node: u16,
    socket: IoHandle,
    outgoing: Vec<u8>,
    sent: usize,
    incoming: Vec<u8>,
    send_op: Option<(OpId, usize)>,
    recv_op: Option<OpId>,
}

impl End {
    fn new(node: u16, socket: IoHandle, outgoing: Vec<u8>) -> End {
        End { node, socket, outgoing, sent: 0, incoming: Vec::new(), send_op: None, recv_op: None }
    }

    /// Starts a send and a receive if none is in flight; returns partial-send count.
    fn drive(&mut self, sim: &mut Sim, stream: &mut Stream) -> usize {
        let mut partial = 0;
        if self.send_op.is_none() && self.sent < self.outgoing.len() {
            let chunk = (1 + stream.below(3000) as usize).min(self.outgoing.len() - self.sent);
            let data = &self.outgoing[self.sent..self.sent + chunk];
            match sim.start(self.node, NetOp::TcpSend { socket: self.socket, data }) {
                Start::Done(IoResult::Transferred(taken)) => {
                    partial += usize::from((taken as usize) < chunk);
                    self.sent += taken as usize;
                }
                Start::Pending(op) => self.send_op = Some((op, chunk)),
                Start::Done(other) => panic!("send failed: {other:?}"),
            }
        }
        if self.recv_op.is_none() {
            let len_max = 1 + stream.below(2500) as u32;
            let op = NetOp::TcpRecv { socket: self.socket, len_max };
            let Start::Pending(op) = sim.start(self.node, op) else { panic!("recv refused") };
            self.recv_op = Some(op);
        }
        partial
    }

    /// Claims finished operations.
    fn collect(&mut self, sim: &mut Sim) -> usize {
        let mut partial = 0;
        if let Some((op, chunk)) = self.send_op
            && let Some(completion) = sim.take(op)
        {
            let IoResult::Transferred(taken) = completion.result else { panic!("send failed") };
            partial += usize::from((taken as usize) < chunk);
            self.sent += taken as usize;
            self.send_op = None;
        }
        if let Some(op) = self.recv_op
            && let Some(completion) = sim.take(op)
        {
            let IoResult::Received { len, .. } = completion.result else { panic!("recv failed") };
            assert!(len > 0, "no EOF before close");
            self.incoming.extend(completion.data);
            self.recv_op = None;
        }
        partial
    }
}

#[test]
fn byte_streams_arrive_exactly_and_in_order_under_retransmission() {
    // Over many seeds, two ends exchange random payloads in random chunk sizes with small
    // buffers, latency tails and frequent retransmissions: each receives exactly what the
    // other sent, in order, and partial writes and retransmissions both happen.
    let mut partial_total = 0;
    for seed in 0..48 {
        let faults = NetFaults {
            latency_tail_probability: ratio(1, 10),
            latency_tail_ns_max: 20 * MS,
            tcp_retransmit_probability: ratio(1, 4),
            tcp_rto_ns_min: MS,
            tcp_rto_ns_max: 10 * MS,
            ..NetFaults::fixed_latency(100_000, 2 * MS)
        };
        let net_config =
            NetConfig { send_buffer_size: 4096, receive_buffer_size: 3000, ..config(faults) };
        let mut sim = Sim::new(2, net_config, seed);
        let (client, server) = sim.connect(0, 1, 80);
        let mut stream = test_stream(seed, "test.chunks");
        let mut ends = [
            End::new(0, client, bytes(seed, 30_000)),
            End::new(1, server, bytes(seed + 1000, 20_000)),
        ];
        for _ in 0..STEPS_MAX {
            if ends[0].incoming.len() == 20_000 && ends[1].incoming.len() == 30_000 {
                break;
            }
            for end in &mut ends {
                partial_total += end.drive(&mut sim, &mut stream);
            }
            assert!(sim.step(), "the exchange stalls (seed {seed})");
            for end in &mut ends {
                partial_total += end.collect(&mut sim);
            }
        }
        assert!(ends[0].incoming == ends[1].outgoing, "server to client (seed {seed})");
        assert!(ends[1].incoming == ends[0].outgoing, "client to server (seed {seed})");
        assert!(sim.net.fault_count(NetFaultKind::TcpRetransmit) > 0, "seed {seed}");
    }
    assert!(partial_total > 0, "small buffers make some writes partial");
}

#[test]
fn backpressure_fills_the_sender_and_loses_nothing() {
    // A reader that does not read lets the window and then the send buffer fill: sends turn
    // partial, then pending; once it reads, every byte arrives.
    let net_config =
        NetConfig { send_buffer_size: 1000, receive_buffer_size: 1500, ..NetConfig::default() };
    let mut sim = Sim::new(2, net_config, 9);
    let (client, server) = sim.connect(0, 1, 80);
    let payload = bytes(9, 10_000);
    let mut sent = 0;
    let mut partial = false;
    let blocked = loop {
        match sim.start(0, NetOp::TcpSend { socket: client, data: &payload[sent..sent + 400] }) {
            Start::Done(IoResult::Transferred(taken)) => {
                partial |= taken < 400;
                sent += taken as usize;
            }
            Start::Pending(op) => break op,
            Start::Done(other) => panic!("{other:?}"),
        }
        sim.settle();
        assert!(sent < 5000, "a reader that never reads must stop the sender");
    };
    assert!(partial, "a nearly full buffer takes part of a write");
    assert_eq!(sent, 2500, "the window (1500) and the send buffer (1000) hold what was sent");
    sim.settle();
    assert!(sim.take(blocked).is_none(), "the blocked send waits while nobody reads");
    let received = sim.recv_exact(1, server, 2500);
    let IoResult::Transferred(taken) = sim.wait(blocked).result else { panic!() };
    sent += taken as usize;
    // The rest goes with a reader that keeps up.
    let mut stream = test_stream(9, "test.chunks");
    let mut writer = End::new(0, client, payload[sent..].to_vec());
    let mut reader = End::new(1, server, Vec::new());
    reader.incoming = received;
    for _ in 0..STEPS_MAX {
        if reader.incoming.len() == payload.len() {
            break;
        }
        writer.drive(&mut sim, &mut stream);
        reader.drive(&mut sim, &mut stream);
        assert!(sim.step(), "the transfer stalls");
        writer.collect(&mut sim);
        reader.collect(&mut sim);
    }
    assert!(reader.incoming == payload, "nothing lost, nothing reordered");
}

#[test]
fn orderly_close_gives_eof_after_all_data() {
    // Data sent before close arrives in full, then reads return 0 bytes (EOF), again and
    // again; the closed handle is no longer valid.
    let mut sim = Sim::new(2, NetConfig::default(), 10);
    let (client, server) = sim.connect(0, 1, 80);
    let payload = bytes(10, 100_000);
    let op = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 10 });
    sim.send_all(0, client, &payload);
    assert_eq!(sim.done(0, NetOp::Close { handle: client }), IoResult::Done);
    let mut received = sim.wait(op).data;
    received.extend(sim.recv_exact(1, server, usize::MAX));
    assert!(received == payload);
    for _ in 0..2 {
        let eof = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 10 });
        assert_eq!(sim.wait(eof).result, IoResult::Received { len: 0, from: None });
    }
    let send = NetOp::TcpSend { socket: client, data: b"late" };
    assert_eq!(sim.done(0, send), IoResult::Failed(IoError::InvalidHandle));
    sim.done(1, NetOp::Close { handle: server });
    sim.settle();
    assert_eq!(sim.net.connection_count(), 0, "both ends closed: the connection is gone");
    assert_eq!(sim.net.accounting().tcp_bytes_delivered, 100_000);
}

#[test]
fn reset_fails_peer_operations() {
    // An injected reset fails the pending receive on each side with ConnectionReset, and
    // every later operation too, discarding the unread bytes.
    let mut sim = Sim::new(2, NetConfig::default(), 11);
    let (client, server) = sim.connect(0, 1, 80);
    sim.send_all(1, server, b"unread");
    sim.settle();
    let recv = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 10 });
    assert!(sim.net.reset_random_connection(&mut test_stream(11, "test.reset")));
    sim.step();
    assert_eq!(sim.wait(recv).result, IoResult::Failed(IoError::ConnectionReset));
    let again = NetOp::TcpRecv { socket: client, len_max: 10 };
    assert_eq!(sim.done(0, again), IoResult::Failed(IoError::ConnectionReset));
    let send = NetOp::TcpSend { socket: server, data: b"x" };
    assert_eq!(sim.done(1, send), IoResult::Failed(IoError::ConnectionReset));
    assert_eq!(sim.net.fault_count(NetFaultKind::Reset), 1);
    assert_eq!(sim.net.accounting().tcp_bytes_discarded_reset, 6);
    let mut events = Vec::new();
    sim.net.drain_events(&mut events);
    assert!(events.iter().any(|event| event.kind == NetFaultKind::Reset));
    assert!(!sim.net.reset_random_connection(&mut test_stream(11, "test.reset")), "none left");
}

#[test]
fn per_segment_reset_knob_resets_connections() {
    // With the reset knob always on, the first data segment resets its connection.
    let faults = NetFaults { tcp_reset_probability: Ratio::ONE, ..NetFaults::HEALTHY };
    let mut sim = Sim::new(2, config(faults), 12);
    let (client, server) = sim.connect(0, 1, 80);
    let recv = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 10 });
    sim.done(0, NetOp::TcpSend { socket: client, data: b"boom" });
    assert_eq!(sim.wait(recv).result, IoResult::Failed(IoError::ConnectionReset));
    assert_eq!(sim.net.fault_count(NetFaultKind::Reset), 1);
}

#[test]
fn closing_with_unread_data_resets_the_peer() {
    // Like a kernel, a close with bytes unread answers with a reset, not a FIN.
    let mut sim = Sim::new(2, NetConfig::default(), 13);
    let (client, server) = sim.connect(0, 1, 80);
    sim.send_all(0, client, b"ignored");
    sim.settle();
    let recv = sim.pending(0, NetOp::TcpRecv { socket: client, len_max: 10 });
    sim.done(1, NetOp::Close { handle: server });
    assert_eq!(sim.wait(recv).result, IoResult::Failed(IoError::ConnectionReset));
}

#[test]
fn partitions_stop_traffic_and_heal_resumes_it() {
    // A symmetric partition loses datagrams both ways and holds TCP bytes; a one-way cut
    // only stops one direction; healing lets the held bytes through, in order.
    let mut sim = Sim::new(3, NetConfig::default(), 14);
    let a = sim.udp(0, 1);
    let b = sim.udp(1, 1);
    let (client, server) = sim.connect(0, 1, 80);
    sim.net.partition(0, 1, Direction::Both).unwrap();
    sim.send_to(0, a, addr(1, 1), b"lost");
    sim.send_to(1, b, addr(0, 1), b"lost");
    sim.send_all(0, client, b"held");
    let recv = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 10 });
    sim.advance_to(sim.now + 1000 * MS);
    assert!(sim.take(recv).is_none(), "TCP bytes wait on a cut link");
    assert_eq!(sim.net.accounting().udp_dropped(UdpDrop::Partition), 2);
    sim.net.heal_all();
    assert_eq!(sim.wait(recv).data, b"held");

    sim.net.partition(0, 1, Direction::OneWay).unwrap();
    sim.send_to(0, a, addr(1, 1), b"cut");
    sim.send_to(1, b, addr(0, 1), b"passes");
    assert_eq!(sim.drain_udp(1, b).len(), 0);
    assert_eq!(sim.drain_udp(0, a)[0].0, b"passes");
    sim.net.heal(1, 0).unwrap();
    sim.send_to(0, a, addr(1, 1), b"healed");
    assert_eq!(sim.drain_udp(1, b)[0].0, b"healed");

    sim.net.isolate(1).unwrap();
    let c = sim.udp(2, 1);
    sim.send_to(2, c, addr(1, 1), b"lost");
    sim.send_to(0, a, addr(2, 1), b"others still talk");
    assert_eq!(sim.drain_udp(2, c).len(), 1);
    assert_eq!(sim.drain_udp(1, b).len(), 0);
    assert_eq!(sim.net.fault_count(NetFaultKind::Partition), 3);
}

#[test]
fn datagrams_in_flight_are_lost_to_a_partition() {
    // A datagram already on the wire when the link is cut does not arrive.
    let mut sim = Sim::new(2, config(NetFaults::fixed_latency(MS, MS)), 15);
    let a = sim.udp(0, 1);
    let b = sim.udp(1, 1);
    sim.send_to(0, a, addr(1, 1), b"in flight");
    sim.advance_to(MS / 2);
    sim.net.partition(0, 1, Direction::OneWay).unwrap();
    sim.advance_to(2 * MS);
    sim.net.heal_all();
    assert!(sim.drain_udp(1, b).is_empty());
}

#[test]
fn connect_across_a_partition_waits_for_heal() {
    // A SYN meeting a cut link is retried; the connect completes once the link heals.
    let mut sim = Sim::new(2, NetConfig::default(), 16);
    sim.listen(1, 80, 4);
    sim.net.partition(0, 1, Direction::Both).unwrap();
    let connect = sim.pending(0, NetOp::TcpConnect { addr: addr(1, 80) });
    sim.advance_to(2000 * MS);
    assert!(sim.take(connect).is_none());
    sim.net.heal_all();
    assert!(matches!(sim.wait(connect).result, IoResult::Opened(_)));
}

#[test]
fn clog_holds_then_releases_in_order() {
    // A clogged link holds datagrams and stream bytes; unclogging releases them at once, in
    // the order they were sent.
    let mut sim = Sim::new(2, NetConfig::default(), 17);
    let a = sim.udp(0, 1);
    let b = sim.udp(1, 1);
    let (client, server) = sim.connect(0, 1, 80);
    sim.net.clog(0, 1, Direction::OneWay).unwrap();
    for index in 0..20u8 {
        sim.send_to(0, a, addr(1, 1), &[index]);
        sim.send_all(0, client, &[index]);
        sim.advance_to(sim.now + MS);
    }
    sim.advance_to(sim.now + 1000 * MS);
    let recv = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 100 });
    assert!(sim.take(recv).is_none(), "nothing crosses a clogged link");
    let udp = sim.pending(1, NetOp::UdpRecvFrom { socket: b, len_max: 10 });
    assert!(sim.take(udp).is_none());
    sim.net.cancel(udp).unwrap();
    let released_at = sim.now;
    sim.net.unclog(0, 1, Direction::OneWay).unwrap();
    let stream = sim.wait(recv);
    assert_eq!(sim.now, released_at, "released the moment the link unclogs");
    let mut received = stream.data;
    received.extend(sim.recv_exact(1, server, 20 - received.len()));
    assert_eq!(received, (0..20).collect::<Vec<u8>>());
    let datagrams: Vec<u8> = sim.drain_udp(1, b).into_iter().map(|(data, _)| data[0]).collect();
    assert_eq!(datagrams, (0..20).collect::<Vec<u8>>());
    assert_eq!(sim.net.fault_count(NetFaultKind::Clog), 1);
}

#[test]
fn crash_node_resets_peers_and_drops_its_operations() {
    // A crashed node's sockets vanish: its pending operations never complete, its peers'
    // operations fail with ConnectionReset, datagrams flying to it are lost, and it can bind
    // its ports again at once.
    let mut sim = Sim::new(2, config(NetFaults::fixed_latency(MS, MS)), 18);
    let (client, server) = sim.connect(0, 1, 80);
    let a = sim.udp(0, 1);
    sim.udp(1, 1);
    let peer_recv = sim.pending(0, NetOp::TcpRecv { socket: client, len_max: 10 });
    let own_recv = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 10 });
    sim.send_all(0, client, b"lost to the crash");
    sim.send_to(0, a, addr(1, 1), b"lost");
    sim.net.crash_node(1).unwrap();
    assert_eq!(sim.net.socket_count(1), 0);
    sim.settle();
    assert_eq!(sim.wait(peer_recv).result, IoResult::Failed(IoError::ConnectionReset));
    assert!(sim.take(own_recv).is_none(), "the crashed process gets no completion");
    assert_eq!(sim.net.cancel(own_recv), None, "and its operation is no longer pending");
    let accounting = sim.net.accounting();
    assert_eq!(accounting.udp_dropped(UdpDrop::Crash), 1);
    assert_eq!(accounting.tcp_bytes_discarded_crash, 17);
    sim.listen(1, 80, 1);
    sim.done(0, NetOp::Close { handle: client });
    assert_eq!(sim.net.connection_count(), 0);
}

#[test]
fn cancel_completes_a_pending_recv() {
    // A receive that would wait forever (the peer is partitioned away) is cancelled: it
    // completes with TimedOut, once, and the socket still works afterwards.
    let mut sim = Sim::new(2, NetConfig::default(), 19);
    let (client, server) = sim.connect(0, 1, 80);
    sim.net.isolate(0).unwrap();
    let recv = sim.pending(1, NetOp::TcpRecv { socket: server, len_max: 10 });
    sim.advance_to(sim.now + 5000 * MS);
    let cancelled = sim.net.cancel(recv).expect("pending");
    assert_eq!((cancelled.op, cancelled.owner), (recv, OWNER));
    assert_eq!(cancelled.result, IoResult::Failed(IoError::TimedOut));
    assert_eq!(sim.net.cancel(recv), None);
    sim.net.heal_all();
    sim.send_all(0, client, b"after");
    assert_eq!(sim.recv_exact(1, server, 5), b"after");
}

#[test]
fn closed_and_foreign_handles_are_invalid() {
    // A handle from another node, a closed handle and one never opened all give
    // InvalidHandle; a handle of the wrong kind gives InvalidInput.
    let mut sim = Sim::new(2, NetConfig::default(), 20);
    let a = sim.udp(0, 1);
    let foreign = NetOp::UdpRecvFrom { socket: a, len_max: 10 };
    assert_eq!(sim.done(1, foreign), IoResult::Failed(IoError::InvalidHandle));
    let never = NetOp::Close { handle: IoHandle::from_raw(999) };
    assert_eq!(sim.done(0, never), IoResult::Failed(IoError::InvalidHandle));
    let listener = sim.listen(0, 80, 1);
    let wrong = NetOp::TcpRecv { socket: listener, len_max: 10 };
    assert_eq!(sim.done(0, wrong), IoResult::Failed(IoError::InvalidInput));
    let waiting = sim.pending(0, NetOp::UdpRecvFrom { socket: a, len_max: 10 });
    assert_eq!(sim.done(0, NetOp::Close { handle: a }), IoResult::Done);
    assert_eq!(sim.wait(waiting).result, IoResult::Failed(IoError::ConnectionAborted));
    let closed = NetOp::UdpSendTo { socket: a, addr: addr(1, 1), data: b"x" };
    assert_eq!(sim.done(0, closed), IoResult::Failed(IoError::InvalidHandle));
    assert_eq!(sim.done(0, NetOp::Close { handle: a }), IoResult::Failed(IoError::InvalidHandle));
}

/// What a handle in a randomized run names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Udp,
    Listener,
    Stream,
}

/// The knobs of randomized runs: every fault on, at rates that let traffic through.
fn randomized_config() -> NetConfig {
    let faults = NetFaults {
        latency_tail_probability: ratio(1, 20),
        latency_tail_ns_max: 50 * MS,
        udp_loss_probability: ratio(1, 10),
        udp_duplicate_probability: ratio(1, 10),
        udp_reorder_probability: ratio(1, 10),
        udp_reorder_delay_ns_min: MS,
        udp_reorder_delay_ns_max: 5 * MS,
        udp_corrupt_probability: ratio(1, 10),
        tcp_retransmit_probability: ratio(1, 8),
        tcp_rto_ns_min: MS,
        tcp_rto_ns_max: 20 * MS,
        tcp_reset_probability: ratio(1, 5000),
        ..NetFaults::fixed_latency(100_000, 3 * MS)
    };
    NetConfig {
        send_buffer_size: 2048,
        receive_buffer_size: 1024,
        udp_queue_datagrams: 8,
        connect_timeout_ns: 500 * MS,
        faults,
    }
}

/// Calls one fault method of the network at random.
fn random_fault(sim: &mut Sim, stream: &mut Stream, handles: &mut Vec<(u16, IoHandle, Kind)>) {
    let node = stream.below(4) as u16;
    let next = (node + 1) % 4;
    match stream.below(10) {
        0 => sim.net.partition(node, next, Direction::OneWay).unwrap(),
        1 => sim.net.isolate(node).unwrap(),
        2 | 3 => sim.net.heal_all(),
        4 => sim.net.clog(node, next, Direction::Both).unwrap(),
        5 | 6 => sim.net.unclog_all(),
        7 => drop(sim.net.reset_random_connection(stream)),
        8 if stream.below(4) == 0 => {
            sim.net.crash_node(node).unwrap();
            handles.retain(|&(owner, _, _)| owner != node);
        }
        _ => {}
    }
    sim.net.assert_accounting();
}

/// A randomized run: nodes bind, listen, connect, send, receive and close at random under
/// every fault knob and fault method, with accounting checked after every call (by `Sim`).
/// Returns a transcript of every start, completion and event.
fn randomized_run(seed: u64) -> String {
    let mut sim = Sim::new(4, randomized_config(), seed);
    let mut stream = test_stream(seed, "test.workload");
    let mut handles: Vec<(u16, IoHandle, Kind)> = Vec::new();
    let mut transcript = String::new();
    let payload = bytes(seed, 4000);
    for _ in 0..3000 {
        let roll = stream.below(100);
        if roll < 4 {
            random_fault(&mut sim, &mut stream, &mut handles);
            continue;
        }
        let len = stream.below(3000) as usize;
        let (other, port) = (stream.below(4) as u16, 1 + stream.below(3) as u16);
        let (node, op) = if roll < 14 || handles.is_empty() {
            let node = stream.below(4) as u16;
            let op = match stream.below(3) {
                0 => NetOp::UdpBind { addr: addr(node, port) },
                1 => NetOp::TcpListen { addr: addr(node, port), backlog: 2 },
                _ => NetOp::TcpConnect { addr: addr(other, port) },
            };
            (node, op)
        } else {
            let (owner, socket, kind) = handles[stream.choose_index(handles.len())];
            // Now and then a foreign node uses the handle: it must be refused.
            let node = if stream.below(50) == 0 { other } else { owner };
            let op = match (kind, stream.below(40)) {
                (_, 0) => NetOp::Close { handle: socket },
                (Kind::Udp, 1..=20) => {
                    NetOp::UdpSendTo { socket, addr: addr(other, port), data: &payload[..len] }
                }
                (Kind::Udp, _) => NetOp::UdpRecvFrom { socket, len_max: 1 + len as u32 },
                (Kind::Listener, _) => NetOp::TcpAccept { listener: socket },
                (Kind::Stream, 1..=20) => NetOp::TcpSend { socket, data: &payload[..len] },
                (Kind::Stream, _) => NetOp::TcpRecv { socket, len_max: 1 + len as u32 },
            };
            (node, op)
        };
        let start = sim.start(node, op);
        transcript.push_str(&format!("{} n{node} {:?} -> {start:?}\n", sim.now, op.kind()));
        match (start, op) {
            (Start::Done(IoResult::Opened(handle)), NetOp::UdpBind { .. }) => {
                handles.push((node, handle, Kind::Udp));
            }
            (Start::Done(IoResult::Opened(handle)), _) => {
                handles.push((node, handle, Kind::Listener))
            }
            (Start::Done(IoResult::Done), NetOp::Close { handle }) => {
                handles.retain(|&(owner, open, _)| (owner, open) != (node, handle));
            }
            // Cancel some pending operations, as a world's deadline would.
            (Start::Pending(id), _) if stream.below(10) == 0 => {
                sim.advance_to(sim.now + stream.below(5 * MS));
                if let Some(cancelled) = sim.net.cancel(id) {
                    transcript.push_str(&format!("cancel {:?}\n", cancelled.result));
                }
            }
            _ => {}
        }
        sim.advance_to(sim.now + stream.below(2 * MS));
        for completion in sim.done.drain(..) {
            match completion.result {
                IoResult::Opened(handle) | IoResult::Accepted { socket: handle, .. } => {
                    handles.push((completion.node, handle, Kind::Stream));
                }
                _ => {}
            }
            let sum: u64 = completion.data.iter().map(|&byte| u64::from(byte)).sum();
            transcript.push_str(&format!(
                "{} n{} {:?} {:?} {sum}\n",
                sim.now, completion.node, completion.kind, completion.result
            ));
        }
    }
    sim.net.heal_all();
    sim.net.unclog_all();
    sim.settle();
    let mut events: Vec<NetEvent> = Vec::new();
    sim.net.drain_events(&mut events);
    let accounting = sim.net.accounting();
    transcript.push_str(&format!("{accounting:?}\n{:?}\n{events:?}\n", sim.net.fault_counts()));
    transcript
}

#[test]
fn byte_accounting_holds_throughout_randomized_runs() {
    // Under every knob and fault method at once, every TCP byte accepted and every datagram
    // sent is in exactly one bucket after every call (`Sim` checks after each), and every
    // fault kind fires somewhere across the seeds.
    let mut fired = [false; tina_sim::net::NET_FAULT_KINDS.len()];
    let (mut delivered, mut udp_delivered) = (0, 0);
    for seed in 0..24 {
        let transcript = randomized_run(seed);
        for (index, kind) in tina_sim::net::NET_FAULT_KINDS.iter().enumerate() {
            fired[index] |= transcript.contains(&format!("(\"{}\", ", kind.name()))
                && !transcript.contains(&format!("(\"{}\", 0)", kind.name()));
        }
        let summary = transcript.lines().rev().nth(2).expect("the accounting line");
        let field = |name: &str| -> u64 {
            let rest = &summary[summary.find(name).expect(name) + name.len() + 2..];
            rest[..rest.find(',').unwrap()].parse().unwrap()
        };
        delivered += field("tcp_bytes_delivered");
        udp_delivered += field("udp_delivered");
    }
    assert!(fired.iter().all(|&fired| fired), "every fault kind fires: {fired:?}");
    assert!(
        delivered > 100_000 && udp_delivered > 1000,
        "traffic flows: {delivered} {udp_delivered}"
    );
}

#[test]
fn same_seed_same_run() {
    // The same calls with the same seed give the same completions, bytes and events; another
    // seed gives another run.
    for seed in [1, 77] {
        assert_eq!(randomized_run(seed), randomized_run(seed), "seed {seed}");
    }
    assert_ne!(randomized_run(1), randomized_run(2));
}

#[test]
fn traffic_on_one_link_leaves_another_links_draws_alone() {
    // Each link draws from its own streams: adding traffic between nodes 2 and 3 changes
    // nothing about what nodes 0 and 1 see, drop for drop and nanosecond for nanosecond.
    let faults = NetFaults {
        udp_loss_probability: ratio(1, 5),
        udp_corrupt_probability: ratio(1, 5),
        ..NetFaults::fixed_latency(100_000, 900_000)
    };
    let run = |noise: bool| {
        let mut sim = Sim::new(4, config(faults), 21);
        let (a, b) = (sim.udp(0, 1), sim.udp(1, 1));
        let c = sim.udp(2, 1);
        let mut arrivals = Vec::new();
        for index in 0..100u8 {
            sim.send_to(0, a, addr(1, 1), &[index; 8]);
            if noise {
                sim.send_to(2, c, addr(3, 1), &[index; 8]);
            }
            let op = sim.pending(1, NetOp::UdpRecvFrom { socket: b, len_max: 8 });
            sim.advance_to(sim.now + MS);
            match sim.take(op) {
                Some(completion) => arrivals.push((sim.now, completion.data)),
                None => drop(sim.net.cancel(op)),
            }
        }
        arrivals
    };
    assert_eq!(run(false), run(true));
}
