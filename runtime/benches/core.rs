//! tina's core against tokio's current-thread runtime, on one thread.
//!
//! `cargo bench -p tina --bench core [-- --n N --spawn-n N --rounds R]`
//!
//! Workloads (64-byte payload on both sides):
//! - tell: A sends N messages to B, one per activation (A yields after each send); B counts.
//!   tokio: two tasks on `mpsc::channel(256)`.
//! - ask: A calls B N times, one call in flight; B replies. tokio: a `oneshot` per request.
//! - spawn: a parent spawns a child whose `init` returns `Done`, one per activation.
//!   tokio: `tokio::spawn` of a trivial task, then `.await` of its `JoinHandle`.
//! - idle tell: tell with 100,000 idle isolates of another type on the same shard, compared
//!   with tina's own plain tell.
//!
//! tina runs on `TestWorld` with tracing off; only the tick loop is timed (boot is not).
//! Each round runs every measurement once, interleaved; the table shows the median ns/op.
//! Every run checks it did its work (counts, sequence numbers, counters).
//!
//! Each workload function is `#[inline(never)]` so a profiler can single it out, e.g.
//! `valgrind --tool=callgrind --toggle-collect=core::tina_tell BENCH_BINARY --n 100000`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tina::testing::{TestConfig, TestWorld};
use tina::{
    Counters, Ctx, Effect, Handle, Isolate, Label, Message, ShardId, SystemSpec, TypeConfig,
};

tina::payload! {
    #[derive(Clone, Copy)]
    #[repr(C)]
    pub struct Msg { pub seq: u64, pub data: [u8; 56] }
}

tina::spawn_args! {
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct PeerArgs { peer: Handle, n: u64 }
}

const SHARD: ShardId = ShardId(0);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_COUNT: u32 = 100_000;
/// Ticks allowed per operation before a run is declared stuck.
const TICKS_PER_OP_MAX: u64 = 4;

/// What the isolate that finishes a run counted, read after the run.
static COUNTED: AtomicU64 = AtomicU64::new(0);

fn msg(seq: u64) -> Msg {
    Msg { seq, data: [0xa5; 56] }
}

// ----- tina isolates ---------------------------------------------------------------------

/// Counts `n` messages, checking their order, then stops.
struct Receiver {
    n: u64,
    count: u64,
}

impl Isolate for Receiver {
    type Args = u64;
    fn init(n: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Receiver { n, count: 0 }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        match message.decode::<Msg>() {
            Ok(m) if m.seq == self.count && m.data[55] == 0xa5 => {}
            _ => return Effect::Crash(Label::new("receiver: unexpected message")),
        }
        self.count += 1;
        if self.count == self.n {
            COUNTED.store(self.count, Ordering::Relaxed);
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// Sends one message to its peer per activation, `n` in all, yielding in between.
struct Sender {
    peer: Handle,
    n: u64,
    sent: u64,
}

impl Isolate for Sender {
    type Args = PeerArgs;
    fn init(args: PeerArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Sender { peer: args.peer, n: args.n, sent: 0 }, Effect::Yield)
    }
    fn handle(&mut self, _message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.send(self.peer, &msg(self.sent)).is_err() {
            return Effect::Crash(Label::new("sender: send refused"));
        }
        self.sent += 1;
        if self.sent == self.n { Effect::Done } else { Effect::Yield }
    }
}

/// Answers every call with the request's payload.
struct Server;

impl Isolate for Server {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Server, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        match (message.reply_token(), message.decode::<Msg>()) {
            (Some(token), Ok(request)) => Effect::reply(token, &request),
            _ => Effect::Crash(Label::new("server: not a call")),
        }
    }
}

/// Makes `n` calls to its peer, one at a time, checking each reply.
struct Client {
    peer: Handle,
    n: u64,
    replies: u64,
}

impl Isolate for Client {
    type Args = PeerArgs;
    fn init(args: PeerArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let client = Client { peer: args.peer, n: args.n, replies: 0 };
        (client, Effect::call(args.peer, &msg(0), CALL_TIMEOUT))
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        match message.decode::<Msg>() {
            Ok(reply) if message.is_reply() && reply.seq == self.replies => {}
            _ => return Effect::Crash(Label::new("client: unexpected message")),
        }
        self.replies += 1;
        if self.replies == self.n {
            COUNTED.store(self.replies, Ordering::Relaxed);
            return Effect::Done;
        }
        Effect::call(self.peer, &msg(self.replies), CALL_TIMEOUT)
    }
}

/// Spawns one `Child` per activation, `n` in all, yielding in between.
struct Parent {
    n: u64,
    spawned: u64,
}

impl Isolate for Parent {
    type Args = u64;
    fn init(n: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Parent { n, spawned: 0 }, Effect::Yield)
    }
    fn handle(&mut self, _message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if ctx.spawn::<Child>(()).is_err() {
            return Effect::Crash(Label::new("parent: spawn refused"));
        }
        self.spawned += 1;
        if self.spawned == self.n {
            COUNTED.store(self.spawned, Ordering::Relaxed);
            return Effect::Done;
        }
        Effect::Yield
    }
}

