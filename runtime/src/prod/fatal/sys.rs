//! The `unsafe` half of `prod::fatal`: the handler and its installation, the shard
//! threads' alternate signal stacks, [`provoke`], [`GuardedAlloc`], and raw writes to
//! stderr.
//!
//! The handler is async-signal-safe: it reads two const-initialised thread-locals without
//! destructors (plain loads), stores atomics, formats a line into a buffer on its stack,
//! and calls only `write`, `pause`, `abort`, `sigaction`, `pthread_kill`, `pthread_self`
//! and `getpid`, or the handler it replaced. It takes no lock and allocates nothing.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ffi::{c_int, c_void};
use core::ptr;
use std::io;
use std::sync::OnceLock;

use super::{ALT_STACK_SIZE, FatalFault, FatalSignal, FatalSlot, abort_line};
use crate::containment;

/// Standard error's descriptor.
const STDERR: c_int = 2;

thread_local! {
    /// The slot of the shard whose loop this thread runs; null on every other thread.
    static CURRENT: Cell<*const FatalSlot> = const { Cell::new(ptr::null()) };
    /// How many `GuardedAlloc` calls are on this thread's stack.
    static IN_ALLOCATOR: Cell<u32> = const { Cell::new(0) };
}

/// The dispositions the handler replaced, in `FatalSignal::ALL` order; set before the
/// handler is installed, so it always finds them.
static PREVIOUS: OnceLock<[libc::sigaction; 4]> = OnceLock::new();
/// The outcome of the one installation per process: the `errno` of a failed call.
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();

/// The last `errno` of this thread.
fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A `sigaction` with no handler, no flags and an empty mask.
fn empty_action() -> libc::sigaction {
    // SAFETY: `sigaction` is plain data; all zeroes is a valid value (SIG_DFL, no flags).
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: `sa_mask` is a valid `sigset_t` inside `action`.
    unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
    action
}

/// Installs the handler for the four signals, once per process; later calls return the
/// first call's outcome.
pub(crate) fn install() -> io::Result<()> {
    (*INSTALLED.get_or_init(install_once)).map_err(io::Error::from_raw_os_error)
}

fn install_once() -> Result<(), i32> {
    let mut previous = [empty_action(); 4];
    for (signal, slot) in FatalSignal::ALL.iter().zip(&mut previous) {
        // SAFETY: a null new action only reads the current one into `slot`, a live value.
        if unsafe { libc::sigaction(signal.number(), ptr::null(), slot) } != 0 {
            return Err(errno());
        }
    }
    // Only this closure sets it, once.
    let _ = PREVIOUS.set(previous);
    let mut action = empty_action();
    action.sa_sigaction =
        on_fatal as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    for signal in FatalSignal::ALL {
        // SAFETY: `sa_mask` is a valid `sigset_t`, the number a valid signal.
        unsafe { libc::sigaddset(&raw mut action.sa_mask, signal.number()) };
    }
    for signal in FatalSignal::ALL {
        // SAFETY: `action` is a live, fully initialised `sigaction` whose handler has the
        // three-argument signature `SA_SIGINFO` calls for and is async-signal-safe; the old
        // action is not asked for (it was read above).
        if unsafe { libc::sigaction(signal.number(), &raw const action, ptr::null_mut()) } != 0 {
            // The signals installed so far chain to `PREVIOUS`, which is set: harmless.
            return Err(errno());
        }
    }
    Ok(())
}

/// The handler of the four signals. See the module documentation of `prod::fatal`.
extern "C" fn on_fatal(number: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid `siginfo_t` for this signal, alive
    // while the handler runs.
    let info_ref = unsafe { &*info };
    // Positive codes are the kernel's (a faulting instruction); the others were sent.
    let raised = info_ref.si_code > 0;
    let slot = CURRENT.with(Cell::get);
    if let Some(signal) = FatalSignal::from_number(number)
        && !slot.is_null()
        && (raised || sent_from_this_process(info_ref))
    {
        let address = if raised {
            // SAFETY: for a kernel-raised SIGSEGV, SIGBUS, SIGILL or SIGFPE, `si_addr` is
            // the field the kernel filled in.
            Some(unsafe { info_ref.si_addr() } as usize)
        } else {
            None
        };
        // SAFETY: `CURRENT` is non-null only while the `ShardSignals` that set it lives,
        // and it borrows the slot for that long; the handler never returns, and a
        // quarantined thread never drops it.
        quarantine(unsafe { &*slot }, signal, address);
    }
    chain(number, info, context, raised);
}

