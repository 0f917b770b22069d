//! Credit windows: flow control for a stream of messages from one isolate to another, so a
//! fast source cannot overrun a slow receiver's mailbox on another shard.
//!
//! A [`CreditSender`] lets at most `window` items be in flight: sent and neither credited by
//! the receiver nor reported dropped. Its [`try_send`](CreditSender::try_send) says
//! [`FlowError::WindowFull`] when the window is spent. The receiver's [`CreditReceiver`]
//! returns credits as it handles items, in [`Credit`] messages of `batch` items; each
//! credit frees that many slots of the window. Items go out with `ctx.send_notify`, so an
//! item dropped on its way (a mailbox shared with other senders, a receiver that stopped)
//! comes back as a drop notice: [`CreditSender::on_message`] takes it, frees its slot, and
//! the caller decides whether to send the item again. With the receiver's mailbox capacity
//! at least `window` (and the stream its only traffic), no item is ever dropped for room.
//!
//! This module keeps counts and ids; it does not store items, resend them, or order them
//! at the receiver: those are the caller's (the example below does all three).
//!
//! # The protocol
//!
//! - The sender keeps the ids of the items in flight, oldest first, in a ring of `window`
//!   entries allocated by [`CreditSender::new`]; nothing allocates afterwards. The receiver
//!   keeps a few integers and its sender's handle.
//! - A credit carries a running total (items the receiver incarnation handled from this
//!   sender incarnation, wrapping at 2^32), so a credit that is lost is repaired by the
//!   next one. Credits from one receiver arrive in order (one transport per pair of
//!   shards), and the notice of a drop always arrives before any credit for an item sent
//!   after it (both come from the dropping shard, in that order), so a credit of `n` frees
//!   the `n` oldest items in flight.
//! - Credits are sent with `ctx.send_notify` too. If one cannot be sent (an `Err` here) or
//!   is dropped on its way (its notice, taken by [`CreditReceiver::on_message`]), the
//!   receiver owes the sender its total: [`CreditReceiver::owes`] says so, and the next
//!   item or [`CreditReceiver::flush`] sends it again. Return `Effect::Yield` while it
//!   owes, and flush on the `Tag::RESUME` that follows: a sender whose window is full
//!   sends nothing more that would trigger it.
//! - `batch` must not exceed the sender's `window`, or the receiver waits for more items
//!   than the sender may send. A receiver returns what it holds below `batch` only when
//!   flushed; flush when the stream ends (the example flushes on its last item).
//! - One sender, one receiver: a `CreditSender` takes credits only from the slot it sends
//!   to (any incarnation of it), and notices only for the ids it holds. A receiver that
//!   sees items from another sender incarnation starts counting again.
//!
//! A credit whose drop notice is lost too (the notice is counted in
//! `Counters::drop_notices_lost`) leaves the receiver unaware: if the sender's window is
//! full, nothing more happens. Where that can occur, also flush the receiver from a timer:
//! `flush` always sends the running total.
//!
//! What the window cannot recover: an item whose drop sends no notice (the receiver's
//! shard was down or crashed with it queued; its notice was itself lost), and credits a
//! receiver held when it stopped (fewer than `batch`). Those slots stay taken: rebuild
//! both ends for a new stream when you learn the receiver restarted.
//!
//! # Sending again
//!
//! To resend dropped items, keep each item in flight with its id, oldest first (a
//! `VecDeque` with capacity `window`, which never grows). After `on_message` returns true:
//!
//! 1. if `message.drop_notice()` is `Some(notice)`, remove the entry whose id is
//!    `notice.id` (there is one: `on_message` only takes notices of ids in flight) and
//!    queue its item to be sent again, ahead of new items; a reason of `StaleHandle` or
//!    `TargetExited` means the receiver is gone, and resending to it would only be dropped
//!    again;
//! 2. drop entries from the front while there are more than `in_flight()`: those are the
//!    items the receiver credited;
//! 3. send what the window allows. `FlowError::Send` means the item was dropped on this
//!    shard (it is not in flight, and its notice matches no id): keep it and try again
//!    later (`Effect::Yield`).
//!
//! A resent item arrives after the items sent after it; a receiver that needs the original
//! order puts it back by a sequence number in the item.
//!
//! # Example
//!
//! A source on shard 0 streams 100 numbered items to a sink on shard 1 through a window of
//! 8, though the sink's mailbox holds only 4: items are dropped for room, reported, resent,
//! and every item reaches the sink exactly once.
//!
//! ```
//! use std::collections::VecDeque;
//! use tina::flow::{CreditReceiver, CreditSender, FlowError};
//! use tina::testing::{TestConfig, TestWorld};
//! use tina::{Ctx, DropReason, Effect, Handle, Isolate, Label, Message, MessageId};
//! use tina::{ShardId, SystemSpec, Tag, TypeConfig};
//!
//! tina::payload! {
//!     #[derive(Clone, Copy, Debug)]
//!     #[repr(C)]
//!     pub struct Item { pub seq: u64, pub last: u64 }
//! }
//!
//! tina::spawn_args! {
//!     #[derive(Clone, Copy, Debug)]
//!     #[repr(C)]
//!     pub struct SourceArgs { pub sink: Handle, pub count: u64 }
//! }
//!
//! const WINDOW: u32 = 8;
//! const BATCH: u32 = 2;
//!
//! /// Sends items 0 to count - 1 through the window, resending those dropped on the way.
//! struct Source {
//!     credits: CreditSender,
//!     sink: Handle,
//!     count: u64,
//!     next: u64,
//!     /// The items in flight and their ids, oldest first.
//!     unconfirmed: VecDeque<(MessageId, u64)>,
//!     /// Dropped items to send again, first.
//!     resend: VecDeque<u64>,
//! }
//!
//! impl Source {
//!     /// Sends what the window allows; stops once every item is credited.
//!     fn pump(&mut self, ctx: &mut Ctx<'_>) -> Effect {
//!         // Bounded by the window: each pass sends one item or leaves.
//!         for _ in 0..WINDOW {
//!             let (seq, again) = match self.resend.front() {
//!                 Some(&seq) => (seq, true),
//!                 None if self.next < self.count => (self.next, false),
//!                 None => break,
//!             };
//!             let item = Item { seq, last: u64::from(seq + 1 == self.count) };
//!             match self.credits.try_send(ctx, self.sink, &item) {
//!                 Ok(id) => {
//!                     self.unconfirmed.push_back((id, seq));
//!                     if again { self.resend.pop_front(); } else { self.next += 1; }
//!                 }
//!                 Err(FlowError::WindowFull) => break,
//!                 // Dropped on this shard (its transport is full): try again next tick.
//!                 Err(FlowError::Send(_)) => return Effect::Yield,
//!             }
//!         }
//!         let finished = self.next == self.count && self.resend.is_empty();
//!         if finished && self.credits.in_flight() == 0 { Effect::Done } else { Effect::Receive }
//!     }
//! }
//!
//! impl Isolate for Source {
//!     type Args = SourceArgs;
//!     fn init(args: SourceArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
//!         let mut source = Source {
//!             credits: CreditSender::new(WINDOW),
//!             sink: args.sink,
//!             count: args.count,
//!             next: 0,
//!             unconfirmed: VecDeque::with_capacity(WINDOW as usize),
//!             resend: VecDeque::with_capacity(WINDOW as usize),
//!         };
//!         let effect = source.pump(ctx);
//!         (source, effect)
//!     }
//!     fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
//!         if self.credits.on_message(message) {
//!             if let Some(notice) = message.drop_notice() {
//!                 if matches!(notice.reason, DropReason::StaleHandle | DropReason::TargetExited) {
//!                     return Effect::Crash(Label::new("the sink is gone"));
//!                 }
//!                 let at = self.unconfirmed.iter().position(|(id, _)| *id == notice.id);
//!                 if let Some((_, seq)) = at.and_then(|at| self.unconfirmed.remove(at)) {
//!                     self.resend.push_back(seq);
//!                 }
//!             }
//!             let in_flight = self.credits.in_flight() as usize;
//!             while self.unconfirmed.len() > in_flight {
//!                 self.unconfirmed.pop_front();
//!             }
//!         }
//!         self.pump(ctx)
//!     }
//! }
//!
//! /// Takes every item once, returns credits, and stops when it has them all.
//! struct Sink { credits: CreditReceiver, seen: Vec<bool>, missing: u64 }
//!
//! impl Isolate for Sink {
//!     type Args = u64;
//!     fn init(count: u64, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
//!         let seen = vec![false; count as usize];
//!         (Sink { credits: CreditReceiver::new(BATCH), seen, missing: count }, Effect::Receive)
//!     }
//!     fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
//!         if message.tag() == Tag::RESUME {
//!             self.credits.flush(ctx);
//!         } else if !self.credits.on_message(message)
//!             && let Ok(item) = message.decode::<Item>()
//!         {
//!             assert!(!self.seen[item.seq as usize], "item {} arrived twice", item.seq);
//!             self.seen[item.seq as usize] = true;
//!             self.missing -= 1;
//!             self.credits.on_item(ctx, message);
//!             if item.last == 1 || self.missing == 0 {
//!                 // The stream's end: return what is held below a batch.
//!                 self.credits.flush(ctx);
//!             }
//!         }
//!         if self.credits.owes() {
//!             Effect::Yield
//!         } else if self.missing == 0 {
//!             Effect::Done
//!         } else {
//!             Effect::Receive
//!         }
//!     }
//! }
//!
//! let mut spec = SystemSpec::new(2);
//! let source = spec.register::<Source>(TypeConfig::new("source").slots(1));
//! let sink = spec.register::<Sink>(TypeConfig::new("sink").slots(1).mailbox(4));
//! spec.register_payload::<Item>().register_payload::<tina::flow::Credit>();
//! let sink = spec.boot_child(ShardId(1), sink, 100);
//! spec.boot_child(ShardId(0), source, SourceArgs { sink, count: 100 });
//!
//! let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("a valid spec");
//! world.run_until_idle(10_000);
//! let (sent, received) = (world.counters(ShardId(0)), world.counters(ShardId(1)));
//! assert_eq!((sent.exits_normal, received.exits_normal), (1, 1), "both ends finished");
//! assert!(received.mailbox_full > 0, "items were dropped for room...");
//! assert_eq!(received.drop_notices, received.mailbox_full, "...each one reported");
//! ```
//!
//! Register the credit's payload type like your own
//! (`spec.register_payload::<tina::flow::Credit>()`), so its tag is checked for collisions
//! and named in logs; this module adds no other registration.

