//! The `Backend` trait: the only way out of the core.
//!
//! A backend gives a shard its clock, its randomness, its cross-shard transport, its I/O
//! (next: submission and completion), a way to park until there is work, a sink for
//! trace events, its fault-injection points (`buggify`) and the runtime's shard recovery
//! (`revive_shard`). The simulator implements it with virtual time and a seeded world; the
//! production runtime with real threads, rings and io_uring; tests with a manual clock.
//!
//! The backend is passed into every `Scheduler::tick` instead of being stored in the
//! scheduler, so one simulated world can drive many shards without `Rc<RefCell<_>>`.
//! `Env` is the object-safe part a handler's `Ctx` reaches through `&mut dyn Env`, which
//! keeps `Isolate` and `Ctx` free of the backend type.

use core::fmt;
use core::time::Duration;

use crate::handle::{Handle, ShardId};
use crate::io::{IoError, IoReaped, IoResult, IoSubmission, IoToken};
use crate::label::Label;
use crate::message::Message;
use crate::trace::{Event, ShardFailure};

/// A point on a backend's monotonic clock, in nanoseconds since the backend's epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `nanos` after the epoch.
    pub const fn from_nanos(nanos: u64) -> Timestamp {
        Timestamp(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the end of time (about 584 years).
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(nanos))
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0)
    }
}

/// The outbound transport toward a shard has no free slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportFull;

/// What a handler's `Ctx` may ask of the backend. Object-safe on purpose.
pub trait Env {
    /// A random word: a seeded stream in simulation, entropy-seeded in production.
    fn random_u64(&mut self) -> u64;

    /// Reserves a slot in the outbound transport toward `to` and copies `message` into it.
    /// The message becomes visible to `to` no earlier than the next `flush_remote`.
    fn send_remote(&mut self, to: ShardId, message: &Message) -> Result<(), TransportFull>;

    /// Receives one trace event. Called only while `Backend::tracing` returns true.
    fn trace(&mut self, event: &Event);

    /// Whether the fault-injection point `site` fires now (`Ctx::buggify`). The default,
    /// and every production backend, answers `false`: a buggify point costs one call and
    /// changes nothing. The simulator decides per run which sites are active and per call
    /// whether an active one fires, drawing both from its seed.
    fn buggify(&mut self, site: Label) -> bool {
        let _ = site;
        false
    }

    /// Asks the runtime to bring `shard` back if it is quarantined (its restarts exceeded
    /// their budget and it stays down); a request for a shard that is not quarantined does
    /// nothing (`Ctx::revive_shard`). Recovering shards is the runtime's business, not the
    /// scheduler's: the default ignores the request.
    fn revive_shard(&mut self, shard: ShardId) {
        let _ = shard;
    }
}

/// Everything a shard needs from the world around it.
pub trait Backend: Env {
    /// The current time. The scheduler reads it once at the start of each tick.
    fn now(&self) -> Timestamp;

    /// Whether `trace` wants events. Read once per tick; when false, the core does not
    /// build events at all.
    fn tracing(&self) -> bool;

    /// Whether `Env::buggify` may answer true. Read once per tick; when false, `ctx.buggify`
    /// answers `false` without calling the backend. The default (production) is false.
    fn buggify_on(&self) -> bool {
        false
    }

    /// Takes the next envelope that arrived from another shard, in arrival order.
    fn receive_remote(&mut self) -> Option<Message>;

    /// Publishes what `send_remote` reserved during this tick (one release per ring in
    /// production; stamping with the tick's end time in simulation).
    fn flush_remote(&mut self);

    /// Starts an I/O operation. The submission carries the buffers lent to it (data to send,
    /// a path, where to receive): the operation owns them until the backend hands them back
    /// with its completion (`IoSubmission::complete`), and the shard does not touch them
    /// meanwhile. An `Err` is the operation's completion at once (refused, with the loans
    /// back). The default supports no I/O.
    fn io_submit(&mut self, submission: IoSubmission) -> Result<(), IoReaped> {
        Err(submission.complete(IoResult::Failed(IoError::Unsupported), &[]))
    }

    /// Asks that the operation `token` complete soon (its timeout passed): if it has not
    /// completed yet, it completes with `IoResult::Failed(IoError::TimedOut)`, through
    /// `io_reap` as usual (with its loans; a kernel backend waits for the kernel to let go
    /// of them, as io_uring's async cancel does). A token that names no operation pending
    /// (it completed meanwhile) is ignored. The default supports no I/O, so has nothing to
    /// cancel.
    fn io_cancel(&mut self, token: IoToken) {
        let _ = token;
    }

    /// Takes the next completed operation, with its submission's loans. The default
    /// supports no I/O.
    fn io_reap(&mut self) -> Option<IoReaped> {
        None
    }

    /// Whether the `init` of `isolate`, about to run, fails instead (the simulator's
    /// init-failure fault). When true, `init` does not run: the isolate stops with
    /// `ExitKind::InitFailed` and reason `crash::INJECTED_INIT_FAILURE`, exactly as if its
    /// `init` had failed, and its supervisor decides. Asked once per `init`, in the order
    /// inits run. Production backends keep the default, which never fails one.
    fn fail_init(&mut self, isolate: Handle) -> bool {
        let _ = isolate;
        false
    }

    /// The shard's root supervision group escalated: every isolate of the shard was
    /// stopped. Recovering the shard is the backend's decision.
    fn shard_failed(&mut self, failure: &ShardFailure);

    /// Blocks until work may have arrived or `deadline` passes. Called by `Scheduler::run`
    /// when a tick left nothing runnable. A simulated backend returns at once.
    fn park(&mut self, deadline: Option<Timestamp>);

    /// Whether `Scheduler::run` should return.
    fn stop_requested(&mut self) -> bool;
}
