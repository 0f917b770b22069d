//! Sets of event kinds: what an observer looks at, so the simulator's sink calls it only for
//! those (most scenario goals read a log record or an exit, not every send and delivery).
//!
//! This module names kinds; it checks nothing.

use tina::Event;

/// A set of `tina::Event` kinds, one bit each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventKinds(u32);

impl EventKinds {
    /// No kind.
    pub const NONE: EventKinds = EventKinds(0);
    /// Every kind (what an observer sees unless it says otherwise).
    pub const ALL: EventKinds = EventKinds(u32::MAX);
    /// `Event::Spawn`.
    pub const SPAWN: EventKinds = EventKinds(1 << 0);
    /// `Event::SpawnFailed`.
    pub const SPAWN_FAILED: EventKinds = EventKinds(1 << 1);
    /// `Event::Send`.
    pub const SEND: EventKinds = EventKinds(1 << 2);
    /// `Event::Enqueue`.
    pub const ENQUEUE: EventKinds = EventKinds(1 << 3);
    /// `Event::Deliver`.
    pub const DELIVER: EventKinds = EventKinds(1 << 4);
    /// `Event::Drop`.
    pub const DROP: EventKinds = EventKinds(1 << 5);
    /// `Event::Exit`.
    pub const EXIT: EventKinds = EventKinds(1 << 6);
    /// `Event::Retire`.
    pub const RETIRE: EventKinds = EventKinds(1 << 7);
    /// `Event::TimerSet`.
    pub const TIMER_SET: EventKinds = EventKinds(1 << 8);
    /// `Event::TimerFire`.
    pub const TIMER_FIRE: EventKinds = EventKinds(1 << 9);
    /// `Event::TimerCancel`.
    pub const TIMER_CANCEL: EventKinds = EventKinds(1 << 10);
    /// `Event::CallStart`.
    pub const CALL_START: EventKinds = EventKinds(1 << 11);
    /// `Event::CallEnd`.
    pub const CALL_END: EventKinds = EventKinds(1 << 12);
    /// `Event::IoSubmit`.
    pub const IO_SUBMIT: EventKinds = EventKinds(1 << 13);
    /// `Event::IoComplete`.
    pub const IO_COMPLETE: EventKinds = EventKinds(1 << 14);
    /// `Event::IoStale`.
    pub const IO_STALE: EventKinds = EventKinds(1 << 15);
    /// `Event::Panic`.
    pub const PANIC: EventKinds = EventKinds(1 << 16);
    /// `Event::Restart`.
    pub const RESTART: EventKinds = EventKinds(1 << 17);
    /// `Event::Rebuild`.
    pub const REBUILD: EventKinds = EventKinds(1 << 18);
    /// `Event::Escalate`.
    pub const ESCALATE: EventKinds = EventKinds(1 << 19);
    /// `Event::ShardFailed`.
    pub const SHARD_FAILED: EventKinds = EventKinds(1 << 20);
    /// `Event::Log`.
    pub const LOG: EventKinds = EventKinds(1 << 21);
    /// `Event::IoTimeout`.
    pub const IO_TIMEOUT: EventKinds = EventKinds(1 << 22);
    /// `Event::ShutdownBegin`, `Event::ShutdownDrained` and `Event::ShutdownForced`: the
    /// phases of a shard's graceful shutdown.
    pub const SHUTDOWN: EventKinds = EventKinds(1 << 23);

    /// The kind of `event`, as a one-element set.
    #[inline(always)]
    pub fn of(event: &Event) -> EventKinds {
        match event {
            Event::Spawn { .. } => EventKinds::SPAWN,
            Event::SpawnFailed { .. } => EventKinds::SPAWN_FAILED,
            Event::Send { .. } => EventKinds::SEND,
            Event::Enqueue { .. } => EventKinds::ENQUEUE,
            Event::Deliver { .. } => EventKinds::DELIVER,
            Event::Drop { .. } => EventKinds::DROP,
            Event::Exit { .. } => EventKinds::EXIT,
            Event::Retire { .. } => EventKinds::RETIRE,
            Event::TimerSet { .. } => EventKinds::TIMER_SET,
            Event::TimerFire { .. } => EventKinds::TIMER_FIRE,
            Event::TimerCancel { .. } => EventKinds::TIMER_CANCEL,
            Event::CallStart { .. } => EventKinds::CALL_START,
            Event::CallEnd { .. } => EventKinds::CALL_END,
            Event::IoSubmit { .. } => EventKinds::IO_SUBMIT,
            Event::IoComplete { .. } => EventKinds::IO_COMPLETE,
            Event::IoStale { .. } => EventKinds::IO_STALE,
            Event::IoTimeout { .. } => EventKinds::IO_TIMEOUT,
            Event::Panic { .. } => EventKinds::PANIC,
            Event::Restart { .. } => EventKinds::RESTART,
            Event::Rebuild { .. } => EventKinds::REBUILD,
            Event::Escalate { .. } => EventKinds::ESCALATE,
            Event::ShardFailed => EventKinds::SHARD_FAILED,
            Event::Log { .. } => EventKinds::LOG,
            Event::ShutdownBegin { .. } | Event::ShutdownDrained | Event::ShutdownForced { .. } => {
                EventKinds::SHUTDOWN
            }
        }
    }

    /// Both sets.
    pub const fn union(self, other: EventKinds) -> EventKinds {
        EventKinds(self.0 | other.0)
    }

    /// Whether the sets share a kind.
    #[inline(always)]
    pub const fn intersects(self, other: EventKinds) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitOr for EventKinds {
    type Output = EventKinds;
    fn bitor(self, other: EventKinds) -> EventKinds {
        self.union(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tina::{Handle, Label, Level};

    /// Each kind is its own bit, and a set intersects exactly the kinds it holds.
    #[test]
    fn kinds_are_distinct_bits() {
        let log = Event::Log {
            handle: Handle::NONE,
            level: Level::Info,
            tag: Label::new("x"),
            values: [0; 4],
            count: 0,
        };
        let set = EventKinds::LOG | EventKinds::EXIT;
        assert!(set.intersects(EventKinds::of(&log)));
        assert!(!set.intersects(EventKinds::of(&Event::ShardFailed)));
        assert!(EventKinds::ALL.intersects(EventKinds::of(&Event::ShardFailed)));
        assert!(!EventKinds::NONE.intersects(EventKinds::ALL));
    }
}
