//! Crash containment at its edges. A panic in an isolate's `Drop` is the isolate's: it is
//! contained, and a `Done` whose drop panics is a crash for the supervisor. `Ctx` calls that
//! reach the backend (random words, log records, buggify points, shard revival) hand it
//! what they should, and a panic inside the backend is the core's: it takes the run down
//! instead of being blamed on the isolate.

use core::time::Duration;
use std::panic::{self, AssertUnwindSafe};

use tina::io::{IoReaped, IoSubmission};
use tina::testing::{TestBackend, TestConfig, TestWorld};
use tina::{
    Backend, Ctx, Effect, Env, Event, GroupConfig, Handle, Isolate, Label, Level, Message, Restart,
    Scheduler, ShardFailure, ShardId, Strategy, SystemSpec, Timestamp, TransportFull, TypeConfig,
};

const S0: ShardId = ShardId(0);

tina::payload! {
    /// Isolate to itself: make the `Ctx` call `op` names.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Poke { pub op: u64 }
}

const RANDOM: u64 = 1;
const LOG: u64 = 2;
const BUGGIFY: u64 = 3;
const REVIVE: u64 = 4;

const SLOW_PATH: Label = Label::new("poker.slow-path");

/// Sends itself one `Poke` from `init`, and makes the call it names when it arrives.
struct Poker;

impl Isolate for Poker {
    type Args = u64;
    fn init(op: u64, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let me = ctx.self_handle();
        ctx.send(me, &Poke { op }).expect("an empty mailbox has room");
        (Poker, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        match message.decode::<Poke>().map(|poke| poke.op) {
            Ok(RANDOM) => {
                let _ = ctx.random_u64();
            }
            Ok(LOG) => ctx.log(Level::Info, Label::new("poked"), [1]),
            Ok(BUGGIFY) => {
                let fired = ctx.buggify(SLOW_PATH);
                ctx.log(Level::Info, Label::new("buggify"), [u64::from(fired)]);
            }
            Ok(REVIVE) => ctx.revive_shard(ShardId(3)),
            _ => {}
        }
        Effect::Receive
    }
}

/// The test backend, recording what buggify points and revival requests reach it, with
/// one method that panics if asked.
#[derive(Debug)]
struct Probe {
    inner: TestBackend,
    /// The operation whose backend method panics (`RANDOM`, `LOG` for `trace` of a log
    /// record, `BUGGIFY`, `REVIVE`), or 0.
    broken: u64,
    /// Every site `buggify` was asked about; each fires.
    sites: Vec<&'static str>,
    /// Every shard `revive_shard` was asked for.
    revived: Vec<ShardId>,
}

impl Env for Probe {
    fn random_u64(&mut self) -> u64 {
        if self.broken == RANDOM {
            panic!("the backend's random stream broke");
        }
        self.inner.random_u64()
    }
    fn buggify(&mut self, site: Label) -> bool {
        if self.broken == BUGGIFY {
            panic!("the backend's buggify broke");
        }
        self.sites.push(site.text());
        true
    }
    fn revive_shard(&mut self, shard: ShardId) {
        if self.broken == REVIVE {
            panic!("the backend's shard recovery broke");
        }
        self.revived.push(shard);
    }
    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull> {
        self.inner.send_remote(to, message)
    }
    fn trace(&mut self, event: &Event) {
        if self.broken == LOG && matches!(event, Event::Log { .. }) {
            panic!("the backend's event sink broke");
        }
        self.inner.trace(event);
    }
}

impl Backend for Probe {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
    fn tracing(&self) -> bool {
        self.inner.tracing()
    }
    fn buggify_on(&self) -> bool {
        true
    }
    fn receive_remote(&mut self) -> Option<Message> {
        self.inner.receive_remote()
    }
    fn flush_remote(&mut self) {
        self.inner.flush_remote();
    }
    fn io_submit(&mut self, submission: IoSubmission) -> Result<(), IoReaped> {
        self.inner.io_submit(submission)
    }
    fn io_reap(&mut self) -> Option<IoReaped> {
        self.inner.io_reap()
    }
    fn shard_failed(&mut self, failure: &ShardFailure) {
        self.inner.shard_failed(failure);
    }
    fn park(&mut self, deadline: Option<Timestamp>) {
        self.inner.park(deadline);
    }
    fn stop_requested(&mut self) -> bool {
        self.inner.stop_requested()
    }
}

/// Boots one `Poker` asked to make call `op` on a probe whose `broken` method panics (0:
/// none), and runs one tick. Returns the probe and the message of the panic that escaped
/// the tick, if any.
fn poke(op: u64, broken: u64) -> (Probe, Option<String>) {
    let mut spec = SystemSpec::new(1);
    let poker = spec.register::<Poker>(TypeConfig::new("poker").slots(1));
    spec.register_payload::<Poke>();
    spec.boot_child(S0, poker, op);
    let inner = TestBackend::new(S0, &TestConfig::default());
    let mut probe = Probe { inner, broken, sites: Vec::new(), revived: Vec::new() };
    let mut scheduler = Scheduler::boot(&spec, S0, &mut probe).expect("valid spec");
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| scheduler.tick(&mut probe)));
    let Err(payload) = outcome else { return (probe, None) };
    let text = payload.downcast_ref::<String>().cloned();
    (probe, text.or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_string())))
}

