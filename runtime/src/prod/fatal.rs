//! Fatal signals on shard threads: a SIGSEGV, SIGBUS, SIGILL or SIGFPE raised while a
//! shard's isolate code runs quarantines that shard and leaves the others serving; one
//! that hit state other threads share aborts the process with one clear line.
//!
//! Rust has no sound way back into the frames that faulted: unwinding out of a signal
//! handler is undefined behaviour, and the faulting code may have left the shard's arenas
//! half-updated. So nothing is resumed or restarted. The handler records the fault, marks
//! the shard quarantined and parks its thread for good; the thread's stack, its
//! `Scheduler` and every isolate in it are abandoned, never reused and never dropped. The
//! core's `ShardRecovery` (restart within a budget, else quarantine) models a shard whose
//! root group escalated; on threads a fatal signal always quarantines, since restarting
//! would reuse the abandoned memory.
//!
//! # The path of a signal
//!
//! - `Runtime::boot` installs one handler for the four signals, once per process
//!   (`sigaction` with `SA_SIGINFO | SA_ONSTACK`, the four signals blocked while it runs),
//!   saving the dispositions it replaced. It also maps one alternate signal stack per
//!   shard ([`ALT_STACK_SIZE`] bytes above a guard page), so that a shard's stack overflow
//!   still has a stack to run the handler on.
//! - Each shard thread, before booting its scheduler, installs its alternate stack and
//!   points a thread-local at its slot: atomics for the signal, the fault address, whether
//!   isolate code was running (`contain`'s depth) and whether the allocator was running
//!   ([`GuardedAlloc`]'s depth), and a quarantined flag.
//! - On a fault (or a signal this process sent to the thread, as [`provoke`] does), the
//!   handler stores those atomics and then decides with [`FatalFault::contained`]:
//!   - in isolate code and not in the allocator: the shard is quarantined. The handler
//!     wakes the watchdog (a `write(2)` to an eventfd) and parks forever in `pause(2)`.
//!     Peers' sends to the shard fail as `TransportFull` (the core counts them as
//!     `ring_full` drops and sends any drop notice; the backend also counts them as
//!     `ShardReport::sends_to_quarantined`); injectors return
//!     `InjectError::Quarantined`; `ShardReport::quarantined` says what happened; the
//!     watchdog prints one line to stderr.
//!   - outside isolate code (the shard's loop, its rings and reports, code other threads
//!     wait on) or inside the allocator (whose state every thread shares): quarantining
//!     would leave other threads facing half-updated shared state, so the handler prints
//!     one line (which shard, which signal, why it cannot be contained) and aborts. It
//!     aborts in the handler rather than in the watchdog so that no other thread runs on
//!     with the broken state, and so that a core dump shows the faulting thread.
//! - On any other thread (the main thread, an application's thread, a shard thread before
//!   it takes its slot or after its loop gives it back), and for a signal sent from
//!   elsewhere (`kill`), the handler hands the signal to the disposition it replaced:
//!   std's stack-overflow handler for SIGSEGV and SIGBUS, another handler, or the default
//!   action, which ends the process with that signal. A fatal signal is never swallowed.
//!
//! # The watchdog
//!
//! One thread per runtime (`tina-watchdog`) wakes on that eventfd or every
//! [`WATCHDOG_INTERVAL`]. It announces quarantines and aborts the process when a booted
//! shard that is not parked has not advanced its tick counter for
//! `RuntimeConfig::stall_limit` (an isolate handler that never returns starves every
//! isolate of its shard, and `Runtime::stop` could never join it). The shard's loop
//! publishes its ticks with one relaxed store per tick. The watchdog forgets what it saw
//! after a wake-up later than half the stall limit (the whole process was stopped or
//! starved, so a shard's silence proves nothing). Stopping the runtime stops it.
//!
//! # Limits
//!
//! - Without [`GuardedAlloc`] installed as the binary's `#[global_allocator]`, a fault
//!   inside the allocator on behalf of isolate code cannot be told from one in isolate
//!   code, and is quarantined; another thread may then wait forever for an allocator lock
//!   the faulting thread held.
//! - A lock an isolate held when it faulted (a `Mutex` it shares with another thread,
//!   std's stderr lock while it printed) stays held. tina's own shared state is never
//!   touched from isolate code except through the rings, whose slots a producer fills
//!   before it publishes them (outside isolate code).
//! - Messages already in a quarantined shard's rings are lost without a drop notice; so
//!   are messages its isolates were handling.
//! - A quarantined shard's thread, stack, alternate stack, arenas and eventfds are never
//!   freed: the thread is detached when the runtime stops.
//! - Another library that later installs its own handler for these signals replaces this
//!   one.

