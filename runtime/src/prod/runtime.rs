//! The production runtime: the same `Scheduler` the simulator drives, one OS thread per
//! shard, shards talking only through lock-free SPSC rings, idle shards parked on their
//! eventfd.
//!
//! ```no_run
//! use tina::prod::{Runtime, RuntimeConfig};
//! use tina::{Ctx, Effect, Isolate, Message, ShardId, SystemSpec, TypeConfig};
//!
//! struct Hello;
//!
//! impl Isolate for Hello {
//!     type Args = ();
//!     fn init(_: (), _ctx: &mut Ctx<'_>) -> (Hello, Effect) {
//!         (Hello, Effect::Done)
//!     }
//!     fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
//!         Effect::Receive
//!     }
//! }
//!
//! let mut spec = SystemSpec::new(2);
//! let hello = spec.register::<Hello>(TypeConfig::new("hello").slots(1));
//! spec.boot_child(ShardId(0), hello, ());
//! let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
//! runtime.wait_until_finished(std::time::Duration::from_secs(5));
//! let summary = runtime.stop();
//! assert_eq!(summary.shards.len(), 2);
//! ```
//!
//! Boot validates the spec, refuses one that needs more memory than the machine can give,
//! creates every ring and parker, then starts one thread per shard (pinned to its core;
//! a failed pin is counted, not an error). Each thread boots its own `Scheduler` (isolates
//! need not be `Send`: they are built on their shard's thread and never leave it), runs its
//! static supervision tree, reports booted, and ticks until stopped, parking when idle.
//!
//! From outside, an application reaches isolates through an [`Injector`]: a bounded,
//! non-blocking, typed entry point (its own ring into one shard). `stop()` stops every
//! shard and joins the threads; `shutdown(drain)` first lets every shard drain (each
//! isolate is told, and the shards run on until no isolate is left or the deadline);
//! signal handling is opt-in (`run_until_signal`: the first signal shuts down gracefully).
//!
//! A fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE) in a shard's isolate code quarantines
//! that shard and the others keep serving; one outside isolate code, or a shard that stops
//! ticking for `RuntimeConfig::stall_limit`, aborts the process (see [`fatal`]).
//!
//! [`fatal`]: super::fatal

use core::fmt;
use core::time::Duration;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::affinity::{AffinityError, CorePlan, available_cores};
use super::clock::Clock;
use super::fatal::{self, AltStack, Board, FatalFault, ShardSignals, Watchdog};
use super::io::{
    IO_HANDLES_DEFAULT, IO_HANDLES_MAX_LIMIT, IoDriver, IoDriverChoice, IoKernel, IoReport,
};
use super::memory::{self, MemoryError};
use super::park::{Parker, Unparker};
use super::signals::{Ended, SignalError, SignalGuard};
use super::spsc::{self, CapacityError, Consumer, Producer};
use crate::backend::{Backend, Env, Timestamp, TransportFull};
use crate::io::{IoReaped, IoSubmission, IoToken};
use crate::shutdown::ShutdownReport;
use crate::spec::{BootError, SpecErrors, SystemSpec};
use crate::trace::{Counters, Event, ShardFailure};
use crate::{Handle, Message, Payload, Scheduler, ShardId};

/// Ticks between two publications of a busy shard's report (an idle shard publishes each
/// time it parks).
pub const REPORT_EVERY_TICKS: u64 = 1024;
/// How often `wait_until` looks at the shards' reports.
pub const WAIT_POLL: Duration = Duration::from_millis(1);
/// How long `Runtime::shutdown` waits past the drain's deadline for every shard to report
/// its shutdown finished (each tears down what is left at its first tick after the
/// deadline) before it stops them anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);
/// `Shared::shutdown_at` before any shutdown is asked for.
const NO_SHUTDOWN: u64 = u64::MAX;

