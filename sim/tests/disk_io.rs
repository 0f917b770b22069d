//! Files through the simulator: an isolate's `Effect::Io` file operations reach its node's
//! virtual disk and complete with real bytes, deterministically; socket operations, not
//! simulated yet, fail with a typed error instead of hanging.

use tina::io::{IoError, IoHandle, IoOp, IoOpKind, IoResult, OpenMode};
use tina::{Ctx, Effect, Isolate, Label, Message, ShardId, SystemSpec, TypeConfig};
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
            (IoOpKind::TcpConnect, IoResult::Failed(IoError::Unsupported)) => Effect::Done,
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
