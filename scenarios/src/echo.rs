//! `echo`: Tina's TCP echo over the virtual network. The server node runs a listener on
//! every shard (port 7000 + shard) that spawns one connection isolate per accepted socket;
//! each client node runs a client that connects, sends `round_trips` numbered packets of
//! `size` bytes one at a time and checks every echo byte for byte. With `chaos=1`, the first
//! client crashes after three round trips (its supervisor restarts it, and it starts over).
//! The goal is every client done; an echo that differs from its packet is a correctness
//! failure (TCP never corrupts, duplicates or reorders bytes, whatever the faults).
//!
//! Built to survive every fault: a client treats any failure (a reset, a refused or timed
//! out connect, a silent peer, an end of stream) as a lost connection: it closes, waits
//! `BACKOFF`, connects again and resends the packet of its current round (the server is
//! stateless). Every wait is bounded by `Effect::io_within`. A connection isolate owns its
//! socket (adopted from the listener), so the socket closes when it ends, crash included.

use core::marker::PhantomData;
use core::time::Duration;
use std::net::{Ipv4Addr, SocketAddr};

use tina::io::{BufferId, IoError, IoHandle, IoOp, IoOpKind, IoResult};
use tina::{
    Ctx, Effect, Event, Isolate, Label, Level, Message, ShardId, SystemSpec, TimerId, TypeConfig,
};
use tina_checkers::{EventKinds, FailureClass, Observer, Stamp, Verdict, Violation};

use crate::{ParamKind, ParamSpec, Params, Scenario, Setup};

/// A client finished every round trip (value: the client's number).
pub const DONE: Label = Label::new("echo.done");
/// A client's UDP pinger got every echo back (value: the client's number).
pub const UDP_DONE: Label = Label::new("echo.udp-done");
/// The server's UDP echo port (on its shard 0).
pub const UDP_PORT: u16 = 9000;
/// How long a UDP pinger waits for an echo before it sends the datagram again.
pub const UDP_RESEND: Duration = Duration::from_millis(50);
/// An echo differed from its packet (values: client, round).
pub const MISMATCH: Label = Label::new("echo.mismatch");
/// The chaos client crashes on purpose.
pub const CHAOS: Label = Label::new("echo.chaos");
/// A client gave up after `give_up` failures in a row (the planted bug; value: client).
pub const GAVE_UP: Label = Label::new("echo.gave-up");

/// Most bytes of one packet or datagram (the `size` parameter's bound).
pub const PACKET_SIZE_MAX: usize = 256;
/// Fewest bytes of one packet or datagram: the client's number and the round.
pub const PACKET_SIZE_MIN: usize = 16;
/// First listening port; shard `s` of the server listens on `PORT_BASE + s`.
pub const PORT_BASE: u16 = 7000;
/// How long a client waits before it connects again after a failure.
pub const BACKOFF: Duration = Duration::from_millis(20);
/// How long a client waits for a connect, a send or an echo.
pub const CLIENT_WAIT: Duration = Duration::from_secs(2);
/// How long a connection isolate waits for its client's next packet.
pub const SERVER_WAIT: Duration = Duration::from_secs(10);
/// Most clients (each is a node; the server is node 0).
pub const CLIENT_COUNT_MAX: u64 = 64;

/// The packet of `client`'s round `round`; only its first `size` bytes are sent.
fn packet(client: u64, round: u64) -> [u8; PACKET_SIZE_MAX] {
    let mut bytes = [0u8; PACKET_SIZE_MAX];
    bytes[..8].copy_from_slice(&client.to_le_bytes());
    bytes[8..16].copy_from_slice(&round.to_le_bytes());
    for (index, byte) in bytes[16..].iter_mut().enumerate() {
        // Only the low byte matters: a fill that differs per client, round and position.
        *byte = (client.wrapping_mul(31).wrapping_add(round).wrapping_add(index as u64)) as u8;
    }
    bytes
}