/// The values of the isolate's log records with tag `tag`.
fn logged(probe: &Probe, tag: &str) -> Vec<u64> {
    let records = probe.inner.events().iter().filter_map(|event| match event {
        Event::Log { tag: logged, values, .. } if logged.text() == tag => Some(values[0]),
        _ => None,
    });
    records.collect()
}

/// `ctx.buggify` hands its site to the backend and returns the backend's answer;
/// `ctx.revive_shard` hands the shard to the backend.
#[test]
fn buggify_and_revive_reach_the_backend() {
    let (probe, escaped) = poke(BUGGIFY, 0);
    assert_eq!(escaped, None);
    assert_eq!(probe.sites, ["poker.slow-path"]);
    assert_eq!(logged(&probe, "buggify"), [1], "the probe fires every site");

    let (probe, escaped) = poke(REVIVE, 0);
    assert_eq!(escaped, None);
    assert_eq!(probe.revived, [ShardId(3)]);
}

/// A backend that does not override `buggify` (the test backend, like production) never
/// fires a site.
#[test]
fn buggify_is_false_by_default() {
    let mut spec = SystemSpec::new(1);
    let poker = spec.register::<Poker>(TypeConfig::new("poker").slots(1));
    spec.register_payload::<Poke>();
    spec.boot_child(S0, poker, BUGGIFY);
    let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
    world.run_until_idle(10);
    let fired = world.backend(S0).events().iter().find_map(|event| match event {
        Event::Log { tag, values, .. } if tag.text() == "buggify" => Some(values[0]),
        _ => None,
    });
    assert_eq!(fired, Some(0));
}

/// A panic inside the backend behind a `Ctx` call (its random stream, its event sink during
/// a log, its buggify or its shard recovery) is not the isolate's: it is re-raised past the
/// isolate boundary (the run fails as a crash) rather than contained as the isolate's
/// crash.
#[test]
fn a_panic_in_the_backend_behind_a_ctx_call_is_the_cores() {
    let cases = [
        (RANDOM, "the backend's random stream broke"),
        (LOG, "the backend's event sink broke"),
        (BUGGIFY, "the backend's buggify broke"),
        (REVIVE, "the backend's shard recovery broke"),
    ];
    for (op, text) in cases {
        let (probe, escaped) = poke(op, op);
        assert_eq!(escaped.as_deref(), Some(text), "op {op}");
        assert!(logged(&probe, "poked").is_empty());
        assert_eq!(
            probe.inner.events().iter().filter(|e| matches!(e, Event::Panic { .. })).count(),
            0,
            "op {op}: not contained as an isolate panic"
        );
    }
}

tina::payload! {
    /// Test to a brittle isolate or its sibling: do `op`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Order { pub op: u64 }
}

/// Orders: nothing; break on drop and keep waiting; break on drop and stop (`Done`), crash
/// (`Crash`) or panic in the handler. A sibling crashes on any order.
const NOOP: u64 = 0;
const BREAK: u64 = 1;
const DONE: u64 = 2;
const CRASH: u64 = 3;
const PANIC: u64 = 4;

const ASKED: Label = Label::new("asked to crash");

/// An isolate whose `Drop` panics once it was told to break.
struct Brittle {
    broken: bool,
}

impl Drop for Brittle {
    fn drop(&mut self) {
        if self.broken {
            panic!("brittle broke while dropped");
        }
    }
}

impl Isolate for Brittle {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Brittle { broken: false }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        let Ok(order) = message.decode::<Order>() else { return Effect::Receive };
        self.broken |= order.op != NOOP;
        match order.op {
            DONE => Effect::Done,
            CRASH => Effect::Crash(ASKED),
            PANIC => panic!("brittle panicked in its handler"),
            _ => Effect::Receive,
        }
    }
}

/// Crashes when told to; its group then shuts its brittle sibling down.
struct Sibling;

impl Isolate for Sibling {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Sibling, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Crash(ASKED)
    }
}

/// A shard whose root (OneForAll) holds a transient brittle isolate and a permanent
/// sibling: a transient child is restarted only if it crashed, so a restart after `Done`
/// proves the supervisor was told of a crash.
struct Pair {
    world: TestWorld,
    brittle: Handle,
    sibling: Handle,
}

