//! The world's side of I/O: it starts what a shard submitted during its tick against the
//! node's disk or the network between nodes, holds each operation until it completes (the
//! disk's latency has passed, or the network says so when it is polled), and hands the
//! completion (with the buffer loans) back to the shard. A cancel (an `Effect::IoWithin`
//! timeout) completes a pending operation at once as `TimedOut`, unless it finished first.
//! A node crash drops its pending operations: the process that would reap them is gone.
//!
//! Not the disk's or the network's semantics (`crate::disk`, `crate::net`) and not the
//! shard's bookkeeping (the core's in-flight table).

use tina::io::{IoError, IoHandle, IoOp, IoReaped, IoResult, IoSubmission, IoToken};

use tina_checkers::WorldEvent;

use super::queue::Entry;
use super::{Status, World};
use crate::disk::{Disk, DiskConfig, DiskCounts, DiskStreams};
use crate::faults::{FaultKind, K};
use crate::net::{NetConfig, NetFaults, NetOp, OpId, Start};

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
    /// The network's operation, while the network holds it (its completion comes from
    /// `poll_net`, not from an `IoDone` entry).
    net_op: Option<OpId>,
    /// A disk operation, performed when its `IoDone` entry comes due.
    on_disk: bool,
}

impl PendingIo {
    /// An operation just started; its result is set when it completes.
    fn new(cell: u32, submission: IoSubmission, on_disk: bool) -> PendingIo {
        PendingIo {
            cell,
            submission,
            result: IoResult::Failed(IoError::Other),
            data: Vec::new(),
            cancelled: false,
            net_op: None,
            on_disk,
        }
    }
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

    fn get(&self, slot: u32) -> &PendingIo {
        self.slots[slot as usize].as_ref().expect("a live slot")
    }

