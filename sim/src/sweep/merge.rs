//! `sim sweep merge FILE...`: the summary of a partitioned sweep, rebuilt from its parts'
//! `--json` outputs, equal to the one the unpartitioned sweep prints (apart from wall
//! times).
//!
//! It refuses anything that would make the merged summary wrong: a file that is not a
//! finished part (no summary line at its end, or counts that disagree with its run lines),
//! parts of different sweeps (their recorded identities differ), a part given twice, a
//! missing part, and run lines that are not the part's own seeds in order. Each file is
//! read as a stream, twice (the summary line, at its end, says what the run lines must
//! be), so memory does not grow with the runs.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::cli::Io;
use serde_json::Value;

use crate::json::Json;
use crate::sweep::range::{Partition, SeedRange};
use crate::sweep::summary::{RunBrief, Summary};

/// Missing parts named in one error before "and N more".
const MISSING_SHOWN: usize = 8;

/// Merges `files` and prints the summary (its JSON line with `--json`); 0 if every run
/// passed, 1 if any failed, 2 if the files cannot be merged.
pub(crate) fn main(files: &[PathBuf], io: &mut Io<'_>) -> u8 {
    let merged = match merge(files) {
        Ok(merged) => merged,
        Err(problem) => return io.invalid(&problem),
    };
    let note = if merged.parts == 1 {
        String::new()
    } else {
        format!(" in the longest of {} parts", merged.parts)
    };
    for line in merged.summary.lines(merged.elapsed_ns, &note) {
        io.say(&line);
    }
    if io.json {
        let line = merged.summary.json(&merged.identity, Partition::WHOLE, merged.elapsed_ns);
        let _ = writeln!(io.out, "{}", line.render());
    }
    if merged.summary.failed > 0 { 1 } else { 0 }
}

/// The parts of one sweep, combined.
#[derive(Debug)]
pub struct Merged {
    /// The sweep's identity, as every part recorded it.
    pub identity: Json,
    /// Every run of every part.
    pub summary: Summary,
    /// The longest part's wall time.
    pub elapsed_ns: u64,
    /// How many parts.
    pub parts: u64,
}

/// A part's summary line, read.
#[derive(Debug)]
struct Part {
    file: String,
    identity: Json,
    partition: Partition,
    runs: u64,
    passed: u64,
    failed: u64,
    elapsed_ns: u64,
}

/// What the identity says the run lines must be.
#[derive(Debug)]
struct Expected {
    range: SeedRange,
    /// The named scenarios in order, or empty when each seed picks.
    named: Vec<String>,
    /// The catalog seeds pick from (empty when scenarios are named).
    catalog: Vec<String>,
}

/// Merges the parts in `files`, in any order. The error says what is wrong and what to do.
pub fn merge(files: &[PathBuf]) -> Result<Merged, String> {
    let mut parts: Vec<Part> = Vec::with_capacity(files.len());
    for path in files {
        parts.push(read_summary(path)?);
    }
    let first = parts.first().ok_or("give the --json output file of every part")?;
    for part in &parts[1..] {
        if let Some(key) = first_difference(&first.identity, &part.identity) {
            return Err(format!(
                "{} and {} are from different sweeps: their `{key}` values differ ({} vs {}); merge the parts of one sweep",
                first.file,
                part.file,
                field(&first.identity, &key),
                field(&part.identity, &key)
            ));
        }
        if part.partition.count != first.partition.count {
            return Err(format!(
                "{} is part {} but {} is part {}: one sweep split two ways; merge the parts of one split",
                part.file, part.partition, first.file, first.partition
            ));
        }
    }
    check_parts_complete(&parts)?;
    let expected = expected(&first.identity)
        .ok_or_else(|| format!("{}: its summary line has no valid sweep identity", first.file))?;
    let mut summary = Summary::default();
    for (path, part) in files.iter().zip(&parts) {
        read_runs(path, part, &expected, &mut summary)?;
    }
    let elapsed_ns = parts.iter().map(|part| part.elapsed_ns).max().unwrap_or(0);
    let identity = first.identity.clone();
    Ok(Merged { identity, summary, elapsed_ns, parts: first.partition.count })
}

