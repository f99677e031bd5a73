#!/usr/bin/env bash
# The single test command of Markoff: `tests/run.sh` (CI runs it through `.ci/run`).
#
# 1. Makes sure the servers the suite talks to answer on loopback, installing and starting
#    Debian's packages when they are absent:
#      PostgreSQL on 127.0.0.1:5432, Mosquitto on 127.0.0.1:1883.
# 2. Makes sure the build tools are there (a C compiler: ring and the bundled SQLite need one),
#    the independent test peers (tests/modbus/setup.sh: a pymodbus venv and socat), and
#    opus-tools (opusenc/opusdec: the Telegram bot's voice notes and their tests), and
#    headless Chromium with chromedriver (the central web application's browser test), and
#    Prometheus with promtool (a real server scraping the daemon; the exposition and the packaged
#    alert rules checked).
# 3. Runs, stopping at the first failure:
#      cargo fmt --all --check
#      cargo clippy --workspace --all-targets -- -D warnings
#      cargo build --workspace          (the end-to-end tests run the `markoff` binary)
#      cargo test --workspace
#      tests/package/install-test.sh   (the Debian packages, built and installed into a
#                                       debootstrapped Debian root, which is then booted with
#                                       systemd-nspawn to run the unit; under CI=true always, with
#                                       its tools installed first; otherwise when its tools are
#                                       present, and said loudly when they are not)
#      tests/package/install-test.sh arm64
#                                      (the same for the arm64 packages, cross-built, in an arm64
#                                       root run under qemu-aarch64, plus the Modbus and sync
#                                       end-to-end tests against the installed arm64 binary; on
#                                       an amd64 host, under the same conditions, its tools being
#                                       the arm64 cross toolchain and qemu-user 8 or newer:
#                                       tests/package/setup-qemu.sh)
#
# Runs from any directory, as root or as a user with sudo, and can be run again and again:
# a server that already answers is left alone. Works on a fresh Debian 12 machine that has
# Rust (rustup, default profile) and nothing else.
#
# Environment:
#   CI                       passed through unchanged to the tests; under CI=true the package
#                            install tests (amd64 and arm64) always run.
#   MARKOFF_SKIP_PACKAGE_TEST=1  skip the package install tests on a developer machine (never
#                            under CI=true).
#   MARKOFF_TEST_MQTT_PORT   port of the test broker (default 1883). The tests are pointed at
#                            it through MARKOFF_TEST_MQTT_ADDR unless that is set already.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CI

PG_HOST=127.0.0.1
PG_PORT=5432
MQTT_HOST=127.0.0.1
MQTT_PORT="${MARKOFF_TEST_MQTT_PORT:-1883}"
export MARKOFF_TEST_MQTT_ADDR="${MARKOFF_TEST_MQTT_ADDR:-$MQTT_HOST:$MQTT_PORT}"
# Where the script keeps the config and log of a broker it starts itself.
SERVICES_DIR="${TMPDIR:-/tmp}/markoff-test-services"

# A rustup install puts cargo here; a login shell may not have it on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
# Debian keeps mosquitto and the PostgreSQL tools partly in sbin.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

section() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
fail() {
    printf 'tests/run.sh: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
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
    if [[ $APT_UPDATED -eq 0 ]]; then
        note "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    note "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Does something accept TCP connections on host:port? (bash's /dev/tcp; no netcat needed)
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1
}

# Polls `check` (a command) up to `tries` times, `delay` seconds apart.
wait_for() {
    local what=$1 tries=$2 delay=$3
    shift 3
    local i
    for ((i = 0; i < tries; i++)); do
        if "$@"; then
            return 0
        fi
        sleep "$delay"
    done
    fail "$what did not come up ($tries checks, ${delay}s apart)"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        port_open "$PG_HOST" "$PG_PORT"
    fi
}

pg_server_installed() {
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# shellcheck disable=SC2012 # version directories have plain names
pg_version() {
    local v=""
    if [[ -d /etc/postgresql ]]; then
        v=$(ls /etc/postgresql | sort -V | tail -n 1)
    fi
    if [[ -z $v ]]; then
        v=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    fi
    printf '%s' "$v"
}

# Loopback connections without a password, for the throwaway test machine only.
pg_trust_loopback() {
    local ver=$1 hba="/etc/postgresql/$1/main/pg_hba.conf" tmp
    if as_root grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        return 0
    fi
    note "trusting loopback connections in $hba (test machine)"
    tmp=$(mktemp)
    {
        echo "# Added by markoff tests/run.sh: loopback connections are trusted on this test machine."
        echo "host    all             all             127.0.0.1/32            trust"
        echo "host    all             all             ::1/128                 trust"
        as_root cat "$hba"
    } >"$tmp"
    # pg_hba.conf is read top-down and the first matching line wins: the trust lines go first.
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
    as_root chown postgres:postgres "$hba"
    as_root chmod 640 "$hba"
    if pg_ready; then
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
    fi
}

pg_trusted_login() {
    psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
    section "PostgreSQL on $PG_HOST:$PG_PORT"
    if pg_ready; then
        note "answering"
        return 0
    fi
    local installed_here=0 ver
    if ! pg_server_installed; then
        apt_install postgresql
        installed_here=1
    fi
    ver=$(pg_version)
    [[ -n $ver ]] || fail "PostgreSQL is installed but no version was found under /etc/postgresql"
    if [[ ! -d /etc/postgresql/$ver/main ]]; then
        note "creating cluster $ver/main"
        as_root pg_createcluster "$ver" main
    fi
    if [[ $installed_here -eq 1 ]]; then
        pg_trust_loopback "$ver"
    fi
    if ! pg_ready; then
        note "starting cluster $ver/main"
        # Fails harmlessly when the cluster is already starting; the wait below decides.
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    fi
    wait_for "PostgreSQL on $PG_HOST:$PG_PORT" 60 1 pg_ready
    if [[ $installed_here -eq 1 ]]; then
        wait_for "a password-less login to PostgreSQL over loopback" 20 1 pg_trusted_login
    fi
    note "answering"
}

# ---------------------------------------------------------------------------------------------
# Mosquitto
# ---------------------------------------------------------------------------------------------

mqtt_up() { port_open "$MQTT_HOST" "$MQTT_PORT"; }
mqtt_down() { ! mqtt_up; }

mosquitto_bin() {
    command -v mosquitto 2>/dev/null || printf '/usr/sbin/mosquitto'
}

# Debian starts the packaged broker on install, with its default config (which queues only
# 1000 messages per client and so drops part of a large QoS 1 burst). Stop it for ours.
stop_packaged_mosquitto() {
    if ! mqtt_up; then
        return 0
    fi
    note "stopping the broker the package started (it runs Debian's default config)"
    # Disabled too, so that after a reboot this script starts the test broker again.
    as_root systemctl disable --now mosquitto >/dev/null 2>&1 ||
        as_root service mosquitto stop >/dev/null 2>&1 ||
        { [[ -f /run/mosquitto/mosquitto.pid ]] && as_root kill "$(cat /run/mosquitto/mosquitto.pid)"; } ||
        true
    wait_for "the packaged broker to stop" 20 0.5 mqtt_down
}

start_test_mosquitto() {
    local conf="$SERVICES_DIR/mosquitto-$MQTT_PORT.conf" log="$SERVICES_DIR/mosquitto-$MQTT_PORT.log"
    mkdir -p "$SERVICES_DIR"
    cat >"$conf" <<EOF
# Test broker started by markoff tests/run.sh.
listener $MQTT_PORT $MQTT_HOST
allow_anonymous true
# "Nothing lost" tests publish large QoS 1 bursts; the default (1000) would drop part of them.
max_queued_messages 100000
persistence false
log_dest file $log
EOF
    touch "$log"
    # Started as root, mosquitto drops to the `mosquitto` user, which must be able to write the log.
    if [[ $(id -u) -eq 0 ]] && id mosquitto >/dev/null 2>&1; then
        chown mosquitto "$log"
    else
        chmod 666 "$log"
    fi
    note "starting mosquitto -d -c $conf"
    as_root "$(mosquitto_bin)" -d -c "$conf"
}

ensure_mosquitto() {
    section "Mosquitto on $MQTT_HOST:$MQTT_PORT"
    if mqtt_up; then
        note "answering"
        return 0
    fi
    if ! command -v mosquitto >/dev/null 2>&1 && [[ ! -x /usr/sbin/mosquitto ]]; then
        apt_install mosquitto mosquitto-clients
        stop_packaged_mosquitto
    fi
    start_test_mosquitto
    wait_for "Mosquitto on $MQTT_HOST:$MQTT_PORT" 40 0.5 mqtt_up
    note "answering"
}

# ---------------------------------------------------------------------------------------------
# PgBouncer (the sync tests start their own, on a port of their own; the packaged service is
# stopped so it holds no port)
# ---------------------------------------------------------------------------------------------

ensure_pgbouncer() {
    section "PgBouncer"
    if ! command -v pgbouncer >/dev/null 2>&1 && [[ ! -x /usr/sbin/pgbouncer ]]; then
        apt_install pgbouncer
        if command -v systemctl >/dev/null 2>&1; then
            as_root systemctl disable --now pgbouncer >/dev/null 2>&1 || true
        fi
    fi
    local bin
    bin=$(command -v pgbouncer || printf '/usr/sbin/pgbouncer')
    [[ -x $bin ]] || fail "pgbouncer is not installed (apt-get install pgbouncer)"
    note "$("$bin" --version | head -n 1)"
}

# ---------------------------------------------------------------------------------------------
# Build tools and test peers
# ---------------------------------------------------------------------------------------------

ensure_build_tools() {
    section "Build tools"
    # cargo learns the target's properties by running rustc on an empty stdin (/dev/null); a
    # /dev/null that has become a regular file with data in it fails every build.
    [[ -c /dev/null ]] ||
        fail "/dev/null is not the null device but a $(stat -c %F /dev/null): this machine's /dev is damaged (as root: rm -f /dev/null && mknod -m 0666 /dev/null c 1 3)"
    command -v cargo >/dev/null 2>&1 || fail "cargo not found: install Rust with rustup first"
    # The bundled SQLite (rusqlite) and ring (rustls) compile C code; nothing else is needed:
    # no OpenSSL, no pkg-config, no system SQLite.
    if ! command -v cc >/dev/null 2>&1; then
        apt_install gcc libc6-dev
    fi
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || fail "cargo fmt / cargo clippy missing and no rustup to add them"
        rustup component add rustfmt clippy
    fi
    note "$(cargo --version), $(cc --version | head -n 1)"
}

ensure_test_peers() {
    # --- Independent test peers ------------------------------------------------------------
    # The Modbus interop tests talk to pymodbus (an implementation independent of ours) in a
    # Python venv, and to socat pty pairs (serial lines with real RTU framing). Their setup
    # script is idempotent and quick when everything is in place. Further peers go here.
    # ----------------------------------------------------------------------------------------
    if [[ -f tests/modbus/setup.sh ]]; then
        section "Test peers: pymodbus venv and socat (tests/modbus/setup.sh)"
        bash tests/modbus/setup.sh
    fi
}

ensure_voice_tools() {
    # The Telegram bot decodes and encodes voice notes with opusdec/opusenc (the Debian package
    # declares opus-tools); the voice tests also make their OGG/Opus notes with opusenc.
    section "Voice tools: opus-tools"
    if command -v opusenc >/dev/null 2>&1 && command -v opusdec >/dev/null 2>&1; then
        note "present"
        return 0
    fi
    apt_install opus-tools
    note "installed"
}

ensure_browser() {
    # The central web application's end-to-end test drives Debian's Chromium through its
    # chromedriver (tests/src/browser.rs); under CI=true a missing browser fails that test.
    section "Headless Chromium for the browser tests (chromium, chromium-driver)"
    if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
        note "present"
        return 0
    fi
    apt_install chromium chromium-driver
    [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] ||
        fail "chromium or chromedriver is still missing after installing chromium chromium-driver"
    note "installed"
}

ensure_prometheus() {
    # The metrics tests (tests/tests/prometheus.rs) run Debian's Prometheus as a real server
    # scraping the daemon, and its promtool to check the exposition and the packaged alert rules
    # (packaging/prometheus/); under CI=true a missing Prometheus fails them.
    section "Prometheus and promtool (prometheus)"
    if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
        note "present ($(prometheus --version 2>&1 | head -n 1))"
        return 0
    fi
    apt_install prometheus
    # The package starts its own server on :9090; the tests start their own on a free port.
    as_root systemctl disable --now prometheus >/dev/null 2>&1 ||
        as_root service prometheus stop >/dev/null 2>&1 || true
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 ||
        fail "prometheus or promtool is still missing after installing prometheus"
    note "installed"
}

# ---------------------------------------------------------------------------------------------
# The Debian packages
# ---------------------------------------------------------------------------------------------

package_tools_present() {
    [[ $(id -u) -eq 0 ]] && command -v debootstrap >/dev/null 2>&1 &&
        command -v lintian >/dev/null 2>&1 && command -v dpkg-shlibdeps >/dev/null 2>&1 &&
        command -v systemd-nspawn >/dev/null 2>&1 && cargo deb --version >/dev/null 2>&1
}

# The arm64 package test's own tools (beyond the ones above): the cross toolchain and libc6:arm64
# (packaging/build-deb.sh --setup arm64) and qemu-aarch64 8 or newer (tests/package/setup-qemu.sh).
arm64_tools_present() {
    [[ $(dpkg --print-architecture) == amd64 ]] && command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu &&
        dpkg-query -W -f '${Status}' libc6:arm64 2>/dev/null | grep -q 'ok installed' &&
        [[ $(qemu-aarch64 --version 2>/dev/null | sed -n '1s/^qemu-aarch64 version \([0-9]*\)\..*/\1/p') -ge 8 ]] 2>/dev/null
}

package_test() {
    if [[ ${CI:-} == true ]]; then
        section "Package tools: debootstrap, lintian, systemd-nspawn, cargo-deb"
        [[ $(id -u) -eq 0 ]] || fail "the package install test needs root (debootstrap, chroot)"
        if ! command -v debootstrap >/dev/null 2>&1 || ! command -v lintian >/dev/null 2>&1 ||
            ! command -v systemd-nspawn >/dev/null 2>&1; then
            apt_install debootstrap lintian systemd-container
        fi
        packaging/build-deb.sh --setup-only amd64 arm64
        section "Package tools: qemu-user for the arm64 root (tests/package/setup-qemu.sh)"
        tests/package/setup-qemu.sh
    elif [[ ${MARKOFF_SKIP_PACKAGE_TEST:-0} == 1 ]]; then
        section "Package install tests: SKIPPED (MARKOFF_SKIP_PACKAGE_TEST=1)"
        return 0
    elif ! package_tools_present; then
        section "Package install tests: SKIPPED: they need root, debootstrap, lintian, systemd-nspawn, dpkg-dev and cargo-deb"
        note "(apt-get install debootstrap lintian systemd-container; packaging/build-deb.sh --setup); CI=true runs them always"
        return 0
    fi
    run_step tests/package/install-test.sh
    if [[ ${CI:-} == true ]] || arm64_tools_present; then
        run_step tests/package/install-test.sh arm64
    else
        section "arm64 package install test: SKIPPED: it needs an amd64 host, the arm64 cross toolchain and qemu-user 8 or newer"
        note "(packaging/build-deb.sh --setup arm64; tests/package/setup-qemu.sh); CI=true runs it always"
    fi
}

# ---------------------------------------------------------------------------------------------

# Each step says how long it took, so the cost of every part of the suite is visible in CI's log.
run_step() {
    section "$*"
    local started=$SECONDS
    "$@"
    note "($* took $((SECONDS - started)) s)"
}

main() {
    ensure_postgres
    ensure_mosquitto
    ensure_pgbouncer
    ensure_build_tools
    ensure_test_peers
    ensure_voice_tools
    ensure_browser
    ensure_prometheus

    run_step cargo fmt --all --check
    run_step cargo clippy --workspace --all-targets -- -D warnings
    run_step cargo build --workspace
    run_step cargo test --workspace
    package_test

    section "All checks passed in $SECONDS s"
}

main "$@"
