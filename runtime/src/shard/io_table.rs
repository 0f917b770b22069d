//! The shard's side of I/O: each slot's operation state (`IoSlot`), the in-flight table
//! (`InFlight`: what the backend holds and which buffers the shard keeps for it until the
//! completion), submission, completion or staleness, and the buffers isolates hold.
//!
//! Not the operations, their wire form or the buffer pool (see `crate::io`), and never a
//! system call: the backend performs the I/O, this file only accounts for it.

use core::time::Duration;

use super::ShardCore;
use super::slots::{SlotState, pending};
use crate::backend::Env;
use crate::handle::Handle;
use crate::io::{
    BufferId, IoCompletion, IoError, IoHandle, IoOp, IoOpKind, IoReaped, IoResult, IoSubmission,
    IoToken, LentBuffer,
};
use crate::limits::IO_HANDLES_PER_ISOLATE_MAX;
use crate::trace::Event;

#[derive(Clone, Copy, Debug)]
pub(super) struct IoSlot {
    /// Bumped at every submission; a completion must carry the current value.
    sequence: u32,
    /// The outstanding operation's in-flight entry (its token is `(isolate, sequence,
    /// entry)`), for a timeout to name it.
    entry: u32,
    /// Whether the outstanding operation's timeout is armed (in the slot's call entry of the
    /// timer wheel: a slot waits for a reply or for I/O, never both).
    deadline_armed: bool,
    /// Whether the shard asked the backend to cancel the outstanding operation (its timeout
    /// passed, or the shutdown began while it received), so it asks once.
    cancel_asked: bool,
    /// A completion waiting for delivery, with its received data.
    pub(super) completion: Option<(IoCompletion, Option<BufferId>)>,
    /// The sockets and files this incarnation owns (`IoHandle::NONE`: a free entry); the
    /// shard closes them at its teardown.
    handles: [IoHandle; IO_HANDLES_PER_ISOLATE_MAX],
}

impl IoSlot {
    /// Records `handle` as owned; false if the table is full.
    pub(super) fn own(&mut self, handle: IoHandle) -> bool {
        if handle == IoHandle::NONE || self.handles.contains(&handle) {
            return true;
        }
        match self.handles.iter_mut().find(|entry| **entry == IoHandle::NONE) {
            Some(entry) => {
                *entry = handle;
                true
            }
            None => false,
        }
    }

    /// Forgets `handle`; whether it was owned.
    pub(super) fn disown(&mut self, handle: IoHandle) -> bool {
        match self.handles.iter_mut().find(|entry| **entry == handle && handle != IoHandle::NONE) {
            Some(entry) => {
                *entry = IoHandle::NONE;
                true
            }
            None => false,
        }
    }

    /// Takes every owned handle (the incarnation ends).
    pub(super) fn take_handles(&mut self) -> [IoHandle; IO_HANDLES_PER_ISOLATE_MAX] {
        core::mem::replace(&mut self.handles, [IoHandle::NONE; IO_HANDLES_PER_ISOLATE_MAX])
    }

    /// The timeout of the outstanding operation of `isolate` (this slot's incarnation)
    /// fired: disarmed, and the token to cancel.
    pub(super) fn deadline_passed(&mut self, isolate: Handle) -> IoToken {
        debug_assert!(self.deadline_armed, "only an armed deadline fires");
        self.deadline_armed = false;
        self.cancel_asked = true;
        IoToken { isolate, sequence: self.sequence, entry: self.entry }
    }
}

pub(super) const IO_IDLE: IoSlot = IoSlot {
    sequence: 0,
    entry: 0,
    deadline_armed: false,
    cancel_asked: false,
    completion: None,
    handles: [IoHandle::NONE; IO_HANDLES_PER_ISOLATE_MAX],
};

/// An operation queued for the backend: what `submit_ready_io` lends and hands over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queued {
    token: IoToken,
    op: IoOp,
    receive: Option<BufferId>,
}

