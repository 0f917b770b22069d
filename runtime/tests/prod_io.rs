//! Real sockets and files through `tina::prod::Runtime`: isolates written with the public
//! API only, every test run once per I/O driver (io_uring where this kernel has it, and
//! epoll), each ending with nothing in flight, no handle open and every buffer free.
#![cfg(target_os = "linux")]
#![expect(
    clippy::disallowed_methods,
    reason = "real sockets on real threads: the test's side waits on the wall clock"
)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tina::io::{IoCompletion, IoError, IoHandle, IoOp, IoOpKind, IoResult, OpenMode};
use tina::prod::io::io_uring_available;
use tina::prod::{IoDriverChoice, IoDriverKind, Runtime, RuntimeConfig, RuntimeError, Summary};
use tina::{
    Ctx, Effect, GroupConfig, Isolate, Label, Message, Restart, ShardId, Strategy, SystemSpec,
    TypeConfig,
};

/// How long a test waits for the shards (far more than they need).
const PATIENCE: Duration = Duration::from_secs(20);
/// I/O buffers per shard in these specs (`SystemSpec::io_buffers`).
const BUFFERS: u32 = 32;
/// Bytes per buffer.
const BUFFER_SIZE: u32 = 4096;

/// The drivers to test: epoll always, io_uring where the kernel allows it.
fn drivers() -> Vec<(IoDriverChoice, IoDriverKind)> {
    let mut drivers = vec![(IoDriverChoice::Epoll, IoDriverKind::Epoll)];
    if io_uring_available() {
        drivers.insert(0, (IoDriverChoice::IoUring, IoDriverKind::IoUring));
    } else {
        eprintln!("io_uring is unavailable on this machine: only the epoll driver is tested");
    }
    drivers
}

fn spec(shards: usize) -> SystemSpec {
    let mut spec = SystemSpec::new(shards);
    spec.io_buffers(BUFFERS, BUFFER_SIZE);
    spec
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A loopback port nothing listens on (the kernel's pick, released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A completion an isolate did not expect: printed (the test's output shows it) and a
/// crash, which the test sees in the counters.
fn unexpected(what: &str, io: Option<IoCompletion>) -> Effect {
    eprintln!("{what}: unexpected completion {io:?}");
    Effect::Crash(Label::new("unexpected"))
}

/// Sends `bytes` on `socket` from a fresh buffer.
fn send(ctx: &mut Ctx<'_>, socket: IoHandle, bytes: &[u8], timeout: Duration) -> Effect {
    let buffer = ctx.buffer_alloc().expect("a free buffer");
    ctx.buffer_write(buffer, 0, bytes).expect("fits a buffer");
    Effect::io_within(IoOp::TcpSend { socket, buffer, len: bytes.len() as u32 }, timeout)
}

/// Boots `spec` on `choice`, checks every shard runs the driver expected, runs `during` on
/// the test's thread, waits until every isolate finished and the I/O is settled (nothing in
/// flight, no handle open), then stops. Returns the summary and what `during` returned.
fn run<T>(
    spec: SystemSpec,
    (choice, kind): (IoDriverChoice, IoDriverKind),
    io_handles_max: u32,
    during: impl FnOnce(&Runtime) -> T,
) -> (Summary, T) {
    let config = RuntimeConfig { io_driver: choice, io_handles_max, ..Default::default() };
    let runtime = Runtime::boot(spec, config).expect("boots");
    for report in runtime.reports() {
        assert_eq!(report.io.driver, Some(kind));
        assert_eq!(report.io.handles_max, io_handles_max as usize);
    }
    let kept = during(&runtime);
    let settled = runtime.wait_until(PATIENCE, |reports| {
        reports.iter().all(|r| r.live_isolates == 0 && r.io.in_flight == 0)
    });
    let summary = runtime.stop();
    assert!(settled, "{kind}: every isolate finished, nothing in flight: {:#?}", summary.shards);
    (summary, kept)
}

/// Nothing leaked: no crash, every submission completed, nothing in flight, no handle
/// open, every buffer free.
fn assert_clean(kind: IoDriverKind, summary: &Summary) {
    for report in &summary.shards {
        assert_eq!(report.counters.crashes, 0, "{kind}: {report:#?}");
        assert_eq!(report.io.submitted, report.io.completed, "{kind}: {report:#?}");
        assert_eq!(report.io.in_flight, 0, "{kind}: {report:#?}");
        assert_eq!(report.io.handles_in_use, 0, "{kind}: {report:#?}");
        assert_eq!(report.io.buffers_free, BUFFERS as usize, "{kind}: {report:#?}");
    }
}

/// Accepts a connection on a non-blocking std listener within `PATIENCE`.
fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection came");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) => panic!("accept: {error}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// A TCP echo between isolates.

tina::spawn_args! {
    /// A port and a count.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct PortArgs { pub port: u64, pub count: u64 }
}

tina::spawn_args! {
    /// A socket handle's raw bits.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct SocketArgs { pub socket: u32 }
}

/// Listens, hands `count` accepted sockets to `EchoConnection`s, then closes.
struct EchoListener {
    listener: IoHandle,
    accepts_left: u64,
}

impl Isolate for EchoListener {
    type Args = PortArgs;

    fn init(args: PortArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let addr = local(args.port as u16);
        let listener = EchoListener { listener: IoHandle::NONE, accepts_left: args.count };
        (listener, Effect::Io(IoOp::TcpListen { addr, backlog: 16 }))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let io = message.io();
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::TcpListen, IoResult::Opened(listener))) => {
                self.listener = listener;
                Effect::Io(IoOp::TcpAccept { listener })
            }
            Some((IoOpKind::TcpAccept, IoResult::Accepted { socket, peer }))
                if peer.ip() == local(0).ip() =>
            {
                ctx.io_disown(socket);
                ctx.spawn::<EchoConnection>(SocketArgs { socket: socket.to_raw() })
                    .expect("a connection slot");
                self.accepts_left -= 1;
                if self.accepts_left == 0 {
                    Effect::Io(IoOp::Close { handle: self.listener })
                } else {
                    Effect::Io(IoOp::TcpAccept { listener: self.listener })
                }
            }
            Some((IoOpKind::Close, IoResult::Done)) => Effect::Done,
            _ => unexpected("echo listener", io),
        }
    }
}

