//! Trace events and per-shard counters.
//!
//! The scheduler reports every observable step to the backend's event sink as an `Event`.
//! Events hold fixed-width fields only (handles, ids, tags, integers, labels), so a canonical
//! binary encoding is a matter of writing the fields in order; the simulator turns them into
//! its replay log, trace hash and checker input, production can drop them. Counters are the
//! cheap, always-on summary of the same steps.
//!
//! This module does not format or store events.

use core::fmt;

use crate::handle::Handle;
use crate::io::IoOpKind;
use crate::label::Label;
use crate::limits::LOG_VALUES_MAX;
use crate::limits::PANIC_TEXT_SIZE;
use crate::message::MessageId;
use crate::payload::Tag;
use crate::timer::TimerId;

/// Severity of a `ctx.log` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// Normal progress.
    Info = 2,
    /// Detail for debugging.
    Debug = 3,
}

impl Level {
    /// Lower-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// Why a message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// The destination mailbox was at capacity.
    MailboxFull = 0,
    /// The shard's message pool had no free envelope.
    PoolExhausted = 1,
    /// The destination handle named no live isolate (wrong generation, freed slot, `NONE`,
    /// or a shard or type that does not exist).
    StaleHandle = 2,
    /// The outbound transport toward the destination shard was full.
    RingFull = 3,
    /// The message was queued when its destination stopped.
    TargetExited = 4,
    /// A reply reached a caller that no longer waits for it (timed out, or answered).
    LateReply = 5,
    /// The message reached a shard that was down (crashed and not restarted yet); the
    /// shard's backend discarded it (`Scheduler::discard_inbound`).
    ShardDown = 6,
}

impl DropReason {
    /// Kebab-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::MailboxFull => "mailbox-full",
            DropReason::PoolExhausted => "pool-exhausted",
            DropReason::StaleHandle => "stale-handle",
            DropReason::RingFull => "ring-full",
            DropReason::TargetExited => "target-exited",
            DropReason::LateReply => "late-reply",
            DropReason::ShardDown => "shard-down",
        }
    }

    pub(crate) fn from_u8(value: u8) -> Option<DropReason> {
        Some(match value {
            0 => DropReason::MailboxFull,
            1 => DropReason::PoolExhausted,
            2 => DropReason::StaleHandle,
            3 => DropReason::RingFull,
            4 => DropReason::TargetExited,
            5 => DropReason::LateReply,
            6 => DropReason::ShardDown,
            _ => return None,
        })
    }
}

/// How an isolate incarnation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum ExitKind {
    /// It returned `Effect::Done`.
    Normal = 0,
    /// It returned `Effect::Crash`, panicked, returned an effect it may not use, or
    /// returned `Effect::Done` and then panicked while its state was dropped.
    Crashed = 1,
    /// Its `init` failed.
    InitFailed = 2,
    /// It was stopped from outside its own code: by its supervisor (a sibling's restart or
    /// an escalation), or by its shard's shutdown, still alive at the drain's deadline
    /// (`Scheduler::begin_shutdown`). No supervisor decides anything about it.
    Shutdown = 3,
    /// Its shard crashed (`Scheduler::crash`): every isolate of the shard ended at once,
    /// and no supervisor decides anything about it (the shard's restart rebuilds the tree).
    ShardCrashed = 4,
}

impl ExitKind {
    /// Kebab-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            ExitKind::Normal => "normal",
            ExitKind::Crashed => "crashed",
            ExitKind::InitFailed => "init-failed",
            ExitKind::Shutdown => "shutdown",
            ExitKind::ShardCrashed => "shard-crashed",
        }
    }
}

/// Why a spawn failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum SpawnError {
    /// Every slot of the type is in use (or retired).
    ArenaFull = 0,
    /// The isolate type is not registered in the shard's `SystemSpec`.
    NotRegistered = 1,
    /// `spawn_child` from an isolate that has no supervision group.
    NotSupervised = 2,
    /// The caller's group already holds its maximum of dynamic children.
    GroupFull = 3,
    /// The shard is shutting down (`Scheduler::begin_shutdown`): no new isolate may start,
    /// so that the drain converges.
    ShuttingDown = 4,
}

