//! The shard's operation table: every submission the driver holds, from `io_submit` until
//! `io_reap` hands it back.
//!
//! One entry per in-flight entry of the shard (`SystemSpec::io_in_flight_max`), allocated at
//! boot and indexed by the token's entry number, which the shard gives to one operation at a
//! time (it frees the number only when the completion is reaped): no search, no allocation
//! per operation. An entry keeps the submission with its loans, so a buffer the kernel
//! reads or writes stays lent until the kernel is done with it.
//!
//! Operations on one handle are chained in a list through the table (doubly linked, in
//! submission order): readiness of a socket tries its waiting operations in order (epoll),
//! and a close finds what it must cancel first (both drivers). Finished operations wait in
//! a FIFO of entry numbers (each entry is in it at most once, so it never overflows) until
//! they are reaped, which delivers each completion exactly once.
//!
//! Pure bookkeeping, tested under Miri; the drivers decide what an operation does.

use crate::io::{IoError, IoHandle, IoOp, IoReaped, IoResult, IoSubmission, IoToken};

/// No entry: the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// The operations pending on one handle, chained through the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpList {
    head: u32,
    tail: u32,
    len: u32,
}

impl OpList {
    /// A list with nothing in it.
    pub(crate) const EMPTY: OpList = OpList { head: NIL, tail: NIL, len: 0 };

    /// The first operation, or `NIL`.
    pub(crate) fn first(&self) -> u32 {
        self.head
    }

    /// Whether no operation is pending on the handle.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The entry holds nothing.
    Free,
    /// Claimed, not started yet (or done at once, at submission).
    Claimed,
    /// epoll: waiting until its handle is ready, then tried again.
    Waiting,
    /// io_uring: the kernel holds it (and its buffers) until its completion entry.
    Kernel,
    /// A close waiting for the operations pending on its handle to finish.
    Closing,
    /// Finished: its completion waits to be reaped.
    Ready,
}

/// One operation the driver holds.
#[derive(Debug)]
pub(crate) struct Op {
    /// The submission with its loans; `None` only while the entry is free.
    submission: Option<IoSubmission>,
    /// Where it is.
    pub(crate) stage: Stage,
    /// The handle whose list it is on (`NONE`: on no list).
    pub(crate) handle: IoHandle,
    prev: u32,
    next: u32,
    /// Bytes sent or written so far (a send or write goes on after a short transfer).
    pub(crate) progress: u32,
    /// Why it is being cancelled, once a cancel was asked for (a timeout, a close).
    pub(crate) cancel: Option<IoError>,
    /// io_uring: whether the cancel request reached the submission queue.
    pub(crate) cancel_sent: bool,
    /// Its result, once `Ready`.
    result: IoResult,
    /// Bumped at each claim, so a late kernel completion of an earlier operation in the
    /// same entry is recognised (io_uring's user data carries it).
    pub(crate) sequence: u32,
}

impl Op {
    const FREE: Op = Op {
        submission: None,
        stage: Stage::Free,
        handle: IoHandle::NONE,
        prev: NIL,
        next: NIL,
        progress: 0,
        cancel: None,
        cancel_sent: false,
        result: IoResult::Done,
        sequence: 0,
    };

    /// The operation. Panics on a free entry (a driver bug).
    pub(crate) fn request(&self) -> IoOp {
        self.submission().op
    }

    /// The submission, with its loans. Panics on a free entry (a driver bug).
    pub(crate) fn submission(&self) -> &IoSubmission {
        self.submission.as_ref().expect("a claimed entry holds its submission")
    }

    /// The submission, to reach its receive loan.
    pub(crate) fn submission_mut(&mut self) -> &mut IoSubmission {
        self.submission.as_mut().expect("a claimed entry holds its submission")
    }
}

/// The table. See the module documentation.
#[derive(Debug)]
pub(crate) struct OpTable {
    ops: Box<[Op]>,
    /// Entries whose completion waits to be reaped, oldest first (a ring).
    ready: Box<[u32]>,
    ready_head: usize,
    ready_len: usize,
    occupied: usize,
}

impl OpTable {
    /// A table of `count` entries (the spec's `io_in_flight_max`).
    pub(crate) fn new(count: u32) -> OpTable {
        OpTable {
            ops: (0..count).map(|_| Op::FREE).collect(),
            ready: vec![NIL; count as usize].into_boxed_slice(),
            ready_head: 0,
            ready_len: 0,
            occupied: 0,
        }
    }

    /// Entries in all.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Operations held (pending or waiting to be reaped).
    pub(crate) fn occupied(&self) -> usize {
        self.occupied
    }

