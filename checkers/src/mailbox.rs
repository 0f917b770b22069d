//! Mailbox occupancy: a mailbox never holds more messages than its type's capacity. Two
//! kinds of message are not counted against it: an accepted reply (it goes first), so with
//! one the mailbox may hold capacity + 1; and a drop notice (`Tag::DROP_NOTICE`, the shard
//! telling a sender its message was dropped), so a mailbox may also hold every notice
//! queued in it. Notices are bounded by the sender's envelope pool, which `pools` checks.
//!
//! O(1) per event from the `Enqueue` event's own count while no notice is in flight; it
//! does not check that the count itself is right (the pools checker conserves envelopes).
//! Notices are followed by id from their `Send` to their delivery or drop, O(log n) in
//! the notices in flight.

use std::collections::{BTreeMap, BTreeSet};

use tina::{Event, Handle, MessageId, SystemSpec, Tag};

use crate::layout::Layout;
use crate::site::Site;
use crate::{Observer, Stamp, Verdict, violated};

const NAME: &str = "mailbox";

/// The occupancy checker.
#[derive(Debug, Default)]
pub struct Occupancy {
    layout: Layout,
    state: State,
}

/// The drop notices in flight: they are exempt from the capacity.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Notices sent and not yet enqueued or dropped: (node, id).
    sent: BTreeSet<(u16, MessageId)>,
    /// Notices waiting in a mailbox: (node, id) to the mailbox's owner.
    queued: BTreeMap<(u16, MessageId), Handle>,
    /// Notices waiting per mailbox: (node, owner) to their count (never zero).
    per_mailbox: BTreeMap<(u16, Handle), u32>,
}

impl State {
    /// Checks one event at `site`.
    #[inline(always)]
    pub(crate) fn observe(&mut self, site: &Site, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Send { id, tag, .. } => {
                if tag == Tag::DROP_NOTICE {
                    self.sent.insert((stamp.node, id));
                }
                Verdict::Continue
            }
            Event::Enqueue { id, to, mailbox_len, reply } => {
                let key = (stamp.node, id);
                if !self.sent.is_empty() && self.sent.remove(&key) {
                    self.queued.insert(key, to);
                    *self.per_mailbox.entry((stamp.node, to)).or_insert(0) += 1;
                }
                let Some(capacity) = site.capacity() else {
                    return Verdict::Continue;
                };
                // In `u64`, where adding the exemptions cannot overflow.
                let allowed = u64::from(capacity) + u64::from(reply);
                if u64::from(mailbox_len) > allowed {
                    let notices = self.notices_in(stamp.node, to);
                    if u64::from(mailbox_len) > allowed + u64::from(notices) {
                        return overflowed(to, mailbox_len, capacity, notices);
                    }
                }
                Verdict::Continue
            }
            Event::Deliver { id, tag, .. } => {
                if tag == Tag::DROP_NOTICE {
                    self.finish_notice(stamp.node, id);
                }
                Verdict::Continue
            }
            Event::Drop { id, .. } => {
                if !self.sent.is_empty() || !self.queued.is_empty() {
                    self.finish_notice(stamp.node, id);
                }
                Verdict::Continue
            }
            _ => Verdict::Continue,
        }
    }

    /// Notices waiting in the mailbox of `to` on `node`.
    fn notices_in(&self, node: u16, to: Handle) -> u32 {
        self.per_mailbox.get(&(node, to)).copied().unwrap_or(0)
    }

    /// Message `id` left its mailbox or was dropped: if it is a notice, it no longer counts.
    #[cold]
    fn finish_notice(&mut self, node: u16, id: MessageId) {
        let key = (node, id);
        if self.sent.remove(&key) {
            return;
        }
        let Some(owner) = self.queued.remove(&key) else {
            return;
        };
        if let Some(count) = self.per_mailbox.get_mut(&(node, owner)) {
            *count -= 1;
            if *count == 0 {
                self.per_mailbox.remove(&(node, owner));
            }
        }
    }

    /// A crashed node keeps nothing: its notices are gone with it.
    pub(crate) fn reset_node(&mut self, node: u16) {
        self.sent.retain(|(at, _)| *at != node);
        self.queued.retain(|(at, _), _| *at != node);
        self.per_mailbox.retain(|(at, _), _| *at != node);
    }
}

/// Explains that the mailbox of `to` holds `mailbox_len` messages, above `capacity` and
/// the `notices` exempt from it. Out of line, as only a violation calls it.
#[cold]
#[inline(never)]
fn overflowed(to: Handle, mailbox_len: u32, capacity: u32, notices: u32) -> Verdict {
    let exempt =
        if notices == 0 { String::new() } else { format!(" (and {notices} drop notices)") };
    violated(
        NAME,
        format!(
            "the mailbox of {to} holds {mailbox_len} messages; its capacity is {capacity}{exempt}"
        ),
    )
}

impl Observer for Occupancy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn start(&mut self, nodes: &[SystemSpec]) {
        self.layout = Layout::new(nodes);
        self.state = State::default();
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        self.state.observe(&Site::of(&self.layout, stamp, event), stamp, event)
    }

    fn observe_world(&mut self, stamp: &Stamp, event: &crate::WorldEvent) -> Verdict {
        if *event == crate::WorldEvent::NodeCrash {
            self.state.reset_node(stamp.node);
        }
        Verdict::Continue
    }
}
