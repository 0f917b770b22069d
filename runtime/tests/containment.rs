//! Crash containment at its edges: a panic inside the backend, reached through a `Ctx` call,
//! is the core's and takes the run down instead of being blamed on the isolate.

use std::panic::{self, AssertUnwindSafe};

use tina::io::{IoBuffers, IoError, IoReaped, IoSubmission};
use tina::testing::{TestBackend, TestConfig};
use tina::{
    Backend, Ctx, Effect, Env, Event, Isolate, Label, Level, Message, Scheduler, ShardFailure,
    ShardId, SystemSpec, Timestamp, TransportFull, TypeConfig,
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
            _ => {}
        }
        Effect::Receive
    }
}

/// The test backend, with one method that panics.
#[derive(Debug)]
struct Broken {
    inner: TestBackend,
    /// `RANDOM`: `random_u64` panics; `LOG`: `trace` panics on a log record.
    op: u64,
}

impl Env for Broken {
    fn random_u64(&mut self) -> u64 {
        if self.op == RANDOM {
            panic!("the backend's random stream broke");
        }
        self.inner.random_u64()
    }
    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull> {
        self.inner.send_remote(to, message)
    }
    fn trace(&mut self, event: &Event) {
        if self.op == LOG && matches!(event, Event::Log { .. }) {
            panic!("the backend's event sink broke");
        }
        self.inner.trace(event);
    }
}

impl Backend for Broken {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
    fn tracing(&self) -> bool {
        self.inner.tracing()
    }
    fn receive_remote(&mut self) -> Option<Message> {
        self.inner.receive_remote()
    }
    fn flush_remote(&mut self) {
        self.inner.flush_remote();
    }
    fn io_submit(&mut self, submission: &IoSubmission, buffers: &IoBuffers) -> Result<(), IoError> {
        self.inner.io_submit(submission, buffers)
    }
    fn io_reap(&mut self, buffers: &mut IoBuffers) -> Option<IoReaped> {
        self.inner.io_reap(buffers)
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

/// Boots one `Poker` asked to make call `op` on a backend whose `op` method panics, runs
/// one tick, and returns the message of the panic that escaped the tick, if any.
fn escaped_panic(op: u64) -> Option<String> {
    let mut spec = SystemSpec::new(1);
    let poker = spec.register::<Poker>(TypeConfig::new("poker").slots(1));
    spec.register_payload::<Poke>();
    spec.boot_child(S0, poker, op);
    let mut backend = Broken { inner: TestBackend::new(S0, &TestConfig::default()), op };
    let mut scheduler = Scheduler::boot(&spec, S0, &mut backend).expect("valid spec");
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| scheduler.tick(&mut backend)));
    let payload = outcome.err()?;
    let text = payload.downcast_ref::<String>().cloned();
    text.or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_string()))
}

/// A panic inside the backend's `random_u64`, reached through `ctx.random_u64`, is not the
/// isolate's: it is re-raised past the isolate boundary (the run fails as a crash) rather
/// than contained as the isolate's crash.
#[test]
fn a_panic_in_the_backends_random_stream_is_the_cores() {
    assert_eq!(escaped_panic(RANDOM).as_deref(), Some("the backend's random stream broke"));
}

/// The same for the backend's event sink, reached through `ctx.log`.
#[test]
fn a_panic_in_the_backends_sink_during_a_log_is_the_cores() {
    assert_eq!(escaped_panic(LOG).as_deref(), Some("the backend's event sink broke"));
}
