//! Sockets through the simulator: isolates on different nodes talk over the virtual
//! network with `Effect::Io` socket operations: a TCP echo whose every byte comes back in
//! order under retransmissions and latency tails, connects refused where nothing listens,
//! and a UDP echo. Deterministic, judged by the structural checkers.

use core::time::Duration;

use tina::io::{IoError, IoHandle, IoOp, IoOpKind, IoResult};
use tina::{Ctx, Effect, Isolate, Label, Message, ShardId, SystemSpec, TypeConfig};
use tina_sim::faults::FaultKind;
use tina_sim::{Setup, Simulation};

const PORT: u16 = 7;
const ROUNDS: u64 = 20;

fn crash(why: &'static str) -> Effect {
    Effect::Crash(Label::new(why))
}

/// Node 0: accepts one connection and echoes what it reads until the peer closes.
struct EchoServer {
    listener: IoHandle,
    socket: IoHandle,
}

impl Isolate for EchoServer {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (EchoServer, Effect) {
        let addr = format!("10.0.0.1:{PORT}").parse().expect("an address");
        let server = EchoServer { listener: IoHandle::NONE, socket: IoHandle::NONE };
        (server, Effect::Io(IoOp::TcpListen { addr, backlog: 4 }))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::TcpListen, IoResult::Opened(listener)) => {
                self.listener = listener;
                Effect::Io(IoOp::TcpAccept { listener })
            }
            (IoOpKind::TcpAccept, IoResult::Accepted { socket, .. }) => {
                self.socket = socket;
                Effect::Io(IoOp::TcpRecv { socket, len_max: 64 })
            }
            (IoOpKind::TcpRecv, IoResult::Received { len: 0, .. }) => {
                Effect::Io(IoOp::Close { handle: self.socket })
            }
            (IoOpKind::TcpRecv, IoResult::Received { len, .. }) => {
                let buffer = ctx.buffer_alloc().expect("a buffer");
                let data = ctx.io_data().to_vec();
                ctx.buffer_write(buffer, 0, &data).expect("fits");
                Effect::Io(IoOp::TcpSend { socket: self.socket, buffer, len })
            }
            // Small echoes fit the send buffer whole.
            (IoOpKind::TcpSend, IoResult::Transferred(_)) => {
                Effect::Io(IoOp::TcpRecv { socket: self.socket, len_max: 64 })
            }
            (IoOpKind::Close, IoResult::Done) if self.socket != IoHandle::NONE => {
                self.socket = IoHandle::NONE;
                Effect::Io(IoOp::Close { handle: self.listener })
            }
            (IoOpKind::Close, IoResult::Done) => Effect::Done,
            (_, IoResult::Failed(IoError::ConnectionReset)) => crash("connection reset"),
            _ => crash("the server got an unexpected completion"),
        }
    }
}

/// Node 1: connects, sends `ROUNDS` numbered lines, checks each echo byte for byte.
struct EchoClient {
    socket: IoHandle,
    round: u64,
    echoed: Vec<u8>,
}

fn line(round: u64) -> Vec<u8> {
    format!("line {round:04}\n").into_bytes()
}

impl EchoClient {
    fn send_line(&self, ctx: &mut Ctx<'_>) -> Effect {
        let bytes = line(self.round);
        let buffer = ctx.buffer_alloc().expect("a buffer");
        ctx.buffer_write(buffer, 0, &bytes).expect("fits");
        // A line is a few bytes.
        Effect::Io(IoOp::TcpSend { socket: self.socket, buffer, len: bytes.len() as u32 })
    }
}

impl Isolate for EchoClient {
    type Args = ();

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (EchoClient, Effect) {
        let addr = format!("10.0.0.1:{PORT}").parse().expect("an address");
        let client = EchoClient { socket: IoHandle::NONE, round: 0, echoed: Vec::new() };
        (client, Effect::Io(IoOp::TcpConnect { addr }))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::TcpConnect, IoResult::Opened(socket)) => {
                self.socket = socket;
                self.send_line(ctx)
            }
            (IoOpKind::TcpSend, IoResult::Transferred(n)) if n as usize == line(0).len() => {
                Effect::io_within(
                    IoOp::TcpRecv { socket: self.socket, len_max: 64 },
                    Duration::from_secs(30),
                )
            }
            (IoOpKind::TcpRecv, IoResult::Received { len, .. }) if len > 0 => {
                self.echoed.extend_from_slice(ctx.io_data());
                let expected = line(self.round);
                if self.echoed.len() < expected.len() {
                    return Effect::io_within(
                        IoOp::TcpRecv { socket: self.socket, len_max: 64 },
                        Duration::from_secs(30),
                    );
                }
                if self.echoed != expected {
                    return crash("an echo came back different");
                }
                self.echoed.clear();
                self.round += 1;
                if self.round == ROUNDS {
                    return Effect::Io(IoOp::Close { handle: self.socket });
                }
                self.send_line(ctx)
            }
            (IoOpKind::Close, IoResult::Done) => Effect::Done,
            (_, IoResult::Failed(IoError::ConnectionReset)) => crash("connection reset"),
            _ => crash("the client got an unexpected completion"),
        }
    }
}

