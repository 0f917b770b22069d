//! Mailbox occupancy: a mailbox never holds more messages than its type's capacity. An
//! accepted reply is not counted against the capacity (it goes first), so with one the
//! mailbox may hold capacity + 1.
//!
//! O(1) per event from the `Enqueue` event's own count; it does not check that the count
//! itself is right (the pools checker conserves envelopes).

use tina::{Event, SystemSpec};

use crate::layout::Layout;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "mailbox";

/// The occupancy checker.
#[derive(Debug, Default)]
pub struct Occupancy {
    layout: Layout,
}

impl Observer for Occupancy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let Event::Enqueue { to, mailbox_len, reply, .. } = *event else {
            return Verdict::Continue;
        };
        let Some(shape) = self.layout.shape(stamp.node, to.shard()) else {
            return Verdict::Continue;
        };
        let Some(&capacity) = shape.capacities.get(usize::from(to.type_index())) else {
            return Verdict::Continue;
        };
        let allowed = capacity + u32::from(reply);
        if mailbox_len > allowed {
            return violated(
                NAME,
                format!(
                    "the mailbox of {to} holds {mailbox_len} messages; its capacity is {capacity}"
                ),
            );
        }
        Verdict::Continue
    }
}
