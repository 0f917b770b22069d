//! Crash containment: running isolate code under `catch_unwind`, and telling an isolate's
//! panic from a broken core invariant.
//!
//! `contain` runs `init` or `handle`. A panic in isolate code comes back as
//! `Err(PanicText)` and the caller tears the isolate down as crashed. A panic raised while
//! core code runs on the isolate's behalf (inside a `Ctx` call, marked by `CoreGuard`) is a
//! broken invariant of the core, not the isolate's fault: it is re-raised past the isolate
//! boundary and takes the run down.
//!
//! The panic hook is installed once per process. For panics in isolate code it records the
//! message for the trace and prints nothing (file paths differ between machines); every
//! other panic goes to the hook that was installed before. The thread-locals below hold
//! only the state of the handler call on the stack; nothing survives from one run to the
//! next.

use core::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::trace::PanicText;

thread_local! {
    /// Depth of isolate code on this thread's stack.
    static IN_ISOLATE: Cell<u32> = const { Cell::new(0) };
    /// Depth of core code running inside isolate code (`Ctx` calls).
    static IN_CORE: Cell<u32> = const { Cell::new(0) };
    /// The message of the last isolate panic, taken by `contain`.
    static LAST_PANIC: Cell<PanicText> = const { Cell::new(PanicText::EMPTY) };
}

static HOOK: Once = Once::new();

/// Installs the panic hook once per process, chaining the previous one.
pub(crate) fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let in_isolate = IN_ISOLATE.with(Cell::get) > 0;
            let in_core = IN_CORE.with(Cell::get) > 0;
            if in_isolate && !in_core {
                let text = info.payload_as_str().unwrap_or("panic with a non-string payload");
                LAST_PANIC.with(|last| last.set(PanicText::new(text)));
            } else {
                previous(info);
            }
        }));
    });
}

/// Marks core code running on an isolate's behalf. A panic while a guard is alive is a
/// broken core invariant. The depth is not restored on unwinding, so `contain` can see it.
pub(crate) struct CoreGuard(());

impl CoreGuard {
    pub(crate) fn enter() -> CoreGuard {
        IN_CORE.with(|depth| depth.set(depth.get() + 1));
        CoreGuard(())
    }
}

impl Drop for CoreGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            IN_CORE.with(|depth| depth.set(depth.get() - 1));
        }
    }
}

/// Runs isolate code. `Err` carries the panic message of an isolate panic; a core panic is
/// re-raised.
pub(crate) fn contain<R>(code: impl FnOnce() -> R) -> Result<R, PanicText> {
    IN_ISOLATE.with(|depth| depth.set(depth.get() + 1));
    // The isolate's state is dropped after a panic, so no broken state is observed again.
    let result = panic::catch_unwind(AssertUnwindSafe(code));
    IN_ISOLATE.with(|depth| depth.set(depth.get() - 1));
    match result {
        Ok(value) => Ok(value),
        Err(payload) => {
            if IN_CORE.with(|depth| depth.replace(0)) > 0 {
                panic::resume_unwind(payload);
            }
            Err(LAST_PANIC.with(|last| last.replace(PanicText::EMPTY)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An isolate's panic comes back as its message; a panic inside core code (a `Ctx`
    /// call) passes through `contain` and unwinds further; afterwards containment works
    /// again.
    #[test]
    fn isolate_panics_are_contained_and_core_panics_are_not() {
        install_panic_hook();
        let text = contain(|| -> () { panic!("isolate {} broke", 7) }).expect_err("contained");
        assert_eq!(text.as_str(), "isolate 7 broke");
        let outer = panic::catch_unwind(|| {
            let _ = contain(|| {
                let _core = CoreGuard::enter();
                panic!("core invariant broken");
            });
        });
        let payload = outer.expect_err("a core panic is not contained");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"core invariant broken"));
        assert_eq!(contain(|| 5), Ok(5));
        assert_eq!(IN_CORE.with(Cell::get), 0);
        assert_eq!(IN_ISOLATE.with(Cell::get), 0);
    }
}
