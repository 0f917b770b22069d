//! `prod::signals` in real processes: the first SIGINT or SIGTERM asks for a stop and wakes
//! the waiter, the second exits at once with `128 + signal`, only one guard exists at a
//! time, dropping it restores the previous handler, and `wake` and `wait_until` end a wait
//! without a signal.
//!
//! Handlers are process-wide, so every test runs its guard in a child: the test starts
//! this same binary again with `--exact <its name>` and `TINA_SIGNALS_CHILD` set, and the
//! child runs the test's other half. The parent signals it at the points the child prints,
//! and judges its output and exit status. Every wait in a child is bounded.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tina::prod::signals::{Ended, SignalError, SignalGuard, Wake};

/// Set in a child to the role it plays.
const CHILD: &str = "TINA_SIGNALS_CHILD";
/// The longest any child waits for something that should come much sooner.
const PATIENCE: Duration = Duration::from_secs(20);

/// Whether this process is a child started by one of the tests below.
#[expect(
    clippy::disallowed_methods,
    reason = "the parent passes the child its role through the environment: libtest accepts no \
              other argument"
)]
fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// A child running one test of this binary, its stdout read line by line.
struct ChildTest {
    child: Child,
    stdout: BufReader<ChildStdout>,
    output: String,
}

impl ChildTest {
    /// Starts this binary again running only `test`.
    fn start(test: &str) -> ChildTest {
        let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the test binary starts");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        ChildTest { child, stdout, output: String::new() }
    }

    /// Reads until a line that ends with `wanted` (libtest may have started the line with
    /// `test <name> ... `); panics with the output if the child's stdout ends first.
    fn expect_line(&mut self, wanted: &str) {
        loop {
            let mut line = String::new();
            let read = self.stdout.read_line(&mut line).expect("the child's stdout reads");
            self.output.push_str(&line);
            if read == 0 {
                panic!("the child ended without printing {wanted:?}; its output:\n{}", self.output);
            }
            if line.trim_end().ends_with(wanted) {
                return;
            }
        }
    }

    /// Sends `signal` to the child.
    fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: `kill` sends a signal to a process we started and have not waited for, so
        // its pid cannot have been reused.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    }

    /// Waits for the child to end; returns its status and everything it printed.
    fn finish(mut self) -> (ExitStatus, String) {
        let mut rest = String::new();
        // Bounded by the child's own bounded waits: it ends, and its stdout with it.
        while self.stdout.read_line(&mut rest).expect("the child's stdout reads") > 0 {}
        self.output.push_str(&rest);
        let status = self.child.wait().expect("the child is waited for");
        (status, self.output)
    }
}

/// Child: installs a guard, says so, waits for a signal and reports it.
fn child_waits_for_a_signal() -> SignalGuard {
    let guard = SignalGuard::install().expect("no other guard in this process");
    assert!(!guard.stop_requested());
    println!("ready");
    assert_eq!(guard.wait(Some(PATIENCE)), Wake::Signal);
    assert!(guard.stop_requested());
    println!("stopped by {}", guard.first_signal().expect("a signal arrived"));
    guard
}

/// The first SIGINT sets the flag and wakes the waiter; the process goes on and ends
/// normally.
#[test]
fn first_sigint_asks_for_a_stop() {
    if is_child() {
        // Dropping the guard after a stop was requested is an ordinary end.
        drop(child_waits_for_a_signal());
        println!("ended normally");
        return;
    }
    let mut child = ChildTest::start("first_sigint_asks_for_a_stop");
    child.expect_line("ready");
    child.signal(libc::SIGINT);
    child.expect_line(&format!("stopped by {}", libc::SIGINT));
    child.expect_line("ended normally");
    let (status, output) = child.finish();
    assert!(status.success(), "{status:?}\n{output}");
}

/// SIGTERM asks for a stop the same way.
#[test]
fn first_sigterm_asks_for_a_stop() {
    if is_child() {
        drop(child_waits_for_a_signal());
        return;
    }
    let mut child = ChildTest::start("first_sigterm_asks_for_a_stop");
    child.expect_line("ready");
    child.signal(libc::SIGTERM);
    child.expect_line(&format!("stopped by {}", libc::SIGTERM));
    let (status, output) = child.finish();
    assert!(status.success(), "{status:?}\n{output}");
}

