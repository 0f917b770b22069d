//! `kv`: a key-value service on one node with a write-ahead log on the virtual disk, and
//! clients on other nodes issuing gets and puts over TCP with timeouts and retries. The
//! history of the clients' operations (invoked, then completed or never answered) must be
//! linearizable (`tina_checkers::linearizability`, the `Kv` register model).
//!
//! Server node (node 0, one shard): the `Store` owns the keys and the log. At its start it
//! replays the log (24-byte records, each checksummed; a torn or unreadable tail ends the
//! replay, and a read that looks torn is read again, since a corrupted read does not change
//! the stored bytes). A put is appended, fsynced, then applied and acknowledged; a get is
//! answered from memory. A `Listener` spawns one `Session` per accepted socket; a session
//! parses 32-byte requests and calls the store. Client nodes: each `Client` runs `ops`
//! operations on `keys` keys one at a time, logging each invocation and each answer; any
//! failure leaves the operation unanswered (it may or may not have happened), and the
//! client reconnects and goes on with a new one.
//!
//! Shutdown (`sim --shutdown-at`): the store finishes the put in progress and the requests
//! already queued for it, then closes its log and ends; the listener stops accepting and
//! closes; a session whose receive the shutdown cancelled closes, and one with a request
//! under way answers it first; a client issues nothing new: it takes the answer of the
//! operation under way if it comes, then closes and ends. The setup promises to drain
//! (`Setup::drains_on_shutdown`). At the end of a run that shut down, the `kv.durable`
//! observer checks that every put a client saw acknowledged is in the log's durable
//! contents (what fsync made stable, as the virtual disk keeps it), and the history is
//! checked for linearizability even if a client did not finish.
//!
//! Planted bugs (scenario parameters): `ack_before_fsync=1` acknowledges a put before its
//! fsync (a crash can lose an acknowledged write, and so can a shutdown after a failed
//! fsync: the record stays unsynced); `stale_cache=1` answers gets from a cache that puts
//! do not update.

use core::time::Duration;

use tina::io::{IoHandle, IoOp, IoOpKind, IoResult, OpenMode};
use tina::{
    Ctx, Effect, Event, Handle, Isolate, Label, Level, Message, ReplyToken, ShardId, SystemSpec,
    Tag, TypeConfig,
};
use tina_checkers::linearizability::{self, History, Kv, KvInput, KvOutput, OpId, Options};
use tina_checkers::{
    EndView, EventKinds, FailureClass, Observer, Stamp, Verdict, Violation, WorldEvent,
};

use crate::{ParamKind, ParamSpec, Params, Scenario, Setup};

/// A client invoked an operation: [client, kind (0 get, 1 put), key, value].
pub const INVOKE: Label = Label::new("kv.invoke");
/// The operation of a client completed: [client, kind, key, value read (`ABSENT`: none)].
pub const COMPLETE: Label = Label::new("kv.complete");
/// A client finished its operations: [client].
pub const DONE: Label = Label::new("kv.done");
/// A get found no value.
pub const ABSENT: u64 = u64::MAX;

/// The store's port.
pub const PORT: u16 = 6000;
/// The store's write-ahead log on its node's disk.
pub const LOG_PATH: &str = "/kv.log";
/// Bytes of a request and of a response on the wire.
pub const FRAME_SIZE: usize = 32;
/// Bytes of one log record: key, value, checksum.
pub const RECORD_SIZE: usize = 24;
/// Bytes the store reads from its log at once.
pub const REPLAY_CHUNK: u32 = 24 * 64;
/// Times the store reads a chunk again when it looks torn, before taking it as the end.
pub const REREADS_MAX: u32 = 4;
/// Most keys.
pub const KEY_COUNT_MAX: u64 = 64;
/// Most clients (each is a node; the store is node 0).
pub const CLIENT_COUNT_MAX: u64 = 32;
/// How long a client waits for a connect, a send or an answer.
pub const CLIENT_WAIT: Duration = Duration::from_millis(500);
/// How long a session waits for the store's answer.
pub const STORE_WAIT: Duration = Duration::from_millis(400);
/// How long a session waits for its client's next request.
pub const SESSION_WAIT: Duration = Duration::from_secs(10);
/// How long a client waits before it connects again after a failure.
pub const BACKOFF: Duration = Duration::from_millis(20);

