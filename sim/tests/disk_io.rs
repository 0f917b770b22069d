//! Files through the simulator: an isolate's `Effect::Io` file operations reach its node's
//! virtual disk and complete with real bytes, deterministically, under every disk fault.

use tina::io::{IoError, IoHandle, IoOp, IoOpKind, IoResult, OpenMode};
use tina::{Ctx, Effect, Isolate, Label, Message, ShardId, SystemSpec, TypeConfig};
use tina_sim::faults::FaultKind;
use tina_sim::{FailureClass, Outcome, Setup, Simulation};

const TEXT: &[u8] = b"hello, disk";

/// Creates `/journal`, writes `TEXT`, fsyncs, reads it back, checks it, closes, finishes.
/// Any surprise is a crash, which `fail_on_crash` turns into a failed run.
struct Journal {
    file: IoHandle,
}

fn surprise(what: &'static str) -> Effect {
    Effect::Crash(Label::new(what))
}

impl Isolate for Journal {
    type Args = ();

    fn init(_args: (), ctx: &mut Ctx<'_>) -> (Journal, Effect) {
        let path = ctx.buffer_alloc().expect("a buffer");
        ctx.buffer_write(path, 0, b"/journal").expect("fits");
        let open = IoOp::FileOpen { path, path_len: 8, mode: OpenMode::Create };
        (Journal { file: IoHandle::NONE }, Effect::Io(open))
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        match (io.op, io.result) {
            (IoOpKind::FileOpen, IoResult::Opened(file)) => {
                self.file = file;
                let data = ctx.buffer_alloc().expect("a buffer");
                ctx.buffer_write(data, 0, TEXT).expect("fits");
                // TEXT is a few bytes.
                Effect::Io(IoOp::FileWrite {
                    file,
                    offset: 0,
                    buffer: data,
                    len: TEXT.len() as u32,
                })
            }
            (IoOpKind::FileWrite, IoResult::Transferred(n)) if n as usize == TEXT.len() => {
                Effect::Io(IoOp::FileFsync { file: self.file })
            }
            (IoOpKind::FileFsync, IoResult::Done) => {
                Effect::Io(IoOp::FileRead { file: self.file, offset: 0, len_max: 64 })
            }
            (IoOpKind::FileRead, IoResult::Received { .. }) if ctx.io_data() == TEXT => {
                Effect::Io(IoOp::Close { handle: self.file })
            }
            (IoOpKind::FileRead, _) => surprise("read back something else"),
            (IoOpKind::Close, IoResult::Done) => {
                Effect::Io(IoOp::TcpConnect { addr: "10.0.0.2:7".parse().expect("an address") })
            }
            // No node 10.0.0.2 in this world: an unroutable host answers nothing, and the
            // connect times out.
            (IoOpKind::TcpConnect, IoResult::Failed(IoError::TimedOut)) => Effect::Done,
            _ => surprise("unexpected completion"),
        }
    }
}

fn journal() -> Setup {
    let mut spec = SystemSpec::new(1);
    spec.io_buffers(4, 64);
    let journal = spec.register::<Journal>(TypeConfig::new("journal").slots(1));
    spec.boot_child(ShardId(0), journal, ());
    Setup::new(spec)
}

/// Write, fsync, read back and close a file on the node's disk; the run ends with every
/// isolate finished and nothing outstanding, on every seed, with the same trace each time.
#[test]
fn a_file_round_trip_through_the_disk() {
    let simulation = Simulation::new("journal", |_| journal()).fail_on_crash(true).seeds(50);
    simulation.check();
    let (one, two) = (simulation.run(3).expect("valid"), simulation.run(3).expect("valid"));
    assert_eq!(one.trace, two.trace);
    assert_eq!(one.counter("io_submitted"), 6, "open, write, fsync, read, close, connect");
    assert_eq!(one.counter("io_completed"), 6);
}

/// Without the file the read finds nothing: a file that was never written reads as zero
/// bytes, which the isolate reports as a crash, and the run fails naming it.
#[test]
fn a_surprise_is_reported() {
    struct Reader;
    impl Isolate for Reader {
        type Args = ();
        fn init(_args: (), ctx: &mut Ctx<'_>) -> (Reader, Effect) {
            let path = ctx.buffer_alloc().expect("a buffer");
            ctx.buffer_write(path, 0, b"/empty").expect("fits");
            (Reader, Effect::Io(IoOp::FileOpen { path, path_len: 6, mode: OpenMode::Create }))
        }
        fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
            match message.io().map(|io| io.result) {
                Some(IoResult::Opened(file)) => {
                    Effect::Io(IoOp::FileRead { file, offset: 0, len_max: 8 })
                }
                Some(IoResult::Received { len: 0, .. }) if ctx.io_data().is_empty() => {
                    surprise("nothing to read")
                }
                _ => Effect::Receive,
            }
        }
    }
    let simulation = Simulation::new("reader", |_| {
        let mut spec = SystemSpec::new(1);
        let reader = spec.register::<Reader>(TypeConfig::new("reader").slots(1));
        spec.boot_child(ShardId(0), reader, ());
        Setup::new(spec)
    })
    .fail_on_crash(true);
    let report = simulation.run(1).expect("valid");
    let Outcome::Fail { class, checker, reason } = &report.outcome else { panic!("passed") };
    assert_eq!((*class, checker.as_str()), (FailureClass::Correctness, "crashes"));
    assert!(reason.contains("nothing to read"), "{reason}");
}

