//! Crash containment: running isolate code under `catch_unwind`, and telling an isolate's
//! panic from a broken core invariant.
//!
//! `contain` runs a batch of isolate code (a batch of handlers, or one `init`). A panic
//! comes back as `Err(Panicked)` with the message for the trace. The caller asks the core
//! whether core code was running on the isolate's behalf when it panicked (a `Ctx` call
//! keeps a depth counter in `ShardCore`): if so, it is a broken invariant of the core, not
//! the isolate's fault, and the caller re-raises it past the isolate boundary.
//!
//! The panic hook is installed once per process. While isolate code is on the stack it
//! records the message and prints nothing (file paths differ between machines); every
//! other panic goes to the hook that was installed before. The thread-locals below hold
//! only the state of the batch on the stack; nothing survives from one run to the next.

use core::any::Any;
use core::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::trace::PanicText;

thread_local! {
    /// Depth of `contain` on this thread's stack.
    static IN_ISOLATE: Cell<u32> = const { Cell::new(0) };
    /// The message of the last panic under `contain`, taken by `contain`.
    static LAST_PANIC: Cell<PanicText> = const { Cell::new(PanicText::EMPTY) };
}

static HOOK: Once = Once::new();

/// How many `contain` calls are on this thread's stack: above 0 while isolate code (or core
/// code a `Ctx` call runs for it) is running. Async-signal-safe: a const-initialised
/// thread-local without a destructor is a plain load, so the fatal-signal handler of a
/// shard thread (`prod::fatal`) reads it to tell a fault in isolate code from one in the
/// core.
#[cfg_attr(
    any(loom, not(target_os = "linux")),
    expect(dead_code, reason = "read by prod::fatal only")
)]
#[inline]
pub(crate) fn isolate_depth() -> u32 {
    IN_ISOLATE.with(Cell::get)
}

/// Installs the panic hook once per process, chaining the previous one.
pub(crate) fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_ISOLATE.with(Cell::get) > 0 {
                let text = info.payload_as_str().unwrap_or("panic with a non-string payload");
                LAST_PANIC.with(|last| last.set(PanicText::new(text)));
            } else {
                previous(info);
            }
        }));
    });
}

/// A panic caught by `contain`.
pub(crate) struct Panicked {
    /// The first bytes of its message.
    pub(crate) text: PanicText,
    /// The payload, to re-raise a core panic unchanged.
    pub(crate) payload: Box<dyn Any + Send>,
}

impl Panicked {
    /// Re-raises a panic of core code: it is not the isolate's fault and takes the run
    /// down. The hook printed nothing, so say what broke.
    pub(crate) fn reraise_as_core(self) -> ! {
        eprintln!("tina: a core invariant broke inside a ctx call: {}", self.text.as_str());
        panic::resume_unwind(self.payload)
    }
}

/// Runs isolate code, returning what it returned or the panic it raised.
#[inline]
pub(crate) fn contain<R>(code: impl FnOnce() -> R) -> Result<R, Panicked> {
    IN_ISOLATE.with(|depth| depth.set(depth.get() + 1));
    // State a panic leaves half-updated is dropped by the caller (the isolate is torn
    // down), or the panic is re-raised; either way it is never observed again.
    let result = panic::catch_unwind(AssertUnwindSafe(code));
    IN_ISOLATE.with(|depth| depth.set(depth.get() - 1));
    result.map_err(|payload| Panicked {
        text: LAST_PANIC.with(|last| last.replace(PanicText::EMPTY)),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic under `contain` comes back with its message and payload, prints nothing,
    /// and containment works again afterwards.
    #[test]
    fn panics_come_back_as_values() {
        install_panic_hook();
        let seven = std::hint::black_box(7);
        let panicked =
            contain(|| -> () { panic!("isolate {seven} broke") }).expect_err("contained");
        assert_eq!(panicked.text.as_str(), "isolate 7 broke");
        assert_eq!(
            panicked.payload.downcast_ref::<String>().map(String::as_str),
            Some("isolate 7 broke")
        );
        let reraised = panic::catch_unwind(|| {
            contain(|| -> () { panic!("core") }).expect_err("contained").reraise_as_core()
        });
        assert_eq!(reraised.expect_err("re-raised").downcast_ref::<&str>(), Some(&"core"));
        assert_eq!(contain(|| 5).ok(), Some(5));
        assert_eq!(IN_ISOLATE.with(Cell::get), 0);
    }
}
