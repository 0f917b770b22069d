//! Parking an idle shard and waking it, with no lost wake-up: the handshake between a
//! shard that has nothing to do and the peers that publish to its rings.
//!
//! A shard owns one [`Parker`]; each peer holds an [`Unparker`] of it. When a tick leaves
//! nothing runnable, the shard calls [`Parker::park`] with its next timer deadline (as a
//! timeout) and a closure that answers "anything to do?" (any inbound ring non-empty,
//! `spsc::Consumer::is_empty`). `park`:
//!
//! 1. spins, asking the closure, for at most [`SPIN_BUDGET`] rounds (a peer that publishes
//!    within microseconds is seen without a syscall on either side); the budget adapts
//!    down to [`SPIN_BUDGET_MIN`] while spins find nothing (see there);
//! 2. announces that it is about to sleep (`state = PARKED`), then a SeqCst fence;
//! 3. asks the closure once more, and returns if there is work;
//! 4. only then blocks on the shard's eventfd until a peer signals, the timeout passes or
//!    the runtime stops it.
//!
//! A peer that published calls [`Unparker::unpark`]: a SeqCst fence, then a load of the
//! state. Only a shard that announced sleep (`PARKED`) is signalled, by the one peer whose
//! compare-and-swap moves it to `NOTIFIED`: one eventfd write for one parking, none at all
//! while the shard runs, which is the common case under load.
//!
//! Why no wake-up is lost: the shard's store of `PARKED` and its re-check, and the peer's
//! Release store of the ring's tail (in `publish`) and its load of the state, are two
//! store-then-load pairs with a SeqCst fence between each; whichever fence comes first in
//! their single total order, the other side's load sees the first side's store. So either
//! the shard's re-check sees the published values, or the peer sees `PARKED` (or `NOTIFIED`
//! from a peer already signalling) and the signal is sent. The eventfd keeps the signal
//! as a count, so a signal written after the re-check but before the shard blocks is not
//! lost either: the wait returns at once. The price is the occasional spurious wake-up (a
//! signal sent to a shard that found work at its re-check stays in the eventfd and ends
//! the next park early), which costs one extra tick. The loom tests in this file check
//! the handshake over every interleaving.
//!
//! [`Unparker::stop`] wakes the shard for good: every `park` from then on returns
//! [`Wake::Stopped`] at once.
//!
//! How a production backend uses it: create one parker per shard at boot
//! ([`Parker::new`]), give every other shard an `Unparker`, call `unpark` on a target
//! after `publish` put something new in its ring (in `flush_remote`), and implement
//! `Backend::park(deadline)` as `parker.park(deadline - clock.now(), || any inbound ring
//! non-empty)`. A shard with an I/O driver waits on the driver's descriptor too
//! ([`Parker::park_with`]: an epoll instance or an io_uring ring, readable when the kernel has
//! something for the shard), in the same `ppoll` and after the same announce and re-check;
//! a readable driver ends the wait as [`Wake::Io`]. The eventfd is exposed ([`Parker::fd`])
//! for a wait built elsewhere, which must keep the same announce, re-check, block order.
//!
//! Under `cfg(all(loom, test))` the eventfd is replaced by a loom-modelled counting signal
//! (a mutex and a condition variable), and a timed wait returns at once (the deadline may
//! always have passed already), so loom checks the handshake itself. Not a timer, not a
//! scheduler: what runs after a wake-up is the shard's business.

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use super::sync::{Arc, AtomicBool, AtomicU32, AtomicU64, CachePadded, Ordering, fence, spin_loop};

/// Rounds of "anything to do?" an idle shard spins through before it announces sleep.
/// Each round is one call of the closure and one spin hint (tens of nanoseconds), so the
/// budget is some tens of microseconds: about what a syscall pair and a thread wake-up
/// cost, which spinning saves when work arrives that soon.
#[cfg(not(all(loom, test)))]
pub const SPIN_BUDGET: u32 = 1 << 10;
/// Under loom, one spin round: enough to model the spin path, few enough to keep the
/// model small.
#[cfg(all(loom, test))]
pub const SPIN_BUDGET: u32 = 1;

