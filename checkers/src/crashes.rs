//! No crashes: for a system where an isolate crash is a bug, the first crash (or failed
//! `init`) fails the run, naming the isolate and its reason.
//!
//! Not structural: tina restarts crashed isolates by design, and many systems crash on
//! purpose (a worker that gives up on bad input); this checker is switched on by the user
//! (`sim --fail-on-crash`, `Simulation::fail_on_crash`) when every crash is a bug, for
//! example when isolates `assert!` their invariants. Crashes the world causes (a shard or
//! node crash fault) are not the isolate's: `ExitKind::ShardCrashed` and a supervisor's
//! shutdown pass. O(1) per event; it looks at `Exit` events only.

use tina::{Event, ExitKind};

use crate::{EventKinds, Observer, Stamp, Verdict, violated};

const NAME: &str = "crashes";

/// Fails the run at the first isolate that crashes or fails its `init`.
#[derive(Debug, Default)]
pub struct NoCrashes;

impl Observer for NoCrashes {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::EXIT
    }

    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict {
        match *event {
            Event::Exit {
                handle,
                kind: kind @ (ExitKind::Crashed | ExitKind::InitFailed),
                reason,
            } => violated(
                NAME,
                format!(
                    "isolate {handle} on shard {} ended {} ({reason}), and this run allows no crash",
                    stamp.shard,
                    kind.name(),
                ),
            ),
            _ => Verdict::Continue,
        }
    }
}
