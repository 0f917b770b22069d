//! Regression seed files: one small text file per seed in `seeds/`, replayed by
//! `cargo test`.
//!
//! ```text
//! # Lines are `key: value`; `#` starts a comment line.
//! why: the transport lost a message and the accounting checker must notice
//! seed: 1
//! scenario: ping-pong
//! set: round_trips=50
//! flags: --plant lose-message
//! expect: correctness
//! ```
//!
//! `why`, `seed` and `expect` are required; `scenario` may be left to a `--plant` in
//! `flags`; `set` may repeat. `expect` is `pass` or a failure class. Every error names the
//! file, the line and what is wrong.
//!
//! A crate with its own catalog keeps its own `seeds/` and replays it from a test:
//!
//! ```no_run
//! # fn catalog() -> &'static [&'static dyn tina_scenarios::Scenario] { tina_scenarios::catalog() }
//! #[test]
//! fn stored_seeds_replay() {
//!     let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
//!     tina_sim::seedfile::check_dir(&dir, catalog());
//! }
//! ```

use core::fmt;
use std::path::Path;

use tina_checkers::FailureClass;
use tina_scenarios::Scenario;

use crate::cli::{exit_code, main_with};
use crate::config::parse_seed;

/// What a seed file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedFile {
    /// One line of why this seed is kept.
    pub why: String,
    /// The seed as written (decimal or 0x hex).
    pub seed: String,
    /// The scenario, if given.
    pub scenario: Option<String>,
    /// `KEY=VALUE` settings.
    pub sets: Vec<String>,
    /// Further flags, for example `--plant NAME`.
    pub flags: Vec<String>,
    /// `None` for pass, else the failure class.
    pub expect: Option<FailureClass>,
}

impl SeedFile {
    /// The `sim` arguments (without the program name) that replay it.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--seed".to_string(), self.seed.clone()];
        if let Some(scenario) = &self.scenario {
            args.extend(["--scenario".to_string(), scenario.clone()]);
        }
        for set in &self.sets {
            args.extend(["--set".to_string(), set.clone()]);
        }
        args.extend(self.flags.iter().cloned());
        args
    }

    /// The file's text, as `parse` reads it back: `why` (on one line), `seed`, `scenario`,
    /// each `set`, the `flags` (if any) and `expect`.
    pub fn render(&self) -> String {
        let why: String =
            self.why.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
        let mut text = format!("why: {why}\nseed: {}\n", self.seed);
        if let Some(scenario) = &self.scenario {
            text.push_str(&format!("scenario: {scenario}\n"));
        }
        for set in &self.sets {
            text.push_str(&format!("set: {set}\n"));
        }
        if !self.flags.is_empty() {
            text.push_str(&format!("flags: {}\n", self.flags.join(" ")));
        }
        let expect = self.expect.map_or("pass", FailureClass::name);
        text.push_str(&format!("expect: {expect}\n"));
        text
    }
}

/// What is wrong with a seed file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedFileError {
    /// The file.
    pub file: String,
    /// The line (1-based; 0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for SeedFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.problem)
    }
}

impl std::error::Error for SeedFileError {}

/// Parses the text of `file`.
pub fn parse(file: &str, text: &str) -> Result<SeedFile, SeedFileError> {
    let error =
        |line: usize, problem: String| SeedFileError { file: file.to_string(), line, problem };
    let (mut why, mut seed, mut scenario) = (None, None, None);
    let mut expect: Option<Option<FailureClass>> = None;
    let (mut sets, mut flags) = (Vec::new(), Vec::new());
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| error(number, format!("expected `key: value`, found {line:?}")))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(error(number, format!("`{key}` has no value")));
        }
        let once = |slot: &Option<String>| {
            if slot.is_some() {
                Err(error(number, format!("`{key}` is given twice")))
            } else {
                Ok(())
            }
        };
        match key.trim() {
            "why" => {
                once(&why)?;
                why = Some(value.to_string());
            }
            "seed" => {
                once(&seed)?;
                parse_seed(value).map_err(|e| error(number, e.to_string()))?;
                seed = Some(value.to_string());
            }
            "scenario" => {
                once(&scenario)?;
                scenario = Some(value.to_string());
            }
            "set" => {
                if !value.contains('=') {
                    return Err(error(number, format!("`set` needs KEY=VALUE, found {value:?}")));
                }
                sets.push(value.to_string());
            }
            "flags" => flags.extend(value.split_whitespace().map(str::to_string)),
            "expect" => {
                if expect.is_some() {
                    return Err(error(number, "`expect` is given twice".to_string()));
                }
                expect = Some(parse_expect(value).ok_or_else(|| {
                    error(number, format!("`expect` is {value:?}; use pass, correctness, liveness, crash or nondeterminism"))
                })?);
            }
            other => {
                return Err(error(
                    number,
                    format!("unknown key `{other}`; keys: why, seed, scenario, set, flags, expect"),
                ));
            }
        }
    }
    let missing = |name: &str| error(0, format!("`{name}` is missing"));
    let has_plant = flags.iter().any(|flag| flag == "--plant");
    if scenario.is_none() && !has_plant {
        return Err(error(0, "`scenario` is missing (and no --plant picks one)".to_string()));
    }
    Ok(SeedFile {
        why: why.ok_or_else(|| missing("why"))?,
        seed: seed.ok_or_else(|| missing("seed"))?,
        scenario,
        sets,
        flags,
        expect: expect.ok_or_else(|| missing("expect"))?,
    })
}

