//! Fatal signals on shard threads, as a user meets them: each case runs this binary again
//! as a child process (`prod_fatal child <case>`), since a case ends in a signal or an
//! abort, or leaves a thread parked for good. The parent checks the child's exit status
//! and output. No test harness (`harness = false` in Cargo.toml): `main` runs the cases
//! and takes libtest's name filter, `--list` and `--exact`.
//!
//! The binary's global allocator is `GuardedAlloc` around `Trapdoor`, which a thread can
//! arm to take a SIGSEGV inside its next allocation: the allocator case.

#[cfg(target_os = "linux")]
#[expect(
    clippy::disallowed_methods,
    reason = "the parent waits in real time for child processes, reading their pipes on threads"
)]
mod linux {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use tina::prod::fatal::{FatalSignal, GuardedAlloc, STALL_LIMIT_MIN, provoke};
    use tina::prod::{InjectError, Runtime, RuntimeConfig, RuntimeError, ShardReport, Summary};
    use tina::{Ctx, Effect, Handle, Isolate, Message, ShardId, SystemSpec, TypeConfig};

    #[global_allocator]
    static ALLOCATOR: GuardedAlloc<Trapdoor> = GuardedAlloc::new(Trapdoor);

    thread_local! {
        /// The next allocation on this thread takes a SIGSEGV.
        static ARMED: Cell<bool> = const { Cell::new(false) };
    }

    /// The system allocator, except that an armed thread's next allocation faults.
    struct Trapdoor;

    // SAFETY: forwards to `System` with the caller's arguments; the armed case never returns.
    unsafe impl GlobalAlloc for Trapdoor {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if ARMED.with(|armed| armed.replace(false)) {
                provoke(FatalSignal::Segv);
            }
            // SAFETY: the caller's contract for `layout`, unchanged.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract: `ptr` came from `System` with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// How long a child may take (it needs about a second).
    const CHILD_PATIENCE: Duration = Duration::from_secs(60);
    /// How long a child waits for its shards.
    const PATIENCE: Duration = Duration::from_secs(20);
    /// SIGABRT's number on Linux.
    const SIGABRT: i32 = 6;

    tina::payload! {
        /// What the victim is told to do.
        #[derive(Clone, Copy, Debug)]
        #[repr(C)]
        pub struct Order { pub what: u64, pub signal: u64 }
    }

    tina::spawn_args! {
        #[derive(Clone, Copy, Debug)]
        #[repr(C)]
        pub struct TickerArgs { pub victim: Handle }
    }

    /// `Order::what`: nothing, just arrive (the ticker's probes).
    const PROBE: u64 = 0;
    /// `Order::what`: `provoke(signal)`.
    const PROVOKE: u64 = 1;
    /// `Order::what`: read address 0 (a real fault, with an address).
    const NULL_READ: u64 = 2;
    /// `Order::what`: recurse until the stack overflows.
    const OVERFLOW: u64 = 5;
    /// `Order::what`: allocate with the trapdoor armed.
    const ALLOCATE: u64 = 3;
    /// `Order::what`: spin forever.
    const SPIN: u64 = 4;

    /// Timer firings of the ticker on shard 0: its progress.
    static PROGRESS: AtomicU64 = AtomicU64::new(0);

    /// On shard 0: every millisecond, counts `PROGRESS` and sends a probe to the victim.
    struct Ticker {
        victim: Handle,
    }

    impl Isolate for Ticker {
        type Args = TickerArgs;

        fn init(args: TickerArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
            let _ = ctx.timer_set(Duration::from_millis(1), 0);
            (Ticker { victim: args.victim }, Effect::Receive)
        }

        fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            if message.timer().is_some() {
                PROGRESS.fetch_add(1, Ordering::Relaxed);
                // Refused once the victim's shard is quarantined: a counted drop.
                let _ = ctx.send(self.victim, &Order { what: PROBE, signal: 0 });
                if ctx.timer_set(Duration::from_millis(1), 0).is_err() {
                    return Effect::Crash(tina::Label::new("no-timer"));
                }
            }
            Effect::Receive
        }
    }

    /// On shard 1: does what it is told.
    struct Victim;

    impl Isolate for Victim {
        type Args = ();

        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            (Victim, Effect::Receive)
        }

        fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            let Ok(order) = message.decode::<Order>() else { return Effect::Receive };
            match order.what {
                PROVOKE => provoke(signal(order.signal)),
                NULL_READ => read_null(),
                OVERFLOW => {
                    std::hint::black_box(recurse(0));
                }
                ALLOCATE => {
                    ARMED.with(|armed| armed.set(true));
                    std::hint::black_box(Box::new([7u8; 64]));
                }
                SPIN => loop {
                    std::hint::spin_loop();
                },
                _ => {}
            }
            Effect::Receive
        }
    }

    /// On shard 1: takes a SIGBUS in its `init`.
    struct Bomb;

    impl Isolate for Bomb {
        type Args = ();

        fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
            provoke(FatalSignal::Bus)
        }

        fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
            Effect::Receive
        }
    }

    fn signal(number: u64) -> FatalSignal {
        i32::try_from(number).ok().and_then(FatalSignal::from_number).expect("a fatal signal")
    }

    /// Reads address 0, which is never mapped: the instruction faults with SIGSEGV, and the
    /// handler never returns to it (it parks a shard thread for good; on any other thread the
    /// default action ends the process), so nothing after it runs.
    #[cfg(target_arch = "x86_64")]
    fn read_null() -> ! {
        // SAFETY: see above; the asm touches no Rust object and does not return.
        unsafe {
            core::arch::asm!("xor eax, eax", "mov rax, qword ptr [rax]", "ud2", options(noreturn))
        }
    }

    /// As on x86_64.
    #[cfg(target_arch = "aarch64")]
    fn read_null() -> ! {
        // SAFETY: see the x86_64 version; the asm touches no Rust object and does not return.
        unsafe { core::arch::asm!("mov x0, #0", "ldr x0, [x0]", "udf #0", options(noreturn)) }
    }

    /// Elsewhere: a provoked SIGSEGV (without an address, so the null case fails there).
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn read_null() -> ! {
        provoke(FatalSignal::Segv)
    }

    /// Recurses without end, 512 bytes of frame a call, until the thread's stack overflows
    /// into its guard page.
    fn recurse(depth: u64) -> u64 {
        let frame = std::hint::black_box([depth; 64]);
        if depth == u64::MAX {
            return frame[0];
        }
        recurse(depth + 1).wrapping_add(std::hint::black_box(frame)[1])
    }

    /// Two shards: the ticker on shard 0, the victim on shard 1.
    fn spec() -> (SystemSpec, Handle) {
        let mut spec = SystemSpec::new(2);
        let ticker = spec.register::<Ticker>(TypeConfig::new("ticker").slots(1));
        let victim = spec.register::<Victim>(TypeConfig::new("victim").slots(1));
        spec.register_payload::<Order>();
        let victim = spec.boot_child(ShardId(1), victim, ());
        spec.boot_child(ShardId(0), ticker, TickerArgs { victim });
        (spec, victim)
    }

    fn progress() -> u64 {
        PROGRESS.load(Ordering::Relaxed)
    }

    // ----- the children ------------------------------------------------------------------------

    /// Runs the child case `args` and returns normally only if it succeeded.
    fn child(args: &[String]) {
        // A child that dies by a signal on purpose leaves no core dump behind.
        let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: a live `rlimit`; lowering a limit needs no privilege.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &raw const none) };
        let argument = |index: usize| args.get(index).map(String::as_str).unwrap_or_default();
        match argument(0) {
            "contain" => {
                let order = match argument(1) {
                    "null" => Order { what: NULL_READ, signal: 0 },
                    "overflow" => Order { what: OVERFLOW, signal: 0 },
                    name => {
                        let signal = FatalSignal::from_name(name).expect("a signal name");
                        Order { what: PROVOKE, signal: signal.number() as u64 }
                    }
                };
                contain(order);
            }
            "abort" => {
                let (what, config) = match argument(1) {
                    "allocator" => (ALLOCATE, RuntimeConfig::default()),
                    "stall" => (
                        SPIN,
                        RuntimeConfig { stall_limit: Some(STALL_LIMIT_MIN), ..Default::default() },
                    ),
                    other => panic!("no abort case {other}"),
                };
                let (spec, victim) = spec();
                let runtime = Runtime::boot(spec, config).expect("boots");
                let mut injector = runtime.injector(ShardId(1)).expect("an injector");
                injector.send(victim, &Order { what, signal: 0 }).expect("sent");
                runtime.wait_until(PATIENCE, |_| false);
                println!("still alive after {PATIENCE:?}");
            }
            "outside" => {
                // A runtime is running, so the handler is installed.
                let (spec, _) = spec();
                let _runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
                let fault = || match argument(2) {
                    "null" => read_null(),
                    name => provoke(FatalSignal::from_name(name).expect("a signal name")),
                };
                match argument(1) {
                    "main" => fault(),
                    "thread" => {
                        let _ = std::thread::scope(|scope| scope.spawn(fault).join());
                    }
                    other => panic!("no thread {other}"),
                }
                println!("survived");
            }
            "boot" => {
                let mut spec = SystemSpec::new(2);
                let bomb = spec.register::<Bomb>(TypeConfig::new("bomb").slots(1));
                spec.boot_child(ShardId(1), bomb, ());
                match Runtime::boot(spec, RuntimeConfig::default()) {
                    Err(error @ RuntimeError::Quarantined { .. }) => println!("boot: {error}"),
                    other => panic!("boot gave {other:?}"),
                }
            }
            other => panic!("no child case {other}"),
        }
    }

    /// Quarantines shard 1 with `order`, checks shard 0 keeps serving, stops, prints.
    fn contain(order: Order) {
        let (spec, victim) = spec();
        let runtime = Runtime::boot(spec, RuntimeConfig::default()).expect("boots");
        let mut injector = runtime.injector(ShardId(1)).expect("an injector");
        assert!(runtime.wait_until(PATIENCE, |_| progress() >= 20), "the ticker ticks");
        injector.send(victim, &order).expect("sent");
        let quarantined = runtime.wait_until(PATIENCE, |reports| reports[1].quarantined.is_some());
        assert!(quarantined, "shard 1 is quarantined: {:?}", runtime.reports()[1]);
        let at_fault = progress();
        let served = runtime.wait_until(PATIENCE, |reports| {
            progress() >= at_fault + 50 && reports[0].sends_to_quarantined >= 10
        });
        assert!(served, "shard 0 keeps serving: {:?}", runtime.reports()[0]);
        assert_eq!(
            injector.send(victim, &Order { what: PROBE, signal: 0 }),
            Err(InjectError::Quarantined)
        );
        let summary: Summary = runtime.stop();
        for (shard, fault) in summary.quarantined() {
            println!("quarantined: shard {} {fault}", shard.index());
        }
        let report = |shard: usize| -> &ShardReport { &summary.shards[shard] };
        println!("progress after the fault: {}", progress() - at_fault);
        println!(
            "shard 0: stopped={} ring_full={} sends_to_quarantined={}",
            report(0).stopped,
            report(0).counters.ring_full,
            report(0).sends_to_quarantined
        );
        println!("shard 1: stopped={}", report(1).stopped);
    }

    // ----- the parent ----------------------------------------------------------------------------

    /// What a child did.
    struct Outcome {
        status: ExitStatus,
        stdout: String,
        stderr: String,
    }

    impl std::fmt::Debug for Outcome {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}\n--- stdout\n{}--- stderr\n{}", self.status, self.stdout, self.stderr)
        }
    }

    /// Runs this binary as `child args...`, killing it after `CHILD_PATIENCE`.
    fn run_child(args: &[&str]) -> Outcome {
        let exe = std::env::current_exe().expect("this binary");
        let mut child = Command::new(exe)
            .arg("child")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped")));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waits") {
                break status;
            }
            if started.elapsed() > CHILD_PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child {args:?} hung for {CHILD_PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Outcome {
            status,
            stdout: stdout.join().expect("read"),
            stderr: stderr.join().expect("read"),
        }
    }

    /// The number after `key` in `text`.
    fn number_after(text: &str, key: &str) -> u64 {
        let start = text.find(key).unwrap_or_else(|| panic!("{key} in {text}")) + key.len();
        text[start..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("a number after {key} in {text}"))
    }

    /// A contained fault: the child exits 0 after a clean stop; shard 1 is reported
    /// quarantined with `expected` (the fault's description); shard 0 kept ticking and its
    /// sends to shard 1 were counted drops; the watchdog announced it once.
    fn check_contained(case: &str, expected: &str) {
        let outcome = check_quarantine(case, |fault| fault == expected);
        let announced = format!("tina: shard 1 quarantined: {expected};");
        assert_eq!(outcome.stderr.matches(&announced).count(), 1, "{announced}{outcome:?}");
    }

    /// As `check_contained`, for a fault whose description `expected` accepts.
    fn check_quarantine(case: &str, expected: impl Fn(&str) -> bool) -> Outcome {
        let outcome = run_child(&["contain", case]);
        assert!(outcome.status.success(), "{outcome:?}");
        let line =
            outcome.stdout.lines().find_map(|line| line.strip_prefix("quarantined: shard 1 "));
        assert!(line.is_some_and(&expected), "{outcome:?}");
        assert_eq!(outcome.stdout.matches("quarantined: shard").count(), 1, "{outcome:?}");
        assert_eq!(outcome.stderr.matches("tina: shard 1 quarantined: ").count(), 1, "{outcome:?}");
        assert!(number_after(&outcome.stdout, "progress after the fault: ") >= 50, "{outcome:?}");
        let dropped = number_after(&outcome.stdout, "sends_to_quarantined=");
        assert!(dropped >= 10, "{outcome:?}");
        assert!(number_after(&outcome.stdout, "ring_full=") >= dropped, "{outcome:?}");
        assert!(outcome.stdout.contains("shard 0: stopped=true"), "{outcome:?}");
        assert!(outcome.stdout.contains("shard 1: stopped=false"), "parked: {outcome:?}");
        outcome
    }

    fn provoked_signals_in_isolate_code_quarantine_only_their_shard() {
        for signal in FatalSignal::ALL {
            let expected =
                format!("{signal} sent to the thread (no fault address) in isolate code");
            check_contained(&signal.name()[3..].to_lowercase(), &expected);
        }
    }

    fn a_null_read_in_isolate_code_is_contained_with_its_address() {
        check_contained("null", "SIGSEGV at 0x0 in isolate code");
    }

    /// The handler runs on the shard's alternate stack, so even a stack overflow in an
    /// isolate is contained (the address is in the thread's guard page).
    fn a_stack_overflow_in_isolate_code_is_contained() {
        check_quarantine("overflow", |fault| {
            fault.starts_with("SIGSEGV at 0x") && fault.ends_with(" in isolate code")
        });
    }

    /// The allocator's state is every thread's: the process aborts with one line.
    fn a_fault_inside_the_allocator_aborts_the_process() {
        let outcome = run_child(&["abort", "allocator"]);
        assert_eq!(outcome.status.signal(), Some(SIGABRT), "{outcome:?}");
        let line = "tina: shard 1 took SIGSEGV sent to the thread (no fault address) in the allocator, which \
                    quarantining the shard cannot contain: the allocator's state is shared by \
                    every thread";
        assert!(outcome.stderr.contains(line), "{outcome:?}");
        assert!(!outcome.stdout.contains("still alive"), "{outcome:?}");
    }

    /// An isolate that spins forever: the watchdog aborts after the stall limit.
    fn a_stalled_shard_makes_the_watchdog_abort() {
        let started = Instant::now();
        let outcome = run_child(&["abort", "stall"]);
        assert_eq!(outcome.status.signal(), Some(SIGABRT), "{outcome:?}");
        assert!(outcome.stderr.contains("tina: shard 1 stalled: no tick for "), "{outcome:?}");
        assert!(outcome.stderr.contains("(stall limit 500ms)"), "{outcome:?}");
        assert!(started.elapsed() < PATIENCE, "aborted well before the child gave up");
    }

    /// Not a shard thread: the signal gets the disposition it had before the runtime (std's
    /// handler for SIGSEGV, the default for the others), and the process dies by it.
    fn faults_on_other_threads_still_kill_the_process_with_their_signal() {
        let cases = [
            ("main", "segv", FatalSignal::Segv),
            ("main", "null", FatalSignal::Segv),
            ("thread", "ill", FatalSignal::Ill),
            ("thread", "fpe", FatalSignal::Fpe),
            ("thread", "bus", FatalSignal::Bus),
        ];
        for (thread, fault, signal) in cases {
            let outcome = run_child(&["outside", thread, fault]);
            assert_eq!(
                outcome.status.signal(),
                Some(signal.number()),
                "{thread} {fault}: {outcome:?}"
            );
            assert!(!outcome.stdout.contains("survived"), "{outcome:?}");
            assert!(!outcome.stderr.contains("tina: shard"), "not taken for a shard: {outcome:?}");
        }
    }

    /// A shard quarantined in an `init` fails the boot with a typed error, and the boot's
    /// stop does not wait for the parked thread.
    fn a_shard_quarantined_while_booting_fails_the_boot() {
        let outcome = run_child(&["boot"]);
        assert!(outcome.status.success(), "{outcome:?}");
        let line = "boot: shard 1 was quarantined while booting: SIGBUS sent to the thread (no fault address) in isolate code";
        assert!(outcome.stdout.contains(line), "{outcome:?}");
    }

    /// In this process: a stall limit below the minimum is a typed error; the default is on.
    fn stall_limits_are_checked() {
        assert_eq!(RuntimeConfig::default().stall_limit, Some(Duration::from_secs(10)));
        let (two_shards, _) = spec();
        let short = RuntimeConfig { stall_limit: Some(STALL_LIMIT_MIN / 2), ..Default::default() };
        let error = Runtime::boot(two_shards, short).expect_err("too short");
        assert!(matches!(error, RuntimeError::Config(_)), "{error}");
        assert!(error.to_string().contains("stall_limit"), "{error}");
        let (two_shards, _) = spec();
        let off = RuntimeConfig { stall_limit: None, ..Default::default() };
        let runtime = Runtime::boot(two_shards, off).expect("no stall detection is fine");
        let summary = runtime.stop();
        assert_eq!(summary.quarantined().count(), 0);
        assert!(summary.shards.iter().all(|report| report.quarantined.is_none()));
    }

    type Case = (&'static str, fn());

    const CASES: &[Case] = &[
        (
            "provoked_signals_in_isolate_code_quarantine_only_their_shard",
            provoked_signals_in_isolate_code_quarantine_only_their_shard,
        ),
        (
            "a_null_read_in_isolate_code_is_contained_with_its_address",
            a_null_read_in_isolate_code_is_contained_with_its_address,
        ),
        (
            "a_stack_overflow_in_isolate_code_is_contained",
            a_stack_overflow_in_isolate_code_is_contained,
        ),
        (
            "a_fault_inside_the_allocator_aborts_the_process",
            a_fault_inside_the_allocator_aborts_the_process,
        ),
        ("a_stalled_shard_makes_the_watchdog_abort", a_stalled_shard_makes_the_watchdog_abort),
        (
            "faults_on_other_threads_still_kill_the_process_with_their_signal",
            faults_on_other_threads_still_kill_the_process_with_their_signal,
        ),
        (
            "a_shard_quarantined_while_booting_fails_the_boot",
            a_shard_quarantined_while_booting_fails_the_boot,
        ),
        ("stall_limits_are_checked", stall_limits_are_checked),
    ];

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.first().map(String::as_str) == Some("child") {
            child(&args[1..]);
            return;
        }
        if args.iter().any(|arg| arg == "--list") {
            for (name, _) in CASES {
                println!("{name}: test");
            }
            return;
        }
        let exact = args.iter().any(|arg| arg == "--exact");
        let filters: Vec<&str> =
            args.iter().map(String::as_str).filter(|arg| !arg.starts_with('-')).collect();
        let selected = |name: &str| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|filter| if exact { name == *filter } else { name.contains(filter) })
        };
        let cases: Vec<&Case> = CASES.iter().filter(|(name, _)| selected(name)).collect();
        println!("\nrunning {} tests", cases.len());
        let mut failed = Vec::new();
        for (name, case) in cases.iter().copied() {
            let result = std::panic::catch_unwind(*case);
            println!("test {name} ... {}", if result.is_ok() { "ok" } else { "FAILED" });
            if result.is_err() {
                failed.push(*name);
            }
        }
        let passed = cases.len() - failed.len();
        println!(
            "\ntest result: {}. {passed} passed; {} failed",
            if failed.is_empty() { "ok" } else { "FAILED" },
            failed.len()
        );
        if !failed.is_empty() {
            println!("failures: {failed:?}");
            std::process::exit(101);
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}