/// Copies the current completion's data (at most `PACKET_SIZE_MAX` bytes, the `len_max`
/// of every receive here) into `into`, without allocating.
fn copy_data<'a>(ctx: &Ctx<'_>, into: &'a mut [u8; PACKET_SIZE_MAX]) -> &'a [u8] {
    let data = ctx.io_data();
    let len = data.len().min(PACKET_SIZE_MAX);
    into[..len].copy_from_slice(&data[..len]);
    &into[..len]
}

/// A buffer holding `bytes`, ready to lend to a send; `None` when no buffer is free or
/// `bytes` do not fit (a buffer that was taken is given back, so nothing leaks).
fn filled_buffer(ctx: &mut Ctx<'_>, bytes: &[u8]) -> Option<BufferId> {
    let buffer = ctx.buffer_alloc().ok()?;
    if ctx.buffer_write(buffer, 0, bytes).is_err() {
        let _ = ctx.buffer_free(buffer);
        return None;
    }
    Some(buffer)
}

/// The server node's address in the simulator (node 0 of the virtual network).
pub const SIM_SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::from((SIM_SERVER_IP, port))
}

/// An IPv4 address carried in spawn arguments (its bits in a `u64`).
fn ip_from_bits(bits: u64) -> Ipv4Addr {
    // The low 32 bits: every caller stores an `Ipv4Addr`'s bits.
    Ipv4Addr::from_bits(bits as u32)
}

tina::spawn_args! {
    /// A listener's address: its port, and its IPv4 address as bits
    /// (`u64::from(ip.to_bits())`).
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ListenerArgs { pub port: u64, pub ip: u64 }
}

/// Listens on its address and spawns a connection isolate `C` (by default the echoing
/// [`Connection`]) per accepted socket, handing the socket over.
#[derive(Debug)]
pub struct Listener<C = Connection> {
    addr: SocketAddr,
    listener: IoHandle,
    _connection: PhantomData<fn() -> C>,
}

impl<C> Listener<C> {
    fn listen(&self) -> Effect {
        Effect::Io(IoOp::TcpListen { addr: self.addr, backlog: 64 })
    }

    /// The shard shuts down: accept no more (the accept in flight was cancelled), close
    /// the listening socket and end. A socket accepted meanwhile is closed first.
    fn shut_down(&mut self, message: &Message) -> Effect {
        if let Some(io) = message.io() {
            match (io.op, io.result) {
                (IoOpKind::TcpListen, IoResult::Opened(listener)) => self.listener = listener,
                (IoOpKind::TcpAccept, IoResult::Accepted { socket, .. }) => {
                    return Effect::Io(IoOp::Close { handle: socket });
                }
                _ => {}
            }
        }
        if self.listener == IoHandle::NONE {
            return Effect::Done;
        }
        let listener = core::mem::replace(&mut self.listener, IoHandle::NONE);
        Effect::Io(IoOp::Close { handle: listener })
    }

    fn accept(&self) -> Effect {
        Effect::Io(IoOp::TcpAccept { listener: self.listener })
    }
}

impl<C: Isolate<Args = ConnectionArgs>> Isolate for Listener<C> {
    type Args = ListenerArgs;

    fn init(args: ListenerArgs, _ctx: &mut Ctx<'_>) -> (Listener<C>, Effect) {
        // Ports come from a port base plus a shard index below 256, within `u16`.
        let addr = SocketAddr::from((ip_from_bits(args.ip), args.port as u16));
        let listener = Listener { addr, listener: IoHandle::NONE, _connection: PhantomData };
        let effect = listener.listen();
        (listener, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.shutting_down() {
            return self.shut_down(message);
        }
        if message.timer().is_some() {
            return self.listen();
        }
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::TcpListen, IoResult::Opened(listener)) => {
                self.listener = listener;
                self.accept()
            }
            (IoOpKind::TcpAccept, IoResult::Accepted { socket, .. }) => {
                // The connection isolate adopts the socket; if none can be spawned, the
                // socket is closed with the listener's next operation left to the accept.
                ctx.io_disown(socket);
                if ctx.spawn::<C>(ConnectionArgs { socket: socket.to_raw() }).is_err() {
                    return Effect::Io(IoOp::Close { handle: socket });
                }
                self.accept()
            }
            // A failed listen (the address is still held by a crashed incarnation's socket,
            // closing): try again. A failed accept or the close above: accept again.
            (IoOpKind::TcpListen, _) => {
                let _ = ctx.timer_set(BACKOFF, 0);
                Effect::Receive
            }
            _ => self.accept(),
        }
    }
}

