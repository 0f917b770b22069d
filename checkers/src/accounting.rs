//! Message accounting: every send is enqueued or dropped exactly once, every enqueued
//! message is delivered or dropped exactly once, nothing is enqueued or delivered that was
//! not sent, and at quiescence nothing sent is still unaccounted for (a lost message).
//!
//! Messages are matched by id: per origin shard, sequence numbers are consecutive, so each
//! origin keeps a window of states from its oldest unfinished message; finished messages
//! fall off the front (amortised O(1) per event). It does not check order (see `fifo`)
//! or capacities (see `mailbox`), and ignores messages injected from outside the system.

use tina::{Event, MessageId, ShardId, SystemSpec};

use crate::layout::{Layout, SHARD_IDS_PER_NODE};
use crate::ring::Ring;
use crate::{EndView, Observer, Stamp, Verdict, violated};

// A message's states are single bits, so "one of these states" is a mask.
const SENT: u8 = 1 << 0;
const ENQUEUED: u8 = 1 << 1;
const FINISHED: u8 = 1 << 2;

/// The message accounting checker.
#[derive(Debug, Default)]
pub struct Accounting {
    state: State,
}

/// The checker's history. Only this checker needs a message's origin shard, so it finds
/// its window from the id alone, with no layout.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per node, per origin shard id (as the id carries it, so no lookup is needed): the
    /// states of its messages from the oldest unfinished one, each at its sequence number
    /// (the first is 1); `None` for ids that name no shard (messages from them are
    /// ignored).
    origins: Vec<Option<Ring<u8>>>,
}

