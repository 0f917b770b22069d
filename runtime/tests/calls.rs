//! Call and reply: replies overtake queued messages, deferred replies, timeouts that never
//! come early, routing failures that fail at once (on the caller's shard) or by a notice
//! from the callee's shard, and late replies and notices that are dropped and counted, on
//! one shard and across two.

use core::cell::RefCell;
use core::time::Duration;
use std::collections::VecDeque;

use tina::io::{IoHandle, IoOp};
use tina::testing::{TestBackend, TestConfig, TestWorld};
use tina::{
    Backend, CallFailure, CallOutcome, Ctx, DropReason, Effect, Env, Event, Handle, Isolate,
    Message, ReplyError, ReplyToken, Scheduler, ShardFailure, ShardId, SystemSpec, Tag, Timestamp,
    TransportFull, TypeConfig,
};

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);
const TIMEOUT: Duration = Duration::from_millis(100);

tina::payload! {
    /// Test to caller: send `fill` notes to `sink` first, then call `target` with question
    /// `n` and a timeout of `timeout_ns`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Ask {
        pub target: Handle,
        pub n: u64,
        pub sink: Handle,
        pub fill: u64,
        pub timeout_ns: u64,
    }
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
            let timeout = Duration::from_nanos(ask.timeout_ns);
            return Effect::call(ask.target, &Question { n: ask.n }, timeout);
        }
        if let Ok(answer) = message.decode::<Answer>() {
            log(format!("answer {}", answer.n));
        } else if let Some(failure) = message.call_failure() {
            // Every failure looks the same to the caller, whatever shard it came from.
            let plain = message.source().is_none() && !message.is_reply();
            assert!(plain && message.correlation() == 0, "a failure is a plain system message");
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
    /// The timeout of the calls the caller makes.
    timeout: Duration,
}

/// A caller on shard 0, a server in `mode` on `server_shard`, a sleeper (mailbox of two) on
/// shard 0.
fn setup(mode: u64, server_shard: ShardId, pool: u32) -> Setup {
    setup_on(mode, server_shard, S0, pool)
}

/// `setup` with the sleeper on `sleeper_shard`.
fn setup_on(mode: u64, server_shard: ShardId, sleeper_shard: ShardId, pool: u32) -> Setup {
    let mut spec = SystemSpec::new(2);
    spec.message_pool_size(pool);
    let caller = spec.register::<Caller>(TypeConfig::new("caller").slots(1));
    let server = spec.register::<Server>(TypeConfig::new("server").slots(1));
    let sleeper = spec.register::<Sleeper>(TypeConfig::new("sleeper").slots(1).mailbox(2));
    let caller = spec.boot_child(S0, caller, ());
    let server = spec.boot_child(server_shard, server, ServerArgs { mode });
    let sleeper = spec.boot_child(sleeper_shard, sleeper, ());
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(10);
    take_log();
    Setup { world, caller, server, sleeper, timeout: TIMEOUT }
}

impl Setup {
    fn ask(&mut self, target: Handle, n: u64) {
        self.ask_after_filling(target, n, 0);
    }