tina::spawn_args! {
    /// An accepted socket, as raw bits.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ConnectionArgs { pub socket: u32 }
}

/// Echoes what its client sends until the client goes away or stays silent.
#[derive(Debug)]
pub struct Connection {
    socket: IoHandle,
}

impl Connection {
    fn recv(&self) -> Effect {
        Effect::io_within(
            IoOp::TcpRecv { socket: self.socket, len_max: PACKET_SIZE_MAX as u32 },
            SERVER_WAIT,
        )
    }
}

impl Isolate for Connection {
    type Args = ConnectionArgs;

    fn init(args: ConnectionArgs, ctx: &mut Ctx<'_>) -> (Connection, Effect) {
        let socket = IoHandle::from_raw(args.socket);
        let connection = Connection { socket };
        if ctx.io_adopt(socket).is_err() {
            return (connection, Effect::Io(IoOp::Close { handle: socket }));
        }
        let effect = connection.recv();
        (connection, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        // Its receive in flight was cancelled when the shutdown began (a completion
        // `Failed(TimedOut)`, which closes below); a notice can only come while it waits
        // for messages, which it never does.
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::TcpRecv, IoResult::Received { len, .. }) if len > 0 => {
                // At most `len_max` bytes arrive: copy them out of the completion.
                let mut data = [0u8; PACKET_SIZE_MAX];
                let data = copy_data(ctx, &mut data);
                let Some(buffer) = filled_buffer(ctx, data) else {
                    return Effect::Io(IoOp::Close { handle: self.socket });
                };
                Effect::io_within(IoOp::TcpSend { socket: self.socket, buffer, len }, SERVER_WAIT)
            }
            // The echo in hand is answered; when the shard shuts down, that was the last.
            (IoOpKind::TcpSend, IoResult::Transferred(_)) if ctx.shutting_down() => {
                Effect::Io(IoOp::Close { handle: self.socket })
            }
            (IoOpKind::TcpSend, IoResult::Transferred(_)) => self.recv(),
            (IoOpKind::Close, _) => Effect::Done,
            // End of stream, a reset, a silent client, a partial send: close and end.
            _ => Effect::Io(IoOp::Close { handle: self.socket }),
        }
    }
}

tina::spawn_args! {
    /// A client: its number, its round trips, its server's port, whether it is the chaos
    /// client, the bytes of each packet (`PACKET_SIZE_MIN..=PACKET_SIZE_MAX`), the planted
    /// bug's patience (0: none), and its server's IPv4 address as bits.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ClientArgs {
        pub client: u64,
        pub round_trips: u64,
        pub port: u64,
        pub chaos: u64,
        pub size: u64,
        pub give_up: u64,
        pub server_ip: u64,
    }
}

/// Where a client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending,
    Receiving,
    Closing,
    BackingOff,
    Finishing,
}

/// Sends numbered packets one at a time over one connection, checks every echo, and
/// reconnects after any failure.
#[derive(Debug)]
pub struct Client {
    args: ClientArgs,
    socket: IoHandle,
    round: u64,
    phase: Phase,
    /// Bytes of the current packet sent, and of its echo received.
    sent: usize,
    echo: [u8; PACKET_SIZE_MAX],
    received: usize,
    backoff: Option<TimerId>,
    /// Failures since the last echo (for the planted `give_up` bug).
    failures: u64,
}

impl Client {
    /// Bytes of each packet (`ClientArgs::size`, within `PACKET_SIZE_MIN..=PACKET_SIZE_MAX`).
    fn size(&self) -> usize {
        (self.args.size as usize).clamp(PACKET_SIZE_MIN, PACKET_SIZE_MAX)
    }

