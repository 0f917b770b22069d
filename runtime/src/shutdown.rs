//! Graceful shutdown in three phases, the shard's vocabulary: what a finished shutdown
//! reports (`ShutdownReport`) and where a shard is in it (`ShutdownState`).
//!
//! 1. Notify (`Scheduler::begin_shutdown`): every isolate alive gets one `Tag::SHUTDOWN`
//!    message at its next wait for messages (a pending bit of its slot, like a fired timer or
//!    an I/O completion: it takes no envelope and cannot be dropped), after the reply or the
//!    completion it may be waiting for. Receives in flight (`TcpAccept`, `TcpRecv`,
//!    `UdpRecvFrom`) are cancelled through `Backend::io_cancel` and complete as
//!    `Failed(TimedOut)`, so a server whose connections wait on a receive drains without
//!    waiting out its receive timeout (nothing sent is lost by it: what the peer sent stays
//!    in the socket, unread, and the request it carried was never answered). From then on
//!    no isolate may spawn (`SpawnError::ShuttingDown`) and no supervisor restarts a child.
//! 2. Drain: ticks go on as ever (messages, timers, I/O); the drain is finished when no
//!    isolate of the shard is alive.
//! 3. Stop: at the deadline, whatever is still alive is torn down (`ExitKind::Shutdown`,
//!    its handles closed as on any teardown).
//!
//! Each phase is traced (`Event::ShutdownBegin`, `ShutdownDrained`, `ShutdownForced`).
//! The mechanism lives in the scheduler and `shard/`; this module decides nothing.

use crate::backend::Timestamp;

/// How a shard's shutdown ended. Returned by `Scheduler::shutdown_report` once it is
/// finished: drained, or forced at the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every isolate ended by itself before the deadline.
    pub drained: bool,
    /// Isolates alive (or spawned, not yet started) when the shutdown began.
    pub isolates_at_start: u32,
    /// Isolates still alive at the deadline, torn down then (zero when drained).
    pub remaining_isolates: u32,
    /// When it began, on the shard's clock.
    pub began_at: Timestamp,
    /// The drain's deadline, on the shard's clock.
    pub deadline: Timestamp,
    /// When it finished (the tick that saw the last isolate end, or the deadline's tick).
    pub ended_at: Timestamp,
}

/// Where a shard is in its shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShutdownState {
    pub(crate) began_at: Timestamp,
    pub(crate) deadline: Timestamp,
    pub(crate) isolates_at_start: u32,
    /// Set once the drain finished or was forced.
    pub(crate) report: Option<ShutdownReport>,
}

impl ShutdownState {
    /// A shutdown that began at `began_at` with `isolates_at_start` isolates alive.
    pub(crate) fn new(began_at: Timestamp, deadline: Timestamp, isolates_at_start: u32) -> Self {
        ShutdownState { began_at, deadline, isolates_at_start, report: None }
    }

    /// Whether the drain is still under way.
    pub(crate) fn draining(&self) -> bool {
        self.report.is_none()
    }

    /// Records the end: `remaining` isolates were torn down at `ended_at` (zero: drained).
    pub(crate) fn finish(&mut self, ended_at: Timestamp, remaining: u32) -> ShutdownReport {
        let report = ShutdownReport {
            drained: remaining == 0,
            isolates_at_start: self.isolates_at_start,
            remaining_isolates: remaining,
            began_at: self.began_at,
            deadline: self.deadline,
            ended_at,
        };
        self.report = Some(report);
        report
    }
}