/// Every part from 1 to N exactly once.
fn check_parts_complete(parts: &[Part]) -> Result<(), String> {
    let count = parts[0].partition.count;
    let mut sorted: Vec<&Part> = parts.iter().collect();
    sorted.sort_by_key(|part| part.partition.index);
    for pair in sorted.windows(2) {
        if pair[0].partition.index == pair[1].partition.index {
            return Err(format!(
                "part {} is given twice: {} and {}; give each part's file once",
                pair[0].partition, pair[0].file, pair[1].file
            ));
        }
    }
    if sorted.len() as u64 == count {
        return Ok(());
    }
    // Fewer distinct parts than N: name the first missing ones.
    let mut missing = Vec::new();
    let mut given = sorted.iter().map(|part| part.partition.index).peekable();
    let mut index = 1;
    while index <= count && missing.len() < MISSING_SHOWN {
        if given.peek() == Some(&index) {
            given.next();
        } else {
            missing.push(format!("{index}/{count}"));
        }
        index += 1;
    }
    let absent = count - sorted.len() as u64;
    let more = absent - missing.len() as u64;
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    Err(format!(
        "parts missing ({absent} of {count}): {}{more}; run each with --partition I/{count} and merge every part's file",
        missing.join(", ")
    ))
}

fn open(path: &Path) -> Result<BufReader<File>, String> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// Each non-empty line of `path` with its number, parsed; the error names file and line.
fn lines(path: &Path) -> Result<impl Iterator<Item = Result<(usize, Value), String>>, String> {
    let name = path.display().to_string();
    Ok(open(path)?.lines().enumerate().filter_map(move |(index, line)| {
        let number = index + 1;
        match line {
            Err(error) => Some(Err(format!("cannot read {name}: {error}"))),
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(
                serde_json::from_str::<Value>(&line)
                    .map(|value| (number, value))
                    .map_err(|error| format!("{name}:{number}: not JSON ({error})")),
            ),
        }
    }))
}

fn kind(value: &Value) -> Option<&str> {
    value.get("type").and_then(Value::as_str)
}

/// A value read back as the writer's own type (the identities are compared and written
/// again); `None` for what the simulator never writes (floats, negative numbers).
fn to_json(value: &Value) -> Option<Json> {
    Some(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => Json::Number(n.as_u64()?),
        Value::String(text) => Json::String(text.clone()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect::<Option<_>>()?),
        Value::Object(entries) => Json::Object(
            entries.iter().map(|(k, v)| Some((k.clone(), to_json(v)?))).collect::<Option<_>>()?,
        ),
    })
}

/// The summary line at the end of `path`.
fn read_summary(path: &Path) -> Result<Part, String> {
    let file = path.display().to_string();
    let mut last = None;
    for line in lines(path)? {
        last = Some(line?);
    }
    let not_a_part = || {
        format!(
            "{file} does not end with a sweep's summary line: it is not the --json output of `sim sweep`, or its sweep did not finish; run that part again"
        )
    };
    let (number, value) = last.ok_or_else(not_a_part)?;
    if kind(&value) != Some("summary") {
        return Err(not_a_part());
    }
    let number_of = |key: &str| value.get(key).and_then(Value::as_u64);
    let partition = value.get("partition").and_then(|p| {
        let index = p.get("index").and_then(Value::as_u64)?;
        let count = p.get("count").and_then(Value::as_u64)?;
        (1..=count).contains(&index).then_some(Partition { index, count })
    });
    let bad = |what: &str| format!("{file}:{number}: the summary line has no valid `{what}`");
    Ok(Part {
        identity: value.get("sweep").and_then(to_json).ok_or_else(|| bad("sweep"))?,
        partition: partition.ok_or_else(|| bad("partition"))?,
        runs: number_of("runs").ok_or_else(|| bad("runs"))?,
        passed: number_of("passed").ok_or_else(|| bad("passed"))?,
        failed: number_of("failed").ok_or_else(|| bad("failed"))?,
        elapsed_ns: number_of("elapsed_ns").ok_or_else(|| bad("elapsed_ns"))?,
        file,
    })
}