    fn connect(&mut self) -> Effect {
        self.phase = Phase::Connecting;
        // Ports are below 65,536.
        let addr = SocketAddr::from((ip_from_bits(self.args.server_ip), self.args.port as u16));
        Effect::io_within(IoOp::TcpConnect { addr }, CLIENT_WAIT)
    }

    /// Sends what is left of the current packet.
    fn send(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        self.phase = Phase::Sending;
        let bytes = packet(self.args.client, self.round);
        let size = self.size();
        let Some(buffer) = filled_buffer(ctx, &bytes[self.sent..size]) else { return self.fail() };
        let len = (size - self.sent) as u32;
        Effect::io_within(IoOp::TcpSend { socket: self.socket, buffer, len }, CLIENT_WAIT)
    }

    fn receive(&mut self) -> Effect {
        self.phase = Phase::Receiving;
        let len_max = (self.size() - self.received) as u32;
        Effect::io_within(IoOp::TcpRecv { socket: self.socket, len_max }, CLIENT_WAIT)
    }

    /// The connection is lost: close it, then back off and connect again.
    fn fail(&mut self) -> Effect {
        self.failures += 1;
        self.sent = 0;
        self.received = 0;
        if self.socket == IoHandle::NONE {
            self.phase = Phase::BackingOff;
            return Effect::Receive;
        }
        self.phase = Phase::Closing;
        let socket = core::mem::replace(&mut self.socket, IoHandle::NONE);
        Effect::Io(IoOp::Close { handle: socket })
    }

    /// The echo of the current round is complete: check it and go on.
    fn echoed(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        let (client, round) = (self.args.client, self.round);
        let size = self.size();
        if self.echo[..size] != packet(client, round)[..size] {
            ctx.log(Level::Error, MISMATCH, [client, round]);
            return Effect::Crash(MISMATCH);
        }
        self.round += 1;
        (self.sent, self.received, self.failures) = (0, 0, 0);
        let first_incarnation = ctx.self_handle().generation() == 1;
        if self.args.chaos == 1 && self.round == 3 && first_incarnation {
            return Effect::Crash(CHAOS);
        }
        if self.round == self.args.round_trips {
            ctx.log(Level::Info, DONE, [client]);
            self.phase = Phase::Finishing;
            let socket = core::mem::replace(&mut self.socket, IoHandle::NONE);
            return Effect::Io(IoOp::Close { handle: socket });
        }
        self.send(ctx)
    }
}

impl Isolate for Client {
    type Args = ClientArgs;