    fn ask_after_filling(&mut self, target: Handle, n: u64, fill: u64) {
        let timeout_ns = u64::try_from(self.timeout.as_nanos()).expect("a short timeout");
        let ask = Ask { target, n, sink: self.sleeper, fill, timeout_ns };
        assert!(self.world.inject(self.caller, &ask));
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
    s.ask(stale(s.server), 1);
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

/// A handle like `handle`, one generation later: stale, on the same shard.
fn stale(handle: Handle) -> Handle {
    Handle::from_raw(handle.to_raw() + 1)
}

/// A call to a stale handle on another shard fails with `StaleHandle` long before its
/// timeout: the callee's shard drops the request and answers with a call-failure notice, an
/// ordinary message of that shard (a fresh id, a `Send` there, an `Enqueue` on the caller's
/// shard as an accepted reply) that ends the call as failed and reaches the caller like a
/// local failure.
#[test]
fn stale_callee_on_another_shard_fails_fast() {
    let mut s = setup(ANSWER_NOW, S1, 64);
    s.ask(stale(s.server), 1);
    assert_eq!(take_log(), ["failed stale-handle"], "without the clock moving at all");
    let (caller_side, callee_side) = (*s.world.counters(S0), *s.world.counters(S1));
    assert_eq!((caller_side.calls_unroutable, caller_side.call_timeouts), (1, 0));
    assert_eq!((caller_side.calls_replied, caller_side.late_replies), (0, 0));
    assert_eq!((callee_side.stale_handle, callee_side.sent), (1, 1));

    let notice = s.world.backend(S1).events().iter().find_map(|event| match *event {
        Event::Send { id, from, to, tag } if to == s.caller => Some((id, from, tag)),
        _ => None,
    });
    let (notice, from, tag) = notice.expect("shard 1 sent the caller a notice");
    assert_eq!((notice.origin(), from, tag), (S1, Handle::NONE, Tag::CALL_TIMEOUT));
    let caller_events = s.world.backend(S0).events();
    let (correlation, ended) = caller_events
        .iter()
        .find_map(|event| match *event {
            Event::CallEnd { correlation, outcome, .. } => Some((correlation, outcome)),
            _ => None,
        })
        .expect("the call ended");
    assert_eq!(ended, CallOutcome::Failed(CallFailure::StaleHandle));
    let position = |wanted: &Event| caller_events.iter().position(|event| event == wanted);
    let enqueue = caller_events.iter().position(|event| {
        matches!(*event, Event::Enqueue { id, to, reply: true, .. } if id == notice && to == s.caller)
    });
    let end = position(&Event::CallEnd { caller: s.caller, correlation, outcome: ended });
    let deliver = position(&Event::Deliver { id: notice, to: s.caller, tag: Tag::CALL_TIMEOUT });
    assert!(enqueue < end && end < deliver && enqueue.is_some(), "accepted, ended, delivered");
}

/// A call to a full mailbox on another shard fails with `MailboxFull`, and one that finds
/// that shard's pool exhausted with `PoolExhausted`, both without waiting.
#[test]
fn full_callee_on_another_shard_fails_fast() {
    // The sleeper never runs again: the two notes the caller sends first fill its mailbox.
    let mut s = setup_on(ANSWER_NOW, S1, S1, 64);
    s.ask_after_filling(s.sleeper, 1, 2);
    assert_eq!(take_log(), ["failed mailbox-full"]);
    assert_eq!(s.world.counters(S1).mailbox_full, 1);
    assert_eq!((s.world.counters(S0).calls_unroutable, s.world.counters(S0).call_timeouts), (1, 0));

    // A pool of two: the two notes take both of shard 1's envelopes, so the request to the
    // server there finds none.
    let mut s = setup_on(ANSWER_NOW, S1, S1, 2);
    s.ask_after_filling(s.server, 2, 2);
    assert_eq!(take_log(), ["failed pool-exhausted"]);
    assert_eq!(s.world.counters(S1).pool_exhausted, 1);
    assert_eq!(s.world.counters(S0).calls_unroutable, 1);
}

/// A notice that arrives after its call ended (here, a call with a zero timeout, which
/// expires in the caller's own tick) is a late reply: dropped and counted, and the caller
/// sees only its timeout.
#[test]
fn late_notice_is_a_late_reply() {
    let mut s = setup(ANSWER_NOW, S1, 64);
    s.timeout = Duration::ZERO;
    s.ask(stale(s.server), 1);
    assert_eq!(take_log(), ["failed timeout"]);
    let counters = *s.world.counters(S0);
    assert_eq!((counters.call_timeouts, counters.calls_unroutable), (1, 0));
    assert_eq!(counters.late_replies, 1);
    let late = s.world.backend(S0).events().iter().any(|event| {
        matches!(*event, Event::Drop { to, reason: DropReason::LateReply, .. } if to == s.caller)
    });
    assert!(late, "the notice is traced as a late-reply drop");
}

/// A backend for driving two shards by hand: the test backend, with a transport the test
/// moves itself and can close.
#[derive(Debug)]
struct Wire {
    inner: TestBackend,
    inbound: VecDeque<Message>,
    outbound: Vec<Message>,
    /// Whether `send_remote` takes messages; closed, it reports the transport full.
    open: bool,
}

impl Wire {
    fn new(shard: ShardId) -> Wire {
        let inner = TestBackend::new(shard, &TestConfig::default());
        Wire { inner, inbound: VecDeque::new(), outbound: Vec::new(), open: true }
    }
}

impl Env for Wire {
    fn random_u64(&mut self) -> u64 {
        self.inner.random_u64()
    }
    fn send_remote(&mut self, _to: ShardId, message: &Message) -> Result<(), TransportFull> {
        if !self.open {
            return Err(TransportFull);
        }
        self.outbound.push(*message);
        Ok(())
    }
    fn trace(&mut self, event: &Event) {
        self.inner.trace(event);
    }
}

impl Backend for Wire {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
    fn tracing(&self) -> bool {
        self.inner.tracing()
    }
    fn receive_remote(&mut self) -> Option<Message> {
        self.inbound.pop_front()
    }
    fn flush_remote(&mut self) {}
    fn shard_failed(&mut self, failure: &ShardFailure) {
        self.inner.shard_failed(failure);
    }
    fn park(&mut self, _deadline: Option<Timestamp>) {}
    fn stop_requested(&mut self) -> bool {
        true
    }
}

/// Calls the handle it is given from `init`, and logs how the call ends.
struct Dialer;

impl Isolate for Dialer {
    type Args = Handle;
    fn init(target: Handle, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Dialer, Effect::call(target, &Question { n: 1 }, TIMEOUT))
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if let Some(failure) = message.call_failure() {
            log(format!("failed {}", failure.name()));
        }
        Effect::Receive
    }
}

/// A notice that cannot be sent (the transport back to the caller is full) is dropped and
/// counted on the callee's shard like any send, and the caller waits for its timeout.
#[test]
fn unsendable_notice_leaves_the_caller_to_its_timeout() {
    let mut spec = SystemSpec::new(2);
    let dialer = spec.register::<Dialer>(TypeConfig::new("dialer").slots(1));
    let server = spec.register::<Server>(TypeConfig::new("server").slots(1));
    let server = spec.boot_child(S1, server, ServerArgs { mode: ANSWER_NOW });
    spec.boot_child(S0, dialer, stale(server));
    let (mut wire0, mut wire1) = (Wire::new(S0), Wire::new(S1));
    let mut shard0 = Scheduler::boot(&spec, S0, &mut wire0).expect("valid spec");
    let mut shard1 = Scheduler::boot(&spec, S1, &mut wire1).expect("valid spec");
    assert_eq!(wire0.outbound.len(), 1, "the dialer's request, sent from its init");
    wire1.inbound.extend(wire0.outbound.drain(..));
    wire1.open = false;
    shard1.tick(&mut wire1);
    let callee_side = shard1.counters();
    assert_eq!((callee_side.stale_handle, callee_side.sent, callee_side.ring_full), (1, 1, 1));
    assert!(wire1.outbound.is_empty());

    shard0.tick(&mut wire0);
    assert_eq!(take_log(), Vec::<String>::new(), "nothing came back");
    wire0.inner.advance(TIMEOUT);
    shard0.tick(&mut wire0);
    shard0.tick(&mut wire0);
    assert_eq!(take_log(), ["failed timeout"]);
    let caller_side = shard0.counters();
    assert_eq!((caller_side.call_timeouts, caller_side.calls_unroutable), (1, 0));
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
    s.ask(stale(s.server), 1);
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