/// The fewest spin rounds a park makes. The budget adapts between this and
/// `SPIN_BUDGET`: it doubles after a spin that found work and halves after one that did
/// not, so a shard whose work arrives soon after it idles (a peer's reply) keeps spinning
/// through the gap, and one whose work comes through the kernel (network completions,
/// which only the final wait sees) stops burning a core on a spin that never pays.
#[cfg(not(all(loom, test)))]
pub const SPIN_BUDGET_MIN: u32 = 1 << 4;
/// Under loom, the budget does not adapt.
#[cfg(all(loom, test))]
pub const SPIN_BUDGET_MIN: u32 = 1;

/// The shard is running (or spinning): peers send no signal.
const RUNNING: u32 = 0;
/// The shard announced it is about to block: the next peer to publish signals it.
const PARKED: u32 = 1;
/// A peer took the duty of signalling this parking; others need not.
const NOTIFIED: u32 = 2;

/// Why `park` returned. Every answer means "tick again" except `Stopped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The closure found work, while spinning or at the re-check: the shard never blocked.
    Work,
    /// A peer's signal (or one left over from an earlier parking) ended the wait.
    Signalled,
    /// The timeout passed.
    Deadline,
    /// A signal interrupted the wait (`EINTR`).
    Interrupted,
    /// The extra descriptor given to `park_with` (an I/O driver's) became readable.
    Io,
    /// The runtime stopped this shard (`Unparker::stop`).
    Stopped,
}

/// What the parker and its unparkers share.
struct Shared {
    /// `RUNNING`, `PARKED` or `NOTIFIED`. Read by every peer after each publish, written
    /// by the shard twice per parking, so it has its lines to itself.
    state: CachePadded<AtomicU32>,
    /// Set once, by `stop`.
    stopped: AtomicBool,
    /// Signals sent (eventfd writes), by `unpark` and `stop`: a counter for tests and the
    /// runtime's statistics, written only on the path that makes a syscall anyway.
    signal_count: AtomicU64,
    signal: Signal,
}

/// The parking side, owned by the shard. `Send`, not `Sync`, not `Clone`: one thread
/// parks.
///
/// ```
/// fn sendable<T: Send>() {}
/// sendable::<tina::prod::park::Parker>();
/// fn shareable<T: Send + Sync + Clone>() {}
/// shareable::<tina::prod::park::Unparker>();
/// ```
///
/// ```compile_fail,E0277
/// fn shareable<T: Sync>() {}
/// shareable::<tina::prod::park::Parker>();
/// ```
pub struct Parker {
    shared: Arc<Shared>,
    /// This park's spin rounds, `SPIN_BUDGET_MIN..=SPIN_BUDGET` (see `SPIN_BUDGET_MIN`).
    spin: u32,
    /// `Cell` is `Send + !Sync`: only the shard's thread parks.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

/// The waking side, one per peer (clone it freely). `Send + Sync`.
#[derive(Clone)]
pub struct Unparker {
    shared: Arc<Shared>,
}

impl Parker {
    /// A parker for one shard, with its eventfd (`EFD_CLOEXEC | EFD_NONBLOCK`). Fails only
    /// as `eventfd(2)` does (out of file descriptors or memory).
    pub fn new() -> std::io::Result<Parker> {
        let shared = Shared {
            state: CachePadded::new(AtomicU32::new(RUNNING)),
            stopped: AtomicBool::new(false),
            signal_count: AtomicU64::new(0),
            signal: Signal::new()?,
        };
        Ok(Parker { shared: Arc::new(shared), spin: SPIN_BUDGET, _not_sync: PhantomData })
    }

    /// A waking side for a peer.
    pub fn unparker(&self) -> Unparker {
        Unparker { shared: Arc::clone(&self.shared) }
    }

    /// Waits until `work` answers true, a peer signals, `timeout` passes (`None`: no
    /// timeout) or the shard is stopped; see the module documentation for the order of
    /// the steps. `work` is called at most `SPIN_BUDGET + 1` times, on this thread.
    pub fn park(&mut self, timeout: Option<Duration>, work: impl FnMut() -> bool) -> Wake {
        self.park_with(timeout, None, work)
    }

