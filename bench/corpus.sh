#!/usr/bin/env bash
# Builds the benchmark corpus for one size, once; bench/run.sh calls it.
#
#   bash bench/corpus.sh small|normal|large CACHE_DIR
#
# 1. A real Debian root filesystem: debootstrap --variant=minbase bookworm from the mirror
#    apt already uses (shared by every size: CACHE_DIR/rootfs.tar).
# 2. A private dockerd (Debian's 20.10; overlay2, or vfs where overlay2 fails) imports it as bench/base and builds, with
#    COPY-only Dockerfiles (no container runs), a python-like and a tools-like image of real
#    files from this machine and twelve apps on those shared bases, each app with a second
#    version one small layer apart; several tags per image.
# 3. `docker push` puts them into a docker-registry whose storage is CACHE_DIR/SIZE/registry
#    (so the layers are Go-gzip layers made by the engine), and multiarch.py adds one
#    two-platform index (bench/multi:1.0).
# 4. `docker save` of a few images (the load and docker-archive scenarios' input), the image
#    list and a summary; the dockerd and its data are then removed.
# Nothing is rebuilt when CACHE_DIR/SIZE/complete exists.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

size=${1:?usage: corpus.sh small|normal|large CACHE_DIR}
cache=${2:?usage: corpus.sh small|normal|large CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
out="$cache/$size"
[[ -e $out/complete ]] && { log "corpus $size: cached in $out"; exit 0; }

# Sizes. Apps get consecutive chunks of a pool of real files (see chunks.py); `large`
# gives every app a second chunk, doubling the apps' data.
case $size in
small)
    chunk_mb=4 chunks_per_app=1
    python_dirs=(/usr/lib/python3.11)
    python_opt=""
    tools_dirs=(/usr/lib/gcc)
    ;;
normal | large)
    chunk_mb=70 chunks_per_app=1
    [[ $size == large ]] && chunks_per_app=2
    python_dirs=(/usr/lib/python3.11 /usr/lib/python3)
    python_opt=$(ls -d "$HOME"/.pyenv/versions/3.12* 2>/dev/null | head -n 1 || true)
    tools_dirs=(/usr/lib/gcc /usr/lib/llvm-14)
    ;;
*) die "unknown size: $size (small, normal or large)" ;;
esac
# The pool the apps' data comes from: big directories of real files not used above.
pool=(/usr/lib/jvm /usr/lib/x86_64-linux-gnu "$HOME"/.rustup/toolchains /usr/share
    "$HOME"/.pyenv/versions/3.13.0 "$HOME"/.pyenv/versions/3.10.13 "$HOME"/.pyenv/versions/3.9.18
    /usr/libexec /usr/lib/node_modules)
apps=(01 02 03 04 05 06 07 08 09 10 11 12)
app_parent() { # apps 01-06 on python, 07-10 on tools, 11-12 on the base
    case $1 in
    0[1-6]) echo bench/python:3.11 ;;
    0[7-9] | 10) echo bench/tools:1.0 ;;
    *) echo bench/base:bookworm ;;
    esac
}
load_images=(bench/base:bookworm bench/python:3.11 bench/tools:1.0 bench/app01:1.0 bench/app01:1.1 bench/app07:1.0)

trap bench_cleanup EXIT
rm -rf "$out"
mkdir -p "$out/logs"

# 1. The Debian root filesystem.
if [[ ! -e $cache/rootfs.tar ]]; then
    mirror=$(debian_mirror) || die "no Debian bookworm mirror found in /etc/apt/sources.list(.d)"
    log "debootstrap --variant=minbase bookworm from $mirror"
    rm -rf "$cache/rootfs.tmp"
    debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $cache/debootstrap.log"
    tar --sort=name --numeric-owner -C "$cache/rootfs.tmp" -cf "$cache/rootfs.tar.tmp" .
    mv "$cache/rootfs.tar.tmp" "$cache/rootfs.tar"
    rm -rf "$cache/rootfs.tmp"
fi

# 2. Build the images (and push them, 3.).
start_registry "$out/registry" "$out/logs/registry.log"
reg="127.0.0.1:$REG_PORT"
start_dockerd "$cache/build-dockerd" "$out/logs/dockerd.log"
export DOCKER_BUILDKIT=0
ctx="$cache/build-ctx"
rm -rf "$ctx"
mkdir -p "$ctx"

build() { # build TAG DIR
    log "docker build -t $1"
    docker build -q -t "$1" "$2" >>"$out/logs/build.log" 2>&1 || die "docker build $1 failed; see $out/logs/build.log"
}
copy_tree() { # copy_tree DEST SRC... : real files, paths kept under DEST
    mkdir -p "$1"
    local dest=$1
    shift
    tar -C / -cf - "${@#/}" | tar -xf - -C "$dest"
}

log "docker import rootfs.tar as bench/base:bookworm"
docker import --change 'CMD ["/bin/bash"]' "$cache/rootfs.tar" bench/base:bookworm >>"$out/logs/build.log"

mkdir -p "$ctx/python"
copy_tree "$ctx/python/stdlib" "${python_dirs[@]}"
{
    echo "FROM bench/base:bookworm"
    echo "COPY stdlib/ /"
    if [[ -n $python_opt ]]; then
        copy_tree "$ctx/python/opt" "$python_opt"
        echo "COPY opt/${python_opt#/} /opt/python/"
        echo 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    fi
    echo 'CMD ["python3"]'
} >"$ctx/python/Dockerfile"
build bench/python:3.11 "$ctx/python"