/// The linearizability search's budget: a run's check stays well under a second; a
/// history too hard to decide within it (a hot key with many unanswered operations) is
/// not judged.
const SEARCH: Options = Options { partition_steps_max: 1 << 18, shrink_steps_max: 1 << 18 };

const GET: u64 = 0;
const PUT: u64 = 1;
const CHECKSUM_SALT: u64 = 0x6b76_2d6c_6f67_2d31;

fn checksum(key: u64, value: u64) -> u64 {
    (key.rotate_left(17) ^ value ^ CHECKSUM_SALT).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn record(key: u64, value: u64) -> [u8; RECORD_SIZE] {
    let mut bytes = [0u8; RECORD_SIZE];
    bytes[..8].copy_from_slice(&key.to_le_bytes());
    bytes[8..16].copy_from_slice(&value.to_le_bytes());
    bytes[16..].copy_from_slice(&checksum(key, value).to_le_bytes());
    bytes
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn server_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([10, 0, 0, 1], PORT))
}

tina::payload! {
    /// A session's request to the store.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Request { pub kind: u64, pub key: u64, pub value: u64 }
}

tina::payload! {
    /// The store's answer: `ok` 1 when the operation took effect (a put is durable), and
    /// the value a get read (`ABSENT`: none).
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Answer { pub ok: u64, pub value: u64 }
}

tina::spawn_args! {
    /// The store's bugs, for the planted runs.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct StoreArgs { pub keys: u64, pub ack_before_fsync: u64, pub stale_cache: u64 }
}

/// What the store is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StorePhase {
    Opening,
    Replaying,
    Serving,
    Writing,
    Syncing,
    /// Shutting down: closing the log.
    Closing,
}

/// Owns the keys and the write-ahead log.
#[derive(Debug)]
pub struct Store {
    args: StoreArgs,
    file: IoHandle,
    values: Vec<Option<u64>>,
    cache: Vec<Option<u64>>,
    /// Where the next record goes: the end of the valid log.
    log_len: u64,
    phase: StorePhase,
    rereads: u32,
    /// The put being made durable, and who waits for it.
    put: Option<(ReplyToken, u64, u64)>,
    /// The shard shuts down: serve what is queued, then close the log and end.
    stopping: bool,
}

impl Store {
    /// Shutting down, and nothing under way: serves the requests still queued, one per
    /// tick (`Yield` hands over the mailbox's head, or a resume once it is empty), then
    /// closes the log (`step`).
    fn drain(&mut self) -> Effect {
        self.stopping = true;
        Effect::Yield
    }

    /// Closes the log (if it is open) and ends once it is closed.
    fn close(&mut self) -> Effect {
        self.phase = StorePhase::Closing;
        if self.file == IoHandle::NONE {
            return Effect::Done;
        }
        let file = core::mem::replace(&mut self.file, IoHandle::NONE);
        Effect::Io(IoOp::Close { handle: file })
    }

    fn open(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        self.phase = StorePhase::Opening;
        let Ok(path) = ctx.buffer_alloc() else { return Effect::Crash(Label::new("kv.buffers")) };
        if ctx.buffer_write(path, 0, LOG_PATH.as_bytes()).is_err() {
            return Effect::Crash(Label::new("kv.buffers"));
        }
        // The path is a few bytes.
        let path_len = LOG_PATH.len() as u32;
        Effect::Io(IoOp::FileOpen { path, path_len, mode: OpenMode::Create })
    }

    fn read_chunk(&mut self) -> Effect {
        self.phase = StorePhase::Replaying;
        Effect::Io(IoOp::FileRead { file: self.file, offset: self.log_len, len_max: REPLAY_CHUNK })
    }

    /// Applies the whole records of a chunk; whether the chunk ended the log.
    fn replay(&mut self, data: &[u8]) -> bool {
        let whole = data.len() / RECORD_SIZE;
        for index in 0..whole {
            let bytes = &data[index * RECORD_SIZE..(index + 1) * RECORD_SIZE];
            let (key, value) = (word(bytes, 0), word(bytes, 8));
            if word(bytes, 16) != checksum(key, value) || key >= self.args.keys {
                return true;
            }
            self.values[key as usize] = Some(value);
            self.log_len += RECORD_SIZE as u64;
        }
        data.len() < REPLAY_CHUNK as usize
    }

    /// Whether a chunk holds a record that fails its checksum (torn, or read corrupted).
    fn looks_torn(&self, data: &[u8]) -> bool {
        data.chunks_exact(RECORD_SIZE).any(|bytes| {
            let (key, value) = (word(bytes, 0), word(bytes, 8));
            word(bytes, 16) != checksum(key, value) || key >= self.args.keys
        })
    }