    fn init(args: ClientArgs, _ctx: &mut Ctx<'_>) -> (Client, Effect) {
        let mut client = Client {
            args,
            socket: IoHandle::NONE,
            round: 0,
            phase: Phase::Connecting,
            sent: 0,
            echo: [0; PACKET_SIZE_MAX],
            received: 0,
            backoff: None,
            failures: 0,
        };
        let effect = client.connect();
        (client, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.shutting_down() {
            // Send no more: close the connection if one is open (a connect that completes
            // now brings one), then end. Nothing else is in flight while this runs.
            if let Some(io) = message.io()
                && let (IoOpKind::TcpConnect, IoResult::Opened(socket)) = (io.op, io.result)
            {
                self.socket = socket;
            }
            if self.socket == IoHandle::NONE {
                return Effect::Done;
            }
            self.phase = Phase::Finishing;
            let socket = core::mem::replace(&mut self.socket, IoHandle::NONE);
            return Effect::Io(IoOp::Close { handle: socket });
        }
        if message.timer().is_some() {
            self.backoff = None;
            if self.phase != Phase::BackingOff {
                return Effect::Receive;
            }
            // The planted bug: a client that stops retrying, so a partition longer than
            // its patience leaves it unfinished (a liveness failure).
            if self.args.give_up > 0 && self.failures >= self.args.give_up {
                ctx.log(Level::Warn, GAVE_UP, [self.args.client]);
                return Effect::Done;
            }
            return self.connect();
        }
        let Some(io) = message.io() else { return Effect::Receive };
        match (self.phase, io.op, io.result) {
            (Phase::Connecting, IoOpKind::TcpConnect, IoResult::Opened(socket)) => {
                self.socket = socket;
                self.send(ctx)
            }
            (Phase::Sending, IoOpKind::TcpSend, IoResult::Transferred(n)) if n > 0 => {
                self.sent += n as usize;
                if self.sent < self.size() { self.send(ctx) } else { self.receive() }
            }
            (Phase::Receiving, IoOpKind::TcpRecv, IoResult::Received { len, .. }) if len > 0 => {
                let data = ctx.io_data();
                let end = self.received + data.len();
                if end > self.size() {
                    // More than was sent came back: the stream is broken.
                    ctx.log(Level::Error, MISMATCH, [self.args.client, self.round]);
                    return Effect::Crash(MISMATCH);
                }
                self.echo[self.received..end].copy_from_slice(data);
                self.received = end;
                if self.received < self.size() { self.receive() } else { self.echoed(ctx) }
            }
            (Phase::Finishing, IoOpKind::Close, _) => Effect::Done,
            (Phase::Closing, IoOpKind::Close, _) => {
                self.phase = Phase::BackingOff;
                self.backoff = ctx.timer_set(BACKOFF, 0).ok();
                if self.backoff.is_none() { self.connect() } else { Effect::Receive }
            }
            // A failed connect, send or receive, an end of stream or a silent server.
            (_, _, IoResult::Failed(IoError::TooManyHandles)) => self.fail(),
            _ => {
                let effect = self.fail();
                if self.phase == Phase::BackingOff {
                    self.backoff = ctx.timer_set(BACKOFF, 0).ok();
                    if self.backoff.is_none() {
                        return self.connect();
                    }
                }
                effect
            }
        }
    }
}

/// A UDP isolate's shutdown: close its socket (one a bind just opened, too), then end.
fn udp_shut_down(socket: &mut IoHandle, message: &Message) -> Effect {
    if let Some(io) = message.io()
        && let (IoOpKind::UdpBind, IoResult::Opened(opened)) = (io.op, io.result)
    {
        *socket = opened;
    }
    if *socket == IoHandle::NONE {
        return Effect::Done;
    }
    let handle = core::mem::replace(socket, IoHandle::NONE);
    Effect::Io(IoOp::Close { handle })
}

tina::spawn_args! {
    /// Nothing: the UDP echo has no arguments.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct NoArgs { pub unused: u64 }
}

/// Echoes every datagram to its sender, forever.
#[derive(Debug)]
pub struct UdpEcho {
    socket: IoHandle,
}

impl UdpEcho {
    fn bind() -> Effect {
        Effect::Io(IoOp::UdpBind { addr: server_addr(UDP_PORT) })
    }

    fn recv(&self) -> Effect {
        Effect::Io(IoOp::UdpRecvFrom { socket: self.socket, len_max: PACKET_SIZE_MAX as u32 })
    }
}

impl Isolate for UdpEcho {
    type Args = NoArgs;

    fn init(_args: NoArgs, _ctx: &mut Ctx<'_>) -> (UdpEcho, Effect) {
        (UdpEcho { socket: IoHandle::NONE }, UdpEcho::bind())
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.shutting_down() {
            return udp_shut_down(&mut self.socket, message);
        }
        if message.timer().is_some() {
            return UdpEcho::bind();
        }
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::UdpBind, IoResult::Opened(socket)) => {
                self.socket = socket;
                self.recv()
            }
            // The port is still held by a crashed incarnation's socket, closing: again.
            (IoOpKind::UdpBind, _) => {
                let _ = ctx.timer_set(BACKOFF, 0);
                Effect::Receive
            }
            (IoOpKind::UdpRecvFrom, IoResult::Received { len, from: Some(from) }) => {
                let mut data = [0u8; PACKET_SIZE_MAX];
                let data = copy_data(ctx, &mut data);
                let Some(buffer) = filled_buffer(ctx, data) else { return self.recv() };
                Effect::Io(IoOp::UdpSendTo { socket: self.socket, addr: from, buffer, len })
            }
            _ => self.recv(),
        }
    }
}