/// Child: after the first signal, waits without ending; the parent's second signal must
/// end it first.
fn child_outlives_the_first_signal() {
    let _guard = child_waits_for_a_signal();
    // Parks instead of waiting on the guard, which would return at once (the stop is
    // already requested); a second signal ends the process inside its handler.
    std::thread::park_timeout(PATIENCE);
    println!("survived the second signal");
}

/// A second SIGINT exits at once with status 130, whatever the program is doing.
#[test]
fn second_sigint_exits_at_once() {
    if is_child() {
        child_outlives_the_first_signal();
        return;
    }
    let mut child = ChildTest::start("second_sigint_exits_at_once");
    child.expect_line("ready");
    child.signal(libc::SIGINT);
    child.expect_line(&format!("stopped by {}", libc::SIGINT));
    child.signal(libc::SIGINT);
    let (status, output) = child.finish();
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{status:?}\n{output}");
    assert!(!output.contains("survived"), "{output}");
}

/// SIGTERM after SIGINT exits too, with SIGTERM's status (143).
#[test]
fn sigterm_after_sigint_exits_at_once() {
    if is_child() {
        child_outlives_the_first_signal();
        return;
    }
    let mut child = ChildTest::start("sigterm_after_sigint_exits_at_once");
    child.expect_line("ready");
    child.signal(libc::SIGINT);
    child.expect_line(&format!("stopped by {}", libc::SIGINT));
    child.signal(libc::SIGTERM);
    let (status, output) = child.finish();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}\n{output}");
}

/// A process that signals itself sees its own stop request.
#[test]
fn a_signal_to_itself() {
    if is_child() {
        let guard = SignalGuard::install().expect("no other guard in this process");
        // SAFETY: `kill` on our own pid with a handled signal.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGINT) }, 0);
        assert_eq!(guard.wait(Some(PATIENCE)), Wake::Signal);
        assert_eq!(guard.first_signal(), Some(libc::SIGINT));
        println!("saw its own signal");
        return;
    }
    let mut child = ChildTest::start("a_signal_to_itself");
    child.expect_line("saw its own signal");
    let (status, output) = child.finish();
    assert!(status.success(), "{status:?}\n{output}");
}

/// A second guard is refused while one exists, allowed after it is dropped; the drop puts
/// back the default handler, so a SIGINT afterwards kills the process by the signal.
#[test]
fn one_guard_at_a_time_and_drop_restores() {
    if is_child() {
        let guard = SignalGuard::install().expect("no other guard in this process");
        assert_eq!(SignalGuard::install().unwrap_err(), SignalError::AlreadyInstalled);
        drop(guard);
        let again = SignalGuard::install().expect("the first guard was dropped");
        assert!(!again.stop_requested(), "a new guard starts with no stop requested");
        drop(again);
        println!("restored");
        // SAFETY: `kill` on our own pid; the default action of SIGINT ends the process
        // before `kill` returns.
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
        std::thread::park_timeout(PATIENCE);
        println!("survived SIGINT");
        return;
    }
    let mut child = ChildTest::start("one_guard_at_a_time_and_drop_restores");
    child.expect_line("restored");
    let (status, output) = child.finish();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}\n{output}");
    assert!(!output.contains("survived"), "{output}");
}

/// Without a signal: a wait times out, `wake` ends one, and `wait_until` ends when its
/// condition holds (woken by another thread) or when a signal arrives.
#[test]
fn wake_and_wait_until() {
    if is_child() {
        let guard = SignalGuard::install().expect("no other guard in this process");
        assert_eq!(guard.wait(Some(Duration::from_millis(1))), Wake::Elapsed);
        guard.wake();
        assert_eq!(guard.wait(None), Wake::Woken);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                done.store(true, Ordering::SeqCst);
                guard.wake();
            });
            let ended = guard.wait_until(|| done.load(Ordering::SeqCst), PATIENCE);
            assert_eq!(ended, Ended::Condition);
        });
        assert!(!guard.stop_requested());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // SAFETY: `kill` on our own pid with a handled signal.
                unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            });
            assert_eq!(guard.wait_until(|| false, PATIENCE), Ended::Signal);
        });
        println!("all woke");
        return;
    }
    let mut child = ChildTest::start("wake_and_wait_until");
    child.expect_line("all woke");
    let (status, output) = child.finish();
    assert!(status.success(), "{status:?}\n{output}");
}