    /// `park`, also woken when `io` (an I/O driver's descriptor) becomes readable, which
    /// returns `Wake::Io`. The same steps in the same order: `io` is only waited on in the
    /// final block, alongside the eventfd (a signal pending there wins, as `Signalled`).
    /// Under loom, `io` is ignored: the model checks the handshake.
    pub fn park_with(
        &mut self,
        timeout: Option<Duration>,
        io: Option<std::os::fd::BorrowedFd<'_>>,
        mut work: impl FnMut() -> bool,
    ) -> Wake {
        if timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Wake::Deadline;
        }
        for _ in 0..self.spin {
            if self.is_stopped() {
                return Wake::Stopped;
            }
            if work() {
                self.spin = (self.spin * 2).min(SPIN_BUDGET);
                return Wake::Work;
            }
            spin_loop();
        }
        self.spin = (self.spin / 2).max(SPIN_BUDGET_MIN);
        let shared = &*self.shared;
        shared.state.store(PARKED, Ordering::Relaxed);
        // Orders the announcement before the re-check against the peers' fence between
        // their publish and their load of `state` (the module documentation has the
        // argument).
        fence(Ordering::SeqCst);
        let wake = if shared.stopped.load(Ordering::Relaxed) {
            Wake::Stopped
        } else if work() {
            Wake::Work
        } else {
            shared.signal.wait(timeout, io)
        };
        // Relaxed: a peer that still sees PARKED only sends a spurious signal.
        shared.state.store(RUNNING, Ordering::Relaxed);
        if self.is_stopped() { Wake::Stopped } else { wake }
    }

    /// Whether `Unparker::stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Signals sent to this parker so far (each one eventfd write).
    pub fn signal_count(&self) -> u64 {
        self.shared.signal_count.load(Ordering::Relaxed)
    }

    /// The shard's eventfd, readable while a signal is pending, for an io_uring or epoll
    /// wait that replaces `park`'s own (which must keep `park`'s handshake order).
    #[cfg(not(all(loom, test)))]
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.shared.signal.event.as_fd()
    }
}

impl Unparker {
    /// Wakes the shard if it announced sleep; costs a fence and a load, and no syscall,
    /// while it runs. Call it after `spsc::Producer::publish` made something visible to
    /// the shard (and only then: a wake-up with nothing to find is wasted).
    pub fn unpark(&self) {
        let shared = &*self.shared;
        // Orders the caller's publish (its Release store of a ring's tail) before the load
        // of `state`, against the shard's fence between its announcement and its re-check.
        fence(Ordering::SeqCst);
        if shared.state.load(Ordering::Relaxed) != PARKED {
            return;
        }
        // One signal per parking: whoever moves PARKED to NOTIFIED sends it. A failure
        // means another peer sends it, or the shard is awake again and ticks anyway.
        if shared
            .state
            .compare_exchange(PARKED, NOTIFIED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            shared.signal_count.fetch_add(1, Ordering::Relaxed);
            shared.signal.notify();
        }
    }

    /// Stops the shard for good: wakes it if it sleeps, and makes every later `park` return
    /// `Wake::Stopped` at once. Always one signal, whatever the shard's state.
    pub fn stop(&self) {
        let shared = &*self.shared;
        // Release: a shard that wakes by the signal below reads the flag with Acquire. The
        // signal is sent whatever the state, and stays pending until read, so a shard that
        // missed the flag at its re-check and blocks returns at once: no fence is needed.
        shared.stopped.store(true, Ordering::Release);
        shared.signal_count.fetch_add(1, Ordering::Relaxed);
        shared.signal.notify();
    }

    /// Whether the shard announced sleep and no peer signalled it yet (a watchdog's view;
    /// stale as soon as it is read).
    pub fn is_parked(&self) -> bool {
        self.shared.state.load(Ordering::Relaxed) == PARKED
    }

    /// Signals sent to this parker so far (each one eventfd write).
    pub fn signal_count(&self) -> u64 {
        self.shared.signal_count.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parker")
            .field("state", &self.shared.state.load(Ordering::Relaxed))
            .field("stopped", &self.is_stopped())
            .field("signal_count", &self.signal_count())
            .finish()
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unparker").field("signal_count", &self.signal_count()).finish()
    }
}

/// The shard's eventfd: a count of pending signals that `poll` reports readable.
#[cfg(not(all(loom, test)))]
struct Signal {
    event: nix::sys::eventfd::EventFd,
}