/// Whether the signal was sent to this thread by a thread of this process (`tgkill`, as
/// `provoke` sends it), rather than to the process by `kill` from anywhere.
fn sent_from_this_process(info: &libc::siginfo_t) -> bool {
    // SAFETY: for SI_TKILL, `si_pid` is the field the kernel filled in; `getpid` has no
    // preconditions.
    info.si_code == libc::SI_TKILL && unsafe { info.si_pid() == libc::getpid() }
}

/// Records the fault in the shard's slot, then parks the thread for good if quarantining
/// contains it, or prints why not and aborts.
fn quarantine(slot: &FatalSlot, signal: FatalSignal, address: Option<usize>) -> ! {
    let fault = FatalFault {
        signal,
        address,
        in_isolate: containment::isolate_depth() > 0,
        in_allocator: IN_ALLOCATOR.with(Cell::get) > 0,
    };
    slot.record(&fault);
    if let Some(why) = fault.uncontainable() {
        write_stderr(abort_line(slot.shard(), &fault, why).as_bytes());
        std::process::abort();
    }
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, alive for the call, to the watchdog's eventfd,
    // which stays open while this thread lives (module documentation of `prod::fatal`).
    let _ = unsafe { libc::write(slot.wake_fd(), (&raw const one).cast(), size_of::<u64>()) };
    loop {
        // SAFETY: `pause` has no preconditions; it returns after any other handler ran on
        // this thread, and the thread waits again.
        unsafe { libc::pause() };
    }
}

/// Hands the signal to the disposition it had before `install`, as if this handler were
/// not there.
fn chain(number: c_int, info: *mut libc::siginfo_t, context: *mut c_void, raised: bool) {
    let previous = FatalSignal::from_number(number)
        .and_then(|signal| PREVIOUS.get().map(|all| all[signal.index()]))
        .unwrap_or_else(empty_action);
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || (handler == libc::SIG_IGN && raised) {
        // The default action (the kernel ignores SIG_IGN for a faulting instruction too).
        default_action(number, raised);
        return;
    }
    if handler == libc::SIG_IGN {
        // A signal sent to a program that ignores it.
        return;
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO, `sa_sigaction` holds a three-argument handler
        // (sigaction(2)), installed for this signal; it gets the kernel's own arguments.
        let handler = unsafe {
            core::mem::transmute::<
                libc::sighandler_t,
                extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void),
            >(handler)
        };
        handler(number, info, context);
    } else {
        // SAFETY: without SA_SIGINFO, `sa_handler` (the same field) holds a one-argument
        // handler, installed for this signal.
        let handler =
            unsafe { core::mem::transmute::<libc::sighandler_t, extern "C" fn(c_int)>(handler) };
        handler(number);
    }
    // A handler that put the default back (std's does, for a fault not on a guard page)
    // relies on the instruction faulting again; a sent signal is not sent again, so send
    // it, and the default action ends the process.
    if !raised && current_handler(number) == Some(libc::SIG_DFL) {
        raise_on_return(number);
    }
}

/// Puts back the default action and makes sure it is taken: a faulting instruction
/// faults again when the handler returns; a sent signal is sent again.
fn default_action(number: c_int, raised: bool) {
    let action = empty_action();
    // SAFETY: `action` is a live `sigaction` (SIG_DFL); the old action is not asked for.
    unsafe { libc::sigaction(number, &raw const action, ptr::null_mut()) };
    if !raised {
        raise_on_return(number);
    }
}

