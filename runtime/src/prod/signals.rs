//! Opt-in SIGINT and SIGTERM handling: the first signal asks the runtime to stop, the
//! second ends the process at once.
//!
//! Nothing here is installed at boot: a program that wants Ctrl-C to stop its runtime
//! gracefully calls `SignalGuard::install`, and dropping the guard puts back the handlers
//! that were there before. While it is installed, the first SIGINT or SIGTERM sets a
//! "stop requested" flag and makes an eventfd readable, so a thread that waits (`wait`,
//! `wait_until`, or its own poll on `fd`) wakes; a second one calls `_exit(128 + signal)`
//! right in the handler, for the operator whose graceful stop hangs.
//!
//! The handler is async-signal-safe: it touches atomics and calls `write` and `_exit`,
//! nothing else (no allocation, no lock, no formatting), and preserves `errno`. A handler
//! can only reach process-wide state, so the flag and the eventfd are statics: the one
//! place in tina where a static carries state, since a signal has no other way in. Only one
//! guard may exist at a time. The eventfd is created by the first install and kept open for
//! the life of the process, so a handler that runs while a guard is being dropped can never
//! write into a descriptor number that was closed and reused.
//!
//! Not the fatal-signal handling (SIGSEGV, SIGBUS) of a shard thread, and not the runtime's
//! shutdown phases: this module only tells that a stop was asked for.

use core::fmt;
use core::time::Duration;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

/// The signals a guard handles.
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];
/// No descriptor yet.
const NO_FD: RawFd = -1;

/// Whether a guard exists.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Signals received since the guard was installed.
static RECEIVED: AtomicU32 = AtomicU32::new(0);
/// The first signal received since the guard was installed, or 0.
static FIRST_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The eventfd the handler writes to: created by the first install, never closed.
static WAKE_FD: AtomicI32 = AtomicI32::new(NO_FD);

/// The handler of both signals. Async-signal-safe: atomics, `write` and `_exit` only.
extern "C" fn on_signal(signal: libc::c_int) {
    // A lost race (both signals at once on two threads) keeps the first number stored.
    let _ = FIRST_SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    if RECEIVED.fetch_add(1, Ordering::SeqCst) > 0 {
        // SAFETY: `_exit` is async-signal-safe and takes any status; it does not return.
        unsafe { libc::_exit(128 + signal) };
    }
    // SAFETY: `__errno_location` returns this thread's errno, valid for the thread's life;
    // it is saved and restored so the interrupted code does not see `write`'s errno.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above, `errno` points to this thread's errno.
    let saved = unsafe { *errno };
    let one: u64 = 1;
    // SAFETY: `write` is async-signal-safe; the buffer is the 8 bytes of `one`, alive for
    // the call. A descriptor that is not set (never, while a handler is installed) makes it
    // fail with EBADF, which changes nothing.
    let _ = unsafe {
        libc::write(WAKE_FD.load(Ordering::SeqCst), (&raw const one).cast(), size_of::<u64>())
    };
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// Why a guard could not be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalError {
    /// Another guard is installed; drop it first.
    AlreadyInstalled,
    /// A system call failed.
    Os {
        /// The call.
        call: &'static str,
        /// Its `errno`.
        errno: i32,
    },
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::AlreadyInstalled => {
                write!(f, "a signal guard is already installed; only one may exist at a time")
            }
            SignalError::Os { call, errno } => write!(f, "{call} failed with errno {errno}"),
        }
    }
}

impl std::error::Error for SignalError {}

/// What ended a `wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A stop was requested by a signal (now or before the wait).
    Signal,
    /// `SignalGuard::wake` was called.
    Woken,
    /// The timeout passed, or an unrelated signal interrupted the wait (treat it as a
    /// spurious wake-up).
    Elapsed,
}

/// What ended a `wait_until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// A stop was requested by a signal.
    Signal,
    /// The condition became true.
    Condition,
}

/// SIGINT and SIGTERM handled while this lives; the previous handlers come back when it
/// is dropped.
#[must_use = "dropping the guard puts the previous handlers back at once"]
pub struct SignalGuard {
    /// The handlers before ours, in `SIGNALS` order.
    previous: [libc::sigaction; 2],
}

impl fmt::Debug for SignalGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalGuard")
            .field("stop_requested", &self.stop_requested())
            .field("first_signal", &self.first_signal())
            .finish()
    }
}

/// The last `errno` of this thread.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The eventfd, created on first use.
fn wake_fd() -> Result<RawFd, SignalError> {
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd != NO_FD {
        return Ok(fd);
    }
    // SAFETY: `eventfd` takes an initial count and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(SignalError::Os { call: "eventfd", errno: errno() });
    }
    // Only the installer reaches here, and only one install runs at a time (`INSTALLED`).
    WAKE_FD.store(fd, Ordering::SeqCst);
    Ok(fd)
}

/// Empties the eventfd's counter: a non-blocking read of 8 bytes, which resets it (or
/// fails with EAGAIN when it is already zero).
fn drain(fd: RawFd) {
    let mut count: u64 = 0;
    // SAFETY: reads at most 8 bytes into `count`, alive for the call; the descriptor is the
    // process's eventfd, never closed.
    let _ = unsafe { libc::read(fd, (&raw mut count).cast(), size_of::<u64>()) };
}