#[cfg(not(all(loom, test)))]
impl Signal {
    fn new() -> std::io::Result<Signal> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        // Non-blocking, so that a write can never block a peer (only an overflow of the
        // 2^64 - 2 count could) and the read after `ppoll` never waits.
        let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
        let event = EventFd::from_value_and_flags(0, flags)?;
        Ok(Signal { event })
    }

    /// Adds one pending signal (one `write(2)`).
    fn notify(&self) {
        match self.event.write(1) {
            // A count at its maximum already wakes the shard.
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(error) => panic!("writing the shard's own eventfd failed: {error}"),
        }
    }

    /// Blocks until a signal is pending, `io` (if any) is readable or `timeout` passes
    /// (`ppoll(2)`, nanosecond timeout), and consumes every pending signal.
    fn wait(&self, timeout: Option<Duration>, io: Option<std::os::fd::BorrowedFd<'_>>) -> Wake {
        use nix::poll::{PollFd, PollFlags, ppoll};
        use nix::sys::time::TimeSpec;
        use std::os::fd::AsFd;
        let event = PollFd::new(self.event.as_fd(), PollFlags::POLLIN);
        let mut both;
        let mut one;
        let fds: &mut [PollFd<'_>] = match io {
            Some(io) => {
                both = [event, PollFd::new(io, PollFlags::POLLIN)];
                &mut both
            }
            None => {
                one = [event];
                &mut one
            }
        };
        match ppoll(fds, timeout.map(TimeSpec::from_duration), None) {
            Ok(0) => Wake::Deadline,
            Ok(_) if !fds[0].any().unwrap_or(true) => Wake::Io,
            Ok(_) => {
                match self.event.read() {
                    // EAGAIN: nothing pending after all (the count was read already).
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
                    Err(error) => panic!("reading the shard's own eventfd failed: {error}"),
                }
                Wake::Signalled
            }
            Err(nix::errno::Errno::EINTR) => Wake::Interrupted,
            Err(error) => panic!("ppoll on the shard's own eventfd failed: {error}"),
        }
    }
}

/// Under loom: the eventfd's count, behind a modelled mutex and condition variable.
#[cfg(all(loom, test))]
struct Signal {
    pending: super::sync::Mutex<u64>,
    changed: super::sync::Condvar,
}

#[cfg(all(loom, test))]
impl Signal {
    fn new() -> std::io::Result<Signal> {
        Ok(Signal { pending: super::sync::Mutex::new(0), changed: super::sync::Condvar::new() })
    }

    fn notify(&self) {
        let mut pending = self.pending.lock().expect("not poisoned");
        *pending += 1;
        self.changed.notify_one();
    }

