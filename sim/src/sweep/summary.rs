//! A sweep's summary: runs, passes, and failures grouped by class, checker and scenario,
//! with the smallest failing seeds of each group; its human lines and its JSON line.
//!
//! Its memory does not grow with the number of runs (a count per group and at most
//! `GROUP_SEEDS_SHOWN` seeds each), and it does not depend on the order runs are added
//! in, so that `sim sweep merge` can rebuild from the parts' run lines exactly the
//! summary one unpartitioned sweep prints. It runs nothing and reads no clock: wall times
//! come in as numbers.

use crate::json::Json;
use crate::sweep::range::Partition;

/// Failing seeds a group shows (the smallest ones).
pub const GROUP_SEEDS_SHOWN: usize = 5;

/// The failures of one class, checker and scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The failure class (`correctness`, ...).
    pub class: String,
    /// The checker that noticed (`accounting`, `goal`, ...).
    pub checker: String,
    /// The scenario that failed.
    pub scenario: String,
    /// How many runs failed so.
    pub count: u64,
    /// The smallest of their seeds, ascending, at most `GROUP_SEEDS_SHOWN`.
    pub seeds: Vec<u64>,
}

impl Group {
    fn add(&mut self, seed: u64) {
        self.count += 1;
        if self.seeds.len() == GROUP_SEEDS_SHOWN
            && self.seeds.last().is_some_and(|&largest| seed > largest)
        {
            return;
        }
        let at = self.seeds.partition_point(|&shown| shown < seed);
        self.seeds.insert(at, seed);
        self.seeds.truncate(GROUP_SEEDS_SHOWN);
        debug_assert!(self.seeds.windows(2).all(|pair| pair[0] <= pair[1]));
    }
}

/// How one run ended, as the summary counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunBrief<'a> {
    /// Its seed.
    pub seed: u64,
    /// Its scenario.
    pub scenario: &'a str,
    /// `None` for a pass, else the class and the checker.
    pub failure: Option<(&'a str, &'a str)>,
    /// Its wall time.
    pub wall_ns: u64,
}

/// Counts and groups over any number of runs, in any order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Runs added.
    pub runs: u64,
    /// Of which passed.
    pub passed: u64,
    /// Of which failed.
    pub failed: u64,
    /// Failure groups, in the order first seen (`groups` sorts them).
    groups: Vec<Group>,
    /// The runs' wall times summed (saturating).
    pub run_wall_ns: u64,
}

impl Summary {
    /// Counts one run. Linear in the number of groups, which the checkers and scenarios
    /// bound, not the runs.
    pub fn add(&mut self, run: RunBrief<'_>) {
        self.runs += 1;
        self.run_wall_ns = self.run_wall_ns.saturating_add(run.wall_ns);
        let Some((class, checker)) = run.failure else {
            self.passed += 1;
            return;
        };
        self.failed += 1;
        let at = self.groups.iter().position(|group| {
            group.class == class && group.checker == checker && group.scenario == run.scenario
        });
        let at = at.unwrap_or_else(|| {
            self.groups.push(Group {
                class: class.to_string(),
                checker: checker.to_string(),
                scenario: run.scenario.to_string(),
                count: 0,
                seeds: Vec::new(),
            });
            self.groups.len() - 1
        });
        self.groups[at].add(run.seed);
        debug_assert_eq!(self.passed + self.failed, self.runs);
    }

    /// The failure groups by class, then checker, then scenario.
    pub fn groups(&self) -> Vec<&Group> {
        let mut groups: Vec<&Group> = self.groups.iter().collect();
        groups.sort_by(|a, b| {
            (&a.class, &a.checker, &a.scenario).cmp(&(&b.class, &b.checker, &b.scenario))
        });
        groups
    }