/// Pings the server's UDP echo `round_trips` times, each until its exact echo comes back;
/// a lost, duplicated, reordered or corrupted datagram is simply not the echo it waits
/// for, and the ping is sent again after `UDP_RESEND`.
#[derive(Debug)]
pub struct UdpPinger {
    args: ClientArgs,
    socket: IoHandle,
    ping: u64,
}

impl UdpPinger {
    fn bind() -> Effect {
        let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        Effect::Io(IoOp::UdpBind { addr })
    }

    /// Bytes of each datagram (`ClientArgs::size`, within the packet bounds).
    fn size(&self) -> usize {
        (self.args.size as usize).clamp(PACKET_SIZE_MIN, PACKET_SIZE_MAX)
    }

    /// Whether `data` is the echo of the current ping.
    fn is_echo(&self, data: &[u8]) -> bool {
        data == &packet(self.args.client, self.ping)[..self.size()]
    }

    fn send(&self, ctx: &mut Ctx<'_>) -> Effect {
        let size = self.size();
        let packet = packet(self.args.client, self.ping);
        let Some(buffer) = filled_buffer(ctx, &packet[..size]) else { return self.wait() };
        let addr = server_addr(UDP_PORT);
        Effect::Io(IoOp::UdpSendTo { socket: self.socket, addr, buffer, len: size as u32 })
    }

    fn wait(&self) -> Effect {
        let recv = IoOp::UdpRecvFrom { socket: self.socket, len_max: PACKET_SIZE_MAX as u32 };
        Effect::io_within(recv, UDP_RESEND)
    }
}

impl Isolate for UdpPinger {
    type Args = ClientArgs;

    fn init(args: ClientArgs, _ctx: &mut Ctx<'_>) -> (UdpPinger, Effect) {
        (UdpPinger { args, socket: IoHandle::NONE, ping: 0 }, UdpPinger::bind())
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.shutting_down() {
            return udp_shut_down(&mut self.socket, message);
        }
        if message.timer().is_some() {
            // A backoff ended: bind again, or ping again on the bound socket.
            return if self.socket == IoHandle::NONE { UdpPinger::bind() } else { self.send(ctx) };
        }
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::UdpBind, IoResult::Opened(socket)) => {
                self.socket = socket;
                self.send(ctx)
            }
            (IoOpKind::UdpBind, _) => {
                let _ = ctx.timer_set(BACKOFF, 0);
                Effect::Receive
            }
            (IoOpKind::UdpSendTo, _) => self.wait(),
            (IoOpKind::UdpRecvFrom, IoResult::Received { .. }) if self.is_echo(ctx.io_data()) => {
                self.ping += 1;
                if self.ping == self.args.round_trips {
                    ctx.log(Level::Info, UDP_DONE, [self.args.client]);
                    return Effect::Done;
                }
                self.send(ctx)
            }
            // Another datagram (late, duplicated or corrupted): keep waiting for the echo.
            (IoOpKind::UdpRecvFrom, IoResult::Received { .. }) => self.wait(),
            // No echo in time: send the ping again.
            (IoOpKind::UdpRecvFrom, IoResult::Failed(IoError::TimedOut)) => self.send(ctx),
            // The receive failed at once (no buffer free, a socket in trouble): back off
            // before pinging again, so a lasting failure never spins.
            _ => {
                if ctx.timer_set(BACKOFF, 0).is_err() {
                    return self.wait();
                }
                Effect::Receive
            }
        }
    }
}

/// The goal: every TCP client done (unless `udp=2`) and every UDP pinger done (unless
/// `udp=0`). An echo that differed fails the run.
#[derive(Debug)]
struct Goal {
    clients: u64,
    tcp: bool,
    done: u64,
    udp: bool,
    udp_done: u64,
}