/// Installs `on_signal` for `signal` and returns the handler it replaced.
fn install_handler(signal: libc::c_int) -> Result<libc::sigaction, SignalError> {
    // SAFETY: `sigaction` is plain data; all zeroes is a valid value (no handler, no flags,
    // empty mask), which we then fill in.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // Restart interrupted system calls in other threads rather than fail them with EINTR.
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa_mask` is a valid `sigset_t` inside `action`.
    unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
    // SAFETY: as for `action`.
    let mut previous: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: both pointers are to live `sigaction` values; the handler is async-signal-safe.
    if unsafe { libc::sigaction(signal, &raw const action, &raw mut previous) } != 0 {
        return Err(SignalError::Os { call: "sigaction", errno: errno() });
    }
    Ok(previous)
}

/// Puts `previous` back as `signal`'s handler.
fn restore_handler(signal: libc::c_int, previous: &libc::sigaction) {
    // SAFETY: `previous` is what `sigaction` returned for this signal; the old-action
    // pointer may be null.
    let _ = unsafe { libc::sigaction(signal, previous, core::ptr::null_mut()) };
}

impl SignalGuard {
    /// Handles SIGINT and SIGTERM until the guard is dropped: the first asks for a stop,
    /// the second exits the process with status `128 + signal`. Fails if a guard exists.
    pub fn install() -> Result<SignalGuard, SignalError> {
        if INSTALLED.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(SignalError::AlreadyInstalled);
        }
        let installed = wake_fd().and_then(|fd| {
            drain(fd);
            RECEIVED.store(0, Ordering::SeqCst);
            FIRST_SIGNAL.store(0, Ordering::SeqCst);
            let interrupt = install_handler(SIGNALS[0])?;
            match install_handler(SIGNALS[1]) {
                Ok(terminate) => Ok([interrupt, terminate]),
                Err(error) => {
                    restore_handler(SIGNALS[0], &interrupt);
                    Err(error)
                }
            }
        });
        match installed {
            Ok(previous) => Ok(SignalGuard { previous }),
            Err(error) => {
                INSTALLED.store(false, Ordering::SeqCst);
                Err(error)
            }
        }
    }

    /// Whether a SIGINT or SIGTERM arrived since the guard was installed.
    pub fn stop_requested(&self) -> bool {
        RECEIVED.load(Ordering::SeqCst) > 0
    }

    /// The first signal that arrived, if any (`libc::SIGINT` or `libc::SIGTERM`).
    pub fn first_signal(&self) -> Option<i32> {
        Some(FIRST_SIGNAL.load(Ordering::SeqCst)).filter(|&signal| signal != 0)
    }

    /// A descriptor that becomes readable when a signal arrives or `wake` is called, for a
    /// runtime that waits in its own `poll` or `epoll`. Read 8 bytes from it to reset it;
    /// then check `stop_requested`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        let fd = WAKE_FD.load(Ordering::SeqCst);
        // SAFETY: `install` created the eventfd before returning the guard, and it is never
        // closed, so it is open for at least the guard's life.
        unsafe { BorrowedFd::borrow_raw(fd) }
    }

    /// Wakes the thread waiting in `wait` or `wait_until` (for example, because the runtime
    /// stopped by itself). Callable from any thread.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, alive for the call, to the open eventfd.
        let _ = unsafe {
            libc::write(WAKE_FD.load(Ordering::SeqCst), (&raw const one).cast(), size_of::<u64>())
        };
    }

    /// Blocks until a signal has asked for a stop, `wake` is called, or `timeout` passes
    /// (`None`: no timeout). One waiter at a time: the wait consumes the wake-up.
    pub fn wait(&self, timeout: Option<Duration>) -> Wake {
        if self.stop_requested() {
            return Wake::Signal;
        }
        let fd = WAKE_FD.load(Ordering::SeqCst);
        let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let timeout_ms = timeout.map_or(-1, |timeout| {
            // Rounded up, so a short timeout does not become a busy poll of 0 ms.
            let ms = timeout.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: one live `pollfd` for the process's open eventfd.
        let ready = unsafe { libc::poll(&raw mut poll, 1, timeout_ms) };
        if ready > 0 {
            drain(fd);
        }
        if self.stop_requested() {
            Wake::Signal
        } else if ready > 0 {
            Wake::Woken
        } else {
            Wake::Elapsed
        }
    }

    /// Waits until a signal asks for a stop or `until` returns true, checking `until` after
    /// every wake-up and at least every `recheck`. Like a shard's event loop, it has no
    /// bound of its own: it ends when one of the two happens (`wake` makes a stop by the
    /// runtime seen at once rather than at the next recheck).
    pub fn wait_until(&self, until: impl Fn() -> bool, recheck: Duration) -> Ended {
        loop {
            if self.stop_requested() {
                return Ended::Signal;
            }
            if until() {
                return Ended::Condition;
            }
            self.wait(Some(recheck));
        }
    }
}

impl Drop for SignalGuard {
    /// Puts the previous handlers back; a signal that arrives afterwards gets them.
    fn drop(&mut self) {
        for (signal, previous) in SIGNALS.iter().zip(&self.previous) {
            restore_handler(*signal, previous);
        }
        INSTALLED.store(false, Ordering::SeqCst);
    }
}
