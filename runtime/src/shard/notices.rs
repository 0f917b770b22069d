//! Drop notices: telling the sender of a message sent with `ctx.send_notify` that it was
//! dropped, wherever that happened (the outbound transport of the sender's shard, a full
//! mailbox, an exhausted pool, a stale handle, a target that stopped with it queued).
//!
//! A notice is an ordinary message of the shard that dropped the original: a fresh id, a
//! `Send` event, then an `Enqueue` or a `Drop` on the sender's shard, like the call-failure
//! notice of `calls.rs`. Its accounting rules:
//!
//! - It is a system message (`Tag::DROP_NOTICE`, no source) that no isolate can forge, and
//!   it never asks for a notice itself, so notices cannot chain.
//! - It is not held to the sender's mailbox capacity (like an accepted reply): a full
//!   mailbox must not swallow the notice of a drop that same fullness caused. It still
//!   takes an envelope of the sender's shard's pool, which bounds how many can queue.
//! - It is never lost silently: a notice that is dropped (the sender gone, the transport
//!   toward it or its pool full, its shard down, or queued when it stopped) is counted and
//!   traced under its reason like any message, and also in `Counters::drop_notices_lost`.
//! - A down or crashing shard answers nothing (no notice for `ShardDown`, nor for what a
//!   shard crash drops), and a reply cannot ask for one (so no notice for `LateReply`).
//!
//! Not the decision of what to do about a drop: that is the sender's (see `crate::flow`).

use super::ShardCore;
use crate::backend::Env;
use crate::handle::Handle;
use crate::message::{DropNotice, Message};
use crate::trace::DropReason;

impl ShardCore {
    /// Sends a drop notice for `message`, just dropped here (as addressed to `to`, for
    /// `reason`), to its sender. Out of line and cold: only messages sent with
    /// `ctx.send_notify` that were dropped come here.
    #[cold]
    #[inline(never)]
    pub(super) fn notify_drop(
        &mut self,
        env: &mut dyn Env,
        message: &Message,
        to: Handle,
        reason: DropReason,
    ) {
        debug_assert!(message.wants_notice() && !message.is_drop_notice());
        debug_assert!(!message.is_call() && !message.is_reply(), "only sends ask for notices");
        debug_assert!(
            !matches!(reason, DropReason::ShardDown | DropReason::LateReply),
            "a down shard and a late reply answer nothing"
        );
        let sender = message.source();
        // Only `ctx.send_notify` sets the flag, and an isolate always sends it.
        debug_assert!(!sender.is_none());
        if sender.is_none() {
            return;
        }
        let id = self.next_id();
        self.counters.drop_notices += 1;
        let notice = DropNotice { id: message.id(), to, reason };
        // A notice that cannot be routed is dropped, counted and traced by `send_message`,
        // and counted as lost by `record_drop`; it asks for no notice, so this ends here.
        let _ = self.send_message(env, &Message::drop_notice_to(id, sender, &notice));
    }
}