impl Observer for Goal {
    fn name(&self) -> &'static str {
        "echo.goal"
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::LOG
    }

    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        match event {
            Event::Log { tag, values, .. } if *tag == DONE || *tag == UDP_DONE => {
                // Each finishes once: it ends right after (Transient: not restarted).
                if *tag == DONE {
                    self.done |= 1 << values[0];
                } else {
                    self.udp_done |= 1 << values[0];
                }
                let all = |mask: u64| u64::from(mask.count_ones()) == self.clients;
                if (!self.tcp || all(self.done)) && (!self.udp || all(self.udp_done)) {
                    Verdict::Done
                } else {
                    Verdict::Continue
                }
            }
            Event::Log { tag, values, .. } if *tag == MISMATCH => Verdict::Violated(Violation {
                class: FailureClass::Correctness,
                checker: "echo.goal",
                explanation: format!(
                    "client {} got an echo of round {} that differs from its packet",
                    values[0], values[1]
                ),
            }),
            _ => Verdict::Continue,
        }
    }
}

/// The `echo` scenario.
#[derive(Debug)]
pub struct EchoScenario;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "clients",
        kind: ParamKind::Count,
        default: 3,
        min: 1,
        max: CLIENT_COUNT_MAX,
        description: "client nodes, each with one client",
    },
    ParamSpec {
        name: "round_trips",
        kind: ParamKind::Count,
        default: 50,
        min: 1,
        max: 1_000_000,
        description: "packets each client sends and checks",
    },
    ParamSpec {
        name: "server_shards",
        kind: ParamKind::Count,
        default: 2,
        min: 1,
        max: 16,
        description: "shards of the server node, each with a listener on port 7000 + shard",
    },
    ParamSpec {
        name: "chaos",
        kind: ParamKind::Count,
        default: 1,
        min: 0,
        max: 1,
        description: "1: the first client crashes after three round trips, once",
    },
    ParamSpec {
        name: "udp",
        kind: ParamKind::Count,
        default: 1,
        min: 0,
        max: 2,
        description: "1: each client node also pings the server's UDP echo (port 9000) round_trips times; 0: TCP only; 2: UDP only",
    },
    ParamSpec {
        name: "give_up",
        kind: ParamKind::Count,
        default: 0,
        min: 0,
        max: 1_000,
        description: "0: clients retry for ever; N: the planted bug, a client gives up after N failures in a row (plant echo-gives-up: 1)",
    },
    ParamSpec {
        name: "size",
        kind: ParamKind::Count,
        default: 32,
        min: PACKET_SIZE_MIN as u64,
        max: PACKET_SIZE_MAX as u64,
        description: "bytes of each packet and datagram",
    },
];

/// The shape of an echo server node: what the `echo` scenario builds in the simulator and
/// the `echo` example runs on real sockets.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// Shards; shard `s` listens on `port_base + s`. At most 16.
    pub shards: usize,
    /// The address every listener binds (`SIM_SERVER_IP` in the simulator).
    pub ip: Ipv4Addr,
    /// The port of shard 0's listener.
    pub port_base: u16,
    /// Whether shard 0 also runs the UDP echo on `UDP_PORT` (simulator only: it binds
    /// `SIM_SERVER_IP`).
    pub udp: bool,
    /// Connection isolates per shard, 1 to `CONNECTIONS_PER_SHARD_MAX` (clamped); the
    /// scenario uses `CONNECTIONS_PER_SHARD`. Each has one receive or send in flight and
    /// one I/O buffer, so the shard's buffers and in-flight table grow with it.
    pub connections: u32,
}

/// Connection isolates per shard of an echo server by default (`ServerConfig::
/// connections`): each accepted socket beyond them is closed at once (the listener's
/// spawn fails), so memory stays flat under a flood.
pub const CONNECTIONS_PER_SHARD: u32 = 64;

/// The most connection isolates per shard a `ServerConfig` may ask for.
pub const CONNECTIONS_PER_SHARD_MAX: u32 = 4096;

