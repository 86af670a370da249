#!/usr/bin/env bash
# Bytes written to the output medium by `airlock save` (issue 10), two binaries side by side.
#
#   sudo bash bench/onewrite.sh --before OLD_AIRLOCK [--after NEW_AIRLOCK] [--runs N]
#        [--images N] [--layers MIB,MIB,...] [--format tar.zst|tar|split] [--dirty-mib N]
#
# A synthetic registry corpus (bench/synth.py: IMAGES images, one random gzip layer per
# size in --layers, default 8 images of 1,8,24 MiB) is pushed into a docker-registry on
# 127.0.0.1. The output goes to its own ext4 file system on a loop device, with the
# kernel's dirty-page limit lowered (vm.dirty_bytes, default 16 MiB; restored on exit) so
# that writeback happens as it does for a bundle larger than RAM. Each run is timed under
# /usr/bin/time -v (wall, peak RSS) and bench/iowrap.py (wchar of the process, bytes that
# reached the loop device); sides alternate, the order flipping every run, page cache
# dropped before each. Prints one line per run and the medians, with the ratios
# written/bundle and time after/before. Needs root (mount, losetup, sysctl).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

before="" after="$root/target/release/airlock" runs=3 images=8 layers=1,8,24 format=tar.zst dirty_mib=16
while (($#)); do
    case $1 in
    --before) before=$(realpath "${2:?}"); shift 2 ;;
    --after) after=$(realpath "${2:?}"); shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --images) images=${2:?}; shift 2 ;;
    --layers) layers=${2:?}; shift 2 ;;
    --format) format=${2:?}; shift 2 ;;
    --dirty-mib) dirty_mib=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ -x $after ]] || die "no airlock binary at $after (cargo build --release)"
[[ -z $before || -x $before ]] || die "no airlock binary at $before"
[[ $(id -u) -eq 0 ]] || die "run as root (mount, losetup, sysctl)"

work=$(mktemp -d /var/tmp/airlock-onewrite-XXXXXX)
mnt="$work/out" dev="" old_dirty=$(cat /proc/sys/vm/dirty_bytes) old_bg=$(cat /proc/sys/vm/dirty_background_bytes)
old_ratio=$(cat /proc/sys/vm/dirty_ratio) old_bg_ratio=$(cat /proc/sys/vm/dirty_background_ratio)
cleanup() {
    local rc=$?
    # Writing a *_bytes value of 0 does not restore the ratio; write whichever was in use.
    if ((old_dirty)); then echo "$old_dirty" >/proc/sys/vm/dirty_bytes; else echo "$old_ratio" >/proc/sys/vm/dirty_ratio; fi
    if ((old_bg)); then echo "$old_bg" >/proc/sys/vm/dirty_background_bytes; else echo "$old_bg_ratio" >/proc/sys/vm/dirty_background_ratio; fi
    mountpoint -q "$mnt" && umount "$mnt"
    [[ -n $dev ]] && losetup -d "$dev"
    bench_cleanup
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

synth_registry "$work" "$images" "$layers"
corpus_bytes=$(du -sb "$work/layout/blobs" | cut -f1)
rm -rf "$work/layout"

# The output file system: room for the bundle twice over (what staging beside it needs).
img_mib=$((corpus_bytes * 2 / 1048576 + 256))
truncate -s "${img_mib}M" "$work/out.img"
mkfs.ext4 -q -F "$work/out.img"
dev=$(losetup -f --show "$work/out.img")
mkdir -p "$mnt"
mount "$dev" "$mnt"
echo $((dirty_mib << 20)) >/proc/sys/vm/dirty_bytes
echo $((dirty_mib << 18)) >/proc/sys/vm/dirty_background_bytes
log "output: ext4 on $dev (${img_mib} MiB), vm.dirty_bytes $((dirty_mib << 20))"

out="$mnt/b.tar.zst" extra=()
case $format in
tar) out="$mnt/b.tar" ;;
tar.zst) ;;
split) extra=(--split 64M) ;;
*) die "--format: tar, tar.zst or split" ;;
esac

sides=(after)
[[ -n $before ]] && sides=(before after)
results="$work/results.tsv"
: >"$results"
one() {
    local side=$1 r=$2 bin rc=0 t0 t1
    bin=$after
    [[ $side == before ]] && bin=$before
    rm -rf "$mnt"/* "$mnt"/.[!.]* 2>/dev/null || true
    sync
    echo 3 >/proc/sys/vm/drop_caches
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$work/time" python3 "$here/iowrap.py" "$work/io" --device "${dev#/dev/}" -- \
        "$bin" --no-progress -q save -f "$work/list" -o "$out" "${extra[@]}" >"$work/log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    ((rc == 0)) || { tail -n 5 "$work/log" >&2; die "$side run $r failed (exit $rc)"; }
    local size rss wchar devb
    size=$(find "$mnt" -maxdepth 1 -type f -name 'b.tar*' ! -name '*.parts.json' -printf '%s\n' | awk '{ s += $1 } END { print s }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time")
    wchar=$(sed -n 's/^wchar=//p' "$work/io")
    devb=$(sed -n 's/^device_bytes=//p' "$work/io")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$side" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')" \
        "$rss" "$size" "$wchar" "$devb" >>"$results"
    log "$(tail -n 1 "$results")"
}
for ((r = 1; r <= runs; r++)); do
    order=("${sides[@]}")
    ((r % 2 == 0)) && order=($(printf '%s\n' "${sides[@]}" | tac))
    for side in "${order[@]}"; do one "$side" "$r"; done
done

python3 - "$results" "$format" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
print(f"\nformat {sys.argv[2]}; one line per run, then medians")
print("| side | run | save s | peak RSS MB | bundle MiB | wchar MiB | wchar/bundle | device MiB | device/bundle |")
print("|---|---|---|---|---|---|---|---|---|")
med = {}
for side, r, wall, rss, size, wchar, dev in rows:
    wall, rss, size, wchar, dev = float(wall), int(rss) * 1024, int(size), int(wchar), int(dev)
    med.setdefault(side, []).append((wall, rss, size, wchar, dev))
    print(f"| {side} | {r} | {wall:.2f} | {rss / 1e6:.1f} | {size / 2**20:.1f} | {wchar / 2**20:.1f} | {wchar / size:.3f} | {dev / 2**20:.1f} | {dev / size:.3f} |")
m = {s: [statistics.median(c) for c in zip(*v)] for s, v in med.items()}
for s, (wall, rss, size, wchar, dev) in m.items():
    print(f"| **{s}** | median | {wall:.2f} | {rss / 1e6:.1f} | {size / 2**20:.1f} | {wchar / 2**20:.1f} | {wchar / size:.3f} | {dev / 2**20:.1f} | {dev / size:.3f} |")
if "before" in m and "after" in m:
    print(f"\nsave time after/before: {m['after'][0] / m['before'][0]:.2f}x")
PY
