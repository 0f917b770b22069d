//! Timers (never early, at most once, cancellable, a bounded pool with a typed error, never
//! disturbing pending I/O) and I/O operations completed from a script (data through shard
//! buffers, errors as values, stale completions after a restart).

use core::cell::RefCell;
use core::time::Duration;

use tina::io::{BufferId, IoError, IoHandle, IoOp, IoOpKind, IoResult, OpenMode};
use tina::testing::{TestConfig, TestWorld};
use tina::{
    Ctx, Effect, Event, GroupConfig, Handle, Isolate, Message, Restart, ShardId, Strategy,
    SystemSpec, TimerError, TimerId, Timestamp, TypeConfig,
};

const S0: ShardId = ShardId(0);

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(line: String) {
    LOG.with(|log| log.borrow_mut().push(line));
}

fn take_log() -> Vec<String> {
    LOG.with(|log| log.take())
}

tina::payload! {
    /// Test to isolate: do step `op` with `arg`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Step { pub op: u64, pub arg: u64 }
}

const SET: u64 = 1;
const CANCEL_FIRST: u64 = 2;
const SUBMIT_RECV_AND_SET: u64 = 3;
const CONNECT_SEND_RECV: u64 = 4;
const OPEN_MISSING: u64 = 5;
const SEND_FOREIGN_BUFFER: u64 = 6;
const RECV_WITHIN: u64 = 7;

/// Sets and cancels timers and runs I/O as told, logging everything delivered to it.
struct Clock {
    timers: Vec<TimerId>,
    socket: IoHandle,
}

impl Isolate for Clock {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Clock { timers: Vec::new(), socket: IoHandle::NONE }, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Some(fired) = message.timer() {
            log(format!("timer {} at {}", fired.tag, ctx.now().as_nanos()));
        } else if let Some(io) = message.io() {
            return self.on_io(io.op, io.result, ctx);
        } else if let Ok(step) = message.decode::<Step>() {
            return self.on_step(step, ctx);
        }
        Effect::Receive
    }
}

impl Clock {
    fn on_step(&mut self, step: Step, ctx: &mut Ctx<'_>) -> Effect {
        match step.op {
            SET => match ctx.timer_set(Duration::from_millis(step.arg), step.arg) {
                Ok(id) => self.timers.push(id),
                Err(error) => log(format!("set failed: {error:?}")),
            },
            CANCEL_FIRST => {
                let first = self.timers.remove(0);
                log(format!("cancel {}", ctx.timer_cancel(first)));
                log(format!("cancel again {}", ctx.timer_cancel(first)));
            }
            SUBMIT_RECV_AND_SET => {
                ctx.timer_set(Duration::from_millis(step.arg), step.arg).expect("a timer");
                return Effect::Io(IoOp::TcpRecv { socket: IoHandle::from_raw(9), len_max: 16 });
            }
            CONNECT_SEND_RECV => {
                return Effect::Io(IoOp::TcpConnect { addr: "10.0.0.1:80".parse().unwrap() });
            }
            OPEN_MISSING => {
                let path = ctx.buffer_alloc().expect("a buffer");
                ctx.buffer_write(path, 0, b"/nope").expect("fits");
                return Effect::Io(IoOp::FileOpen { path, path_len: 5, mode: OpenMode::Read });
            }
            RECV_WITHIN => {
                let op = IoOp::TcpRecv { socket: IoHandle::from_raw(9), len_max: 16 };
                return Effect::io_within(op, Duration::from_millis(step.arg));
            }
            SEND_FOREIGN_BUFFER => {
                let foreign = forged_buffer(ctx);
                return Effect::Io(IoOp::TcpSend { socket: self.socket, buffer: foreign, len: 1 });
            }
            _ => {}
        }
        Effect::Receive
    }

    fn on_io(&mut self, op: IoOpKind, result: IoResult, ctx: &mut Ctx<'_>) -> Effect {
        log(format!("io {op:?} {result:?} data {:?}", String::from_utf8_lossy(ctx.io_data())));
        match (op, result) {
            (IoOpKind::TcpConnect, IoResult::Opened(socket)) => {
                self.socket = socket;
                let buffer = ctx.buffer_alloc().expect("a buffer");
                ctx.buffer_write(buffer, 0, b"ping").expect("fits");
                Effect::Io(IoOp::TcpSend { socket, buffer, len: 4 })
            }
            (IoOpKind::TcpSend, IoResult::Transferred(_)) => {
                Effect::Io(IoOp::TcpRecv { socket: self.socket, len_max: 3 })
            }
            _ => Effect::Receive,
        }
    }
}