    /// A wait with a timeout returns at once (the deadline may have passed already): loom
    /// has no time, and this is the case that needs the handshake to be right. A wait
    /// without one blocks until a signal; if none ever comes, loom reports the deadlock.
    /// An I/O descriptor is not modelled.
    fn wait(&self, timeout: Option<Duration>, _io: Option<std::os::fd::BorrowedFd<'_>>) -> Wake {
        let mut pending = self.pending.lock().expect("not poisoned");
        if timeout.is_none() {
            while *pending == 0 {
                pending = self.changed.wait(pending).expect("not poisoned");
            }
        }
        if *pending == 0 {
            return Wake::Deadline;
        }
        *pending = 0;
        Wake::Signalled
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::prod::clock::Clock;

    /// Longest a test waits for another thread to reach a point before it fails.
    const WAIT_MAX: Duration = Duration::from_secs(10);

    /// Waits until the shard behind `unparker` announced sleep.
    fn wait_until_parked(unparker: &Unparker) {
        let clock = Clock::start();
        while !unparker.is_parked() {
            assert!(clock.now().as_nanos() < WAIT_MAX.as_nanos() as u64, "never parked");
            std::thread::yield_now();
        }
    }

    /// Waking a shard that runs costs no syscall: a thousand unparks send no signal, and a
    /// park that finds work at once returns without blocking or signalling.
    #[test]
    fn unpark_while_running_sends_nothing() {
        let mut parker = Parker::new().expect("an eventfd");
        let unparker = parker.unparker();
        for _ in 0..1000 {
            unparker.unpark();
        }
        assert_eq!(unparker.signal_count(), 0);
        assert_eq!(parker.park(None, || true), Wake::Work);
        assert!(!unparker.is_parked());
        assert_eq!(parker.signal_count(), 0);
    }

    /// Spinning asks "anything to do?" exactly `SPIN_BUDGET` times, then the shard
    /// announces sleep and asks once more; work found then returns without blocking.
    #[test]
    fn work_found_at_the_recheck_does_not_block() {
        let mut parker = Parker::new().expect("an eventfd");
        let unparker = parker.unparker();
        let mut calls = 0;
        let wake = parker.park(None, || {
            calls += 1;
            if calls <= SPIN_BUDGET {
                assert!(!unparker.is_parked(), "spinning is not parked");
                return false;
            }
            assert!(unparker.is_parked(), "the re-check follows the announcement");
            true
        });
        assert_eq!(wake, Wake::Work);
        assert_eq!(calls, SPIN_BUDGET + 1);
        assert!(!unparker.is_parked());
        assert_eq!(parker.signal_count(), 0);
    }

    /// The spin budget halves after a spin that found nothing, down to `SPIN_BUDGET_MIN`,
    /// and doubles after one that found work, up to `SPIN_BUDGET`.
    #[test]
    fn the_spin_budget_adapts() {
        let mut parker = Parker::new().expect("an eventfd");
        let unparker = parker.unparker();
        // Parks once; work shows up at call `at` of the spin, or at the re-check after the
        // announcement when `at` is `None`. Returns the calls made.
        let park = |parker: &mut Parker, at: Option<u32>| {
            let mut calls = 0;
            parker.park(None, || {
                calls += 1;
                at.map_or(unparker.is_parked(), |at| calls >= at)
            });
            calls
        };
        assert_eq!(park(&mut parker, None), SPIN_BUDGET + 1);
        assert_eq!(park(&mut parker, None), SPIN_BUDGET / 2 + 1, "halved");
        for _ in 0..32 {
            let _ = park(&mut parker, None);
        }
        assert_eq!(park(&mut parker, None), SPIN_BUDGET_MIN + 1, "down to the floor");
        assert_eq!(park(&mut parker, Some(1)), 1);
        assert_eq!(park(&mut parker, None), 2 * SPIN_BUDGET_MIN + 1, "doubled");
    }

    /// A peer that publishes between the shard's announcement and its block signals it
    /// (once, however many peers unpark); when the re-check finds the work anyway, the
    /// signal stays pending and ends the next park at once instead of being lost.
    #[test]
    #[cfg_attr(miri, ignore = "ppoll is not supported by Miri")]
    fn a_signal_sent_while_parking_is_never_lost() {
        let mut parker = Parker::new().expect("an eventfd");
        let unparker = parker.unparker();
        let mut calls = 0;
        let wake = parker.park(None, || {
            calls += 1;
            if calls <= SPIN_BUDGET {
                return false;
            }
            // The re-check: the shard is announced, as a peer publishing now would see.
            unparker.unpark();
            unparker.unpark();
            true
        });
        assert_eq!(wake, Wake::Work);
        assert_eq!(parker.signal_count(), 1, "one signal per parking");
        assert_eq!(parker.park(None, || false), Wake::Signalled);
        assert_eq!(parker.signal_count(), 1);
    }

    /// A shard blocked with no timeout is woken by a peer's unpark, with one signal; once
    /// it runs again, unparks cost nothing. (Its "anything to do?" says no throughout, so
    /// only the signal can end the wait.)
    #[test]
    #[cfg_attr(miri, ignore = "ppoll is not supported by Miri")]
    #[expect(clippy::disallowed_methods, reason = "a parker exists to cross real threads")]
    fn unpark_wakes_a_parked_shard() {
        let mut parker = Parker::new().expect("an eventfd");
        let unparker = parker.unparker();
        let shard = std::thread::spawn(move || (parker.park(None, || false), parker));
        wait_until_parked(&unparker);
        unparker.unpark();
        let (wake, parker) = shard.join().expect("the shard thread");
        assert_eq!(wake, Wake::Signalled);
        assert_eq!(parker.signal_count(), 1);
        unparker.unpark();
        assert_eq!(parker.signal_count(), 1, "a running shard is not signalled");
    }

    /// A shard with nothing to do wakes at its deadline, not before; a deadline that has
    /// passed returns at once.
    #[test]
    #[cfg_attr(miri, ignore = "ppoll is not supported by Miri")]
    fn a_deadline_wakes_the_shard() {
        let mut parker = Parker::new().expect("an eventfd");
        assert_eq!(parker.park(Some(Duration::ZERO), || panic!("no spinning")), Wake::Deadline);
        let clock = Clock::start();
        let timeout = Duration::from_millis(20);
        assert_eq!(parker.park(Some(timeout), || false), Wake::Deadline);
        assert!(clock.now().as_nanos() >= timeout.as_nanos() as u64);
        assert_eq!(parker.signal_count(), 0);
    }

    /// An I/O driver's descriptor that becomes readable ends the wait as `Io` (for as long
    /// as it stays readable); a quiet one leaves the deadline to end the wait; stopping
    /// still comes first.
    #[test]
    #[cfg_attr(miri, ignore = "ppoll is not supported by Miri")]
    fn a_readable_io_descriptor_wakes_the_shard() {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        use std::os::fd::AsFd;
        let io = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK).expect("an eventfd");
        let mut parker = Parker::new().expect("an eventfd");
        let short = Some(Duration::from_millis(5));
        assert_eq!(parker.park_with(short, Some(io.as_fd()), || false), Wake::Deadline);
        io.write(1).expect("a write");
        assert_eq!(parker.park_with(None, Some(io.as_fd()), || false), Wake::Io);
        assert_eq!(parker.park_with(None, Some(io.as_fd()), || false), Wake::Io, "still readable");
        parker.unparker().stop();
        assert_eq!(parker.park_with(None, Some(io.as_fd()), || false), Wake::Stopped);
    }