/// How the runtime sizes what the spec does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Envelopes per ring, one ring per ordered pair of shards.
    pub ring_capacity: usize,
    /// Envelopes per injector ring.
    pub inject_capacity: usize,
    /// Injectors each shard can hand out (each is a ring of its own, made at boot).
    pub injectors_per_shard: usize,
    /// How long a booted shard that is not parked may go without finishing a tick before
    /// the watchdog aborts the process (an isolate handler that never returns);
    /// `fatal::STALL_LIMIT_DEFAULT` (10 s) by default, at least `fatal::STALL_LIMIT_MIN`;
    /// `None` turns stall detection off.
    pub stall_limit: Option<Duration>,
    /// Which I/O driver the shards use (`prod::io`); default `Auto`: io_uring where the
    /// kernel allows it, epoll otherwise.
    pub io_driver: IoDriverChoice,
    /// Open sockets and files per shard (its handle table, made at boot), 1 to
    /// `prod::io::IO_HANDLES_MAX_LIMIT`; default `prod::io::IO_HANDLES_DEFAULT`. Past it,
    /// opening fails with `IoError::TooManyHandles` and accepted connections are closed at
    /// once (counted in `IoReport`).
    pub io_handles_max: u32,
    /// Whether shards the spec names no core for are pinned, shard `i` to the `i % n`-th
    /// core the process may use (default `true`: one core per shard, the usual shape on a
    /// machine the runtime has to itself). `false` leaves them to the operating system's
    /// scheduler, which can move a shard away from a busy process that shares its cores
    /// (a load generator on the same small machine, for one). Cores the spec names
    /// (`SystemSpec::cores`) are pinned either way.
    pub pin: bool,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            ring_capacity: 1024,
            inject_capacity: 256,
            injectors_per_shard: 4,
            stall_limit: Some(fatal::STALL_LIMIT_DEFAULT),
            io_driver: IoDriverChoice::Auto,
            io_handles_max: IO_HANDLES_DEFAULT,
            pin: true,
        }
    }
}

/// Why the runtime did not boot. Nothing is left running when boot fails.
#[derive(Debug)]
pub enum RuntimeError {
    /// The spec is invalid.
    Spec(SpecErrors),
    /// A ring of zero envelopes, or zero injectors where some are asked for.
    Config(&'static str),
    /// The spec needs more memory than the machine can give.
    Memory(MemoryError),
    /// The spec names a core this machine does not have.
    Affinity(AffinityError),
    /// A ring could not be made.
    Ring(CapacityError),
    /// A shard's eventfd, I/O driver (its epoll instance or io_uring; a forced
    /// `IoDriverChoice::IoUring` where io_uring is unavailable) or thread could not be
    /// created.
    Os(std::io::Error),
    /// A shard's scheduler refused to boot.
    Boot {
        /// The shard.
        shard: ShardId,
        /// Why.
        error: BootError,
    },
    /// Every injector of the shard was handed out already, or the shard does not exist.
    NoInjector {
        /// The shard asked for.
        shard: ShardId,
    },
    /// A shard took a fatal signal in isolate code while booting (in an `init`) and was
    /// quarantined; the other shards were stopped.
    Quarantined {
        /// The shard.
        shard: ShardId,
        /// What it took.
        fault: FatalFault,
    },
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Spec(errors) => write!(f, "the spec is invalid: {errors}"),
            RuntimeError::Config(what) => write!(f, "the runtime configuration is invalid: {what}"),
            RuntimeError::Memory(error) => write!(f, "{error}"),
            RuntimeError::Affinity(error) => write!(f, "{error}"),
            RuntimeError::Ring(error) => write!(f, "a ring could not be made: {error}"),
            RuntimeError::Os(error) => write!(f, "the operating system refused: {error}"),
            RuntimeError::Boot { shard, error } => {
                write!(f, "shard {} did not boot: {error}", shard.index())
            }
            RuntimeError::NoInjector { shard } => write!(
                f,
                "shard {} has no injector left: raise RuntimeConfig::injectors_per_shard",
                shard.index()
            ),
            RuntimeError::Quarantined { shard, fault } => {
                write!(f, "shard {} was quarantined while booting: {fault}", shard.index())
            }
        }
    }
}

impl std::error::Error for RuntimeError {}

/// What a shard last reported: published every `REPORT_EVERY_TICKS` ticks, each time it
/// parks, and when it stops.
#[derive(Clone, Debug, Default)]
pub struct ShardReport {
    /// The shard's counters.
    pub counters: Counters,
    /// Isolates alive (or reserved).
    pub live_isolates: usize,
    /// Live isolates by type, in registration order.
    pub live_by_type: Vec<usize>,
    /// The core the shard runs on, if it was pinned.
    pub core: Option<usize>,
    /// Whether pinning failed (counted, not an error: the shard runs unpinned).
    pub pin_failed: bool,
    /// Ticks run.
    pub ticks: u64,
    /// Times it parked.
    pub parks: u64,
    /// Whether its root supervision group escalated (every isolate of the shard stopped).
    pub failed: bool,
    /// Whether it has stopped.
    pub stopped: bool,
    /// The fatal signal that quarantined it, if one did: its thread is parked for good, and
    /// the rest of this report is what it published before.
    pub quarantined: Option<FatalFault>,
    /// Its sends to a quarantined shard, refused (each also counted as a `ring_full` drop).
    pub sends_to_quarantined: u64,
    /// Its I/O driver and counters.
    pub io: IoReport,
    /// Whether its graceful shutdown began (`Runtime::shutdown`).
    pub shutting_down: bool,
    /// How its shutdown ended, once it did: drained, or forced at the deadline.
    pub shutdown: Option<ShutdownReport>,
}

