#!/usr/bin/env bash
# `airlock serve` of a bundle against a real docker-registry holding the same images (issue 13).
#
#   sudo bash bench/serve.sh [--airlock PATH] [--runs N] [--images N] [--layers MIB,MIB,...]
#        [--clients N] [--format tar.zst|tar]
#
# A synthetic corpus (bench/synth.py: IMAGES images, default 8, one random gzip layer per
# size in --layers, default 1,8,24 MiB) is pushed into a source docker-registry and saved
# with `airlock save` as b.tar.zst (or b.tar with --format tar); `airlock push` fills a second, empty docker-registry
# (the peer) from that bundle, so both serve the very same bytes. Then, sides alternating
# (order flipped every run), page cache dropped before each:
#   pull  — `docker pull` of every tag into a fresh dockerd (images removed between runs)
#   blobs — CLIENTS (default 32) concurrent `curl` GETs of every blob, twice over (each
#           blob's two GETs side by side, so they run at the same time): MB/s
#   blobs-apart — the same GETs as two passes, every blob once per pass, the second pass
#           started when the first is done: no blob is fetched twice at the same time, so
#           serve cannot share a read between two downloads (see src/serve/flight.rs)
# and, for each serving process, the CPU time (user + system) each blob run cost it,
# peak RSS (VmHWM) and the CPU time all timed runs cost it. Prints one line per run,
# the medians and ratios airlock/registry.
# Needs root (dockerd, drop_caches).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

airlock="$root/target/release/airlock" runs=3 images=8 layers=1,8,24 clients=32 format=tar.zst
while (($#)); do
    case $1 in
    --airlock) airlock=$(realpath "${2:?}"); shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --images) images=${2:?}; shift 2 ;;
    --layers) layers=${2:?}; shift 2 ;;
    --clients) clients=${2:?}; shift 2 ;;
    --format) format=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ -x $airlock ]] || die "no airlock binary at $airlock (cargo build --release --locked)"
[[ $(id -u) -eq 0 ]] || die "run as root (dockerd, drop_caches)"