/// Echoes what it receives until the end of the stream, then closes.
struct EchoConnection {
    socket: IoHandle,
}

impl EchoConnection {
    fn recv(&self) -> Effect {
        Effect::io_within(IoOp::TcpRecv { socket: self.socket, len_max: BUFFER_SIZE }, PATIENCE)
    }
}

impl Isolate for EchoConnection {
    type Args = SocketArgs;

    fn init(args: SocketArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let connection = EchoConnection { socket: IoHandle::from_raw(args.socket) };
        ctx.io_adopt(connection.socket).expect("room for one handle");
        let effect = connection.recv();
        (connection, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let io = message.io();
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::TcpRecv, IoResult::Received { len: 0, .. })) => {
                Effect::Io(IoOp::Close { handle: self.socket })
            }
            Some((IoOpKind::TcpRecv, IoResult::Received { .. })) => {
                let data = ctx.io_data().to_vec();
                send(ctx, self.socket, &data, PATIENCE)
            }
            Some((IoOpKind::TcpSend, IoResult::Transferred(_))) => self.recv(),
            Some((IoOpKind::Close, IoResult::Done)) => Effect::Done,
            _ => unexpected("echo connection", io),
        }
    }
}

/// The bytes of round `round`: a length and a fill that differ per round.
fn packet(round: u64) -> Vec<u8> {
    let len = 1 + (round as usize * 397) % 3000;
    (0..len).map(|index| (round as usize * 31 + index * 7) as u8).collect()
}

/// Connects (retrying while nobody listens yet), sends `count` packets one at a time and
/// checks every echo byte for byte, then closes.
struct EchoClient {
    port: u16,
    rounds: u64,
    round: u64,
    received: usize,
    socket: IoHandle,
    refused: u32,
}

impl EchoClient {
    fn connect(&self) -> Effect {
        Effect::io_within(IoOp::TcpConnect { addr: local(self.port) }, PATIENCE)
    }

    fn recv(&self) -> Effect {
        Effect::io_within(IoOp::TcpRecv { socket: self.socket, len_max: BUFFER_SIZE }, PATIENCE)
    }
}

impl Isolate for EchoClient {
    type Args = PortArgs;

    fn init(args: PortArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let client = EchoClient {
            port: args.port as u16,
            rounds: args.count,
            round: 0,
            received: 0,
            socket: IoHandle::NONE,
            refused: 0,
        };
        let effect = client.connect();
        (client, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.timer().is_some() {
            return self.connect();
        }
        let io = message.io();
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::TcpConnect, IoResult::Failed(IoError::ConnectionRefused)))
                if self.refused < 2000 =>
            {
                // The listener's shard has not listened yet.
                self.refused += 1;
                ctx.timer_set(Duration::from_millis(5), 0).expect("a timer");
                Effect::Receive
            }
            Some((IoOpKind::TcpConnect, IoResult::Opened(socket))) => {
                self.socket = socket;
                send(ctx, socket, &packet(0), PATIENCE)
            }
            Some((IoOpKind::TcpSend, IoResult::Transferred(len)))
                if len as usize == packet(self.round).len() =>
            {
                self.recv()
            }
            Some((IoOpKind::TcpRecv, IoResult::Received { len, .. })) if len > 0 => {
                let expected = packet(self.round);
                let end = self.received + len as usize;
                if end > expected.len() || ctx.io_data() != &expected[self.received..end] {
                    eprintln!("round {}: the echo differs from the packet", self.round);
                    return Effect::Crash(Label::new("mismatch"));
                }
                self.received = end;
                if self.received < expected.len() {
                    return self.recv();
                }
                self.received = 0;
                self.round += 1;
                if self.round == self.rounds {
                    return Effect::Io(IoOp::Close { handle: self.socket });
                }
                send(ctx, self.socket, &packet(self.round), PATIENCE)
            }
            Some((IoOpKind::Close, IoResult::Done)) => Effect::Done,
            _ => unexpected("echo client", io),
        }
    }
}