/// A buffer id this isolate does not hold: allocate, free, and reuse the stale id.
fn forged_buffer(ctx: &mut Ctx<'_>) -> BufferId {
    let id = ctx.buffer_alloc().expect("a buffer");
    ctx.buffer_free(id).expect("held");
    id
}

fn clock_world(timer_pool: u32) -> (TestWorld, Handle) {
    let mut spec = SystemSpec::new(1);
    spec.timer_pool_size(timer_pool).io_buffers(4, 64);
    let clock = spec.register::<Clock>(TypeConfig::new("clock").slots(1));
    let handle = spec.boot_child(S0, clock, ());
    let world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    take_log();
    (world, handle)
}

fn step(world: &mut TestWorld, to: Handle, op: u64, arg: u64) {
    assert!(world.inject(to, &Step { op, arg }));
    world.run_until_idle(20);
}

/// A timer fires at its deadline, never a tick of the clock before it, exactly once.
#[test]
fn timers_fire_on_time_once() {
    let (mut world, clock) = clock_world(8);
    step(&mut world, clock, SET, 10);
    step(&mut world, clock, SET, 5);
    world.advance(Duration::from_micros(4_999));
    world.run_until_idle(20);
    assert_eq!(take_log(), Vec::<String>::new());
    world.advance(Duration::from_micros(1));
    world.run_until_idle(20);
    assert_eq!(take_log(), ["timer 5 at 5000000"]);
    world.run_with_timers(100);
    assert_eq!(take_log(), ["timer 10 at 10000000"]);
    world.advance(Duration::from_secs(10));
    world.run_with_timers(100);
    assert_eq!(take_log(), Vec::<String>::new(), "each timer fires once");
    assert_eq!(world.scheduler(S0).timers_free(), (8, 8));
}

/// A cancelled timer never fires; cancelling twice, or a fired timer, returns false.
#[test]
fn cancelled_timers_never_fire() {
    let (mut world, clock) = clock_world(8);
    step(&mut world, clock, SET, 10);
    step(&mut world, clock, SET, 20);
    step(&mut world, clock, CANCEL_FIRST, 0);
    world.run_with_timers(100);
    assert_eq!(take_log(), ["cancel true", "cancel again false", "timer 20 at 20000000"]);
    step(&mut world, clock, CANCEL_FIRST, 0);
    assert_eq!(
        take_log(),
        ["cancel false", "cancel again false"],
        "a delivered timer cannot be cancelled"
    );
    assert_eq!(world.counters(S0).timers_cancelled, 1);
}

/// A cancelled timer holds no time: once the only pending timers are cancelled, the tick
/// reports no deadline, so an idle shard is not woken for nothing. (While timers are
/// pending the report is a lower bound of the earliest, exact once it is near.)
#[test]
fn cancelled_timers_hold_no_deadline() {
    let (mut world, clock) = clock_world(8);
    let deadline = |world: &mut TestWorld| world.tick().next_deadline.map(Timestamp::as_nanos);
    assert_eq!(deadline(&mut world), None);
    step(&mut world, clock, SET, 10);
    step(&mut world, clock, SET, 20);
    assert!(deadline(&mut world).is_some_and(|at| at <= 10_000_000));
    step(&mut world, clock, CANCEL_FIRST, 0);
    let left = deadline(&mut world);
    assert!(left.is_some_and(|at| at <= 20_000_000), "the other timer still counts: {left:?}");
    step(&mut world, clock, CANCEL_FIRST, 0);
    let log = take_log();
    assert_eq!(log, ["cancel true", "cancel again false", "cancel true", "cancel again false"]);
    assert_eq!(deadline(&mut world), None, "nothing pending, nothing to wake for");
    assert_eq!(world.scheduler(S0).timers_free(), (8, 8));
}