use core::fmt;

use crate::ctx::Ctx;
use crate::handle::Handle;
use crate::limits::CREDIT_WINDOW_MAX;
use crate::message::{Message, MessageId};
use crate::payload::Payload;
use crate::shard::SendError;
use crate::trace::DropReason;

crate::payload! {
    /// What a [`CreditReceiver`] returns to its sender: `count` more items handled, `total`
    /// items handled so far from that sender (wrapping). The sender trusts `total`, so a
    /// lost credit is made good by the next; `count` is what this credit adds (zero when it
    /// repeats a total that was lost), for logs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C)]
    pub struct Credit {
        /// Items this credit returns beyond the previous credit sent.
        pub count: u32,
        /// Items the receiver handled from this sender so far, wrapping at 2^32.
        pub total: u32,
    }
}

/// Why [`CreditSender::try_send`] did not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowError {
    /// `window` items are in flight: wait for a credit (or a drop notice).
    WindowFull,
    /// The send itself failed on this shard (as `ctx.send` would): the item is not in flight.
    Send(SendError),
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::WindowFull => f.write_str("the credit window is full"),
            FlowError::Send(error) => write!(f, "the send failed: {error}"),
        }
    }
}

impl std::error::Error for FlowError {}

/// The sending end of a credit window: at most `window` items in flight to one receiver.
#[derive(Debug)]
pub struct CreditSender {
    /// Ids of the items in flight, oldest first: a ring of `window` entries from `head`.
    ids: Box<[MessageId]>,
    head: u32,
    len: u32,
    /// The receiver's slot address (`Handle::latest`), once an item was sent.
    peer: Handle,
    /// The receiver incarnation whose running total `credited` is.
    credit_from: Handle,
    /// The last total it sent.
    credited: u32,
}