impl SpawnError {
    /// Kebab-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            SpawnError::ArenaFull => "arena-full",
            SpawnError::NotRegistered => "not-registered",
            SpawnError::NotSupervised => "not-supervised",
            SpawnError::GroupFull => "group-full",
            SpawnError::ShuttingDown => "shutting-down",
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnError::ArenaFull => "every slot of the isolate type is in use",
            SpawnError::NotRegistered => "the isolate type is not registered in the system spec",
            SpawnError::NotSupervised => "the caller has no supervision group to add a child to",
            SpawnError::GroupFull => "the caller's group holds its maximum of dynamic children",
            SpawnError::ShuttingDown => "the shard is shutting down and starts no new isolate",
        })
    }
}

impl std::error::Error for SpawnError {}

/// How a call ended without a reply. Carried by the `Tag::CALL_TIMEOUT` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum CallFailure {
    /// No reply arrived before the timeout.
    Timeout = 1,
    /// The callee handle was stale.
    StaleHandle = 2,
    /// The callee's mailbox (or the transport toward it) was full.
    MailboxFull = 3,
    /// The message pool had no envelope for the request.
    PoolExhausted = 4,
}

impl CallFailure {
    /// Kebab-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            CallFailure::Timeout => "timeout",
            CallFailure::StaleHandle => "stale-handle",
            CallFailure::MailboxFull => "mailbox-full",
            CallFailure::PoolExhausted => "pool-exhausted",
        }
    }

    pub(crate) fn from_u8(value: u8) -> Option<CallFailure> {
        match value {
            1 => Some(CallFailure::Timeout),
            2 => Some(CallFailure::StaleHandle),
            3 => Some(CallFailure::MailboxFull),
            4 => Some(CallFailure::PoolExhausted),
            _ => None,
        }
    }
}

/// The first bytes of a panic message, kept inline so events stay fixed-width.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PanicText {
    bytes: [u8; PANIC_TEXT_SIZE],
    len: u8,
}

impl PanicText {
    /// No text.
    pub const EMPTY: PanicText = PanicText { bytes: [0; PANIC_TEXT_SIZE], len: 0 };

    /// The first `PANIC_TEXT_SIZE` bytes of `text`, cut at a character boundary.
    pub fn new(text: &str) -> PanicText {
        let mut len = text.len().min(PANIC_TEXT_SIZE);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; PANIC_TEXT_SIZE];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        // len <= PANIC_TEXT_SIZE < 256.
        PanicText { bytes, len: len as u8 }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Built from a `str` cut at a character boundary.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for PanicText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// How a call ended, in the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallOutcome {
    /// The reply was accepted.
    Replied,
    /// It failed: timed out or could not be routed.
    Failed(CallFailure),
}

/// A shard's root group escalated: every isolate of the shard was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardFailure {
    /// The shard.
    pub shard: crate::handle::ShardId,
    /// When, on the backend clock.
    pub at: crate::backend::Timestamp,
}

