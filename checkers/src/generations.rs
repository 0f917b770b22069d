//! Handle generations: each new incarnation of a slot has a higher generation than the one
//! before, and nothing is enqueued or delivered to a handle whose generation is not the
//! slot's live incarnation (a stale handle).
//!
//! O(1) per event with the slot's current generation and liveness. It does not check that
//! slots are freed (see `pools`).

use tina::{Event, Handle, MessageId, SystemSpec};

use crate::layout::Layout;
use crate::site::Site;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "generations";

/// The generation checker.
#[derive(Debug, Default)]
pub struct Generations {
    layout: Layout,
    state: State,
}

/// The checker's history, resolved through a layout it does not own.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per slot.
    slots: Vec<Incarnation>,
}

/// A slot's current incarnation.
#[derive(Clone, Copy, Debug, Default)]
struct Incarnation {
    /// The highest generation spawned in the slot (0 before the first).
    generation: u32,
    /// Whether that incarnation is alive.
    live: bool,
}

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        State { slots: vec![Incarnation::default(); layout.slot_total()] }
    }

    #[inline(always)]
    pub(crate) fn observe(&mut self, site: &Site, event: &Event) -> Verdict {
        match *event {
            Event::Spawn { child, .. } => {
                let Some(slot) = site.slot() else {
                    return Verdict::Continue;
                };
                let incarnation = &mut self.slots[slot];
                if child.generation() <= incarnation.generation {
                    return violated(
                        NAME,
                        format!(
                            "{child} reuses a generation: the slot already had generation {}",
                            incarnation.generation
                        ),
                    );
                }
                *incarnation = Incarnation { generation: child.generation(), live: true };
            }
            Event::Exit { handle, .. } => {
                if let Some(slot) = site.slot()
                    && self.slots[slot].generation == handle.generation()
                {
                    self.slots[slot].live = false;
                }
            }
            Event::Enqueue { id, to, .. } => return self.reaches(site, to, "enqueued", id),
            Event::Deliver { id, to, .. } => return self.reaches(site, to, "delivered", id),
            _ => {}
        }
        Verdict::Continue
    }

    /// Forgets the slots of `node`, which crashed: its generations start again at 1.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        self.slots[layout.node_slots(node)].fill(Incarnation::default());
    }

    #[inline(always)]
    fn reaches(&self, site: &Site, to: Handle, what: &str, id: MessageId) -> Verdict {
        let Some(slot) = site.slot() else { return Verdict::Continue };
        let incarnation = self.slots[slot];
        if !incarnation.live || incarnation.generation != to.generation() {
            return stale(id, what, to, incarnation.generation);
        }
        Verdict::Continue
    }
}

/// Explains that `id` was `what` to the stale handle `to`. Out of line, as only a violation
/// calls it.
#[cold]
#[inline(never)]
fn stale(id: MessageId, what: &str, to: Handle, generation: u32) -> Verdict {
    violated(
        NAME,
        format!("{id} was {what} to {to}, but the slot's live generation is {generation}"),
    )
}

impl Observer for Generations {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.state = State::new(&self.layout);
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let site = Site::of(&self.layout, stamp, event);
        self.state.observe(&site, event)
    }
}
