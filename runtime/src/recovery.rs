//! Shard recovery's policy: whether a crashed shard restarts or is quarantined.
//!
//! A `ShardRecovery` keeps one shard's recent failures over a sliding window on the
//! backend clock, exactly as a supervision group counts its restarts: within a
//! `RestartBudget` of `restart_max` failures per `window`, the shard restarts; the
//! (`restart_max`+1)-th failure within the window quarantines it (with `restart_max = 0`,
//! the first failure does). A quarantined shard stays down, dropping what arrives for it,
//! until its driver revives it. The simulator's world and, later, the production runtime
//! drive it; the core keeps it so both decide alike.
//!
//! This module only decides. The mechanism (crash, discarding arrivals, restart) is
//! `Scheduler`'s, and nothing here reads a clock: the caller passes the time.

use core::time::Duration;

use crate::backend::Timestamp;
use crate::limits::RESTART_MAX_LIMIT;
use crate::supervision::RestartHistory;

/// How often a shard may fail and be restarted: at most `restart_max` restarts within any
/// `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartBudget {
    /// Restarts allowed within `window`; the next failure quarantines. At most
    /// `limits::RESTART_MAX_LIMIT`.
    pub restart_max: u32,
    /// The sliding window, on the backend clock.
    pub window: Duration,
}

/// What to do with a shard that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Within budget: restart it (`Scheduler::restart`).
    Restart,
    /// Past budget: keep it down (its arrivals are discarded) until `ShardRecovery::revive`.
    Quarantine,
}

/// One shard's restart budget and recent failures. The history is allocated at
/// construction, `restart_max` entries, and never grows.
///
/// A driver that owns shards (the simulator's world, a production runtime) asks it at
/// each failure, then crashes the shard (`Scheduler::crash`) and either restarts it
/// (`Scheduler::restart`) or keeps it down (`Scheduler::discard_inbound`) until revived:
///
/// ```
/// use core::time::Duration;
/// use tina::{Recovery, RestartBudget, ShardRecovery, Timestamp};
///
/// let budget = RestartBudget { restart_max: 2, window: Duration::from_secs(10) };
/// let mut recovery = ShardRecovery::new(budget);
/// let at = |secs: u64| Timestamp::from_nanos(secs * 1_000_000_000);
/// assert_eq!(recovery.on_failure(at(1)), Recovery::Restart);
/// assert_eq!(recovery.on_failure(at(2)), Recovery::Restart);
/// assert_eq!(recovery.on_failure(at(3)), Recovery::Quarantine, "the third within 10 s");
/// assert!(recovery.is_quarantined());
/// recovery.revive();
/// assert_eq!(recovery.on_failure(at(4)), Recovery::Restart, "a fresh history");
/// ```
#[derive(Debug)]
pub struct ShardRecovery {
    budget: RestartBudget,
    failures: RestartHistory,
    quarantined: bool,
}

impl ShardRecovery {
    /// A shard with no failure yet. Panics if `budget.restart_max` exceeds
    /// `limits::RESTART_MAX_LIMIT` (the history is allocated here).
    pub fn new(budget: RestartBudget) -> ShardRecovery {
        assert!(budget.restart_max <= RESTART_MAX_LIMIT, "restart budget above the limit");
        ShardRecovery {
            budget,
            failures: RestartHistory::new(budget.restart_max),
            quarantined: false,
        }
    }

    /// The shard failed at `now`: `Restart` if this failure is within the budget (it is
    /// recorded), `Quarantine` if it is the (`restart_max`+1)-th within the window, or if
    /// the shard is quarantined already. Failures older than the window stop counting one
    /// by one, as the window slides.
    pub fn on_failure(&mut self, now: Timestamp) -> Recovery {
        if self.quarantined {
            return Recovery::Quarantine;
        }
        let window = u64::try_from(self.budget.window.as_nanos()).unwrap_or(u64::MAX);
        if self.failures.record(now.as_nanos(), window) {
            Recovery::Restart
        } else {
            self.quarantined = true;
            Recovery::Quarantine
        }
    }

    /// Leaves quarantine with a fresh history (the failures before count no more). The
    /// caller restarts the shard.
    pub fn revive(&mut self) {
        self.quarantined = false;
        self.failures.clear();
    }

    /// Whether the shard is quarantined.
    pub fn is_quarantined(&self) -> bool {
        self.quarantined
    }

    /// The budget this policy applies.
    pub fn budget(&self) -> RestartBudget {
        self.budget
    }
}
