//! The production clock: monotonic time since the runtime started, as the core's
//! `Timestamp`.
//!
//! One `Clock` is read at boot and copied to every shard, so all shards of a process share
//! one epoch and their timestamps compare. `Backend::now` is `clock.now()`; a parking
//! shard turns its next deadline into a timeout with `clock.until(deadline)`.
//!
//! This is the one place of the crate that reads the wall clock (`Instant`, the
//! `CLOCK_MONOTONIC` of the OS); the core never does, which is what lets the simulator
//! own time. Not a timer: deadlines live in each shard's timer wheel.

use core::time::Duration;
use std::time::Instant;

use crate::backend::Timestamp;

/// Monotonic nanoseconds since `Clock::start`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose epoch (`Timestamp::ZERO`) is now.
    #[expect(clippy::disallowed_methods, reason = "the production clock's epoch")]
    pub fn start() -> Clock {
        Clock { epoch: Instant::now() }
    }

    /// Time since the epoch, saturating after about 584 years.
    #[expect(clippy::disallowed_methods, reason = "the production clock: Backend::now")]
    pub fn now(&self) -> Timestamp {
        let elapsed = Instant::now().saturating_duration_since(self.epoch);
        Timestamp::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Time from now until `deadline`, or zero if it has passed: a parking timeout.
    pub fn until(&self, deadline: Timestamp) -> Duration {
        deadline.saturating_duration_since(self.now())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The clock never goes back, a passed deadline is zero away, and a future one is at
    /// most its distance away.
    #[test]
    fn monotonic_and_saturating() {
        let clock = Clock::start();
        let first = clock.now();
        let second = clock.now();
        assert!(second >= first);
        assert_eq!(clock.until(Timestamp::ZERO), Duration::ZERO);
        let later = second.saturating_add(Duration::from_secs(3600));
        let timeout = clock.until(later);
        assert!(timeout <= Duration::from_secs(3600));
        assert!(timeout > Duration::from_secs(3500));
    }
}