impl ShardReport {
    /// Live isolates of type `type_index` (`SystemSpec::type_named` finds it by name); 0 for
    /// an index the spec does not have.
    pub fn live_in_type(&self, type_index: usize) -> usize {
        self.live_by_type.get(type_index).copied().unwrap_or(0)
    }
}

/// What every thread and the handle share.
struct Shared {
    stop: AtomicBool,
    /// The drain's deadline on the runtime's clock, in nanoseconds, once a shutdown was
    /// asked for (`NO_SHUTDOWN` before): each shard begins its shutdown at its next tick.
    shutdown_at: AtomicU64,
    unparkers: Vec<Unparker>,
    reports: Vec<Mutex<ShardReport>>,
    /// Shards booted, and the first boot failure; the boot waits on `booted_changed`.
    boot: Mutex<(usize, Option<(ShardId, BootError)>)>,
    booted_changed: Condvar,
    /// Each shard's fatal-signal slot.
    fatal: Arc<Board>,
}

impl Shared {
    fn report(&self, shard: usize) -> ShardReport {
        let mut report = self.reports[shard].lock().unwrap_or_else(PoisonError::into_inner).clone();
        report.quarantined = self.fatal.fault(shard);
        report
    }
}

/// A running system: one thread per shard. See the module documentation.
pub struct Runtime {
    shared: Arc<Shared>,
    /// The shards' clock (one epoch for all), for the shutdown's deadline.
    clock: Clock,
    threads: Vec<JoinHandle<()>>,
    injectors: Mutex<Vec<Vec<Producer<Message>>>>,
    stopped: bool,
    /// Aborts on a stalled shard and announces quarantines; stopped after the shards.
    watchdog: Option<Watchdog>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("shards", &self.threads.len()).finish_non_exhaustive()
    }
}

/// What each shard's thread starts with.
struct ShardStart {
    shard: ShardId,
    spec: Arc<SystemSpec>,
    plan: Arc<CorePlan>,
    clock: Clock,
    outgoing: Vec<Option<Producer<Message>>>,
    incoming: Vec<Consumer<Message>>,
    parker: Parker,
    shared: Arc<Shared>,
    seed: u64,
    signal_stack: AltStack,
    io: IoKernel,
    io_handles_max: u32,
}