use core::fmt::{self, Write as _};
use core::time::Duration;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::clock::Clock;
use super::sync::CachePadded;
use crate::ShardId;

mod sys;

pub(crate) use sys::{AltStack, ShardSignals, install};
pub use sys::{GuardedAlloc, provoke};

/// Bytes of each shard thread's alternate signal stack, the stack the handler runs on (a
/// guard page below it is mapped besides). Far above what the handler needs (it formats
/// one line), and above the largest signal frame of current x86 and Arm processors.
pub const ALT_STACK_SIZE: usize = 64 * 1024;
/// How often the watchdog looks at the shards' tick counters when nothing wakes it.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest `RuntimeConfig::stall_limit` accepted: five watchdog intervals.
pub const STALL_LIMIT_MIN: Duration = Duration::from_millis(500);
/// `RuntimeConfig::stall_limit` by default: far above any tick a shard should run (a tick
/// is bounded work), short enough that a stuck node is noticed.
pub const STALL_LIMIT_DEFAULT: Duration = Duration::from_secs(10);
/// Bytes of one line the handler or the watchdog writes to stderr (longer ones are cut).
const LINE_MAX: usize = 320;

/// A signal raised by a faulting instruction, which the runtime catches on shard threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FatalSignal {
    /// SIGSEGV: an access the thread may not make (a bad pointer, a stack overflow).
    Segv,
    /// SIGBUS: an access the memory cannot serve (a truncated mapped file, misalignment).
    Bus,
    /// SIGILL: an instruction the processor will not run.
    Ill,
    /// SIGFPE: an arithmetic trap (an integer division by zero in code that does not check).
    Fpe,
}

impl FatalSignal {
    /// The four, in this order.
    pub const ALL: [FatalSignal; 4] =
        [FatalSignal::Segv, FatalSignal::Bus, FatalSignal::Ill, FatalSignal::Fpe];

    /// Its number (`libc::SIGSEGV` and so on).
    pub const fn number(self) -> i32 {
        match self {
            FatalSignal::Segv => libc::SIGSEGV,
            FatalSignal::Bus => libc::SIGBUS,
            FatalSignal::Ill => libc::SIGILL,
            FatalSignal::Fpe => libc::SIGFPE,
        }
    }

    /// The signal of that number, if it is one of the four.
    pub fn from_number(number: i32) -> Option<FatalSignal> {
        FatalSignal::ALL.into_iter().find(|signal| signal.number() == number)
    }

    /// Its name: `"SIGSEGV"`, `"SIGBUS"`, `"SIGILL"` or `"SIGFPE"`.
    pub const fn name(self) -> &'static str {
        match self {
            FatalSignal::Segv => "SIGSEGV",
            FatalSignal::Bus => "SIGBUS",
            FatalSignal::Ill => "SIGILL",
            FatalSignal::Fpe => "SIGFPE",
        }
    }

    /// The signal named `name`, with or without the `SIG` prefix, in any case (`"SIGSEGV"`,
    /// `"segv"`).
    pub fn from_name(name: &str) -> Option<FatalSignal> {
        FatalSignal::ALL.into_iter().find(|signal| {
            let full = signal.name();
            full.eq_ignore_ascii_case(name) || full[3..].eq_ignore_ascii_case(name)
        })
    }

    /// Its position in `ALL`.
    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FatalSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fatal signal a shard thread took, as its handler recorded it.
///
/// Displays as, for example, `SIGSEGV at 0x0 in isolate code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FatalFault {
    /// The signal.
    pub signal: FatalSignal,
    /// The address the kernel reported (the bad access for SIGSEGV and SIGBUS, the
    /// instruction for SIGILL and SIGFPE); `None` for a signal this process sent to the
    /// thread ([`provoke`], `pthread_kill`), which has none.
    pub address: Option<usize>,
    /// Whether isolate code (a handler, an `init`, a state's `Drop`, or core code a `Ctx`
    /// call ran for it) was running.
    pub in_isolate: bool,
    /// Whether the allocator was running (known only with [`GuardedAlloc`] installed).
    pub in_allocator: bool,
}