#[test]
fn tcp_echo_between_isolates_on_two_shards() {
    const ROUNDS: u64 = 200;
    for driver in drivers() {
        let port = free_port();
        let mut spec = spec(2);
        let listener = spec.register::<EchoListener>(TypeConfig::new("listener").slots(1));
        spec.register::<EchoConnection>(TypeConfig::new("connection").slots(4));
        let client = spec.register::<EchoClient>(TypeConfig::new("client").slots(1));
        spec.boot_child(ShardId(0), listener, PortArgs { port: u64::from(port), count: 1 });
        spec.boot_child(ShardId(1), client, PortArgs { port: u64::from(port), count: ROUNDS });
        let (summary, ()) = run(spec, driver, 64, |_| ());
        assert_clean(driver.1, &summary);
        let (server, client) = (&summary.shards[0], &summary.shards[1]);
        assert_eq!(client.counters.exits_normal, 1, "{:?}: the client checked every echo", driver);
        assert_eq!(server.counters.exits_normal, 2, "the listener and the connection ended");
        // Connect, ROUNDS sends, a receive per echo at least, close.
        assert!(client.io.submitted >= 2 * ROUNDS + 2, "{client:#?}");
    }
}

// ---------------------------------------------------------------------------------------
// UDP.

/// Echoes datagrams to their sender until it gets the one-byte `!`.
struct UdpEcho {
    socket: IoHandle,
}

impl Isolate for UdpEcho {
    type Args = PortArgs;

    fn init(args: PortArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (
            UdpEcho { socket: IoHandle::NONE },
            Effect::Io(IoOp::UdpBind { addr: local(args.port as u16) }),
        )
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let recv = |socket| Effect::Io(IoOp::UdpRecvFrom { socket, len_max: BUFFER_SIZE });
        let io = message.io();
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::UdpBind, IoResult::Opened(socket))) => {
                self.socket = socket;
                recv(socket)
            }
            Some((IoOpKind::UdpRecvFrom, IoResult::Received { from: Some(_), .. }))
                if ctx.io_data() == b"!" =>
            {
                Effect::Io(IoOp::Close { handle: self.socket })
            }
            Some((IoOpKind::UdpRecvFrom, IoResult::Received { len, from: Some(from) })) => {
                let buffer = ctx.buffer_alloc().expect("a buffer");
                let data = ctx.io_data().to_vec();
                ctx.buffer_write(buffer, 0, &data).expect("fits");
                Effect::Io(IoOp::UdpSendTo { socket: self.socket, addr: from, buffer, len })
            }
            Some((IoOpKind::UdpSendTo, IoResult::Transferred(_))) => recv(self.socket),
            Some((IoOpKind::Close, IoResult::Done)) => Effect::Done,
            _ => unexpected("udp echo", io),
        }
    }
}

tina::spawn_args! {
    /// Its own port, the echo's, and the round trips.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct UdpClientArgs { pub port: u64, pub echo: u64, pub rounds: u64 }
}

/// Sends numbered datagrams to the echo and checks each comes back from it, resending
/// after a silence (the echo may not be bound yet); then the `!`.
struct UdpClient {
    args: UdpClientArgs,
    socket: IoHandle,
    round: u64,
    silences: u32,
    finishing: bool,
}

impl UdpClient {
    fn datagram(&self) -> Vec<u8> {
        let mut bytes = self.round.to_le_bytes().to_vec();
        bytes.resize(8 + (self.round as usize * 53) % 1000, self.round as u8);
        bytes
    }

    fn send(&self, ctx: &mut Ctx<'_>, bytes: &[u8]) -> Effect {
        let buffer = ctx.buffer_alloc().expect("a buffer");
        ctx.buffer_write(buffer, 0, bytes).expect("fits");
        let addr = local(self.args.echo as u16);
        Effect::Io(IoOp::UdpSendTo { socket: self.socket, addr, buffer, len: bytes.len() as u32 })
    }
}

impl Isolate for UdpClient {
    type Args = UdpClientArgs;

