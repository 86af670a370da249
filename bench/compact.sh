#!/usr/bin/env bash
# Compact bundles (issue 14, Benchmark): `save --compact` against the plain bundle, the
# registry's own gzip blobs and `zstd -19 --long=27` of the same content, in one run.
#
#   bash bench/compact.sh [--airlock PATH] [--skip-reference]
#
# Corpus (bench/realcorpus.py): three images of this machine's real files (Python's
# library, perl, Go's source tree, a slimmer Python layer that resembles the first,
# locales), about 260 MB of raw layer tars, every layer gzipped by Go 1.19's own
# compress/gzip at the default level (tests/go/gzipwrite, as Docker pushes) and pushed with
# `skopeo copy --preserve-digests` into a docker-registry on 127.0.0.1. Measured: bundle
# sizes (plain at zstd 3; compact at its default level, 12 and 19; compact as plain tar,
# to separate the encoder search from zstd), the reference (`zstd -19 --long=27 -T2` of
# the same entries, raw tars and small blobs, concatenated in image order: the layers as a
# plain bundle lists them) and, beside it, the same on the compact bundle's own tar stream
# (layers in bundle order: similar layers side by side, as airlock arranges them), the
# share of gzip layer bytes stored as raw tar + recipe, and wall time, CPU time and peak
# RSS (/usr/bin/time) of save, verify and push of the compact bundle against the plain
# one. Prints a Markdown table for bench/results.md. Every registry it starts is stopped
# on exit; the work dir (/var/tmp/airlock-compactbench-*) is removed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
command_line="bash bench/compact.sh${*:+ $*}"

airlock="$root/target/release/airlock" reference=1
while (($#)); do
    case $1 in
    --airlock) airlock=$(realpath "${2:?}"); shift 2 ;;
    --skip-reference) reference=0; shift ;;
    -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ -x $airlock ]] || die "no airlock binary at $airlock (cargo build --release --locked)"
go119=/usr/lib/go-1.19/bin/go
[[ -x $go119 ]] || die "Go 1.19 ($go119) is missing: apt-get install golang-go"
for t in skopeo zstd /usr/bin/time /usr/bin/docker-registry; do
    command -v "$t" >/dev/null || die "$t is missing"
done