impl FatalFault {
    /// Whether quarantining the shard contains it: isolate code was running, outside the
    /// allocator. Otherwise the process aborts.
    pub fn contained(&self) -> bool {
        self.uncontainable().is_none()
    }

    /// Why quarantining the shard cannot contain it, if it cannot.
    pub(crate) fn uncontainable(&self) -> Option<Uncontainable> {
        if self.in_allocator {
            Some(Uncontainable::InAllocator)
        } else if !self.in_isolate {
            Some(Uncontainable::OutsideIsolate)
        } else {
            None
        }
    }
}

impl fmt::Display for FatalFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signal)?;
        match self.address {
            Some(address) => write!(f, " at {address:#x}")?,
            None => f.write_str(" sent to the thread (no fault address)")?,
        }
        f.write_str(if self.in_allocator {
            " in the allocator"
        } else if self.in_isolate {
            " in isolate code"
        } else {
            " outside isolate code"
        })
    }
}

/// Why a fault cannot be contained by quarantining its shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Uncontainable {
    /// The allocator was running: its state is shared by every thread.
    InAllocator,
    /// The shard's own loop was running: its rings, reports and parker are shared with
    /// other threads.
    OutsideIsolate,
}

impl Uncontainable {
    fn why(self) -> &'static str {
        match self {
            Uncontainable::InAllocator => {
                "the allocator's state is shared by every thread and may be half-updated"
            }
            Uncontainable::OutsideIsolate => {
                "the shard's own loop was running, and the rings, reports and locks it shares \
                 with other threads may be half-updated"
            }
        }
    }
}

/// One line for stderr, built without allocating (the handler and the watchdog build it
/// while another thread may hold the allocator's or stderr's lock). Cut at `LINE_MAX`.
pub(crate) struct Line {
    bytes: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line { bytes: [0; LINE_MAX], len: 0 }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let take = text.len().min(LINE_MAX - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// What the watchdog prints when a shard is quarantined.
pub(crate) fn quarantine_line(shard: usize, fault: &FatalFault) -> Line {
    let mut line = Line::new();
    let _ = writeln!(
        line,
        "tina: shard {shard} quarantined: {fault}; its thread is parked for good and its \
         memory abandoned, the other shards keep running"
    );
    line
}

/// What the handler prints before it aborts the process.
pub(crate) fn abort_line(shard: usize, fault: &FatalFault, why: Uncontainable) -> Line {
    let mut line = Line::new();
    let _ = writeln!(
        line,
        "tina: shard {shard} took {fault}, which quarantining the shard cannot contain: {}; \
         aborting",
        why.why()
    );
    line
}

/// What the watchdog prints before it aborts the process for a stalled shard.
pub(crate) fn stall_line(shard: usize, stalled: Duration, limit: Duration) -> Line {
    let mut line = Line::new();
    let _ = writeln!(
        line,
        "tina: shard {shard} stalled: no tick for {stalled:?} (stall limit {limit:?}); an \
         isolate handler that never returns starves its whole shard; aborting"
    );
    line
}

/// `FaultCell::flags`: the kernel reported an address.
const HAS_ADDRESS: u8 = 1;
/// `FaultCell::flags`: isolate code was running.
const IN_ISOLATE: u8 = 2;
/// `FaultCell::flags`: the allocator was running.
const IN_ALLOCATOR: u8 = 4;
/// The low bit of a heartbeat: the shard is parked (the rest is its tick count).
const PARKED: u64 = 1;

/// What the handler records, on its own cache lines: peers read `quarantined` on every
/// send to the shard, and the shard's heartbeat must not invalidate it.
#[derive(Debug, Default)]
struct FaultCell {
    /// Set last, with Release: the other fields are complete once it reads true.
    quarantined: AtomicBool,
    /// The signal number.
    signal: AtomicI32,
    address: AtomicUsize,
    flags: AtomicU8,
}

/// What the shard's loop publishes for the watchdog.
#[derive(Debug, Default)]
struct Life {
    /// `ticks << 1 | PARKED`.
    beat: AtomicU64,
    /// Booted: the watchdog watches its heartbeat from now on.
    running: AtomicBool,
    /// Its thread has left the loop (stopped, or failed to boot): `stop` may join it.
    exited: AtomicBool,
}

/// One shard's fatal-signal state, shared by its thread (and its handler), its peers, the
/// watchdog and the runtime handle.
#[derive(Debug)]
pub(crate) struct FatalSlot {
    shard: usize,
    /// The watchdog's eventfd, open as long as any thread can run the handler for this
    /// slot (the board owns it, and every shard thread keeps the board alive).
    wake: RawFd,
    fault: CachePadded<FaultCell>,
    life: CachePadded<Life>,
}

/// A slot as the watchdog sees it at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotView {
    fault: Option<FatalFault>,
    /// Booted and not exited.
    watched: bool,
    beat: u64,
}

impl FatalSlot {
    fn new(shard: usize, wake: RawFd) -> FatalSlot {
        FatalSlot { shard, wake, fault: CachePadded::default(), life: CachePadded::default() }
    }

