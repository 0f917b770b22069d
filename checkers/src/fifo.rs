//! FIFO order where the framework promises it: messages from one shard to another arrive
//! (are enqueued or dropped at the destination) in the order they were sent, and a mailbox
//! hands out its messages in the order they were enqueued, except an accepted reply, which
//! goes first by design.
//!
//! Together the two give per sender-to-mailbox order. Kept per ordered shard pair (the
//! last arrived sequence) and per slot (the queue of enqueued ids): O(1) per event. It
//! does not check that messages arrive at all (see `accounting`).

use tina::{DropReason, Event, MessageId, ShardId, SystemSpec};

use crate::layout::{Layout, SHARD_IDS_PER_NODE};
use crate::ring::Ring;
use crate::site::Site;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "fifo";

/// The FIFO checker.
#[derive(Debug, Default)]
pub struct Fifo {
    layout: Layout,
    state: State,
}

/// The checker's history, resolved through a layout it does not own.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per (destination shard, origin shard id), destination by destination: the last
    /// arrived sequence.
    arrived: Vec<u64>,
    /// Per slot.
    mailboxes: Vec<Mailbox>,
}

/// What a slot's mailbox holds, as far as order goes.
#[derive(Clone, Debug, Default)]
struct Mailbox {
    /// Enqueued, undelivered ids in order (replies excluded).
    queued: Ring<MessageId>,
    /// The accepted reply waiting at the head, if any.
    reply: MessageId,
}

impl State {
    pub(crate) fn new(layout: &Layout) -> State {
        State {
            arrived: vec![0; layout.shard_total() * SHARD_IDS_PER_NODE],
            mailboxes: vec![Mailbox::default(); layout.slot_total()],
        }
    }

    #[inline(always)]
    pub(crate) fn observe(&mut self, site: &Site, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Enqueue { id, reply, .. } => {
                // The mailbox and the arrivals are separate state: queueing first lets the
                // arrival's verdict be returned as is.
                if let Some(slot) = site.slot() {
                    let mailbox = &mut self.mailboxes[slot];
                    if reply {
                        mailbox.reply = id;
                    } else {
                        mailbox.queued.push_back(id);
                    }
                }
                self.arrival(site, stamp, id)
            }
            Event::Drop { id, reason, .. } => {
                let verdict = self.arrival(site, stamp, id);
                if reason == DropReason::TargetExited
                    && let Some(slot) = site.slot()
                {
                    return self.left(slot, id);
                }
                verdict
            }
            Event::Deliver { id, .. } if id != MessageId::NONE => match site.slot() {
                Some(slot) => self.left(slot, id),
                None => Verdict::Continue,
            },
            _ => Verdict::Continue,
        }
    }

    /// Forgets the arrivals and mailboxes of `node`, which crashed.
    pub(crate) fn reset_node(&mut self, layout: &Layout, node: u16) {
        let shards = layout.node_shards(node);
        self.arrived[shards.start * SHARD_IDS_PER_NODE..shards.end * SHARD_IDS_PER_NODE].fill(0);
        self.mailboxes[layout.node_slots(node)].fill_with(Mailbox::default);
    }

    #[inline(always)]
    fn arrival(&mut self, site: &Site, stamp: &Stamp, id: MessageId) -> Verdict {
        let origin = id.origin();
        if origin == stamp.shard || origin == ShardId::EXTERNAL || id == MessageId::NONE {
            return Verdict::Continue;
        }
        let Some(destination) = site.shard() else {
            return Verdict::Continue;
        };
        let Some(last) = self.arrived.get_mut(destination * SHARD_IDS_PER_NODE + origin.index())
        else {
            return Verdict::Continue;
        };
        if id.sequence() <= *last {
            return arrived_late(id, stamp.shard, *last);
        }
        *last = id.sequence();
        Verdict::Continue
    }

    /// A message left the mailbox of `slot`, by delivery or by teardown.
    #[inline(always)]
    fn left(&mut self, slot: usize, id: MessageId) -> Verdict {
        let mailbox = &mut self.mailboxes[slot];
        if mailbox.reply == id {
            mailbox.reply = MessageId::NONE;
            return Verdict::Continue;
        }
        match mailbox.queued.pop_front() {
            Some(head) if head == id => Verdict::Continue,
            Some(head) => overtook(id, head),
            None => Verdict::Continue,
        }
    }
}

/// Explains that `id` arrived at `shard` after sequence `last` from the same origin. Out of
/// line, as only a violation calls it.
#[cold]
#[inline(never)]
fn arrived_late(id: MessageId, shard: ShardId, last: u64) -> Verdict {
    violated(
        NAME,
        format!(
            "{id} arrived at shard {shard} after m{}.{last} from the same shard",
            id.origin().0
        ),
    )
}

/// Explains that `id` left its mailbox before `head`. Out of line, as only a violation calls
/// it.
#[cold]
#[inline(never)]
fn overtook(id: MessageId, head: MessageId) -> Verdict {
    violated(NAME, format!("{id} left its mailbox before {head}, which was enqueued first"))
}

impl Observer for Fifo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.state = State::new(&self.layout);
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        let site = Site::of(&self.layout, stamp, event);
        self.state.observe(&site, stamp, event)
    }
}