mkdir -p "$ctx/tools"
{
    echo "FROM bench/base:bookworm"
    for d in "${tools_dirs[@]}"; do
        copy_tree "$ctx/tools/$(basename "$d")" "$d"
        echo "COPY $(basename "$d")/ /"
    done
} >"$ctx/tools/Dockerfile"
build bench/tools:1.0 "$ctx/tools"
rm -rf "$ctx/python" "$ctx/tools"

# 3. Tags and push (as the images are built, so that apps can be removed after their push).
tags=()
push_tags() {
    local t
    for t in "$@"; do
        log "docker push $reg/$t"
        docker tag "$t" "$reg/$t"
        docker push "$reg/$t" >>"$out/logs/push.log" 2>&1 || die "docker push $t failed; see $out/logs/push.log"
        tags+=("$t")
    done
}
docker tag bench/base:bookworm bench/base:latest
docker tag bench/python:3.11 bench/python:latest
docker tag bench/tools:1.0 bench/tools:latest
push_tags bench/base:bookworm bench/base:latest bench/python:3.11 bench/python:latest bench/tools:1.0 bench/tools:latest

log "splitting the file pool into ${#apps[@]} x $chunks_per_app chunks of $chunk_mb MB"
python3 "$here/chunks.py" --chunk-bytes $((chunk_mb * 1000 * 1000)) \
    --chunks $((${#apps[@]} * chunks_per_app)) --out "$ctx/chunks" "${pool[@]}" >>"$out/logs/build.log"
for n in "${apps[@]}"; do
    d="$ctx/app$n"
    mkdir -p "$d/data"
    tar --null -T "$ctx/chunks/chunk-$n.lst" -cf - 2>/dev/null | tar -xf - -C "$d/data"
    printf '{"app":"app%s","version":"1.0","parent":"%s"}\n' "$n" "$(app_parent "$n")" >"$d/app.json"
    {
        echo "FROM $(app_parent "$n")"
        echo "COPY data/ /opt/app$n/"
        if ((chunks_per_app == 2)); then
            mkdir -p "$d/data2"
            tar --null -T "$ctx/chunks/chunk-$((10#$n + ${#apps[@]})).lst" -cf - 2>/dev/null | tar -xf - -C "$d/data2"
            echo "COPY data2/ /opt/app$n/more/"
        fi
        echo "COPY app.json /etc/app$n.json"
        echo "LABEL org.opencontainers.image.version=1.0"
    } >"$d/Dockerfile"
    build "bench/app$n:1.0" "$d"
    rm -rf "$d"
    # The near-duplicate: one small layer more.
    mkdir -p "$d"
    printf 'app%s 1.1\n' "$n" >"$d/VERSION"
    printf 'FROM bench/app%s:1.0\nCOPY VERSION /opt/app%s/VERSION\nLABEL org.opencontainers.image.version=1.1\n' "$n" "$n" >"$d/Dockerfile"
    build "bench/app$n:1.1" "$d"
    rm -rf "$d"
    docker tag "bench/app$n:1.1" "bench/app$n:latest"
    push_tags "bench/app$n:1.0" "bench/app$n:1.1" "bench/app$n:latest"
    # (vfs keeps a full copy of the file system per layer): drop what docker save won't need.
    if [[ " ${load_images[*]} " != *" bench/app$n:1.0 "* ]]; then
        for t in 1.0 1.1 latest; do docker rmi "bench/app$n:$t" "$reg/bench/app$n:$t" >/dev/null; done
    fi
done
log "multi-arch index bench/multi:1.0 (linux/amd64 + linux/arm64/v8, from bench/app12:1.0)"
python3 "$here/multiarch.py" "http://$reg" bench/app12:1.0 bench/multi:1.0 >>"$out/logs/build.log"
tags+=(bench/multi:1.0)
printf '%s\n' "${tags[@]}" >"$out/images.txt"
printf '%s\n' "${load_images[@]}" >"$out/load-images.txt"

# 4. docker save of the load subset (uncompressed layers, Docker 20.10's format).
log "docker save ${load_images[*]}"
docker save -o "$out/docker-save.tar" "${load_images[@]}"

# Summary: unique blobs in the registry (every layer, config, manifest and index once).
blob_bytes=$(find "$out/registry/docker/registry/v2/blobs" -name data -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
blob_count=$(find "$out/registry/docker/registry/v2/blobs" -name data -type f | wc -l)
layer_stats=$(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -v '^127' | sort || true)
{
    echo "size=$size"
    echo "blob_bytes=$blob_bytes"
    echo "blob_count=$blob_count"
    echo "tags=${#tags[@]}"
    echo "storage_driver=$DOCKERD_DRIVER"
    echo "docker_save_bytes=$(stat -c %s "$out/docker-save.tar")"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$out/corpus.env"
printf '%s\n' "$layer_stats" >"$out/local-sizes.txt"

stop_dockerd
rm -rf "$cache/build-dockerd" "$ctx"
touch "$out/complete"
log "corpus $size: ${#tags[@]} tags, $blob_count unique blobs, $((blob_bytes / 1000000)) MB"