    /// The shard's index.
    pub(crate) fn shard(&self) -> usize {
        self.shard
    }

    /// The descriptor the handler writes to, to wake the watchdog.
    pub(crate) fn wake_fd(&self) -> RawFd {
        self.wake
    }

    /// Records `fault` and marks the shard quarantined. Async-signal-safe: atomic stores
    /// only.
    pub(crate) fn record(&self, fault: &FatalFault) {
        let mut flags = 0;
        if fault.address.is_some() {
            flags |= HAS_ADDRESS;
        }
        if fault.in_isolate {
            flags |= IN_ISOLATE;
        }
        if fault.in_allocator {
            flags |= IN_ALLOCATOR;
        }
        self.fault.signal.store(fault.signal.number(), Ordering::Relaxed);
        self.fault.address.store(fault.address.unwrap_or(0), Ordering::Relaxed);
        self.fault.flags.store(flags, Ordering::Relaxed);
        self.fault.quarantined.store(true, Ordering::Release);
    }

    /// The fault that quarantined the shard, if one did.
    pub(crate) fn fault(&self) -> Option<FatalFault> {
        if !self.fault.quarantined.load(Ordering::Acquire) {
            return None;
        }
        let flags = self.fault.flags.load(Ordering::Relaxed);
        Some(FatalFault {
            // Only the handler stores it, and only one of the four.
            signal: FatalSignal::from_number(self.fault.signal.load(Ordering::Relaxed))?,
            address: (flags & HAS_ADDRESS != 0).then(|| self.fault.address.load(Ordering::Relaxed)),
            in_isolate: flags & IN_ISOLATE != 0,
            in_allocator: flags & IN_ALLOCATOR != 0,
        })
    }

    /// Whether the shard is quarantined: one relaxed load, for every send to the shard
    /// (nothing else is read on its strength).
    #[inline]
    pub(crate) fn is_quarantined(&self) -> bool {
        self.fault.quarantined.load(Ordering::Relaxed)
    }

    /// The shard's loop ran its `ticks`-th tick.
    #[inline]
    pub(crate) fn beat(&self, ticks: u64) {
        self.life.beat.store(ticks << 1, Ordering::Relaxed);
    }

    /// The shard is about to park after `ticks` ticks (a parked shard is not stalled);
    /// `beat` clears it.
    #[inline]
    pub(crate) fn parking(&self, ticks: u64) {
        self.life.beat.store(ticks << 1 | PARKED, Ordering::Relaxed);
    }

    /// The shard booted: the watchdog watches its heartbeat from now on.
    pub(crate) fn running(&self) {
        self.life.running.store(true, Ordering::Release);
    }

    /// The shard's thread is done with the loop.
    pub(crate) fn exit(&self) {
        self.life.exited.store(true, Ordering::Release);
    }

    /// Whether the thread will never tick again: it left its loop, or it is quarantined.
    pub(crate) fn settled(&self) -> bool {
        self.life.exited.load(Ordering::Acquire) || self.fault.quarantined.load(Ordering::Acquire)
    }

