#!/usr/bin/env bash
# Sets up the independent Modbus peer of the interop tests (tests/tests/modbus_interop.rs):
#   - a Python venv at tests/modbus/.venv with the pinned pymodbus (tests/modbus/requirements.txt);
#   - socat (serial pty pairs for Modbus RTU), installed with apt-get when absent.
#
# Idempotent and quick when already set up (it compares the installed requirements with
# requirements.txt and only checks the imports). Runs from any directory, as root or as a user
# with sudo (sudo is only needed to install Debian packages that are missing).
#
# Environment:
#   PYTHON   the interpreter to make the venv with (default: python3)

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.markoff-requirements"
PYTHON="${PYTHON:-python3}"

note() { printf 'tests/modbus/setup.sh: %s\n' "$*"; }
fail() {
    printf 'tests/modbus/setup.sh: %s\n' "$*" >&2
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        fail "need root for: $* (run as root or install sudo)"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || fail "missing $* and no apt-get to install it"
    if [[ $APT_UPDATED -eq 0 ]]; then
        note "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        APT_UPDATED=1
    fi
    note "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# --- socat --------------------------------------------------------------------------------
if ! command -v socat >/dev/null 2>&1; then
    apt_install socat
fi

# --- Python with venv support ---------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-venv
fi
# Debian's python3 needs python3-venv for `-m venv` (ensurepip); other builds bring it along.
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
fi

# --- The venv -------------------------------------------------------------------------------
VERSION=""
venv_ok() {
    [[ -x $VENV/bin/python ]] &&
        [[ -f $STAMP ]] && cmp -s "$STAMP" "$REQ" &&
        VERSION=$("$VENV/bin/python" -c 'import pymodbus, serial; print("pymodbus", pymodbus.__version__)' 2>/dev/null)
}

if venv_ok; then
    note "venv up to date ($VERSION)"
    exit 0
fi

if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    note "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
note "installing $(grep -Ev '^\s*(#|$)' "$REQ" | tr '\n' ' ')"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
cp "$REQ" "$STAMP"
venv_ok || fail "the venv at $VENV does not import pymodbus after the install"
note "ready ($VERSION)"
