#!/usr/bin/env bash
# Installs the user-mode emulator that runs the arm64 packages on an amd64 test host:
# `qemu-aarch64` from Debian's `qemu-user` (static binaries, version 8 or newer).
#
# Debian 12 ships qemu-user 7.2, whose emulation hangs any program that starts a thread (markoff
# starts several at once). Debian 12's backports carry the 10.x series, which runs them; on
# Debian 12 this script therefore adds bookworm-backports as an apt source and pins exactly one
# package to it:
#
#   /etc/apt/sources.list.d/markoff-tests-backports.sources   the suite
#   /etc/apt/preferences.d/markoff-tests-qemu-user            qemu-user from it (priority 500)
#
# Every other backports package keeps the suite's default priority (100: never chosen over
# Debian 12's own version unless asked for by name), so nothing else on the host changes.
#
# `qemu-user` is installed rather than `qemu-user-static`: from 9.1 on the latter is an empty
# transitional package that pulls in `qemu-user-binfmt`, which registers every emulator with the
# kernel for good. The install test registers qemu-aarch64 only for the length of its run
# (tests/package/install-test.sh).
#
# Idempotent; needs root (or sudo) only when something is missing. Newer Debian releases ship a
# qemu-user that works and get no backports source.
#
# Environment:
#   MARKOFF_DEB_MIRROR   Debian mirror of the backports source (default http://deb.debian.org/debian)

set -euo pipefail

MIRROR="${MARKOFF_DEB_MIRROR:-http://deb.debian.org/debian}"
SOURCES=/etc/apt/sources.list.d/markoff-tests-backports.sources
PIN=/etc/apt/preferences.d/markoff-tests-qemu-user
# The oldest major version that runs threaded programs.
MIN_MAJOR=8

note() { printf 'tests/package/setup-qemu.sh: %s\n' "$*"; }
fail() {
    printf 'tests/package/setup-qemu.sh: %s\n' "$*" >&2
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

# The major version of the installed qemu-aarch64, or nothing.
qemu_major() {
    command -v qemu-aarch64 >/dev/null 2>&1 || return 0
    qemu-aarch64 --version | sed -n '1s/^qemu-aarch64 version \([0-9]*\)\..*/\1/p'
}

usable() {
    local major
    major=$(qemu_major)
    [[ -n $major && $major -ge $MIN_MAJOR ]]
}

add_backports() {
    local suite=$1
    note "adding $suite for qemu-user ($SOURCES, pinned in $PIN)"
    as_root tee "$SOURCES" >/dev/null <<EOF
# Added by markoff's tests/package/setup-qemu.sh for one package, qemu-user (pinned in
# $PIN): Debian 12's own qemu-user (7.2) hangs on programs that start threads, and the arm64
# package test runs markoff under it.
Types: deb
URIs: $MIRROR
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    as_root tee "$PIN" >/dev/null <<EOF
Explanation: markoff's tests/package/setup-qemu.sh: qemu-user from $suite (Debian 12's 7.2 hangs
Explanation: on threaded programs); every other package of $suite keeps its default priority.
Package: qemu-user
Pin: release n=$suite
Pin-Priority: 500
EOF
}

main() {
    if usable; then
        note "$(qemu-aarch64 --version | head -n 1)"
        return 0
    fi
    local codename
    # shellcheck disable=SC1091 # the host's os-release
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [[ $codename == bookworm ]]; then
        add_backports bookworm-backports
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user
    usable || fail "qemu-aarch64 is $(qemu-aarch64 --version 2>/dev/null | head -n 1 || echo missing); version $MIN_MAJOR or newer is needed"
    note "$(qemu-aarch64 --version | head -n 1)"
}

main "$@"
