# Shared helpers for bench/run.sh and bench/corpus.sh (sourced, not run).
#
# Everything started here (docker-registry, dockerd) is recorded in BENCH_PIDS /
# BENCH_DOCKERD_DIRS and stopped by bench_cleanup, which the callers run from an EXIT trap.

BENCH_PIDS=()
BENCH_DOCKERD_DIRS=()

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry STORAGE_DIR LOGFILE -> sets REG_PORT and REG_PID
start_registry() {
    local storage=$1 logfile=$2 port conf i
    mkdir -p "$storage"
    port=$(free_port)
    conf="$(dirname "$logfile")/registry-$port.yml"
    cat >"$conf" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    /usr/bin/docker-registry serve "$conf" </dev/null >>"$logfile" 2>&1 &
    REG_PID=$!
    REG_PORT=$port
    BENCH_PIDS+=("$REG_PID")
    for i in $(seq 1 100); do
        if curl -fs -o /dev/null "http://127.0.0.1:$port/v2/"; then return 0; fi
        kill -0 "$REG_PID" 2>/dev/null || die "docker-registry exited at start; see $logfile"
        sleep 0.1
    done
    die "docker-registry did not answer on 127.0.0.1:$port; see $logfile"
}

# synth_registry WORK IMAGES LAYERS -> a synthetic corpus (synth.py: IMAGES images, one random
# gzip layer per MiB size in LAYERS) in WORK/layout, pushed by skopeo into a docker-registry on
# 127.0.0.1 (REG_PORT, REG_PID); the image names, one a line, in WORK/list.
synth_registry() {
    local work=$1 images=$2 layers=$3 i src
    log "corpus: $images images, layers of $layers MiB"
    python3 "$(dirname "${BASH_SOURCE[0]}")/synth.py" "$work/layout" "$images" "$layers"
    start_registry "$work/registry" "$work/registry.log"
    src="127.0.0.1:$REG_PORT"
    : >"$work/list"
    for ((i = 0; i < images; i++)); do
        skopeo copy -q --dest-tls-verify=false "oci:$work/layout:img$i:1" "docker://$src/bench/img$i:1"
        echo "$src/bench/img$i:1" >>"$work/list"
    done
}

# stop_pid PID: TERM, wait up to 10 s, then KILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# start_dockerd DATA_ROOT LOGFILE -> sets DOCKERD_PID, DOCKERD_DIR, DOCKERD_DRIVER, exports DOCKER_HOST
# Debian's dockerd 20.10, no iptables, no bridge; socket under a short /tmp dir. Storage:
# overlay2 where the kernel allows it (what real engines use; far faster to build on), else vfs.
start_dockerd() {
    local root=$1 logfile=$2
    if try_dockerd overlay2 "$root" "$logfile"; then return 0; fi
    log "dockerd with overlay2 did not start; using vfs"
    stop_dockerd
    rm -rf "$root"
    try_dockerd vfs "$root" "$logfile" || die "dockerd did not start; see $logfile"
}

try_dockerd() {
    local driver=$1 root=$2 logfile=$3 dir i
    mkdir -p "$root"
    dir=$(mktemp -d /tmp/alb-XXXXXX)
    BENCH_DOCKERD_DIRS+=("$dir")
    DOCKERD_DRIVER=$driver
    /usr/sbin/dockerd --storage-driver="$driver" --iptables=false --ip-masq=false --bridge=none \
        --data-root "$root" --exec-root "$dir/exec" --pidfile "$dir/pid" \
        -H "unix://$dir/docker.sock" </dev/null >>"$logfile" 2>&1 &
    DOCKERD_PID=$!
    DOCKERD_DIR=$dir
    BENCH_PIDS+=("$DOCKERD_PID")
    export DOCKER_HOST="unix://$dir/docker.sock"
    export DOCKER_CONFIG="$dir/cli-config"
    mkdir -p "$DOCKER_CONFIG"
    for i in $(seq 1 600); do
        if docker version >/dev/null 2>&1; then return 0; fi
        kill -0 "$DOCKERD_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_dockerd: stops the dockerd started last and the containerd it spawned.
stop_dockerd() {
    [[ -n ${DOCKERD_PID:-} ]] || return 0
    stop_pid "$DOCKERD_PID"
    reap_dir "$DOCKERD_DIR"
    rm -rf "$DOCKERD_DIR"
    DOCKERD_PID=
    unset DOCKER_HOST
}

# reap_dir DIR: kills (by pid) processes whose command line names DIR (dockerd's containerd).
reap_dir() {
    local dir=$1 pids i
    for i in $(seq 1 50); do
        pids=$(pgrep -f -- "$dir" || true)
        [[ -n $pids ]] || return 0
        if ((i < 30)); then kill -TERM $pids 2>/dev/null || true; else kill -KILL $pids 2>/dev/null || true; fi
        sleep 0.2
    done
}

bench_cleanup() {
    local pid dir
    for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
    for dir in "${BENCH_DOCKERD_DIRS[@]}"; do
        [[ -d $dir ]] && reap_dir "$dir"
        rm -rf "$dir"
    done
    BENCH_PIDS=()
}

# The Debian mirror apt already uses (first bookworm "main" source that is not -security).
debian_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -e $f ]] || continue
        uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && /Components:[^\n]*main/ && !/security/ {
                  for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i+1); exit } }' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -e $f ]] || continue
        uri=$(awk '$1 == "deb" && !/security/ {
                  for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1) ~ /^bookworm$/) { print $i; exit } } }' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    return 1
}
