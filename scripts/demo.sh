#!/usr/bin/env bash
# The README's MAIN-JOB command: the whole trip on the shipped fixtures, offline.
#
#   bash scripts/demo.sh
#
# Needs only a Rust toolchain and a C compiler (gcc, libc6-dev): no network, no
# registry, no Docker. Builds airlock, saves every image of the OCI layout fixtures/oci into a zstd bundle and a plain tar
# bundle under target/demo/, verifies both (every byte rehashed), lists them, and
# shows that a bundle with one flipped byte fails verification. Exits non-zero on any
# failure. AIRLOCK_DEMO_PROFILE=dev builds a debug binary instead of a release one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile="${AIRLOCK_DEMO_PROFILE:-release}"
case $profile in
dev) bindir=debug ;;
*) bindir=$profile ;;
esac
echo "== building airlock ($profile)"
cargo build --locked --profile "$profile" --bin airlock
airlock="$PWD/target/$bindir/airlock"
out="target/demo"
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "airlock save oci:fixtures/oci -o $out/demo.tar.zst"
"$airlock" --no-progress save oci:fixtures/oci -o "$out/demo.tar.zst"
step "airlock verify $out/demo.tar.zst"
"$airlock" --no-progress verify "$out/demo.tar.zst"
step "airlock ls $out/demo.tar.zst"
"$airlock" ls "$out/demo.tar.zst"

step "airlock save oci:fixtures/oci -o $out/demo.tar (uncompressed: also a docker load file)"
"$airlock" --no-progress save oci:fixtures/oci -o "$out/demo.tar"
step "airlock verify --json $out/demo.tar"
"$airlock" --no-progress verify --json "$out/demo.tar" | tee "$out/verify.json"
echo
step "airlock ls --json $out/demo.tar"
"$airlock" ls --json "$out/demo.tar" | tee "$out/ls.json"
echo

step "the bundle is a plain tar: its first entries"
# (read the whole listing, then cut: `tar | head` would die of SIGPIPE under pipefail)
listing=$(tar -tf "$out/demo.tar")
printf '%s\n' "$listing" | sed -n 1,8p

# A damaged copy must fail: flip one byte in the middle of the largest blob (a
# layer), found with tar's own block numbers, then verify must exit 1.
step "a copy with one flipped byte must fail verify"
cp "$out/demo.tar" "$out/damaged.tar"
read -r block size name < <(tar -tvR -f "$out/damaged.tar" |
    awk '$8 ~ /^(\.\/)?blobs\// { sub(":", "", $2); print $2, $5, $8 }' | sort -k2,2n | tail -n 1)
offset=$(((block + 1) * 512 + size / 2))
echo "flipping the byte at offset $offset, inside $name ($size bytes)"
byte=$(od -An -tu1 -j "$offset" -N1 "$out/damaged.tar" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" |
    dd of="$out/damaged.tar" bs=1 seek="$offset" count=1 conv=notrunc status=none
cmp -s "$out/demo.tar" "$out/damaged.tar" && { echo "demo: could not damage the copy" >&2; exit 1; }
set +e
"$airlock" --no-progress verify "$out/damaged.tar"
code=$?
set -e
if [[ $code -ne 1 ]]; then
    echo "demo: FAILED: verify of a damaged bundle exited $code, expected 1" >&2
    exit 1
fi
echo "(verify exited 1, as it must)"

step "demo ok: bundles in $out/"
ls -l "$out"