    fn init(args: UdpClientArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let addr = local(args.port as u16);
        let client =
            UdpClient { args, socket: IoHandle::NONE, round: 0, silences: 0, finishing: false };
        (client, Effect::Io(IoOp::UdpBind { addr }))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let io = message.io();
        let echo = local(self.args.echo as u16);
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::UdpBind, IoResult::Opened(socket))) => {
                self.socket = socket;
                let datagram = self.datagram();
                self.send(ctx, &datagram)
            }
            Some((IoOpKind::UdpSendTo, IoResult::Transferred(_))) if self.finishing => {
                Effect::Io(IoOp::Close { handle: self.socket })
            }
            Some((IoOpKind::UdpSendTo, IoResult::Transferred(len)))
                if len as usize == self.datagram().len() =>
            {
                let op = IoOp::UdpRecvFrom { socket: self.socket, len_max: BUFFER_SIZE };
                Effect::io_within(op, Duration::from_millis(50))
            }
            Some((IoOpKind::UdpRecvFrom, IoResult::Failed(IoError::TimedOut)))
                if self.silences < 100 =>
            {
                self.silences += 1;
                let datagram = self.datagram();
                self.send(ctx, &datagram)
            }
            Some((IoOpKind::UdpRecvFrom, IoResult::Received { from: Some(from), .. }))
                if from == echo && ctx.io_data() == self.datagram().as_slice() =>
            {
                self.round += 1;
                if self.round == self.args.rounds {
                    self.finishing = true;
                    return self.send(ctx, b"!");
                }
                let datagram = self.datagram();
                self.send(ctx, &datagram)
            }
            Some((IoOpKind::Close, IoResult::Done)) => Effect::Done,
            _ => unexpected("udp client", io),
        }
    }
}