/// The signal's handler now, if it can be read.
fn current_handler(number: c_int) -> Option<libc::sighandler_t> {
    let mut current = empty_action();
    // SAFETY: a null new action only reads the current one into `current`, a live value.
    (unsafe { libc::sigaction(number, ptr::null(), &raw mut current) } == 0)
        .then_some(current.sa_sigaction)
}

/// Sends `number` to this thread. It is blocked while the handler runs, so it arrives
/// when the handler returns.
fn raise_on_return(number: c_int) {
    // SAFETY: `pthread_self` names the calling thread, alive during the call.
    unsafe { libc::pthread_kill(libc::pthread_self(), number) };
}

/// Writes `bytes` to stderr with `write(2)`: no lock (std's stderr lock may be held by a
/// thread that faulted) and no allocation. Gives up on an error.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice of `bytes.len()` bytes to descriptor 2.
        let written = unsafe { libc::write(STDERR, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(written) {
            Ok(written) if written > 0 => bytes = &bytes[written..],
            _ => return,
        }
    }
}

/// Raises `signal` on the calling thread, as a faulting instruction would, for demos and
/// tests of fatal-signal handling; never returns.
///
/// On a shard thread running isolate code the shard is quarantined and this thread parks
/// for good. Outside isolate code on a shard thread, the process aborts with a line saying
/// why. On any other thread the signal gets the disposition it had before the runtime
/// booted (std's SIGSEGV and SIGBUS handler, or the default action): the process ends
/// with that signal. If a handler returns without ending the process, the signal is
/// raised once more (as a faulting instruction would fault again), then the process
/// aborts.
///
/// It sends the signal with `pthread_kill`; no memory is touched, so there is no undefined
/// behaviour, and the fault has no address (`FatalFault::address` is `None`).
pub fn provoke(signal: FatalSignal) -> ! {
    for _ in 0..2 {
        // SAFETY: `pthread_self` names the calling thread, alive during the call; the
        // number is one of the four signals.
        unsafe { libc::pthread_kill(libc::pthread_self(), signal.number()) };
    }
    std::process::abort()
}

/// A shard thread's alternate signal stack: `ALT_STACK_SIZE` bytes above a `PROT_NONE`
/// guard page, mapped at boot (so a shard thread starts without a fallible allocation)
/// and unmapped when dropped, unless its shard was quarantined (the handler is still
/// running on it, parked).
#[derive(Debug)]
pub(crate) struct AltStack {
    mapping: *mut c_void,
    len: usize,
    guard: usize,
}

// SAFETY: an `AltStack` owns its mapping, which nothing else refers to until the thread
// that owns the `AltStack` installs it; moving it moves that ownership.
unsafe impl Send for AltStack {}

impl AltStack {
    /// Maps a stack and its guard page.
    pub(crate) fn new() -> io::Result<AltStack> {
        // SAFETY: `sysconf` has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = page + ALT_STACK_SIZE.next_multiple_of(page);
        // SAFETY: a new private anonymous mapping; no existing memory is touched.
        let mapping = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = AltStack { mapping, len, guard: page };
        // SAFETY: the first page of the mapping just made, page-aligned; nothing uses it.
        if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, `len` bytes; no thread uses it as its signal
        // stack any more (`ShardSignals` put the previous one back before dropping it).
        unsafe { libc::munmap(self.mapping, self.len) };
    }
}

/// A shard thread's fatal-signal set-up, from before its scheduler boots until its loop
/// ends: its alternate stack installed and `CURRENT` pointing at its slot. Dropping it
/// undoes both and marks the slot exited; a quarantined thread never drops it.
#[derive(Debug)]
pub(crate) struct ShardSignals<'a> {
    slot: &'a FatalSlot,
    /// The alternate stack the thread had before, if ours was installed.
    previous: Option<libc::stack_t>,
    /// Dropped after `previous` is put back.
    _stack: AltStack,
}