work=$(mktemp -d /var/tmp/airlock-servebench-XXXXXX)
serve_pid=""
cleanup() {
    local rc=$?
    [[ -n $serve_pid ]] && stop_pid "$serve_pid"
    stop_dockerd
    bench_cleanup
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

synth_registry "$work" "$images" "$layers"
rm -rf "$work/layout"
"$airlock" --no-progress -q save -f "$work/list" -o "$work/b.$format"
stop_pid "$REG_PID"

start_registry "$work/peer-registry" "$work/registry.log"
peer_port=$REG_PORT peer_pid=$REG_PID
"$airlock" --no-progress -q push "$work/b.$format" "127.0.0.1:$peer_port"

serve_port=$(free_port)
"$airlock" serve "$work/b.$format" --listen "127.0.0.1:$serve_port" -q </dev/null >"$work/serve.log" 2>&1 &
serve_pid=$!
for i in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$serve_port/v2/" && break
    kill -0 "$serve_pid" 2>/dev/null || die "airlock serve exited; see $work/serve.log"
    sleep 0.1
done

# Every blob of the bundle (the same set the peer holds), as "repo digest" lines.
# Every config and layer, with a repository that holds it (distribution links blobs per
# repository): "repo digest size" lines, read from the peer's manifests.
python3 - "127.0.0.1:$peer_port" "$work/list" >"$work/blobs" <<'PY'
import json, sys, urllib.request
addr, seen = sys.argv[1], set()
accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
for line in open(sys.argv[2]):
    repo, tag = line.strip().split("/", 1)[1].rsplit(":", 1)
    req = urllib.request.Request(f"http://{addr}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
    m = json.load(urllib.request.urlopen(req))
    for d in [m["config"], *m["layers"]]:
        if d["digest"] not in seen:
            seen.add(d["digest"])
            print(repo, d["digest"], d["size"])
PY
blob_bytes=$(awk '{ s += $3 } END { print s }' "$work/blobs")
log "bundle $(du -h "$work/b.$format" | cut -f1), $(wc -l <"$work/blobs") blobs, $blob_bytes bytes"

start_dockerd "$work/dockerd-root" "$work/dockerd.log"
results="$work/results.tsv"
: >"$results"

addr_of() { if [[ $1 == airlock ]]; then echo "127.0.0.1:$serve_port"; else echo "127.0.0.1:$peer_port"; fi; }

pull_run() {
    local side=$1 r=$2 addr t0 t1 name
    addr=$(addr_of "$side")
    docker image ls -q | sort -u | xargs -r docker rmi -f >/dev/null
    sync
    echo 3 >/proc/sys/vm/drop_caches
    t0=$(date +%s%N)
    while read -r name; do
        docker pull -q "$addr/${name#*/}" >/dev/null
    done <"$work/list"
    t1=$(date +%s%N)
    printf 'pull\t%s\t%s\t%s\n' "$side" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" >>"$results"
    log "$(tail -n 1 "$results")"
}

# blobs_run KIND SIDE RUN: KIND blobs (each blob's two GETs side by side) or blobs-apart
# (two passes of one GET per blob).
blobs_run() {
    local kind=$1 side=$2 r=$3 addr t0 t1 pid c0
    addr=$(addr_of "$side")
    pid=$serve_pid
    [[ $side == registry ]] && pid=$peer_pid
    sync
    echo 3 >/proc/sys/vm/drop_caches
    c0=$(cpu "$pid")
    t0=$(date +%s%N)
    if [[ $kind == blobs ]]; then
        awk -v a="$addr" '{ u = "http://" a "/v2/" $1 "/blobs/" $2; print u; print u }' "$work/blobs" |
            xargs -P "$clients" -n 1 curl -fsS -o /dev/null
    else
        for pass in 1 2; do
            awk -v a="$addr" '{ print "http://" a "/v2/" $1 "/blobs/" $2 }' "$work/blobs" |
                xargs -P "$clients" -n 1 curl -fsS -o /dev/null
        done
    fi
    t1=$(date +%s%N)
    printf '%s\t%s\t%s\t%s\n' "$kind" "$side" "$r" "$(awk -v a="$t0" -v b="$t1" -v n="$blob_bytes" 'BEGIN { printf "%.1f", 2 * n / ((b - a) / 1e9) / 1e6 }')" >>"$results"
    printf '%s-cpu\t%s\t%s\t%s\n' "$kind" "$side" "$r" "$(($(cpu "$pid") - c0))" >>"$results"
    log "$(tail -n 2 "$results" | head -n 1), server CPU $(($(cpu "$pid") - c0)) ticks"
}

# CPU time (user + system, in clock ticks) a process has used so far.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
serve_cpu0=$(cpu "$serve_pid") peer_cpu0=$(cpu "$peer_pid")
for ((r = 1; r <= runs; r++)); do
    order=(airlock registry)
    ((r % 2 == 0)) && order=(registry airlock)
    for side in "${order[@]}"; do pull_run "$side" "$r"; done
    for side in "${order[@]}"; do blobs_run blobs "$side" "$r"; done
    for side in "${order[@]}"; do blobs_run blobs-apart "$side" "$r"; done
done
hwm() { awk '/VmHWM/ { print $2 * 1024 }' "/proc/$1/status"; }
printf 'rss\tairlock\t-\t%s\n' "$(hwm "$serve_pid")" >>"$results"
printf 'rss\tregistry\t-\t%s\n' "$(hwm "$peer_pid")" >>"$results"
printf 'cpu\tairlock\t-\t%s\n' "$(($(cpu "$serve_pid") - serve_cpu0))" >>"$results"
printf 'cpu\tregistry\t-\t%s\n' "$(($(cpu "$peer_pid") - peer_cpu0))" >>"$results"

python3 - "$results" "$images" "$layers" "$clients" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
hz = int(sys.argv[5])
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
print(f"\n{sys.argv[2]} images, layers {sys.argv[3]} MiB, {sys.argv[4]} concurrent blob clients")
print("| measure | side | runs | median |")
print("|---|---|---|---|")
med = {}
for kind in ("pull", "blobs", "blobs-cpu", "blobs-apart", "blobs-apart-cpu"):
    for side in ("airlock", "registry"):
        v = [float(x[3]) for x in rows if x[0] == kind and x[1] == side]
        if kind.endswith("-cpu"):
            v = [x / hz for x in v]
        med[kind, side] = statistics.median(v)
        unit = "s" if kind == "pull" else "server CPU-s" if kind.endswith("-cpu") else "MB/s"
        print(f"| {kind} ({unit}) | {side} | {', '.join(f'{x:g}' for x in v)} | {med[kind, side]:g} |")
rss = {x[1]: int(x[3]) for x in rows if x[0] == "rss"}
for side in ("airlock", "registry"):
    print(f"| peak RSS (MB) | {side} | - | {rss[side] / 1e6:.1f} |")
cpu = {x[1]: float(x[3]) for x in rows if x[0] == "cpu"}
for side in ("airlock", "registry"):
    print(f"| server CPU, all runs (s) | {side} | - | {cpu[side] / hz:.2f} |")
print(f"\ndocker pull time airlock/registry: {med['pull', 'airlock'] / med['pull', 'registry']:.2f}x (goal <= 1.0)")
print(f"blob GET throughput airlock/registry: {med['blobs', 'airlock'] / med['blobs', 'registry']:.2f}x (goal >= 1.0)")
print(f"blob GET throughput, no blob fetched twice at once, airlock/registry: {med['blobs-apart', 'airlock'] / med['blobs-apart', 'registry']:.2f}x")
for kind in ("blobs", "blobs-apart"):
    print(f"server CPU per {kind} run airlock/registry: {med[kind + '-cpu', 'airlock'] / med[kind + '-cpu', 'registry']:.2f}x")
PY
