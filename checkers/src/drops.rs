//! No drops: for a protocol that assumes no shedding, any dropped message is a correctness
//! failure, named by the drop's event (which message, to whom, why).
//!
//! Not structural: tina sheds load by design (a full mailbox drops, counted), so most
//! systems must tolerate drops; this checker is switched on by the user (`sim
//! --fail-on-drop`, `Simulation::fail_on_drop`) when their protocol promises none. O(1) per
//! event; it looks at `Drop` events only.

use tina::Event;

use crate::{EventKinds, Observer, Stamp, Verdict, violated};

const NAME: &str = "drops";

/// Fails the run at the first dropped message.
#[derive(Debug, Default)]
pub struct NoDrops;

impl Observer for NoDrops {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::DROP
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Drop { id, to, reason } => violated(
                NAME,
                format!(
                    "message {id} to {to} was dropped on shard {} ({}), and this run allows no drop",
                    stamp.shard,
                    reason.name()
                ),
            ),
            _ => Verdict::Continue,
        }
    }
}