#[test]
fn udp_round_trips_between_isolates() {
    for driver in drivers() {
        let (echo_port, client_port) = {
            let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
        };
        let mut spec = spec(1);
        let echo = spec.register::<UdpEcho>(TypeConfig::new("echo").slots(1));
        let client = spec.register::<UdpClient>(TypeConfig::new("client").slots(1));
        spec.boot_child(ShardId(0), echo, PortArgs { port: u64::from(echo_port), count: 0 });
        let args =
            UdpClientArgs { port: u64::from(client_port), echo: u64::from(echo_port), rounds: 50 };
        spec.boot_child(ShardId(0), client, args);
        let (summary, ()) = run(spec, driver, 64, |_| ());
        assert_clean(driver.1, &summary);
        assert_eq!(summary.shards[0].counters.exits_normal, 2, "{driver:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Files.

tina::spawn_args! {
    /// Which run (names the file).
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct FileArgs { pub run: u64 }
}

fn file_path(run: u64) -> String {
    let dir = std::env::temp_dir();
    format!("{}/tina-prod-io-{}-{run}.dat", dir.display(), std::process::id())
}

/// Writes a file in two pieces, fsyncs, closes, reads it back at offsets, then checks the
/// failures: a missing file, a path that is not UTF-8.
struct FileScript {
    path: String,
    step: u32,
    file: IoHandle,
}

impl FileScript {
    fn open(&self, ctx: &mut Ctx<'_>, path: &[u8], mode: OpenMode) -> Effect {
        let buffer = ctx.buffer_alloc().expect("a buffer");
        ctx.buffer_write(buffer, 0, path).expect("fits");
        Effect::Io(IoOp::FileOpen { path: buffer, path_len: path.len() as u32, mode })
    }

    fn write(&self, ctx: &mut Ctx<'_>, offset: u64, bytes: &[u8]) -> Effect {
        let buffer = ctx.buffer_alloc().expect("a buffer");
        ctx.buffer_write(buffer, 0, bytes).expect("fits");
        Effect::Io(IoOp::FileWrite { file: self.file, offset, buffer, len: bytes.len() as u32 })
    }
}

impl Isolate for FileScript {
    type Args = FileArgs;

    fn init(args: FileArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let script = FileScript { path: file_path(args.run), step: 0, file: IoHandle::NONE };
        let path = script.path.clone();
        let effect = script.open(ctx, path.as_bytes(), OpenMode::Truncate);
        (script, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        self.step += 1;
        let missing = format!("{}.missing", self.path);
        match (self.step, io.op, io.result) {
            (1, IoOpKind::FileOpen, IoResult::Opened(file)) => {
                self.file = file;
                self.write(ctx, 0, b"hello ")
            }
            (2, IoOpKind::FileWrite, IoResult::Transferred(6)) => self.write(ctx, 6, b"world"),
            (3, IoOpKind::FileWrite, IoResult::Transferred(5)) => {
                Effect::Io(IoOp::FileFsync { file: self.file })
            }
            (4, IoOpKind::FileFsync, IoResult::Done) => {
                Effect::Io(IoOp::Close { handle: self.file })
            }
            (5, IoOpKind::Close, IoResult::Done) => {
                let path = self.path.clone();
                self.open(ctx, path.as_bytes(), OpenMode::Read)
            }
            (6, IoOpKind::FileOpen, IoResult::Opened(file)) => {
                self.file = file;
                Effect::Io(IoOp::FileRead { file, offset: 0, len_max: 64 })
            }
            (7, IoOpKind::FileRead, IoResult::Received { len: 11, .. })
                if ctx.io_data() == b"hello world" =>
            {
                Effect::Io(IoOp::FileRead { file: self.file, offset: 6, len_max: 3 })
            }
            (8, IoOpKind::FileRead, IoResult::Received { len: 3, .. })
                if ctx.io_data() == b"wor" =>
            {
                Effect::Io(IoOp::FileRead { file: self.file, offset: 100, len_max: 8 })
            }
            (9, IoOpKind::FileRead, IoResult::Received { len: 0, .. }) => {
                Effect::Io(IoOp::Close { handle: self.file })
            }
            (10, IoOpKind::Close, IoResult::Done) => {
                self.open(ctx, missing.as_bytes(), OpenMode::Read)
            }
            (11, IoOpKind::FileOpen, IoResult::Failed(IoError::NotFound)) => {
                self.open(ctx, &[b'/', 0xff, 0xfe], OpenMode::Create)
            }
            (12, IoOpKind::FileOpen, IoResult::Failed(IoError::InvalidInput)) => {
                self.open(ctx, b"/tmp/nul\0inside", OpenMode::Create)
            }
            (13, IoOpKind::FileOpen, IoResult::Failed(IoError::InvalidInput)) => {
                Effect::Io(IoOp::FileRead { file: self.file, offset: 0, len_max: 8 })
            }
            // The file was closed: its handle names nothing now.
            (14, IoOpKind::FileRead, IoResult::Failed(IoError::InvalidHandle)) => Effect::Done,
            _ => unexpected(&format!("file script, step {}", self.step), Some(io)),
        }
    }
}

#[test]
fn files_are_written_synced_and_read_back() {
    for (run_index, driver) in drivers().into_iter().enumerate() {
        let run_id = run_index as u64;
        let mut spec = spec(1);
        let script = spec.register::<FileScript>(TypeConfig::new("script").slots(1));
        spec.boot_child(ShardId(0), script, FileArgs { run: run_id });
        let (summary, ()) = run(spec, driver, 8, |_| ());
        assert_clean(driver.1, &summary);
        assert_eq!(summary.shards[0].counters.exits_normal, 1, "{driver:?}: every step passed");
        let path = file_path(run_id);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        std::fs::remove_file(&path).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Errors.

tina::spawn_args! {
    /// A port in use and a port nobody listens on.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ErrorArgs { pub busy: u64, pub closed: u64 }
}

/// Meets each failure in turn and checks it comes back typed.
struct ErrorProbe {
    args: ErrorArgs,
    step: u32,
    udp: IoHandle,
}

impl Isolate for ErrorProbe {
    type Args = ErrorArgs;

    fn init(args: ErrorArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let addr = local(args.busy as u16);
        (
            ErrorProbe { args, step: 0, udp: IoHandle::NONE },
            Effect::Io(IoOp::TcpListen { addr, backlog: 4 }),
        )
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        self.step += 1;
        let nothing = IoHandle::from_raw(0x0007_0003);
        match (self.step, io.op, io.result) {
            (1, IoOpKind::TcpListen, IoResult::Failed(IoError::AddrInUse)) => {
                Effect::Io(IoOp::TcpConnect { addr: local(self.args.closed as u16) })
            }
            (2, IoOpKind::TcpConnect, IoResult::Failed(IoError::ConnectionRefused)) => {
                Effect::Io(IoOp::TcpRecv { socket: nothing, len_max: 8 })
            }
            (3, IoOpKind::TcpRecv, IoResult::Failed(IoError::InvalidHandle)) => {
                Effect::Io(IoOp::Close { handle: nothing })
            }
            (4, IoOpKind::Close, IoResult::Failed(IoError::InvalidHandle)) => {
                Effect::Io(IoOp::UdpBind { addr: local(0) })
            }
            (5, IoOpKind::UdpBind, IoResult::Opened(udp)) => {
                self.udp = udp;
                // A datagram socket is not a stream.
                Effect::Io(IoOp::TcpRecv { socket: udp, len_max: 8 })
            }
            (6, IoOpKind::TcpRecv, IoResult::Failed(IoError::InvalidHandle)) => {
                let buffer = ctx.buffer_alloc().expect("a buffer");
                // Longer than the buffer.
                Effect::Io(IoOp::UdpSendTo {
                    socket: self.udp,
                    addr: local(self.args.closed as u16),
                    buffer,
                    len: BUFFER_SIZE + 1,
                })
            }
            (7, IoOpKind::UdpSendTo, IoResult::Failed(IoError::OutOfBounds)) => {
                Effect::Io(IoOp::Close { handle: self.udp })
            }
            (8, IoOpKind::Close, IoResult::Done) => {
                let buffer = ctx.buffer_alloc().expect("a buffer");
                let addr = local(self.args.closed as u16);
                // The closed socket's handle is stale.
                Effect::Io(IoOp::UdpSendTo { socket: self.udp, addr, buffer, len: 1 })
            }
            (9, IoOpKind::UdpSendTo, IoResult::Failed(IoError::InvalidHandle)) => Effect::Done,
            _ => unexpected(&format!("error probe, step {}", self.step), Some(io)),
        }
    }
}

#[test]
fn failures_come_back_as_typed_errors() {
    for driver in drivers() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let args = ErrorArgs {
            busy: u64::from(busy.local_addr().unwrap().port()),
            closed: u64::from(free_port()),
        };
        let mut spec = spec(1);
        let probe = spec.register::<ErrorProbe>(TypeConfig::new("probe").slots(1));
        spec.boot_child(ShardId(0), probe, args);
        let (summary, ()) = run(spec, driver, 8, |_| ());
        assert_clean(driver.1, &summary);
        assert_eq!(summary.shards[0].counters.exits_normal, 1, "{driver:?}: every step passed");
        drop(busy);
    }
}

// ---------------------------------------------------------------------------------------
// A peer that resets, and a peer that stays silent.

/// Connects, sends 64 bytes, then expects its receive to fail (the peer resets) and a
/// further send to fail too.
struct ResetClient {
    port: u16,
    socket: IoHandle,
}

impl Isolate for ResetClient {
    type Args = PortArgs;

    fn init(args: PortArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let client = ResetClient { port: args.port as u16, socket: IoHandle::NONE };
        (client, Effect::Io(IoOp::TcpConnect { addr: local(args.port as u16) }))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let io = message.io();
        let _ = self.port;
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::TcpConnect, IoResult::Opened(socket))) => {
                self.socket = socket;
                send(ctx, socket, &[7; 64], PATIENCE)
            }
            Some((IoOpKind::TcpSend, IoResult::Transferred(64))) => {
                Effect::io_within(IoOp::TcpRecv { socket: self.socket, len_max: 64 }, PATIENCE)
            }
            Some((IoOpKind::TcpRecv, IoResult::Failed(IoError::ConnectionReset))) => {
                send(ctx, self.socket, &[8; 64], PATIENCE)
            }
            Some((
                IoOpKind::TcpSend,
                IoResult::Failed(IoError::BrokenPipe | IoError::ConnectionReset),
            )) => Effect::Io(IoOp::Close { handle: self.socket }),
            Some((IoOpKind::Close, IoResult::Done)) => Effect::Done,
            _ => unexpected("reset client", io),
        }
    }
}

#[test]
fn a_peer_reset_is_an_error_completion() {
    for driver in drivers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut spec = spec(1);
        let client = spec.register::<ResetClient>(TypeConfig::new("client").slots(1));
        spec.boot_child(ShardId(0), client, PortArgs { port: u64::from(port), count: 0 });
        let (summary, ()) = run(spec, driver, 8, |_| {
            let mut stream = accept(&listener);
            let mut first = [0u8; 1];
            stream.read_exact(&mut first).unwrap();
            assert_eq!(first, [7]);
            // Closing with 63 bytes unread resets the connection.
            drop(stream);
        });
        assert_clean(driver.1, &summary);
        assert_eq!(summary.shards[0].counters.exits_normal, 1, "{driver:?}: every step passed");
    }
}

/// Connects to a peer that never sends: two receives time out, then it closes.
struct SilentClient {
    socket: IoHandle,
    timeouts: u32,
}

impl SilentClient {
    fn recv(&self) -> Effect {
        let op = IoOp::TcpRecv { socket: self.socket, len_max: 64 };
        Effect::io_within(op, Duration::from_millis(50))
    }
}

impl Isolate for SilentClient {
    type Args = PortArgs;

    fn init(args: PortArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let client = SilentClient { socket: IoHandle::NONE, timeouts: 0 };
        (client, Effect::Io(IoOp::TcpConnect { addr: local(args.port as u16) }))
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        let io = message.io();
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::TcpConnect, IoResult::Opened(socket))) => {
                self.socket = socket;
                self.recv()
            }
            Some((IoOpKind::TcpRecv, IoResult::Failed(IoError::TimedOut))) => {
                self.timeouts += 1;
                if self.timeouts == 2 {
                    return Effect::Io(IoOp::Close { handle: self.socket });
                }
                // The socket is still usable after a cancelled receive.
                self.recv()
            }
            Some((IoOpKind::Close, IoResult::Done)) => Effect::Done,
            _ => unexpected("silent client", io),
        }
    }
}