const NAME: &str = "accounting";

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        let origins = (0..layout.node_total() * SHARD_IDS_PER_NODE)
            .map(|at| {
                let (node, shard) =
                    (at / SHARD_IDS_PER_NODE, ShardId((at % SHARD_IDS_PER_NODE) as u8));
                let node = u16::try_from(node).expect("node ids are u16");
                layout.shard_index(node, shard).map(|_| Ring::starting_at(1))
            })
            .collect();
        State { origins }
    }

    #[inline(always)]
    pub(crate) fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Send { id, .. } => {
                if id.origin() != stamp.shard {
                    return sent_elsewhere(id, stamp.shard);
                }
                let Some(origin) = self.origin(stamp, id) else {
                    return Verdict::Continue;
                };
                let expected = origin.end();
                if id.sequence() != expected {
                    return out_of_sequence(id, expected);
                }
                origin.push_back(SENT);
                Verdict::Continue
            }
            Event::Enqueue { id, .. } => self.advance(stamp, id, SENT, ENQUEUED, "enqueued"),
            Event::Drop { id, .. } => self.advance(stamp, id, SENT | ENQUEUED, FINISHED, "dropped"),
            Event::Deliver { id, .. } => self.advance(stamp, id, ENQUEUED, FINISHED, "delivered"),
            _ => Verdict::Continue,
        }
    }

    /// The window of the origin shard of message `id`, for messages sent inside the
    /// system.
    #[inline(always)]
    fn origin(&mut self, stamp: &Stamp, id: MessageId) -> Option<&mut Ring<u8>> {
        if id == MessageId::NONE {
            return None;
        }
        // `ShardId::EXTERNAL` names no shard, so it has no window either.
        let at = usize::from(stamp.node) * SHARD_IDS_PER_NODE + id.origin().index();
        self.origins.get_mut(at)?.as_mut()
    }

    /// Moves message `id` from one of the states in the mask `from` to `to`; explains a
    /// violation otherwise.
    #[inline(always)]
    fn advance(&mut self, stamp: &Stamp, id: MessageId, from: u8, to: u8, what: &str) -> Verdict {
        let Some(origin) = self.origin(stamp, id) else { return Verdict::Continue };
        let sequence = id.sequence();
        match origin.get_mut(sequence) {
            Some(state) if *state & from != 0 => {
                *state = to;
                // The front of a window is never finished: only finishing the front can
                // make finished messages fall off.
                if to == FINISHED && sequence == origin.start() {
                    origin.pop_front_while(|state| state == FINISHED);
                }
                debug_assert!(origin.front() != Some(&FINISHED));
                Verdict::Continue
            }
            state => {
                let state = state.copied();
                refused(id, what, to, state, sequence < origin.start())
            }
        }
    }

    /// Forgets every message of `node`, which crashed: its shards boot again and number
    /// their messages from 1.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        let start = usize::from(node) * SHARD_IDS_PER_NODE;
        let Some(origins) = self.origins.get_mut(start..start + SHARD_IDS_PER_NODE) else {
            return;
        };
        for (shard, origin) in origins.iter_mut().enumerate() {
            // At most 256 shard ids per node.
            if layout.shard_index(node, ShardId(shard as u8)).is_some() {
                *origin = Some(Ring::starting_at(1));
            }
        }
    }

    /// Every message not yet delivered or dropped must still be under way: a sent one in
    /// transit to its shard, an enqueued one in its mailbox. Anything else was lost, whether
    /// the run went quiet, reached its goal or hit a limit.
    pub(crate) fn finish(&self, view: &EndView) -> Verdict {
        for (at, origin) in self.origins.iter().enumerate() {
            let Some(origin) = origin else { continue };
            // Node ids are u16, so the index divided by the table width fits.
            let node = (at / SHARD_IDS_PER_NODE) as u16;
            let shard = ShardId((at % SHARD_IDS_PER_NODE) as u8);
            // Bounded by the window, which holds only unfinished messages and those after
            // them.
            for sequence in origin.start()..origin.end() {
                let id = MessageId::from_raw((u64::from(shard.0) << 56) | sequence);
                match origin.get(sequence).copied() {
                    Some(SENT) if !view.is_in_transit(node, id) => {
                        return violated(
                            NAME,
                            format!(
                                "message {id} of node {node} was sent and is neither enqueued, dropped nor in transit: lost"
                            ),
                        );
                    }
                    Some(ENQUEUED) if !view.is_queued(node, id) => {
                        return violated(
                            NAME,
                            format!(
                                "message {id} of node {node} was enqueued and is neither delivered, dropped nor in its mailbox: lost"
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
        Verdict::Continue
    }
}

/// Explains that message `id` was sent from `shard`, not its origin. Out of line, as only a
/// violation calls it.
#[cold]
#[inline(never)]
fn sent_elsewhere(id: MessageId, shard: ShardId) -> Verdict {
    violated(NAME, format!("message {id} was sent from shard {shard}"))
}

/// Explains that message `id` was sent when sequence `expected` was due. Out of line, as
/// only a violation calls it.
#[cold]
#[inline(never)]
fn out_of_sequence(id: MessageId, expected: u64) -> Verdict {
    violated(NAME, format!("message {id} was sent out of sequence (expected {expected})"))
}

/// Explains why message `id` could not be `what` (moved to state `to`): `state` is its
/// state in the window, if it is there, and `before` says whether it is before the window.
/// Out of line, as only a violation calls it.
#[cold]
#[inline(never)]
fn refused(id: MessageId, what: &str, to: u8, state: Option<u8>, before: bool) -> Verdict {
    match state {
        Some(ENQUEUED) if to == ENQUEUED => {
            violated(NAME, format!("message {id} was {what} twice"))
        }
        Some(FINISHED) => {
            violated(NAME, format!("message {id} was {what} after it was delivered or dropped"))
        }
        Some(_) => violated(NAME, format!("message {id} was {what} out of turn")),
        None if before => {
            violated(NAME, format!("message {id} was {what} after it was delivered or dropped"))
        }
        None => violated(NAME, format!("message {id} was {what} but never sent")),
    }
}

impl Observer for Accounting {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.state = State::new(&Layout::new(nodes));
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        self.state.observe(stamp, event)
    }

    fn finish(&mut self, view: &EndView) -> Verdict {
        self.state.finish(view)
    }
}