    /// Takes the entry the submission's token names; the submission back if the token
    /// names no entry of the table or one already in use (the shard never does that).
    pub(crate) fn claim(&mut self, submission: IoSubmission) -> Result<u32, IoSubmission> {
        let entry = submission.token.entry;
        let Some(op) = self.ops.get_mut(entry as usize) else { return Err(submission) };
        if op.stage != Stage::Free {
            return Err(submission);
        }
        let sequence = op.sequence.wrapping_add(1);
        *op = Op { submission: Some(submission), stage: Stage::Claimed, sequence, ..Op::FREE };
        self.occupied += 1;
        Ok(entry)
    }

    /// Frees an entry that never finished (refused after its claim) and returns its
    /// submission. The entry must be on no list.
    pub(crate) fn release(&mut self, entry: u32) -> IoSubmission {
        let op = &mut self.ops[entry as usize];
        assert!(op.handle == IoHandle::NONE, "a released entry is on no list");
        assert!(
            !matches!(op.stage, Stage::Free | Stage::Ready),
            "a ready entry is reaped, not released"
        );
        let submission = op.submission.take().expect("a claimed entry");
        op.stage = Stage::Free;
        self.occupied -= 1;
        submission
    }

    /// Entry `entry`.
    pub(crate) fn op(&self, entry: u32) -> &Op {
        &self.ops[entry as usize]
    }

    /// Entry `entry`, to change it.
    pub(crate) fn op_mut(&mut self, entry: u32) -> &mut Op {
        &mut self.ops[entry as usize]
    }

    /// The entry holding the operation `token` names, if the driver still holds it.
    pub(crate) fn find(&self, token: IoToken) -> Option<u32> {
        let op = self.ops.get(token.entry as usize)?;
        let held = op.submission.as_ref().is_some_and(|submission| submission.token == token);
        held.then_some(token.entry)
    }

    /// Appends `entry` to the list of `handle`.
    pub(crate) fn link(&mut self, list: &mut OpList, entry: u32, handle: IoHandle) {
        let op = &mut self.ops[entry as usize];
        debug_assert!(op.handle == IoHandle::NONE, "on one list at a time");
        op.handle = handle;
        op.prev = list.tail;
        op.next = NIL;
        match list.tail {
            NIL => list.head = entry,
            tail => self.ops[tail as usize].next = entry,
        }
        list.tail = entry;
        list.len += 1;
    }

    /// Takes `entry` off `list` (the list of its handle).
    pub(crate) fn unlink(&mut self, list: &mut OpList, entry: u32) {
        let Op { prev, next, .. } = self.ops[entry as usize];
        match prev {
            NIL => list.head = next,
            prev => self.ops[prev as usize].next = next,
        }
        match next {
            NIL => list.tail = prev,
            next => self.ops[next as usize].prev = prev,
        }
        list.len -= 1;
        let op = &mut self.ops[entry as usize];
        op.prev = NIL;
        op.next = NIL;
        op.handle = IoHandle::NONE;
    }

    /// The operation after `entry` on its list, or `NIL`.
    pub(crate) fn next_in_list(&self, entry: u32) -> u32 {
        self.ops[entry as usize].next
    }

    /// The operation finished with `result`: it waits to be reaped. It must be on no list.
    pub(crate) fn finish(&mut self, entry: u32, result: IoResult) {
        let op = &mut self.ops[entry as usize];
        assert!(op.handle == IoHandle::NONE, "a finished operation is on no list");
        assert!(
            !matches!(op.stage, Stage::Free | Stage::Ready),
            "an operation finishes once, and only while held"
        );
        op.stage = Stage::Ready;
        op.result = result;
        let at = (self.ready_head + self.ready_len) % self.ready.len();
        self.ready[at] = entry;
        self.ready_len += 1;
    }

    /// Whether a completion waits to be reaped.
    pub(crate) fn has_ready(&self) -> bool {
        self.ready_len > 0
    }

