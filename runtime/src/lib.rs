//! tina: isolates that react to messages and return effects, on a scheduler that is the same
//! code in deterministic simulation and in production.
//!
//! An [`Isolate`] is a small state machine. The [`Scheduler`] of a shard owns every isolate
//! of that shard in typed arenas allocated at boot, delivers 128-byte [`Message`]s through
//! bounded mailboxes, and interprets the [`Effect`] each handler returns. Everything the
//! scheduler needs from the outside world goes through one trait, [`Backend`]; the simulator
//! and the production runtime are two implementations of it.
//!
//! ```
//! use tina::{Ctx, Effect, Isolate, Message, ShardId, SystemSpec, TypeConfig};
//! use tina::testing::{TestConfig, TestWorld};
//!
//! tina::payload! {
//!     #[derive(Clone, Copy, Debug)]
//!     #[repr(C)]
//!     pub struct Hello { pub count: u64 }
//! }
//!
//! /// Counts greetings and stops after three.
//! struct Greeter { seen: u64 }
//!
//! impl Isolate for Greeter {
//!     type Args = ();
//!     fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
//!         let me = ctx.self_handle();
//!         ctx.send(me, &Hello { count: 0 }).expect("own mailbox has room");
//!         (Greeter { seen: 0 }, Effect::Receive)
//!     }
//!     fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
//!         let Ok(hello) = message.decode::<Hello>() else { return Effect::Receive };
//!         self.seen += 1;
//!         if hello.count == 2 {
//!             return Effect::Done;
//!         }
//!         let me = ctx.self_handle();
//!         let _ = ctx.send(me, &Hello { count: hello.count + 1 });
//!         Effect::Receive
//!     }
//! }
//!
//! let mut spec = SystemSpec::new(1);
//! let greeter = spec.register::<Greeter>(TypeConfig::new("greeter").slots(4));
//! spec.register_payload::<Hello>();
//! spec.boot_child(ShardId(0), greeter, ());
//!
//! let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("valid spec");
//! world.run_until_idle(100);
//! assert_eq!(world.counters(ShardId(0)).delivered, 3);
//! assert_eq!(world.counters(ShardId(0)).exits_normal, 1);
//! ```
//!
//! Determinism: nothing in this crate reads the wall clock, spawns a thread, draws ambient
//! randomness or iterates a hash map; time and randomness come from the backend. The one
//! exception is [`prod`], the production runtime's pieces that face the operating system
//! (memory, CPU time, core affinity, signals), which the core never calls.

#![deny(missing_docs)]

// Containing a panicking isolate needs unwinding; an abort would take the whole node down.
#[cfg(panic = "abort")]
compile_error!("tina contains isolate panics with catch_unwind: build with panic = \"unwind\"");

// Lets `payload!` name this crate as `::tina` when it is used inside the crate itself.
extern crate self as tina;

mod arena;
mod backend;
mod containment;
mod ctx;
pub mod flow;
mod footprint;
mod handle;
pub mod io;
mod isolate;
mod label;
pub mod limits;
mod message;
mod payload;
mod pool;
pub mod prod;
mod recovery;
mod ring;
mod scheduler;
mod shard;
mod shutdown;
mod spec;
mod supervision;
pub mod testing;
mod timer;
mod trace;

pub use backend::{Backend, Env, Timestamp, TransportFull};
pub use ctx::Ctx;
pub use footprint::MemoryBytes;
pub use handle::{Handle, ShardId};
pub use isolate::{Effect, Isolate, ReplyToken, SpawnArgs, crash};
pub use label::{Label, fnv1a_64};
pub use message::{DropNotice, Message, MessageId, TimerFired};
pub use payload::{DecodeError, Outgoing, Payload, Tag};
pub use recovery::{Recovery, RestartBudget, ShardRecovery};
pub use scheduler::{Scheduler, TickReport};
pub use shard::{ReplyError, SendError};
pub use shutdown::ShutdownReport;
pub use spec::{
    BootError, GroupConfig, GroupRef, Restart, SpecError, SpecErrors, Strategy, SystemSpec,
    TypeConfig, TypeIndex,
};
pub use timer::{TimerError, TimerId};
pub use trace::{
    CallFailure, CallOutcome, Counters, DropReason, Event, ExitKind, Level, NO_REASON, PanicText,
    ShardFailure, SpawnError,
};

/// Re-exported so `payload!` works without a direct `zerocopy` dependency.
pub use zerocopy;