impl Runtime {
    /// Validates `spec`, checks the machine can hold it, makes every ring and parker,
    /// starts one thread per shard and waits until every shard has booted its tree.
    pub fn boot(spec: SystemSpec, config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        spec.validate().map_err(RuntimeError::Spec)?;
        if config.ring_capacity == 0 {
            return Err(RuntimeError::Config("ring_capacity is 0; give at least 1"));
        }
        if config.injectors_per_shard > 0 && config.inject_capacity == 0 {
            return Err(RuntimeError::Config("inject_capacity is 0; give at least 1"));
        }
        if config.stall_limit.is_some_and(|limit| limit < fatal::STALL_LIMIT_MIN) {
            return Err(RuntimeError::Config(
                "stall_limit is below fatal::STALL_LIMIT_MIN (500 ms); give more, or None",
            ));
        }
        if config.io_handles_max == 0 || config.io_handles_max > IO_HANDLES_MAX_LIMIT {
            return Err(RuntimeError::Config(
                "io_handles_max must be 1 to prod::io::IO_HANDLES_MAX_LIMIT (65535)",
            ));
        }
        memory::check_spec(&spec, config.ring_capacity).map_err(RuntimeError::Memory)?;
        let available = available_cores();
        let plan = if config.pin {
            CorePlan::new(&spec, &available)
        } else {
            CorePlan::unpinned(&spec, &available)
        }
        .map_err(RuntimeError::Affinity)?;
        let shards = spec.shard_count();
        // Rings: outgoing[from][to] and incoming[to] (peers in shard order, then injectors).
        let mut outgoing: Vec<Vec<Option<Producer<Message>>>> =
            (0..shards).map(|_| (0..shards).map(|_| None).collect()).collect();
        let mut incoming: Vec<Vec<Consumer<Message>>> = (0..shards).map(|_| Vec::new()).collect();
        for (from, rings) in outgoing.iter_mut().enumerate() {
            for (to, ring) in rings.iter_mut().enumerate().filter(|&(to, _)| to != from) {
                let (producer, consumer) =
                    spsc::channel(config.ring_capacity).map_err(RuntimeError::Ring)?;
                *ring = Some(producer);
                incoming[to].push(consumer);
            }
        }
        let mut injectors: Vec<Vec<Producer<Message>>> = Vec::with_capacity(shards);
        for rings in &mut incoming {
            let mut spare = Vec::with_capacity(config.injectors_per_shard);
            for _ in 0..config.injectors_per_shard {
                let (producer, consumer) =
                    spsc::channel(config.inject_capacity).map_err(RuntimeError::Ring)?;
                spare.push(producer);
                rings.push(consumer);
            }
            injectors.push(spare);
        }
        let parkers: Vec<Parker> = (0..shards)
            .map(|_| Parker::new())
            .collect::<Result<_, _>>()
            .map_err(RuntimeError::Os)?;
        fatal::install().map_err(RuntimeError::Os)?;
        let signal_stacks: Vec<AltStack> = (0..shards)
            .map(|_| AltStack::new())
            .collect::<Result<_, _>>()
            .map_err(RuntimeError::Os)?;
        let board = Arc::new(Board::new(shards).map_err(RuntimeError::Os)?);
        let io_kernels: Vec<IoKernel> = (0..shards)
            .map(|_| IoKernel::open(config.io_driver, spec.io_in_flight_max))
            .collect::<Result<_, _>>()
            .map_err(RuntimeError::Os)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            shutdown_at: AtomicU64::new(NO_SHUTDOWN),
            unparkers: parkers.iter().map(Parker::unparker).collect(),
            reports: (0..shards).map(|_| Mutex::new(ShardReport::default())).collect(),
            boot: Mutex::new((0, None)),
            booted_changed: Condvar::new(),
            fatal: Arc::clone(&board),
        });
        let spec = Arc::new(spec);
        let plan = Arc::new(plan);
        let clock = Clock::start();
        let seed = entropy();
        let mut runtime = Runtime {
            shared: Arc::clone(&shared),
            clock,
            threads: Vec::with_capacity(shards),
            injectors: Mutex::new(injectors),
            stopped: false,
            watchdog: Some(Watchdog::start(board, config.stall_limit).map_err(RuntimeError::Os)?),
        };
        for (index, ((((outgoing, incoming), parker), signal_stack), io)) in outgoing
            .into_iter()
            .zip(incoming)
            .zip(parkers)
            .zip(signal_stacks)
            .zip(io_kernels)
            .enumerate()
        {
            // Shard indices fit in u8 (validated).
            let shard = ShardId(index as u8);
            let start = ShardStart {
                shard,
                spec: Arc::clone(&spec),
                plan: Arc::clone(&plan),
                clock,
                outgoing,
                incoming,
                parker,
                shared: Arc::clone(&shared),
                seed: seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                signal_stack,
                io,
                io_handles_max: config.io_handles_max,
            };
            match spawn_shard(start) {
                Ok(thread) => runtime.threads.push(thread),
                Err(error) => {
                    runtime.halt();
                    return Err(RuntimeError::Os(error));
                }
            }
        }
        // Every shard reports booted or failed, or is quarantined (it never reports, so
        // look at the slots too); boot is bounded work on each.
        let (booted, failure) = {
            let mut boot = shared.boot.lock().unwrap_or_else(PoisonError::into_inner);
            while boot.0 < shards && boot.1.is_none() && shared.fatal.first_fault().is_none() {
                boot = shared
                    .booted_changed
                    .wait_timeout(boot, WAIT_POLL)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            (boot.0, boot.1.take())
        };
        if let Some((shard, error)) = failure {
            runtime.halt();
            return Err(RuntimeError::Boot { shard, error });
        }
        if booted < shards
            && let Some((shard, fault)) = shared.fatal.first_fault()
        {
            runtime.halt();
            return Err(RuntimeError::Quarantined { shard, fault });
        }
        Ok(runtime)
    }

    /// Shards.
    pub fn shard_count(&self) -> usize {
        self.shared.reports.len()
    }

    /// Each shard's last report, in shard order.
    pub fn reports(&self) -> Vec<ShardReport> {
        (0..self.shard_count()).map(|shard| self.shared.report(shard)).collect()
    }

    /// An injector into `shard`: a bounded, non-blocking way for the application's own
    /// threads to send to isolates of that shard. Each shard has
    /// `RuntimeConfig::injectors_per_shard` of them.
    pub fn injector(&self, shard: ShardId) -> Result<Injector, RuntimeError> {
        let mut spare = self.injectors.lock().unwrap_or_else(PoisonError::into_inner);
        let producer = spare
            .get_mut(shard.index())
            .and_then(Vec::pop)
            .ok_or(RuntimeError::NoInjector { shard })?;
        Ok(Injector {
            shard,
            producer,
            unparker: self.shared.unparkers[shard.index()].clone(),
            shared: Arc::clone(&self.shared),
            sequence: 0,
        })
    }

    /// Waits until `done` holds for the shards' reports, or `timeout` passes; returns
    /// whether it held.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[ShardReport]) -> bool) -> bool {
        let clock = Clock::start();
        let deadline = Timestamp::from_nanos(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
        loop {
            if done(&self.reports()) {
                return true;
            }
            if clock.now() >= deadline {
                return false;
            }
            pause(WAIT_POLL);
        }
    }

    /// Waits until no isolate is alive on any shard (as the shards last reported; a
    /// quarantined shard's isolates never run again and count as finished), or `timeout`
    /// passes; returns whether they all finished.
    pub fn wait_until_finished(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |reports| {
            reports.iter().all(|r| r.live_isolates == 0 || r.quarantined.is_some())
        })
    }

    /// Installs SIGINT and SIGTERM handling and runs until a first signal or until `done`
    /// holds. After a signal it shuts down gracefully with `drain` as the drain's length
    /// (`shutdown`: `Summary::drained` says whether every shard drained in time); a second
    /// signal meanwhile exits the process at once (`128 + signal`). When `done` holds it
    /// stops at once, as `stop` does. Returns the summary and what ended the run.
    pub fn run_until_signal(
        self,
        drain: Duration,
        done: impl Fn(&[ShardReport]) -> bool,
    ) -> Result<(Summary, Ended), SignalError> {
        let guard = SignalGuard::install()?;
        let ended = guard.wait_until(|| done(&self.reports()), WAIT_POLL * 10);
        let summary = match ended {
            // The guard stays installed through the drain: a second signal still exits.
            Ended::Signal => self.shutdown(drain),
            Ended::Condition => self.stop(),
        };
        drop(guard);
        Ok((summary, ended))
    }

    /// Shuts down gracefully, in three phases (see `Scheduler::begin_shutdown`): every
    /// shard begins its shutdown at its next tick (a parked shard is woken) with one
    /// deadline, `drain` from now; each isolate gets a `Tag::SHUTDOWN` message, and the
    /// shards run on (messages, timers, I/O) until each has no isolate left or the deadline
    /// passes, when each tears down what is still alive. Then every shard is stopped and
    /// joined, as by `stop`. Each shard's report says how its shutdown ended
    /// (`ShardReport::shutdown`), and `Summary::drained` whether all of them drained.
    ///
    /// Waits at most `drain` plus `SHUTDOWN_GRACE` for the shards to report (a shard stuck
    /// in a handler that never returns still cannot be joined).
    pub fn shutdown(mut self, drain: Duration) -> Summary {
        let deadline = self.clock.now().saturating_add(drain);
        // A second request keeps the first deadline.
        let _ = self.shared.shutdown_at.compare_exchange(
            NO_SHUTDOWN,
            deadline.as_nanos(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let give_up = deadline.saturating_add(SHUTDOWN_GRACE);
        // Bounded by the deadline: each round sleeps `WAIT_POLL`.
        loop {
            let reports = self.reports();
            for (shard, report) in reports.iter().enumerate() {
                // The request does not come through a ring, so a parked shard's re-check
                // cannot see it: wake it, again each round until it has begun.
                if !report.shutting_down && !report.stopped {
                    self.shared.unparkers[shard].unpark();
                }
            }
            // A quarantined shard's thread is parked for good: there is nothing to drain.
            if reports.iter().all(|r| r.shutdown.is_some() || r.stopped || r.quarantined.is_some())
                || self.clock.now() >= give_up
            {
                break;
            }
            pause(WAIT_POLL);
        }
        self.halt();
        Summary { shards: self.reports() }
    }

    /// Stops every shard, joins the threads and returns their final reports.
    pub fn stop(mut self) -> Summary {
        self.halt();
        Summary { shards: self.reports() }
    }

    /// Asks every shard to stop and joins them, except a quarantined shard's thread,
    /// which is parked for good and left detached; then stops the watchdog. Harmless when
    /// done already.
    fn halt(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.shared.stop.store(true, Ordering::Release);
        for unparker in &self.shared.unparkers {
            unparker.stop();
        }
        for (index, thread) in self.threads.drain(..).enumerate() {
            // Joining a thread that is quarantined meanwhile would never return: wait until
            // it left its loop or is quarantined. A shard that never leaves is stalled, and
            // the watchdog (still running) aborts.
            let slot = self.shared.fatal.slot(index);
            while !slot.settled() {
                pause(WAIT_POLL);
            }
            if !slot.is_quarantined() {
                // A shard thread's panic outside an isolate is a broken invariant of the
                // core; its report says how far it got.
                let _ = thread.join();
            }
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.stop();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What a stopped runtime's shards reported last.
#[derive(Clone, Debug)]
pub struct Summary {
    /// One report per shard, in shard order.
    pub shards: Vec<ShardReport>,
}

impl Summary {
    /// The shards that were quarantined by a fatal signal, and what each took.
    pub fn quarantined(&self) -> impl Iterator<Item = (ShardId, FatalFault)> + '_ {
        self.shards.iter().enumerate().filter_map(|(index, report)| {
            // Shard indices fit in u8 (the spec was validated).
            report.quarantined.map(|fault| (ShardId(index as u8), fault))
        })
    }

    /// Whether every shard shut down and drained: each isolate ended by itself before the
    /// deadline. False when no shutdown ran (`stop`), or a shard was forced at the deadline
    /// or did not report its shutdown finished. A quarantined shard is left out (its thread
    /// is parked for good and its memory abandoned: there is nothing it could drain); see
    /// `quarantined`.
    pub fn drained(&self) -> bool {
        self.shards.iter().all(|report| {
            report.quarantined.is_some() || report.shutdown.is_some_and(|s| s.drained)
        })
    }

    /// Every shard's counters added up, by name (as `Counters::entries` names them).
    pub fn total(&self) -> Vec<(&'static str, u64)> {
        let mut total = Counters::default().entries().to_vec();
        for report in &self.shards {
            for (sum, (_, value)) in total.iter_mut().zip(report.counters.entries()) {
                sum.1 += value;
            }
        }
        total
    }
}

/// Why an injection was refused. Nothing is sent then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The injector's ring is full: the shard has not caught up; try again later.
    Full,
    /// The runtime has stopped.
    Stopped,
    /// The shard was quarantined by a fatal signal: nothing will ever read the message.
    Quarantined,
    /// The handle names an isolate of another shard than the injector's.
    WrongShard {
        /// The handle's shard.
        handle: ShardId,
        /// The injector's shard.
        injector: ShardId,
    },
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectError::Full => {
                write!(f, "the injector's ring is full; retry after the shard catches up")
            }
            InjectError::Stopped => write!(f, "the runtime has stopped"),
            InjectError::Quarantined => {
                write!(f, "the shard was quarantined by a fatal signal; it reads nothing more")
            }
            InjectError::WrongShard { handle, injector } => write!(
                f,
                "the handle is on shard {}, the injector feeds shard {}: take an injector of the handle's shard",
                handle.index(),
                injector.index()
            ),
        }
    }
}

