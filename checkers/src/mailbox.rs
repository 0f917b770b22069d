//! Mailbox occupancy: a mailbox never holds more messages than its type's capacity. An
//! accepted reply is not counted against the capacity (it goes first), so with one the
//! mailbox may hold capacity + 1.
//!
//! O(1) per event from the `Enqueue` event's own count; it does not check that the count
//! itself is right (the pools checker conserves envelopes).

use tina::{Event, Handle, SystemSpec};

use crate::layout::Layout;
use crate::site::Site;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "mailbox";

/// The occupancy checker.
#[derive(Debug, Default)]
pub struct Occupancy {
    layout: Layout,
}

/// Checks one event; the checker keeps no history, only the layout `site` came from.
#[inline(always)]
pub(crate) fn observe(site: &Site, event: &Event) -> Verdict {
    let Event::Enqueue { to, mailbox_len, reply, .. } = *event else {
        return Verdict::Continue;
    };
    let Some(capacity) = site.capacity() else {
        return Verdict::Continue;
    };
    // In `u64`, where adding the reply cannot overflow.
    let allowed = u64::from(capacity) + u64::from(reply);
    if u64::from(mailbox_len) > allowed {
        return overflowed(to, mailbox_len, capacity);
    }
    Verdict::Continue
}

/// Explains that the mailbox of `to` holds `mailbox_len` messages, above `capacity`. Out of
/// line, as only a violation calls it.
#[cold]
#[inline(never)]
fn overflowed(to: Handle, mailbox_len: u32, capacity: u32) -> Verdict {
    violated(
        NAME,
        format!("the mailbox of {to} holds {mailbox_len} messages; its capacity is {capacity}"),
    )
}

impl Observer for Occupancy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        observe(&Site::of(&self.layout, stamp, event), event)
    }
}