    /// Serves one request.
    fn serve(&mut self, request: Request, token: ReplyToken, ctx: &mut Ctx<'_>) -> Effect {
        let key = request.key;
        if key >= self.args.keys {
            let _ = ctx.reply(token, &Answer { ok: 0, value: ABSENT });
            return Effect::Receive;
        }
        if request.kind == GET {
            let cached = if self.args.stale_cache == 1 { self.cache[key as usize] } else { None };
            let value = cached.or(self.values[key as usize]);
            if self.args.stale_cache == 1 {
                self.cache[key as usize] = value;
            }
            let _ = ctx.reply(token, &Answer { ok: 1, value: value.unwrap_or(ABSENT) });
            return Effect::Receive;
        }
        let Ok(buffer) = ctx.buffer_alloc() else {
            let _ = ctx.reply(token, &Answer { ok: 0, value: ABSENT });
            return Effect::Receive;
        };
        if ctx.buffer_write(buffer, 0, &record(key, request.value)).is_err() {
            let _ = ctx.reply(token, &Answer { ok: 0, value: ABSENT });
            return Effect::Receive;
        }
        self.put = Some((token, key, request.value));
        self.phase = StorePhase::Writing;
        let (file, offset) = (self.file, self.log_len);
        Effect::Io(IoOp::FileWrite { file, offset, buffer, len: RECORD_SIZE as u32 })
    }

    /// The put in progress is answered: applied and acknowledged if `ok`.
    fn answer_put(&mut self, ok: bool, ctx: &mut Ctx<'_>) -> Effect {
        self.phase = StorePhase::Serving;
        if let Some((token, key, value)) = self.put.take() {
            if ok {
                self.values[key as usize] = Some(value);
            }
            let _ = ctx.reply(token, &Answer { ok: u64::from(ok), value: ABSENT });
        }
        Effect::Receive
    }
}

impl Isolate for Store {
    type Args = StoreArgs;

    fn init(args: StoreArgs, ctx: &mut Ctx<'_>) -> (Store, Effect) {
        // At most KEY_COUNT_MAX keys.
        let keys = args.keys as usize;
        let mut store = Store {
            args,
            file: IoHandle::NONE,
            values: vec![None; keys],
            cache: vec![None; keys],
            log_len: 0,
            phase: StorePhase::Opening,
            rereads: 0,
            put: None,
            stopping: false,
        };
        let effect = store.open(ctx);
        (store, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let effect = self.step(message, ctx);
        if !ctx.shutting_down() {
            return effect;
        }
        // An isolate that chains I/O is not waiting for messages, so its shutdown notice
        // waits: the store looks for itself whenever it would wait for the next request.
        match effect {
            Effect::Receive => self.drain(),
            // Opening or replaying: nothing to finish, the log is closed at once.
            Effect::Io(op) if matches!(self.phase, StorePhase::Opening | StorePhase::Replaying) => {
                if let IoOp::FileOpen { path, .. } = op {
                    let _ = ctx.buffer_free(path);
                }
                self.close()
            }
            other => other,
        }
    }
}

impl Store {
    fn step(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            // `handle` drains from here.
            return Effect::Receive;
        }
        if self.stopping && self.phase == StorePhase::Serving && message.tag() == Tag::RESUME {
            // Everything queued was served: the log is closed, then the store ends.
            return self.close();
        }
        if let Some(io) = message.io() {
            return match (self.phase, io.op, io.result) {
                (StorePhase::Closing, IoOpKind::Close, _) => Effect::Done,
                (StorePhase::Opening, IoOpKind::FileOpen, IoResult::Opened(file)) => {
                    self.file = file;
                    self.read_chunk()
                }
                (StorePhase::Opening, ..) => self.open(ctx),
                (StorePhase::Replaying, IoOpKind::FileRead, IoResult::Received { .. }) => {
                    let data = ctx.io_data().to_vec();
                    if self.looks_torn(&data) && self.rereads < REREADS_MAX {
                        self.rereads += 1;
                        return self.read_chunk();
                    }
                    self.rereads = 0;
                    if self.replay(&data) {
                        self.phase = StorePhase::Serving;
                        Effect::Receive
                    } else {
                        self.read_chunk()
                    }
                }
                // A failed read: read again.
                (StorePhase::Replaying, ..) => self.read_chunk(),
                (StorePhase::Writing, IoOpKind::FileWrite, IoResult::Transferred(n))
                    if n as usize == RECORD_SIZE =>
                {
                    self.log_len += RECORD_SIZE as u64;
                    if self.args.ack_before_fsync == 1 {
                        // The planted bug: acknowledged before it is durable.
                        let _ = self.answer_put(true, ctx);
                    }
                    self.phase = StorePhase::Syncing;
                    Effect::Io(IoOp::FileFsync { file: self.file })
                }
                (StorePhase::Syncing, IoOpKind::FileFsync, IoResult::Done) => {
                    self.answer_put(true, ctx)
                }
                // A failed write (nothing written) or fsync (the record stays unsynced and
                // may surface later): the put is not acknowledged, its outcome unknown.
                _ => self.answer_put(false, ctx),
            };
        }
        if let (Some(token), Ok(request)) = (message.reply_token(), message.decode::<Request>()) {
            return self.serve(request, token, ctx);
        }
        Effect::Receive
    }
}