impl std::error::Error for InjectError {}

/// An application thread's way into one shard: its own ring, bounded, never blocking.
/// `Send`, not `Clone`: one per application thread.
pub struct Injector {
    shard: ShardId,
    producer: Producer<Message>,
    unparker: Unparker,
    shared: Arc<Shared>,
    sequence: u64,
}

impl fmt::Debug for Injector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector").field("shard", &self.shard).finish_non_exhaustive()
    }
}

impl Injector {
    /// Sends `payload` to `to` (an isolate of this injector's shard), as a message from
    /// no isolate (`Handle::NONE` is its source, so a reply to it is dropped).
    pub fn send<P: Payload>(&mut self, to: Handle, payload: &P) -> Result<(), InjectError> {
        if self.shared.stop.load(Ordering::Acquire) {
            return Err(InjectError::Stopped);
        }
        if to.shard() != self.shard {
            return Err(InjectError::WrongShard { handle: to.shard(), injector: self.shard });
        }
        if self.shared.fatal.is_quarantined(self.shard.index()) {
            return Err(InjectError::Quarantined);
        }
        self.sequence += 1;
        let message = Message::injected(to, payload, self.sequence);
        self.producer.push(message).map_err(|_| InjectError::Full)?;
        self.producer.publish();
        self.unparker.unpark();
        Ok(())
    }