/// The timer pool is bounded: a set beyond it is a typed error and a counter, not a panic.
#[test]
fn timer_pool_exhaustion_is_an_error() {
    let (mut world, clock) = clock_world(2);
    for deadline in [10, 20, 30] {
        step(&mut world, clock, SET, deadline);
    }
    assert_eq!(take_log(), [format!("set failed: {:?}", TimerError::PoolExhausted)]);
    assert_eq!(world.counters(S0).timer_pool_exhausted, 1);
    world.run_with_timers(100);
    assert_eq!(take_log(), ["timer 10 at 10000000", "timer 20 at 20000000"]);
}

/// A timer that comes due while its owner waits for I/O does not cancel the I/O: the
/// completion is delivered first, then the timer.
#[test]
fn timers_never_cancel_pending_io() {
    let (mut world, clock) = clock_world(8);
    step(&mut world, clock, SUBMIT_RECV_AND_SET, 1);
    world.advance(Duration::from_millis(5));
    world.run_until_idle(20);
    assert_eq!(take_log(), Vec::<String>::new(), "the timer fired but the isolate waits for I/O");
    assert_eq!(world.counters(S0).timers_fired, 1);
    world.backend_mut(S0).script_io(IoResult::Received { len: 16, from: None }, b"hello");
    world.run_until_idle(20);
    assert_eq!(
        take_log(),
        ["io TcpRecv Received { len: 5, from: None } data \"hello\"", "timer 1 at 5000000"]
    );
}

/// Scripted I/O: connect, send from a shard buffer, receive into one (readable in that
/// handler call only; the buffer goes back to the pool after it), and an error completion.
#[test]
fn scripted_io_round_trip_and_error() {
    let (mut world, clock) = clock_world(8);
    step(&mut world, clock, CONNECT_SEND_RECV, 0);
    let backend = world.backend_mut(S0);
    backend.script_io(IoResult::Opened(IoHandle::from_raw(7)), b"");
    backend.script_io(IoResult::Transferred(4), b"");
    backend.script_io(IoResult::Received { len: 64, from: None }, b"pong!");
    world.run_until_idle(20);
    assert_eq!(
        take_log(),
        [
            "io TcpConnect Opened(io7) data \"\"",
            "io TcpSend Transferred(4) data \"\"",
            "io TcpRecv Received { len: 3, from: None } data \"pon\"",
        ]
    );
    let submissions = world.backend(S0).io_submissions();
    assert_eq!(submissions.len(), 3);
    assert!(matches!(submissions[1].op, IoOp::TcpSend { len: 4, .. }));
    assert_eq!(world.scheduler(S0).io_buffers_free(), 4, "send and receive buffers returned");

    step(&mut world, clock, OPEN_MISSING, 0);
    world.backend_mut(S0).script_io(IoResult::Failed(IoError::NotFound), b"");
    world.run_until_idle(20);
    assert_eq!(take_log(), ["io FileOpen Failed(NotFound) data \"\""]);
    assert_eq!(world.scheduler(S0).io_buffers_free(), 4, "the path buffer returned too");
}

/// An operation naming a buffer the isolate does not hold fails at once with
/// `InvalidBuffer`, without reaching the backend.
#[test]
fn io_with_a_foreign_buffer_fails_at_once() {
    let (mut world, clock) = clock_world(8);
    step(&mut world, clock, SEND_FOREIGN_BUFFER, 0);
    assert_eq!(take_log(), ["io TcpSend Failed(InvalidBuffer) data \"\""]);
    assert!(world.backend(S0).io_submissions().is_empty());
}