tina::spawn_args! {
    /// The store's address.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ListenerArgs { pub store: Handle }
}

/// Listens and spawns a `Session` per accepted socket.
#[derive(Debug)]
pub struct Listener {
    store: Handle,
    listener: IoHandle,
}

impl Isolate for Listener {
    type Args = ListenerArgs;

    fn init(args: ListenerArgs, _ctx: &mut Ctx<'_>) -> (Listener, Effect) {
        let listener = Listener { store: args.store, listener: IoHandle::NONE };
        (listener, Effect::Io(IoOp::TcpListen { addr: server_addr(), backlog: 64 }))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let effect = self.step(message, ctx);
        if !ctx.shutting_down() || matches!(effect, Effect::Done) {
            return effect;
        }
        // Shutting down (the accept in flight was cancelled): accept no more. A socket
        // accepted just before is closed first (no session may start now).
        match effect {
            Effect::Io(IoOp::Close { .. }) => effect,
            _ if self.listener != IoHandle::NONE => {
                let listener = core::mem::replace(&mut self.listener, IoHandle::NONE);
                Effect::Io(IoOp::Close { handle: listener })
            }
            _ => Effect::Done,
        }
    }
}

impl Listener {
    fn step(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.timer().is_some() {
            return Effect::Io(IoOp::TcpListen { addr: server_addr(), backlog: 64 });
        }
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::TcpListen, IoResult::Opened(listener)) => self.listener = listener,
            (IoOpKind::TcpListen, _) => {
                let _ = ctx.timer_set(BACKOFF, 0);
                return Effect::Receive;
            }
            (IoOpKind::TcpAccept, IoResult::Accepted { socket, .. }) => {
                ctx.io_disown(socket);
                let args = SessionArgs { store: self.store, socket: u64::from(socket.to_raw()) };
                if ctx.spawn::<Session>(args).is_err() {
                    return Effect::Io(IoOp::Close { handle: socket });
                }
            }
            (IoOpKind::Close, _) if self.listener == IoHandle::NONE => return Effect::Done,
            _ => {}
        }
        Effect::Io(IoOp::TcpAccept { listener: self.listener })
    }
}

tina::spawn_args! {
    /// A session's store and socket.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct SessionArgs { pub store: Handle, pub socket: u64 }
}

/// Reads requests from one client, asks the store, writes the answers.
#[derive(Debug)]
pub struct Session {
    store: Handle,
    socket: IoHandle,
    frame: [u8; FRAME_SIZE],
    received: usize,
    closing: bool,
}

impl Session {
    fn recv(&self) -> Effect {
        let len_max = (FRAME_SIZE - self.received) as u32;
        Effect::io_within(IoOp::TcpRecv { socket: self.socket, len_max }, SESSION_WAIT)
    }

    fn close(&mut self) -> Effect {
        self.closing = true;
        Effect::Io(IoOp::Close { handle: self.socket })
    }

    fn respond(&mut self, answer: Answer, ctx: &mut Ctx<'_>) -> Effect {
        let mut bytes = [0u8; FRAME_SIZE];
        bytes[..8].copy_from_slice(&answer.ok.to_le_bytes());
        bytes[8..16].copy_from_slice(&answer.value.to_le_bytes());
        let Ok(buffer) = ctx.buffer_alloc() else { return self.close() };
        if ctx.buffer_write(buffer, 0, &bytes).is_err() {
            return self.close();
        }
        let op = IoOp::TcpSend { socket: self.socket, buffer, len: FRAME_SIZE as u32 };
        Effect::io_within(op, SESSION_WAIT)
    }
}