impl CreditSender {
    /// A window of `window` items, all available. Allocates the ring of ids; nothing else
    /// does.
    ///
    /// # Panics
    ///
    /// If `window` is zero or above `limits::CREDIT_WINDOW_MAX` (a window no mailbox could
    /// hold).
    pub fn new(window: u32) -> CreditSender {
        assert!(
            (1..=CREDIT_WINDOW_MAX).contains(&window),
            "a credit window holds 1 to {CREDIT_WINDOW_MAX} items, not {window}"
        );
        CreditSender {
            ids: vec![MessageId::NONE; window as usize].into_boxed_slice(),
            head: 0,
            len: 0,
            peer: Handle::NONE,
            credit_from: Handle::NONE,
            credited: 0,
        }
    }

    /// Items allowed in flight.
    pub fn window(&self) -> u32 {
        // At most `CREDIT_WINDOW_MAX`, checked by `new`.
        self.ids.len() as u32
    }

    /// Items sent and neither credited nor reported dropped.
    pub fn in_flight(&self) -> u32 {
        self.len
    }

    /// Items `try_send` may send now.
    pub fn available(&self) -> u32 {
        self.window() - self.len
    }

    /// Sends `payload` to `to` with `ctx.send_notify` if the window has room, and counts it
    /// in flight until a credit or its drop notice frees it. Returns its id.
    ///
    /// `WindowFull` sends nothing. `Send(error)` is a drop on this shard (the transport
    /// toward `to` full, `to` stale, or for a receiver on this shard its mailbox or pool
    /// full): the item is not in flight; its notice, which follows, matches no id here and
    /// `on_message` leaves it alone.
    pub fn try_send<P: Payload>(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: Handle,
        payload: &P,
    ) -> Result<MessageId, FlowError> {
        if self.len == self.window() {
            return Err(FlowError::WindowFull);
        }
        let id = ctx.send_notify(to, payload).map_err(FlowError::Send)?;
        self.peer = to.latest();
        let tail = self.index(self.len);
        self.ids[tail] = id;
        self.len += 1;
        Ok(id)
    }

