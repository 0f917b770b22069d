//! The end-of-run views of a shard (`for_each_queued`, `for_each_pending_call`,
//! `for_each_io_outstanding`) say exactly what the trace says is still under way: messages
//! enqueued and neither delivered nor dropped, calls started and not ended, I/O submitted
//! and not completed. Each is compared with the trace at every step of a two-shard run.

use core::time::Duration;

use tina::io::{IoHandle, IoOp, IoResult};
use tina::testing::{TestConfig, TestWorld};
use tina::{
    Ctx, Effect, Event, GroupConfig, Handle, Isolate, Message, MessageId, ReplyToken, Restart,
    ShardId, Strategy, SystemSpec, TypeConfig,
};

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);
/// Callers beside the one that calls: enough to spend a tick's dispatch budget of the type
/// (256 per weight) twice over.
const CROWD: u64 = 600;

tina::payload! {
    /// Test to caller: send two notes to `sink`, then call `target`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Ask { pub target: Handle, pub sink: Handle }
}

tina::payload! {
    /// Caller to server (a call), and server to caller (the reply).
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Question { pub n: u64 }
}

tina::payload! {
    /// Anything else.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Note { pub value: u64 }
}

/// A note that makes a caller crash.
const CRASH: u64 = 99;

/// Calls when asked; crashes on a `CRASH` note; waits for more on anything else.
struct Caller;

impl Isolate for Caller {
    type Args = u64;
    fn init(_index: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Caller, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(ask) = message.decode::<Ask>() {
            for value in 0..2 {
                let _ = ctx.send(ask.sink, &Note { value });
            }
            return Effect::call(ask.target, &Question { n: 1 }, Duration::from_secs(1));
        }
        if message.decode::<Note>().is_ok_and(|note| note.value == CRASH) {
            return Effect::Crash(tina::Label::new("asked to crash"));
        }
        Effect::Receive
    }
}

/// Holds every call until a `Note` tells it to answer them all.
struct Server {
    held: Vec<ReplyToken>,
}

impl Isolate for Server {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Server { held: Vec::new() }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Some(token) = message.reply_token() {
            self.held.push(token);
        } else {
            for token in self.held.drain(..) {
                ctx.reply(token, &Question { n: 2 }).expect("the caller waits");
            }
        }
        Effect::Receive
    }
}

/// Submits I/O at `init` and waits for it; its mailbox only fills meanwhile.
struct Sleeper;

impl Isolate for Sleeper {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Sleeper, Effect::Io(IoOp::Close { handle: IoHandle::from_raw(1) }))
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// What is still under way on one shard: queued message ids, pending calls, outstanding
/// I/O, each sorted.
#[derive(Debug, Default, PartialEq, Eq)]
struct UnderWay {
    queued: Vec<MessageId>,
    calls: Vec<(Handle, u32)>,
    io: Vec<(Handle, u32)>,
}

/// What the trace of `shard` says is under way.
fn from_trace(world: &TestWorld, shard: ShardId) -> UnderWay {
    let mut under_way = UnderWay::default();
    for event in world.backend(shard).events() {
        match *event {
            Event::Enqueue { id, .. } => under_way.queued.push(id),
            Event::Deliver { id, .. } | Event::Drop { id, .. } => {
                under_way.queued.retain(|&queued| queued != id);
            }
            Event::CallStart { caller, correlation, .. } => {
                under_way.calls.push((caller, correlation));
            }
            Event::CallEnd { caller, correlation, .. } => {
                under_way.calls.retain(|&call| call != (caller, correlation));
            }
            Event::Exit { handle, .. } => under_way.calls.retain(|&(caller, _)| caller != handle),
            Event::IoSubmit { isolate, sequence, .. } => under_way.io.push((isolate, sequence)),
            Event::IoComplete { isolate, sequence, .. } | Event::IoStale { isolate, sequence } => {
                under_way.io.retain(|&io| io != (isolate, sequence));
            }
            _ => {}
        }
    }
    under_way.queued.sort();
    under_way.calls.sort();
    under_way.io.sort();
    under_way
}

/// What the scheduler of `shard` says is under way.
fn from_views(world: &TestWorld, shard: ShardId) -> UnderWay {
    let scheduler = world.scheduler(shard);
    let mut under_way = UnderWay::default();
    scheduler.for_each_queued(&mut |id| under_way.queued.push(id));
    scheduler.for_each_pending_call(&mut |caller, correlation| {
        under_way.calls.push((caller, correlation));
    });
    scheduler.for_each_io_outstanding(&mut |isolate, sequence| {
        under_way.io.push((isolate, sequence));
    });
    under_way.queued.sort();
    under_way.calls.sort();
    under_way.io.sort();
    under_way
}

/// Asserts that the views of both shards agree with their traces, and returns shard 0's.
fn check(world: &TestWorld, step: &str) -> UnderWay {
    assert_eq!(from_views(world, S1), from_trace(world, S1), "shard 1 after {step}");
    let views = from_views(world, S0);
    assert_eq!(views, from_trace(world, S0), "shard 0 after {step}");
    views
}