impl Queued {
    pub(super) const BLANK: Queued = Queued {
        token: IoToken { isolate: Handle::NONE, sequence: 0, entry: 0 },
        op: IoOp::Close { handle: crate::io::IoHandle::NONE },
        receive: None,
    };

    /// Whether no isolate submitted it (a close the shard issued for a stale completion).
    pub(super) fn is_shards_own(&self) -> bool {
        self.token.isolate.is_none()
    }

    pub(super) fn token(&self) -> IoToken {
        self.token
    }
}

/// An operation the backend holds: the buffers the shard must keep until it completes.
#[derive(Clone, Copy, Debug)]
pub(super) struct InFlight {
    token: IoToken,
    op: IoOpKind,
    input: Option<BufferId>,
    receive: Option<BufferId>,
}

impl ShardCore {
    /// Queues `op` for the backend, or completes it at once with the reason it cannot go.
    pub(super) fn submit_io(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        op: IoOp,
        timeout: Option<Duration>,
    ) {
        let isolate = self.handle_of(type_index, slot);
        let io = &mut self.types[type_index].io[slot];
        io.sequence = io.sequence.wrapping_add(1);
        io.cancel_asked = false;
        let sequence = io.sequence;
        if let IoOp::Close { handle } = op {
            // Closing gives the handle up, whatever the close's result.
            io.disown(handle);
        }
        self.types[type_index].meta[slot].state = SlotState::WaitingIo;
        self.counters.io_submitted += 1;
        self.trace(env, Event::IoSubmit { isolate, sequence, op: op.kind() });
        match self.prepare_io(isolate, sequence, op) {
            Ok(queued) => {
                self.types[type_index].io[slot].entry = queued.token().entry;
                // `prepare_io` checked the queue has room.
                self.io_queue.push(queued).expect("room checked");
                if let Some(timeout) = timeout {
                    self.arm_io_deadline(type_index, slot, timeout);
                }
            }
            Err(error) => {
                let completion = IoCompletion { op: op.kind(), result: IoResult::Failed(error) };
                self.complete_io(env, type_index, slot, completion, None);
            }
        }
    }

    /// Arms the timeout of the slot's outstanding operation.
    fn arm_io_deadline(&mut self, type_index: usize, slot: usize, timeout: Duration) {
        let deadline = self.now.saturating_add(timeout);
        let deadline_tick = self.timers.tick_at_or_after(deadline.as_nanos());
        let now_tick = self.timers.tick_of(self.now.as_nanos());
        let key = self.key_of(type_index, slot);
        self.timers.set_call(key, now_tick, deadline_tick);
        self.types[type_index].io[slot].deadline_armed = true;
    }

    /// The shard's shutdown began while the isolate in `slot` waits for a receive
    /// (`TcpAccept`, `TcpRecv`, `UdpRecvFrom`: input from outside that may never come):
    /// asks the backend to cancel it at the end of the next tick (after that tick's
    /// submissions, so an operation still queued is cancelled too) and disarms its timeout.
    /// It completes as `Failed(TimedOut)` unless it finished first, and the isolate gets its
    /// shutdown notice after that completion. Traced as an `IoTimeout`. Anything else in
    /// flight (a write, an fsync, a connect, a send) goes on: finishing it is the drain.
    pub(super) fn cancel_receive(&mut self, env: &mut dyn Env, type_index: usize, slot: usize) {
        if self.types[type_index].meta[slot].state != SlotState::WaitingIo {
            return;
        }
        let isolate = self.handle_of(type_index, slot);
        let io = &self.types[type_index].io[slot];
        let token = IoToken { isolate, sequence: io.sequence, entry: io.entry };
        let receiving =
            self.in_flight.get(token.entry as usize).copied().flatten().is_some_and(|entry| {
                entry.token == token
                    && matches!(
                        entry.op,
                        IoOpKind::TcpAccept | IoOpKind::TcpRecv | IoOpKind::UdpRecvFrom
                    )
            });
        if !receiving || io.cancel_asked {
            return;
        }
        let io = &mut self.types[type_index].io[slot];
        io.cancel_asked = true;
        if core::mem::take(&mut io.deadline_armed) {
            let key = self.key_of(type_index, slot);
            self.timers.cancel_call(key);
        }
        // One cancel per operation in flight, and the ring holds one per entry.
        self.io_cancels.push(token).expect("a cancel per operation in flight");
        self.trace(env, Event::IoTimeout { isolate, sequence: token.sequence });
    }