    /// Takes `message` if it belongs to this window, and returns whether it did: a
    /// [`Credit`] from the receiver (its slot: any incarnation), which frees the oldest
    /// items it covers, or the drop notice of an item in flight, which frees that item's
    /// slot. For a notice, read `message.drop_notice()` to learn which item to send again
    /// (see the module's "Sending again"). Anything else is left to the caller.
    pub fn on_message(&mut self, message: &Message) -> bool {
        if let Some(notice) = message.drop_notice() {
            return self.forget(notice.id);
        }
        if !message.is::<Credit>() || self.peer.is_none() {
            return false;
        }
        let source = message.source();
        let Ok(credit) = message.decode::<Credit>() else { return false };
        if source.is_none() || source.latest() != self.peer {
            return false;
        }
        if source != self.credit_from {
            // A new receiver incarnation counts from zero.
            self.credit_from = source;
            self.credited = 0;
        }
        // Totals from one incarnation only grow, and cover only items in flight; a total
        // that says otherwise (a rebuilt sender) frees what is in flight, no more.
        let fresh = credit.total.wrapping_sub(self.credited).min(self.len);
        self.credited = credit.total;
        self.head = self.index(fresh) as u32;
        self.len -= fresh;
        true
    }

    /// The ring index of the `offset`-th item in flight.
    fn index(&self, offset: u32) -> usize {
        // Both below the window, so the sum fits in u64 and the result below the window.
        ((u64::from(self.head) + u64::from(offset)) % self.ids.len() as u64) as usize
    }

    /// The offset of `id` among the items in flight. O(window); only drop notices ask.
    fn position(&self, id: MessageId) -> Option<u32> {
        (0..self.len).find(|&offset| self.ids[self.index(offset)] == id)
    }

    /// Frees the slot of the item sent as `id`, keeping the others in order. O(window).
    fn forget(&mut self, id: MessageId) -> bool {
        let Some(found) = self.position(id) else { return false };
        // Bounded by the window.
        for offset in found..self.len - 1 {
            let (to, from) = (self.index(offset), self.index(offset + 1));
            self.ids[to] = self.ids[from];
        }
        self.len -= 1;
        true
    }
}

/// The receiving end of a credit window: counts the items of one sender and returns them
/// as credits, `batch` at a time.
#[derive(Debug)]
pub struct CreditReceiver {
    batch: u32,
    /// The sender incarnation the totals count.
    peer: Handle,
    /// Items handled from it, wrapping.
    received: u32,
    /// The total of the last credit sent.
    returned: u32,
    /// The last credit sent, to recognise its drop notice.
    last_credit: MessageId,
    /// The sender may lack the last total: a credit could not be sent, or was dropped.
    owed: bool,
}