impl Pair {
    fn boot() -> Pair {
        let mut spec = SystemSpec::new(1);
        let brittle_type = spec.register::<Brittle>(TypeConfig::new("brittle").slots(1));
        let sibling_type = spec.register::<Sibling>(TypeConfig::new("sibling").slots(1));
        let root = spec.root(S0);
        spec.configure(
            root,
            GroupConfig::new(Strategy::OneForAll).intensity(10, Duration::from_secs(1)),
        );
        let brittle = spec.add_child(root, brittle_type, (), Restart::Transient);
        let sibling = spec.add_child(root, sibling_type, (), Restart::Permanent);
        let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
        world.backend_mut(S0).clear_events();
        Pair { world, brittle, sibling }
    }

    /// Sends `op` to `to`, lets the shard settle, and renders what followed: panics, exits
    /// and restarts, one per line. Follows the restarts to the new handles.
    fn order(&mut self, to: Handle, op: u64) -> String {
        assert!(self.world.inject(to, &Order { op }));
        self.world.run_until_idle(20);
        let events = self.world.backend(S0).events().to_vec();
        self.world.backend_mut(S0).clear_events();
        let name = |handle: Handle| ["brittle", "sibling"][handle.type_index() as usize];
        let mut out = String::new();
        for event in events {
            let line = match event {
                Event::Panic { text, .. } => format!("panic {}", text.as_str()),
                Event::Exit { handle, kind, reason } => {
                    format!("exit {} {} {}", name(handle), kind.name(), reason.text())
                }
                Event::Restart { old, new, .. } => {
                    if old == self.brittle {
                        self.brittle = new;
                    } else if old == self.sibling {
                        self.sibling = new;
                    }
                    format!("restart {}", name(new))
                }
                _ => continue,
            };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The counters of panics, crashes, normal exits and shutdowns.
    fn tally(&self) -> (u64, u64, u64, u64) {
        let counters = self.world.counters(S0);
        (counters.panics, counters.crashes, counters.exits_normal, counters.shutdowns)
    }

    /// The run goes on: both isolates are live, and the brittle one still handles orders.
    fn goes_on(&mut self) {
        assert!(self.world.scheduler(S0).is_live(self.brittle));
        assert!(self.world.scheduler(S0).is_live(self.sibling));
        assert_eq!(self.order(self.brittle, NOOP), "");
        let delivered = self.world.counters(S0).delivered;
        assert_eq!(self.order(self.brittle, NOOP), "");
        assert_eq!(self.world.counters(S0).delivered, delivered + 1);
    }
}

/// `Done`, then a panic in `Drop`: the panic is contained and traced, and the exit is a
/// crash by panic, not a normal one; the supervisor restarts the transient child (with its
/// sibling, under OneForAll) and the run goes on.
#[test]
fn a_drop_panic_after_done_is_a_crash() {
    let mut pair = Pair::boot();
    let brittle = pair.brittle;
    assert_eq!(
        pair.order(brittle, DONE),
        "panic brittle broke while dropped\nexit brittle crashed panic\nexit sibling shutdown\n\
         restart brittle\nrestart sibling\n"
    );
    assert_eq!(pair.tally(), (1, 1, 0, 1));
    assert_ne!(pair.brittle, brittle);
    pair.goes_on();
}

/// `Crash`, then a panic in `Drop`: contained and traced; the exit keeps its own reason.
#[test]
fn a_drop_panic_after_crash_is_contained() {
    let mut pair = Pair::boot();
    assert_eq!(
        pair.order(pair.brittle, CRASH),
        "panic brittle broke while dropped\nexit brittle crashed asked to crash\n\
         exit sibling shutdown\nrestart brittle\nrestart sibling\n"
    );
    assert_eq!(pair.tally(), (1, 1, 0, 1));
    pair.goes_on();
}

/// A panic in the handler, then another in `Drop`: both are contained and traced, in that
/// order, before the one exit.
#[test]
fn a_drop_panic_after_a_handler_panic_is_contained() {
    let mut pair = Pair::boot();
    assert_eq!(
        pair.order(pair.brittle, PANIC),
        "panic brittle panicked in its handler\npanic brittle broke while dropped\n\
         exit brittle crashed panic\nexit sibling shutdown\nrestart brittle\nrestart sibling\n"
    );
    assert_eq!(pair.tally(), (2, 1, 0, 1));
    pair.goes_on();
}

/// A supervisor shutdown (the sibling crashed, OneForAll stops the rest), then a panic in
/// `Drop`: contained and traced; the exit stays a shutdown and both restart.
#[test]
fn a_drop_panic_after_a_shutdown_is_contained() {
    let mut pair = Pair::boot();
    assert_eq!(pair.order(pair.brittle, BREAK), "");
    assert_eq!(
        pair.order(pair.sibling, NOOP),
        "exit sibling crashed asked to crash\npanic brittle broke while dropped\n\
         exit brittle shutdown\nrestart brittle\nrestart sibling\n"
    );
    assert_eq!(pair.tally(), (1, 1, 0, 1));
    pair.goes_on();
}
