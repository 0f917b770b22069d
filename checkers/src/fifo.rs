//! FIFO order where the framework promises it: messages from one shard to another arrive
//! (are enqueued or dropped at the destination) in the order they were sent, and a mailbox
//! hands out its messages in the order they were enqueued, except an accepted reply, which
//! goes first by design.
//!
//! Together the two give per sender-to-mailbox order. Kept per ordered shard pair (the
//! last arrived sequence) and per slot (the queue of enqueued ids): O(1) per event. It
//! does not check that messages arrive at all (see `accounting`).

use std::collections::VecDeque;

use tina::{DropReason, Event, MessageId, ShardId, SystemSpec};

use crate::layout::Layout;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "fifo";

/// The FIFO checker.
#[derive(Debug, Default)]
pub struct Fifo {
    layout: Layout,
    /// Per (destination shard, origin shard within the node): last arrived sequence.
    arrived: Vec<Vec<u64>>,
    /// Per slot: enqueued, undelivered ids in order (replies excluded).
    queued: Vec<VecDeque<MessageId>>,
    /// Per slot: the accepted reply waiting at the head, if any.
    reply: Vec<MessageId>,
}

impl Fifo {
    fn arrival(&mut self, stamp: &Stamp, id: MessageId) -> Verdict {
        let origin = id.origin();
        if origin == stamp.shard || origin == ShardId::EXTERNAL || id == MessageId::NONE {
            return Verdict::Continue;
        }
        let Some(destination) = self.layout.shard_index(stamp.node, stamp.shard) else {
            return Verdict::Continue;
        };
        let Some(last) = self.arrived[destination].get_mut(origin.index()) else {
            return Verdict::Continue;
        };
        if id.sequence() <= *last {
            return violated(
                NAME,
                format!(
                    "{id} arrived at shard {} after m{}.{} from the same shard",
                    stamp.shard, origin.0, *last
                ),
            );
        }
        *last = id.sequence();
        Verdict::Continue
    }

    /// A message left the mailbox of `slot`, by delivery or by teardown.
    fn left(&mut self, slot: usize, id: MessageId) -> Verdict {
        if self.reply[slot] == id {
            self.reply[slot] = MessageId::NONE;
            return Verdict::Continue;
        }
        match self.queued[slot].pop_front() {
            Some(head) if head == id => Verdict::Continue,
            Some(head) => violated(
                NAME,
                format!("{id} left its mailbox before {head}, which was enqueued first"),
            ),
            None => Verdict::Continue,
        }
    }
}

impl Observer for Fifo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.arrived = (0..self.layout.shard_total()).map(|_| vec![0; 256]).collect();
        self.queued = vec![VecDeque::new(); self.layout.slot_total()];
        self.reply = vec![MessageId::NONE; self.layout.slot_total()];
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Enqueue { id, to, reply, .. } => {
                let verdict = self.arrival(stamp, id);
                if let Some(slot) = self.layout.slot_index(stamp.node, to) {
                    if reply {
                        self.reply[slot] = id;
                    } else {
                        self.queued[slot].push_back(id);
                    }
                }
                verdict
            }
            Event::Drop { id, to, reason } => {
                let verdict = self.arrival(stamp, id);
                if reason == DropReason::TargetExited
                    && let Some(slot) = self.layout.slot_index(stamp.node, to)
                {
                    return self.left(slot, id);
                }
                verdict
            }
            Event::Deliver { id, to, .. } if id != MessageId::NONE => {
                match self.layout.slot_index(stamp.node, to) {
                    Some(slot) => self.left(slot, id),
                    None => Verdict::Continue,
                }
            }
            _ => Verdict::Continue,
        }
    }
}
