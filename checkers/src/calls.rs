//! Calls: every call ends exactly once, by its reply or by a failure (timeout or routing),
//! never both; an isolate has at most one call in progress; no reply is accepted for a
//! caller whose call already ended (a reply after its timeout).
//!
//! O(1) per event: per slot, the correlation of the call in progress. It does not check
//! that calls end at all (the run's goal notices a caller left waiting).

use tina::{Event, Handle, SystemSpec};

use crate::layout::Layout;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "calls";

/// The call checker.
#[derive(Debug, Default)]
pub struct Calls {
    layout: Layout,
    /// Per slot: the correlation of the call in progress, or 0.
    pending: Vec<u32>,
    /// Per slot: the incarnation that made it.
    caller: Vec<Handle>,
}

impl Observer for Calls {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.pending = vec![0; self.layout.slot_total()];
        self.caller = vec![Handle::NONE; self.layout.slot_total()];
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::CallStart { caller, correlation, .. } => {
                let Some(slot) = self.layout.slot_index(stamp.node, caller) else {
                    return Verdict::Continue;
                };
                if self.pending[slot] != 0 && self.caller[slot] == caller {
                    return violated(
                        NAME,
                        format!(
                            "{caller} started call {correlation} with call {} in progress",
                            self.pending[slot]
                        ),
                    );
                }
                self.pending[slot] = correlation;
                self.caller[slot] = caller;
            }
            Event::CallEnd { caller, correlation, .. } => {
                let Some(slot) = self.layout.slot_index(stamp.node, caller) else {
                    return Verdict::Continue;
                };
                if self.pending[slot] != correlation || self.caller[slot] != caller {
                    return violated(
                        NAME,
                        format!("call {correlation} of {caller} ended twice or was never started"),
                    );
                }
                self.pending[slot] = 0;
            }
            Event::Enqueue { id, to, reply: true, .. } => {
                let Some(slot) = self.layout.slot_index(stamp.node, to) else {
                    return Verdict::Continue;
                };
                if self.pending[slot] == 0 || self.caller[slot] != to {
                    return violated(
                        NAME,
                        format!("reply {id} was accepted by {to}, whose call had already ended"),
                    );
                }
            }
            Event::Exit { handle, .. } => {
                // A caller that stops abandons its call; the core ends nothing for it.
                if let Some(slot) = self.layout.slot_index(stamp.node, handle)
                    && self.caller[slot] == handle
                {
                    self.pending[slot] = 0;
                }
            }
            _ => {}
        }
        Verdict::Continue
    }
}