impl<'a> ShardSignals<'a> {
    /// Sets up the calling thread as `slot`'s shard thread, on `stack`.
    pub(crate) fn enter(slot: &'a FatalSlot, stack: AltStack) -> ShardSignals<'a> {
        let new = libc::stack_t {
            ss_sp: stack.mapping.cast::<u8>().wrapping_add(stack.guard).cast(),
            ss_flags: 0,
            ss_size: stack.len - stack.guard,
        };
        // SAFETY: all zeroes is a valid `stack_t`, overwritten by `sigaltstack`.
        let mut previous: libc::stack_t = unsafe { core::mem::zeroed() };
        // SAFETY: `new` describes the writable part of a mapping that `_stack` keeps alive
        // until after `drop` puts `previous` back; `previous` is a live value.
        let previous = if unsafe { libc::sigaltstack(&raw const new, &raw mut previous) } == 0 {
            Some(previous)
        } else {
            // The handler then runs on the stack the thread had (std's alternate stack,
            // or the faulting stack): a fault is still caught, a stack overflow may not be.
            let mut line = super::Line::new();
            let _ = core::fmt::Write::write_fmt(
                &mut line,
                format_args!(
                    "tina: shard {} runs without its own signal stack (sigaltstack: errno {})\n",
                    slot.shard(),
                    errno()
                ),
            );
            write_stderr(line.as_bytes());
            None
        };
        CURRENT.with(|current| current.set(slot));
        ShardSignals { slot, previous, _stack: stack }
    }
}

impl Drop for ShardSignals<'_> {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(ptr::null()));
        if let Some(previous) = &self.previous {
            // SAFETY: puts back the stack this thread had before `enter` (its owner, std
            // for its threads, still holds it), so ours is unused when it is unmapped.
            unsafe { libc::sigaltstack(previous, ptr::null_mut()) };
        }
        self.slot.exit();
    }
}

/// A global allocator that lets the fatal-signal handler tell a fault inside the
/// allocator (whose state every thread shares, so the process must abort) from one in
/// isolate code (contained by quarantining the shard). Without it, the runtime cannot
/// tell them apart and quarantines both.
///
/// Install it in the binary, around the allocator it would use anyway:
///
/// ```
/// use std::alloc::System;
/// use tina::prod::fatal::GuardedAlloc;
///
/// #[global_allocator]
/// static ALLOCATOR: GuardedAlloc<System> = GuardedAlloc::new(System);
/// ```
///
/// It costs two thread-local increments per allocator call.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuardedAlloc<A> {
    inner: A,
}

impl<A> GuardedAlloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> GuardedAlloc<A> {
        GuardedAlloc { inner }
    }

    /// The allocator it wraps.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

/// One `GuardedAlloc` call on this thread's stack, for its scope (also when the inner
/// allocator unwinds). Wrapping arithmetic: an allocator must not panic.
struct InAllocator;

impl InAllocator {
    #[inline]
    fn enter() -> InAllocator {
        IN_ALLOCATOR.with(|depth| depth.set(depth.get().wrapping_add(1)));
        InAllocator
    }
}

impl Drop for InAllocator {
    #[inline]
    fn drop(&mut self) {
        IN_ALLOCATOR.with(|depth| depth.set(depth.get().wrapping_sub(1)));
    }
}

/// How many `GuardedAlloc` calls are on this thread's stack.
#[cfg(test)]
fn allocator_depth() -> u32 {
    IN_ALLOCATOR.with(Cell::get)
}

