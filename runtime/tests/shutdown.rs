//! Graceful shutdown in three phases on the test backend: every isolate is told once (after
//! the reply or completion it waits for), isolates that end make the shard drain, the
//! deadline tears down the rest, no supervisor restarts anything, spawns are refused, and
//! receives in flight are cancelled while other I/O finishes.

use core::cell::RefCell;
use core::time::Duration;

use tina::io::{IoError, IoHandle, IoOp, IoOpKind, IoResult};
use tina::testing::{TestConfig, TestWorld};
use tina::{
    Ctx, Effect, Event, ExitKind, GroupConfig, Handle, Isolate, Message, ReplyToken, Restart,
    ShardId, SpawnError, Strategy, SystemSpec, Tag, Timestamp, TypeConfig,
};

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);
const DRAIN: Duration = Duration::from_millis(50);

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
    /// A request, and the signal to answer the one kept.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Ping { pub n: u64 }
}

/// Ignores the shutdown: waits for messages until it is torn down.
struct Stayer;

impl Isolate for Stayer {
    type Args = ();
    fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Stayer, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        log(format!("stayer {} got {} at {}", ctx.self_handle(), message.tag(), ctx.now()));
        Effect::Receive
    }
}

/// Ends on the shutdown notice, saying what it saw.
struct Leaver;

impl Isolate for Leaver {
    type Args = ();
    fn init(_: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
        log(format!("leaver init shutting_down={}", ctx.shutting_down()));
        (Leaver, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            let deadline = message.shutdown_deadline().map(Timestamp::as_nanos);
            let seen = ctx.shutdown_deadline().map(Timestamp::as_nanos);
            log(format!(
                "leaver shutdown deadline={deadline:?} ctx={seen:?} shutting_down={}",
                ctx.shutting_down()
            ));
            return Effect::Done;
        }
        log(format!("leaver got {}", message.tag()));
        Effect::Receive
    }
}

/// Crashes on the shutdown notice.
struct Crasher;

impl Isolate for Crasher {
    type Args = ();
    fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Crasher, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            return Effect::Crash(tina::Label::new("crash on shutdown"));
        }
        Effect::Receive
    }
}

/// On the shutdown notice, tries to spawn (unsupervised and as a child), then ends.
struct Spawner;

