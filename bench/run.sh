#!/usr/bin/env bash
# airlock's benchmark harness (issue 5): airlock against skopeo, sha256sum, gzip and Docker,
# side by side on one real corpus, in one run. See bench/README.md.
#
#   bash bench/run.sh [--size normal|large|small] [--runs N] [--fresh] [--warm]
#                     [--only save,push,push-again,load,docker-archive,verify] [--no-scaling]
#                     [--airlock PATH]   (use this binary instead of building target/release/airlock)
#                     [--before PATH]    (an earlier airlock, e.g. main's: a third save side, same run)
#
# As root on Debian: installs what is missing (debootstrap, docker.io, docker-registry,
# skopeo, zstd, time, pigz), builds a release airlock, builds the corpus once into
# bench/cache/SIZE (bench/corpus.sh; --fresh rebuilds it), runs every scenario with the
# airlock and peer runs alternating (the order flips every run), and writes bench/results.md
# (bench/report.py). Every registry and dockerd it starts is stopped on exit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
command_line="bash bench/run.sh${*:+ $*}"

size=normal runs=3 fresh=0 warm=0 scaling=1 AIRLOCK="" BEFORE=""
only="save,push,push-again,load,docker-archive,verify"
while (($#)); do
    case $1 in
    --size) size=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --warm) warm=1; shift ;;
    --only) only=${2:?}; shift 2 ;;
    --no-scaling) scaling=0; shift ;;
    --airlock) AIRLOCK=$(realpath "${2:?}"); shift 2 ;;
    --before) BEFORE=$(realpath "${2:?}"); shift 2 ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
case $size in small | normal | large) ;; *) die "--size: small, normal or large" ;; esac
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs: a positive number"
[[ $(id -u) -eq 0 ]] || die "run as root (dockerd, debootstrap and apt need it)"
wants() { [[ ,$only, == *,$1,* ]]; }

# --- 1. Tools -------------------------------------------------------------------------
declare -A tools=(
    [/usr/sbin/debootstrap]=debootstrap [/usr/sbin/dockerd]=docker.io [/usr/bin/containerd]=docker.io
    [/usr/bin/docker-registry]=docker-registry [/usr/bin/skopeo]=skopeo [/usr/bin/zstd]=zstd
    [/usr/bin/time]=time [/usr/bin/pigz]=pigz [/usr/bin/curl]=curl [/usr/bin/python3]=python3
)
missing=()
for t in "${!tools[@]}"; do [[ -e $t ]] || missing+=("${tools[$t]}"); done
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
if ((${#missing[@]})); then
    log "installing: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
    # Keep package scripts from starting services (a system dockerd or registry).
    policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null >/dev/null
    apt-get install -y -q --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) </dev/null >/dev/null
    ((made_policy)) && rm -f "$policy"
fi

# --- 2. airlock ----------------------------------------------------------------------
if [[ -z $AIRLOCK ]]; then
    log "cargo build --release --locked"
    mkdir -p "$here/cache"
    (cd "$root" && cargo build --release --locked --bin airlock) >"$here/cache/cargo-build.log" 2>&1 ||
        { tail -n 30 "$here/cache/cargo-build.log" >&2; die "cargo build --release failed"; }
    AIRLOCK="$root/target/release/airlock"
fi
[[ -x $AIRLOCK ]] || die "no airlock binary at $AIRLOCK"

# --- 3. Corpus -----------------------------------------------------------------------
cache="$here/cache"
other=""
if ((scaling)); then
    case $size in normal) other=large ;; large) other=normal ;; esac
fi
if ((fresh)); then rm -rf "$cache/$size" "$cache/rootfs.tar" ${other:+"$cache/$other"}; fi
bash "$here/corpus.sh" "$size" "$cache"
[[ -n $other ]] && bash "$here/corpus.sh" "$other" "$cache"