/// The echo server node: a root group per shard that tolerates a storm of restarts, a
/// [`Listener`] on every shard spawning a connection isolate `C` per accepted socket (the
/// echoing [`Connection`], or a type of the caller's that wraps it), and the I/O buffers
/// its connections need.
pub fn server_spec<C: Isolate<Args = ConnectionArgs>>(config: &ServerConfig) -> SystemSpec {
    let mut server = SystemSpec::new(config.shards);
    let listener = server.register::<Listener<C>>(TypeConfig::new("listener").slots(1));
    let connections = config.connections.clamp(1, CONNECTIONS_PER_SHARD_MAX);
    server.register::<C>(TypeConfig::new("connection").slots(connections));
    // One buffer and one operation per connection, and room for the listener and the UDP
    // echo; never fewer than the scenario has always had.
    let per_shard = (connections + 64).max(256);
    server.io_buffers(per_shard, 256);
    server.io_in_flight_max(per_shard.max(SystemSpec::IO_IN_FLIGHT_MAX_DEFAULT));
    let udp_echo = server.register::<UdpEcho>(TypeConfig::new("udp-echo").slots(1));
    let ip = u64::from(config.ip.to_bits());
    for shard in 0..config.shards {
        // Injected crashes restart listeners often; escalate only on a storm.
        crate::storm_tolerant_root(&mut server, ShardId(shard as u8));
        let port = u64::from(config.port_base) + shard as u64;
        server.boot_child(ShardId(shard as u8), listener, ListenerArgs { port, ip });
    }
    if config.udp {
        server.boot_child(ShardId(0), udp_echo, NoArgs { unused: 0 });
    }
    server
}

/// A client node of one shard running a TCP [`Client`] (if `tcp`) and a [`UdpPinger`] (if
/// `udp`, simulator only) for each of `clients`.
pub fn client_spec(clients: &[ClientArgs], tcp: bool, udp: bool) -> SystemSpec {
    let mut spec = crate::client_node();
    // Room for the largest packet (`size`) in every send buffer.
    spec.io_buffers(16 * clients.len().max(1) as u32, PACKET_SIZE_MAX as u32);
    let slots = clients.len().max(1) as u32;
    let ty = spec.register::<Client>(TypeConfig::new("client").slots(slots));
    let pinger = spec.register::<UdpPinger>(TypeConfig::new("udp-pinger").slots(slots));
    for &args in clients {
        if tcp {
            spec.boot_child(ShardId(0), ty, args);
        }
        if udp {
            spec.boot_child(ShardId(0), pinger, args);
        }
    }
    spec
}

impl Scenario for EchoScenario {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn description(&self) -> &'static str {
        "Tina's TCP echo: clients on their own nodes check every echo from a server node"
    }

    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }

    fn build(&self, params: &Params) -> Setup {
        let (clients, shards) = (params.get("clients"), params.get("server_shards"));
        // At most 16 shards and 64 clients (the parameters' bounds).
        let (clients, shards) = (clients as usize, shards as usize);
        let (tcp, udp) = (params.get("udp") != 2, params.get("udp") != 0);
        let server = ServerConfig {
            shards,
            ip: SIM_SERVER_IP,
            port_base: PORT_BASE,
            udp,
            connections: CONNECTIONS_PER_SHARD,
        };
        let mut nodes = vec![server_spec::<Connection>(&server)];
        for client in 0..clients {
            let args = ClientArgs {
                client: client as u64,
                round_trips: params.get("round_trips"),
                port: u64::from(PORT_BASE) + (client % shards) as u64,
                chaos: u64::from(client == 0 && params.get("chaos") == 1),
                size: params.get("size"),
                give_up: params.get("give_up"),
                server_ip: u64::from(SIM_SERVER_IP.to_bits()),
            };
            nodes.push(client_spec(&[args], tcp, udp));
        }
        Setup::nodes(nodes)
            .observer(Goal { clients: clients as u64, tcp, done: 0, udp, udp_done: 0 })
            .goal(crate::Goal::Observed)
            .drains_on_shutdown()
    }
}