/// Appends `RECORDS` records of 16 bytes to `/log`, retrying every operation a fault
/// failed, fsyncs, then reads every record back (again after a corrupted read) and
/// finishes only when all of them read as written.
struct Appender {
    file: IoHandle,
    record: u64,
    phase: AppendPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AppendPhase {
    Open,
    Write,
    Sync,
    Verify,
}

const RECORDS: u64 = 40;

fn record_bytes(record: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&record.to_le_bytes());
    bytes[8..].copy_from_slice(&(record * 7 + 3).to_le_bytes());
    bytes
}

impl Appender {
    /// The operation of the current phase, for the current record.
    fn next(&self, ctx: &mut Ctx<'_>) -> Effect {
        let offset = self.record * 16;
        match self.phase {
            AppendPhase::Open => {
                let path = ctx.buffer_alloc().expect("a buffer");
                ctx.buffer_write(path, 0, b"/log").expect("fits");
                Effect::Io(IoOp::FileOpen { path, path_len: 4, mode: OpenMode::Create })
            }
            AppendPhase::Write => {
                let buffer = ctx.buffer_alloc().expect("a buffer");
                ctx.buffer_write(buffer, 0, &record_bytes(self.record)).expect("fits");
                Effect::Io(IoOp::FileWrite { file: self.file, offset, buffer, len: 16 })
            }
            AppendPhase::Sync => Effect::Io(IoOp::FileFsync { file: self.file }),
            AppendPhase::Verify => {
                Effect::Io(IoOp::FileRead { file: self.file, offset, len_max: 16 })
            }
        }
    }
}

impl Isolate for Appender {
    type Args = ();

    fn init(_args: (), ctx: &mut Ctx<'_>) -> (Appender, Effect) {
        let appender = Appender { file: IoHandle::NONE, record: 0, phase: AppendPhase::Open };
        let effect = appender.next(ctx);
        (appender, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(io) = message.io() else { return Effect::Receive };
        let done = match (self.phase, io.result) {
            (AppendPhase::Open, IoResult::Opened(file)) => {
                self.file = file;
                true
            }
            (AppendPhase::Write, IoResult::Transferred(16)) => true,
            (AppendPhase::Sync, IoResult::Done) => true,
            (AppendPhase::Verify, IoResult::Received { .. }) => {
                ctx.io_data() == record_bytes(self.record)
            }
            // A fault: do the same operation again.
            _ => false,
        };
        if done {
            match self.phase {
                AppendPhase::Open => self.phase = AppendPhase::Write,
                AppendPhase::Write if self.record + 1 < RECORDS => self.record += 1,
                AppendPhase::Write => self.phase = AppendPhase::Sync,
                AppendPhase::Sync => {
                    self.phase = AppendPhase::Verify;
                    self.record = 0;
                }
                AppendPhase::Verify if self.record + 1 < RECORDS => self.record += 1,
                AppendPhase::Verify => return Effect::Done,
            }
        }
        self.next(ctx)
    }
}

/// Under every disk fault (errors, failed fsyncs, corrupted reads, a disk full of others'
/// data, latency), an isolate that retries what failed writes, syncs and verifies all its
/// records on every seed, and across the seeds each disk fault fires.
#[test]
fn every_disk_fault_fires_and_a_retrying_writer_survives() {
    let simulation = Simulation::new("appender", |_| {
        let mut spec = SystemSpec::new(1);
        spec.io_buffers(8, 64);
        let appender = spec.register::<Appender>(TypeConfig::new("appender").slots(1));
        spec.boot_child(ShardId(0), appender, ());
        Setup::new(spec)
    })
    .fault("disk_latency_min=50us")
    .fault("disk_latency_max=5ms")
    .fault("disk_error_probability=5%")
    .fault("disk_fsync_failure_probability=20%")
    .fault("disk_corruption_probability=5%")
    .fault("disk_full_probability=5%")
    .fail_on_crash(true);
    let mut fired = [0u64; 4];
    for seed in 1..=20 {
        let report = simulation.run(seed).expect("valid");
        assert!(report.passed(), "seed {seed}: {:?}", report.outcome);
        for (at, kind) in [
            FaultKind::DiskError,
            FaultKind::DiskFsyncFailure,
            FaultKind::DiskCorruption,
            FaultKind::DiskFull,
        ]
        .into_iter()
        .enumerate()
        {
            fired[at] += report.faults.of(kind);
        }
    }
    assert!(fired.iter().all(|&count| count > 0), "disk faults fired: {fired:?}");
}
