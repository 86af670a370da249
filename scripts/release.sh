#!/usr/bin/env bash
# The release binary: one file that runs on any Linux with glibc 2.17 or newer
# (RHEL/CentOS 7, RHEL/Rocky 8 and 9, Debian 9+, Ubuntu 16.04+, SLES 12+).
#
#   bash scripts/release.sh [--arch x86_64|aarch64] [OUTDIR]      (OUTDIR defaults to dist/)
#
# Builds with `cargo zigbuild --release --target <arch>-unknown-linux-gnu.2.17`: zig
# links against glibc 2.17's symbol versions, so the binary asks for nothing newer.
# It stays dynamically linked against the host's own glibc on purpose: host names are
# then resolved by that glibc with its NSS setup (/etc/nsswitch.conf, /etc/hosts,
# DNS, sssd, ...), exactly as every other program on the machine does. TLS is rustls
# (no OpenSSL); the trust store is found at run time (see the README, "Getting
# airlock into the enclave").
#
# Writes OUTDIR/airlock-<version>-<arch>-linux and OUTDIR/SHA256SUMS (sha256sum
# format, one line per airlock binary in OUTDIR), then checks the binary and fails
# loudly when
#   - it needs a GLIBC_ symbol version above 2.17, or
#   - it needs a shared library other than libc, libm, libpthread, libdl, librt,
#     ld-linux and libgcc_s (the ones every glibc system has), or
#   - it is not an ELF executable for the requested architecture, or (x86_64 only)
#     `--version` does not print the crate's version.
# `release.sh --check FILE` runs only these checks on FILE (e.g. the normal build,
# which fails them: it needs the build host's glibc).
# Prints the size, the glibc floor, the libraries needed and the build time.
#
# Needs: the Rust toolchain with the std of the target (x86_64-unknown-linux-gnu is
# the host's; for aarch64 `rustup target add aarch64-unknown-linux-gnu`, which this
# script tries), cargo-zigbuild and ziglang (pip; installed here when missing), and
# readelf (binutils). The build uses its own target dir, target/release-zig (or
# $AIRLOCK_RELEASE_TARGET_DIR), so it never invalidates the dev build's cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "release.sh: FAILED: $*" >&2
    exit 1
}

arch=x86_64
outdir=
check_only=
while (($#)); do
    case $1 in
    --check) check_only=${2:-}; shift 2 || die "--check needs a file" ;;
    --arch) arch=${2:-}; shift 2 || die "--arch needs a value (x86_64 or aarch64)" ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (usage: release.sh [--arch x86_64|aarch64] [OUTDIR] | release.sh [--arch A] --check FILE)" ;;
    *) [[ -z $outdir ]] || die "more than one OUTDIR given"; outdir=$1; shift ;;
    esac
done
outdir=${outdir:-dist}
glibc_floor=2.17
case $arch in
x86_64) machine="Advanced Micro Devices X86-64"; loader=ld-linux-x86-64.so.2 ;;
aarch64 | arm64) arch=aarch64; machine="AArch64"; loader=ld-linux-aarch64.so.1 ;;
*) die "unsupported --arch '$arch' (x86_64 or aarch64)" ;;
esac
triple="$arch-unknown-linux-gnu"
target_dir=${AIRLOCK_RELEASE_TARGET_DIR:-target/release-zig}

