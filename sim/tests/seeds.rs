//! Replays every file in `seeds/` through the `sim` command line and checks its outcome;
//! every plant has a seed file. A malformed file fails with its name, line and problem.

use std::path::{Path, PathBuf};

use tina_checkers::FailureClass;
use tina_scenarios::catalog;
use tina_sim::plant::PLANTS;
use tina_sim::seedfile::{SeedFile, check_dir, read_dir, replay_dir};

fn directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds")
}

fn corpus() -> Vec<(String, SeedFile)> {
    read_dir(&directory()).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn every_seed_file_replays_to_its_expected_outcome() {
    let replayed = check_dir(&directory(), catalog());
    assert!(replayed >= PLANTS.len(), "the corpus has {replayed} files");
}

/// A replay that ends otherwise than its file expects is reported, not passed: the same
/// corpus against a catalog without the bank scenario fails the bank files.
#[test]
fn a_replay_that_differs_is_reported() {
    let without_bank: Vec<_> =
        catalog().iter().copied().filter(|scenario| scenario.name() != "bank").collect();
    let replays = replay_dir(&directory(), &without_bank).expect("a readable corpus");
    let wrong: Vec<_> = replays.iter().filter(|replay| !replay.matched()).collect();
    assert!(!wrong.is_empty());
    for replay in wrong {
        assert_eq!(replay.code, 2, "{}: {}", replay.file, replay.output);
        assert!(replay.output.contains("bank"), "{}: {}", replay.file, replay.output);
    }
}

/// A missing directory and a malformed file are errors that name them.
#[test]
fn an_unreadable_corpus_is_an_error() {
    let missing = directory().join("no-such-directory");
    let error = replay_dir(&missing, catalog()).expect_err("missing");
    assert!(error.to_string().contains("no-such-directory"), "{error}");
    let dir = std::env::temp_dir().join(format!("tina-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::write(dir.join("bad.seed"), "why: x\nseed: one\n").expect("written");
    let error = replay_dir(&dir, catalog()).expect_err("malformed");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(error.to_string().starts_with("bad.seed:2: invalid seed"), "{error}");
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