# --- 4. The run ----------------------------------------------------------------------
run="$cache/run-$size"
rm -rf "$run"
mkdir -p "$run/cmds" "$run/logs" "$run/work"
WORK="$run/work"
cleanup() {
    local rc=$?
    bench_cleanup
    # The bulky outputs go; logs, commands and measurements stay in $run.
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cold=0
if ((!warm)) && sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then cold=1; fi
times="$run/times.tsv"
facts="$run/facts.env"
: >"$times"
: >"$facts"
fact() { printf '%s=%s\n' "$1" "$2" >>"$facts"; }
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command=$command_line"
    echo "size=$size"
    echo "runs=$runs"
    echo "cold=$cold"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel=$(uname -sr)"
    echo "mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "airlock=$("$AIRLOCK" --version) ($(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$root" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+local changes'))"
    echo "skopeo=$(skopeo --version)"
    echo "dockerd=$(/usr/sbin/dockerd --version)"
    echo "docker_registry=$(/usr/bin/docker-registry --version 2>&1 | head -n 1)"
    echo "zstd=$(zstd --version)"
    echo "gzip=$(gzip --version | head -n 1)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$run/meta.env"

# Other people's compilers running during a measurement are noted in results.md.
busy() { pgrep -c -x 'rustc|cc1|cc1plus|cargo|ld|clippy-driver' 2>/dev/null || true; }

# measure SCENARIO SIDE RUN: times $run/cmds/SCENARIO-SIDE.sh under /usr/bin/time -v, and
# counts the bytes it wrote (bench/iowrap.py: wchar of the script and everything it ran).
measure() {
    local scen=$1 side=$2 r=$3 script="$run/cmds/$1-$2.sh" tf="$run/logs/$1-$2-$3.time"
    local lf="$run/logs/$1-$2-$3.log" iof="$run/logs/$1-$2-$3.io" rc=0 t0 t1 wall rss b0 b1 wchar
    if ((cold)); then sync; echo 3 >/proc/sys/vm/drop_caches; fi
    b0=$(busy)
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$tf" python3 "$here/iowrap.py" "$iof" -- bash "$script" >"$lf" 2>&1 || rc=$?
    t1=$(date +%s%N)
    b1=$(busy)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tf")
    wchar=$(sed -n 's/^wchar=//p' "$iof" 2>/dev/null)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$side" "$r" "$wall" "${rss:-0}" "$rc" "$((b0 > b1 ? b0 : b1))" "${wchar:-0}" >>"$times"
    if ((rc)); then
        log "FAILED: $scen $side run $r (exit $rc); log tail:"
        tail -n 5 "$lf" >&2
    else
        log "$scen $side run $r: ${wall}s, max RSS $((${rss:-0} / 1024)) MiB"
    fi
}

# cmd SCENARIO SIDE <<'EOF' ... : the exact script a side runs (also shown in results.md).
cmd() { { echo 'set -euo pipefail'; cat; } >"$run/cmds/$1-$2.sh"; }

# scenario NAME SIDE...: runs every side $runs times, the order flipping every run; calls
# pre_NAME SIDE RUN / post_NAME SIDE RUN (untimed, '-' in NAME spelled '_') around each when they exist.
scenario() {
    local name=$1 hook=${1//-/_} r side order
    shift
    log "== $name: ${*} ($runs runs)"
    for ((r = 1; r <= runs; r++)); do
        order=("$@")
        if ((r % 2 == 0)); then
            order=()
            for side in "$@"; do order=("$side" "${order[@]}"); done
        fi
        for side in "${order[@]}"; do
            if declare -F "pre_$hook" >/dev/null; then "pre_$hook" "$side" "$r"; fi
            measure "$name" "$side" "$r"
            if declare -F "post_$hook" >/dev/null; then "post_$hook" "$side" "$r"; fi
        done
    done
}

# The environment every command script sees.
corpus="$cache/$size"
start_registry "$corpus/registry" "$run/logs/source-registry.log"
SRC_PID=$REG_PID
export AIRLOCK BEFORE WORK SRC="127.0.0.1:$REG_PORT"
export IMAGES="$corpus/images.txt" LOAD_IMAGES="$corpus/load-images.txt" DOCKER_SAVE="$corpus/docker-save.tar"
export LIST="$run/images.list" BUNDLE="$WORK/bundle.tar.zst"
sed "s|^|$SRC/|" "$IMAGES" >"$LIST"
cp "$IMAGES" "$run/images.txt"
cp "$corpus/corpus.env" "$run/corpus.env"
[[ -n $other ]] && cp "$cache/$other/corpus.env" "$run/corpus-$other.env"

# --- save: registry -> bundle.tar.zst ---
cmd save airlock <<'EOF'
"$AIRLOCK" --no-progress -q save -f "$LIST" -o "$WORK/save-airlock.tar.zst"
EOF
cmd save skopeo <<'EOF'
# every image (and the index with all its platforms) into one OCI layout, then tar | zstd -T0
while read -r ref; do
    skopeo copy -q --all --src-tls-verify=false "docker://$SRC/$ref" "oci:$WORK/save-oci:$ref"
done <"$IMAGES"
tar -cf - -C "$WORK/save-oci" . | zstd -q -T0 -o "$WORK/save-skopeo.tar.zst"
EOF
cmd save airlock-before <<'EOF'
"$BEFORE" --no-progress -q save -f "$LIST" -o "$WORK/save-airlock-before.tar.zst"
EOF
pre_save() { rm -rf "$WORK/save-oci" "$WORK/save-$1.tar.zst"; }
post_save() {
    local f="$WORK/save-$1.tar.zst"
    [[ -e $f ]] && fact "save_${1}_bytes" "$(stat -c %s "$f")"
    if [[ $1 == airlock && -e $f ]]; then mv "$f" "$BUNDLE"; fi
    rm -rf "$WORK/save-oci" "$f"
}
if wants save; then scenario save airlock skopeo ${BEFORE:+airlock-before}; fi
if [[ ! -e $BUNDLE ]]; then
    log "making the bundle for the other scenarios (untimed)"
    "$AIRLOCK" --no-progress -q save -f "$LIST" -o "$BUNDLE"
fi
fact bundle_bytes "$(stat -c %s "$BUNDLE")"
"$AIRLOCK" ls --json "$BUNDLE" >"$run/ls.json"

# --- push: bundle -> an empty registry, and again into a full one ---
if wants push || wants push-again; then
    log "preparing the skopeo side's dir: copies (untimed): skopeo sync --src docker --dest dir"
    mkdir -p "$WORK/dircopy"
    cut -d: -f1 "$IMAGES" | sort -u | while read -r repo; do
        skopeo sync --all --src docker --dest dir --src-tls-verify=false "$SRC/$repo" "$WORK/dircopy" \
            >>"$run/logs/dircopy.log" 2>&1
    done
    export DIRCOPY="$WORK/dircopy"
    fact dircopy_bytes "$(du -sb "$DIRCOPY" | cut -f1)"
fi
cmd push airlock <<'EOF'
"$AIRLOCK" --no-progress -q push --json "$BUNDLE" "$TARGET" >"$WORK/push.json"
EOF
cmd push skopeo <<'EOF'
skopeo sync --all --src dir --dest docker --dest-tls-verify=false "$DIRCOPY" "$TARGET/bench"
EOF
cp "$run/cmds/push-airlock.sh" "$run/cmds/push-again-airlock.sh"
cp "$run/cmds/push-skopeo.sh" "$run/cmds/push-again-skopeo.sh"
catalog_count() { curl -fs "http://$TARGET/v2/_catalog?n=1000" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["repositories"]))'; }
expected_repos=$(cut -d: -f1 "$IMAGES" | sort -u | wc -l)
pre_push() {
    rm -rf "$WORK/push-registry"
    start_registry "$WORK/push-registry" "$run/logs/push-registry.log"
    export TARGET="127.0.0.1:$REG_PORT"
    PUSH_PID=$REG_PID
}
post_push() {
    local n
    n=$(catalog_count || echo 0)
    ((n == expected_repos)) || log "WARNING: push $1 run $2: the target lists $n repositories, not $expected_repos"
    fact "push_${1}_${2}_repos" "$n"
    stop_pid "$PUSH_PID"
    rm -rf "$WORK/push-registry"
}
if wants push; then scenario push airlock skopeo; fi

post_push_again() {
    if [[ $1 == airlock ]]; then
        fact "push_again_uploaded_bytes_$2" "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["blobs"]["uploaded_bytes"])' "$WORK/push.json" 2>/dev/null || echo '?')"
    fi
}
if wants push-again; then
    log "filling a registry for push-again (untimed, airlock push)"
    start_registry "$WORK/full-registry" "$run/logs/full-registry.log"
    export TARGET="127.0.0.1:$REG_PORT"
    FULL_PID=$REG_PID
    "$AIRLOCK" --no-progress -q push "$BUNDLE" "$TARGET"
    scenario push-again airlock skopeo
    stop_pid "$FULL_PID"
    rm -rf "$WORK/full-registry"
fi

# --- load: bundle -> Docker ---
cmd load airlock <<'EOF'
args=()
while read -r ref; do args+=(--image "$SRC/$ref"); done <"$LOAD_IMAGES"
"$AIRLOCK" --no-progress -q load "$BUNDLE" "${args[@]}"
EOF
cmd load docker <<'EOF'
# the same images, from `docker save` of the engine that built them (uncompressed layers)
docker load -q -i "$DOCKER_SAVE"
EOF
pre_load() {
    docker image ls -q | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
    docker image prune -a -f >/dev/null
    [[ -z $(docker image ls -q) ]] || die "could not empty the engine before load"
}
post_load() {
    fact "load_${1}_${2}_images" "$(docker image ls -q | sort -u | wc -l)"
}
if wants load; then
    start_dockerd "$WORK/load-dockerd" "$run/logs/load-dockerd.log"
    fact load_storage_driver "$DOCKERD_DRIVER"
    scenario load airlock docker
    stop_dockerd
    rm -rf "$WORK/load-dockerd"
fi

# --- save from docker-archive (uncompressed layers) ---
cmd docker-archive airlock <<'EOF'
"$AIRLOCK" --no-progress -q save "docker-archive:$DOCKER_SAVE" -o "$WORK/archive-airlock.tar"
EOF
cmd docker-archive gzip <<'EOF'
# the same layers, one after another, single-threaded gzip -6
mkdir -p "$WORK/archive-gzip"
for layer in "$WORK"/layers/*/layer.tar; do
    [[ -L $layer ]] && continue # docker save links a layer it already holds
    gzip -6 -c "$layer" >"$WORK/archive-gzip/$(basename "$(dirname "$layer")").gz"
done
EOF
cmd docker-archive pigz2 <<'EOF'
# for reference: the same layers with pigz on both cores
mkdir -p "$WORK/archive-gzip"
for layer in "$WORK"/layers/*/layer.tar; do
    [[ -L $layer ]] && continue
    pigz -6 -p 2 -c "$layer" >"$WORK/archive-gzip/$(basename "$(dirname "$layer")").gz"
done
EOF
pre_docker_archive() { rm -rf "$WORK/archive-gzip" "$WORK/archive-airlock.tar"; }
post_docker_archive() {
    [[ $1 == airlock && -e $WORK/archive-airlock.tar ]] && fact archive_airlock_bytes "$(stat -c %s "$WORK/archive-airlock.tar")"
    [[ $1 == gzip && -d $WORK/archive-gzip ]] && fact archive_gzip_bytes "$(du -sb "$WORK/archive-gzip" | cut -f1)"
    rm -rf "$WORK/archive-gzip" "$WORK/archive-airlock.tar"
}
if wants docker-archive; then
    mkdir -p "$WORK/layers"
    tar -xf "$DOCKER_SAVE" -C "$WORK/layers" --wildcards '*/layer.tar'
    fact archive_layer_bytes "$(find "$WORK/layers" -type f -name layer.tar -printf '%s\n' | awk '{ s += $1 } END { print s }')"
    fact archive_layers "$(find "$WORK/layers" -type f -name layer.tar | wc -l)"
    scenario docker-archive airlock gzip pigz2
    rm -rf "$WORK/layers"
fi

# --- verify ---
cmd verify airlock <<'EOF'
"$AIRLOCK" --no-progress -q verify "$BUNDLE"
EOF
cmd verify sha256sum <<'EOF'
sha256sum "$BUNDLE"
EOF
cmd verify zstd-sha256sum <<'EOF'
zstd -dc "$BUNDLE" | sha256sum
EOF
if wants verify; then scenario verify airlock sha256sum zstd-sha256sum; fi

# --- peak memory at the other size (one run each of save, push, verify) ---
if [[ -n $other ]]; then
    log "== memory at size $other: save, push, verify (airlock, 1 run each)"
    stop_pid "$SRC_PID"
    start_registry "$cache/$other/registry" "$run/logs/source-registry-$other.log"
    export SRC="127.0.0.1:$REG_PORT" LIST="$run/images-$other.list" BUNDLE="$WORK/bundle-$other.tar.zst"
    sed "s|^|$SRC/|" "$cache/$other/images.txt" >"$LIST"
    cmd "mem-$other-save" airlock <<'EOF'
"$AIRLOCK" --no-progress -q save -f "$LIST" -o "$BUNDLE"
EOF
    cmd "mem-$other-push" airlock <<'EOF'
"$AIRLOCK" --no-progress -q push --json "$BUNDLE" "$TARGET" >"$WORK/push.json"
EOF
    cmd "mem-$other-verify" airlock <<'EOF'
"$AIRLOCK" --no-progress -q verify "$BUNDLE"
EOF
    rm -f "$BUNDLE"
    measure "mem-$other-save" airlock 1
    fact "bundle_${other}_bytes" "$(stat -c %s "$BUNDLE" 2>/dev/null || echo 0)"
    pre_push airlock 1
    measure "mem-$other-push" airlock 1
    stop_pid "$PUSH_PID"
    rm -rf "$WORK/push-registry"
    measure "mem-$other-verify" airlock 1
    rm -f "$BUNDLE"
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$run/meta.env"
python3 "$here/report.py" "$run" "$here/results.md"
cat "$here/results.md"
