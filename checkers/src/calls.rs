//! Calls: every call ends exactly once, by its reply or by a failure (timeout or routing),
//! never both; an isolate has at most one call in progress; no reply is accepted for a
//! caller whose call already ended (a reply after its timeout).
//!
//! O(1) per event: per slot, the correlation of the call in progress. It does not check
//! that calls end at all (the run's goal notices a caller left waiting).

use tina::{Event, Handle, SystemSpec};

use crate::layout::Layout;
use crate::site::Site;
use crate::{EndView, Observer, Stamp, Verdict, violated};

const NAME: &str = "calls";

/// The call checker.
#[derive(Debug, Default)]
pub struct Calls {
    layout: Layout,
    state: State,
}

/// The checker's history, resolved through a layout it does not own.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per slot.
    slots: Vec<Call>,
}

/// A slot's last call.
#[derive(Clone, Copy, Debug, Default)]
struct Call {
    /// The correlation of the call in progress, or 0.
    pending: u32,
    /// The incarnation that made it.
    caller: Handle,
}

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        State { slots: vec![Call { pending: 0, caller: Handle::NONE }; layout.slot_total()] }
    }

    #[inline(always)]
    pub(crate) fn observe(&mut self, site: &Site, event: &Event) -> Verdict {
        match *event {
            Event::CallStart { caller, correlation, .. } => {
                let Some(slot) = site.slot() else {
                    return Verdict::Continue;
                };
                let call = &mut self.slots[slot];
                if call.pending != 0 && call.caller == caller {
                    return violated(
                        NAME,
                        format!(
                            "{caller} started call {correlation} with call {} in progress",
                            call.pending
                        ),
                    );
                }
                *call = Call { pending: correlation, caller };
            }
            Event::CallEnd { caller, correlation, .. } => {
                let Some(slot) = site.slot() else {
                    return Verdict::Continue;
                };
                let call = &mut self.slots[slot];
                if call.pending != correlation || call.caller != caller {
                    return violated(
                        NAME,
                        format!("call {correlation} of {caller} ended twice or was never started"),
                    );
                }
                call.pending = 0;
            }
            Event::Enqueue { id, to, reply: true, .. } => {
                let Some(slot) = site.slot() else {
                    return Verdict::Continue;
                };
                let call = self.slots[slot];
                if call.pending == 0 || call.caller != to {
                    return violated(
                        NAME,
                        format!("reply {id} was accepted by {to}, whose call had already ended"),
                    );
                }
            }
            Event::Exit { handle, .. } => {
                // A caller that stops abandons its call; the core ends nothing for it.
                if let Some(slot) = site.slot()
                    && self.slots[slot].caller == handle
                {
                    self.slots[slot].pending = 0;
                }
            }
            _ => {}
        }
        Verdict::Continue
    }

    /// Forgets the calls of `node`, which crashed.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        self.slots[layout.node_slots(node)].fill(Call::default());
    }

    /// Every call in progress by the trace must be in progress in the shards, and the
    /// other way round: a call the core forgot, or one it kept that the trace ended, is a
    /// call that can never end properly.
    pub(crate) fn finish(&self, layout: &Layout, view: &EndView) -> Verdict {
        let mut traced = 0usize;
        for node in 0..layout.node_total() {
            // Node ids are u16.
            let node = node as u16;
            for call in &self.slots[layout.node_slots(node)] {
                if call.pending == 0 {
                    continue;
                }
                traced += 1;
                if view.calls.binary_search(&(node, call.caller, call.pending)).is_err() {
                    return violated(
                        NAME,
                        format!(
                            "call {} of {} is in progress by the trace, but its shard holds no such call",
                            call.pending, call.caller
                        ),
                    );
                }
            }
        }
        if traced != view.calls.len() {
            return violated(
                NAME,
                format!(
                    "the shards hold {} calls in progress, the trace accounts for {traced}",
                    view.calls.len()
                ),
            );
        }
        Verdict::Continue
    }
}

impl Observer for Calls {
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

    fn finish(&mut self, view: &EndView) -> Verdict {
        self.state.finish(&self.layout, view)
    }
}
