#!/usr/bin/env bash
# Compares the wall-clock speed of our simulator with madsim and turmoil on three workloads,
# each N round trips of a 64-byte request and a 64-byte response, one after the other, with
# latency uniform in 1..=10 ms, seeded:
#   ping-pong  two isolates on two shards of one node (the peers: two simulated hosts);
#   udp-nodes  a UDP ping-pong between two nodes (our echo scenario, udp=2; the peers'
#              datagram endpoints);
#   tcp-nodes  a TCP request/response over one connection between two nodes (echo, udp=0;
#              the peers' TCP streams, --tcp).
#
# Builds all three in release, then runs each workload interleaved (ours, ours without
# checkers, madsim, turmoil) for ROUNDS rounds, round r using seed r. Prints each round's
# numbers, each system's median in round trips per wall-clock second, our ping-pong under
# the chaos profile, further figures (see `further_figures`), and last the ratios of the
# medians:
#   udp-sim-vs-madsim: <x>x ...   tcp-sim-vs-madsim: <x>x ...
#   sim-vs-madsim: <x>x sim-vs-turmoil: <y>x          (ping-pong)
# where "sim" is our default run: every structural checker judging every event (the peers
# check nothing; "sim-nc", with --no-checkers, is the like-for-like figure).
#
# Environment: ROUND_TRIPS (default 200000), ROUNDS (default 5).
# Each system times only its simulation run (building the runtime and running it), not
# process start. The peers live in bench/peers/ with their own Cargo.lock and target dir.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

ROUND_TRIPS=${ROUND_TRIPS:-200000}
ROUNDS=${ROUNDS:-5}
case $ROUND_TRIPS in '' | *[!0-9]* | 0) echo "ROUND_TRIPS must be a positive integer" >&2; exit 2 ;; esac
case $ROUNDS in '' | *[!0-9]* | 0) echo "ROUNDS must be a positive integer" >&2; exit 2 ;; esac

SIM="$ROOT/target/release/sim"
MADSIM_DIR="$ROOT/bench/peers/madsim-ping-pong"
TURMOIL_DIR="$ROOT/bench/peers/turmoil-ping-pong"
MADSIM="$MADSIM_DIR/target/release/madsim-ping-pong"
TURMOIL="$TURMOIL_DIR/target/release/turmoil-ping-pong"