#[test]
fn a_receive_that_gets_nothing_times_out_and_gives_its_buffer_back() {
    for driver in drivers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut spec = spec(1);
        let client = spec.register::<SilentClient>(TypeConfig::new("client").slots(1));
        spec.boot_child(ShardId(0), client, PortArgs { port: u64::from(port), count: 0 });
        let (summary, stream) = run(spec, driver, 8, |_| accept(&listener));
        assert_clean(driver.1, &summary);
        let report = &summary.shards[0];
        assert_eq!(report.counters.exits_normal, 1, "{driver:?}: {report:#?}");
        assert_eq!(report.io.cancels, 2, "{driver:?}: {report:#?}");
        drop(stream);
    }
}

// ---------------------------------------------------------------------------------------
// An isolate torn down with a receive in flight.

/// A later incarnation ends at once (from its first handler: an `init` that returns `Done`
/// counts as a failed init).
fn end_soon(ctx: &mut Ctx<'_>) -> Effect {
    ctx.timer_set(Duration::from_millis(1), 0).expect("a timer");
    Effect::Receive
}

/// First incarnation: connects and waits on a receive that never completes. Its sibling's
/// crash makes the supervisor stop it (one for all); the second incarnation just ends.
struct Holder;

impl Isolate for Holder {
    type Args = PortArgs;