/// One observable step of a shard. The backend stamps it with time and place.
///
/// Exhaustive on purpose: a new step is a new variant, and every exhaustive `match` over
/// events (the simulator's canonical encoder, its log format) stops compiling until the
/// new kind is handled, so no kind can be hashed or logged blind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `parent` reserved a slot for `child` (`parent` is `NONE` at boot).
    Spawn {
        /// The spawning isolate.
        parent: Handle,
        /// The new isolate.
        child: Handle,
    },
    /// A spawn failed.
    SpawnFailed {
        /// The spawning isolate.
        parent: Handle,
        /// The type asked for (`u8::MAX` if it is not registered).
        type_index: u8,
        /// Why it failed.
        reason: SpawnError,
    },
    /// A send was attempted; exactly one `Enqueue` or `Drop` with the same id follows
    /// (for another shard, the `Enqueue` or `Drop` happens on that shard).
    Send {
        /// The new message's id.
        id: MessageId,
        /// The sender.
        from: Handle,
        /// The destination.
        to: Handle,
        /// The payload tag.
        tag: Tag,
    },
    /// A message entered a mailbox, which then held `mailbox_len` messages.
    Enqueue {
        /// The message.
        id: MessageId,
        /// The mailbox owner.
        to: Handle,
        /// Messages in the mailbox after this one was added.
        mailbox_len: u32,
        /// Whether it is an accepted reply (put first, not counted against the capacity).
        reply: bool,
    },
    /// A message was handed to a handler (`id` is `NONE` for a resume after `Yield`).
    Deliver {
        /// The message.
        id: MessageId,
        /// The isolate running.
        to: Handle,
        /// The message's tag.
        tag: Tag,
    },
    /// A message was dropped.
    Drop {
        /// The message.
        id: MessageId,
        /// Its destination.
        to: Handle,
        /// Why.
        reason: DropReason,
    },
    /// An isolate incarnation ended.
    Exit {
        /// The incarnation.
        handle: Handle,
        /// How.
        kind: ExitKind,
        /// The crash reason (`Label::new("")` for a normal exit).
        reason: Label,
    },
    /// A slot reached the last generation and will never be used again.
    Retire {
        /// The last incarnation the slot held (for a free slot retired by a shard crash,
        /// which bumps every generation, the one it would have given next).
        handle: Handle,
    },
    /// An isolate set a timer due at `deadline_ns` (backend clock).
    TimerSet {
        /// The owner.
        owner: Handle,
        /// The timer.
        timer: TimerId,
        /// When it is due, in nanoseconds, rounded up to the wheel's resolution.
        deadline_ns: u64,
    },
    /// A timer came due and was queued for its owner.
    TimerFire {
        /// The owner.
        owner: Handle,
        /// The timer.
        timer: TimerId,
    },
    /// A pending timer was cancelled (by its owner, or because its owner stopped); it will
    /// never be delivered.
    TimerCancel {
        /// The owner.
        owner: Handle,
        /// The timer.
        timer: TimerId,
    },
    /// An isolate made a call (the request is the `Send` with id `request`).
    CallStart {
        /// The caller.
        caller: Handle,
        /// The callee.
        callee: Handle,
        /// The caller's shard-unique correlation id.
        correlation: u32,
        /// The request's message id.
        request: MessageId,
        /// When the call times out, in nanoseconds.
        deadline_ns: u64,
    },
    /// A call ended: by its reply, or by a failure delivered as `Tag::CALL_TIMEOUT`.
    CallEnd {
        /// The caller.
        caller: Handle,
        /// Its correlation id.
        correlation: u32,
        /// How it ended.
        outcome: CallOutcome,
    },
    /// An isolate submitted an I/O operation.
    IoSubmit {
        /// The isolate.
        isolate: Handle,
        /// Its I/O sequence number.
        sequence: u32,
        /// The operation.
        op: IoOpKind,
    },
    /// An I/O operation completed (or failed before reaching the backend).
    IoComplete {
        /// The isolate.
        isolate: Handle,
        /// Its I/O sequence number.
        sequence: u32,
        /// The operation.
        op: IoOpKind,
        /// Whether it succeeded.
        ok: bool,
    },
    /// An operation submitted with a timeout (`Effect::IoWithin`) did not complete in time,
    /// or a receive (`TcpAccept`, `TcpRecv`, `UdpRecvFrom`) was in flight when the shard's
    /// shutdown began: the shard asked the backend to cancel it. Its completion follows
    /// (`Failed(TimedOut)`, unless it finished first).
    IoTimeout {
        /// The isolate.
        isolate: Handle,
        /// Its I/O sequence number.
        sequence: u32,
    },
    /// A completion arrived for an incarnation that no longer waits for it; it was
    /// discarded.
    IoStale {
        /// The token's isolate handle.
        isolate: Handle,
        /// The token's sequence number.
        sequence: u32,
    },
    /// A handler, an `init` or an isolate state's `Drop` panicked. The panic was contained:
    /// the isolate is torn down (as crashed, unless it was failing its `init` or being shut
    /// down already), and the run goes on.
    Panic {
        /// The isolate.
        handle: Handle,
        /// The first bytes of the panic message.
        text: PanicText,
    },
    /// A supervisor restarted an isolate child: `old` stopped, `new` was spawned in its
    /// place.
    Restart {
        /// The supervising group's index on the shard.
        group: u16,
        /// The incarnation that stopped.
        old: Handle,
        /// The new incarnation.
        new: Handle,
    },
    /// A supervisor restarted a nested group: its static members start again with a fresh
    /// restart history (its dynamic children are gone).
    Rebuild {
        /// The supervising group's index on the shard.
        parent: u16,
        /// The rebuilt group's index.
        group: u16,
    },
    /// A group exceeded its restart intensity (or could not restart a child): its children
    /// were stopped and the failure goes to its parent, or, for the root, to the shard.
    Escalate {
        /// The group's index on the shard.
        group: u16,
        /// True when the restart intensity was exceeded; false when a restart found no slot.
        exceeded: bool,
    },
    /// The root group escalated: the shard has failed and is reported to the backend.
    ShardFailed,
    /// The shard began its graceful shutdown (`Scheduler::begin_shutdown`): each of the
    /// `live` isolates alive gets a `Tag::SHUTDOWN` message at its next wait, receives in
    /// flight are cancelled (each an `IoTimeout`), no new isolate may start and no
    /// supervisor restarts anything. Whatever is alive at `deadline_ns` is torn down.
    ShutdownBegin {
        /// The drain's deadline on the shard's clock, in nanoseconds.
        deadline_ns: u64,
        /// Isolates alive (or spawned, not yet started) when it began.
        live: u32,
    },
    /// Every isolate of the shutting-down shard ended before the deadline: the drain is
    /// finished.
    ShutdownDrained,
    /// The drain's deadline passed with `remaining` isolates alive: each is torn down next
    /// (an `Exit` of kind `Shutdown`), and the shutdown is finished, not drained.
    ShutdownForced {
        /// Isolates still alive at the deadline.
        remaining: u32,
    },
    /// An isolate logged a record.
    Log {
        /// The isolate.
        handle: Handle,
        /// Severity.
        level: Level,
        /// What happened.
        tag: Label,
        /// The integers, unused ones zero.
        values: [u64; LOG_VALUES_MAX],
        /// How many of `values` were given.
        count: u8,
    },
}