/// An operation with a timeout that does not complete in time is cancelled through the
/// backend and completes as `TimedOut`, waking the isolate; its receive buffer comes back
/// with the completion. Not a tick before the deadline.
#[test]
fn io_within_times_out_and_wakes_the_isolate() {
    let (mut world, clock) = clock_world(8);
    step(&mut world, clock, RECV_WITHIN, 50);
    assert_eq!(world.scheduler(S0).io_buffers_free(), 3, "the receive buffer is lent");
    world.advance(Duration::from_micros(49_999));
    world.run_until_idle(20);
    assert!(take_log().is_empty() && world.backend(S0).io_cancels().is_empty());
    world.advance(Duration::from_micros(1));
    world.run_until_idle(20);
    assert_eq!(take_log(), ["io TcpRecv Failed(TimedOut) data \"\""]);
    assert_eq!(world.backend(S0).io_cancels().len(), 1);
    assert_eq!(world.scheduler(S0).io_buffers_free(), 4, "the loan came back and was freed");
    let events = world.backend(S0).events();
    let at = |wanted: fn(&Event) -> bool| events.iter().position(wanted).expect("traced");
    assert!(
        at(|e| matches!(e, Event::IoTimeout { .. }))
            < at(|e| matches!(e, Event::IoComplete { .. })),
        "the timeout is traced before the completion it caused"
    );
}

/// An operation that completes within its timeout is not cancelled, and its deadline
/// leaves nothing behind: the isolate's next wait is undisturbed.
#[test]
fn io_within_that_completes_in_time_is_not_cancelled() {
    let (mut world, clock) = clock_world(8);
    step(&mut world, clock, RECV_WITHIN, 50);
    world.backend_mut(S0).script_io(IoResult::Received { len: 2, from: None }, b"hi");
    world.run_until_idle(20);
    assert_eq!(take_log(), ["io TcpRecv Received { len: 2, from: None } data \"hi\""]);
    world.advance(Duration::from_secs(1));
    world.run_with_timers(100);
    assert!(take_log().is_empty());
    assert!(world.backend(S0).io_cancels().is_empty());
    assert!(!world.backend(S0).events().iter().any(|e| matches!(e, Event::IoTimeout { .. })));
}

/// Waits for a receive on its socket, forever.
struct Reader;

impl Isolate for Reader {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Reader, Effect::Io(IoOp::TcpRecv { socket: IoHandle::from_raw(3), len_max: 8 }))
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if let Some(io) = message.io() {
            log(format!("reader got {:?}", io.result));
        }
        Effect::Receive
    }
}

/// Crashes on any message.
struct Fuse;

impl Isolate for Fuse {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Fuse, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Crash(tina::Label::new("fuse"))
    }
}

/// A completion for an incarnation that was restarted meanwhile is stale: it is counted,
/// its buffer freed, a handle it opened closed, and the new incarnation never sees it.
#[test]
fn stale_completion_after_a_restart() {
    let mut spec = SystemSpec::new(1);
    spec.io_buffers(2, 16);
    let reader = spec.register::<Reader>(TypeConfig::new("reader").slots(1));
    let fuse = spec.register::<Fuse>(TypeConfig::new("fuse").slots(1));
    let root = spec.root(S0);
    spec.configure(root, GroupConfig::new(Strategy::OneForAll));
    spec.add_child(root, reader, (), Restart::Permanent);
    let fuse = spec.add_child(root, fuse, (), Restart::Permanent);
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(20);
    assert_eq!(world.backend(S0).io_submissions().len(), 1, "submitted at the first tick");

    // The fuse crashes; OneForAll restarts the reader, whose new incarnation submits again.
    world.inject(fuse, &Step { op: 0, arg: 0 });
    world.run_until_idle(20);
    assert_eq!(world.backend(S0).io_submissions().len(), 2);
    assert_eq!(world.scheduler(S0).io_buffers_free(), 0, "both receives hold a buffer");

    // The first (stale) completion arrives, then the current one.
    world.backend_mut(S0).script_io(IoResult::Received { len: 8, from: None }, b"old");
    world.backend_mut(S0).script_io(IoResult::Received { len: 8, from: None }, b"new");
    world.run_until_idle(20);
    assert_eq!(take_log(), ["reader got Received { len: 3, from: None }"]);
    assert_eq!(world.counters(S0).io_stale, 1);
    assert_eq!(world.scheduler(S0).io_buffers_free(), 2, "the stale buffer was freed");
}