impl CreditReceiver {
    /// A receiver that returns credits `batch` items at a time. `batch` must not exceed the
    /// sender's window (see the module documentation).
    ///
    /// # Panics
    ///
    /// If `batch` is zero or above `limits::CREDIT_WINDOW_MAX`.
    pub fn new(batch: u32) -> CreditReceiver {
        assert!(
            (1..=CREDIT_WINDOW_MAX).contains(&batch),
            "a credit batch holds 1 to {CREDIT_WINDOW_MAX} items, not {batch}"
        );
        CreditReceiver {
            batch,
            peer: Handle::NONE,
            received: 0,
            returned: 0,
            last_credit: MessageId::NONE,
            owed: false,
        }
    }

    /// Items handled and not yet returned.
    pub fn held(&self) -> u32 {
        self.received.wrapping_sub(self.returned)
    }

    /// Whether the sender may be waiting for credits this receiver could not deliver: a
    /// batch is held because its credit could not be sent, or a credit was dropped on its
    /// way. Call `flush` again later (return `Effect::Yield` and flush on `Tag::RESUME`).
    pub fn owes(&self) -> bool {
        self.owed || self.held() >= self.batch
    }

    /// Counts `message`, an item of the stream, handled now; returns a credit to its source
    /// once `batch` items are held (or at once, if the last total was lost). Items from a
    /// new source (another sender, or the sender restarted) start the count again.
    pub fn on_item(&mut self, ctx: &mut Ctx<'_>, message: &Message) {
        self.on_item_from(ctx, message.source());
    }

    /// `on_item` for an item of `source` (its message's `source()`) that was kept and is
    /// handled now, after its message: a stage that forwards items downstream credits its
    /// upstream only as it forwards them, so what it keeps stays within the upstream's
    /// window.
    pub fn on_item_from(&mut self, ctx: &mut Ctx<'_>, source: Handle) {
        if source.is_none() {
            return;
        }
        if source != self.peer {
            *self = CreditReceiver { peer: source, ..CreditReceiver::new(self.batch) };
        }
        self.received = self.received.wrapping_add(1);
        if self.owes() {
            self.send_credit(ctx);
        }
    }

    /// Returns every credit held: sends the sender the running total, even with nothing
    /// held (a total the sender has already frees nothing, so repeating one is harmless,
    /// and it repairs a credit lost together with its notice). Does nothing before the
    /// first item.
    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if !self.peer.is_none() {
            self.send_credit(ctx);
        }
    }

    /// Takes the drop notice of this receiver's last credit, and returns whether it did.
    /// If the sender is still there (the credit was dropped for room), the receiver owes it
    /// the total (`owes`); if it is gone, the count is forgotten. The notice of an earlier
    /// credit is not recognised (false) and needs nothing: a later credit carries a newer
    /// total.
    pub fn on_message(&mut self, message: &Message) -> bool {
        let Some(notice) = message.drop_notice() else { return false };
        if self.last_credit == MessageId::NONE || notice.id != self.last_credit {
            return false;
        }
        match notice.reason {
            DropReason::StaleHandle | DropReason::TargetExited => self.forget_peer(),
            DropReason::MailboxFull
            | DropReason::PoolExhausted
            | DropReason::RingFull
            | DropReason::LateReply
            | DropReason::ShardDown => self.owed = true,
        }
        true
    }

    fn send_credit(&mut self, ctx: &mut Ctx<'_>) {
        let credit = Credit { count: self.held(), total: self.received };
        match ctx.send_notify(self.peer, &credit) {
            Ok(id) => {
                self.returned = self.received;
                self.last_credit = id;
                self.owed = false;
            }
            // The sender is gone: nobody waits for these credits.
            Err(SendError::StaleHandle) => self.forget_peer(),
            // Held (and owed) until the next item or flush.
            Err(SendError::MailboxFull | SendError::PoolExhausted) => self.owed = true,
        }
    }

    fn forget_peer(&mut self) {
        *self = CreditReceiver::new(self.batch);
    }
}