/// Stops as soon as it starts.
struct Child;

impl Isolate for Child {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Child, Effect::Done)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Done
    }
}

/// Waits for messages that never come.
struct Idle;

impl Isolate for Idle {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Idle, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

/// Spawns `count` idle isolates from its `init`, at boot, then waits forever.
struct IdleSpawner;

impl Isolate for IdleSpawner {
    type Args = u32;
    fn init(count: u32, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        for _ in 0..count {
            if ctx.spawn::<Idle>(()).is_err() {
                return (IdleSpawner, Effect::Crash(Label::new("idle spawner: spawn refused")));
            }
        }
        (IdleSpawner, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

// ----- tina workloads --------------------------------------------------------------------

fn boot(spec: &SystemSpec) -> TestWorld {
    let config = TestConfig { event_capacity: 0, ..Default::default() };
    let world = TestWorld::boot(spec, config).expect("a valid spec");
    COUNTED.store(0, Ordering::Relaxed);
    world
}

/// Ticks until nothing is left to do; panics if that takes more than `ticks_max` ticks.
fn run(world: &mut TestWorld, ticks_max: u64) -> u64 {
    for ticks in 1..=ticks_max {
        if !world.tick().has_work {
            return ticks;
        }
    }
    panic!("still busy after {ticks_max} ticks");
}

fn tell_spec(spec: &mut SystemSpec, n: u64) {
    let receiver = spec.register::<Receiver>(TypeConfig::new("receiver").slots(1));
    let sender = spec.register::<Sender>(TypeConfig::new("sender").slots(1));
    spec.register_payload::<Msg>();
    let peer = spec.boot_child(SHARD, receiver, n);
    spec.boot_child(SHARD, sender, PeerArgs { peer, n });
}

fn check_tell(world: &TestWorld, n: u64) {
    let c = world.counters(SHARD);
    assert_eq!(COUNTED.load(Ordering::Relaxed), n, "receiver counted every message");
    assert_eq!((c.sent, c.enqueued, c.delivered), (n, n, n), "{c:?}");
    // One handler call per message, plus one resume of the sender per message.
    assert_eq!(c.dispatched, 2 * n, "{c:?}");
    assert_eq!(c.exits_normal, 2, "{c:?}");
    assert_clean(c);
}

fn assert_clean(c: &Counters) {
    assert_eq!((c.crashes, c.panics, c.restarts), (0, 0, 0), "{c:?}");
}

#[inline(never)]
fn tina_tell(n: u64) -> Duration {
    let mut spec = SystemSpec::new(1);
    tell_spec(&mut spec, n);
    let mut world = boot(&spec);
    let elapsed = timed(|| run(&mut world, n * TICKS_PER_OP_MAX));
    check_tell(&world, n);
    elapsed
}

#[inline(never)]
fn tina_idle_tell(n: u64) -> Duration {
    let mut spec = SystemSpec::new(1);
    // The idle type comes first, so every dispatch pass looks at it before the workers.
    let idle = spec.register::<Idle>(TypeConfig::new("idle").slots(IDLE_COUNT));
    let spawner = spec.register::<IdleSpawner>(TypeConfig::new("idle spawner").slots(1));
    spec.boot_child(SHARD, spawner, IDLE_COUNT);
    tell_spec(&mut spec, n);
    let mut world = boot(&spec);
    assert_eq!(world.scheduler(SHARD).live_count(idle.index()), IDLE_COUNT as usize);
    let elapsed = timed(|| run(&mut world, n * TICKS_PER_OP_MAX));
    check_tell(&world, n);
    assert_eq!(world.scheduler(SHARD).live_count(idle.index()), IDLE_COUNT as usize);
    elapsed
}

#[inline(never)]
fn tina_ask(n: u64) -> Duration {
    let mut spec = SystemSpec::new(1);
    let server = spec.register::<Server>(TypeConfig::new("server").slots(1));
    let client = spec.register::<Client>(TypeConfig::new("client").slots(1));
    spec.register_payload::<Msg>();
    let peer = spec.boot_child(SHARD, server, ());
    spec.boot_child(SHARD, client, PeerArgs { peer, n });
    let mut world = boot(&spec);
    // The server never stops, so the run ends when the client is done and nothing is queued.
    let elapsed = timed(|| run(&mut world, n * TICKS_PER_OP_MAX));
    let c = world.counters(SHARD);
    assert_eq!(COUNTED.load(Ordering::Relaxed), n, "client got every reply");
    assert_eq!((c.calls, c.replies, c.calls_replied), (n, n, n), "{c:?}");
    assert_eq!((c.call_timeouts, c.exits_normal), (0, 1), "{c:?}");
    assert_clean(c);
    elapsed
}

#[inline(never)]
fn tina_spawn(n: u64) -> Duration {
    let mut spec = SystemSpec::new(1);
    let parent = spec.register::<Parent>(TypeConfig::new("parent").slots(1));
    spec.register::<Child>(TypeConfig::new("child").slots(4));
    spec.boot_child(SHARD, parent, n);
    let mut world = boot(&spec);
    let elapsed = timed(|| run(&mut world, n * TICKS_PER_OP_MAX));
    let c = world.counters(SHARD);
    assert_eq!(COUNTED.load(Ordering::Relaxed), n, "parent spawned every child");
    // The boot child (the parent) is the extra spawn; every child's init returned Done.
    assert_eq!((c.spawned, c.init_failures, c.exits_normal), (n + 1, n, 1), "{c:?}");
    assert_clean(c);
    elapsed
}

// ----- tokio workloads -------------------------------------------------------------------

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime")
}

#[inline(never)]
fn tokio_tell(n: u64) -> Duration {
    let rt = tokio_runtime();
    let (elapsed, counted) = timed_value(|| {
        rt.block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(256);
            let receiver = tokio::spawn(async move {
                let mut count = 0;
                while let Some(m) = rx.recv().await {
                    assert!(m.seq == count && m.data[55] == 0xa5, "in order");
                    count += 1;
                }
                count
            });
            let sender = tokio::spawn(async move {
                for seq in 0..n {
                    tx.send(msg(seq)).await.expect("the receiver is alive");
                }
            });
            sender.await.expect("sender finished");
            receiver.await.expect("receiver finished")
        })
    });
    assert_eq!(counted, n);
    elapsed
}

#[inline(never)]
fn tokio_ask(n: u64) -> Duration {
    let rt = tokio_runtime();
    let (elapsed, counted) = timed_value(|| {
        rt.block_on(async move {
            type Request = (Msg, tokio::sync::oneshot::Sender<Msg>);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Request>(256);
            let server = tokio::spawn(async move {
                while let Some((request, reply)) = rx.recv().await {
                    let _ = reply.send(request);
                }
            });
            let client = tokio::spawn(async move {
                let mut replies = 0;
                for seq in 0..n {
                    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
                    tx.send((msg(seq), reply_tx)).await.expect("the server is alive");
                    let reply = reply_rx.await.expect("the server replies");
                    assert_eq!(reply.seq, seq);
                    replies += 1;
                }
                replies
            });
            let replies = client.await.expect("client finished");
            server.await.expect("server finished");
            replies
        })
    });
    assert_eq!(counted, n);
    elapsed
}

#[inline(never)]
fn tokio_spawn(n: u64) -> Duration {
    let rt = tokio_runtime();
    let (elapsed, counted) = timed_value(|| {
        rt.block_on(async move {
            let parent = tokio::spawn(async move {
                let mut joined = 0;
                for seq in 0..n {
                    let child = tokio::spawn(async move { seq });
                    assert_eq!(child.await.expect("child finished"), seq);
                    joined += 1;
                }
                joined
            });
            parent.await.expect("parent finished")
        })
    });
    assert_eq!(counted, n);
    elapsed
}

// ----- measurement -----------------------------------------------------------------------

#[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
fn timed_value<T>(work: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let value = work();
    (start.elapsed(), value)
}

fn timed<T>(work: impl FnOnce() -> T) -> Duration {
    timed_value(work).0
}

struct Options {
    n: u64,
    spawn_n: u64,
    rounds: usize,
}

fn options() -> Options {
    let mut options = Options { n: 2_000_000, spawn_n: 2_000_000, rounds: 5 };
    let mut args = std::env::args().skip(1);
    // `cargo bench` passes `--bench`; anything unknown is ignored.
    while let Some(arg) = args.next() {
        let mut value = || -> u64 {
            let text = args.next().unwrap_or_default();
            text.parse().unwrap_or_else(|_| panic!("{arg} takes a positive number"))
        };
        match arg.as_str() {
            "--n" => options.n = value(),
            "--spawn-n" => options.spawn_n = value(),
            "--rounds" => options.rounds = value() as usize,
            _ => {}
        }
    }
    assert!(options.n > 0 && options.spawn_n > 0 && options.rounds > 0);
    options
}

fn median_ns_per_op(samples: &mut [Duration], n: u64) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_nanos() as f64 / n as f64
}