fn echo() -> Setup {
    let server = {
        let mut spec = SystemSpec::new(1);
        let server = spec.register::<EchoServer>(TypeConfig::new("echo-server").slots(1));
        spec.boot_child(ShardId(0), server, ());
        spec
    };
    let client = {
        let mut spec = SystemSpec::new(1);
        let client = spec.register::<EchoClient>(TypeConfig::new("echo-client").slots(1));
        spec.boot_child(ShardId(0), client, ());
        spec
    };
    Setup::nodes(vec![server, client])
}

/// A TCP echo between two nodes: every line comes back byte for byte, both ends close in
/// order and finish, on every seed; the same seed gives the same trace.
#[test]
fn tcp_echo_between_two_nodes() {
    let simulation = Simulation::new("tcp-echo", |_| echo()).fail_on_crash(true).seeds(50);
    simulation.check();
    assert_eq!(simulation.run(9).expect("valid").trace, simulation.run(9).expect("valid").trace);
}

/// Retransmissions and latency tails only delay a stream: it still arrives exactly, in
/// order, and both kinds of fault fire.
#[test]
fn tcp_streams_survive_retransmissions_and_tails() {
    let simulation = Simulation::new("tcp-echo", |_| echo())
        .fault("net_tcp_retransmit_probability=20%")
        .fault("net_delay_tail_probability=10%")
        .fail_on_crash(true);
    let (mut retransmits, mut tails) = (0, 0);
    for seed in 1..=20 {
        let report = simulation.run(seed).expect("valid");
        assert!(report.passed(), "seed {seed}: {:?}", report.outcome);
        retransmits += report.faults.of(FaultKind::NetTcpRetransmit);
        tails += report.faults.of(FaultKind::NetDelayTail);
    }
    assert!(retransmits > 0 && tails > 0, "retransmits {retransmits}, tails {tails}");
}

/// Connects to a port where nothing listens are refused, as a typed error.
#[test]
fn a_connect_where_nothing_listens_is_refused() {
    struct Knocker;
    impl Isolate for Knocker {
        type Args = ();
        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Knocker, Effect) {
            let addr = "10.0.0.1:9999".parse().expect("an address");
            (Knocker, Effect::Io(IoOp::TcpConnect { addr }))
        }
        fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            match message.io().map(|io| io.result) {
                Some(IoResult::Failed(IoError::ConnectionRefused)) => Effect::Done,
                _ => crash("not refused"),
            }
        }
    }
    let simulation = Simulation::new("knock", |_| {
        let mut idle = SystemSpec::new(1);
        let server = idle.register::<EchoServer>(TypeConfig::new("echo-server").slots(1));
        idle.boot_child(ShardId(0), server, ());
        let mut knocker = SystemSpec::new(1);
        let knock = knocker.register::<Knocker>(TypeConfig::new("knocker").slots(1));
        knocker.boot_child(ShardId(0), knock, ());
        // The echo server waits for a connection that never comes: only the knocker's
        // finish is the goal.
        Setup::nodes(vec![idle, knocker])
            .goal(tina_sim::Goal::EndState(Box::new(|end| end.live_isolates() == 1)))
    })
    .fail_on_crash(true);
    let report = simulation.run(1).expect("valid");
    assert!(report.passed(), "{:?}", report.outcome);
}

/// Node 0: echoes every datagram to its sender, forever.
struct UdpEcho {
    socket: IoHandle,
}

impl Isolate for UdpEcho {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (UdpEcho, Effect) {
        let addr = "10.0.0.1:9".parse().expect("an address");
        (UdpEcho { socket: IoHandle::NONE }, Effect::Io(IoOp::UdpBind { addr }))
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::UdpBind, IoResult::Opened(socket)) => self.socket = socket,
            (IoOpKind::UdpRecvFrom, IoResult::Received { len, from: Some(from) }) => {
                let buffer = ctx.buffer_alloc().expect("a buffer");
                let data = ctx.io_data().to_vec();
                ctx.buffer_write(buffer, 0, &data).expect("fits");
                return Effect::Io(IoOp::UdpSendTo {
                    socket: self.socket,
                    addr: from,
                    buffer,
                    len,
                });
            }
            _ => {}
        }
        Effect::Io(IoOp::UdpRecvFrom { socket: self.socket, len_max: 64 })
    }
}

/// Node 1: pings `PINGS` numbered datagrams, each until its exact echo comes back; a
/// lost, corrupted or late datagram is resent after `RESEND`.
struct UdpPinger {
    socket: IoHandle,
    ping: u64,
}

const PINGS: u64 = 30;
const RESEND: Duration = Duration::from_millis(50);

