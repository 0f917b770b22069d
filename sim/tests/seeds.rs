//! Replays every file in `seeds/` through the `sim` command line and checks its outcome;
//! every plant has a seed file. A malformed file fails with its name, line and problem.

use std::path::Path;

use tina_checkers::FailureClass;
use tina_scenarios::catalog;
use tina_sim::cli::{exit_code, main_with};
use tina_sim::plant::PLANTS;
use tina_sim::seedfile::{SeedFile, parse};

fn corpus() -> Vec<(String, SeedFile)> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .expect("the seeds directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "seed"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("readable");
            let file = parse(&name, &text).unwrap_or_else(|error| panic!("{error}"));
            (name, file)
        })
        .collect()
}

#[test]
fn every_seed_file_replays_to_its_expected_outcome() {
    let files = corpus();
    assert!(files.len() >= PLANTS.len(), "the corpus has {} files", files.len());
    for (name, file) in &files {
        let mut args = vec!["sim".to_string()];
        args.extend(file.args());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = main_with(&args, catalog(), &mut out, &mut err);
        let expected = file.expect.map_or(0, exit_code);
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, expected, "{name} ({}): {out}{}", file.why, String::from_utf8_lossy(&err));
    }
}

#[test]
fn every_plant_has_a_seed_file() {
    let files = corpus();
    for plant in PLANTS {
        let covered = files.iter().any(|(_, file)| {
            file.flags.windows(2).any(|pair| pair[0] == "--plant" && pair[1] == plant.name)
                && file.expect == Some(plant.class)
        });
        assert!(covered, "no seed file plants {} expecting {}", plant.name, plant.class);
    }
    let _ = FailureClass::Correctness;
}