/// The empty reason of a normal exit.
pub const NO_REASON: Label = Label::new("");

/// Per-shard counters of every send, drop, exhaustion, stale delivery, exit, timer, call,
/// I/O operation and supervision action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Send attempts (each has a message id), requests and replies included.
    pub sent: u64,
    /// Messages accepted into a mailbox on this shard.
    pub enqueued: u64,
    /// Messages handed to handlers.
    pub delivered: u64,
    /// Handler calls, with or without a message.
    pub dispatched: u64,
    /// Drops because a mailbox was at capacity.
    pub mailbox_full: u64,
    /// Drops because the message pool was empty.
    pub pool_exhausted: u64,
    /// Drops because the destination handle was stale.
    pub stale_handle: u64,
    /// Drops because the outbound transport was full.
    pub ring_full: u64,
    /// Messages still queued when their isolate stopped.
    pub dropped_on_exit: u64,
    /// Replies that arrived after their call ended.
    pub late_replies: u64,
    /// Messages that arrived while the shard was down, discarded.
    pub shard_down: u64,
    /// Drop notices sent: one per message sent with `ctx.send_notify` and dropped (except
    /// where a down or crashing shard drops it). Counted on the shard that dropped it.
    pub drop_notices: u64,
    /// Drop notices that were dropped themselves (their sender gone, its transport or pool
    /// full, its shard down, or queued when it stopped). Each is also counted under its
    /// drop reason, like any message; counted on the shard that dropped the notice.
    pub drop_notices_lost: u64,
    /// Slots reserved by spawns (boot and restarts included).
    pub spawned: u64,
    /// Spawns refused (no free slot, unregistered type, no group, group full).
    pub spawn_failed: u64,
    /// Isolates that returned `Done`.
    pub exits_normal: u64,
    /// Isolates that crashed (returned `Crash` or panicked).
    pub crashes: u64,
    /// `init` calls that failed.
    pub init_failures: u64,
    /// Isolates stopped by their supervisor.
    pub shutdowns: u64,
    /// Isolates torn down because their shard crashed.
    pub shard_crash_exits: u64,
    /// Panics contained in isolates (in `init`, a handler or the state's `Drop`).
    pub panics: u64,
    /// Slots retired at the last generation.
    pub slots_retired: u64,
    /// `ctx.log` records.
    pub logs: u64,
    /// Timers set.
    pub timers_set: u64,
    /// Timers that came due.
    pub timers_fired: u64,
    /// Timers cancelled before delivery.
    pub timers_cancelled: u64,
    /// `timer_set` refused because the pool was empty.
    pub timer_pool_exhausted: u64,
    /// Calls made.
    pub calls: u64,
    /// Replies sent.
    pub replies: u64,
    /// Calls that ended by their reply.
    pub calls_replied: u64,
    /// Calls that timed out.
    pub call_timeouts: u64,
    /// Calls that could not be routed: failed at once (callee on this shard, or the
    /// transport full), or failed by a notice from the callee's shard, which dropped the
    /// request. Counted on the caller's shard.
    pub calls_unroutable: u64,
    /// I/O operations submitted.
    pub io_submitted: u64,
    /// I/O operations completed (failures included).
    pub io_completed: u64,
    /// I/O completions discarded as stale.
    pub io_stale: u64,
    /// Children restarted by a supervisor.
    pub restarts: u64,
    /// Groups that escalated.
    pub escalations: u64,
    /// Root escalations: the shard failed.
    pub shard_failures: u64,
    /// Shard crashes (`Scheduler::crash`).
    pub shard_crashes: u64,
    /// Shard restarts after a crash (`Scheduler::restart`).
    pub shard_restarts: u64,
}