# --- checks -----------------------------------------------------------------
# check_binary FILE: fails (exit 1, with the reason) unless FILE is a glibc-linked
# executable for $arch needing at most GLIBC_$glibc_floor and only the base libraries;
# sets $floor, $needed and $interp for the report.
check_binary() {
    local file=$1 header versions lib bad=()
    header=$(LC_ALL=C readelf -h "$file") || die "$file is not an ELF file"
    grep -q "Type:.*EXEC\|Type:.*DYN" <<<"$header" || die "$file is not an executable"
    grep -q "Machine:[[:space:]]*$machine" <<<"$header" ||
        die "$file is not built for $arch: $(grep Machine: <<<"$header")"

    # The highest GLIBC_x.y the binary asks for, from its version-needs section
    # (readelf reads any architecture; objdump -T says the same on the host's own).
    versions=$(LC_ALL=C readelf -V -W "$file" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -u -V)
    [[ -n $versions ]] || die "$file needs no GLIBC_ symbol version at all: not a glibc-linked binary?"
    floor=$(tail -n 1 <<<"$versions")
    floor=${floor#GLIBC_}
    if [[ $(printf '%s\n%s\n' "$floor" "$glibc_floor" | sort -V | tail -n 1) != "$glibc_floor" ]]; then
        die "$file needs glibc $floor, above the promised $glibc_floor; symbols needing more: $(LC_ALL=C readelf --dyn-syms -W "$file" |
            grep -o '[A-Za-z_0-9]*@GLIBC_[0-9.]*' | awk -F@GLIBC_ -v f="$glibc_floor" '{ split($2, a, "."); split(f, b, "."); if (a[1] > b[1] || (a[1] == b[1] && a[2] > b[2])) print }' | sort -u | tr '\n' ' ')"
    fi

    needed=$(LC_ALL=C readelf -d -W "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    bad=()
    while read -r lib; do
        [[ -n $lib ]] || continue
        case $lib in
        libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libgcc_s.so.1 | "$loader") ;;
        *) bad+=("$lib") ;;
        esac
    done <<<"$needed"
    ((${#bad[@]} == 0)) ||
        die "$file needs shared libraries a bare machine may not have: ${bad[*]} (all: $(tr '\n' ' ' <<<"$needed"))"
    interp=$(LC_ALL=C readelf -l -W "$file" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
    [[ $interp == "/lib64/$loader" || $interp == "/lib/$loader" ]] ||
        die "$file asks for the program interpreter '$interp', not the standard /lib*/$loader"
}

if [[ -n $check_only ]]; then
    command -v readelf >/dev/null 2>&1 || die "readelf is missing: install binutils"
    check_binary "$check_only"
    echo "release.sh: ok: $check_only needs glibc $floor (<= $glibc_floor) and only: $(tr '\n' ' ' <<<"$needed")"
    exit 0
fi

# --- tools ------------------------------------------------------------------
command -v readelf >/dev/null 2>&1 ||
    die "readelf is missing: install binutils (apt-get install binutils / dnf install binutils)"
if ! command -v cargo-zigbuild >/dev/null 2>&1 || ! python3 -m ziglang version >/dev/null 2>&1; then
    echo "release.sh: installing cargo-zigbuild and ziglang from PyPI (pip)"
    pip=(python3 -m pip)
    "${pip[@]}" --version >/dev/null 2>&1 || die "cargo-zigbuild/ziglang missing and no pip: install python3-pip, then pip install cargo-zigbuild ziglang"
    # Debian 12's system python refuses plain `pip install` (PEP 668).
    "${pip[@]}" install -q cargo-zigbuild ziglang ||
        "${pip[@]}" install -q --break-system-packages cargo-zigbuild ziglang ||
        die "pip install cargo-zigbuild ziglang failed"
    # pip puts the command in python's scripts directory, which a pyenv or venv python
    # does not have on PATH until its shims are rebuilt: put it there.
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
    export PATH
    hash -r
    command -v cargo-zigbuild >/dev/null 2>&1 ||
        die "cargo-zigbuild installed but not on PATH (pip's script dir: $(python3 -m site --user-base 2>/dev/null)/bin, /usr/local/bin)"
fi
sysroot=$(rustc --print sysroot)
if [[ ! -d $sysroot/lib/rustlib/$triple/lib ]]; then
    echo "release.sh: the Rust standard library for $triple is not installed; trying rustup target add $triple"
    rustup target add "$triple" ||
        die "the Rust std for $triple is not installed and \`rustup target add $triple\` failed (no download from static.rust-lang.org?): install it on a connected machine, or build on a $arch host"
fi

# --- build ------------------------------------------------------------------
version=$(cargo metadata --locked --no-deps --format-version 1 |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "airlock"))')
echo "== cargo zigbuild --release --target $triple.$glibc_floor (airlock $version, target dir $target_dir)"
start=$(date +%s)
cargo zigbuild --locked --release --bin airlock --target "$triple.$glibc_floor" --target-dir "$target_dir" ||
    die "cargo zigbuild failed"
build_secs=$(($(date +%s) - start))
built="$target_dir/$triple/release/airlock"
[[ -f $built ]] || die "cargo zigbuild succeeded but $built is missing"

mkdir -p "$outdir"
name="airlock-$version-$arch-linux"
bin="$outdir/$name"
cp "$built" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
chmod 0755 "$bin"
check_binary "$bin"

if [[ $arch == "$(uname -m)" ]]; then
    got=$("$bin" --version) || die "$bin --version failed on this machine"
    [[ $got == *"$version"* ]] || die "$bin --version printed '$got', not version $version"
fi

# --- SHA256SUMS (every release binary in OUTDIR, so x86_64 and aarch64 share it) ---
(
    cd "$outdir"
    shopt -s nullglob
    bins=(airlock-*-linux)
    sha256sum -- "${bins[@]}" >SHA256SUMS.tmp
    mv -f SHA256SUMS.tmp SHA256SUMS
    sha256sum --quiet -c SHA256SUMS
) || die "writing or checking $outdir/SHA256SUMS failed"

size=$(stat -c %s "$bin")
echo "release.sh: ok: $bin"
echo "  size:        $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }'))"
echo "  glibc floor: $floor (highest GLIBC_ symbol version needed; promised <= $glibc_floor)"
echo "  needs:       $(tr '\n' ' ' <<<"$needed")(interpreter $interp)"
echo "  build time:  ${build_secs}s (cargo zigbuild, target dir $target_dir)"
echo "  sha256:      $(grep " $name\$" "$outdir/SHA256SUMS" | cut -d' ' -f1)  ($outdir/SHA256SUMS)"