// SAFETY: every method forwards its arguments unchanged to `inner`'s, so the caller's
// guarantees are `inner`'s and `inner`'s results are returned as they are; the depth
// counter is a thread-local `Cell` without a destructor, which never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for GuardedAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _in = InAllocator::enter();
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { self.inner.alloc(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _in = InAllocator::enter();
        // SAFETY: the caller upholds `dealloc`'s contract: `ptr` came from this allocator
        // (so from `inner`) with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _in = InAllocator::enter();
        // SAFETY: the caller upholds `alloc_zeroed`'s contract for `layout`.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _in = InAllocator::enter();
        // SAFETY: the caller upholds `realloc`'s contract: `ptr` came from this allocator
        // (so from `inner`) with `layout`, and `new_size` is valid for it.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    /// An allocator that remembers the depth `GuardedAlloc` showed inside each call.
    #[derive(Default)]
    struct Witness {
        depths: std::sync::Mutex<Vec<u32>>,
    }

    impl Witness {
        fn saw(&self) {
            let depth = allocator_depth();
            // The witness's own Vec grows through the global allocator, not this one.
            self.depths.lock().expect("not poisoned").push(depth);
        }
    }

    // SAFETY: forwards to `System` with the caller's arguments, after recording a depth.
    unsafe impl GlobalAlloc for Witness {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.saw();
            // SAFETY: the caller's contract, unchanged.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            self.saw();
            // SAFETY: the caller's contract, unchanged.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// Every call is counted inside, and the depth is back to zero after, on this thread
    /// only.
    #[test]
    fn the_guarded_allocator_counts_its_depth() {
        let guarded = GuardedAlloc::new(Witness::default());
        let layout = Layout::from_size_align(64, 8).expect("layout");
        assert_eq!(allocator_depth(), 0);
        // SAFETY: a valid non-zero layout; the block is reallocated and freed with it.
        unsafe {
            let block = guarded.alloc(layout);
            assert!(!block.is_null());
            assert_eq!(allocator_depth(), 0);
            let zeroed = guarded.alloc_zeroed(layout);
            assert_eq!(*zeroed, 0);
            let grown = guarded.realloc(block, layout, 128);
            guarded.dealloc(grown, Layout::from_size_align(128, 8).expect("layout"));
            guarded.dealloc(zeroed, layout);
        }
        assert_eq!(allocator_depth(), 0);
        // alloc, alloc_zeroed (the default: alloc), realloc (the default: alloc, dealloc),
        // dealloc, dealloc: all at depth 1.
        let depths = guarded.inner().depths.lock().expect("not poisoned").clone();
        assert_eq!(depths, [1; 6]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap and sigaltstack are not supported by Miri")]
    fn a_shard_thread_has_its_stack_and_slot_until_it_leaves() {
        let slot = FatalSlot::new(4, -1);
        let stack = AltStack::new().expect("mmap");
        let (base, len, guard) = (stack.mapping as usize, stack.len, stack.guard);
        assert!(len - guard >= ALT_STACK_SIZE);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let current = || {
                    // SAFETY: a null new stack only reads the current one.
                    let mut now: libc::stack_t = unsafe { core::mem::zeroed() };
                    // SAFETY: as above; `now` is a live value.
                    assert_eq!(unsafe { libc::sigaltstack(ptr::null(), &raw mut now) }, 0);
                    now
                };
                let before = current();
                let signals = ShardSignals::enter(&slot, stack);
                let during = current();
                assert_eq!((during.ss_sp as usize, during.ss_size), (base + guard, len - guard));
                assert_eq!(CURRENT.with(Cell::get), &raw const slot);
                drop(signals);
                let after = current();
                assert_eq!((after.ss_sp, after.ss_size), (before.ss_sp, before.ss_size));
                assert!(CURRENT.with(Cell::get).is_null());
            });
        });
        assert!(slot.settled() && !slot.is_quarantined(), "exited, not quarantined");
    }

    #[test]
    #[cfg_attr(miri, ignore = "sigaction is not supported by Miri")]
    fn installing_is_once_and_keeps_what_was_there() {
        install().expect("installs");
        install().expect("the second call returns the first outcome");
        let previous = PREVIOUS.get().expect("saved before installing");
        for signal in FatalSignal::ALL {
            let handler = current_handler(signal.number()).expect("sigaction");
            assert_eq!(
                handler,
                on_fatal as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void)
                    as libc::sighandler_t
            );
            assert_ne!(previous[signal.index()].sa_sigaction, handler, "{signal}");
        }
    }
}
