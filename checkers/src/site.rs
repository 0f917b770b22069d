//! Where an event happened, in a [`Layout`]'s dense numbering: resolved once per event
//! and handed to every checker that looks at the event, so none of them resolves the same
//! shard or slot again.
//!
//! This module resolves places; it checks nothing and keeps no history.

use tina::{Event, Handle};

use crate::Stamp;
use crate::layout::{Layout, slot_of};

/// An event's places in the dense numbering; `None` where the event has no such place or
/// the place is not in the system.
///
/// Each place is kept as a plain number with an out-of-range marker for `None` (one
/// register rather than an `Option`'s two on the per-event path); the accessors give
/// `Option`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    shard: usize,
    slot: usize,
    capacity: u64,
}

/// Marks a place that is `None`. No dense index reaches it: each indexes a vector.
const PLACE_NONE: usize = usize::MAX;

/// Marks a capacity that is `None`: above every `u32`.
const CAPACITY_NONE: u64 = u64::MAX;

impl Default for Site {
    fn default() -> Site {
        Site { shard: PLACE_NONE, slot: PLACE_NONE, capacity: CAPACITY_NONE }
    }
}

/// The place `place`, unless it is the marker.
#[inline(always)]
fn place(place: usize) -> Option<usize> {
    (place != PLACE_NONE).then_some(place)
}

impl Site {
    /// Dense index of the shard the event happened on (the stamp's).
    #[inline(always)]
    pub fn shard(&self) -> Option<usize> {
        place(self.shard)
    }

    /// Dense index of the slot of the event's subject: the mailbox owner of an `Enqueue`,
    /// `Deliver` or `Drop`, the child of a `Spawn`, the incarnation of an `Exit`, the
    /// caller of a `CallStart` or `CallEnd`, the old incarnation of a `Restart`, the
    /// isolate of an I/O event.
    #[inline(always)]
    pub fn slot(&self) -> Option<usize> {
        place(self.slot)
    }

    /// The mailbox capacity of the subject's type, found by its shard and type alone (even
    /// when its slot number is out of range).
    #[inline(always)]
    pub fn capacity(&self) -> Option<u32> {
        u32::try_from(self.capacity).ok()
    }

    /// Resolves `event`, stamped `stamp`, in `layout`.
    #[inline(always)]
    pub fn of(layout: &Layout, stamp: &Stamp, event: &Event) -> Site {
        Site::resolve(layout, stamp, Site::subject(event))
    }

    /// The event's subject, as [`Site::slot`] defines it (`Send` and the events no
    /// checker resolves have none).
    #[inline(always)]
    pub fn subject(event: &Event) -> Option<Handle> {
        match *event {
            Event::Enqueue { to: subject, .. }
            | Event::Deliver { to: subject, .. }
            | Event::Drop { to: subject, .. }
            | Event::Spawn { child: subject, .. }
            | Event::Exit { handle: subject, .. }
            | Event::CallStart { caller: subject, .. }
            | Event::CallEnd { caller: subject, .. }
            | Event::Restart { old: subject, .. }
            | Event::IoSubmit { isolate: subject, .. }
            | Event::IoComplete { isolate: subject, .. }
            | Event::IoStale { isolate: subject, .. }
            | Event::IoTimeout { isolate: subject, .. } => Some(subject),
            _ => None,
        }
    }

    /// Resolves an event stamped `stamp` about `subject` (as [`Site::subject`] gives it) in
    /// `layout`.
    #[inline(always)]
    pub fn resolve(layout: &Layout, stamp: &Stamp, subject: Option<Handle>) -> Site {
        let node = stamp.node;
        let mut site = Site {
            shard: layout.shard_index(node, stamp.shard).unwrap_or(PLACE_NONE),
            ..Site::default()
        };
        if let Some(handle) = subject
            && let Some(shape) = layout.type_shape(node, handle.shard(), handle.type_index())
        {
            site.slot = slot_of(shape, handle).unwrap_or(PLACE_NONE);
            site.capacity = u64::from(shape.capacity);
        }
        site
    }
}