impl Isolate for Session {
    type Args = SessionArgs;

    fn init(args: SessionArgs, ctx: &mut Ctx<'_>) -> (Session, Effect) {
        // The listener stored a u32 handle in a u64.
        let socket = IoHandle::from_raw(args.socket as u32);
        let mut session = Session {
            store: args.store,
            socket,
            frame: [0; FRAME_SIZE],
            received: 0,
            closing: false,
        };
        if ctx.io_adopt(socket).is_err() {
            let effect = session.close();
            return (session, effect);
        }
        let effect = session.recv();
        (session, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let effect = self.step(message, ctx);
        // Shutting down: once the request under way is answered (its send done), no next
        // request is read; a receive the shutdown cancelled fails, which closes too.
        let receiving = matches!(effect, Effect::IoWithin { op: IoOp::TcpRecv { .. }, .. });
        if ctx.shutting_down() && !self.closing && (receiving || message.is_shutdown()) {
            return self.close();
        }
        effect
    }
}

impl Session {
    fn step(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.call_failure().is_some() {
            // The store did not answer in time: the client learns nothing.
            return self.respond(Answer { ok: 0, value: ABSENT }, ctx);
        }
        if let Ok(answer) = message.decode::<Answer>() {
            return self.respond(answer, ctx);
        }
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::TcpRecv, IoResult::Received { len, .. }) if len > 0 && !self.closing => {
                let data = ctx.io_data();
                let end = self.received + data.len();
                self.frame[self.received..end].copy_from_slice(data);
                self.received = end;
                if self.received < FRAME_SIZE {
                    return self.recv();
                }
                self.received = 0;
                let request = Request {
                    kind: word(&self.frame, 0),
                    key: word(&self.frame, 8),
                    value: word(&self.frame, 16),
                };
                Effect::call(self.store.latest(), &request, STORE_WAIT)
            }
            (IoOpKind::TcpSend, IoResult::Transferred(n)) if n as usize == FRAME_SIZE => {
                self.recv()
            }
            (IoOpKind::Close, _) => Effect::Done,
            _ => self.close(),
        }
    }
}

tina::spawn_args! {
    /// A client: its number, its operations and keys, and its random seed.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ClientArgs { pub client: u64, pub ops: u64, pub keys: u64 }
}

/// Where a client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientPhase {
    Connecting,
    Sending,
    Receiving,
    Closing,
    BackingOff,
    Finishing,
}

/// Runs `ops` operations, one at a time, logging each invocation and answer.
#[derive(Debug)]
pub struct Client {
    args: ClientArgs,
    socket: IoHandle,
    phase: ClientPhase,
    /// Operations started (the current one included).
    started: u64,
    /// The current operation: kind, key, value; `None` between operations.
    current: Option<(u64, u64, u64)>,
    frame: [u8; FRAME_SIZE],
    received: usize,
}

impl Client {
    fn connect(&mut self) -> Effect {
        self.phase = ClientPhase::Connecting;
        Effect::io_within(IoOp::TcpConnect { addr: server_addr() }, CLIENT_WAIT)
    }

    /// Invokes the next operation, or finishes (every operation ran, or the shard shuts
    /// down: no new operation then).
    fn next(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        if self.started == self.args.ops || ctx.shutting_down() {
            ctx.log(Level::Info, DONE, [self.args.client]);
            self.phase = ClientPhase::Finishing;
            let socket = core::mem::replace(&mut self.socket, IoHandle::NONE);
            if socket == IoHandle::NONE {
                return Effect::Done;
            }
            return Effect::Io(IoOp::Close { handle: socket });
        }
        self.started += 1;
        let key = ctx.random_u64() % self.args.keys;
        let (kind, value) = if ctx.random_u64().is_multiple_of(2) {
            (GET, ABSENT)
        } else {
            // Unique per client and operation, so a read names the write it saw: the node's
            // clock never goes back, not even across a restart, and a client runs one
            // operation at a time.
            (PUT, (self.args.client << 48) | (ctx.now().as_nanos() & ((1 << 48) - 1)))
        };
        self.current = Some((kind, key, value));
        ctx.log(Level::Info, INVOKE, [self.args.client, kind, key, value]);
        self.send(ctx)
    }