    fn view(&self) -> SlotView {
        SlotView {
            fault: self.fault(),
            watched: self.life.running.load(Ordering::Acquire)
                && !self.life.exited.load(Ordering::Acquire),
            beat: self.life.beat.load(Ordering::Relaxed),
        }
    }
}

/// Every shard's slot and the watchdog's eventfd: made at boot, shared by the shard
/// threads, the backend's peers, the watchdog and the handle.
#[derive(Debug)]
pub(crate) struct Board {
    slots: Box<[FatalSlot]>,
    wake: EventFd,
    /// The runtime is stopping: the watchdog returns.
    stopping: AtomicBool,
}

impl Board {
    /// Slots for `shards` shards and an eventfd for their handlers.
    pub(crate) fn new(shards: usize) -> io::Result<Board> {
        // Non-blocking: a handler's write never blocks (only a count at 2^64 - 2 could),
        // and the watchdog's read after poll never waits.
        let wake =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let fd = wake.as_fd().as_raw_fd();
        let slots = (0..shards).map(|shard| FatalSlot::new(shard, fd)).collect();
        Ok(Board { slots, wake, stopping: AtomicBool::new(false) })
    }

    /// Shard `shard`'s slot.
    pub(crate) fn slot(&self, shard: usize) -> &FatalSlot {
        &self.slots[shard]
    }

    /// Whether `shard` is quarantined (false for a shard that does not exist).
    #[inline]
    pub(crate) fn is_quarantined(&self, shard: usize) -> bool {
        self.slots.get(shard).is_some_and(FatalSlot::is_quarantined)
    }

    /// What quarantined `shard`, if anything did.
    pub(crate) fn fault(&self, shard: usize) -> Option<FatalFault> {
        self.slots.get(shard).and_then(FatalSlot::fault)
    }

    /// The first quarantined shard, in shard order, and its fault.
    pub(crate) fn first_fault(&self) -> Option<(ShardId, FatalFault)> {
        self.slots.iter().find_map(|slot| {
            // Shard indices fit in u8 (the spec was validated).
            slot.fault().map(|fault| (ShardId(slot.shard as u8), fault))
        })
    }

    /// Blocks until a handler or `stop` writes the eventfd, or `timeout` passes, and
    /// empties it.
    fn wait(&self, timeout: Option<Duration>) {
        use nix::poll::{PollFd, PollFlags, ppoll};
        use nix::sys::time::TimeSpec;
        let mut fds = [PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
        // A failure (EINTR) is a spurious wake-up: the watchdog looks and waits again.
        if let Ok(1..) = ppoll(&mut fds, timeout.map(TimeSpec::from_duration), None) {
            // EAGAIN: emptied already.
            let _ = self.wake.read();
        }
    }

    /// Wakes the watchdog.
    fn wake(&self) {
        // EAGAIN (a count at its maximum) wakes it too.
        let _ = self.wake.write(1);
    }
}

/// How long a shard has shown the same heartbeat while the watchdog looked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StallTracker {
    /// The heartbeat last seen and when (nanoseconds on the watchdog's clock) it was first
    /// seen.
    seen: Option<(u64, u64)>,
}

impl StallTracker {
    /// How long `beat` has been unchanged as of `now` (nanoseconds); zero for a parked
    /// shard or a new heartbeat.
    pub(crate) fn observe(&mut self, beat: u64, now: u64) -> Duration {
        if beat & PARKED != 0 {
            self.seen = None;
            return Duration::ZERO;
        }
        match self.seen {
            Some((last, since)) if last == beat => Duration::from_nanos(now.saturating_sub(since)),
            _ => {
                self.seen = Some((beat, now));
                Duration::ZERO
            }
        }
    }

    /// Forgets what was seen: the next observation starts afresh.
    pub(crate) fn forget(&mut self) {
        self.seen = None;
    }
}

/// What the watchdog found about one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finding {
    /// Newly quarantined: announce it once.
    Quarantined(FatalFault),
    /// Not parked, no tick for this long, at or past the limit: abort.
    Stalled(Duration),
}

/// The watchdog's judgement, separate from its thread so it can be tested on its own.
#[derive(Debug)]
pub(crate) struct Review {
    stall_limit: Option<Duration>,
    trackers: Vec<StallTracker>,
    announced: Vec<bool>,
    /// When the watchdog last looked (nanoseconds).
    last_look: Option<u64>,
}

impl Review {
    /// A review of `shards` shards (allocated once, before the watchdog's loop).
    pub(crate) fn new(shards: usize, stall_limit: Option<Duration>) -> Review {
        Review {
            stall_limit,
            trackers: vec![StallTracker::default(); shards],
            announced: vec![false; shards],
            last_look: None,
        }
    }