    /// The next operation to cancel, for the backend.
    #[inline]
    pub(crate) fn pop_io_cancel(&mut self) -> Option<IoToken> {
        self.io_cancels.pop()
    }

    /// Takes the operation's buffers and an in-flight entry, or says why it cannot go.
    fn prepare_io(&mut self, isolate: Handle, sequence: u32, op: IoOp) -> Result<Queued, IoError> {
        if self.io_queue.is_full() {
            return Err(IoError::SubmissionFull);
        }
        if self.in_flight_free_len == 0 {
            return Err(IoError::SubmissionFull);
        }
        let input = op.input_buffer();
        if let Some(buffer) = input
            && !self.buffers.held_by(buffer, isolate)
        {
            return Err(IoError::InvalidBuffer);
        }
        let receive = match op.receive_len_max() {
            Some(_) => Some(self.buffers.alloc(Handle::NONE)?),
            None => None,
        };
        if let Some(buffer) = input {
            self.buffers.take_from_holder(buffer);
            let (type_index, slot) = (isolate.type_index() as usize, isolate.slot() as usize);
            self.types[type_index].buffers_held[slot] -= 1;
        }
        self.in_flight_free_len -= 1;
        let entry = self.in_flight_free[self.in_flight_free_len];
        let token = IoToken { isolate, sequence, entry };
        self.in_flight[entry as usize] = Some(InFlight { token, op: op.kind(), input, receive });
        Ok(Queued { token, op, receive })
    }

    /// The next submission for the backend, with its buffers lent to it: from now on the
    /// operation owns them until its completion hands the loans back (`io_reaped`).
    #[inline]
    pub(crate) fn pop_io_submission(&mut self) -> Option<IoSubmission> {
        let queued = self.io_queue.pop()?;
        let mut lend = |buffer: Option<BufferId>, writable: bool| {
            buffer.map(|id| {
                self.buffers.lend(id, writable).expect("the entry holds the buffers it queued")
            })
        };
        let input = lend(queued.op.input_buffer(), false);
        let receive = lend(queued.receive, true);
        Some(IoSubmission { token: queued.token, op: queued.op, input, receive })
    }

    /// A queued operation that never reached the backend completes with `error`.
    pub(crate) fn io_refused(&mut self, env: &mut dyn Env, token: IoToken, error: IoError) {
        let reaped =
            IoReaped { token, result: IoResult::Failed(error), input: None, receive: None };
        self.io_reaped(env, reaped);
    }

    /// Takes back a loan a completion returned. A backend must return every loan of the
    /// submission with its completion.
    fn take_back(&mut self, loan: Option<LentBuffer>, expected: Option<BufferId>) {
        let returned = loan.map(|loan| self.buffers.reclaim(loan));
        if returned.is_some() {
            assert_eq!(returned, expected, "a completion returns its own submission's loans");
        }
    }