    /// The shard it feeds.
    pub fn shard(&self) -> ShardId {
        self.shard
    }
}

#[expect(clippy::disallowed_methods, reason = "the production runtime starts one thread per shard")]
fn spawn_shard(start: ShardStart) -> std::io::Result<JoinHandle<()>> {
    let name = format!("tina-shard-{}", start.shard.index());
    std::thread::Builder::new().name(name).spawn(move || shard_main(start))
}

#[expect(clippy::disallowed_methods, reason = "waiting on the shards' reports, outside any shard")]
fn pause(duration: Duration) {
    std::thread::sleep(duration);
}

#[expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "production isolates draw from entropy (ctx.random_u64); the simulator seeds its own"
)]
fn entropy() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x7469_6e61_7072_6f64u64)
}

/// A shard's thread: pin, take its fatal-signal slot and stack, boot the scheduler, tick
/// until stopped (a heartbeat per tick for the watchdog), parking when idle.
fn shard_main(start: ShardStart) {
    let ShardStart {
        shard,
        spec,
        plan,
        clock,
        outgoing,
        incoming,
        parker,
        shared,
        seed,
        signal_stack,
        io,
        io_handles_max,
    } = start;
    let pinned = plan.pin_current(shard);
    let index = shard.index();
    // Before any isolate code runs; dropped (the slot marked exited) when the loop ends.
    let fatal = Arc::clone(&shared.fatal);
    let slot = fatal.slot(index);
    let _signals = ShardSignals::enter(slot, signal_stack);
    let mut backend = ProdBackend {
        clock,
        random_state: seed | 1,
        dirty: vec![false; outgoing.len()],
        outgoing,
        incoming,
        next_incoming: 0,
        parker,
        shared: Arc::clone(&shared),
        failed: false,
        parks: 0,
        sends_to_quarantined: 0,
        io: IoDriver::new(io, spec.io_in_flight_max, io_handles_max),
    };
    let mut scheduler = match Scheduler::boot(&spec, shard, &mut backend) {
        Ok(scheduler) => scheduler,
        Err(error) => {
            let mut boot = shared.boot.lock().unwrap_or_else(PoisonError::into_inner);
            boot.1.get_or_insert((shard, error));
            shared.booted_changed.notify_all();
            return;
        }
    };
    let (core, pin_failed) = match pinned {
        Ok(core) => (core.map(|core| core.0), false),
        Err(_) => (None, true),
    };
    let publish =
        |scheduler: &Scheduler<ProdBackend>, backend: &ProdBackend, ticks: u64, stopped: bool| {
            let mut report = shared.reports[index].lock().unwrap_or_else(PoisonError::into_inner);
            report.counters = *scheduler.counters();
            report.live_isolates = scheduler.live_isolates();
            report.live_by_type.clear();
            report.live_by_type.extend((0..spec.type_count()).map(|t| scheduler.live_in_type(t)));
            report.core = core;
            report.pin_failed = pin_failed;
            report.ticks = ticks;
            report.parks = backend.parks;
            report.failed = backend.failed;
            report.stopped = stopped;
            report.sends_to_quarantined = backend.sends_to_quarantined;
            report.io = backend.io.report(scheduler.io_buffers_free());
            report.shutting_down = scheduler.is_shutting_down();
            report.shutdown = scheduler.shutdown_report();
        };
    publish(&scheduler, &backend, 0, false);
    {
        let mut boot = shared.boot.lock().unwrap_or_else(PoisonError::into_inner);
        boot.0 += 1;
        shared.booted_changed.notify_all();
    }
    slot.running();
    let mut ticks = 0u64;
    while !backend.stop_requested() {
        if begin_shutdown_if_asked(&shared, &mut scheduler, &mut backend) {
            publish(&scheduler, &backend, ticks, false);
        }
        let report = scheduler.tick(&mut backend);
        ticks += 1;
        slot.beat(ticks);
        if !report.has_work {
            publish(&scheduler, &backend, ticks, false);
            slot.parking(ticks);
            backend.park(report.next_deadline);
            slot.beat(ticks);
        } else if ticks.is_multiple_of(REPORT_EVERY_TICKS) {
            publish(&scheduler, &backend, ticks, false);
        }
    }
    publish(&scheduler, &backend, ticks, true);
}

