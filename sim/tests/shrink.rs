//! `sim shrink` on every planted bug: the smallest reproduction it prints still fails with
//! the same class from the same checker, and is no larger than the run it started from.

use std::path::Path;

use tina_scenarios::catalog;
use tina_sim::cli::main_with;

fn sim(args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> =
        std::iter::once("sim").chain(args.iter().copied()).map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(&args, catalog(), &mut out, &mut err);
    (code, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

/// `(class, checker, events)` of a run, from its JSON report.
fn judged(args: &[String]) -> (u8, String, String, u64) {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--json");
    let (code, out, err) = sim(&args);
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let text = |key: &str| json[key].as_str().unwrap_or_default().to_string();
    (code, text("class"), text("checker"), json["events"].as_u64().expect("events"))
}

#[test]
fn every_plant_shrinks_to_a_seed_file_that_fails_the_same_way() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let dir = std::env::temp_dir().join(format!("tina-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let mut files: Vec<_> = std::fs::read_dir(&seeds)
        .expect("seeds/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("plant-")))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the plants' seed files: {files:?}");
    let mut shrunk_total = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a seed file");
        let before = tina_sim::seedfile::parse(&file.display().to_string(), &text).expect("parses");
        let (code, class, checker, events) = judged(&before.args());
        assert_ne!(code, 0, "{}: the plant's seed file fails", file.display());

        let out = dir.join(file.file_name().expect("a name"));
        let (file_arg, out_arg) = (file.display().to_string(), out.display().to_string());
        let (shrink_code, report, err) =
            sim(&["shrink", "--max-runs", "40", "--out", &out_arg, "--seed-file", &file_arg]);
        assert_eq!(shrink_code, 0, "{}: {report}{err}", file.display());
        assert!(report.contains("smallest reproduction (seed file):"), "{report}");

        let written = std::fs::read_to_string(&out).expect("the shrunk seed file");
        let after = tina_sim::seedfile::parse(&out_arg, &written).expect("the shrunk file parses");
        assert_eq!(after.expect.map(|c| c.name()), Some(class.as_str()), "{written}");
        let (again, class_after, checker_after, events_after) = judged(&after.args());
        assert_eq!(
            (again, class_after.as_str(), checker_after.as_str()),
            (code, class.as_str(), checker.as_str()),
            "{}: the shrunk run fails the same way\n{written}",
            file.display()
        );
        assert!(events_after <= events, "{}: {events_after} > {events}", file.display());
        if events_after < events {
            shrunk_total += 1;
        }
    }
    assert!(
        shrunk_total * 2 >= files.len(),
        "most plants shrink: {shrunk_total} of {}",
        files.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shrink_refuses_bad_input_with_what_to_fix() {
    let (code, _, err) = sim(&["shrink"]);
    assert_eq!(code, 2);
    assert!(err.contains("give the failing run"), "{err}");

    let (code, _, err) =
        sim(&["shrink", "--", "--seed", "1", "--scenario", "ping-pong", "--set", "round_trips=20"]);
    assert_eq!(code, 2);
    assert!(err.contains("the run passes"), "{err}");

    let dir = std::env::temp_dir().join(format!("tina-shrink-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let other = dir.join("other.seed");
    std::fs::write(&other, "why: x\nseed: 1\nscenario: raft\nexpect: pass\n").expect("written");
    let (code, _, err) = sim(&["shrink", "--seed-file", &other.display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("the seed file is for scenario raft"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