    fn send(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        self.phase = ClientPhase::Sending;
        let Some((kind, key, value)) = self.current else { return self.next(ctx) };
        let mut bytes = [0u8; FRAME_SIZE];
        bytes[..8].copy_from_slice(&kind.to_le_bytes());
        bytes[8..16].copy_from_slice(&key.to_le_bytes());
        bytes[16..24].copy_from_slice(&value.to_le_bytes());
        let Ok(buffer) = ctx.buffer_alloc() else { return self.fail(ctx) };
        if ctx.buffer_write(buffer, 0, &bytes).is_err() {
            return self.fail(ctx);
        }
        let op = IoOp::TcpSend { socket: self.socket, buffer, len: FRAME_SIZE as u32 };
        Effect::io_within(op, CLIENT_WAIT)
    }

    fn receive(&mut self) -> Effect {
        self.phase = ClientPhase::Receiving;
        let len_max = (FRAME_SIZE - self.received) as u32;
        Effect::io_within(IoOp::TcpRecv { socket: self.socket, len_max }, CLIENT_WAIT)
    }

    /// The connection failed: the current operation stays unanswered (it may or may not
    /// have happened); close, back off, reconnect, and go on with a new operation.
    fn fail(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        self.current = None;
        self.received = 0;
        if self.socket == IoHandle::NONE {
            return self.back_off(ctx);
        }
        self.phase = ClientPhase::Closing;
        let socket = core::mem::replace(&mut self.socket, IoHandle::NONE);
        Effect::Io(IoOp::Close { handle: socket })
    }

    fn back_off(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.shutting_down() {
            // No reconnect: the client is done.
            return self.next(ctx);
        }
        self.phase = ClientPhase::BackingOff;
        if ctx.timer_set(BACKOFF, 0).is_ok() { Effect::Receive } else { self.connect() }
    }

    /// The answer to the current operation arrived.
    fn answered(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        self.received = 0;
        let Some((kind, key, _)) = self.current.take() else { return self.next(ctx) };
        let (ok, value) = (word(&self.frame, 0), word(&self.frame, 8));
        if ok == 1 {
            ctx.log(Level::Info, COMPLETE, [self.args.client, kind, key, value]);
        }
        // Not ok: the store could not say; the operation stays unanswered.
        self.next(ctx)
    }
}

impl Isolate for Client {
    type Args = ClientArgs;

    fn init(args: ClientArgs, _ctx: &mut Ctx<'_>) -> (Client, Effect) {
        let mut client = Client {
            args,
            socket: IoHandle::NONE,
            phase: ClientPhase::Connecting,
            started: 0,
            current: None,
            frame: [0; FRAME_SIZE],
            received: 0,
        };
        let effect = client.connect();
        (client, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            // Only delivered while it waits for messages: backing off between connections.
            return if self.phase == ClientPhase::Finishing {
                Effect::Receive
            } else {
                self.next(ctx)
            };
        }
        if message.timer().is_some() {
            return if self.phase == ClientPhase::BackingOff {
                self.connect()
            } else {
                Effect::Receive
            };
        }
        let Some(io) = message.io() else { return Effect::Receive };
        match (self.phase, io.op, io.result) {
            (ClientPhase::Connecting, IoOpKind::TcpConnect, IoResult::Opened(socket)) => {
                self.socket = socket;
                self.next(ctx)
            }
            (ClientPhase::Sending, IoOpKind::TcpSend, IoResult::Transferred(n))
                if n as usize == FRAME_SIZE =>
            {
                self.receive()
            }
            (ClientPhase::Receiving, IoOpKind::TcpRecv, IoResult::Received { len, .. })
                if len > 0 =>
            {
                let data = ctx.io_data();
                let end = self.received + data.len();
                self.frame[self.received..end].copy_from_slice(data);
                self.received = end;
                if self.received < FRAME_SIZE { self.receive() } else { self.answered(ctx) }
            }
            (ClientPhase::Finishing, IoOpKind::Close, _) => Effect::Done,
            (ClientPhase::Closing, IoOpKind::Close, _) => self.back_off(ctx),
            _ => self.fail(ctx),
        }
    }
}

/// Builds the history from the clients' logs and checks it when every client is done (in
/// a run that shut down, at the latest when the run ends).
#[derive(Debug)]
struct Linearizable {
    clients: u64,
    done: u64,
    history: History<KvInput, KvOutput>,
    /// Each client's operation awaiting its answer.
    open: Vec<Option<(OpId, u64)>>,
    /// Whether the run shut down (`WorldEvent::Shutdown`).
    shut_down: bool,
}