    fn get_mut(&mut self, slot: u32) -> &mut PendingIo {
        self.slots[slot as usize].as_mut().expect("a live slot")
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut PendingIo> {
        self.slots.get_mut(slot as usize)?.as_mut()
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

    /// Calls `f` with the cell and token of every operation held, cancelled ones excepted
    /// (their completion was handed back already).
    pub(super) fn for_each_token(&self, f: &mut dyn FnMut(usize, IoToken)) {
        for pending in self.slots.iter().flatten().filter(|pending| !pending.cancelled) {
            f(pending.cell as usize, pending.submission.token);
        }
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
        // Taken and given back, so the backend's vectors keep their capacity.
        let mut submissions = core::mem::take(&mut self.cells[index].backend.io_submitted);
        for submission in submissions.drain(..) {
            if is_socket_op(&submission.op) {
                self.start_net_op(index, end, submission);
                continue;
            }
            // A disk operation takes effect when it completes, after its latency: a crash
            // before then finds it not done (a write not written, an fsync not durable).
            let latency_ns = self.disks[node].draw_latency(&mut self.disk_streams[node]);
            // Cell indices fit in u32.
            let cell = index as u32;
            let slot = self.io.insert(PendingIo::new(cell, submission, true));
            self.queue.push(end.saturating_add(latency_ns), Entry::IoDone { pending: slot, cell });
        }
        self.cells[index].backend.io_submitted = submissions;
        let mut cancels = core::mem::take(&mut self.cells[index].backend.io_cancels);
        for token in cancels.drain(..) {
            // Cell indices fit in u32.
            let Some(pending) = self.io.find(index as u32, token) else { continue };
            // The network may have finished it already: its own result then comes through
            // the next poll.
            if let Some(op) = pending.net_op.take()
                && self.net.cancel(op).is_none()
            {
                pending.net_op = Some(op);
                continue;
            }
            pending.cancelled = true;
            let reaped = IoReaped {
                token,
                result: IoResult::Failed(IoError::TimedOut),
                input: pending.submission.input.take(),
                receive: pending.submission.receive.take(),
            };
            self.hand_back(index, reaped);
        }
        self.cells[index].backend.io_cancels = cancels;
        self.schedule_net_poll();
    }

    /// Starts a socket operation of shard `index` on the network, at `end`.
    fn start_net_op(&mut self, index: usize, end: u64, submission: IoSubmission) {
        let node = self.cells[index].node;
        // Cell indices fit in u32.
        let cell = index as u32;
        let slot = self.io.insert(PendingIo::new(cell, submission, false));
        // The network copies the bytes to send out of the submission's loan.
        let started = match net_op(&self.io.get(slot).submission) {
            Some(op) => self.net.start(end, node, u64::from(slot), op),
            None => Start::Done(IoResult::Failed(IoError::Unsupported)),
        };
        match started {
            Start::Done(result) => {
                self.io.get_mut(slot).result = result;
                self.queue.push(end, Entry::IoDone { pending: slot, cell });
            }
            Start::Pending(op) => self.io.get_mut(slot).net_op = Some(op),
        }
    }

    /// Takes what the network finished by now, hands each completion back to its shard,
    /// counts and traces the network's faults, and plans the next poll.
    pub(super) fn poll_net(&mut self) {
        let mut completions = core::mem::take(&mut self.net_completions);
        self.net.poll(self.now, &mut completions);
        for completion in completions.drain(..) {
            // Owners are pending slots (u32).
            let slot = completion.owner as u32;
            let Some(pending) = self.io.slot_mut(slot) else { continue };
            if pending.net_op != Some(completion.op) {
                continue;
            }
            pending.net_op = None;
            pending.result = completion.result;
            pending.data = completion.data;
            let cell = pending.cell;
            self.complete_io(slot, cell);
        }
        self.net_completions = completions;
        self.record_net_events();
        self.schedule_net_poll();
    }

    /// The liveness phase: every link heals, unclogs and stops injecting faults (latency
    /// stays).
    pub(super) fn heal_network(&mut self) {
        self.net.heal_all();
        self.net.unclog_all();
        self.partitions.fill(None);
        self.clogs.fill(None);
        let healthy =
            NetFaults::fixed_latency(self.config.net_delay_min_ns, self.config.net_delay_max_ns);
        self.net.set_all_link_faults(healthy).expect("the knobs' bounds keep it valid");
        self.schedule_net_poll();
    }

    /// Queues a `NetPoll` for when the network next has something due.
    pub(super) fn schedule_net_poll(&mut self) {
        let Some(due) = self.net.next_deadline() else { return };
        let due = due.max(self.now);
        if due < self.net_poll_at {
            self.net_poll_at = due;
            self.queue.push(due, Entry::NetPoll);
        }
    }

    /// Counts and traces the faults the network injected since the last look.
    pub(super) fn record_net_events(&mut self) {
        let mut events = core::mem::take(&mut self.net_events);
        self.net.drain_events(&mut events);
        for event in events.drain(..) {
            self.count(net_fault_kind(event.kind));
            let world_event =
                WorldEvent::NetFault { fault: tina::Label::new(event.kind.name()), peer: event.to };
            self.record_node(event.from, &world_event);
        }
        self.net_events = events;
    }

    /// Performs a file operation of shard `index` on its node's disk, counting and tracing
    /// the faults the disk injected.
    fn perform_on_disk(&mut self, index: usize, submission: &IoSubmission) -> (IoResult, Vec<u8>) {
        let node = usize::from(self.cells[index].node);
        if self.disk_full_injected(node, submission) {
            self.count(FaultKind::DiskFull);
            self.record_cell(index, &WorldEvent::DiskFull);
            return (IoResult::Failed(IoError::StorageFull), Vec::new());
        }
        let (disk, streams) = (&mut self.disks[node], &mut self.disk_streams[node]);
        let before = *disk.counts();
        let performed = perform(disk, streams, submission);
        let after = *self.disks[node].counts();
        if after != before {
            self.count_disk_faults(index, &before, &after);
        }
        performed
    }

    /// Whether a write of node `node` finds the disk full though it has room (space taken
    /// by others: the `disk-full` fault, only while faults are injected).
    fn disk_full_injected(&mut self, node: usize, submission: &IoSubmission) -> bool {
        let chance = self.config.faults.ratio(K::DiskFullProbability);
        matches!(submission.op, IoOp::FileWrite { .. })
            && chance.numerator() > 0
            && self.phase == tina_checkers::Phase::Safety
            && !self.shutting_down
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

    /// The operation in pending slot `slot` completes now (a disk operation takes effect
    /// now).
    pub(super) fn complete_io(&mut self, slot: u32, cell: u32) {
        let Some(mut pending) = self.io.take(slot) else { return };
        debug_assert_eq!(pending.cell, cell);
        if pending.cancelled {
            return;
        }
        if pending.on_disk {
            (pending.result, pending.data) =
                self.perform_on_disk(cell as usize, &pending.submission);
        }
        let reaped = pending.submission.complete(pending.result, &pending.data);
        self.net.recycle(pending.data);
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

/// Performs `submission` on the node's disk, at once: the result and any bytes read.
fn perform(
    disk: &mut Disk,
    streams: &mut DiskStreams,
    submission: &IoSubmission,
) -> (IoResult, Vec<u8>) {
    let done = |result: Result<(), IoError>| match result {
        Ok(()) => IoResult::Done,
        Err(error) => IoResult::Failed(error),
    };
    let result = match submission.op {
        IoOp::FileOpen { mode, .. } => {
            disk.open_now(submission.input_bytes(), mode).map(IoResult::Opened)
        }
        IoOp::FileRead { file, offset, len_max } => {
            return match disk.read_now(file, offset, len_max, streams) {
                // At most `len_max`, a u32.
                Ok(bytes) => (IoResult::Received { len: bytes.len() as u32, from: None }, bytes),
                Err(error) => (IoResult::Failed(error), Vec::new()),
            };
        }
        IoOp::FileWrite { file, offset, .. } => disk
            .write_now(file, offset, submission.input_bytes(), &mut streams.error)
            .map(IoResult::Transferred),
        IoOp::FileFsync { file } => Ok(done(disk.fsync_now(file, &mut streams.fsync))),
        IoOp::Close { handle } if Disk::is_file_handle(handle) => Ok(done(disk.close_now(handle))),
        IoOp::Close { .. } => Err(IoError::InvalidHandle),
        _ => Err(IoError::Unsupported),
    };
    (result.unwrap_or_else(IoResult::Failed), Vec::new())
}

/// Whether `op` goes to the network rather than the disk.
fn is_socket_op(op: &IoOp) -> bool {
    match op {
        IoOp::TcpListen { .. }
        | IoOp::TcpAccept { .. }
        | IoOp::TcpConnect { .. }
        | IoOp::TcpSend { .. }
        | IoOp::TcpRecv { .. }
        | IoOp::UdpBind { .. }
        | IoOp::UdpSendTo { .. }
        | IoOp::UdpRecvFrom { .. } => true,
        IoOp::Close { handle } => *handle != IoHandle::NONE && !Disk::is_file_handle(*handle),
        IoOp::FileOpen { .. }
        | IoOp::FileRead { .. }
        | IoOp::FileWrite { .. }
        | IoOp::FileFsync { .. } => false,
    }
}

/// The network's form of a socket operation, lending the bytes to send from its loan.
fn net_op(submission: &IoSubmission) -> Option<NetOp<'_>> {
    let data = submission.input_bytes();
    Some(match submission.op {
        IoOp::TcpListen { addr, backlog } => NetOp::TcpListen { addr, backlog },
        IoOp::TcpAccept { listener } => NetOp::TcpAccept { listener },
        IoOp::TcpConnect { addr } => NetOp::TcpConnect { addr },
        IoOp::TcpSend { socket, .. } => NetOp::TcpSend { socket, data },
        IoOp::TcpRecv { socket, len_max } => NetOp::TcpRecv { socket, len_max },
        IoOp::UdpBind { addr } => NetOp::UdpBind { addr },
        IoOp::UdpSendTo { socket, addr, .. } => NetOp::UdpSendTo { socket, addr, data },
        IoOp::UdpRecvFrom { socket, len_max } => NetOp::UdpRecvFrom { socket, len_max },
        IoOp::Close { handle } => NetOp::Close { handle },
        _ => return None,
    })
}

/// The fault kind of the scheme for one of the network's.
fn net_fault_kind(kind: crate::net::NetFaultKind) -> FaultKind {
    use crate::net::NetFaultKind as N;
    match kind {
        N::DelayTail => FaultKind::NetDelayTail,
        N::UdpLoss => FaultKind::NetUdpLoss,
        N::UdpDuplicate => FaultKind::NetUdpDuplicate,
        N::UdpReorder => FaultKind::NetUdpReorder,
        N::UdpCorrupt => FaultKind::NetUdpCorrupt,
        N::TcpRetransmit => FaultKind::NetTcpRetransmit,
        N::Partition => FaultKind::NetPartition,
        N::Clog => FaultKind::NetClog,
        N::Reset => FaultKind::NetReset,
    }
}

/// The network's configuration from the world's: the latency between nodes is the
/// simulator's `net_delay_min..net_delay_max`; the per-packet faults come from the knobs.
pub(super) fn net_config(config: &super::WorldConfig) -> NetConfig {
    let faults = &config.faults;
    let base = NetFaults::fixed_latency(config.net_delay_min_ns, config.net_delay_max_ns);
    NetConfig {
        faults: NetFaults {
            latency_tail_probability: faults.ratio(K::NetDelayTailProbability),
            latency_tail_ns_max: faults.nanos(K::NetDelayTailMax).max(config.net_delay_max_ns),
            udp_loss_probability: faults.ratio(K::NetUdpLossProbability),
            udp_duplicate_probability: faults.ratio(K::NetUdpDuplicateProbability),
            udp_reorder_probability: faults.ratio(K::NetUdpReorderProbability),
            udp_reorder_delay_ns_min: 0,
            udp_reorder_delay_ns_max: faults.nanos(K::NetUdpReorderDelayMax),
            udp_corrupt_probability: faults.ratio(K::NetUdpCorruptProbability),
            tcp_retransmit_probability: faults.ratio(K::NetTcpRetransmitProbability),
            tcp_reset_probability: faults.ratio(K::NetTcpResetProbability),
            ..base
        },
        ..NetConfig::default()
    }
}