fn main() {
    let Options { n, spawn_n, rounds } = options();
    println!("tina core vs tokio current-thread: one thread, N = {n} (spawn N = {spawn_n}),");
    println!("{rounds} interleaved rounds, median ns/op; tina times the tick loop, not boot.");
    let mut samples: [Vec<Duration>; 7] = Default::default();
    for round in 1..=rounds {
        samples[0].push(tina_tell(n));
        samples[1].push(tokio_tell(n));
        samples[2].push(tina_ask(n));
        samples[3].push(tokio_ask(n));
        samples[4].push(tina_spawn(spawn_n));
        samples[5].push(tokio_spawn(spawn_n));
        samples[6].push(tina_idle_tell(n));
        eprintln!("round {round}/{rounds} done");
    }
    let [tell, tokio_tell, ask, tokio_ask, spawn, tokio_spawn, idle] = &mut samples;
    let tell = median_ns_per_op(tell, n);
    let ask = median_ns_per_op(ask, n);
    let spawn = median_ns_per_op(spawn, spawn_n);
    let idle = median_ns_per_op(idle, n);
    let rows = [
        ("tell", tell, median_ns_per_op(tokio_tell, n), "<= 0.25"),
        ("ask", ask, median_ns_per_op(tokio_ask, n), "<= 0.20"),
        ("spawn + teardown", spawn, median_ns_per_op(tokio_spawn, spawn_n), "<= 0.25"),
    ];
    println!();
    println!("| workload | tina ns/op | tokio ns/op | tina/tokio | aim |");
    println!("|---|---:|---:|---:|---:|");
    for (name, tina, tokio, aim) in rows {
        println!("| {name} | {tina:.1} | {tokio:.1} | {:.2}x | {aim} |", tina / tokio);
    }
    println!();
    println!("| workload | tina ns/op | vs plain tell | aim |");
    println!("|---|---:|---:|---:|");
    println!("| tell, {IDLE_COUNT} idle isolates | {idle:.1} | {:.2}x | <= 1.2 |", idle / tell);
}