impl Linearizable {
    fn check(&self) -> Verdict {
        let report = linearizability::check(&Kv, &self.history, &SEARCH);
        match report.outcome {
            linearizability::Outcome::NotLinearizable(counterexample) => {
                // One line, as a result line is: each operation with its client, times (ns of
                // true time) and answer.
                let operations: Vec<String> = counterexample
                    .operations
                    .iter()
                    .map(|(_, op)| match &op.response {
                        Some(response) => format!(
                            "client {} {:?} [{}..{}] -> {:?}",
                            op.client,
                            op.input,
                            op.invoke_ns,
                            response.complete_ns,
                            response.output
                        ),
                        None => format!(
                            "client {} {:?} [{}..] unanswered",
                            op.client, op.input, op.invoke_ns
                        ),
                    })
                    .collect();
                Verdict::Violated(Violation {
                    class: FailureClass::Correctness,
                    checker: "kv.linearizable",
                    explanation: format!(
                        "no linearization of key {} ({} of its {} operations): {}",
                        counterexample.key,
                        operations.len(),
                        counterexample.partition_operation_count,
                        operations.join("; ")
                    ),
                })
            }
            // Linearizable, or too hard to decide within the budget: nothing proven wrong.
            _ => Verdict::Done,
        }
    }
}

impl Observer for Linearizable {
    fn name(&self) -> &'static str {
        "kv.linearizable"
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::LOG
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let Event::Log { tag, values, .. } = event else { return Verdict::Continue };
        // Clients are numbered below CLIENT_COUNT_MAX.
        let client = values[0] as usize;
        if *tag == INVOKE {
            let input = if values[1] == PUT {
                KvInput::Put { key: values[2], value: values[3] }
            } else {
                KvInput::Get { key: values[2] }
            };
            // A previous operation still open stays unanswered (the client gave up on it).
            let op = self.history.invoke(values[0], input, stamp.time_ns);
            self.open[client] = Some((op, values[1]));
        } else if *tag == COMPLETE {
            if let Some((op, kind)) = self.open[client].take() {
                let output = if kind == PUT {
                    KvOutput::Ok
                } else {
                    KvOutput::Value((values[3] != ABSENT).then_some(values[3]))
                };
                if self.history.complete(op, output, stamp.time_ns).is_err() {
                    return Verdict::Violated(Violation {
                        class: FailureClass::Correctness,
                        checker: "kv.linearizable",
                        explanation: format!("client {client} answered an operation twice"),
                    });
                }
            }
        } else if *tag == DONE {
            self.done |= 1 << values[0];
            if u64::from(self.done.count_ones()) == self.clients {
                return self.check();
            }
        }
        Verdict::Continue
    }

    fn observe_world(&mut self, _stamp: &Stamp, event: &WorldEvent) -> Verdict {
        if let WorldEvent::Shutdown { .. } = event {
            self.shut_down = true;
        }
        Verdict::Continue
    }

    fn finish(&mut self, _view: &EndView) -> Verdict {
        // A run that shut down judges what its clients did, finished or not (one torn down
        // at the deadline leaves its operation unanswered). Otherwise the check ran when
        // every client was done, or the run failed for its goal.
        if self.shut_down && u64::from(self.done.count_ones()) < self.clients {
            return self.check();
        }
        Verdict::Continue
    }
}

/// At the end of a run that shut down: every put a client saw acknowledged is in the
/// durable contents of the store's log (a correct store fsyncs before it acknowledges, and
/// finishes the put under way before it ends), parsed as the store replays it.
#[derive(Debug)]
struct Durable {
    keys: u64,
    /// Each client's operation under way: (kind, key, value).
    open: Vec<Option<(u64, u64, u64)>>,
    /// Puts acknowledged: (key, value, client, true time of the answer).
    acknowledged: Vec<(u64, u64, u64, u64)>,
    shut_down: bool,
}