impl Counters {
    /// Every dropped message, whatever the reason.
    pub fn drops(&self) -> u64 {
        self.mailbox_full
            + self.pool_exhausted
            + self.stale_handle
            + self.ring_full
            + self.dropped_on_exit
            + self.late_replies
            + self.shard_down
    }

    /// Counts one drop under its reason.
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::MailboxFull => &mut self.mailbox_full,
            DropReason::PoolExhausted => &mut self.pool_exhausted,
            DropReason::StaleHandle => &mut self.stale_handle,
            DropReason::RingFull => &mut self.ring_full,
            DropReason::TargetExited => &mut self.dropped_on_exit,
            DropReason::LateReply => &mut self.late_replies,
            DropReason::ShardDown => &mut self.shard_down,
        };
        *counter += 1;
    }

    /// Name and value of every counter, in a fixed order (for summaries and logs).
    pub fn entries(&self) -> [(&'static str, u64); 40] {
        [
            ("sent", self.sent),
            ("enqueued", self.enqueued),
            ("delivered", self.delivered),
            ("dispatched", self.dispatched),
            ("mailbox_full", self.mailbox_full),
            ("pool_exhausted", self.pool_exhausted),
            ("stale_handle", self.stale_handle),
            ("ring_full", self.ring_full),
            ("dropped_on_exit", self.dropped_on_exit),
            ("late_replies", self.late_replies),
            ("shard_down", self.shard_down),
            ("drop_notices", self.drop_notices),
            ("drop_notices_lost", self.drop_notices_lost),
            ("spawned", self.spawned),
            ("spawn_failed", self.spawn_failed),
            ("exits_normal", self.exits_normal),
            ("crashes", self.crashes),
            ("init_failures", self.init_failures),
            ("shutdowns", self.shutdowns),
            ("shard_crash_exits", self.shard_crash_exits),
            ("panics", self.panics),
            ("slots_retired", self.slots_retired),
            ("logs", self.logs),
            ("timers_set", self.timers_set),
            ("timers_fired", self.timers_fired),
            ("timers_cancelled", self.timers_cancelled),
            ("timer_pool_exhausted", self.timer_pool_exhausted),
            ("calls", self.calls),
            ("replies", self.replies),
            ("calls_replied", self.calls_replied),
            ("call_timeouts", self.call_timeouts),
            ("calls_unroutable", self.calls_unroutable),
            ("io_submitted", self.io_submitted),
            ("io_completed", self.io_completed),
            ("io_stale", self.io_stale),
            ("restarts", self.restarts),
            ("escalations", self.escalations),
            ("shard_failures", self.shard_failures),
            ("shard_crashes", self.shard_crashes),
            ("shard_restarts", self.shard_restarts),
        ]
    }
}