impl UdpPinger {
    fn send(&self, ctx: &mut Ctx<'_>) -> Effect {
        let buffer = ctx.buffer_alloc().expect("a buffer");
        ctx.buffer_write(buffer, 0, &self.ping.to_le_bytes()).expect("fits");
        let addr = "10.0.0.1:9".parse().expect("an address");
        Effect::Io(IoOp::UdpSendTo { socket: self.socket, addr, buffer, len: 8 })
    }

    fn wait(&self) -> Effect {
        Effect::io_within(IoOp::UdpRecvFrom { socket: self.socket, len_max: 64 }, RESEND)
    }
}

impl Isolate for UdpPinger {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (UdpPinger, Effect) {
        let addr = "10.0.0.2:0".parse().expect("an address");
        (UdpPinger { socket: IoHandle::NONE, ping: 0 }, Effect::Io(IoOp::UdpBind { addr }))
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::UdpBind, IoResult::Opened(socket)) => {
                self.socket = socket;
                self.send(ctx)
            }
            (IoOpKind::UdpSendTo, _) => self.wait(),
            (IoOpKind::UdpRecvFrom, IoResult::Received { .. })
                if ctx.io_data() == self.ping.to_le_bytes() =>
            {
                self.ping += 1;
                if self.ping == PINGS { Effect::Done } else { self.send(ctx) }
            }
            // Someone else's echo (a duplicate, a late or corrupted one): keep waiting.
            (IoOpKind::UdpRecvFrom, IoResult::Received { .. }) => self.wait(),
            (IoOpKind::UdpRecvFrom, IoResult::Failed(IoError::TimedOut)) => self.send(ctx),
            _ => crash("the pinger got an unexpected completion"),
        }
    }
}

fn udp_echo() -> Setup {
    let mut server = SystemSpec::new(1);
    let echo = server.register::<UdpEcho>(TypeConfig::new("udp-echo").slots(1));
    server.boot_child(ShardId(0), echo, ());
    let mut client = SystemSpec::new(1);
    let pinger = client.register::<UdpPinger>(TypeConfig::new("udp-pinger").slots(1));
    client.boot_child(ShardId(0), pinger, ());
    // The echo serves forever: the goal is the pinger done and nothing else in flight but
    // the echo's wait.
    Setup::nodes(vec![server, client])
        .goal(tina_sim::Goal::EndState(Box::new(|end| end.live_isolates() == 1)))
}

/// Under loss, duplication, reordering, corruption, latency tails, partitions and clogs, a
/// pinger that resends gets every exact echo back, and across the seeds every one of those
/// faults fires.
#[test]
fn udp_survives_every_network_fault_and_each_fires() {
    let simulation = Simulation::new("udp-echo", |_| udp_echo())
        .fault("net_udp_loss_probability=10%")
        .fault("net_udp_duplicate_probability=10%")
        .fault("net_udp_reorder_probability=10%")
        .fault("net_udp_corrupt_probability=5%")
        .fault("net_delay_tail_probability=5%")
        .fault("net_partition_every=300ms")
        .fault("net_partition_max=200ms")
        .fault("net_clog_every=300ms")
        .fault("net_clog_max=100ms")
        .fail_on_crash(true);
    let kinds = [
        FaultKind::NetUdpLoss,
        FaultKind::NetUdpDuplicate,
        FaultKind::NetUdpReorder,
        FaultKind::NetUdpCorrupt,
        FaultKind::NetDelayTail,
        FaultKind::NetPartition,
        FaultKind::NetClog,
    ];
    let mut fired = [0u64; 7];
    for seed in 1..=20 {
        let report = simulation.run(seed).expect("valid");
        assert!(report.passed(), "seed {seed}: {:?}", report.outcome);
        for (count, kind) in fired.iter_mut().zip(kinds) {
            *count += report.faults.of(kind);
        }
    }
    for (count, kind) in fired.iter().zip(kinds) {
        assert!(*count > 0, "{} never fired: {fired:?}", kind.name());
    }
}

/// A connection reset reaches the application as `ConnectionReset`, never as a hang or as
/// bad data.
#[test]
fn a_reset_reaches_the_application() {
    let simulation = Simulation::new("tcp-echo", |_| echo())
        .fault("net_tcp_reset_probability=20%")
        .fail_on_crash(true);
    let (mut resets, mut caught) = (0, 0);
    for seed in 1..=10 {
        let report = simulation.run(seed).expect("valid");
        resets += report.faults.of(FaultKind::NetReset);
        if let tina_sim::Outcome::Fail { reason, .. } = &report.outcome {
            // Neither end reconnects: a reset ends one of them as a crash that says so.
            assert!(reason.contains("connection reset"), "seed {seed}: {reason}");
            caught += 1;
        }
    }
    assert!(resets > 0 && caught > 0, "resets {resets}, runs ended by one {caught}");
}