    /// A completion from the backend: delivered to the isolate that is still waiting for
    /// it, or discarded as stale (its buffers freed, a handle it opened closed).
    pub(crate) fn io_reaped(
        &mut self,
        env: &mut dyn Env,
        reaped: IoReaped,
    ) -> Option<crate::io::IoHandle> {
        let IoReaped { token, result, input, receive } = reaped;
        let entry = self.in_flight.get(token.entry as usize).copied().flatten();
        let Some(entry) = entry.filter(|entry| entry.token == token) else {
            // A token that names no operation (a backend's mistake, or one rebuilt from raw
            // parts that went stale): counted; any loan it carries is taken back and freed.
            for loan in [input, receive].into_iter().flatten() {
                let buffer = self.buffers.reclaim(loan);
                self.buffers.release(buffer);
            }
            self.io_stale(env, token);
            return None;
        };
        // Loans come back before anything frees their buffers.
        self.take_back(input, entry.input);
        self.take_back(receive, entry.receive);
        self.in_flight[token.entry as usize] = None;
        self.in_flight_free[self.in_flight_free_len] = token.entry;
        self.in_flight_free_len += 1;
        if let Some(buffer) = entry.input {
            self.buffers.release(buffer);
        }
        if token.isolate.is_none() {
            // The completion of a close the shard issued for a stale completion.
            return None;
        }
        let completion = IoCompletion { op: entry.op, result };
        let waiting = self.resolve(token.isolate).filter(|&(type_index, slot)| {
            let slots = &self.types[type_index];
            slots.meta[slot].state == SlotState::WaitingIo
                && slots.io[slot].sequence == token.sequence
        });
        match waiting {
            Some((type_index, slot)) => {
                let data = match result {
                    IoResult::Received { .. } => entry.receive,
                    _ => {
                        if let Some(buffer) = entry.receive {
                            self.buffers.release(buffer);
                        }
                        None
                    }
                };
                // What was opened for the isolate is the isolate's, closed at its teardown;
                // past its limit it is closed at once and the operation fails.
                let mut completion = completion;
                if let IoResult::Opened(handle) | IoResult::Accepted { socket: handle, .. } = result
                    && !self.types[type_index].io[slot].own(handle)
                {
                    completion.result = IoResult::Failed(IoError::TooManyHandles);
                    self.complete_io(env, type_index, slot, completion, data);
                    return Some(handle);
                }
                self.complete_io(env, type_index, slot, completion, data);
                None
            }
            None => {
                if let Some(buffer) = entry.receive {
                    self.buffers.release(buffer);
                }
                self.io_stale(env, token);
                match result {
                    IoResult::Opened(handle) | IoResult::Accepted { socket: handle, .. } => {
                        Some(handle)
                    }
                    _ => None,
                }
            }
        }
    }

    fn io_stale(&mut self, env: &mut dyn Env, token: IoToken) {
        self.counters.io_stale += 1;
        self.trace(env, Event::IoStale { isolate: token.isolate, sequence: token.sequence });
    }

    fn complete_io(
        &mut self,
        env: &mut dyn Env,
        type_index: usize,
        slot: usize,
        completion: IoCompletion,
        data: Option<BufferId>,
    ) {
        let isolate = self.handle_of(type_index, slot);
        if core::mem::take(&mut self.types[type_index].io[slot].deadline_armed) {
            let key = self.key_of(type_index, slot);
            self.timers.cancel_call(key);
        }
        let slots = &mut self.types[type_index];
        let sequence = slots.io[slot].sequence;
        slots.io[slot].completion = Some((completion, data));
        slots.meta[slot].pending |= pending::IO;
        slots.meta[slot].state = SlotState::Waiting;
        slots.wake(slot);
        self.counters.io_completed += 1;
        let ok = !matches!(completion.result, IoResult::Failed(_));
        self.trace(env, Event::IoComplete { isolate, sequence, op: completion.op, ok });
    }

    /// Queues a close, on no isolate's behalf, of a handle a stale completion opened. If the
    /// queue is full the handle stays open (counted as stale already).
    pub(crate) fn discard_handle(&mut self, handle: crate::io::IoHandle) {
        if self.io_queue.is_full() || self.in_flight_free_len == 0 {
            return;
        }
        self.in_flight_free_len -= 1;
        let entry = self.in_flight_free[self.in_flight_free_len];
        let token = IoToken { isolate: Handle::NONE, sequence: 0, entry };
        self.in_flight[entry as usize] =
            Some(InFlight { token, op: IoOpKind::Close, input: None, receive: None });
        self.io_queue
            .push(Queued { token, op: IoOp::Close { handle }, receive: None })
            .expect("room checked");
    }