/// A stale completion that opened something gets it closed by the shard.
#[test]
fn stale_accept_is_closed() {
    struct Acceptor;
    impl Isolate for Acceptor {
        type Args = ();
        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Acceptor, Effect::Io(IoOp::TcpAccept { listener: IoHandle::from_raw(1) }))
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }
    let mut spec = SystemSpec::new(1);
    let acceptor = spec.register::<Acceptor>(TypeConfig::new("acceptor").slots(1));
    let fuse = spec.register::<Fuse>(TypeConfig::new("fuse").slots(1));
    let root = spec.root(S0);
    spec.configure(root, GroupConfig::new(Strategy::OneForAll));
    spec.add_child(root, acceptor, (), Restart::Permanent);
    let fuse = spec.add_child(root, fuse, (), Restart::Permanent);
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.inject(fuse, &Step { op: 0, arg: 0 });
    world.run_until_idle(20);
    let peer = "10.0.0.2:5000".parse().unwrap();
    world
        .backend_mut(S0)
        .script_io(IoResult::Accepted { socket: IoHandle::from_raw(42), peer }, b"");
    world.run_until_idle(20);
    let last = *world.backend(S0).io_submissions().last().expect("submissions");
    assert_eq!(last.op, IoOp::Close { handle: IoHandle::from_raw(42) });
    assert!(last.token.isolate().is_none(), "closed on no isolate's behalf");
}

/// Connects once per step; crashes on a step with `op == 0`; disowns its last socket on a
/// step with `op == 2`.
struct Opener {
    last: IoHandle,
}

impl Isolate for Opener {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Opener { last: IoHandle::NONE }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Some(io) = message.io() {
            log(format!("opener got {:?}", io.result));
            if let IoResult::Opened(socket) = io.result {
                self.last = socket;
            }
            return Effect::Receive;
        }
        match message.decode::<Step>().map(|step| step.op) {
            Ok(0) => Effect::Crash(tina::Label::new("opener")),
            Ok(2) => {
                log(format!("disowned {}", ctx.io_disown(self.last)));
                Effect::Receive
            }
            _ => Effect::Io(IoOp::TcpConnect { addr: "10.0.0.1:80".parse().unwrap() }),
        }
    }
}

fn opener_world() -> (TestWorld, Handle) {
    let mut spec = SystemSpec::new(1);
    let opener = spec.register::<Opener>(TypeConfig::new("opener").slots(1));
    let handle = spec.boot_child(S0, opener, ());
    let world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    take_log();
    (world, handle)
}

fn open(world: &mut TestWorld, opener: Handle, raw: u32) {
    assert!(world.inject(opener, &Step { op: 1, arg: 0 }));
    world.run_until_idle(20);
    world.backend_mut(S0).script_io(IoResult::Opened(IoHandle::from_raw(raw)), b"");
    world.run_until_idle(20);
}

fn closes(world: &TestWorld) -> Vec<u32> {
    let submissions = world.backend(S0).io_submissions();
    submissions
        .iter()
        .filter(|request| request.token.isolate().is_none())
        .filter_map(|request| match request.op {
            IoOp::Close { handle } => Some(handle.to_raw()),
            _ => None,
        })
        .collect()
}

/// What was opened for an isolate is the isolate's: when it crashes, the shard closes it,
/// as an operating system closes a dead process's files; a handle it disowned (to hand it
/// to another isolate) stays open.
#[test]
fn an_isolates_sockets_close_with_it() {
    let (mut world, opener) = opener_world();
    open(&mut world, opener, 7);
    open(&mut world, opener, 8);
    step(&mut world, opener, 2, 0);
    assert_eq!(take_log(), ["opener got Opened(io7)", "opener got Opened(io8)", "disowned true"]);
    step(&mut world, opener, 0, 0);
    assert_eq!(closes(&world), [7], "io8 was disowned: it stays open");
}

/// Past `IO_HANDLES_PER_ISOLATE_MAX`, what is opened for the isolate is closed again and
/// the operation fails with `TooManyHandles`.
#[test]
fn an_isolate_owns_a_bounded_number_of_handles() {
    let (mut world, opener) = opener_world();
    let max = tina::limits::IO_HANDLES_PER_ISOLATE_MAX as u32;
    for raw in 1..=max + 1 {
        open(&mut world, opener, raw);
    }
    let log = take_log();
    assert_eq!(log.last().map(String::as_str), Some("opener got Failed(TooManyHandles)"));
    assert_eq!(closes(&world), [max + 1], "the handle past the limit is closed at once");
}
