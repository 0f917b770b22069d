//! Message accounting: every send is enqueued or dropped exactly once, every enqueued
//! message is delivered or dropped exactly once, nothing is enqueued or delivered that was
//! not sent, and at quiescence nothing sent is still unaccounted for (a lost message).
//!
//! Messages are matched by id: per origin shard, sequence numbers are consecutive, so each
//! origin keeps a window of states from its oldest unfinished message; finished messages
//! fall off the front (amortised O(1) per event). It does not check order (see `fifo`)
//! or capacities (see `mailbox`), and ignores messages injected from outside the system.

use std::collections::VecDeque;

use tina::{Event, MessageId, ShardId, SystemSpec};

use crate::layout::Layout;
use crate::{EndView, Observer, Stamp, Verdict, violated};

const SENT: u8 = 1;
const ENQUEUED: u8 = 2;
const FINISHED: u8 = 3;

/// Per origin shard: the window of message states.
#[derive(Clone, Debug, Default)]
struct Origin {
    /// Sequence number of `states[0]`.
    base: u64,
    states: VecDeque<u8>,
}

/// The message accounting checker.
#[derive(Debug, Default)]
pub struct Accounting {
    layout: Layout,
    origins: Vec<Origin>,
}

const NAME: &str = "accounting";

impl Accounting {
    fn origin(&mut self, node: u16, id: MessageId) -> Option<&mut Origin> {
        if id == MessageId::NONE || id.origin() == ShardId::EXTERNAL {
            return None;
        }
        let index = self.layout.shard_index(node, id.origin())?;
        self.origins.get_mut(index)
    }

    /// Moves message `id` from one of `from` to `to`; explains a violation otherwise.
    fn advance(&mut self, node: u16, id: MessageId, from: &[u8], to: u8, what: &str) -> Verdict {
        let Some(origin) = self.origin(node, id) else { return Verdict::Continue };
        let sequence = id.sequence();
        let state =
            sequence.checked_sub(origin.base).and_then(|at| origin.states.get_mut(at as usize));
        match state {
            Some(state) if from.contains(state) => {
                *state = to;
                // Bounded by the window.
                while origin.states.front() == Some(&FINISHED) {
                    origin.states.pop_front();
                    origin.base += 1;
                }
                Verdict::Continue
            }
            Some(&mut ENQUEUED) if to == ENQUEUED => {
                violated(NAME, format!("message {id} was {what} twice"))
            }
            Some(&mut FINISHED) => {
                violated(NAME, format!("message {id} was {what} after it was delivered or dropped"))
            }
            Some(_) => violated(NAME, format!("message {id} was {what} out of turn")),
            None if sequence < origin.base => {
                violated(NAME, format!("message {id} was {what} after it was delivered or dropped"))
            }
            None => violated(NAME, format!("message {id} was {what} but never sent")),
        }
    }
}

impl Observer for Accounting {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.origins = vec![Origin { base: 1, states: VecDeque::new() }; self.layout.shard_total()];
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Send { id, .. } => {
                if id.origin() != stamp.shard {
                    return violated(
                        NAME,
                        format!("message {id} was sent from shard {}", stamp.shard),
                    );
                }
                let Some(origin) = self.origin(stamp.node, id) else { return Verdict::Continue };
                let expected = origin.base + origin.states.len() as u64;
                if id.sequence() != expected {
                    return violated(
                        NAME,
                        format!("message {id} was sent out of sequence (expected {expected})"),
                    );
                }
                origin.states.push_back(SENT);
                Verdict::Continue
            }
            Event::Enqueue { id, .. } => {
                self.advance(stamp.node, id, &[SENT], ENQUEUED, "enqueued")
            }
            Event::Drop { id, .. } => {
                self.advance(stamp.node, id, &[SENT, ENQUEUED], FINISHED, "dropped")
            }
            Event::Deliver { id, .. } => {
                self.advance(stamp.node, id, &[ENQUEUED], FINISHED, "delivered")
            }
            _ => Verdict::Continue,
        }
    }

    fn finish(&mut self, view: &EndView) -> Verdict {
        if !view.quiescent {
            return Verdict::Continue;
        }
        for origin in &self.origins {
            if let Some(at) = origin.states.iter().position(|&state| state == SENT) {
                return violated(
                    NAME,
                    format!(
                        "a message (sequence {}) was sent and never enqueued nor dropped",
                        origin.base + at as u64
                    ),
                );
            }
        }
        Verdict::Continue
    }
}
