//! Call and reply: replies overtake queued messages, deferred replies, timeouts that never
//! come early, routing failures that fail at once, and late replies that are dropped and
//! counted, on one shard and across two.

use core::cell::RefCell;
use core::time::Duration;

use tina::io::{IoHandle, IoOp};
use tina::testing::{TestConfig, TestWorld};
use tina::{
    Ctx, Effect, Handle, Isolate, Message, ReplyError, ReplyToken, ShardId, SystemSpec, Timestamp,
    TypeConfig,
};

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);
const TIMEOUT: Duration = Duration::from_millis(100);

tina::payload! {
    /// Test to caller: send `fill` notes to `sink` first, then call `target` with question
    /// `n`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Ask { pub target: Handle, pub n: u64, pub sink: Handle, pub fill: u64 }
}

tina::payload! {
    /// Caller to server (a call) and server to caller (the reply).
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Question { pub n: u64 }
}

tina::payload! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Answer { pub n: u64 }
}

tina::payload! {
    /// Any other message.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Note { pub value: u64 }
}

tina::payload! {
    /// Test to server: answer the held calls now.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Release { pub unused: u64 }
}

thread_local! {
    /// What callers and servers observed, in order.
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(line: String) {
    LOG.with(|log| log.borrow_mut().push(line));
}

fn take_log() -> Vec<String> {
    LOG.with(|log| log.take())
}

/// Makes the calls it is asked to and logs what comes back.
struct Caller;

impl Isolate for Caller {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Caller, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(ask) = message.decode::<Ask>() {
            for value in 0..ask.fill {
                let _ = ctx.send(ask.sink, &Note { value });
            }
            return Effect::call(ask.target, &Question { n: ask.n }, TIMEOUT);
        }
        if let Ok(answer) = message.decode::<Answer>() {
            log(format!("answer {}", answer.n));
        } else if let Some(failure) = message.call_failure() {
            log(format!("failed {}", failure.name()));
        } else if let Ok(note) = message.decode::<Note>() {
            log(format!("note {}", note.value));
        }
        Effect::Receive
    }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ServerArgs { pub mode: u64 }
}

const ANSWER_NOW: u64 = 0;
const HOLD: u64 = 1;

/// Answers at once, or holds the reply tokens until told to release them (a reply from a
/// later handler call).
struct Server {
    mode: u64,
    held: Vec<(ReplyToken, u64)>,
}

impl Isolate for Server {
    type Args = ServerArgs;
    fn init(args: ServerArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Server { mode: args.mode, held: Vec::new() }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if let (Ok(question), Some(token)) = (message.decode::<Question>(), message.reply_token()) {
            if self.mode == ANSWER_NOW {
                return Effect::reply(token, &Answer { n: question.n });
            }
            self.held.push((token, question.n));
        } else if message.is::<Release>() {
            for (token, n) in self.held.drain(..) {
                let result = ctx.reply(token, &Answer { n });
                log(format!("reply {n}: {result:?}"));
            }
        }
        Effect::Receive
    }
}

/// Submits I/O nobody completes, so it is never dispatched again: its mailbox only fills.
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

struct Setup {
    world: TestWorld,
    caller: Handle,
    server: Handle,
    sleeper: Handle,
}

/// A caller on shard 0, a server in `mode` on `server_shard`, a sleeper (mailbox of two) on
/// shard 0.
fn setup(mode: u64, server_shard: ShardId, pool: u32) -> Setup {
    let mut spec = SystemSpec::new(2);
    spec.message_pool_size(pool);
    let caller = spec.register::<Caller>(TypeConfig::new("caller").slots(1));
    let server = spec.register::<Server>(TypeConfig::new("server").slots(1));
    let sleeper = spec.register::<Sleeper>(TypeConfig::new("sleeper").slots(1).mailbox(2));
    let caller = spec.boot_child(S0, caller, ());
    let server = spec.boot_child(server_shard, server, ServerArgs { mode });
    let sleeper = spec.boot_child(S0, sleeper, ());
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(10);
    take_log();
    Setup { world, caller, server, sleeper }
}

impl Setup {
    fn ask(&mut self, target: Handle, n: u64) {
        self.ask_after_filling(target, n, 0);
    }

    fn ask_after_filling(&mut self, target: Handle, n: u64, fill: u64) {
        assert!(self.world.inject(self.caller, &Ask { target, n, sink: self.sleeper, fill }));
        self.world.run_until_idle(20);
    }
}

/// A call answered at once delivers the answer and ends the call as replied.
#[test]
fn call_and_reply() {
    let mut s = setup(ANSWER_NOW, S0, 64);
    s.ask(s.server, 1);
    assert_eq!(take_log(), ["answer 1"]);
    let counters = s.world.counters(S0);
    assert_eq!((counters.calls, counters.replies, counters.calls_replied), (1, 1, 1));
}

/// A held reply, sent from a later handler call, reaches the caller ahead of the messages
/// that queued while it waited.
#[test]
fn deferred_reply_overtakes_queued_messages() {
    let mut s = setup(HOLD, S0, 64);
    s.ask(s.server, 7);
    for value in 1..=3 {
        s.world.inject(s.caller, &Note { value });
    }
    s.world.run_until_idle(20);
    assert_eq!(take_log(), Vec::<String>::new(), "the caller waits for its reply");
    s.world.inject(s.server, &Release { unused: 0 });
    s.world.run_until_idle(20);
    assert_eq!(take_log(), ["reply 7: Ok(())", "answer 7", "note 1", "note 2", "note 3"]);
}