/// A caller (and a crowd of its type) and a sleeper on shard 0, a holding server on shard 1.
/// At each step the views agree with the trace, and hold what the step left under way: the
/// sleeper's I/O and the notes queued behind it, the call while it waits, the notes queued
/// for the waiting caller, then an accepted reply that its caller has not been handed yet
/// (the crowd spent the tick's budget first), and nothing once it is all delivered.
#[test]
fn views_agree_with_the_trace() {
    let mut spec = SystemSpec::new(2);
    let caller_type =
        spec.register::<Caller>(TypeConfig::new("caller").slots(CROWD as u32 + 1).mailbox(4));
    let server_type = spec.register::<Server>(TypeConfig::new("server").slots(1));
    let sleeper_type = spec.register::<Sleeper>(TypeConfig::new("sleeper").slots(1).mailbox(2));
    let caller = spec.boot_child(S0, caller_type, 0);
    let crowd: Vec<Handle> =
        (1..=CROWD).map(|index| spec.boot_child(S0, caller_type, index)).collect();
    let server = spec.boot_child(S1, server_type, ());
    let sleeper = spec.boot_child(S0, sleeper_type, ());
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(10);
    let booted = check(&world, "boot");
    assert_eq!((booted.queued.len(), booted.calls.len(), booted.io), (0, 0, vec![(sleeper, 1)]));

    world.inject(caller, &Ask { target: server, sink: sleeper });
    world.run_until_idle(10);
    for value in 0..2 {
        world.inject(caller, &Note { value });
    }
    world.run_until_idle(10);
    let waiting = check(&world, "the call");
    assert_eq!(waiting.queued.len(), 4, "two notes for the sleeper, two for the caller");
    assert_eq!(waiting.calls.len(), 1);
    assert_eq!(waiting.calls[0].0, caller);

    for &member in &crowd {
        world.inject(member, &Note { value: 0 });
    }
    world.inject(server, &Note { value: 0 });
    world.tick();
    world.tick();
    let replied = check(&world, "the reply");
    let reply = world.backend(S0).events().iter().find_map(|event| match *event {
        Event::Enqueue { id, reply: true, .. } => Some(id),
        _ => None,
    });
    let reply = reply.expect("the reply was accepted");
    assert!(replied.queued.contains(&reply), "an accepted reply not yet delivered is queued");
    assert!(replied.calls.is_empty(), "the call ended when its reply was accepted");

    world.run_until_idle(20);
    let settled = check(&world, "the rest");
    assert_eq!(settled.queued.len(), 2, "only the sleeper's notes");
    world.backend_mut(S0).script_io(IoResult::Done, &[]);
    world.run_until_idle(20);
    let done = check(&world, "the I/O");
    assert_eq!(done.io, []);
}

/// Incarnations that stop while waiting: a caller's call ends with its exit (no `CallEnd`
/// follows, and its reply is a stale drop), while an I/O operation stays outstanding until
/// its completion is reaped as stale; the views follow the trace through all of it.
#[test]
fn views_follow_stops_while_waiting() {
    let mut spec = SystemSpec::new(2);
    let caller_type = spec.register::<Caller>(TypeConfig::new("caller").slots(2));
    let server_type = spec.register::<Server>(TypeConfig::new("server").slots(1));
    let sleeper_type = spec.register::<Sleeper>(TypeConfig::new("sleeper").slots(1));
    let server = spec.boot_child(S1, server_type, ());
    let root = spec.root(S0);
    spec.configure(
        root,
        GroupConfig::new(Strategy::OneForAll).intensity(5, Duration::from_secs(1)),
    );
    let caller = spec.add_child(root, caller_type, 0, Restart::Permanent);
    let sleeper = spec.add_child(root, sleeper_type, (), Restart::Permanent);
    let crasher = spec.add_child(root, caller_type, 1, Restart::Permanent);
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(10);
    world.inject(caller, &Ask { target: server, sink: crasher });
    world.run_until_idle(10);
    let waiting = check(&world, "the call");
    assert_eq!((waiting.calls.len(), waiting.io.len()), (1, 1));

    world.inject(crasher, &Note { value: CRASH });
    world.run_until_idle(10);
    let restarted = check(&world, "the restart");
    assert!(restarted.calls.is_empty(), "the caller's exit ended its call");
    assert_eq!(restarted.io.len(), 2, "the old sleeper's I/O and the new one's");
    assert!(restarted.io.contains(&(sleeper, 1)));

    world.inject(server, &Note { value: 0 });
    world.run_until_idle(10);
    assert_eq!(world.counters(S0).stale_handle, 1, "the reply found no caller");
    check(&world, "the stale reply");
    world.backend_mut(S0).script_io(IoResult::Done, &[]);
    world.backend_mut(S0).script_io(IoResult::Done, &[]);
    world.run_until_idle(10);
    let reaped = check(&world, "the completions");
    assert_eq!(world.counters(S0).io_stale, 1);
    assert_eq!(reaped.io, []);
}
