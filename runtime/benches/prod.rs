//! tina's production runtime (`tina::prod::Runtime`, one pinned thread per shard) against
//! peers between two pinned threads, and its spawn and restart costs on one shard.
//!
//! `cargo bench -p tina --bench prod [-- --rounds R --n N --stream-n N --spawn-n N
//! --restart-n N --only ping-pong|stream|spawn|restart]`
//!
//! Workloads (each round runs every measurement once, interleaved; the tables show the
//! median over the rounds and the range; `--only` runs one workload, for a profiler):
//! - ping-pong: a 64-byte ball between an isolate on shard 0 and one on shard 1, `--n` round
//!   trips (default 200,000). One-way latency is half a round trip. Isolates cannot read a
//!   clock of their own, but `ctx.now()` is the production clock read at the start of the
//!   tick: tina's pinger reads it each time the ball comes back, and a sample is the time
//!   since the previous return, which with one ball in play is one round trip. The peers
//!   take the same sample with `Instant::now()` where their pinger gets the ball back.
//!   Peers: raw `rtrb`, two rings between two pinned busy-polling threads; tokio's
//!   multi-thread runtime with 2 (pinned) workers, a client task sending on an `mpsc` and
//!   awaiting a `oneshot` reply from a server task (tokio places tasks itself, and a task
//!   woken from a worker usually runs on that worker, so the output says how many round
//!   trips crossed workers); and the same ask between two current-thread runtimes, each on
//!   its own pinned thread, which does cross cores (each runtime parks its thread when it
//!   waits, so every hop is a thread wake-up).
//! - streaming: `--stream-n` messages (default 2,000,000) from shard 0 to shard 1, each the
//!   largest tina payload, `PAYLOAD_SIZE_MAX` = 96 bytes (a sequence number and 88 fill
//!   bytes; tina's ring carries it in a 128-byte envelope). Each sender activation sends at
//!   most a burst, and stops early when `ctx.send` refuses (the ring toward shard 1 is
//!   full: `SendError::MailboxFull`, counted as `ring_full`); it yields and sends the
//!   refused message again on its next tick. Two bursts: a quarter of the ring, and more
//!   than a ring holds (send until refused). The receiver checks every message's number
//!   and fill. Time runs from the sender's first tick to the tick after the receiver's last
//!   message, both on the runtime's one clock. Peers, carrying the same 96 bytes between
//!   two pinned threads: a crossbeam bounded channel of tina's ring capacity (blocking
//!   `send`/`recv`), and a raw `rtrb` ring of that capacity (busy-polling `push`/`pop`, one
//!   message at a time).
//! - spawn: a parent on one shard of the `Runtime` spawns `--spawn-n` children (default
//!   1,000,000, every slot of the type) whose `init` returns `Receive`, so they all stay
//!   alive; timed with `ctx.now()` from the parent's first activation to the tick after
//!   the last child's `init`. Two shapes: 1,024 spawns per activation, and one. Framework
//!   bytes per isolate are `SystemSpec::memory` (what boot allocates, held equal to a
//!   counting allocator's count by `tests/memory_footprint.rs`) per extra slot, less the
//!   child's own state.
//! - restart: an isolate that crashes on every message, under a `OneForOne` root group on
//!   one shard of the `Runtime`; each restarted incarnation sends itself the message it
//!   will crash on from its `init`. `--restart-n` restarts (default 1,000,000), timed with
//!   `ctx.now()` from the first crash's tick to the tick after the last `init`: one cycle is
//!   a delivery, the crash and its teardown, the supervisor's decision and the new `init`.
//!
//! The tina runs boot first (not timed), then an injected `Go` message starts the work;
//! the isolate that finishes signals the bench thread, which stops the runtime and checks
//! the counters. Every run checks it did its work (counts, order, counters, no drops but
//! the refused sends it retried). Linux only, like `tina::prod::Runtime`.

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the production runtime, and so this benchmark, runs on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Barrier, Condvar, Mutex, PoisonError};
    use std::time::{Duration, Instant};

    use tina::limits::{PAYLOAD_SIZE_MAX, RESTART_MAX_LIMIT};
    use tina::prod::affinity::{CoreId, available_cores, pin};
    use tina::prod::{Runtime, RuntimeConfig, Summary};
    use tina::{
        Counters, Ctx, Effect, GroupConfig, Handle, Isolate, Label, Message, SendError, ShardId,
        Strategy, SystemSpec, TypeConfig, TypeIndex,
    };

    tina::payload! {
        /// The ping-pong ball: its round and a fill derived from it (64 bytes).
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[repr(C)]
        pub struct Ball { pub round: u64, pub fill: [u8; 56] }
    }

    tina::payload! {
        /// One streamed message: its number and a fill derived from it, the largest payload.
        #[derive(Clone, Copy, Debug)]
        #[repr(C)]
        pub struct Item { pub seq: u64, pub fill: [u8; 88] }
    }

    tina::payload! {
        /// Starts a run, injected from the bench thread once the runtime has booted.
        #[derive(Clone, Copy, Debug)]
        #[repr(C)]
        pub struct Go { pub round: u64 }
    }

    tina::payload! {
        /// What a crasher sends itself from `init`, to crash on.
        #[derive(Clone, Copy, Debug)]
        #[repr(C)]
        pub struct Trigger { pub incarnation: u64 }
    }

    tina::spawn_args! {
        #[derive(Clone, Copy)]
        #[repr(C)]
        struct PeerArgs { peer: Handle, n: u64 }
    }

    tina::spawn_args! {
        #[derive(Clone, Copy)]
        #[repr(C)]
        struct StreamArgs { peer: Handle, n: u64, burst: u64 }
    }

    tina::spawn_args! {
        #[derive(Clone, Copy)]
        #[repr(C)]
        struct SpawnArgs { n: u64, batch: u64 }
    }

    const _: () = assert!(size_of::<Ball>() == 64);
    const _: () = assert!(size_of::<Item>() == PAYLOAD_SIZE_MAX);

    impl Ball {
        fn new(round: u64) -> Ball {
            Ball { round, fill: [round as u8; 56] }
        }
    }

    impl Item {
        fn new(seq: u64) -> Item {
            Item { seq, fill: [seq as u8; 88] }
        }

        /// Whether this is message `seq`, reading its first and last fill bytes.
        fn is(&self, seq: u64) -> bool {
            self.seq == seq && self.fill[0] == seq as u8 && self.fill[87] == seq as u8
        }
    }

    /// Envelopes per cross-shard ring (the runtime's default), and the peers' capacity.
    const RING_CAPACITY: usize = 1024;
    /// Spawns per parent activation in the batched spawn workload.
    const SPAWN_BATCH: u64 = 1024;
    /// Sends per streaming activation in the main streaming run: a quarter of the ring, so
    /// the sender publishes (at its tick's end) while the ring still has room and the
    /// receiver works on one batch while the next is written.
    const STREAM_BURST: u64 = RING_CAPACITY as u64 / 4;
    /// Sends per activation when the sender pushes until the ring refuses: more than a ring
    /// holds, so a refusal (or the last item) always ends the activation.
    const STREAM_BURST_UNTIL_FULL: u64 = RING_CAPACITY as u64 + 1;
    /// How long a run may take before the bench declares it stuck.
    const RUN_TIMEOUT: Duration = Duration::from_secs(120);
    /// How long a peer thread busy-waits for its partner before declaring it gone.
    const SPIN_TIMEOUT: Duration = Duration::from_secs(60);
    /// Busy-wait rounds between two looks at the clock.
    const SPIN_CHECK_EVERY: u64 = 1 << 16;
    /// The dispatch quota a type gets per unit of weight (`DISPATCH_QUOTA_PER_WEIGHT`).
    const QUOTA_PER_WEIGHT: usize = tina::limits::DISPATCH_QUOTA_PER_WEIGHT as usize;

    fn config() -> RuntimeConfig {
        RuntimeConfig { ring_capacity: RING_CAPACITY, ..RuntimeConfig::default() }
    }

    // ----- what a tina run measured ------------------------------------------------------

    /// What the isolates of a run measured, read by the bench thread after the run, and
    /// the signal that the run is over (no polling: the bench thread sleeps on a condvar).
    struct Outcome {
        start_ns: AtomicU64,
        end_ns: AtomicU64,
        counted: AtomicU64,
        samples: Mutex<Vec<u32>>,
        done: Mutex<bool>,
        done_changed: Condvar,
    }

    static OUTCOME: Outcome = Outcome {
        start_ns: AtomicU64::new(0),
        end_ns: AtomicU64::new(0),
        counted: AtomicU64::new(0),
        samples: Mutex::new(Vec::new()),
        done: Mutex::new(false),
        done_changed: Condvar::new(),
    };

    /// Incarnations of the crasher so far (its `init` counts them: a restart cannot carry
    /// state from one incarnation to the next).
    static INCARNATIONS: AtomicU64 = AtomicU64::new(0);

    impl Outcome {
        fn reset(&self) {
            self.start_ns.store(0, Ordering::Relaxed);
            self.end_ns.store(0, Ordering::Relaxed);
            self.counted.store(0, Ordering::Relaxed);
            self.samples.lock().unwrap_or_else(PoisonError::into_inner).clear();
            *self.done.lock().unwrap_or_else(PoisonError::into_inner) = false;
        }

        fn start(&self, ctx: &Ctx<'_>) {
            self.start_ns.store(ctx.now().as_nanos(), Ordering::Relaxed);
        }

        /// The run is over: `counted` units of work, ending at this tick's start.
        fn finish(&self, ctx: &Ctx<'_>, counted: u64) {
            self.end_ns.store(ctx.now().as_nanos(), Ordering::Relaxed);
            self.counted.store(counted, Ordering::Relaxed);
            *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
            self.done_changed.notify_all();
        }

        /// Waits for `finish`; false after `timeout`.
        fn wait(&self, timeout: Duration) -> bool {
            let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            let (done, _) = self
                .done_changed
                .wait_timeout_while(done, timeout, |done| !*done)
                .unwrap_or_else(PoisonError::into_inner);
            *done
        }

        fn elapsed_ns(&self) -> u64 {
            let (start, end) =
                (self.start_ns.load(Ordering::Relaxed), self.end_ns.load(Ordering::Relaxed));
            assert!(start > 0 && end > start, "a run starts and ends on the clock");
            end - start
        }
    }

    // ----- tina isolates -----------------------------------------------------------------

    /// Serves the ball after `Go`, `n` round trips, recording each round trip's time.
    struct Pinger {
        peer: Handle,
        n: u64,
        round: u64,
        last_ns: u64,
        samples: Vec<u32>,
    }

    impl Pinger {
        fn serve(&mut self, ctx: &mut Ctx<'_>) -> Effect {
            match ctx.send(self.peer, &Ball::new(self.round)) {
                Ok(()) => Effect::Receive,
                Err(_) => Effect::Crash(Label::new("pinger: send refused")),
            }
        }
    }

    impl Isolate for Pinger {
        type Args = PeerArgs;
        fn init(args: PeerArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            // Allocated at boot, so recording a sample never allocates.
            let samples = Vec::with_capacity(args.n as usize);
            (Pinger { peer: args.peer, n: args.n, round: 0, last_ns: 0, samples }, Effect::Receive)
        }
        fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            let now_ns = ctx.now().as_nanos();
            if message.is::<Go>() {
                OUTCOME.start(ctx);
                self.last_ns = now_ns;
                return self.serve(ctx);
            }
            match message.decode::<Ball>() {
                Ok(ball) if ball == Ball::new(self.round) => {}
                _ => return Effect::Crash(Label::new("pinger: unexpected message")),
            }
            self.samples.push(u32::try_from(now_ns - self.last_ns).unwrap_or(u32::MAX));
            self.last_ns = now_ns;
            self.round += 1;
            if self.round == self.n {
                let samples = core::mem::take(&mut self.samples);
                *OUTCOME.samples.lock().unwrap_or_else(PoisonError::into_inner) = samples;
                OUTCOME.finish(ctx, self.round);
                return Effect::Done;
            }
            self.serve(ctx)
        }
    }

    /// Returns every ball to its sender.
    struct Ponger;

    impl Isolate for Ponger {
        type Args = ();
        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Ponger, Effect::Receive)
        }
        fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            let sent = message.decode::<Ball>().ok().map(|ball| ctx.send(message.source(), &ball));
            match sent {
                Some(Ok(())) => Effect::Receive,
                _ => Effect::Crash(Label::new("ponger: unexpected message or send refused")),
            }
        }
    }

    /// After `Go`, sends `n` items to its peer, `burst` per activation at most: an
    /// activation ends early when the ring refuses one, and that one is sent again on the
    /// next tick.
    struct Streamer {
        peer: Handle,
        n: u64,
        burst: u64,
        sent: u64,
        started: bool,
    }

    impl Isolate for Streamer {
        type Args = StreamArgs;
        fn init(args: StreamArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            let StreamArgs { peer, n, burst } = args;
            (Streamer { peer, n, burst, sent: 0, started: false }, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            if !self.started {
                self.started = true;
                OUTCOME.start(ctx);
            }
            for _ in 0..self.burst {
                if self.sent == self.n {
                    return Effect::Done;
                }
                match ctx.send(self.peer, &Item::new(self.sent)) {
                    Ok(()) => self.sent += 1,
                    // The ring toward the peer's shard is full: back off until next tick.
                    Err(SendError::MailboxFull) => break,
                    Err(_) => return Effect::Crash(Label::new("streamer: send refused")),
                }
            }
            Effect::Yield
        }
    }

    /// Counts `n` items, checking each one's number and fill; then yields once so the run
    /// ends at the start of the next tick (after the last item's tick).
    struct Sink {
        n: u64,
        count: u64,
    }

    impl Isolate for Sink {
        type Args = u64;
        fn init(n: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Sink { n, count: 0 }, Effect::Receive)
        }
        fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            if self.count == self.n {
                OUTCOME.finish(ctx, self.count);
                return Effect::Done;
            }
            match message.decode::<Item>() {
                Ok(item) if item.is(self.count) => {}
                _ => return Effect::Crash(Label::new("sink: lost or reordered item")),
            }
            self.count += 1;
            if self.count == self.n { Effect::Yield } else { Effect::Receive }
        }
    }

    /// After `Go`, spawns `n` children, `batch` per activation, yielding in between; the
    /// run ends at the start of the tick after the last batch (its inits ran in its tick).
    struct Spawner {
        n: u64,
        batch: u64,
        spawned: u64,
        started: bool,
    }

    impl Isolate for Spawner {
        type Args = SpawnArgs;
        fn init(args: SpawnArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            let spawner = Spawner { n: args.n, batch: args.batch, spawned: 0, started: false };
            (spawner, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            if !self.started {
                self.started = true;
                OUTCOME.start(ctx);
            }
            if self.spawned == self.n {
                OUTCOME.finish(ctx, self.spawned);
                return Effect::Done;
            }
            for _ in 0..self.batch.min(self.n - self.spawned) {
                if ctx.spawn::<Child>(self.spawned).is_err() {
                    return Effect::Crash(Label::new("spawner: spawn refused"));
                }
                self.spawned += 1;
            }
            Effect::Yield
        }
    }

    /// Stays alive, holding its index: 8 bytes of its own state.
    struct Child {
        _index: u64,
    }

    impl Isolate for Child {
        type Args = u64;
        fn init(index: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Child { _index: index }, Effect::Receive)
        }
        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }

    /// Crashes on every message. Its first incarnation waits for `Go`; each restarted one
    /// sends itself a `Trigger` from `init`, until the `n`-th restart, which yields once so
    /// the run ends at the start of the next tick, then stops.
    struct Crasher {
        finishing: bool,
    }

    impl Isolate for Crasher {
        type Args = u64;
        fn init(n: u64, ctx: &mut Ctx<'_>) -> (Self, Effect) {
            let incarnation = INCARNATIONS.fetch_add(1, Ordering::Relaxed);
            if incarnation == 0 {
                return (Crasher { finishing: false }, Effect::Receive);
            }
            if incarnation == n {
                return (Crasher { finishing: true }, Effect::Yield);
            }
            let me = ctx.self_handle();
            match ctx.send(me, &Trigger { incarnation }) {
                Ok(()) => (Crasher { finishing: false }, Effect::Receive),
                Err(_) => (Crasher { finishing: false }, Effect::Crash(Label::new("no trigger"))),
            }
        }
        fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            if self.finishing {
                OUTCOME.finish(ctx, INCARNATIONS.load(Ordering::Relaxed) - 1);
                return Effect::Done;
            }
            if message.is::<Go>() {
                OUTCOME.start(ctx);
            }
            Effect::Crash(Label::new("crasher: crashes on every message"))
        }
    }

    // ----- tina workloads ----------------------------------------------------------------

    /// Boots `spec`, injects `Go` into `go_to`, waits for the run to finish, stops the
    /// runtime and returns its summary. A run that does not finish is a lost message or a
    /// hang in the runtime: the bench stops there.
    fn run_tina(spec: SystemSpec, go_to: Handle) -> Summary {
        OUTCOME.reset();
        let runtime = Runtime::boot(spec, config()).expect("the runtime boots");
        let mut injector = runtime.injector(go_to.shard()).expect("an injector");
        injector.send(go_to, &Go { round: 0 }).expect("the injector has room");
        let finished = OUTCOME.wait(RUN_TIMEOUT);
        let summary = runtime.stop();
        assert!(finished, "the run did not finish within {RUN_TIMEOUT:?}: {summary:?}");
        for report in &summary.shards {
            assert!(!report.failed && report.stopped, "{report:?}");
            if report.pin_failed {
                eprintln!("warning: a shard could not be pinned and ran unpinned");
            }
        }
        summary
    }

    /// No crash and no drop on any shard (but the refused sends a streamer retries,
    /// checked by the workload).
    fn assert_clean(summary: &Summary) {
        for report in &summary.shards {
            assert_clean_counters(&report.counters);
        }
    }

    fn assert_clean_counters(c: &Counters) {
        assert_eq!((c.crashes, c.panics, c.init_failures), (0, 0, 0), "{c:?}");
        assert_eq!((c.mailbox_full, c.pool_exhausted, c.stale_handle), (0, 0, 0), "{c:?}");
        assert_eq!((c.dropped_on_exit, c.escalations), (0, 0), "{c:?}");
    }

    #[inline(never)]
    fn tina_ping_pong(n: u64) -> Latency {
        let mut spec = SystemSpec::new(2);
        let pinger = spec.register::<Pinger>(TypeConfig::new("pinger").slots(1));
        let ponger = spec.register::<Ponger>(TypeConfig::new("ponger").slots(1));
        spec.register_payload::<Ball>().register_payload::<Go>();
        let peer = spec.boot_child(ShardId(1), ponger, ());
        let go_to = spec.boot_child(ShardId(0), pinger, PeerArgs { peer, n });
        let summary = run_tina(spec, go_to);
        assert_clean(&summary);
        let (ping, pong) = (&summary.shards[0].counters, &summary.shards[1].counters);
        assert_eq!(OUTCOME.counted.load(Ordering::Relaxed), n, "the pinger saw every return");
        // Shard 0 also delivered the injected `Go`.
        assert_eq!((ping.sent, ping.delivered, ping.ring_full), (n, n + 1, 0), "{ping:?}");
        assert_eq!((pong.sent, pong.delivered, pong.ring_full), (n, n, 0), "{pong:?}");
        let samples =
            core::mem::take(&mut *OUTCOME.samples.lock().unwrap_or_else(PoisonError::into_inner));
        assert_eq!(samples.len() as u64, n);
        Latency::of(samples, OUTCOME.elapsed_ns())
    }

    /// Messages per second, and refused sends per message.
    struct Stream {
        rate: f64,
        refused_per_message: f64,
    }

    #[inline(never)]
    fn tina_stream(n: u64, burst: u64) -> Stream {
        let mut spec = SystemSpec::new(2);
        let streamer = spec.register::<Streamer>(TypeConfig::new("streamer").slots(1));
        // A tick takes at most a ring's worth of items from shard 0 (its slots come back
        // only when the tick ends), so a sink allowed that many dispatches per tick empties
        // its mailbox every tick; twice that capacity is slack, never used.
        let weight = RING_CAPACITY.div_ceil(QUOTA_PER_WEIGHT) as u32;
        let sink_config =
            TypeConfig::new("sink").slots(1).mailbox(2 * RING_CAPACITY as u32).weight(weight);
        let sink = spec.register::<Sink>(sink_config);
        spec.register_payload::<Item>().register_payload::<Go>();
        let peer = spec.boot_child(ShardId(1), sink, n);
        let go_to = spec.boot_child(ShardId(0), streamer, StreamArgs { peer, n, burst });
        let summary = run_tina(spec, go_to);
        assert_clean(&summary);
        let (send, receive) = (&summary.shards[0].counters, &summary.shards[1].counters);
        assert_eq!(OUTCOME.counted.load(Ordering::Relaxed), n, "the sink got every item");
        // Every refused send was retried: sent = n + refused, and nothing else dropped.
        assert_eq!(send.sent, n + send.ring_full, "{send:?}");
        assert_eq!(send.drops(), send.ring_full, "{send:?}");
        assert_eq!(
            (receive.enqueued, receive.delivered, receive.drops()),
            (n, n, 0),
            "{receive:?}"
        );
        assert_eq!((send.exits_normal, receive.exits_normal), (1, 1));
        Stream {
            rate: n as f64 * 1e9 / OUTCOME.elapsed_ns() as f64,
            refused_per_message: send.ring_full as f64 / n as f64,
        }
    }

    fn spawn_spec(n: u64, batch: u64) -> (SystemSpec, Handle, TypeIndex<Child>) {
        let mut spec = SystemSpec::new(1);
        let spawner = spec.register::<Spawner>(TypeConfig::new("spawner").slots(1));
        // Slots fit in 20 bits (validated); more is refused at boot.
        let child = spec.register::<Child>(TypeConfig::new("child").slots(n as u32));
        spec.register_payload::<Go>();
        let go_to = spec.boot_child(ShardId(0), spawner, SpawnArgs { n, batch });
        (spec, go_to, child)
    }

    /// Nanoseconds per spawn.
    #[inline(never)]
    fn tina_spawn(n: u64, batch: u64) -> f64 {
        let (spec, go_to, child) = spawn_spec(n, batch);
        let summary = run_tina(spec, go_to);
        assert_clean(&summary);
        let report = &summary.shards[0];
        let c = &report.counters;
        assert_eq!(OUTCOME.counted.load(Ordering::Relaxed), n, "the parent spawned every child");
        // The spawner is the boot child; it alone stopped.
        assert_eq!((c.spawned, c.exits_normal, c.spawn_failed), (n + 1, 1, 0), "{c:?}");
        assert_eq!(report.live_by_type[child.index()] as u64, n, "every child is alive");
        OUTCOME.elapsed_ns() as f64 / n as f64
    }

    /// What one more child slot costs at boot, by part, less the child's own state: the
    /// framework's bytes per isolate (`SystemSpec::memory`, no boot needed).
    fn framework_bytes_per_isolate(n: u64) -> (f64, String) {
        let with = spawn_spec(n, SPAWN_BATCH).0.memory(RING_CAPACITY);
        let base = spawn_spec(1, SPAWN_BATCH).0.memory(RING_CAPACITY);
        let slots = (n - 1) as f64;
        let total = (with.total() - base.total()) as f64 / slots - size_of::<Child>() as f64;
        let parts: Vec<String> = with
            .parts()
            .into_iter()
            .zip(base.parts())
            .filter(|((_, with), (_, base))| with != base)
            .map(|((name, with), (_, base))| format!("{name} {:.1}", (with - base) as f64 / slots))
            .collect();
        (total, parts.join(", "))
    }

    /// Nanoseconds per crash and restart.
    #[inline(never)]
    fn tina_restart(n: u64) -> f64 {
        let mut spec = SystemSpec::new(1);
        let crasher = spec.register::<Crasher>(TypeConfig::new("crasher").slots(1));
        spec.register_payload::<Go>().register_payload::<Trigger>();
        // As many restarts as a group may count, within one microsecond: a tick runs up to
        // 256 cycles at one clock reading, never thousands, so the group never escalates.
        let root = spec.root(ShardId(0));
        let intensity = GroupConfig::new(Strategy::OneForOne)
            .intensity(RESTART_MAX_LIMIT, Duration::from_micros(1));
        spec.configure(root, intensity);
        let go_to = spec.boot_child(ShardId(0), crasher, n);
        INCARNATIONS.store(0, Ordering::Relaxed);
        let summary = run_tina(spec, go_to);
        let c = &summary.shards[0].counters;
        assert_eq!(OUTCOME.counted.load(Ordering::Relaxed), n, "every restart ran its init");
        assert_eq!((c.crashes, c.restarts, c.escalations), (n, n, 0), "{c:?}");
        assert_eq!((c.exits_normal, c.panics, c.init_failures, c.drops()), (1, 0, 0, 0), "{c:?}");
        // `Go`, then a trigger from each restart but the last.
        assert_eq!(c.delivered, n, "{c:?}");
        OUTCOME.elapsed_ns() as f64 / n as f64
    }

    // ----- peers -------------------------------------------------------------------------

    /// Pins the calling thread to the `index`-th core (modulo), as the runtime places shards.
    fn pin_to(cores: &[CoreId], index: usize) {
        if let Some(&core) = cores.get(index % cores.len().max(1))
            && pin(core).is_err()
        {
            eprintln!("warning: a peer thread could not be pinned to {core}");
        }
    }

    /// Busy-waits until `poll` gives a value: the peers' wait for their partner. Bounded by
    /// `SPIN_TIMEOUT`: a partner that died fails the run rather than hanging it.
    #[inline(always)]
    #[expect(clippy::disallowed_methods, reason = "a busy wait's timeout reads the wall clock")]
    fn spin<T>(mut poll: impl FnMut() -> Option<T>) -> T {
        let mut rounds = 0u64;
        let mut started: Option<Instant> = None;
        loop {
            if let Some(value) = poll() {
                return value;
            }
            std::hint::spin_loop();
            rounds += 1;
            if rounds.is_multiple_of(SPIN_CHECK_EVERY) {
                let started = *started.get_or_insert_with(Instant::now);
                assert!(started.elapsed() < SPIN_TIMEOUT, "a peer thread stopped answering");
            }
        }
    }

    fn nanos(duration: Duration) -> u32 {
        u32::try_from(duration.as_nanos()).unwrap_or(u32::MAX)
    }

    #[inline(never)]
    #[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
    fn rtrb_ping_pong(n: u64, cores: &[CoreId]) -> Latency {
        let (mut to_ponger, mut ponger_in) = rtrb::RingBuffer::<Ball>::new(RING_CAPACITY);
        let (mut to_pinger, mut pinger_in) = rtrb::RingBuffer::<Ball>::new(RING_CAPACITY);
        let ready = Barrier::new(2);
        let (samples, elapsed) = std::thread::scope(|scope| {
            scope.spawn(|| {
                pin_to(cores, 1);
                ready.wait();
                for _ in 0..n {
                    let ball = spin(|| ponger_in.pop().ok());
                    spin(|| to_pinger.push(ball).ok());
                }
            });
            let pinger = scope.spawn(|| {
                pin_to(cores, 0);
                ready.wait();
                let mut samples = Vec::with_capacity(n as usize);
                let start = Instant::now();
                let mut last = start;
                spin(|| to_ponger.push(Ball::new(0)).ok());
                for round in 0..n {
                    let ball = spin(|| pinger_in.pop().ok());
                    let now = Instant::now();
                    assert_eq!(ball, Ball::new(round), "the ball comes back unchanged");
                    samples.push(nanos(now - last));
                    last = now;
                    if round + 1 < n {
                        spin(|| to_ponger.push(Ball::new(round + 1)).ok());
                    }
                }
                (samples, last - start)
            });
            pinger.join().expect("the pinger finished")
        });
        assert_eq!(samples.len() as u64, n);
        Latency::of(samples, elapsed.as_nanos() as u64)
    }

    thread_local! {
        /// The tokio worker this thread is (set by `on_thread_start`), `usize::MAX` elsewhere.
        static WORKER: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    /// One-way latency, and the share of round trips whose two tasks ran on different
    /// workers.
    #[inline(never)]
    #[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
    fn tokio_ping_pong(n: u64, cores: &[CoreId]) -> (Latency, f64) {
        let next_worker = AtomicUsize::new(0);
        let worker_cores = cores.to_vec();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || {
                let index = next_worker.fetch_add(1, Ordering::Relaxed);
                WORKER.set(index);
                pin_to(&worker_cores, index);
            })
            .build()
            .expect("a multi-thread runtime");
        let (samples, elapsed, crossed) = runtime.block_on(async move {
            type Request = (Ball, tokio::sync::oneshot::Sender<(Ball, usize)>);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Request>(RING_CAPACITY);
            let server = tokio::spawn(async move {
                while let Some((ball, reply)) = rx.recv().await {
                    let _ = reply.send((ball, WORKER.get()));
                }
            });
            let client = tokio::spawn(async move {
                let mut samples = Vec::with_capacity(n as usize);
                let mut crossed = 0u64;
                let start = Instant::now();
                let mut last = start;
                for round in 0..n {
                    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
                    tx.send((Ball::new(round), reply_tx)).await.expect("the server is alive");
                    let (ball, server_worker) = reply_rx.await.expect("the server replies");
                    let now = Instant::now();
                    assert_eq!(ball, Ball::new(round), "the ball comes back unchanged");
                    crossed += u64::from(server_worker != WORKER.get());
                    samples.push(nanos(now - last));
                    last = now;
                }
                (samples, last - start, crossed)
            });
            let result = client.await.expect("the client finished");
            // The client dropped its sender, which ends the server.
            server.await.expect("the server finished");
            result
        });
        drop(runtime);
        assert_eq!(samples.len() as u64, n);
        (Latency::of(samples, elapsed.as_nanos() as u64), crossed as f64 / n as f64)
    }

    /// One-way latency between two current-thread tokio runtimes, each on its own pinned
    /// thread: the client's task sends on an `mpsc` and awaits a `oneshot` reply from the
    /// server's task on the other core (each runtime parks its thread when idle).
    #[inline(never)]
    #[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
    fn tokio_pinned_ping_pong(n: u64, cores: &[CoreId]) -> Latency {
        type Request = (Ball, tokio::sync::oneshot::Sender<Ball>);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Request>(RING_CAPACITY);
        let current_thread = || {
            tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime")
        };
        let ready = Barrier::new(2);
        let (samples, elapsed) = std::thread::scope(|scope| {
            scope.spawn(|| {
                pin_to(cores, 1);
                let runtime = current_thread();
                ready.wait();
                runtime.block_on(async move {
                    while let Some((ball, reply)) = rx.recv().await {
                        let _ = reply.send(ball);
                    }
                });
            });
            let client = scope.spawn(|| {
                pin_to(cores, 0);
                let runtime = current_thread();
                ready.wait();
                // Moves the sender in: the client's end drops it, which ends the server.
                runtime.block_on(async move {
                    let mut samples = Vec::with_capacity(n as usize);
                    let start = Instant::now();
                    let mut last = start;
                    for round in 0..n {
                        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
                        tx.send((Ball::new(round), reply_tx)).await.expect("the server is alive");
                        let ball = reply_rx.await.expect("the server replies");
                        let now = Instant::now();
                        assert_eq!(ball, Ball::new(round), "the ball comes back unchanged");
                        samples.push(nanos(now - last));
                        last = now;
                    }
                    (samples, last - start)
                })
            });
            client.join().expect("the client finished")
        });
        assert_eq!(samples.len() as u64, n);
        Latency::of(samples, elapsed.as_nanos() as u64)
    }

    /// Messages per second through a crossbeam bounded channel between two pinned threads.
    #[inline(never)]
    #[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
    fn crossbeam_stream(n: u64, cores: &[CoreId]) -> f64 {
        let (tx, rx) = crossbeam_channel::bounded::<Item>(RING_CAPACITY);
        let ready = Barrier::new(2);
        let (start, end) = std::thread::scope(|scope| {
            let sender = scope.spawn(|| {
                pin_to(cores, 0);
                ready.wait();
                let start = Instant::now();
                for seq in 0..n {
                    tx.send(Item::new(seq)).expect("the receiver is alive");
                }
                start
            });
            let receiver = scope.spawn(|| {
                pin_to(cores, 1);
                ready.wait();
                for seq in 0..n {
                    let item = rx.recv().expect("the sender is alive");
                    assert!(item.is(seq), "item {seq} arrives in order, intact");
                }
                Instant::now()
            });
            (sender.join().expect("sender"), receiver.join().expect("receiver"))
        });
        n as f64 / (end - start).as_secs_f64()
    }

    /// Messages per second through a raw rtrb ring between two pinned busy-polling threads.
    #[inline(never)]
    #[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
    fn rtrb_stream(n: u64, cores: &[CoreId]) -> f64 {
        let (mut producer, mut consumer) = rtrb::RingBuffer::<Item>::new(RING_CAPACITY);
        let ready = Barrier::new(2);
        let (start, end) = std::thread::scope(|scope| {
            let sender = scope.spawn(|| {
                pin_to(cores, 0);
                ready.wait();
                let start = Instant::now();
                for seq in 0..n {
                    let item = Item::new(seq);
                    spin(|| producer.push(item).ok());
                }
                start
            });
            let receiver = scope.spawn(|| {
                pin_to(cores, 1);
                ready.wait();
                for seq in 0..n {
                    let item = spin(|| consumer.pop().ok());
                    assert!(item.is(seq), "item {seq} arrives in order, intact");
                }
                Instant::now()
            });
            (sender.join().expect("sender"), receiver.join().expect("receiver"))
        });
        n as f64 / (end - start).as_secs_f64()
    }

    // ----- measurement -------------------------------------------------------------------

    /// One-way latency of one run, from its round trips.
    #[derive(Clone, Copy)]
    struct Latency {
        p50_ns: f64,
        p99_ns: f64,
        mean_ns: f64,
    }

    impl Latency {
        /// From round-trip samples and the run's whole time: halves of round trips.
        fn of(mut round_trips: Vec<u32>, elapsed_ns: u64) -> Latency {
            round_trips.sort_unstable();
            let at = |per_mille: usize| round_trips[round_trips.len() * per_mille / 1000] as f64;
            Latency {
                p50_ns: at(500) / 2.0,
                p99_ns: at(990) / 2.0,
                mean_ns: elapsed_ns as f64 / round_trips.len() as f64 / 2.0,
            }
        }
    }

    /// One measure, one value per round.
    #[derive(Clone, Default)]
    struct Rounds(Vec<f64>);

    impl Rounds {
        fn push(&mut self, value: f64) {
            self.0.push(value);
        }

        fn sorted(&self) -> Vec<f64> {
            let mut values = self.0.clone();
            values.sort_by(f64::total_cmp);
            values
        }

        fn median(&self) -> f64 {
            let values = self.sorted();
            values[values.len() / 2]
        }

        /// `median (min-max)` with `decimals` decimals.
        fn show(&self, decimals: usize) -> String {
            let values = self.sorted();
            let (low, high) = (values[0], values[values.len() - 1]);
            format!("{:.decimals$} ({low:.decimals$}-{high:.decimals$})", self.median())
        }

        /// Round by round `self / other`.
        fn over(&self, other: &Rounds) -> Rounds {
            Rounds(self.0.iter().zip(&other.0).map(|(a, b)| a / b).collect())
        }
    }

    #[derive(Default)]
    struct LatencyRounds {
        p50: Rounds,
        p99: Rounds,
        mean: Rounds,
    }

    impl LatencyRounds {
        fn push(&mut self, latency: Latency) {
            self.p50.push(latency.p50_ns);
            self.p99.push(latency.p99_ns);
            self.mean.push(latency.mean_ns);
        }

        fn row(&self, name: &str) -> String {
            let ratio = self.p99.over(&self.p50);
            format!(
                "| {name} | {} | {} | {}x | {} |",
                self.p50.show(0),
                self.p99.show(0),
                ratio.show(2),
                self.mean.show(0)
            )
        }
    }

    /// Every measure over the rounds.
    #[derive(Default)]
    struct Measures {
        ping_tina: LatencyRounds,
        ping_rtrb: LatencyRounds,
        ping_tokio: LatencyRounds,
        ping_tokio_pinned: LatencyRounds,
        tokio_crossed: Rounds,
        stream_tina: Rounds,
        stream_refused: Rounds,
        stream_tina_full: Rounds,
        stream_refused_full: Rounds,
        stream_crossbeam: Rounds,
        stream_rtrb: Rounds,
        spawn_batch: Rounds,
        spawn_single: Rounds,
        restart: Rounds,
    }

    /// Which workloads run (all by default; `--only NAME` picks one, for profiling).
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Only {
        All,
        PingPong,
        Stream,
        Spawn,
        Restart,
    }

    struct Options {
        n: u64,
        stream_n: u64,
        spawn_n: u64,
        restart_n: u64,
        rounds: usize,
        only: Only,
    }

    fn options() -> Options {
        let mut options = Options {
            n: 200_000,
            stream_n: 2_000_000,
            spawn_n: 1_000_000,
            restart_n: 1_000_000,
            rounds: 5,
            only: Only::All,
        };
        let mut args = std::env::args().skip(1);
        // `cargo bench` passes `--bench`; anything unknown is ignored.
        while let Some(arg) = args.next() {
            let mut text = || args.next().unwrap_or_default();
            let number = |text: String| -> u64 {
                text.parse().unwrap_or_else(|_| panic!("{arg} takes a positive number"))
            };
            match arg.as_str() {
                "--n" => options.n = number(text()),
                "--stream-n" => options.stream_n = number(text()),
                "--spawn-n" => options.spawn_n = number(text()),
                "--restart-n" => options.restart_n = number(text()),
                "--rounds" => options.rounds = number(text()) as usize,
                "--only" => {
                    options.only = match text().as_str() {
                        "ping-pong" => Only::PingPong,
                        "stream" => Only::Stream,
                        "spawn" => Only::Spawn,
                        "restart" => Only::Restart,
                        other => {
                            panic!("--only takes ping-pong, stream, spawn or restart: {other}")
                        }
                    }
                }
                _ => {}
            }
        }
        let Options { n, stream_n, spawn_n, restart_n, rounds, .. } = options;
        assert!(n > 0 && stream_n > 0 && restart_n > 0 && rounds > 0, "counts are positive");
        assert!(spawn_n > 1, "--spawn-n is at least 2 (bytes per isolate compare slot counts)");
        assert!(spawn_n <= u64::from(tina::limits::SLOT_COUNT_MAX), "--spawn-n fits the slots");
        options
    }

    pub(super) fn main() {
        let options = options();
        let Options { n, stream_n, spawn_n, restart_n, rounds, only } = options;
        let cores = available_cores();
        if cores.len() < 2 {
            eprintln!("warning: fewer than two cores available; the cross-core runs share one");
        }
        println!("tina::prod::Runtime vs peers, {rounds} interleaved rounds, median (range).");
        println!("ping-pong N = {n}, streaming N = {stream_n}, spawn N = {spawn_n},");
        println!("restart N = {restart_n}; ring capacity {RING_CAPACITY}; cores {cores:?}.");
        let runs = |workload: Only| only == Only::All || only == workload;
        let mut m = Measures::default();
        for round in 1..=rounds {
            if runs(Only::PingPong) {
                m.ping_tina.push(tina_ping_pong(n));
                m.ping_rtrb.push(rtrb_ping_pong(n, &cores));
                let (latency, crossed) = tokio_ping_pong(n, &cores);
                m.ping_tokio.push(latency);
                m.tokio_crossed.push(crossed * 100.0);
                m.ping_tokio_pinned.push(tokio_pinned_ping_pong(n, &cores));
            }
            if runs(Only::Stream) {
                let stream = tina_stream(stream_n, STREAM_BURST);
                m.stream_tina.push(stream.rate / 1e6);
                m.stream_refused.push(stream.refused_per_message);
                m.stream_crossbeam.push(crossbeam_stream(stream_n, &cores) / 1e6);
                m.stream_rtrb.push(rtrb_stream(stream_n, &cores) / 1e6);
                let stream = tina_stream(stream_n, STREAM_BURST_UNTIL_FULL);
                m.stream_tina_full.push(stream.rate / 1e6);
                m.stream_refused_full.push(stream.refused_per_message);
            }
            if runs(Only::Spawn) {
                m.spawn_batch.push(tina_spawn(spawn_n, SPAWN_BATCH));
                m.spawn_single.push(tina_spawn(spawn_n, 1));
            }
            if runs(Only::Restart) {
                m.restart.push(tina_restart(restart_n));
            }
            eprintln!("round {round}/{rounds} done");
        }
        print_ping_pong(&m);
        print_stream(&m);
        print_aims(&m, spawn_n);
    }

    fn print_ping_pong(m: &Measures) {
        if m.ping_tina.p50.0.is_empty() {
            return;
        }
        println!();
        println!("Cross-core ping-pong, 64-byte ball, one-way latency (half a round trip), ns:");
        println!();
        println!("| contestant | p50 | p99 | p99/p50 | mean |");
        println!("|---|---:|---:|---:|---:|");
        println!("{}", m.ping_tina.row("tina"));
        println!("{}", m.ping_rtrb.row("rtrb, busy-polling threads"));
        println!("{}", m.ping_tokio.row("tokio multi-thread, 2 workers"));
        println!("{}", m.ping_tokio_pinned.row("tokio, 2 pinned current-thread runtimes"));
        println!();
        println!(
            "tokio multi-thread round trips whose two tasks ran on different workers: {}%",
            m.tokio_crossed.show(1)
        );
    }

    fn print_stream(m: &Measures) {
        if m.stream_tina.0.is_empty() {
            return;
        }
        println!();
        println!("Cross-core streaming, {PAYLOAD_SIZE_MAX}-byte messages, millions per second:");
        println!();
        println!("| contestant | Mmsg/s | sends refused per message |");
        println!("|---|---:|---:|");
        println!(
            "| tina, {STREAM_BURST} sends per activation | {} | {} |",
            m.stream_tina.show(2),
            m.stream_refused.show(3)
        );
        println!(
            "| tina, sends until the ring refuses | {} | {} |",
            m.stream_tina_full.show(2),
            m.stream_refused_full.show(3)
        );
        println!("| crossbeam bounded({RING_CAPACITY}) | {} | - |", m.stream_crossbeam.show(2));
        println!("| rtrb({RING_CAPACITY}), busy-polling | {} | - |", m.stream_rtrb.show(2));
    }

    /// An issue's aim for one measure.
    #[derive(Clone, Copy)]
    enum Aim {
        AtMost(f64),
        AtLeast(f64),
        None,
    }

    fn aim_row(name: &str, rounds: &Rounds, decimals: usize, aim: Aim) {
        if rounds.0.is_empty() {
            return;
        }
        let median = rounds.median();
        let (aim, met) = match aim {
            Aim::AtMost(bound) => {
                (format!("<= {bound}"), if median <= bound { "yes" } else { "no" })
            }
            Aim::AtLeast(bound) => {
                (format!(">= {bound}"), if median >= bound { "yes" } else { "no" })
            }
            Aim::None => ("-".to_string(), "-"),
        };
        println!("| {name} | {} | {aim} | {met} |", rounds.show(decimals));
    }

    fn print_aims(m: &Measures, spawn_n: u64) {
        println!();
        println!("| measure | tina, median (range) | aim | met |");
        println!("|---|---:|---:|---|");
        let ping_ratio = m.ping_tina.p50.over(&m.ping_rtrb.p50);
        aim_row("ping-pong p50 / rtrb p50", &ping_ratio, 2, Aim::AtMost(1.3));
        aim_row(
            "ping-pong p99 / p50",
            &m.ping_tina.p99.over(&m.ping_tina.p50),
            2,
            Aim::AtMost(2.0),
        );
        for (name, tina) in [
            (format!("streaming, {STREAM_BURST} per activation"), &m.stream_tina),
            ("streaming, until refused".to_string(), &m.stream_tina_full),
        ] {
            let (crossbeam, rtrb) = (tina.over(&m.stream_crossbeam), tina.over(&m.stream_rtrb));
            aim_row(&format!("{name} / crossbeam"), &crossbeam, 2, Aim::AtLeast(3.0));
            aim_row(&format!("{name} / rtrb"), &rtrb, 2, Aim::AtLeast(0.8));
        }
        aim_row("spawn, 1,024 per activation, ns", &m.spawn_batch, 1, Aim::AtMost(50.0));
        aim_row("spawn, 1 per activation, ns", &m.spawn_single, 1, Aim::None);
        let (bytes, parts) = framework_bytes_per_isolate(spawn_n);
        if !m.spawn_batch.0.is_empty() {
            aim_row("framework bytes per isolate", &Rounds(vec![bytes]), 1, Aim::AtMost(128.0));
        }
        aim_row("crash + restart, ns", &m.restart, 1, Aim::AtMost(1000.0));
        if !m.spawn_batch.0.is_empty() {
            println!();
            println!(
                "Bytes per extra slot, by part (the child's own {} bytes included): {parts}.",
                size_of::<Child>()
            );
        }
    }
}