/// With no reply, the timeout arrives as `Tag::CALL_TIMEOUT`: not a nanosecond before the
/// deadline, and at the deadline.
#[test]
fn call_timeout_is_never_early() {
    let mut s = setup(HOLD, S0, 64);
    s.ask(s.server, 1);
    s.world.advance(TIMEOUT - Duration::from_micros(1));
    s.world.run_until_idle(20);
    assert_eq!(take_log(), Vec::<String>::new());
    s.world.advance(Duration::from_micros(1));
    s.world.run_until_idle(20);
    assert_eq!(take_log(), ["failed timeout"]);
    assert_eq!(s.world.counters(S0).call_timeouts, 1);
}

/// A call that cannot be routed fails at once, without waiting for the timeout: a stale
/// callee, a full mailbox, an exhausted pool.
#[test]
fn routing_failures_fail_at_once() {
    let mut s = setup(ANSWER_NOW, S0, 64);
    s.ask(Handle::from_raw(s.server.to_raw() + 1), 1);
    assert_eq!(take_log(), ["failed stale-handle"]);
    // The sleeper never runs again: two notes fill its mailbox of two.
    s.ask_after_filling(s.sleeper, 2, 2);
    assert_eq!(take_log(), ["failed mailbox-full"]);
    let counters = *s.world.counters(S0);
    assert_eq!(counters.calls_unroutable, 2);
    assert_eq!(counters.call_timeouts, 0, "nothing waited for a deadline");

    // A pool of two: the caller's two notes to the sleeper take both envelopes, so the
    // request finds none.
    let mut exhausted = setup(ANSWER_NOW, S0, 2);
    exhausted.ask_after_filling(exhausted.server, 3, 2);
    assert_eq!(take_log(), ["failed pool-exhausted"]);
    assert_eq!(exhausted.world.counters(S0).calls_unroutable, 1);
}

/// A reply after the timeout is dropped and counted: refused at once on the caller's
/// shard, and counted as a late reply on the caller's shard when it comes from another.
#[test]
fn late_replies_are_dropped_and_counted() {
    let mut local = setup(HOLD, S0, 64);
    local.ask(local.server, 1);
    local.world.advance(TIMEOUT);
    local.world.run_until_idle(20);
    local.world.inject(local.server, &Release { unused: 0 });
    local.world.run_until_idle(20);
    let refused = format!("reply 1: {:?}", Err::<(), _>(ReplyError::NoPendingCall));
    assert_eq!(take_log(), ["failed timeout".to_string(), refused]);
    assert_eq!(local.world.counters(S0).late_replies, 1);

    let mut remote = setup(HOLD, S1, 64);
    remote.ask(remote.server, 2);
    remote.world.advance(TIMEOUT);
    remote.world.run_until_idle(20);
    remote.world.inject(remote.server, &Release { unused: 0 });
    remote.world.run_until_idle(20);
    assert_eq!(take_log(), ["failed timeout", "reply 2: Ok(())"], "the server cannot know");
    assert_eq!(remote.world.counters(S0).late_replies, 1, "counted where the caller is");
    assert_eq!(remote.world.counters(S0).delivered, 1, "only the ask was delivered to the caller");
}

/// An answered call holds no time: its timeout leaves the timer wheel when the reply is
/// accepted (from this shard or another), and when the call fails at once, so the tick
/// reports no deadline once no call is in progress.
#[test]
fn answered_calls_hold_no_deadline() {
    let deadline = |world: &mut TestWorld| world.tick().next_deadline.map(Timestamp::as_nanos);
    for server_shard in [S0, S1] {
        let mut s = setup(HOLD, server_shard, 64);
        assert_eq!(deadline(&mut s.world), None);
        s.ask(s.server, 1);
        let waiting = deadline(&mut s.world);
        assert!(waiting.is_some_and(|at| at <= 100_000_000), "the timeout is armed: {waiting:?}");
        s.world.inject(s.server, &Release { unused: 0 });
        s.world.run_until_idle(20);
        assert_eq!(take_log(), ["reply 1: Ok(())", "answer 1"]);
        assert_eq!(deadline(&mut s.world), None, "server on {server_shard:?}");
    }
    let mut s = setup(ANSWER_NOW, S0, 64);
    s.ask(Handle::from_raw(s.server.to_raw() + 1), 1);
    assert_eq!(take_log(), ["failed stale-handle"]);
    assert_eq!(deadline(&mut s.world), None, "a call that failed at once");
}

/// Calls across shards: the request and the reply cross the transport.
#[test]
fn call_across_shards() {
    let mut s = setup(ANSWER_NOW, S1, 64);
    for n in 1..=3 {
        s.ask(s.server, n);
    }
    assert_eq!(take_log(), ["answer 1", "answer 2", "answer 3"]);
    assert_eq!(s.world.counters(S1).replies, 3);
    assert_eq!(s.world.counters(S0).calls_replied, 3);
}