/// Begins the shard's graceful shutdown if the runtime asked for one (`Runtime::shutdown`)
/// and it has not begun yet; whether it began now. One atomic load per tick.
fn begin_shutdown_if_asked(
    shared: &Shared,
    scheduler: &mut Scheduler<ProdBackend>,
    backend: &mut ProdBackend,
) -> bool {
    let deadline = shared.shutdown_at.load(Ordering::Acquire);
    if deadline == NO_SHUTDOWN || scheduler.is_shutting_down() {
        return false;
    }
    scheduler.begin_shutdown(Timestamp::from_nanos(deadline), backend);
    true
}

/// One shard's world on a thread: the monotonic clock, its rings and its parker.
struct ProdBackend {
    clock: Clock,
    random_state: u64,
    /// Rings to every other shard (`None` at its own index).
    outgoing: Vec<Option<Producer<Message>>>,
    /// Which outgoing rings got messages this tick.
    dirty: Vec<bool>,
    /// Rings from every other shard, then from its injectors.
    incoming: Vec<Consumer<Message>>,
    /// Where the next `receive_remote` starts looking (round robin, for fairness).
    next_incoming: usize,
    parker: Parker,
    shared: Arc<Shared>,
    failed: bool,
    parks: u64,
    /// Sends refused because their shard is quarantined.
    sends_to_quarantined: u64,
    /// Its sockets and files (`prod::io`).
    io: IoDriver,
}