impl Observer for Durable {
    fn name(&self) -> &'static str {
        "kv.durable"
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::LOG
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let Event::Log { tag, values, .. } = event else { return Verdict::Continue };
        // Clients are numbered below CLIENT_COUNT_MAX.
        let client = values[0] as usize;
        if *tag == INVOKE {
            self.open[client] = Some((values[1], values[2], values[3]));
        } else if *tag == COMPLETE
            && let Some((PUT, key, value)) = self.open[client].take()
        {
            self.acknowledged.push((key, value, values[0], stamp.time_ns));
        }
        Verdict::Continue
    }

    fn observe_world(&mut self, _stamp: &Stamp, event: &WorldEvent) -> Verdict {
        if let WorldEvent::Shutdown { .. } = event {
            self.shut_down = true;
        }
        Verdict::Continue
    }

    fn finish(&mut self, view: &EndView) -> Verdict {
        if !self.shut_down {
            return Verdict::Continue;
        }
        let log = view.durable(0, LOG_PATH).unwrap_or(&[]);
        let mut durable = Vec::new();
        for bytes in log.chunks_exact(RECORD_SIZE) {
            let (key, value) = (word(bytes, 0), word(bytes, 8));
            // The store's replay stops at the first record that fails its checksum.
            if word(bytes, 16) != checksum(key, value) || key >= self.keys {
                break;
            }
            durable.push((key, value));
        }
        durable.sort_unstable();
        let lost = self
            .acknowledged
            .iter()
            .find(|(key, value, ..)| durable.binary_search(&(*key, *value)).is_err());
        match lost {
            Some((key, value, client, at)) => Verdict::Violated(Violation {
                class: FailureClass::Correctness,
                checker: "kv.durable",
                explanation: format!(
                    "client {client}'s put of key {key} (value {value:#x}) was acknowledged at {at}ns but is not in the log's durable contents ({} valid records of {} bytes) after the shutdown",
                    durable.len(),
                    log.len()
                ),
            }),
            None => Verdict::Continue,
        }
    }
}

/// The `kv` scenario.
#[derive(Debug)]
pub struct KvScenario;

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
        name: "ops",
        kind: ParamKind::Count,
        default: 100,
        min: 1,
        max: 100_000,
        description: "operations each client runs",
    },
    ParamSpec {
        name: "keys",
        kind: ParamKind::Count,
        default: 16,
        min: 1,
        max: KEY_COUNT_MAX,
        description: "keys the clients share",
    },
    ParamSpec {
        name: "ack_before_fsync",
        kind: ParamKind::Count,
        default: 0,
        min: 0,
        max: 1,
        description: "1: the planted bug: a put is acknowledged before its fsync",
    },
    ParamSpec {
        name: "stale_cache",
        kind: ParamKind::Count,
        default: 0,
        min: 0,
        max: 1,
        description: "1: the planted bug: gets are answered from a cache puts do not update",
    },
];

impl Scenario for KvScenario {
    fn name(&self) -> &'static str {
        "kv"
    }

    fn description(&self) -> &'static str {
        "a key-value store with a write-ahead log; clients on other nodes; linearizability checked"
    }

    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }

    fn build(&self, params: &Params) -> Setup {
        let (clients, keys) = (params.get("clients"), params.get("keys"));
        let mut server = SystemSpec::new(1);
        server.register_payload::<Request>().register_payload::<Answer>();
        let store = server.register::<Store>(TypeConfig::new("store").slots(1).mailbox(1024));
        let listener = server.register::<Listener>(TypeConfig::new("listener").slots(1));
        server.register::<Session>(TypeConfig::new("session").slots(64));
        server.io_buffers(256, REPLAY_CHUNK);
        crate::storm_tolerant_root(&mut server, ShardId(0));
        let args = StoreArgs {
            keys,
            ack_before_fsync: params.get("ack_before_fsync"),
            stale_cache: params.get("stale_cache"),
        };
        let store = server.boot_child(ShardId(0), store, args);
        server.boot_child(ShardId(0), listener, ListenerArgs { store: store.latest() });
        let mut nodes = vec![server];
        for client in 0..clients {
            let mut spec = crate::client_node();
            let ty = spec.register::<Client>(TypeConfig::new("client").slots(1));
            let args = ClientArgs { client, ops: params.get("ops"), keys };
            spec.boot_child(ShardId(0), ty, args);
            nodes.push(spec);
        }
        let observer = Linearizable {
            clients,
            done: 0,
            history: History::new(),
            // At most CLIENT_COUNT_MAX clients.
            open: vec![None; clients as usize],
            shut_down: false,
        };
        let durable = Durable {
            keys,
            open: vec![None; clients as usize],
            acknowledged: Vec::new(),
            shut_down: false,
        };
        Setup::nodes(nodes)
            .observer(observer)
            .observer(durable)
            .goal(crate::Goal::Observed)
            .drains_on_shutdown()
    }
}