    /// Calls `f` with the isolate and sequence of every operation submitted and not yet
    /// completed or discarded as stale, in in-flight table order. Every such operation has
    /// an in-flight entry from submission to reaping (whether it still waits in the
    /// submission queue or the backend holds it); entries with no isolate are the closes the
    /// shard issued for stale completions, which no isolate submitted.
    pub(crate) fn for_each_io_outstanding(&self, f: &mut dyn FnMut(Handle, u32)) {
        for entry in self.in_flight.iter().flatten() {
            if !entry.token.isolate.is_none() {
                f(entry.token.isolate, entry.token.sequence);
            }
        }
    }

    /// Operations handed to the backend and not yet completed.
    #[inline]
    pub(crate) fn io_in_flight(&self) -> usize {
        self.in_flight.len() - self.in_flight_free_len
    }

    /// Makes `handle` (given by another isolate, which disowned it) this isolate's: closed
    /// at its teardown.
    pub(crate) fn io_adopt(&mut self, owner: Handle, handle: IoHandle) -> Result<(), IoError> {
        let (type_index, slot) = self.resolve(owner).expect("a running isolate is live");
        if handle == IoHandle::NONE {
            return Err(IoError::InvalidHandle);
        }
        if self.types[type_index].io[slot].own(handle) {
            Ok(())
        } else {
            Err(IoError::TooManyHandles)
        }
    }

    /// Gives up `handle` (to hand it to another isolate): it stays open, and this isolate's
    /// teardown no longer closes it. Whether it was owned.
    pub(crate) fn io_disown(&mut self, owner: Handle, handle: IoHandle) -> bool {
        let (type_index, slot) = self.resolve(owner).expect("a running isolate is live");
        self.types[type_index].io[slot].disown(handle)
    }

    /// Closes, on no isolate's behalf, every handle the ending incarnation in the slot
    /// owned.
    pub(super) fn close_owned_handles(&mut self, type_index: usize, slot: usize) {
        for handle in self.types[type_index].io[slot].take_handles() {
            if handle != IoHandle::NONE {
                self.discard_handle(handle);
            }
        }
    }

    /// Gives `holder` a shard buffer.
    pub(crate) fn buffer_alloc(&mut self, holder: Handle) -> Result<BufferId, IoError> {
        let (type_index, slot) = self.resolve(holder).expect("a running isolate is live");
        let buffer = self.buffers.alloc(holder)?;
        self.types[type_index].buffers_held[slot] += 1;
        Ok(buffer)
    }

    /// Copies `bytes` into a buffer `holder` holds, at `offset`.
    pub(crate) fn buffer_write(
        &mut self,
        holder: Handle,
        buffer: BufferId,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), IoError> {
        if !self.buffers.held_by(buffer, holder) {
            return Err(IoError::InvalidBuffer);
        }
        let data = self.buffers.get_mut(buffer).ok_or(IoError::InvalidBuffer)?;
        let end = offset
            .checked_add(bytes.len())
            .filter(|&end| end <= data.len())
            .ok_or(IoError::OutOfBounds)?;
        data[offset..end].copy_from_slice(bytes);
        Ok(())
    }

    /// Takes back a buffer `holder` holds.
    pub(crate) fn buffer_free(&mut self, holder: Handle, buffer: BufferId) -> Result<(), IoError> {
        if !self.buffers.held_by(buffer, holder) {
            return Err(IoError::InvalidBuffer);
        }
        let (type_index, slot) = self.resolve(holder).expect("a running isolate is live");
        self.buffers.release(buffer);
        self.types[type_index].buffers_held[slot] -= 1;
        Ok(())
    }

    /// The received data of the completion being handled.
    pub(crate) fn io_data(&self) -> &[u8] {
        match self.current_io {
            Some((buffer, len)) => {
                let bytes = self.buffers.get(buffer).unwrap_or(&[]);
                &bytes[..(len as usize).min(bytes.len())]
            }
            None => &[],
        }
    }
}
