//! I/O: every submission completes exactly once, by a completion delivered to its
//! isolate or as a stale completion after the isolate stopped; nothing completes that was
//! not submitted; an isolate has at most one operation outstanding; at the end of a run,
//! the operations outstanding by the trace are exactly those the backends hold (an
//! operation may legitimately wait forever, as an accept with no client does, but never
//! without a backend holding it); a timeout (`Event::IoTimeout`) names an operation still
//! outstanding.
//!
//! O(1) per event: per slot, the outstanding operations (at most the live incarnation's
//! and a stopped incarnation's). It does not check results.

use tina::{Event, Handle, SystemSpec};

use crate::layout::Layout;
use crate::site::Site;
use crate::{EndView, Observer, Stamp, Verdict, violated};

const NAME: &str = "io";

/// The I/O checker.
#[derive(Debug, Default)]
pub struct Io {
    layout: Layout,
    state: State,
}

/// The checker's history, resolved through a layout it does not own.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per slot: outstanding (incarnation, sequence) pairs.
    outstanding: Vec<Vec<(Handle, u32)>>,
}

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        State { outstanding: vec![Vec::new(); layout.slot_total()] }
    }

    #[inline(always)]
    pub(crate) fn observe(&mut self, site: &Site, event: &Event) -> Verdict {
        match *event {
            Event::IoSubmit { isolate, sequence, .. } => {
                let Some(slot) = site.slot() else {
                    return Verdict::Continue;
                };
                let outstanding = &mut self.outstanding[slot];
                if outstanding.iter().any(|&(handle, _)| handle == isolate) {
                    return violated(
                        NAME,
                        format!("{isolate} submitted operation {sequence} with one outstanding"),
                    );
                }
                outstanding.push((isolate, sequence));
                Verdict::Continue
            }
            Event::IoComplete { isolate, sequence, .. } => {
                self.complete(site, isolate, sequence, "completed")
            }
            Event::IoStale { isolate, sequence } => {
                self.complete(site, isolate, sequence, "completed stale")
            }
            Event::IoTimeout { isolate, sequence } => {
                // A timeout cancels an operation still outstanding; its completion follows.
                let Some(slot) = site.slot() else { return Verdict::Continue };
                if self.outstanding[slot].contains(&(isolate, sequence)) {
                    Verdict::Continue
                } else {
                    violated(
                        NAME,
                        format!(
                            "{isolate} timed out operation {sequence}, which is not outstanding"
                        ),
                    )
                }
            }
            _ => Verdict::Continue,
        }
    }

    /// Forgets the operations of `node`, which crashed.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        for outstanding in &mut self.outstanding[layout.node_slots(node)] {
            outstanding.clear();
        }
    }

    fn complete(&mut self, site: &Site, isolate: Handle, sequence: u32, what: &str) -> Verdict {
        let Some(slot) = site.slot() else { return Verdict::Continue };
        let outstanding = &mut self.outstanding[slot];
        match outstanding.iter().position(|&entry| entry == (isolate, sequence)) {
            Some(at) => {
                outstanding.swap_remove(at);
                Verdict::Continue
            }
            None => violated(
                NAME,
                format!("operation {sequence} of {isolate} {what} but was not outstanding"),
            ),
        }
    }

    /// Every operation outstanding by the trace must be held by its shard's backend, and
    /// the other way round.
    pub(crate) fn finish(&self, layout: &Layout, view: &EndView) -> Verdict {
        let mut traced = 0usize;
        for node in 0..layout.node_total() {
            // Node ids are u16.
            let node = node as u16;
            for &(isolate, sequence) in self.outstanding[layout.node_slots(node)].iter().flatten() {
                traced += 1;
                if view.io.binary_search(&(node, isolate, sequence)).is_err() {
                    return violated(
                        NAME,
                        format!(
                            "operation {sequence} of {isolate} is outstanding by the trace, but no backend holds it"
                        ),
                    );
                }
            }
        }
        if traced != view.io.len() {
            return violated(
                NAME,
                format!(
                    "the backends hold {} operations, the trace accounts for {traced}",
                    view.io.len()
                ),
            );
        }
        Verdict::Continue
    }
}

impl Observer for Io {
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