    fn init(args: PortArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        if ctx.self_handle().generation() > 1 {
            return (Holder, end_soon(ctx));
        }
        (Holder, Effect::Io(IoOp::TcpConnect { addr: local(args.port as u16) }))
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if message.timer().is_some() {
            return Effect::Done;
        }
        let io = message.io();
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::TcpConnect, IoResult::Opened(socket))) => {
                Effect::Io(IoOp::TcpRecv { socket, len_max: 64 })
            }
            _ => unexpected("holder", io),
        }
    }
}

/// First incarnation: crashes after a while; the second ends.
struct Bomb;

impl Isolate for Bomb {
    type Args = ();

    fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
        if ctx.self_handle().generation() > 1 {
            return (Bomb, end_soon(ctx));
        }
        ctx.timer_set(Duration::from_millis(150), 0).expect("a timer");
        (Bomb, Effect::Receive)
    }

    fn handle(&mut self, _message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.self_handle().generation() > 1 {
            return Effect::Done;
        }
        Effect::Crash(Label::new("bomb"))
    }
}

#[test]
fn a_crash_with_a_receive_in_flight_closes_the_socket_and_frees_the_buffer() {
    for driver in drivers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut spec = spec(1);
        let holder = spec.register::<Holder>(TypeConfig::new("holder").slots(1));
        let bomb = spec.register::<Bomb>(TypeConfig::new("bomb").slots(1));
        let root = spec.root(ShardId(0));
        spec.configure(root, GroupConfig::new(Strategy::OneForAll));
        spec.add_child(
            root,
            holder,
            PortArgs { port: u64::from(port), count: 0 },
            Restart::Transient,
        );
        spec.add_child(root, bomb, (), Restart::Transient);
        let (summary, mut stream) = run(spec, driver, 8, |_| accept(&listener));
        let report = &summary.shards[0];
        assert_eq!(report.counters.crashes, 1, "{driver:?}: the bomb: {report:#?}");
        assert!(report.counters.shutdowns >= 1, "the holder was stopped: {report:#?}");
        assert_eq!(report.counters.io_stale, 1, "the receive came back stale: {report:#?}");
        assert_eq!(report.io.in_flight, 0, "{report:#?}");
        assert_eq!(report.io.handles_in_use, 0, "the socket was closed: {report:#?}");
        assert_eq!(report.io.buffers_free, BUFFERS as usize, "its buffer is free: {report:#?}");
        assert_eq!(report.io.submitted, report.io.completed, "{report:#?}");
        // The peer sees the connection end.
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).unwrap(), 0, "{driver:?}: end of stream");
    }
}

// ---------------------------------------------------------------------------------------
// More connections than handles.

/// Keeps the connections it accepts while it has handles, counts the refusals, and after
/// `count` accepts in all closes what it kept and ends.
struct Acceptor {
    listener: IoHandle,
    count: u64,
    seen: u64,
    kept: Vec<IoHandle>,
}

impl Acceptor {
    fn next(&mut self) -> Effect {
        if self.seen < self.count {
            return Effect::Io(IoOp::TcpAccept { listener: self.listener });
        }
        match self.kept.pop() {
            Some(socket) => Effect::Io(IoOp::Close { handle: socket }),
            None => Effect::Io(IoOp::Close {
                handle: std::mem::replace(&mut self.listener, IoHandle::NONE),
            }),
        }
    }
}

impl Isolate for Acceptor {
    type Args = PortArgs;

    fn init(args: PortArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let acceptor =
            Acceptor { listener: IoHandle::NONE, count: args.count, seen: 0, kept: Vec::new() };
        (acceptor, Effect::Io(IoOp::TcpListen { addr: local(args.port as u16), backlog: 64 }))
    }

    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        let io = message.io();
        match io.map(|io| (io.op, io.result)) {
            Some((IoOpKind::TcpListen, IoResult::Opened(listener))) => {
                self.listener = listener;
                self.next()
            }
            Some((IoOpKind::TcpAccept, IoResult::Accepted { socket, .. })) => {
                self.seen += 1;
                self.kept.push(socket);
                self.next()
            }
            Some((IoOpKind::TcpAccept, IoResult::Failed(IoError::TooManyHandles))) => {
                self.seen += 1;
                self.next()
            }
            Some((IoOpKind::Close, IoResult::Done)) if self.listener == IoHandle::NONE => {
                Effect::Done
            }
            Some((IoOpKind::Close, IoResult::Done)) => self.next(),
            _ => unexpected("acceptor", io),
        }
    }
}

