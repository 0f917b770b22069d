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
use crate::label::Label;
use crate::limits::LOG_VALUES_MAX;
use crate::message::MessageId;
use crate::payload::Tag;

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
        }
    }
}

/// How an isolate incarnation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum ExitKind {
    /// It returned `Effect::Done`.
    Normal = 0,
    /// It returned `Effect::Crash`, panicked, or returned an effect it may not use.
    Crashed = 1,
    /// Its `init` failed.
    InitFailed = 2,
}

impl ExitKind {
    /// Kebab-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            ExitKind::Normal => "normal",
            ExitKind::Crashed => "crashed",
            ExitKind::InitFailed => "init-failed",
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
}

impl SpawnError {
    /// Kebab-case name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            SpawnError::ArenaFull => "arena-full",
            SpawnError::NotRegistered => "not-registered",
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnError::ArenaFull => "every slot of the isolate type is in use",
            SpawnError::NotRegistered => "the isolate type is not registered in the system spec",
        })
    }
}

impl std::error::Error for SpawnError {}

/// One observable step of a shard. The backend stamps it with time and place.
///
/// Designed to grow: new steps become new variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
        /// The last incarnation the slot held.
        handle: Handle,
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

/// Per-shard counters of every send, drop, exhaustion, stale delivery and exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Send attempts (each has a message id).
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
    /// Slots reserved by spawns (boot included).
    pub spawned: u64,
    /// Spawns refused (no free slot, or an unregistered type).
    pub spawn_failed: u64,
    /// Isolates that returned `Done`.
    pub exits_normal: u64,
    /// Isolates that crashed.
    pub crashes: u64,
    /// `init` calls that failed.
    pub init_failures: u64,
    /// Slots retired at the last generation.
    pub slots_retired: u64,
    /// `ctx.log` records.
    pub logs: u64,
}

impl Counters {
    /// Every dropped message, whatever the reason.
    pub fn drops(&self) -> u64 {
        self.mailbox_full
            + self.pool_exhausted
            + self.stale_handle
            + self.ring_full
            + self.dropped_on_exit
    }

    /// Counts one drop under its reason.
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::MailboxFull => &mut self.mailbox_full,
            DropReason::PoolExhausted => &mut self.pool_exhausted,
            DropReason::StaleHandle => &mut self.stale_handle,
            DropReason::RingFull => &mut self.ring_full,
            DropReason::TargetExited => &mut self.dropped_on_exit,
        };
        *counter += 1;
    }

    /// Name and value of every counter, in a fixed order (for summaries and logs).
    pub fn entries(&self) -> [(&'static str, u64); 16] {
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
            ("spawned", self.spawned),
            ("spawn_failed", self.spawn_failed),
            ("exits_normal", self.exits_normal),
            ("crashes", self.crashes),
            ("init_failures", self.init_failures),
            ("slots_retired", self.slots_retired),
            ("logs", self.logs),
        ]
    }
}