impl Env for ProdBackend {
    fn random_u64(&mut self) -> u64 {
        // xorshift64*: seeded from entropy per shard at boot.
        let mut x = self.random_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random_state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull> {
        // Nothing reads a quarantined shard's rings: refuse, so the core counts the drop
        // (and sends a drop notice if asked) rather than filling the ring.
        if self.shared.fatal.is_quarantined(to.index()) {
            self.sends_to_quarantined += 1;
            return Err(TransportFull);
        }
        let ring =
            self.outgoing.get_mut(to.index()).and_then(Option::as_mut).ok_or(TransportFull)?;
        ring.push(*message).map_err(|_| TransportFull)?;
        self.dirty[to.index()] = true;
        Ok(())
    }

    fn trace(&mut self, _event: &Event) {}
}

impl Backend for ProdBackend {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn tracing(&self) -> bool {
        false
    }

    fn receive_remote(&mut self) -> Option<Message> {
        let count = self.incoming.len();
        for _ in 0..count {
            let index = self.next_incoming;
            self.next_incoming = (index + 1) % count;
            if let Some(message) = self.incoming[index].pop() {
                return Some(message);
            }
            // Drained: hand its slots back to the producer now rather than after dispatch,
            // so a sender blocked on a full ring can refill it during this tick.
            self.incoming[index].release();
        }
        None
    }

    fn flush_remote(&mut self) {
        for (to, dirty) in self.dirty.iter_mut().enumerate() {
            if !*dirty {
                continue;
            }
            *dirty = false;
            if let Some(ring) = self.outgoing[to].as_mut()
                && ring.publish() > 0
            {
                self.shared.unparkers[to].unpark();
            }
        }
        for ring in &mut self.incoming {
            ring.release();
        }
    }

    fn shard_failed(&mut self, _failure: &ShardFailure) {
        self.failed = true;
    }

    fn io_submit(&mut self, submission: IoSubmission) -> Result<(), IoReaped> {
        self.io.submit(submission)
    }

    fn io_cancel(&mut self, token: IoToken) {
        self.io.cancel(token);
    }

    fn io_reap(&mut self) -> Option<IoReaped> {
        self.io.reap()
    }

    fn park(&mut self, deadline: Option<Timestamp>) {
        // Submissions reach the kernel, and what completed is collected, before any wait;
        // then the I/O driver's descriptor wakes the shard like its eventfd does.
        self.io.poll();
        if self.io.has_ready() {
            // Completions to hand over: no park (and no spin, whose budget adapts to what
            // spinning finds, which this is not).
            return;
        }
        let timeout = deadline.map(|deadline| self.clock.until(deadline));
        let (incoming, stop, io) = (&mut self.incoming, &self.shared.stop, &self.io);
        self.parker.park_with(timeout, Some(io.fd()), || {
            stop.load(Ordering::Acquire)
                || io.has_ready()
                || incoming.iter_mut().any(|ring| !ring.is_empty())
        });
        self.parks += 1;
    }

    fn stop_requested(&mut self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }
}
