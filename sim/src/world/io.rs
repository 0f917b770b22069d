//! The world's side of I/O: it starts what a shard submitted during its tick against the
//! node's disk, holds each operation until its latency has passed, and hands the
//! completion (with the buffer loans) back to the shard. A cancel (an `Effect::IoWithin`
//! timeout) completes a pending operation at once as `TimedOut`. A node crash drops its
//! pending operations: the process that would reap them is gone.
//!
//! Not the disk's semantics (`crate::disk`) and not the shard's bookkeeping (the core's
//! in-flight table). Sockets are not simulated yet: a socket operation completes at once
//! with `IoError::Unsupported`.

use tina::io::{IoError, IoHandle, IoOp, IoReaped, IoResult, IoSubmission, IoToken};

use tina_checkers::WorldEvent;

use super::queue::Entry;
use super::{Status, World};
use crate::disk::{Disk, DiskConfig, DiskCounts, DiskReply, DiskStreams};
use crate::faults::{FaultKind, K};

/// Operations the world holds at once, over every shard of every node: each is some
/// shard's in-flight entry, so the spec's `io_in_flight_max` per shard bounds them too.
pub const PENDING_IO_MAX: usize = 1 << 20;

/// One operation started and not yet handed back.
#[derive(Debug)]
struct PendingIo {
    cell: u32,
    submission: IoSubmission,
    result: IoResult,
    /// Bytes received, copied into the receive loan at completion.
    data: Vec<u8>,
    /// Completed early by a cancel: the queued completion finds nothing left to do.
    cancelled: bool,
}

/// Every operation in progress, in numbered slots; a slot is reused once its queued
/// completion has been popped.
#[derive(Debug, Default)]
pub(super) struct IoTable {
    slots: Vec<Option<PendingIo>>,
    free: Vec<u32>,
}

impl IoTable {
    fn insert(&mut self, pending: PendingIo) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(pending);
                slot
            }
            None => {
                assert!(self.slots.len() < PENDING_IO_MAX, "the shards' in-flight tables bound it");
                self.slots.push(Some(pending));
                // Below PENDING_IO_MAX, so it fits.
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn take(&mut self, slot: u32) -> Option<PendingIo> {
        let pending = self.slots.get_mut(slot as usize)?.take();
        if pending.is_some() {
            self.free.push(slot);
        }
        pending
    }

    /// The pending operation of `cell` with `token`, not cancelled yet.
    fn find(&mut self, cell: u32, token: IoToken) -> Option<&mut PendingIo> {
        self.slots.iter_mut().flatten().find(|pending| {
            pending.cell == cell && pending.submission.token == token && !pending.cancelled
        })
    }

    /// Drops every operation of the cells in `range` (their node crashed); the queued
    /// completions are removed by the caller.
    pub(super) fn drop_cells(&mut self, range: core::ops::Range<u32>) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|pending| range.contains(&pending.cell)) {
                // Slot numbers fit in u32 (PENDING_IO_MAX).
                self.take(slot as u32);
            }
        }
    }
}

impl World {
    /// Starts the operations shard `index` submitted during the tick that ended at `end`,
    /// and applies its cancels.
    #[cold]
    #[inline(never)]
    pub(super) fn start_io(&mut self, index: usize, end: u64) {
        let node = usize::from(self.cells[index].node);
        let submissions = core::mem::take(&mut self.cells[index].backend.io_submitted);
        for submission in submissions {
            if self.disk_full_injected(node, &submission) {
                self.count(FaultKind::DiskFull);
                self.record_cell(index, &WorldEvent::DiskFull);
                let (result, cell) = (IoResult::Failed(IoError::StorageFull), index as u32);
                let pending =
                    PendingIo { cell, submission, result, data: Vec::new(), cancelled: false };
                let slot = self.io.insert(pending);
                self.queue.push(end, Entry::IoDone { pending: slot, cell });
                continue;
            }
            let (disk, streams) = (&mut self.disks[node], &mut self.disk_streams[node]);
            let before = *disk.counts();
            let (latency_ns, result, data) = perform(disk, streams, &submission);
            let after = *self.disks[node].counts();
            if after != before {
                self.count_disk_faults(index, &before, &after);
            }
            // Cell indices fit in u32.
            let cell = index as u32;
            let pending = PendingIo { cell, submission, result, data, cancelled: false };
            let slot = self.io.insert(pending);
            self.queue.push(end.saturating_add(latency_ns), Entry::IoDone { pending: slot, cell });
        }
        let cancels = core::mem::take(&mut self.cells[index].backend.io_cancels);
        for token in cancels {
            // Cell indices fit in u32.
            let Some(pending) = self.io.find(index as u32, token) else { continue };
            pending.cancelled = true;
            let reaped = IoReaped {
                token,
                result: IoResult::Failed(IoError::TimedOut),
                input: pending.submission.input.take(),
                receive: pending.submission.receive.take(),
            };
            self.hand_back(index, reaped);
        }
    }

