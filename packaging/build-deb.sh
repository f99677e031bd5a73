#!/usr/bin/env bash
# Builds the Debian packages of Markoff: `markoff` (the gateway) and `markoff-central` (the
# central side), for amd64 and/or arm64, into target/debian/.
#
#   packaging/build-deb.sh                 both architectures
#   packaging/build-deb.sh amd64           one
#   packaging/build-deb.sh --setup arm64   first install what the build needs (as root or with
#                                          sudo): Debian's gcc-aarch64-linux-gnu and
#                                          libc6-dev-arm64-cross, libc6:arm64 (its symbols file
#                                          gives the package's glibc dependency), the Rust
#                                          standard library for aarch64 (rustup) and cargo-deb
#   packaging/build-deb.sh --setup-only amd64   only that
#
# arm64 is cross-compiled on an amd64 Debian 12 host with Debian's aarch64-linux-gnu toolchain:
# it links the Rust code and compiles the bundled C code (SQLite, ring). The packages name
# their glibc dependency from the symbols the binaries use, so they install on Debian 12 and
# newer (and on distributions of the same glibc age).
#
# Prints each package's path and the size of each binary. docs/operations.md describes the
# packages; docs/performance.md records the sizes.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The cargo-deb release the package metadata is written for.
CARGO_DEB_VERSION=3.8.0

if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

fail() {
    printf 'packaging/build-deb.sh: %s\n' "$*" >&2
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        fail "need root for: $*"
    fi
}

rust_target() {
    case $1 in
        amd64) echo x86_64-unknown-linux-gnu ;;
        arm64) echo aarch64-unknown-linux-gnu ;;
        *) fail "unknown architecture '$1' (amd64 or arm64)" ;;
    esac
}

have_cargo_deb() {
    cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"
}

setup() {
    local arch apt=() add_arm64=0
    if ! have_cargo_deb; then
        cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
    fi
    for arch in "$@"; do
        if [[ $arch == arm64 ]]; then
            command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || apt+=(gcc-aarch64-linux-gnu)
            [[ -d /usr/aarch64-linux-gnu/lib ]] || apt+=(libc6-dev-arm64-cross)
            if ! dpkg-query -W -f '${Status}' libc6:arm64 2>/dev/null | grep -q 'ok installed'; then
                add_arm64=1
                apt+=(libc6:arm64)
            fi
            rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
                rustup target add aarch64-unknown-linux-gnu
        fi
    done
    # dpkg-shlibdeps (from dpkg-dev) computes the packages' library dependencies.
    command -v dpkg-shlibdeps >/dev/null 2>&1 || apt+=(dpkg-dev)
    if [[ $add_arm64 -eq 1 ]]; then
        as_root dpkg --add-architecture arm64
    fi
    if [[ ${#apt[@]} -gt 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt[@]}"
    fi
}

check_tools() {
    have_cargo_deb ||
        fail "cargo-deb $CARGO_DEB_VERSION is missing: run with --setup, or cargo install cargo-deb --locked --version $CARGO_DEB_VERSION"
    local arch
    for arch in "$@"; do
        if [[ $arch == arm64 ]]; then
            command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
                fail "aarch64-linux-gnu-gcc is missing: run with --setup (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
            rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
                fail "the aarch64 Rust standard library is missing: run with --setup (rustup target add aarch64-unknown-linux-gnu)"
            dpkg-query -W -f '${Status}' libc6:arm64 2>/dev/null | grep -q 'ok installed' ||
                fail "libc6:arm64 is missing: run with --setup (dpkg --add-architecture arm64; apt-get install libc6:arm64)"
        fi
    done
}

build() {
    local arch=$1 target pkg deb bindir target_args=()
    target=$(rust_target "$arch")
    # The host's own architecture builds into target/release (shared with `cargo build
    # --release`); a cross build into target/<triple>/release.
    bindir=target/release
    if [[ $arch == arm64 ]]; then
        target_args=(--target "$target")
        bindir=target/$target/release
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
        export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    fi
    # Both binaries in one build: the dependencies they share are compiled once.
    printf '\n==> markoff and markoff-central for %s (%s)\n' "$arch" "$target"
    cargo build --release --locked -p markoff -p markoff-cloud-sync "${target_args[@]}"
    for pkg in markoff markoff-cloud-sync; do
        deb=$(cargo deb -p "$pkg" "${target_args[@]}" --no-build | tail -n 1)
        [[ -f $deb ]] || fail "cargo deb did not name a package file (got '$deb')"
        BUILT+=("$deb")
    done
    local bin
    for bin in markoff markoff-central; do
        SIZES+=("$(printf '%-6s %-15s %s bytes' "$arch" "$bin" "$(stat -c %s "$bindir/$bin")")")
    done
}

main() {
    local do_setup=0 setup_only=0 archs=()
    while [[ $# -gt 0 ]]; do
        case $1 in
            --setup) do_setup=1 ;;
            --setup-only) do_setup=1 setup_only=1 ;;
            amd64 | arm64) archs+=("$1") ;;
            -h | --help)
                awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
                exit 0
                ;;
            *) fail "unknown argument '$1' (see --help)" ;;
        esac
        shift
    done
    [[ ${#archs[@]} -gt 0 ]] || archs=(amd64 arm64)
    [[ $(uname -m) == x86_64 ]] || fail "this script cross-builds from an amd64 host"

    if [[ $do_setup -eq 1 ]]; then
        setup "${archs[@]}"
    fi
    check_tools "${archs[@]}"
    [[ $setup_only -eq 0 ]] || return 0

    BUILT=()
    SIZES=()
    local arch
    for arch in "${archs[@]}"; do
        build "$arch"
    done

    printf '\n==> Packages\n'
    local deb
    for deb in "${BUILT[@]}"; do
        printf '%s  %s bytes\n' "$deb" "$(stat -c %s "$deb")"
    done
    printf '\n==> Binaries (stripped)\n'
    printf '%s\n' "${SIZES[@]}"

    # lintian, when present, for every package built (tests/package/install-test.sh does the
    # same for the host's architecture and fails on errors).
    if command -v lintian >/dev/null 2>&1; then
        printf '\n==> lintian\n'
        local out rc=0
        out=$(lintian --fail-on error "${BUILT[@]}" 2>&1) || rc=$?
        printf '%s\n' "$out" | grep -v 'running with root privileges' || true
        [[ $rc -eq 0 ]] || fail "lintian reports errors"
        printf 'no errors\n'
    fi
}

main "$@"
