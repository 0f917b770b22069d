//! Handle generations: each new incarnation of a slot has a higher generation than the one
//! before, and nothing is enqueued or delivered to a handle whose generation is not the
//! slot's live incarnation (a stale handle).
//!
//! O(1) per event with the slot's current generation and liveness. It does not check that
//! slots are freed (see `pools`).

use tina::{Event, Handle, MessageId, SystemSpec};

use crate::layout::Layout;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "generations";

/// The generation checker.
#[derive(Debug, Default)]
pub struct Generations {
    layout: Layout,
    generation: Vec<u32>,
    live: Vec<bool>,
}

impl Generations {
    fn reaches(&self, node: u16, to: Handle, what: &str, id: MessageId) -> Verdict {
        let Some(slot) = self.layout.slot_index(node, to) else { return Verdict::Continue };
        if !self.live[slot] || self.generation[slot] != to.generation() {
            return violated(
                NAME,
                format!(
                    "{id} was {what} to {to}, but the slot's live generation is {}",
                    self.generation[slot]
                ),
            );
        }
        Verdict::Continue
    }
}

impl Observer for Generations {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.generation = vec![0; self.layout.slot_total()];
        self.live = vec![false; self.layout.slot_total()];
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Spawn { child, .. } => {
                let Some(slot) = self.layout.slot_index(stamp.node, child) else {
                    return Verdict::Continue;
                };
                if child.generation() <= self.generation[slot] {
                    return violated(
                        NAME,
                        format!(
                            "{child} reuses a generation: the slot already had generation {}",
                            self.generation[slot]
                        ),
                    );
                }
                self.generation[slot] = child.generation();
                self.live[slot] = true;
            }
            Event::Exit { handle, .. } => {
                if let Some(slot) = self.layout.slot_index(stamp.node, handle)
                    && self.generation[slot] == handle.generation()
                {
                    self.live[slot] = false;
                }
            }
            Event::Enqueue { id, to, .. } => return self.reaches(stamp.node, to, "enqueued", id),
            Event::Deliver { id, to, .. } => return self.reaches(stamp.node, to, "delivered", id),
            _ => {}
        }
        Verdict::Continue
    }
}