    /// `stop` wakes a shard blocked with no timeout, and every later park returns at once.
    #[test]
    #[cfg_attr(miri, ignore = "ppoll is not supported by Miri")]
    #[expect(clippy::disallowed_methods, reason = "a parker exists to cross real threads")]
    fn stop_wakes_the_shard_for_good() {
        let mut parker = Parker::new().expect("an eventfd");
        let unparker = parker.unparker();
        let shard = std::thread::spawn(move || (parker.park(None, || false), parker));
        wait_until_parked(&unparker);
        unparker.stop();
        let (wake, mut parker) = shard.join().expect("the shard thread");
        assert_eq!(wake, Wake::Stopped);
        assert!(parker.is_stopped());
        assert_eq!(parker.park(None, || false), Wake::Stopped);
        assert_eq!(parker.park(None, || true), Wake::Stopped, "stopping comes before work");
    }

    /// The eventfd is exposed, readable exactly while a signal is pending, for a wait in
    /// io_uring or epoll.
    #[test]
    #[cfg_attr(miri, ignore = "poll is not supported by Miri")]
    fn the_eventfd_is_readable_while_a_signal_is_pending() {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut parker = Parker::new().expect("an eventfd");
        let readable = |parker: &Parker| {
            let mut fds = [PollFd::new(parker.fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::ZERO).expect("poll") == 1
        };
        assert!(!readable(&parker));
        parker.unparker().stop();
        assert!(readable(&parker));
        assert_eq!(parker.park(None, || false), Wake::Stopped);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::prod::spsc;
    use crate::prod::sync::model;
    use loom::thread;

    /// What a shard's "anything to do?" looks at.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Recheck {
        /// Its inbound rings, as it must.
        Rings,
        /// Nothing: it always answers no (the bug the handshake guards against).
        Nothing,
    }

    /// A shard drains its inbound rings and parks, with no timeout, whenever they look
    /// empty; it returns once it has received `count` values from each ring.
    fn shard_loop(
        parker: &mut Parker,
        consumers: &mut [spsc::Consumer<u64>],
        count: u64,
        recheck: Recheck,
    ) {
        let mut received = vec![0; consumers.len()];
        while received.iter().any(|&got| got < count) {
            for (ring, consumer) in consumers.iter_mut().enumerate() {
                while let Some(value) = consumer.pop() {
                    assert_eq!(value, received[ring]);
                    received[ring] += 1;
                }
                consumer.release();
            }
            if received.iter().any(|&got| got < count) {
                let wake = parker.park(None, || {
                    recheck == Recheck::Rings
                        && consumers.iter_mut().any(|consumer| !consumer.is_empty())
                });
                assert_ne!(wake, Wake::Stopped);
            }
        }
    }

    /// A peer publishing `count` values one tick at a time, unparking the shard after each.
    fn peer(mut producer: spsc::Producer<u64>, unparker: Unparker, count: u64) {
        for value in 0..count {
            producer.push(value).expect("the ring holds every value");
            producer.publish();
            unparker.unpark();
        }
    }

    /// No lost wake-up: a shard that parks after finding its ring empty is always woken by
    /// a peer that publishes and unparks, in every interleaving (a lost one is a deadlock,
    /// which loom reports), and it receives both values in order.
    #[test]
    fn a_publish_always_wakes_the_parked_shard() {
        model(|| {
            let (producer, consumer) = spsc::channel::<u64>(3).expect("valid");
            let mut parker = Parker::new().expect("a signal");
            let unparker = parker.unparker();
            let writer = thread::spawn(move || peer(producer, unparker, 3));
            shard_loop(&mut parker, &mut [consumer], 3, Recheck::Rings);
            writer.join().expect("the peer thread");
        });
    }

    /// Two peers publish to one shard at once: however their unparks race (only one of
    /// them may signal a parking), the shard is woken for both.
    #[test]
    fn two_peers_never_both_miss_the_shard() {
        model(|| {
            let (producer_a, consumer_a) = spsc::channel::<u64>(1).expect("valid");
            let (producer_b, consumer_b) = spsc::channel::<u64>(1).expect("valid");
            let mut parker = Parker::new().expect("a signal");
            let unparker_a = parker.unparker();
            let unparker_b = parker.unparker();
            let peer_a = thread::spawn(move || peer(producer_a, unparker_a, 1));
            let peer_b = thread::spawn(move || peer(producer_b, unparker_b, 1));
            shard_loop(&mut parker, &mut [consumer_a, consumer_b], 1, Recheck::Rings);
            peer_a.join().expect("peer a");
            peer_b.join().expect("peer b");
        });
    }

    /// `stop` from another thread always ends a shard that parks with no timeout.
    #[test]
    fn stop_always_ends_the_shard() {
        model(|| {
            let mut parker = Parker::new().expect("a signal");
            let unparker = parker.unparker();
            let stopper = thread::spawn(move || unparker.stop());
            while parker.park(None, || false) != Wake::Stopped {}
            stopper.join().expect("the stopper thread");
        });
    }

    /// The canary: a shard whose re-check does not look at its rings loses the wake-up
    /// when the peer publishes and unparks before the announcement, and loom finds that
    /// interleaving (a deadlock). Proves the tests above can fail. Loom aborts the process
    /// on a deadlock (its objects panic again while unwinding), so the model runs in a
    /// child process of this same test binary, and the test passes when the child fails
    /// with loom's deadlock report.
    #[test]
    #[expect(clippy::disallowed_methods, reason = "one variable tells the child to run the model")]
    fn a_shard_that_skips_the_recheck_deadlocks() {
        const CHILD: &str = "TINA_LOOM_CANARY_CHILD";
        if std::env::var_os(CHILD).is_some() {
            model(|| {
                let (producer, consumer) = spsc::channel::<u64>(2).expect("valid");
                let mut parker = Parker::new().expect("a signal");
                let unparker = parker.unparker();
                let writer = thread::spawn(move || peer(producer, unparker, 1));
                shard_loop(&mut parker, &mut [consumer], 1, Recheck::Nothing);
                writer.join().expect("the peer thread");
            });
            return;
        }
        let module = module_path!().strip_prefix("tina::").expect("a path in this crate");
        let name = format!("{module}::a_shard_that_skips_the_recheck_deadlocks");
        let output = std::process::Command::new(std::env::current_exe().expect("this binary"))
            .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("the test binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "the model passed:\n{stderr}");
        assert!(stderr.contains("deadlock; threads"), "not a deadlock:\n{stderr}");
    }
}
