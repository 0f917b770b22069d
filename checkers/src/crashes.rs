//! No crashes: for a system where an isolate crash is a bug, the first crash (or failed
//! `init`) fails the run, naming the isolate and its reason.
//!
//! Not structural: tina restarts crashed isolates by design, and many systems crash on
//! purpose (a worker that gives up on bad input); this checker is switched on by the user
//! (`sim --fail-on-crash`, `Simulation::fail_on_crash`) when every crash is a bug, for
//! example when isolates `assert!` their invariants. Crashes the world causes are not the
//! isolate's: a shard or node crash (`ExitKind::ShardCrashed`), a supervisor's shutdown,
//! and the isolate crash or init failure a fault injected (announced by the world event
//! just before the exit) all pass. O(1) per event; it looks at `Exit` events and the two
//! world events that announce an injected crash.

use tina::{Event, ExitKind, Handle};

use crate::{EventKinds, Observer, Stamp, Verdict, WorldEvent, violated};

const NAME: &str = "crashes";

/// Fails the run at the first isolate that crashes or fails its `init`.
#[derive(Debug, Default)]
pub struct NoCrashes {
    /// The isolate whose crash the world just injected: its next exit is excused. The
    /// core records the exit right after the world event, so one is enough.
    injected: Option<Handle>,
}

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
            } if self.injected.take() != Some(handle) => violated(
                NAME,
                format!(
                    "isolate {handle} on shard {} ended {} ({reason}), and this run allows no crash",
                    stamp.shard,
                    kind.name(),
                ),
            ),
            Event::Exit { .. } => {
                self.injected = None;
                Verdict::Continue
            }
            _ => Verdict::Continue,
        }
    }

    fn observe_world(&mut self, _stamp: &Stamp, event: &WorldEvent) -> Verdict {
        if let WorldEvent::IsolateCrash { handle } | WorldEvent::InitFailure { handle } = *event {
            self.injected = Some(handle);
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use tina::{Label, ShardId};

    use super::*;

    fn stamp(index: u64) -> Stamp {
        Stamp { index, time_ns: index, local_ns: index, node: 0, shard: ShardId(0) }
    }

    fn exit(handle: Handle, kind: ExitKind) -> Event {
        Event::Exit { handle, kind, reason: Label::new("boom") }
    }

    /// A crash or failed init the world injected is excused, once and only for its isolate;
    /// the isolate's own crash is not, and neither is a world crash's exit.
    #[test]
    fn injected_crashes_are_excused() {
        let (a, b) = (Handle::from_raw(1), Handle::from_raw(2));
        let mut checker = NoCrashes::default();
        for (event, kind) in [
            (WorldEvent::IsolateCrash { handle: a }, ExitKind::Crashed),
            (WorldEvent::InitFailure { handle: a }, ExitKind::InitFailed),
        ] {
            assert_eq!(checker.observe_world(&stamp(0), &event), Verdict::Continue);
            assert_eq!(checker.observe(&stamp(1), &exit(a, kind)), Verdict::Continue);
        }
        assert_eq!(checker.observe(&stamp(2), &exit(b, ExitKind::ShardCrashed)), Verdict::Continue);
        // Excused once: the same isolate crashing again on its own is a bug.
        assert!(matches!(
            checker.observe(&stamp(3), &exit(a, ExitKind::Crashed)),
            Verdict::Violated(_)
        ));
        // An excuse for one isolate does not cover another.
        checker.observe_world(&stamp(4), &WorldEvent::IsolateCrash { handle: a });
        assert!(matches!(
            checker.observe(&stamp(5), &exit(b, ExitKind::Crashed)),
            Verdict::Violated(_)
        ));
    }
}