fn expected(identity: &Json) -> Option<Expected> {
    let seeds = identity.get("seeds")?;
    let range = SeedRange {
        first: seeds.get("first").and_then(Json::as_u64)?,
        count: seeds.get("count").and_then(Json::as_u64).filter(|&count| count > 0)?,
    };
    let names = |key: &str| -> Option<Vec<String>> {
        match identity.get(key)? {
            Json::Null => Some(Vec::new()),
            Json::Array(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
            _ => None,
        }
    };
    range.first.checked_add(range.count - 1)?;
    Some(Expected { range, named: names("scenarios")?, catalog: names("catalog")? })
}

/// Feeds the run lines of `path` to `summary`, checking that they are exactly the part's
/// runs, in order, and agree with its summary line.
fn read_runs(
    path: &Path,
    part: &Part,
    expected: &Expected,
    summary: &mut Summary,
) -> Result<(), String> {
    let file = &part.file;
    let mut own = Summary::default();
    let mut previous: Option<(u64, usize)> = None;
    let mut seen_summary = false;
    for line in lines(path)? {
        let (number, value) = line?;
        let at = |problem: String| format!("{file}:{number}: {problem}");
        if seen_summary {
            return Err(at("a line after the summary line".to_string()));
        }
        match kind(&value) {
            Some("run") => {}
            Some("summary") => {
                seen_summary = true;
                continue;
            }
            _ => {
                return Err(at(
                    "neither a run nor a summary line: give only the --json outputs of `sim sweep`"
                        .to_string(),
                ));
            }
        }
        let run = brief(&value).ok_or_else(|| {
            at("a run line without seed, scenario, result, class, checker or wall_ns".to_string())
        })?;
        if !part.partition.owns(expected.range, run.seed) {
            return Err(at(format!(
                "seed {} is not one of part {}'s seeds; the file is not that part's output",
                run.seed, part.partition
            )));
        }
        let position = if expected.named.is_empty() {
            expected.catalog.iter().position(|name| name == run.scenario).map(|_| 0)
        } else {
            expected.named.iter().position(|name| name == run.scenario)
        };
        let position = position
            .ok_or_else(|| at(format!("scenario {} is not one this sweep runs", run.scenario)))?;
        if previous.is_some_and(|previous| previous >= (run.seed, position)) {
            return Err(at(format!(
                "seed {} in {} is out of order or repeated; the file is not one sweep's output",
                run.seed, run.scenario
            )));
        }
        previous = Some((run.seed, position));
        own.add(run);
        summary.add(run);
    }
    let per_seed = expected.named.len().max(1) as u64;
    let runs_due = part.partition.seed_count(expected.range).saturating_mul(per_seed);
    if (own.runs, own.passed, own.failed) != (part.runs, part.passed, part.failed)
        || own.runs != runs_due
    {
        return Err(format!(
            "{file}: part {} should have {runs_due} runs; its summary counts {} ({} passed, {} failed) and it has {} run lines ({} passed, {} failed): the file is cut or edited; run that part again",
            part.partition, part.runs, part.passed, part.failed, own.runs, own.passed, own.failed
        ));
    }
    Ok(())
}

/// A run line as the summary counts it.
fn brief(value: &Value) -> Option<RunBrief<'_>> {
    let failure = match value.get("result")?.as_str()? {
        "pass" => None,
        "fail" => Some((value.get("class")?.as_str()?, value.get("checker")?.as_str()?)),
        _ => return None,
    };
    Some(RunBrief {
        seed: value.get("seed")?.as_u64()?,
        scenario: value.get("scenario")?.as_str()?,
        failure,
        wall_ns: value.get("wall_ns")?.as_u64()?,
    })
}

/// The first key whose value differs between two identities (objects).
fn first_difference(a: &Json, b: &Json) -> Option<String> {
    if a == b {
        return None;
    }
    let (Json::Object(left), Json::Object(right)) = (a, b) else {
        return Some("sweep".to_string());
    };
    let keys = left.iter().chain(right).map(|(key, _)| key);
    keys.into_iter().find(|key| a.get(key) != b.get(key)).cloned().or(Some("sweep".to_string()))
}

fn field(identity: &Json, key: &str) -> String {
    identity.get(key).map_or_else(|| "absent".to_string(), Json::render)
}