    /// Whether a write of node `node` finds the disk full though it has room (space taken
    /// by others: the `disk-full` fault, only while faults are injected).
    fn disk_full_injected(&mut self, node: usize, submission: &IoSubmission) -> bool {
        let chance = self.config.faults.ratio(K::DiskFullProbability);
        matches!(submission.op, IoOp::FileWrite { .. })
            && chance.numerator() > 0
            && self.phase == tina_checkers::Phase::Safety
            && self.disk_full_streams[node].chance(chance)
    }

    /// Counts and traces the faults the disk injected into one operation of shard `index`.
    #[cold]
    fn count_disk_faults(&mut self, index: usize, before: &DiskCounts, after: &DiskCounts) {
        let kinds = [
            (after.errors - before.errors, FaultKind::DiskError, WorldEvent::DiskError),
            (
                after.fsync_failures - before.fsync_failures,
                FaultKind::DiskFsyncFailure,
                WorldEvent::DiskFsyncFailure,
            ),
            (
                after.corruptions - before.corruptions,
                FaultKind::DiskCorruption,
                WorldEvent::DiskCorruption,
            ),
            (after.full - before.full, FaultKind::DiskFull, WorldEvent::DiskFull),
        ];
        for (times, kind, event) in kinds {
            // One operation injects each fault at most once.
            for _ in 0..times {
                self.count(kind);
                self.record_cell(index, &event);
            }
        }
    }

    /// The configuration of every node's disk from the fault knobs: its capacity and
    /// latency always, its faults only while they are injected (the safety phase).
    pub(super) fn disk_config(&self, faulty: bool) -> DiskConfig {
        let faults = &self.config.faults;
        let injected = |knob: K| if faulty { faults.ratio(knob) } else { crate::prng::Ratio::ZERO };
        DiskConfig {
            capacity_bytes: faults.count(K::DiskCapacity),
            latency_ns_min: faults.nanos(K::DiskLatencyMin),
            latency_ns_max: faults.nanos(K::DiskLatencyMax),
            read_error_probability: injected(K::DiskErrorProbability),
            write_error_probability: injected(K::DiskErrorProbability),
            fsync_failure_probability: injected(K::DiskFsyncFailureProbability),
            corruption_probability: injected(K::DiskCorruptionProbability),
        }
    }

    /// The operation in pending slot `slot` completes now.
    pub(super) fn complete_io(&mut self, slot: u32, cell: u32) {
        let Some(pending) = self.io.take(slot) else { return };
        debug_assert_eq!(pending.cell, cell);
        if pending.cancelled {
            return;
        }
        let reaped = pending.submission.complete(pending.result, &pending.data);
        self.hand_back(cell as usize, reaped);
    }

    /// Gives shard `index` a completion to reap and wakes it (or leaves it for its restart,
    /// if the shard is down).
    fn hand_back(&mut self, index: usize, reaped: IoReaped) {
        let cell = &mut self.cells[index];
        cell.backend.io_ready.push_back(reaped);
        if cell.status != Status::Up {
            return;
        }
        let at = self.now.max(cell.busy_until);
        if at < cell.wake_at {
            self.reschedule(index, Some(at));
        }
    }
}

/// Performs `submission` against the node's disk: the latency, the result, and any bytes
/// received.
fn perform(
    disk: &mut Disk,
    streams: &mut DiskStreams,
    submission: &IoSubmission,
) -> (u64, IoResult, Vec<u8>) {
    let unsupported = (0, IoResult::Failed(IoError::Unsupported), Vec::new());
    match submission.op {
        IoOp::FileOpen { mode, .. } => {
            let reply = disk.open(submission.input_bytes(), mode, streams);
            finish(reply, IoResult::Opened)
        }
        IoOp::FileRead { file, offset, len_max } => {
            let DiskReply { latency_ns, result } = disk.read(file, offset, len_max, streams);
            match result {
                // At most `len_max`, a u32.
                Ok(bytes) => {
                    (latency_ns, IoResult::Received { len: bytes.len() as u32, from: None }, bytes)
                }
                Err(error) => (latency_ns, IoResult::Failed(error), Vec::new()),
            }
        }
        IoOp::FileWrite { file, offset, .. } => {
            let reply = disk.write(file, offset, submission.input_bytes(), streams);
            finish(reply, IoResult::Transferred)
        }
        IoOp::FileFsync { file } => finish(disk.fsync(file, streams), |()| IoResult::Done),
        IoOp::Close { handle } if Disk::is_file_handle(handle) => {
            finish(disk.close(handle, streams), |()| IoResult::Done)
        }
        IoOp::Close { handle: IoHandle::NONE } => {
            (0, IoResult::Failed(IoError::InvalidHandle), Vec::new())
        }
        _ => unsupported,
    }
}

fn finish<T>(reply: DiskReply<T>, ok: impl FnOnce(T) -> IoResult) -> (u64, IoResult, Vec<u8>) {
    let result = match reply.result {
        Ok(value) => ok(value),
        Err(error) => IoResult::Failed(error),
    };
    (reply.latency_ns, result, Vec::new())
}