    /// Starts a look at `now`: after a wake-up later than half the stall limit, the
    /// watchdog itself was not running, so it forgets every heartbeat it saw.
    pub(crate) fn begin(&mut self, now: u64) {
        let late = match (self.last_look, self.stall_limit) {
            (Some(last), Some(limit)) => Duration::from_nanos(now.saturating_sub(last)) > limit / 2,
            _ => false,
        };
        if late {
            self.trackers.iter_mut().for_each(StallTracker::forget);
        }
        self.last_look = Some(now);
    }

    /// Looks at shard `shard`'s `view` at `now`.
    pub(crate) fn look(&mut self, shard: usize, view: SlotView, now: u64) -> Option<Finding> {
        if let Some(fault) = view.fault {
            self.trackers[shard].forget();
            let announced = core::mem::replace(&mut self.announced[shard], true);
            return (!announced).then_some(Finding::Quarantined(fault));
        }
        let limit = self.stall_limit?;
        if !view.watched {
            self.trackers[shard].forget();
            return None;
        }
        let stalled = self.trackers[shard].observe(view.beat, now);
        (stalled >= limit).then_some(Finding::Stalled(stalled))
    }

    /// How long the watchdog may sleep: forever without a stall limit.
    fn timeout(&self) -> Option<Duration> {
        self.stall_limit.map(|_| WATCHDOG_INTERVAL)
    }
}