#[test]
fn an_accept_flood_beyond_the_handle_limit_is_refused_and_counted() {
    const HANDLES: u32 = 4;
    const CONNECTIONS: u64 = 12;
    for driver in drivers() {
        let port = free_port();
        let mut spec = spec(1);
        let acceptor = spec.register::<Acceptor>(TypeConfig::new("acceptor").slots(1));
        spec.boot_child(
            ShardId(0),
            acceptor,
            PortArgs { port: u64::from(port), count: CONNECTIONS },
        );
        let (summary, (streams, peak)) = run(spec, driver, HANDLES, |runtime| {
            let deadline = Instant::now() + PATIENCE;
            let mut streams = Vec::new();
            while streams.len() < CONNECTIONS as usize {
                match TcpStream::connect(local(port)) {
                    Ok(stream) => streams.push(stream),
                    // The acceptor has not listened yet.
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(error) => panic!("connect: {error}"),
                }
            }
            // Sample the table while the acceptor works through the flood.
            let peak = std::cell::Cell::new(0);
            runtime.wait_until(PATIENCE, |reports| {
                peak.set(peak.get().max(reports[0].io.handles_in_use));
                reports[0].live_isolates == 0
            });
            (streams, peak.get())
        });
        assert_clean(driver.1, &summary);
        let report = &summary.shards[0];
        assert_eq!(report.counters.exits_normal, 1, "{driver:?}: {report:#?}");
        // The listener and three connections fill the table; the rest were refused.
        assert_eq!(report.io.accepts_refused, CONNECTIONS - u64::from(HANDLES - 1), "{report:#?}");
        assert!(peak <= HANDLES as usize, "the table never grew: {peak}");
        // Every connection was closed by the runtime: refused at once, or at the end.
        for mut stream in streams {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut byte = [0u8; 1];
            match stream.read(&mut byte) {
                Ok(0) => {}
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
                other => panic!("{driver:?}: the connection should have ended: {other:?}"),
            }
        }
    }
}

/// A shard whose only isolate waits in an accept sleeps: it neither ticks nor parks again
/// until the connection comes (a busy loop would publish a report at every park).
#[test]
fn an_idle_listener_sleeps() {
    for driver in drivers() {
        let port = free_port();
        let mut spec = spec(1);
        let acceptor = spec.register::<Acceptor>(TypeConfig::new("acceptor").slots(1));
        spec.boot_child(ShardId(0), acceptor, PortArgs { port: u64::from(port), count: 1 });
        let (summary, (before, after, stream)) = run(spec, driver, 8, |runtime| {
            let waiting = runtime.wait_until(PATIENCE, |reports| {
                reports[0].io.handles_in_use == 1 && reports[0].io.in_flight == 1
            });
            assert!(waiting, "the accept is in flight");
            // Let the shard reach its park, then watch it.
            std::thread::sleep(Duration::from_millis(50));
            let before = runtime.reports()[0].clone();
            std::thread::sleep(Duration::from_millis(300));
            let after = runtime.reports()[0].clone();
            (before, after, TcpStream::connect(local(port)).unwrap())
        });
        assert_clean(driver.1, &summary);
        assert!(
            after.ticks - before.ticks <= 2 && after.parks - before.parks <= 2,
            "{driver:?}: the idle shard kept running: {before:#?} then {after:#?}"
        );
        drop(stream);
    }
}

// ---------------------------------------------------------------------------------------
// Configuration.

#[test]
fn auto_picks_io_uring_where_it_works_and_bad_limits_are_refused() {
    let expected = if io_uring_available() { IoDriverKind::IoUring } else { IoDriverKind::Epoll };
    let spec = || {
        let mut spec = spec(2);
        spec.register::<Bomb>(TypeConfig::new("unused").slots(1));
        spec
    };
    let runtime = Runtime::boot(spec(), RuntimeConfig::default()).expect("boots");
    for report in runtime.reports() {
        assert_eq!(report.io.driver, Some(expected));
        assert_eq!(report.io.handles_max, tina::prod::io::IO_HANDLES_DEFAULT as usize);
    }
    drop(runtime.stop());
    for io_handles_max in [0, tina::prod::io::IO_HANDLES_MAX_LIMIT + 1] {
        let config = RuntimeConfig { io_handles_max, ..Default::default() };
        assert!(matches!(Runtime::boot(spec(), config), Err(RuntimeError::Config(_))));
    }
}
