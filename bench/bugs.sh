#!/usr/bin/env bash
# The planted-bug bench: how much CPU each way of searching spends before it finds each
# planted bug, and how far the shrinker reduces the failure it found.
#
# For every plant in PLANTS (bugs of a system under test, and of the transport the
# checkers guard; not the trace plants, which corrupt the event stream to test a checker
# and are caught on every seed):
#   sweep   plain seeds from SEED_START up (the plant's own fault settings), one run each,
#           until the first failure of the plant's class; at most SEEDS_MAX seeds;
#   swarm   the same with --faults swarm (the seed also picks which fault kinds are on);
#   fuzz    cargo +nightly fuzz run scenarios with TINA_FUZZ_PLANT set, from an empty
#           corpus, until its first crash; at most FUZZ_SECONDS;
#   shrink  sim shrink on the sweep's first failing seed: events before and after, and
#           the share of events left.
# CPU time is user plus system time of the child processes (getrusage), so process start
# is included; the sweeps start at SEED_START, away from the seed each plant was tuned
# on (--seed in `sim list`).
#
# Environment: PLANTS (space separated), SEED_START (default 1000), SEEDS_MAX (default
# 2000), FUZZ_SECONDS (default 120; 0 skips the fuzzer), SHRINK_RUNS (default 300).
# Prints one row per plant and the totals against the aims (all found within 10 CPU
# minutes in total; shrinking brings at least 90% of failures to at most 10% of their
# events, within 60 s each).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

PLANTS=${PLANTS:-"lose-message duplicate-delivery reorder early-timer static-counter bank-no-dedup bank-stale-branch bank-clock-dedup kv-ack-before-fsync kv-stale-cache echo-gives-up"}
SEED_START=${SEED_START:-1000}
SEEDS_MAX=${SEEDS_MAX:-2000}
FUZZ_SECONDS=${FUZZ_SECONDS:-120}
SHRINK_RUNS=${SHRINK_RUNS:-300}
for value in "$SEED_START" "$SEEDS_MAX" "$FUZZ_SECONDS" "$SHRINK_RUNS"; do
    case $value in '' | *[!0-9]*) echo "SEED_START, SEEDS_MAX, FUZZ_SECONDS and SHRINK_RUNS are integers" >&2; exit 2 ;; esac
done

echo "== build" >&2
cargo build --release --bin sim >&2
if ((FUZZ_SECONDS > 0)); then
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "cargo-fuzz is missing: cargo install cargo-fuzz (or FUZZ_SECONDS=0)" >&2
        exit 2
    fi
    (cd fuzz && cargo +nightly fuzz build -s none scenarios >&2)
fi

export ROOT PLANTS SEED_START SEEDS_MAX FUZZ_SECONDS SHRINK_RUNS
python3 - <<'PY'
import json, os, re, resource, shutil, subprocess, sys, tempfile, time

root = os.environ["ROOT"]
sim = os.path.join(root, "target/release/sim")
plants = os.environ["PLANTS"].split()
seed_start = int(os.environ["SEED_START"])
seeds_max = int(os.environ["SEEDS_MAX"])
fuzz_seconds = int(os.environ["FUZZ_SECONDS"])
shrink_runs = int(os.environ["SHRINK_RUNS"])

listing = json.loads(subprocess.run([sim, "list", "--json"], capture_output=True, check=True).stdout)
known = {p["name"]: p for p in listing["plants"]}
for name in plants:
    if name not in known:
        sys.exit(f"unknown plant {name!r}; see `sim list`")

def cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

def sweep(name, extra):
    """Seeds from seed_start until the plant's class fails: (seeds tried, CPU s, seed)."""
    want = known[name]["class"]
    start = cpu()
    for index in range(seeds_max):
        seed = seed_start + index
        out = subprocess.run([sim, "--plant", name, "--seed", str(seed), "--json", *extra],
                             capture_output=True)
        report = json.loads(out.stdout or b"{}")
        if report.get("class") == want:
            return index + 1, cpu() - start, seed
    return seeds_max, cpu() - start, None

fuzz_cpu = [0.0]

def fuzz(name):
    """CPU s until the fuzzer's first crash, or None (fuzz_cpu[0]: CPU s spent either way)."""
    fuzz_cpu[0] = 0.0
    if fuzz_seconds == 0:
        return None
    corpus = tempfile.mkdtemp(prefix="tina-bugs-corpus-")
    artifacts = tempfile.mkdtemp(prefix="tina-bugs-artifacts-")
    start = cpu()
    env = dict(os.environ, TINA_FUZZ_PLANT=name)
    subprocess.run(
        ["cargo", "+nightly", "fuzz", "run", "-s", "none", "scenarios", corpus, "--",
         f"-max_total_time={fuzz_seconds}", f"-artifact_prefix={artifacts}/"],
        cwd=os.path.join(root, "fuzz"), env=env, capture_output=True)
    spent = cpu() - start
    fuzz_cpu[0] = spent
    found = bool(os.listdir(artifacts))
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(artifacts, ignore_errors=True)
    return spent if found else None

def shrink(name, seed):
    """(events before, after, wall s) of `sim shrink` on the failing seed."""
    began = time.monotonic()
    out = subprocess.run([sim, "shrink", "--max-runs", str(shrink_runs), "--",
                          "--plant", name, "--seed", str(seed)], capture_output=True, text=True)
    wall = time.monotonic() - began
    match = re.search(r"^shrink: events (\d+) -> (\d+)", out.stdout, re.M)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), wall

fmt = "{:<22} {:>12} {:>12} {:>10} {:>24}"
print(fmt.format("plant", "sweep", "swarm", "fuzz", "shrink (events, left)"))
print(fmt.format("", "seeds/cpu-s", "seeds/cpu-s", "cpu-s", ""))
total, missed, shrunk_ok, shrunk_all = 0.0, [], 0, 0
for name in plants:
    tried, spent, seed = sweep(name, [])
    total += spent
    sweep_cell = f"{tried}/{spent:.2f}" if seed is not None else f"none/{spent:.0f}"
    s_tried, s_spent, s_seed = sweep(name, ["--faults", "swarm"])
    total += s_spent
    swarm_cell = f"{s_tried}/{s_spent:.2f}" if s_seed is not None else f"none/{s_spent:.0f}"
    fuzz_spent = fuzz(name)
    total += fuzz_cpu[0]
    fuzz_cell = "skipped" if fuzz_seconds == 0 else (f"{fuzz_spent:.1f}" if fuzz_spent is not None else "none")
    found = [x for x in (seed, s_seed) if x is not None]
    if not found and fuzz_spent is None:
        missed.append(name)
    shrink_cell = "-"
    if seed is not None:
        result = shrink(name, seed)
        if result:
            before, after, wall = result
            left = after / before if before else 1.0
            shrunk_all += 1
            if left <= 0.10 and wall <= 60:
                shrunk_ok += 1
            shrink_cell = f"{before}->{after} {left:.1%} {wall:.1f}s"
    print(fmt.format(name, sweep_cell, swarm_cell, fuzz_cell, shrink_cell), flush=True)

print(f"cpu total (sweeps, swarms, fuzzing): {total:.1f} s (aim: all found within 600 s)")
print(f"found: {len(plants) - len(missed)} of {len(plants)}" + (f" (missed: {' '.join(missed)})" if missed else ""))
if shrunk_all:
    print(f"shrunk to <= 10% of their events within 60 s: {shrunk_ok} of {shrunk_all} ({shrunk_ok / shrunk_all:.0%}; aim: 90%)")
PY