    /// The human lines: counts, each failure group, and the wall times (`elapsed_ns` of
    /// the sweep; `wall_note` says what it is when it is not one process's).
    pub fn lines(&self, elapsed_ns: u64, wall_note: &str) -> Vec<String> {
        let mut lines =
            vec![format!("runs: {}, passed: {}, failed: {}", self.runs, self.passed, self.failed)];
        let groups = self.groups();
        if groups.is_empty() {
            lines.push("failures: none".to_string());
        } else {
            lines.push("failures by class and checker:".to_string());
        }
        for group in groups {
            let seeds: Vec<String> = group.seeds.iter().map(u64::to_string).collect();
            let more = group.count - group.seeds.len() as u64;
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            let runs = if group.count == 1 { "run" } else { "runs" };
            lines.push(format!(
                "  {} {} in {}: {} {runs}, seeds {}{more}",
                group.class,
                group.checker,
                group.scenario,
                group.count,
                seeds.join(" ")
            ));
        }
        let per_run = self.run_wall_ns.checked_div(self.runs).unwrap_or(0);
        lines.push(format!(
            "wall: {} elapsed{wall_note}, {} per run ({} of runs)",
            human_duration(elapsed_ns),
            human_duration(per_run),
            human_duration(self.run_wall_ns)
        ));
        lines
    }

    /// The summary line of `--json`: `type` `summary`, the sweep's identity, the part,
    /// the counts, the groups and the wall times.
    pub fn json(&self, sweep: &Json, partition: Partition, elapsed_ns: u64) -> Json {
        let groups = self
            .groups()
            .into_iter()
            .map(|group| {
                Json::object([
                    ("class", Json::string(group.class.clone())),
                    ("checker", Json::string(group.checker.clone())),
                    ("scenario", Json::string(group.scenario.clone())),
                    ("count", Json::Number(group.count)),
                    ("seeds", Json::Array(group.seeds.iter().map(|&s| Json::Number(s)).collect())),
                ])
            })
            .collect();
        Json::object([
            ("type", Json::string("summary")),
            ("sweep", sweep.clone()),
            (
                "partition",
                Json::object([
                    ("index", Json::Number(partition.index)),
                    ("count", Json::Number(partition.count)),
                ]),
            ),
            ("runs", Json::Number(self.runs)),
            ("passed", Json::Number(self.passed)),
            ("failed", Json::Number(self.failed)),
            ("groups", Json::Array(groups)),
            ("run_wall_ns", Json::Number(self.run_wall_ns)),
            ("elapsed_ns", Json::Number(elapsed_ns)),
        ])
    }
}

/// A wall time for people: `850us`, `12.3ms`, `4.56s`.
pub fn human_duration(nanos: u64) -> String {
    const MICRO: u64 = 1_000;
    const MILLI: u64 = 1_000_000;
    const SECOND: u64 = 1_000_000_000;
    // Floating point only to print: wall times are not part of any deterministic output.
    match nanos {
        n if n >= SECOND => format!("{:.2}s", n as f64 / SECOND as f64),
        n if n >= MILLI => format!("{:.2}ms", n as f64 / MILLI as f64),
        n => format!("{}us", n / MICRO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(seed: u64, failure: Option<(&'static str, &'static str)>) -> RunBrief<'static> {
        RunBrief { seed, scenario: "bank", failure, wall_ns: 1_000_000 }
    }

    /// Groups keep their smallest seeds whatever order runs arrive in, so a summary built
    /// from parts equals one built in seed order.
    #[test]
    fn order_does_not_matter() {
        let failure = |seed: u64| match seed % 3 {
            0 => Some(("correctness", "accounting")),
            1 if seed.is_multiple_of(2) => Some(("liveness", "goal")),
            _ => None,
        };
        let mut forwards = Summary::default();
        for seed in 1..=40 {
            forwards.add(brief(seed, failure(seed)));
        }
        let mut shuffled = Summary::default();
        for part in [3, 0, 2, 1] {
            for seed in (1..=40u64).filter(|seed| seed % 4 == part).rev() {
                shuffled.add(brief(seed, failure(seed)));
            }
        }
        assert_eq!(forwards.groups(), shuffled.groups());
        assert_eq!((forwards.runs, forwards.passed, forwards.failed), (40, 20, 20));
        let lines = forwards.lines(2_000_000_000, "");
        assert_eq!(
            lines,
            [
                "runs: 40, passed: 20, failed: 20",
                "failures by class and checker:",
                "  correctness accounting in bank: 13 runs, seeds 3 6 9 12 15 and 8 more",
                "  liveness goal in bank: 7 runs, seeds 4 10 16 22 28 and 2 more",
                "wall: 2.00s elapsed, 1.00ms per run (40.00ms of runs)",
            ]
        );
    }
}
