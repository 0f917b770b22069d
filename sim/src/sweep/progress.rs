//! A sweep's progress on stderr: an `indicatif` bar on a terminal, and otherwise a plain
//! line when a tenth of the runs has passed or `LINE_INTERVAL` has, but never within
//! `LINE_GAP_MIN` of the previous line, so a CI log gets a few lines and no cursor
//! movements (a sweep shorter than the gap gets none: its summary says it all).
//!
//! Each update is O(1): the bar redraws at most 20 times a second (indicatif's own
//! limit), a line is written only when one is due.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sweep::summary::human_duration;

/// The longest a sweep goes without a progress line (when not on a terminal).
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest time between two progress lines.
pub const LINE_GAP_MIN: Duration = Duration::from_secs(2);
/// Progress lines mark every `1 / LINE_FRACTIONS` of the runs.
pub const LINE_FRACTIONS: u64 = 10;

const _: () = assert!(LINE_GAP_MIN.as_nanos() < LINE_INTERVAL.as_nanos());

/// How to show progress (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, else lines.
    Auto,
    /// A bar.
    Bar,
    /// A line at each tenth of the runs or every 10 s, at most one per 2 s.
    Lines,
    /// Nothing.
    Off,
}

/// The progress display of one sweep.
#[derive(Debug)]
pub struct Progress {
    view: View,
    total: u64,
}

#[derive(Debug)]
enum View {
    Bar { bar: ProgressBar, failed: u64 },
    Lines { started: Instant, last_line: Instant, fraction: u64 },
    Off,
}

impl Progress {
    /// Progress over `total` runs, started at `now`.
    pub fn new(mode: ProgressMode, total: u64, now: Instant) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let view = match mode {
            ProgressMode::Off => View::Off,
            ProgressMode::Bar => View::Bar { bar: bar(total), failed: 0 },
            ProgressMode::Auto if terminal => View::Bar { bar: bar(total), failed: 0 },
            ProgressMode::Auto | ProgressMode::Lines => {
                View::Lines { started: now, last_line: now, fraction: 0 }
            }
        };
        Progress { view, total }
    }

    /// `done` runs of the total have finished, `failed` of them failing.
    pub fn update(&mut self, done: u64, failed: u64, now: Instant, err: &mut dyn Write) {
        debug_assert!(failed <= done && done <= self.total);
        match &mut self.view {
            View::Off => {}
            View::Bar { bar, failed: shown } => {
                if *shown != failed || done == 1 {
                    *shown = failed;
                    bar.set_message(format!("{failed} failed"));
                }
                bar.set_position(done);
            }
            View::Lines { started, last_line, fraction } => {
                // The tenths passed so far; u128 so that done * 10 cannot overflow.
                let reached = (u128::from(done) * u128::from(LINE_FRACTIONS)
                    / u128::from(self.total.max(1))) as u64;
                let since = now.duration_since(*last_line);
                let due = reached > *fraction || since >= LINE_INTERVAL;
                if due && since >= LINE_GAP_MIN && done < self.total {
                    *fraction = reached;
                    *last_line = now;
                    let percent = u128::from(done) * 100 / u128::from(self.total.max(1));
                    let _ = writeln!(
                        err,
                        "progress: {done}/{} runs ({percent}%), {failed} failed, {} elapsed",
                        self.total,
                        human_duration(duration_ns(now.duration_since(*started)))
                    );
                }
            }
        }
    }

    /// The sweep has ended: the bar is cleared so the summary stands alone.
    pub fn finish(&mut self) {
        if let View::Bar { bar, .. } = &self.view {
            bar.finish_and_clear();
        }
    }
}

fn bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} runs, {msg}, eta {eta}",
    )
    .map_or_else(|_| ProgressStyle::default_bar(), |style| style.progress_chars("=> "));
    bar.set_style(style);
    bar.set_message("0 failed");
    bar
}

/// A duration in nanoseconds, saturating (584 years).
pub fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines come at each tenth, never closer than the minimum gap, and between tenths
    /// after the interval; none for the last run (the summary follows).
    #[test]
    #[expect(clippy::disallowed_methods, reason = "any instant will do as the start")]
    fn lines_at_tenths_and_intervals() {
        let start = Instant::now();
        let lines = |total: u64, at: &dyn Fn(u64) -> Duration| {
            let mut progress = Progress::new(ProgressMode::Lines, total, start);
            let mut err = Vec::new();
            for done in 1..=total {
                progress.update(done, done / 100, start + at(done), &mut err);
            }
            String::from_utf8(err).expect("utf-8")
        };
        // A tenth every 2 s: a line at each tenth but the last.
        let text = lines(200, &|done| Duration::from_millis(100 * done));
        assert_eq!(text.lines().count(), 9, "{text}");
        let last = text.lines().last().expect("a line");
        assert!(last.starts_with("progress: 180/200 runs (90%), 1 failed"), "{last}");
        // All within the gap: none.
        assert_eq!(lines(200, &|_| LINE_GAP_MIN / 2), "");
        // A run per interval, far below a tenth each: a line per interval.
        let text = lines(1_000, &|done| LINE_INTERVAL * u32::try_from(done).expect("small"));
        assert_eq!(text.lines().count(), 999);
    }
}