echo "== build (release)" >&2
cargo build --release --bin sim
# Each peer has its own target dir, so RUSTFLAGS for madsim never touch the main build.
(cd "$MADSIM_DIR" && RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$MADSIM_DIR/target" \
    cargo build --release --locked)
(cd "$TURMOIL_DIR" && CARGO_TARGET_DIR="$TURMOIL_DIR/target" cargo build --release --locked)

# quiet CMD...: runs CMD with its stderr kept aside, shown only if CMD fails.
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
quiet() {
    local rc=0
    "$@" 2>"$ERR" || rc=$?
    if ((rc != 0)); then
        echo "failed (exit $rc): $*" >&2
        cat "$ERR" >&2
    fi
    return "$rc"
}

# json_field FIELD: reads one JSON object on stdin, prints FIELD.
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# peer_wall_ns: reads a peer's stdout, checks its round_trips, prints its wall_ns.
peer_wall_ns() {
    local line
    line=$(grep -E '^round_trips=[0-9]+ wall_ns=[0-9]+$' || true)
    if [[ $line != "round_trips=$ROUND_TRIPS wall_ns="* ]]; then
        echo "unexpected peer output (wanted round_trips=$ROUND_TRIPS wall_ns=<ns>)" >&2
        return 1
    fi
    echo "${line##*wall_ns=}"
}

# rate COUNT WALL_NS: COUNT per wall-clock second, as an integer.
rate() {
    python3 -c 'import sys; print(round(int(sys.argv[1]) * 1e9 / int(sys.argv[2])))' "$1" "$2"
}

# median N...: the median of integers.
median() {
    python3 -c 'import statistics, sys; print(round(statistics.median(int(a) for a in sys.argv[1:])))' "$@"
}

# ratio A B: A/B with one decimal, or two significant digits when below 10.
ratio() {
    python3 -c '
import sys
r = float(sys.argv[1]) / float(sys.argv[2])
print(f"{r:.2g}" if r < 10 else f"{r:.1f}")' "$1" "$2"
}

has_scenario() {
    "$SIM" list 2>/dev/null | grep -qE "^[[:space:]]+$1[[:space:]]"
}

if ! has_scenario ping-pong; then
    echo "sim has no ping-pong scenario (see: $SIM list)" >&2
    exit 1
fi

# compare NAME PEER_FLAGS SIM_ARGS...: ROUNDS interleaved rounds (round r uses seed r) of
# our simulator (checkers on, then --no-checkers) and both peers on one workload; prints
# each round and the medians, and sets MEDIAN_SIM, MEDIAN_NC, MEDIAN_MADSIM, MEDIAN_TURMOIL
# (round trips per wall-clock second).
compare() {
    local name=$1 peer_flags=$2
    shift 2
    local round wall r
    local sim_rates=() nc_rates=() madsim_rates=() turmoil_rates=()
    echo "== $name: round_trips=$ROUND_TRIPS latency uniform 1..=10ms, $ROUNDS rounds (seed = round)"
    printf '%-6s %-8s %14s %14s\n' round system wall_ns rt_per_s
    for ((round = 1; round <= ROUNDS; round++)); do
        wall=$(quiet "$SIM" --seed "$round" "$@" --faults none --json | json_field wall_ns)
        r=$(rate "$ROUND_TRIPS" "$wall")
        sim_rates+=("$r")
        printf '%-6s %-8s %14s %14s\n' "$round" sim "$wall" "$r"

        wall=$(quiet "$SIM" --seed "$round" "$@" --faults none --no-checkers --json \
            | json_field wall_ns)
        r=$(rate "$ROUND_TRIPS" "$wall")
        nc_rates+=("$r")
        printf '%-6s %-8s %14s %14s\n' "$round" sim-nc "$wall" "$r"

        # shellcheck disable=SC2086 # peer_flags is empty or one flag
        wall=$(quiet "$MADSIM" --seed "$round" --round-trips "$ROUND_TRIPS" $peer_flags \
            | peer_wall_ns)
        r=$(rate "$ROUND_TRIPS" "$wall")
        madsim_rates+=("$r")
        printf '%-6s %-8s %14s %14s\n' "$round" madsim "$wall" "$r"

        # shellcheck disable=SC2086
        wall=$(quiet "$TURMOIL" --seed "$round" --round-trips "$ROUND_TRIPS" $peer_flags \
            | peer_wall_ns)
        r=$(rate "$ROUND_TRIPS" "$wall")
        turmoil_rates+=("$r")
        printf '%-6s %-8s %14s %14s\n' "$round" turmoil "$wall" "$r"
    done
    MEDIAN_SIM=$(median "${sim_rates[@]}")
    MEDIAN_NC=$(median "${nc_rates[@]}")
    MEDIAN_MADSIM=$(median "${madsim_rates[@]}")
    MEDIAN_TURMOIL=$(median "${turmoil_rates[@]}")
    echo "== $name: median round trips per wall-clock second"
    printf '%-9s %14s\n' sim "$MEDIAN_SIM" sim-nc "$MEDIAN_NC" madsim "$MEDIAN_MADSIM" \
        turmoil "$MEDIAN_TURMOIL"
}

# 1. Two isolates on two shards of one node; like for like with the peers: no faults, and
# no resend timer (the peers keep none).
PING=(--scenario ping-pong --set round_trips="$ROUND_TRIPS" --set net_delay_min=1ms
    --set net_delay_max=10ms --set retry=0)
compare ping-pong "" "${PING[@]}"
ours=$MEDIAN_SIM bare=$MEDIAN_NC madsim=$MEDIAN_MADSIM turmoil=$MEDIAN_TURMOIL

# The chaos profile on ping-pong: every fault kind injected for the safety phase (the first
# two simulated seconds), then the liveness phase, long enough for this many round trips.
# The pinger resends lost balls, as it must under faults.
chaos_rates=()
for ((round = 1; round <= ROUNDS; round++)); do
    wall=$(quiet "$SIM" --seed "$round" "${PING[@]}" --set retry=100ms --faults chaos \
        --fault liveness_time=1h --json | json_field wall_ns)
    chaos_rates+=("$(rate "$ROUND_TRIPS" "$wall")")
done
chaos=$(median "${chaos_rates[@]}")
echo "sim-chaos (ping-pong under --faults chaos, median of $ROUNDS): $chaos round trips per second"

# 2 and 3. Two nodes over the virtual network: the echo scenario with one client node and a
# one-shard server, 64-byte messages, the UDP pinger alone (udp=2) or the TCP client alone
# (udp=0, one connection for every round trip). The peers use their datagram endpoints and
# their TCP streams (--tcp).
ECHO=(--scenario echo --set clients=1 --set server_shards=1 --set chaos=0 --set size=64
    --set round_trips="$ROUND_TRIPS" --set net_delay_min=1ms --set net_delay_max=10ms)
if has_scenario echo; then
    compare udp-nodes "" "${ECHO[@]}" --set udp=2
    udp_sim=$MEDIAN_SIM udp_nc=$MEDIAN_NC udp_madsim=$MEDIAN_MADSIM udp_turmoil=$MEDIAN_TURMOIL
    compare tcp-nodes --tcp "${ECHO[@]}" --set udp=0
    tcp_sim=$MEDIAN_SIM tcp_nc=$MEDIAN_NC tcp_madsim=$MEDIAN_MADSIM tcp_turmoil=$MEDIAN_TURMOIL
else
    echo "udp-nodes, tcp-nodes: skipped (no echo scenario in sim list)"
fi

# Further figures of our simulator alone. Each one checks that what it needs exists
# (`sim list`) and prints a note instead when it does not. Add more commands here.
further_figures() {
    echo "== further figures (sim)"

    # (a) Simulated messages per wall-clock second: ping-pong with zero latency, trace
    # hash on, no log; median of ROUNDS runs, with and without the checkers.
    if has_scenario ping-pong; then
        local wall messages round checked bare
        messages=$((2 * ROUND_TRIPS))
        checked=() bare=()
        for ((round = 1; round <= ROUNDS; round++)); do
            wall=$(quiet "$SIM" --seed "$round" --scenario ping-pong --faults none \
                --set round_trips="$ROUND_TRIPS" --set net_delay_min=0 --set net_delay_max=0 \
                --set retry=0 --json | json_field wall_ns)
            checked+=("$(rate "$messages" "$wall")")
            wall=$(quiet "$SIM" --seed "$round" --scenario ping-pong --faults none \
                --set round_trips="$ROUND_TRIPS" --set net_delay_min=0 --set net_delay_max=0 \
                --set retry=0 --no-checkers --json | json_field wall_ns)
            bare+=("$(rate "$messages" "$wall")")
        done
        echo "ping-pong zero latency ($messages messages, median of $ROUNDS):" \
            "messages_per_s=$(median "${checked[@]}") (checkers)" \
            "$(median "${bare[@]}") (--no-checkers)"
    else
        echo "ping-pong zero latency: skipped (no ping-pong scenario in sim list)"
    fi

    # (b) Simulated time over wall time on an idle-heavy run: the dispatcher with 10
    # workers and a job every 100 ms for one simulated hour (36,000 jobs).
    if has_scenario dispatcher; then
        local json sim_ns
        json=$(quiet "$SIM" --seed 1 --scenario dispatcher --faults none --set workers=10 \
            --set jobs=36000 --set job_interval=100ms --set check_in_every=0 --time-max 2h --json)
        sim_ns=$(json_field sim_time_ns <<<"$json")
        wall=$(json_field wall_ns <<<"$json")
        echo "dispatcher idle-heavy (10 workers, a job per 100ms, 1 simulated hour):" \
            "sim_ns=$sim_ns wall_ns=$wall sim_over_wall=$(rate "$sim_ns" "$((wall * 1000000000))")x"
    else
        echo "dispatcher idle-heavy: skipped (no dispatcher scenario in sim list)"
    fi

    # (c) n isolates, each setting one timer at a random instant in the first 10 simulated
    # seconds, then finishing: wall time for n = 10k, 100k, 1M (n log n, not n^2).
    if has_scenario timers; then
        local n per
        for n in 10000 100000 1000000; do
            wall=$(quiet "$SIM" --seed 1 --scenario timers --faults none --set isolates="$n" \
                --set spread=10s --json | json_field wall_ns)
            per=$(python3 -c 'import sys; print(round(int(sys.argv[1]) / int(sys.argv[2])))' \
                "$wall" "$n")
            echo "timers: isolates=$n wall_ns=$wall ns_per_isolate=$per"
        done
    else
        echo "timers: skipped (no timers scenario in sim list)"
    fi
}
further_figures

if has_scenario echo; then
    echo "udp-sim-vs-madsim: $(ratio "$udp_sim" "$udp_madsim")x" \
        "udp-sim-nc-vs-madsim: $(ratio "$udp_nc" "$udp_madsim")x" \
        "udp-sim-vs-turmoil: $(ratio "$udp_sim" "$udp_turmoil")x"
    echo "tcp-sim-vs-madsim: $(ratio "$tcp_sim" "$tcp_madsim")x" \
        "tcp-sim-nc-vs-madsim: $(ratio "$tcp_nc" "$tcp_madsim")x" \
        "tcp-sim-vs-turmoil: $(ratio "$tcp_sim" "$tcp_turmoil")x"
fi
echo "sim-nc-vs-madsim: $(ratio "$bare" "$madsim")x sim-nc-vs-turmoil: $(ratio "$bare" "$turmoil")x"
echo "sim-chaos-vs-madsim: $(ratio "$chaos" "$madsim")x"
echo "sim-vs-madsim: $(ratio "$ours" "$madsim")x sim-vs-turmoil: $(ratio "$ours" "$turmoil")x"