/// The watchdog thread of one runtime. See the module documentation.
#[derive(Debug)]
pub(crate) struct Watchdog {
    board: Arc<Board>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the `tina-watchdog` thread over `board`'s shards.
    #[expect(
        clippy::disallowed_methods,
        reason = "the production runtime's watchdog is a thread of its own"
    )]
    pub(crate) fn start(board: Arc<Board>, stall_limit: Option<Duration>) -> io::Result<Watchdog> {
        let watched = Arc::clone(&board);
        let review = Review::new(board.slots.len(), stall_limit);
        let thread = std::thread::Builder::new()
            .name("tina-watchdog".into())
            .spawn(move || watch(&watched, review))?;
        Ok(Watchdog { board, thread: Some(thread) })
    }

    /// Stops the thread and joins it.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.board.stopping.store(true, Ordering::Release);
        self.board.wake();
        if let Some(thread) = self.thread.take() {
            // The watchdog only aborts or returns; a panic would be a broken invariant
            // already printed.
            let _ = thread.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The watchdog's loop. It allocates nothing: another thread may have faulted holding
/// the allocator's lock (without `GuardedAlloc`), and its lines go straight to `write(2)`.
fn watch(board: &Board, mut review: Review) {
    let clock = Clock::start();
    loop {
        board.wait(review.timeout());
        if board.stopping.load(Ordering::Acquire) {
            return;
        }
        let now = clock.now().as_nanos();
        review.begin(now);
        for slot in &board.slots {
            match review.look(slot.shard, slot.view(), now) {
                None => {}
                Some(Finding::Quarantined(fault)) => {
                    sys::write_stderr(quarantine_line(slot.shard, &fault).as_bytes());
                }
                Some(Finding::Stalled(stalled)) => {
                    let limit = review.stall_limit.unwrap_or(stalled);
                    sys::write_stderr(stall_line(slot.shard, stalled, limit).as_bytes());
                    std::process::abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn fault(in_isolate: bool, in_allocator: bool) -> FatalFault {
        FatalFault { signal: FatalSignal::Segv, address: Some(0), in_isolate, in_allocator }
    }

    #[test]
    fn signals_round_trip_by_number_and_name() {
        for signal in FatalSignal::ALL {
            assert_eq!(FatalSignal::from_number(signal.number()), Some(signal));
            assert_eq!(FatalSignal::from_name(signal.name()), Some(signal));
            assert_eq!(FatalSignal::from_name(&signal.name()[3..].to_lowercase()), Some(signal));
            assert_eq!(FatalSignal::ALL[signal.index()], signal);
            assert_eq!(signal.to_string(), signal.name());
        }
        assert_eq!(FatalSignal::from_number(libc::SIGABRT), None);
        assert_eq!(FatalSignal::from_number(0), None);
        assert_eq!(FatalSignal::from_name("SIGKILL"), None);
        assert_eq!(FatalSignal::from_name("SIG"), None);
    }

    /// Only a fault in isolate code, outside the allocator, is contained.
    #[test]
    fn only_isolate_code_outside_the_allocator_is_contained() {
        assert!(fault(true, false).contained());
        assert_eq!(fault(false, false).uncontainable(), Some(Uncontainable::OutsideIsolate));
        assert_eq!(fault(true, true).uncontainable(), Some(Uncontainable::InAllocator));
        assert_eq!(fault(false, true).uncontainable(), Some(Uncontainable::InAllocator));
    }

    #[test]
    fn faults_display_what_a_user_reads() {
        assert_eq!(fault(true, false).to_string(), "SIGSEGV at 0x0 in isolate code");
        let sent = FatalFault { signal: FatalSignal::Bus, address: None, ..fault(false, false) };
        assert_eq!(
            sent.to_string(),
            "SIGBUS sent to the thread (no fault address) outside isolate code"
        );
        let deep = FatalFault { address: Some(0xdead_beef), ..fault(true, true) };
        assert_eq!(deep.to_string(), "SIGSEGV at 0xdeadbeef in the allocator");
    }

    #[test]
    fn lines_say_which_shard_which_signal_and_why() {
        let text = |line: Line| String::from_utf8(line.as_bytes().to_vec()).expect("ascii");
        let quarantined = text(quarantine_line(1, &fault(true, false)));
        assert!(quarantined.starts_with("tina: shard 1 quarantined: SIGSEGV at 0x0 in isolate"));
        assert!(quarantined.ends_with("keep running\n"), "{quarantined}");
        let why = fault(false, false).uncontainable().expect("uncontainable");
        let aborted = text(abort_line(3, &fault(false, false), why));
        assert!(aborted.starts_with("tina: shard 3 took SIGSEGV at 0x0 outside isolate code"));
        assert!(aborted.contains("shares") && aborted.ends_with("aborting\n"), "{aborted}");
        let stalled = text(stall_line(0, Duration::from_millis(600), STALL_LIMIT_MIN));
        assert!(stalled.starts_with("tina: shard 0 stalled: no tick for 600ms"), "{stalled}");
        assert!(stalled.contains("limit 500ms"), "{stalled}");
        // A line never overflows its buffer.
        let mut long = Line::new();
        for _ in 0..100 {
            let _ = long.write_str("0123456789");
        }
        assert_eq!(long.as_bytes().len(), LINE_MAX);
    }

    #[test]
    fn a_slot_reads_back_what_the_handler_recorded() {
        let slot = FatalSlot::new(2, -1);
        assert_eq!((slot.fault(), slot.is_quarantined(), slot.settled()), (None, false, false));
        let recorded = FatalFault { signal: FatalSignal::Fpe, address: None, ..fault(true, false) };
        slot.record(&recorded);
        assert_eq!(slot.fault(), Some(recorded));
        assert!(slot.is_quarantined() && slot.settled());
        let slot = FatalSlot::new(0, -1);
        slot.exit();
        assert!(slot.settled() && !slot.is_quarantined());
    }

    #[test]
    fn a_slot_is_watched_from_boot_to_exit() {
        let slot = FatalSlot::new(0, -1);
        assert!(!slot.view().watched);
        slot.running();
        slot.beat(7);
        assert_eq!(slot.view(), SlotView { fault: None, watched: true, beat: 14 });
        slot.parking(7);
        assert_eq!(slot.view().beat & PARKED, PARKED);
        slot.exit();
        assert!(!slot.view().watched);
    }

    #[test]
    fn a_tracker_counts_only_an_unchanged_unparked_heartbeat() {
        let mut tracker = StallTracker::default();
        assert_eq!(tracker.observe(2, 0), Duration::ZERO);
        assert_eq!(tracker.observe(2, 300 * MS), Duration::from_millis(300));
        assert_eq!(tracker.observe(4, 400 * MS), Duration::ZERO, "a tick resets it");
        assert_eq!(tracker.observe(4, 450 * MS), Duration::from_millis(50));
        assert_eq!(tracker.observe(4 | PARKED, 10_000 * MS), Duration::ZERO, "parked");
        assert_eq!(tracker.observe(4 | PARKED, 20_000 * MS), Duration::ZERO, "still parked");
        assert_eq!(tracker.observe(4, 20_100 * MS), Duration::ZERO, "woken: starts afresh");
        assert_eq!(tracker.observe(4, 20_200 * MS), Duration::from_millis(100));
        tracker.forget();
        assert_eq!(tracker.observe(4, 30_000 * MS), Duration::ZERO);
    }

    fn running(beat: u64) -> SlotView {
        SlotView { fault: None, watched: true, beat }
    }

    #[test]
    fn the_watchdog_finds_a_stall_only_past_the_limit() {
        let mut review = Review::new(2, Some(STALL_LIMIT_MIN));
        let at = |review: &mut Review, ms: u64, beats: [u64; 2]| {
            review.begin(ms * MS);
            [review.look(0, running(beats[0]), ms * MS), review.look(1, running(beats[1]), ms * MS)]
        };
        assert_eq!(at(&mut review, 0, [2, 2]), [None, None]);
        // Shard 0 ticks; shard 1 does not, looked at every 100 ms.
        for step in 1..5 {
            assert_eq!(at(&mut review, step * 100, [2 + 2 * step, 2]), [None, None]);
        }
        assert_eq!(
            at(&mut review, 500, [12, 2]),
            [None, Some(Finding::Stalled(Duration::from_millis(500)))]
        );
    }

    #[test]
    fn the_watchdog_ignores_parked_unbooted_and_exited_shards_and_its_own_lateness() {
        let mut review = Review::new(1, Some(STALL_LIMIT_MIN));
        let parked = SlotView { beat: 2 | PARKED, ..running(0) };
        let unwatched = SlotView { watched: false, ..running(2) };
        for ms in (0..5_000).step_by(100) {
            review.begin(ms * MS);
            assert_eq!(review.look(0, parked, ms * MS), None);
            assert_eq!(review.look(0, unwatched, ms * MS), None);
        }
        // The watchdog itself slept 2 s (the process was stopped): it starts afresh, and
        // counts the unchanged heartbeat from there.
        review.begin(5_000 * MS);
        assert_eq!(review.look(0, running(2), 5_000 * MS), None);
        review.begin(7_000 * MS);
        assert_eq!(review.look(0, running(2), 7_000 * MS), None, "late: forgot");
        for ms in (7_100..7_500).step_by(100) {
            review.begin(ms * MS);
            assert_eq!(review.look(0, running(2), ms * MS), None);
        }
        review.begin(7_500 * MS);
        assert_eq!(
            review.look(0, running(2), 7_500 * MS),
            Some(Finding::Stalled(Duration::from_millis(500)))
        );
        // Without a stall limit nothing stalls.
        let mut review = Review::new(1, None);
        assert_eq!(review.timeout(), None);
        review.begin(0);
        assert_eq!(review.look(0, running(2), 0), None);
        review.begin(3_600_000 * MS);
        assert_eq!(review.look(0, running(2), 3_600_000 * MS), None);
    }

    #[test]
    fn the_watchdog_announces_a_quarantine_once() {
        let mut review = Review::new(1, Some(STALL_LIMIT_MIN));
        let faulted = SlotView { fault: Some(fault(true, false)), ..running(2) };
        review.begin(0);
        assert_eq!(review.look(0, faulted, 0), Some(Finding::Quarantined(fault(true, false))));
        for ms in (100..5_000).step_by(100) {
            review.begin(ms * MS);
            assert_eq!(review.look(0, faulted, ms * MS), None, "neither again nor a stall");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "eventfd and ppoll are not supported by Miri")]
    fn the_board_reports_quarantines_in_shard_order() {
        let board = Arc::new(Board::new(3).expect("eventfd"));
        assert_eq!(board.first_fault(), None);
        assert!(!board.is_quarantined(1) && !board.is_quarantined(9));
        board.slot(2).record(&fault(true, false));
        board.slot(1).record(&fault(true, false));
        assert_eq!(board.first_fault(), Some((ShardId(1), fault(true, false))));
        assert!(board.is_quarantined(1) && board.fault(0).is_none());
    }

    /// Without a stall limit the watchdog sleeps on the eventfd with no timeout; `stop`
    /// still ends it, through the eventfd.
    #[test]
    #[cfg_attr(miri, ignore = "eventfd and ppoll are not supported by Miri")]
    fn the_watchdog_stops_through_its_eventfd() {
        let board = Arc::new(Board::new(1).expect("eventfd"));
        let watchdog = Watchdog::start(Arc::clone(&board), None).expect("thread");
        board.wake();
        watchdog.stop();
        assert!(board.stopping.load(Ordering::Acquire));
        assert_eq!(Arc::strong_count(&board), 1, "the thread is gone");
    }
}