impl Isolate for Spawner {
    type Args = ();
    fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Spawner, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            let spawned = ctx.spawn::<Leaver>(()).map(|_| ());
            let child = ctx.spawn_child::<Leaver>((), Restart::Temporary).map(|_| ());
            log(format!("spawn {spawned:?} child {child:?}"));
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// Waits on a receive (`op` 0: TCP, 1: UDP, 2: accept) or a file write (3), logging what
/// completes; ends on the shutdown notice.
struct Waiter;

impl Isolate for Waiter {
    type Args = u64;
    fn init(op: u64, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let socket = IoHandle::from_raw(9);
        let op = match op {
            0 => IoOp::TcpRecv { socket, len_max: 16 },
            1 => IoOp::UdpRecvFrom { socket, len_max: 16 },
            2 => IoOp::TcpAccept { listener: socket },
            _ => {
                let buffer = ctx.buffer_alloc().expect("a buffer");
                ctx.buffer_write(buffer, 0, b"data").expect("fits");
                IoOp::FileWrite { file: socket, offset: 0, buffer, len: 4 }
            }
        };
        (Waiter, Effect::io_within(op, Duration::from_secs(60)))
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let me = ctx.self_handle().slot();
        if let Some(io) = message.io() {
            log(format!("waiter {me} {:?} {:?}", io.op, io.result));
            return Effect::Receive;
        }
        if message.is_shutdown() {
            log(format!("waiter {me} shutdown"));
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// Keeps one request unanswered until the shutdown, then answers it and ends.
struct Server {
    pending: Option<ReplyToken>,
}

impl Isolate for Server {
    type Args = ();
    fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Server { pending: None }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Some(token) = message.reply_token() {
            self.pending = Some(token);
            return Effect::Receive;
        }
        if message.is_shutdown() {
            if let Some(token) = self.pending.take() {
                let _ = ctx.reply(token, &Ping { n: 7 });
            }
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// Calls the server at once; logs the reply and the shutdown notice, in order.
struct Caller;

impl Isolate for Caller {
    type Args = Handle;
    fn init(server: Handle, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Caller, Effect::call(server, &Ping { n: 1 }, Duration::from_secs(10)))
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(ping) = message.decode::<Ping>() {
            log(format!("caller reply {}", ping.n));
            return Effect::Receive;
        }
        if message.is_shutdown() {
            log("caller shutdown".to_string());
            return Effect::Done;
        }
        log(format!("caller got {}", message.tag()));
        Effect::Receive
    }
}

fn boot(spec: &SystemSpec) -> TestWorld {
    let mut world = TestWorld::boot(spec, TestConfig::default()).expect("a valid spec");
    world.run_until_idle(100);
    world
}

fn shutdown_deliveries(world: &TestWorld, shard: ShardId) -> Vec<Handle> {
    let events = world.backend(shard).events();
    events
        .iter()
        .filter_map(|event| match event {
            Event::Deliver { to, tag, .. } if *tag == Tag::SHUTDOWN => Some(*to),
            _ => None,
        })
        .collect()
}

/// Every isolate on every shard gets exactly one shutdown notice, carrying the deadline,
/// and sees `shutting_down` from then on; isolates that end on it make each shard drain
/// at once, long before the deadline.
#[test]
fn every_isolate_is_told_once_and_leavers_drain() {
    let mut spec = SystemSpec::new(2);
    let leaver = spec.register::<Leaver>(TypeConfig::new("leaver").slots(8));
    let mut handles = Vec::new();
    for shard in [S0, S0, S0, S1, S1] {
        handles.push(spec.boot_child(shard, leaver, ()));
    }
    let mut world = boot(&spec);
    assert_eq!(take_log().len(), 5, "five inits");
    assert_eq!(world.begin_shutdown(DRAIN), 2);
    assert_eq!(world.begin_shutdown(DRAIN), 0, "a shutdown begins once");
    world.run_until_idle(100);

    let deadline = DRAIN.as_nanos() as u64;
    let expected = format!(
        "leaver shutdown deadline=Some({deadline}) ctx=Some({deadline}) shutting_down=true"
    );
    assert_eq!(take_log(), vec![expected; 5]);
    let mut told = shutdown_deliveries(&world, S0);
    told.extend(shutdown_deliveries(&world, S1));
    told.sort();
    let mut all = handles.clone();
    all.sort();
    assert_eq!(told, all, "each isolate told exactly once");
    for shard in [S0, S1] {
        let report = world.shutdown_report(shard).expect("finished");
        assert!(report.drained);
        assert_eq!(report.remaining_isolates, 0);
        assert_eq!(report.deadline, Timestamp::from_nanos(deadline));
        assert!(report.ended_at < report.deadline, "drained before the deadline");
        let events = world.backend(shard).events();
        let begin = events.iter().position(|e| matches!(e, Event::ShutdownBegin { .. }));
        let drained = events.iter().position(|e| *e == Event::ShutdownDrained);
        assert!(begin < drained && drained.is_some(), "begin, then drained");
        assert!(!events.iter().any(|e| matches!(e, Event::ShutdownForced { .. })));
    }
    assert_eq!(world.counters(S0).exits_normal, 3);
}

/// An isolate that ignores the notice keeps running through the drain and is torn down at
/// the deadline, not before: the shutdown ends forced, naming how many were left.
#[test]
fn an_isolate_that_ignores_it_is_torn_down_at_the_deadline() {
    let mut spec = SystemSpec::new(1);
    let stayer = spec.register::<Stayer>(TypeConfig::new("stayer").slots(2));
    let leaver = spec.register::<Leaver>(TypeConfig::new("leaver").slots(2));
    spec.register_payload::<Ping>();
    let stays = spec.boot_child(S0, stayer, ());
    spec.boot_child(S0, leaver, ());
    let mut world = boot(&spec);
    take_log();
    world.begin_shutdown(DRAIN);
    world.run_until_idle(100);
    assert!(world.shutdown_report(S0).is_none(), "still draining");
    assert!(world.scheduler(S0).is_live(stays));
    // The drain goes on: messages still arrive.
    world.advance(DRAIN / 2);
    assert!(world.inject(stays, &Ping { n: 2 }));
    world.run_until_idle(100);
    assert!(world.scheduler(S0).is_live(stays));
    assert!(world.shutdown_report(S0).is_none());

    world.run_with_timers(100);
    let report = world.shutdown_report(S0).expect("forced at the deadline");
    assert!(!report.drained);
    assert_eq!((report.isolates_at_start, report.remaining_isolates), (2, 1));
    assert_eq!(report.ended_at, report.deadline, "torn down at the deadline, not later");
    assert!(!world.scheduler(S0).is_live(stays));
    let log = take_log();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0], format!("stayer {stays} got shutdown at 0ns"), "{log:?}");
    assert!(log[1].starts_with("leaver shutdown"), "{log:?}");
    assert!(log[2].contains("got 0x") && log[2].ends_with("at 25000000ns"), "{log:?}");
    let events = world.backend(S0).events();
    let forced = events.iter().position(|e| *e == Event::ShutdownForced { remaining: 1 });
    let exit = Event::Exit { handle: stays, kind: ExitKind::Shutdown, reason: tina::NO_REASON };
    let exited = events.iter().position(|e| *e == exit);
    assert!(forced.is_some() && forced < exited, "forced, then the teardown");
    assert_eq!(world.counters(S0).shutdowns, 1);
    assert_eq!(world.scheduler(S0).live_isolates(), 0);
}

/// During the drain no supervisor restarts anything: a `Permanent` child that ends and a
/// `Transient` one that crashes stay down (the crash is counted), and no group escalates.
#[test]
fn no_restarts_during_the_drain() {
    let mut spec = SystemSpec::new(1);
    let leaver = spec.register::<Leaver>(TypeConfig::new("leaver").slots(2));
    let crasher = spec.register::<Crasher>(TypeConfig::new("crasher").slots(2));
    let root = spec.root(S0);
    // MaxR = 0: any restart decision would escalate the root and fail the shard.
    spec.configure(root, GroupConfig::new(Strategy::OneForAll).intensity(0, DRAIN));
    spec.add_child(root, leaver, (), Restart::Permanent);
    spec.add_child(root, crasher, (), Restart::Transient);
    let mut world = boot(&spec);
    take_log();
    world.begin_shutdown(DRAIN);
    world.run_until_idle(100);
    let report = world.shutdown_report(S0).expect("drained");
    assert!(report.drained);
    let counters = world.counters(S0);
    assert_eq!((counters.exits_normal, counters.crashes), (1, 1));
    assert_eq!((counters.restarts, counters.escalations, counters.shard_failures), (0, 0, 0));
    assert_eq!(counters.spawned, 2, "only the boot children");
    assert!(world.scheduler(S0).failure().is_none());
}

/// While the shard shuts down, spawns from isolates fail with a typed error (counted and
/// traced), so the drain converges.
#[test]
fn spawns_are_refused() {
    let mut spec = SystemSpec::new(1);
    let spawner = spec.register::<Spawner>(TypeConfig::new("spawner").slots(1));
    spec.register::<Leaver>(TypeConfig::new("leaver").slots(4));
    spec.boot_child(S0, spawner, ());
    let mut world = boot(&spec);
    world.begin_shutdown(DRAIN);
    world.run_until_idle(100);
    assert_eq!(take_log(), ["spawn Err(ShuttingDown) child Err(ShuttingDown)"], "both refused");
    assert_eq!(world.counters(S0).spawn_failed, 2);
    let refused = world
        .backend(S0)
        .events()
        .iter()
        .filter(|e| matches!(e, Event::SpawnFailed { reason: SpawnError::ShuttingDown, .. }))
        .count();
    assert_eq!(refused, 2);
    assert!(world.shutdown_report(S0).expect("drained").drained);
}

/// Receives in flight when the shutdown begins (TCP, UDP, accept) are cancelled through
/// the backend and complete as timed out; the notice comes after the completion. A file
/// write in flight is not cancelled: it finishes, and the notice follows.
#[test]
fn receives_are_cancelled_and_other_io_finishes() {
    let mut spec = SystemSpec::new(1);
    let waiter = spec.register::<Waiter>(TypeConfig::new("waiter").slots(4));
    spec.io_buffers(8, 64);
    for op in 0..4u64 {
        spec.boot_child(S0, waiter, op);
    }
    let mut world = boot(&spec);
    assert_eq!(world.backend(S0).io_unscripted(), 4);
    world.begin_shutdown(DRAIN);
    world.run_until_idle(100);

    let cancels = world.backend(S0).io_cancels().to_vec();
    assert_eq!(cancels.len(), 3, "the three receives, not the write");
    let timeouts =
        world.backend(S0).events().iter().filter(|e| matches!(e, Event::IoTimeout { .. })).count();
    assert_eq!(timeouts, 3, "each cancel is traced");
    let failed = IoResult::Failed(IoError::TimedOut);
    let mut log = take_log();
    assert_eq!(log.len(), 6, "{log:?}");
    let receives: Vec<String> = log.drain(..6).collect();
    for (slot, op) in
        [IoOpKind::TcpRecv, IoOpKind::UdpRecvFrom, IoOpKind::TcpAccept].into_iter().enumerate()
    {
        let line = format!("waiter {slot} {op:?} {failed:?}");
        let completed = receives.iter().position(|l| *l == line).expect("cancelled");
        let told = format!("waiter {slot} shutdown");
        let told = receives.iter().position(|l| *l == told).expect("told");
        assert!(completed < told, "the notice after the completion: {receives:?}");
    }
    assert!(world.shutdown_report(S0).is_none(), "the writer is still at it");

    world.backend_mut(S0).script_io(IoResult::Transferred(4), b"");
    world.run_until_idle(100);
    assert_eq!(take_log(), ["waiter 3 FileWrite Transferred(4)", "waiter 3 shutdown"]);
    assert!(world.shutdown_report(S0).expect("drained").drained);
}

/// An isolate waiting for a reply gets it first, then its notice; the server that held the
/// request answers it on its own notice.
#[test]
fn a_caller_gets_its_reply_before_the_notice() {
    let mut spec = SystemSpec::new(2);
    let server = spec.register::<Server>(TypeConfig::new("server").slots(1));
    let caller = spec.register::<Caller>(TypeConfig::new("caller").slots(1));
    spec.register_payload::<Ping>();
    let server = spec.boot_child(S1, server, ());
    spec.boot_child(S0, caller, server);
    let mut world = boot(&spec);
    assert!(take_log().is_empty(), "the call waits");
    world.begin_shutdown(DRAIN);
    world.run_until_idle(100);
    assert_eq!(take_log(), ["caller reply 7", "caller shutdown"]);
    for shard in [S0, S1] {
        assert!(world.shutdown_report(shard).expect("drained").drained);
    }
}

/// A shard with nothing alive is drained the moment its shutdown begins.
#[test]
fn an_empty_shard_is_drained_at_once() {
    let mut spec = SystemSpec::new(2);
    let leaver = spec.register::<Leaver>(TypeConfig::new("leaver").slots(1));
    spec.boot_child(S0, leaver, ());
    let mut world = boot(&spec);
    take_log();
    world.begin_shutdown(DRAIN);
    let report = world.shutdown_report(S1).expect("nothing to drain");
    assert!(report.drained);
    assert_eq!((report.isolates_at_start, report.ended_at), (0, Timestamp::ZERO));
    assert!(world.shutdown_report(S0).is_none(), "shard 0 has a leaver to tell");
}
