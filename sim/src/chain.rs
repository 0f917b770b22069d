//! The causal chain of a violation: from the event at which a checker found it, back
//! through what caused each event (`links`), oldest first.
//!
//! Built during the replay that recovers a failure's last events (a failing run is
//! replayed to its violation; passing runs never pay for this). Bounded: it keeps the last
//! `CAUSES_KEPT` events, each with a copy of its cause (index and event), and `Links` keeps
//! only the ids that can still be named, so memory does not grow with the length of the
//! run. A chain goes back through the events kept, plus one cause older than them (the
//! copy: a timer set long before it fired still shows), and then says it was cut.
//!
//! This module does not decide what caused what (`links` does) nor print anything.

use std::collections::VecDeque;

use tina_checkers::Stamp;

use crate::links::Links;
use crate::trace::{Names, Recorded, TraceEvent, format_line};

/// Events kept to walk a chain back through (about 120 bytes each).
pub const CAUSES_KEPT: usize = 1 << 16;

/// Links of a chain shown at most: the ones nearest the violation.
pub const CHAIN_LINKS_MAX: usize = 20;

/// A violation's causal chain, as replay-log lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CausalChain {
    /// The links shown, oldest first; the last is the violating event. Empty when the
    /// violation was found at the end of the run, after every event.
    pub lines: Vec<String>,
    /// Earlier links not shown (past `CHAIN_LINKS_MAX`).
    pub earlier: usize,
    /// Whether the chain may go on past what was kept: its oldest link is older than the
    /// last `CAUSES_KEPT` events, so its own cause, if any, is unknown.
    pub cut: bool,
}

/// An event and its index.
type Numbered = (u64, Recorded);

/// The last events of a run, each with its cause.
#[derive(Debug, Default)]
pub struct CausalIndex {
    links: Links<Numbered>,
    kept: VecDeque<(Recorded, Option<Numbered>)>,
}

impl CausalIndex {
    /// Takes the next event of the run.
    pub fn record(&mut self, stamp: &Stamp, event: &TraceEvent) {
        let recorded = Recorded { stamp: *stamp, event: *event };
        let cause = self.links.link(stamp, event, |_| Some((stamp.index, recorded)));
        assert!(cause.is_none_or(|(cause, _)| cause < stamp.index), "a cause precedes its effect");
        if let Some((last, _)) = self.kept.back() {
            assert_eq!(last.stamp.index + 1, stamp.index, "every event is recorded, in order");
        }
        if self.kept.len() == CAUSES_KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back((recorded, cause));
    }

    /// The chain that ends at event `index` (empty if that event is not kept).
    pub fn chain(&self, index: u64, names: &Names) -> CausalChain {
        let Some((first, _)) = self.kept.front() else { return CausalChain::default() };
        let first = first.stamp.index;
        let kept = |index: u64| index.checked_sub(first).and_then(|at| self.kept.get(at as usize));
        let Some(&(violating, mut next)) = kept(index) else {
            return CausalChain::default();
        };
        let mut links = vec![violating];
        let mut cut = false;
        // Bounded by the events kept, plus one: each cause is an earlier event.
        while let Some((index, recorded)) = next {
            links.push(recorded);
            match kept(index) {
                Some(&(_, cause)) => next = cause,
                None => {
                    cut = true;
                    break;
                }
            }
        }
        let earlier = links.len().saturating_sub(CHAIN_LINKS_MAX);
        let lines = links
            .iter()
            .take(CHAIN_LINKS_MAX)
            .rev()
            .map(|recorded| format_line(&recorded.stamp, &recorded.event, names))
            .collect();
        CausalChain { lines, earlier, cut }
    }
}

/// The chain as printed under a failure: a heading, notes for what is not shown, then one
/// indented replay-log line per link, oldest first. Nothing for an empty chain.
pub fn causal_chain_lines(chain: &CausalChain) -> Vec<String> {
    if chain.lines.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!("causal chain ({} events):", chain.lines.len())];
    let older = format!("older than the last {CAUSES_KEPT} events kept");
    match (chain.earlier, chain.cut) {
        (0, false) => {}
        (0, true) => lines.push(format!("  (any earlier cause is {older})")),
        (earlier, false) => lines.push(format!("  ({earlier} earlier causes not shown)")),
        (earlier, true) => lines
            .push(format!("  ({earlier} earlier causes not shown; any before them is {older})")),
    }
    lines.extend(chain.lines.iter().map(|line| format!("  {line}")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use tina::{Event, Handle, Label, Level, MessageId, ShardId, Tag};

    const A: Handle = Handle::from_raw((1 << 48) | 1);

    fn send(sequence: u64) -> TraceEvent {
        let id = MessageId::from_raw(sequence);
        TraceEvent::Core(Event::Send { id, from: A, to: A, tag: Tag::from_raw(0x100) })
    }

    fn deliver(sequence: u64) -> TraceEvent {
        let id = MessageId::from_raw(sequence);
        TraceEvent::Core(Event::Deliver { id, to: A, tag: Tag::from_raw(0x100) })
    }

    fn log() -> TraceEvent {
        let tag = Label::new("filler");
        TraceEvent::Core(Event::Log {
            handle: A,
            level: Level::Info,
            tag,
            values: [0; 4],
            count: 0,
        })
    }

    /// Records `events` (event k at true time k) and returns the chain of the last, with
    /// each link reduced to its index.
    fn check(events: impl IntoIterator<Item = TraceEvent>) -> (Vec<u64>, usize, bool) {
        let mut index = CausalIndex::default();
        let mut last = 0;
        for (at, event) in events.into_iter().enumerate() {
            let at = at as u64;
            let stamp = Stamp { index: at, time_ns: at, local_ns: at, node: 0, shard: ShardId(0) };
            index.record(&stamp, &event);
            last = at;
        }
        let chain = index.chain(last, &Names::default());
        let indices =
            chain.lines.iter().map(|line| line.split(' ').next().unwrap().parse().unwrap());
        (indices.collect(), chain.earlier, chain.cut)
    }

    /// A chain goes back through the events kept, one cause older than them (the copy each
    /// event keeps), and no further; past `CHAIN_LINKS_MAX` links the nearest are shown.
    #[test]
    fn chains_are_bounded() {
        let filler = CAUSES_KEPT as u64 + 10;
        let old_send = [send(1), send(2)].into_iter();
        let events = old_send.chain((0..filler).map(|_| log())).chain([deliver(2)]);
        assert_eq!(check(events), (vec![1, filler + 2], 0, true), "the old send is shown");

        // A handler sends the message the next tick delivers, 30 times over.
        let relay = (1..=30).flat_map(|sequence| [deliver(sequence), send(sequence + 1)]);
        let (links, earlier, cut) = check([send(1)].into_iter().chain(relay));
        assert_eq!(links.len(), CHAIN_LINKS_MAX);
        assert_eq!((links[0], *links.last().unwrap()), (41, 60));
        assert_eq!((earlier, cut), (61 - CHAIN_LINKS_MAX, false));
    }
}