    /// The oldest finished operation, with its loans; its entry is free again.
    pub(crate) fn pop_ready(&mut self) -> Option<IoReaped> {
        if self.ready_len == 0 {
            return None;
        }
        let entry = self.ready[self.ready_head];
        self.ready_head = (self.ready_head + 1) % self.ready.len();
        self.ready_len -= 1;
        let op = &mut self.ops[entry as usize];
        let IoSubmission { token, input, receive, .. } =
            op.submission.take().expect("a ready entry holds its submission");
        op.stage = Stage::Free;
        self.occupied -= 1;
        Some(IoReaped { token, result: op.result, input, receive })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Handle;
    use crate::io::IoBuffers;

    fn token(entry: u32) -> IoToken {
        IoToken { isolate: Handle::from_raw(0x42), sequence: entry + 7, entry }
    }

    fn recv(entry: u32, loan: Option<crate::io::LentBuffer>) -> IoSubmission {
        IoSubmission {
            token: token(entry),
            op: IoOp::TcpRecv { socket: IoHandle::from_raw(1), len_max: 4 },
            input: None,
            receive: loan,
        }
    }

    /// Entries are claimed by token, refused when taken or out of range, found by token,
    /// and reaped in the order they finished, each once, with their loans (which Miri checks
    /// are the kernel-facing bytes the operation wrote).
    #[test]
    fn operations_finish_once_in_order() {
        let mut buffers = IoBuffers::new(2, 8);
        let id = buffers.alloc(Handle::NONE).unwrap();
        let loan = buffers.lend(id, true).unwrap();
        let mut table = OpTable::new(3);
        let first = table.claim(recv(2, Some(loan))).unwrap();
        assert_eq!(first, 2);
        assert!(table.claim(recv(2, None)).is_err(), "an entry in use");
        assert!(table.claim(recv(3, None)).is_err(), "an entry past the table");
        let second = table.claim(recv(0, None)).unwrap();
        assert_eq!(table.occupied(), 2);
        assert_eq!(table.find(token(2)), Some(2));
        assert_eq!(table.find(IoToken { sequence: 1, ..token(2) }), None, "another operation");
        assert_eq!(table.find(token(1)), None, "a free entry");

        let bytes = table.op_mut(first).submission_mut().receive.as_mut().unwrap();
        bytes.bytes_mut().unwrap()[..4].copy_from_slice(b"data");
        table.op_mut(second).stage = Stage::Waiting;
        table.finish(second, IoResult::Failed(IoError::TimedOut));
        table.op_mut(first).stage = Stage::Kernel;
        table.finish(first, IoResult::Received { len: 4, from: None });
        assert!(table.has_ready());

        let reaped = table.pop_ready().unwrap();
        assert_eq!((reaped.token, reaped.result), (token(0), IoResult::Failed(IoError::TimedOut)));
        let reaped = table.pop_ready().unwrap();
        assert_eq!(reaped.result, IoResult::Received { len: 4, from: None });
        assert_eq!(buffers.reclaim(reaped.receive.unwrap()), id);
        assert_eq!(&buffers.get(id).unwrap()[..4], b"data");
        assert!(table.pop_ready().is_none());
        assert_eq!(table.occupied(), 0);

        // The entry is free again, with a new sequence for the kernel's user data.
        let sequence = table.op(2).sequence;
        table.claim(recv(2, None)).unwrap();
        assert_eq!(table.op(2).sequence, sequence.wrapping_add(1));
        assert!(table.release(2).receive.is_none());
        assert_eq!(table.occupied(), 0);
    }

    /// Lists keep submission order and survive removal from the head, the middle and the
    /// tail.
    #[test]
    fn lists_keep_order_through_removals() {
        let mut table = OpTable::new(5);
        let handle = IoHandle::from_raw(9);
        let mut list = OpList::EMPTY;
        for entry in 0..5 {
            table.claim(recv(entry, None)).unwrap();
            table.link(&mut list, entry, handle);
        }
        let walk = |table: &OpTable, list: &OpList| {
            let mut order = Vec::new();
            let mut at = list.first();
            while at != NIL {
                order.push(at);
                at = table.next_in_list(at);
            }
            order
        };
        assert_eq!(walk(&table, &list), [0, 1, 2, 3, 4]);
        table.unlink(&mut list, 2);
        table.unlink(&mut list, 0);
        table.unlink(&mut list, 4);
        assert_eq!(walk(&table, &list), [1, 3]);
        assert_eq!(table.op(2).handle, IoHandle::NONE);
        assert_eq!(table.op(1).handle, handle);
        table.link(&mut list, 0, handle);
        assert_eq!(walk(&table, &list), [1, 3, 0]);
        for entry in [3, 1, 0] {
            table.unlink(&mut list, entry);
        }
        assert!(list.is_empty());
        assert_eq!(list, OpList::EMPTY);
    }

    /// An operation on a list cannot finish: it must leave its handle's list first.
    #[test]
    #[should_panic(expected = "a finished operation is on no list")]
    fn a_listed_operation_does_not_finish() {
        let mut table = OpTable::new(1);
        let mut list = OpList::EMPTY;
        table.claim(recv(0, None)).unwrap();
        table.op_mut(0).stage = Stage::Waiting;
        table.link(&mut list, 0, IoHandle::from_raw(1));
        table.finish(0, IoResult::Done);
    }
}