work=$(mktemp -d /var/tmp/airlock-compactbench-XXXXXX)
cleanup() {
    local rc=$?
    bench_cleanup
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- corpus -------------------------------------------------------------------------
log "building gzipwrite with $($go119 version)"
GOCACHE="$work/gocache" GOPATH="$work/gopath" GO111MODULE=off GOTOOLCHAIN=local GOFLAGS= \
    "$go119" build -o "$work/gzipwrite" "$root/tests/go/gzipwrite/main.go"
log "corpus: tars of real files, gzipped by Go 1.19"
python3 "$here/realcorpus.py" "$work" "$work/gzipwrite"
start_registry "$work/registry" "$work/registry.log"
src="127.0.0.1:$REG_PORT"
: >"$work/list"
for img in python go python-slim; do
    skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$work/layout:$img:1" \
        "docker://$src/bench/$img:1"
    echo "$src/bench/$img:1" >>"$work/list"
done
gzip_bytes=$(find "$work/layout/blobs/sha256" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
raw_bytes=$(cat "$work"/raw/*.tar "$work/raw/small" | wc -c)
rm -rf "$work/raw"
layer_gzip_bytes=$(python3 - "$work/layout" <<'PY'
import json, os, sys
d = sys.argv[1]
seen = {}
for m in json.load(open(os.path.join(d, "index.json")))["manifests"]:
    man = json.load(open(os.path.join(d, "blobs/sha256", m["digest"][7:])))
    for l in man["layers"]:
        seen[l["digest"]] = l["size"]
print(sum(seen.values()))
PY
)
rm -rf "$work/layout"

# --- measurements -------------------------------------------------------------------
rows=()
# timed LABEL CMD...: wall seconds and peak RSS (MiB) into T_SECS / T_RSS.
timed() {
    local label=$1
    shift
    /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
        cat "$work/stderr" >&2
        die "$label failed"
    }
    read -r T_SECS T_RSS user sys <"$work/time"
    T_RSS=$((T_RSS / 1024))
    T_CPU=$(python3 -c "print(f'{$user + $sys:.1f}')")
    log "$label: ${T_SECS} s, cpu ${T_CPU} s, peak RSS ${T_RSS} MiB"
}
mbs() { python3 -c "print(f'{$1 / 1e6 / max($2, 0.001):.1f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }
A=("$airlock" --no-progress -q)

load_note="load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A size secs rss cpu
# compact-tar: a plain-tar compact bundle, no zstd at all: what finding the encoders and
# decompressing costs by itself.
for kind in plain compact compact-tar compact12 compact19; do
    ext=tar.zst
    case $kind in
    plain) extra=() ;;
    compact-tar) extra=(--compact) ext=tar ;;
    compact) extra=(--compact) ;;
    compact12) extra=(--compact --zstd-level 12) ;;
    compact19) extra=(--compact --zstd-level 19) ;;
    esac
    timed "save $kind" "${A[@]}" save -f "$work/list" -o "$work/$kind.$ext" "${extra[@]}"
    size[$kind]=$(stat -c %s "$work/$kind.$ext")
    secs[save-$kind]=$T_SECS rss[save-$kind]=$T_RSS cpu[save-$kind]=$T_CPU
done
for kind in plain compact; do
    timed "verify $kind" "${A[@]}" verify "$work/$kind.tar.zst"
    secs[verify-$kind]=$T_SECS rss[verify-$kind]=$T_RSS cpu[verify-$kind]=$T_CPU
    start_registry "$work/target-$kind" "$work/registry.log"
    timed "push $kind" "${A[@]}" push "$work/$kind.tar.zst" "127.0.0.1:$REG_PORT/mirror"
    secs[push-$kind]=$T_SECS rss[push-$kind]=$T_RSS cpu[push-$kind]=$T_CPU
    stop_pid "$REG_PID"
done
rebuilt=$(zstd -dc "$work/compact.tar.zst" | tar -xOf - airlock.json | python3 -c '
import json, sys
print(sum(c["size"] for c in json.load(sys.stdin).get("compact", [])))')

ref_size="" ref_secs="" ref_bundle=""
if ((reference)); then
    # The reference: the same entries (raw tars, small blobs, tar headers) concatenated in
    # image order, the layers as a plain bundle lists them, as an operator would tar them.
    log "reference: zstd -19 --long=27 -T2 of the same entries in image order (slow)"
    zstd -q -dc "$work/compact.tar.zst" >"$work/stream.tar"
    zstd -q -dc "$work/plain.tar.zst" | tar -xOf - airlock.json >"$work/plain-toc.json"
    python3 - "$work/stream.tar" "$work/plain-toc.json" "$work/image-order.tar" <<'PY'
import json, sys, tarfile
src, plain_toc, out = sys.argv[1:]
plain = json.load(open(plain_toc))
with tarfile.open(src) as t:
    members = t.getmembers()
    toc = json.load(t.extractfile("airlock.json"))
    raw = {c["digest"]: c["raw"] for c in toc.get("compact", [])}
    order = []
    for b in plain["blobs"]:
        name = "blobs/sha256/" + raw.get(b["digest"], b["digest"]).split(":")[1]
        if name not in order:
            order.append(name)
    rank = {n: i for i, n in enumerate(order)}
    blobs = sorted((m for m in members if m.name in rank), key=lambda m: rank[m.name])
    others = [m for m in members if m.name not in rank]
    assert len(blobs) == len(order), "the compact bundle lacks entries the plain one names"
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as o:
        for m in others + blobs:
            o.addfile(m, t.extractfile(m) if m.isfile() else None)
PY
    s=$(date +%s.%N)
    zstd -q -19 --long=27 -T2 -c "$work/image-order.tar" >"$work/ref.zst"
    e=$(date +%s.%N)
    ref_size=$(stat -c %s "$work/ref.zst")
    ref_secs=$(python3 -c "print(f'{$e - $s:.1f}')")
    log "reference in image order: $ref_size bytes in $ref_secs s"
    log "the same on the compact bundle's own tar stream (bundle order; slow)"
    zstd -q -19 --long=27 -T2 -c "$work/stream.tar" >"$work/ref-bundle.zst"
    ref_bundle=$(stat -c %s "$work/ref-bundle.zst")
    rm -f "$work/stream.tar" "$work/image-order.tar"
fi
load_note+=", after: $(cut -d' ' -f1-3 /proc/loadavg)"

{
    echo "Command: \`$command_line\` ($(date -u +%Y-%m-%dT%H:%MZ), airlock $(git -C "$root" rev-parse --short HEAD), $(nproc) cores, $load_note)"
    echo
    echo "Corpus: $raw_bytes bytes of raw layer tars and small blobs; $gzip_bytes bytes of unique blobs as the registry holds them (gzip layers: $layer_gzip_bytes)."
    echo
    echo "| what | bytes | × gzip blobs | × reference (image order) | × reference on bundle order | save wall s (MB/s raw) | save CPU s (MB/s raw per 2 CPU-s) | save peak RSS MiB |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    echo "| unique gzip blobs (registry) | $gzip_bytes | 1.000 | ${ref_size:+$(ratio "$gzip_bytes" "$ref_size")} | ${ref_bundle:+$(ratio "$gzip_bytes" "$ref_bundle")} | | | |"
    for kind in plain compact compact12 compact19 compact-tar; do
        case $kind in
        plain) label="plain bundle, zstd 3" ;;
        compact-tar) label="--compact to .tar (no zstd: encoder search + decompression only)" ;;
        compact) label="--compact, default level" ;;
        compact12) label="--compact --zstd-level 12" ;;
        compact19) label="--compact --zstd-level 19" ;;
        esac
        echo "| $label | ${size[$kind]} | $(ratio "${size[$kind]}" "$gzip_bytes") | ${ref_size:+$(ratio "${size[$kind]}" "$ref_size")} | ${ref_bundle:+$(ratio "${size[$kind]}" "$ref_bundle")} | ${secs[save-$kind]} ($(mbs "$raw_bytes" "${secs[save-$kind]}")) | ${cpu[save-$kind]} ($(mbs "$((2 * raw_bytes))" "${cpu[save-$kind]}")) | ${rss[save-$kind]} |"
    done
    if [[ -n $ref_size ]]; then
        echo "| reference: zstd -19 --long=27 -T2 of the same entries in image order | $ref_size | $(ratio "$ref_size" "$gzip_bytes") | 1.000 | $(ratio "$ref_size" "$ref_bundle") | $ref_secs ($(mbs "$raw_bytes" "$ref_secs")) | | |"
        echo "| zstd -19 --long=27 -T2 of the compact bundle's tar stream (bundle order) | $ref_bundle | $(ratio "$ref_bundle" "$gzip_bytes") | $(ratio "$ref_bundle" "$ref_size") | 1.000 | | | |"
    fi
    echo
    echo "Gzip layer bytes stored as raw tar + recipe: $rebuilt of $layer_gzip_bytes ($(python3 -c "print(f'{100 * $rebuilt / $layer_gzip_bytes:.1f}')") %)."
    echo
    echo "| inside | plain wall s | plain CPU s | plain peak RSS MiB | compact wall s (MB/s raw) | compact CPU s | compact peak RSS MiB |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for op in verify push; do
        echo "| $op | ${secs[$op-plain]} | ${cpu[$op-plain]} | ${rss[$op-plain]} | ${secs[$op-compact]} ($(mbs "$raw_bytes" "${secs[$op-compact]}")) | ${cpu[$op-compact]} | ${rss[$op-compact]} |"
    done
} >"$work/results.md"
cat "$work/results.md"