/// Reads and parses every `*.seed` file in `dir`, in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<(String, SeedFile)>, SeedFileError> {
    let unreadable = |what: &Path, error: std::io::Error| SeedFileError {
        file: what.display().to_string(),
        line: 0,
        problem: format!("cannot read it: {error}"),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|error| unreadable(dir, error))? {
        let path = entry.map_err(|error| unreadable(dir, error))?.path();
        if path.extension().is_some_and(|extension| extension == "seed") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into());
            let text = std::fs::read_to_string(&path).map_err(|error| unreadable(&path, error))?;
            Ok((name.clone(), parse(&name, &text)?))
        })
        .collect()
}

/// One seed file replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The file's name.
    pub file: String,
    /// Why it is kept.
    pub why: String,
    /// The exit code it expects (`exit_code` of its `expect`, 0 for pass).
    pub expected: u8,
    /// The exit code it gave.
    pub code: u8,
    /// What the run printed.
    pub output: String,
}

impl Replay {
    /// Whether the replay ended as the file expects.
    pub fn matched(&self) -> bool {
        self.code == self.expected
    }
}

/// Replays every seed file in `dir` through the `sim` command line over `catalog` (as
/// `sim` with the file's flags would), in name order. A file that cannot be read or parsed
/// is an error naming it and its line; a replay that ends otherwise than expected is a
/// `Replay` that is not `matched`.
pub fn replay_dir(
    dir: &Path,
    catalog: &[&'static dyn Scenario],
) -> Result<Vec<Replay>, SeedFileError> {
    let files = read_dir(dir)?;
    Ok(files
        .into_iter()
        .map(|(name, file)| {
            let mut args = vec!["sim".to_string()];
            args.extend(file.args());
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = main_with(&args, catalog, &mut out, &mut err);
            out.extend_from_slice(&err);
            Replay {
                file: name,
                why: file.why,
                expected: file.expect.map_or(0, exit_code),
                code,
                output: String::from_utf8_lossy(&out).into_owned(),
            }
        })
        .collect())
}

/// For a `#[test]`: replays `dir` over `catalog` and panics naming every file that did not
/// end as it expects (with its output), or the file that cannot be read. An empty or
/// missing directory is a failure too: a corpus that replays nothing proves nothing.
/// Returns how many files replayed.
pub fn check_dir(dir: &Path, catalog: &[&'static dyn Scenario]) -> usize {
    let replays = replay_dir(dir, catalog).unwrap_or_else(|error| panic!("{error}"));
    assert!(!replays.is_empty(), "{}: no `*.seed` file to replay", dir.display());
    let wrong: Vec<String> = replays
        .iter()
        .filter(|replay| !replay.matched())
        .map(|replay| {
            format!(
                "{} ({}): exit {}, expected {}\n{}",
                replay.file, replay.why, replay.code, replay.expected, replay.output
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "seed files that replay otherwise than expected:\n{}",
        wrong.join("\n")
    );
    replays.len()
}

pub(crate) fn parse_expect(value: &str) -> Option<Option<FailureClass>> {
    Some(match value {
        "pass" => None,
        "correctness" => Some(FailureClass::Correctness),
        "liveness" => Some(FailureClass::Liveness),
        "crash" => Some(FailureClass::Crash),
        "nondeterminism" => Some(FailureClass::Nondeterminism),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A malformed file fails with its name, the line and what is wrong.
    #[test]
    fn errors_name_file_line_and_problem() {
        let cases = [
            ("why: x\nseed 1\n", "f.seed:2: expected `key: value`, found \"seed 1\""),
            ("why: x\nseed: forty\n", "f.seed:2: invalid seed \"forty\""),
            ("why: x\nseed: 1\nseed: 2\n", "f.seed:3: `seed` is given twice"),
            ("why: x\nseed: 1\nscenario: a\nexpect: maybe\n", "f.seed:4: `expect` is \"maybe\""),
            ("why: x\nseed: 1\nscenario: a\ncolour: red\n", "f.seed:4: unknown key `colour`"),
            ("why: x\nseed: 1\nscenario: a\nset: nothing\n", "f.seed:4: `set` needs KEY=VALUE"),
            ("seed: 1\nscenario: a\nexpect: pass\n", "f.seed:0: `why` is missing"),
            ("why: x\nseed: 1\nexpect: pass\n", "f.seed:0: `scenario` is missing"),
            ("why:\n", "f.seed:1: `why` has no value"),
        ];
        for (text, message) in cases {
            let error = parse("f.seed", text).expect_err(text);
            assert!(error.to_string().starts_with(message), "{text:?}: {error}");
        }
    }

    /// A good file turns into the arguments that replay it.
    #[test]
    fn replays_as_arguments() {
        let text = "# comment\nwhy: because\nseed: 0x2a\nflags: --plant lose-message\nset: a=1\nexpect: correctness\n";
        let file = parse("g.seed", text).expect("valid");
        assert_eq!(file.args(), ["--seed", "0x2a", "--set", "a=1", "--plant", "lose-message"]);
        assert_eq!(file.expect, Some(FailureClass::Correctness));
    }

    #[test]
    fn render_is_what_parse_reads_back() {
        let file = SeedFile {
            why: "two\nlines".to_string(),
            seed: "7".to_string(),
            scenario: Some("bank".to_string()),
            sets: vec!["transfers=5".to_string()],
            flags: vec!["--faults".to_string(), "chaos".to_string()],
            expect: Some(FailureClass::Liveness),
        };
        let back = parse("f.seed", &file.render()).expect("parses");
        assert_eq!(back, SeedFile { why: "two lines".to_string(), ..file });
    }
}
