#!/usr/bin/env bash
# The TCP echo bench: tina's echo example (io_uring and epoll) against tokio and monoio
# echo servers written the usual way, driven over loopback by a load client that is a
# process of its own (bench/peers/tcp-echo, `echo-load`, one thread).
#
# For each round, for each connection count in CONNECTIONS, every server in turn:
#   throughput  closed loop, 64-byte messages: requests per second and p99 latency;
#   cpu         paced to RATE requests per second in total: the server's CPU time
#               (utime + stime from /proc/PID/stat) per request.
# Servers run interleaved within a round, so a noisy moment hits every one of them; the
# ratios (tina / best peer) are per round, reported as the median and range over ROUNDS.
#
# LAYOUT says where the threads go:
#   split   (default) the server gets core 0 and one thread (tina: one shard; tokio and
#           monoio: one worker), the load client core 1, both by taskset: the usual way to
#           measure a server over loopback, with nothing else on its core;
#   shared  every server runs two threads (tina: two shards, one per core) and the load
#           client runs where the OS puts it: three busy threads on two cores, so what is
#           measured is as much the OS scheduler's placement as the server.
#
# Environment: LAYOUT, ROUNDS (default 3), SECONDS_PER_RUN (default 5), CONNECTIONS
# (default "64 256"), SERVERS (default "tina-uring tina-epoll tokio monoio"), RATE
# (default 50000), SIZE (default 64), PORT (default 17000), PIN (1: tina pins its shard
# threads, the default; 0: the OS places them, as it does the peers'), TINA_CONNECTIONS
# (tina's connection isolates per shard, default 1024).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNECTIONS=${CONNECTIONS:-"64 256"}
RATE=${RATE:-50000}
SIZE=${SIZE:-64}
PORT=${PORT:-17000}
PIN=${PIN:-1}
LAYOUT=${LAYOUT:-split}
case $LAYOUT in
    split) THREADS=1; SERVER_ON=(taskset -c 0); CLIENT_ON=(taskset -c 1) ;;
    shared) THREADS=2; SERVER_ON=(); CLIENT_ON=() ;;
    *) echo "LAYOUT is split or shared" >&2; exit 2 ;;
esac
TINA_CONNECTIONS=${TINA_CONNECTIONS:-1024}
for value in "$ROUNDS" "$SECONDS_PER_RUN" "$RATE" "$SIZE" "$PORT" "$PIN" "$TINA_CONNECTIONS" $CONNECTIONS; do
    case $value in '' | *[!0-9]*) echo "ROUNDS, SECONDS_PER_RUN, CONNECTIONS, RATE, SIZE, PORT, PIN and TINA_CONNECTIONS are integers" >&2; exit 2 ;; esac
done

echo "== build" >&2
cargo build --release -p tina-scenarios --example echo >&2
TINA="$ROOT/target/release/examples/echo"
(cd bench/peers/tcp-echo && cargo build --release --locked >&2)
PEERS="$ROOT/bench/peers/tcp-echo/target/release"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; kill $(jobs -p) 2>/dev/null || true' EXIT

SERVERS=${SERVERS:-"tina-uring tina-epoll tokio monoio"}

# start NAME PORT: starts the server, prints its pid once it accepts connections.
start() {
    local name=$1 port=$2
    case $name in
        tina-uring) "${SERVER_ON[@]}" "$TINA" shards="$THREADS" port="$port" io=uring pin="$PIN" connections="$TINA_CONNECTIONS" report=0 >"$OUT/$name.log" 2>&1 & ;;
        tina-epoll) "${SERVER_ON[@]}" "$TINA" shards="$THREADS" port="$port" io=epoll pin="$PIN" connections="$TINA_CONNECTIONS" report=0 >"$OUT/$name.log" 2>&1 & ;;
        tokio) "${SERVER_ON[@]}" "$PEERS/echo-tokio" "$port" "$THREADS" >"$OUT/$name.log" 2>&1 & ;;
        monoio) "${SERVER_ON[@]}" "$PEERS/echo-monoio" "$port" "$THREADS" >"$OUT/$name.log" 2>&1 & ;;
    esac
    local pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$pid"
            return
        fi
        sleep 0.05
    done
    echo "$name did not start listening on $port:" >&2
    cat "$OUT/$name.log" >&2
    exit 1
}

# addrs NAME PORT: the load client's --addr flags (tina: one listener per shard).
addrs() {
    case $1 in
        tina-*) for shard in $(seq 0 $((THREADS - 1))); do echo "--addr 127.0.0.1:$(($2 + shard))"; done ;;
        *) echo "--addr 127.0.0.1:$2" ;;
    esac
}

field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

port=$PORT
for round in $(seq "$ROUNDS"); do
    for connections in $CONNECTIONS; do
        for name in $SERVERS; do
            port=$((port + 2))
            pid=$(start "$name" "$port")
            # shellcheck disable=SC2046
            line=$("${CLIENT_ON[@]}" "$PEERS/echo-load" $(addrs "$name" "$port") --connections "$connections" \
                --size "$SIZE" --seconds "$SECONDS_PER_RUN" --warmup 1 --pid "$pid")
            paced=$("${CLIENT_ON[@]}" "$PEERS/echo-load" $(addrs "$name" "$port") --connections "$connections" \
                --size "$SIZE" --seconds "$SECONDS_PER_RUN" --warmup 1 --rate "$RATE" --pid "$pid")
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "round=$round connections=$connections server=$name $line paced_rps=$(field "$paced" rps) paced_cpu_ns_per_req=$(field "$paced" cpu_ns_per_req) paced_p99_us=$(field "$paced" p99_us)" | tee -a "$OUT/results" >&2
        done
    done
done

python3 - "$OUT/results" "$CONNECTIONS" "$RATE" "$SERVERS" <<'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1])]
conns = sys.argv[2].split()
rate = sys.argv[3]
servers = sys.argv[4].split()
def med(xs):
    return statistics.median(xs)
print(f"| connections | server | req/s (median) | p99 µs (median) | CPU ns/req at {rate} req/s (median) | failed connections (max) |")
print("|---|---|---:|---:|---:|---:|")
for c in conns:
    for s in servers:
        mine = [r for r in rows if r["connections"] == c and r["server"] == s]
        if not mine:
            continue
        print(f"| {c} | {s} | {med([float(r['rps']) for r in mine]):,.0f} | {med([float(r['p99_us']) for r in mine]):,.0f} | {med([float(r['paced_cpu_ns_per_req']) for r in mine]):,.0f} | {max(int(r['failures']) for r in mine)} |")
print()
print("| connections | tina server | throughput / best peer | CPU per request / best peer's |")
print("|---|---|---|---|")
for c in conns:
    for s in [s for s in servers if s.startswith("tina")]:
        tput, cpu = [], []
        for rnd in sorted({r["round"] for r in rows}):
            here = {r["server"]: r for r in rows if r["connections"] == c and r["round"] == rnd}
            if s not in here:
                continue
            peers = [here[p] for p in ("tokio", "monoio") if p in here]
            if not peers:
                continue
            best_tput = max(float(p["rps"]) for p in peers)
            best_cpu = min(float(p["paced_cpu_ns_per_req"]) for p in peers)
            tput.append(float(here[s]["rps"]) / best_tput)
            cpu.append(float(here[s]["paced_cpu_ns_per_req"]) / best_cpu)
        if tput:
            print(f"| {c} | {s} | {med(tput):.2f}x ({min(tput):.2f} to {max(tput):.2f}) | {med(cpu):.2f}x ({min(cpu):.2f} to {max(cpu):.2f}) |")
PY
