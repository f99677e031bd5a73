#!/usr/bin/env bash
# Install test of the Debian packages: builds markoff and markoff-central for this machine's
# architecture, or for arm64 on an amd64 machine (packaging/build-deb.sh), checks them with
# lintian, installs them with apt into a freshly debootstrapped Debian root of that
# architecture, and checks there:
#   - files, owners and modes; the conffiles; the markoff system user in group dialout;
#   - the unit: enabled, `systemd-analyze verify` clean, its exposure score;
#   - `markoff validate` of the shipped config (every source disabled);
#   - the daemon, run as the markoff user the way the unit runs it (state directory, umask,
#     notify socket, watchdog, a credential from the credentials directory) on the simulator:
#     it reports READY, stores readings, reloads on SIGHUP and stops cleanly on SIGTERM;
#   - the unit under systemd, in the root booted with systemd-nspawn: active (READY), the user
#     and sandbox in force, the credentials directory passed, readings stored, watchdog pings,
#     the API socket /run/markoff/api.sock (in /run/markoff, markoff:markoff-operators 2750,
#     from tmpfiles.d; the socket group markoff-operators, 0660, also after a restart and the
#     upgrade): an account outside the group cannot acknowledge an alarm, a member mapped by
#     `[[users]] unix_user` to a viewer is refused, one mapped to an operator acknowledges, and
#     the audit log records both under their own logins and uids,
#     reload (and an invalid config refused by reload), restart after SIGKILL, an upgrade to
#     the next revision of the package (service restarted, buffer kept), clean stop;
#   - the central maintenance under systemd: markoff-central-maintain.timer enabled and
#     scheduled, and its service recreating a missing partition of markoff.readings in a
#     database migrated by the packaged markoff-central;
#   - a local change to the conffile survives reinstalling; remove keeps the buffer and the
#     config; purge deletes them.
#
#   tests/package/install-test.sh          this machine's architecture
#   tests/package/install-test.sh arm64    arm64 on an amd64 machine, under qemu-aarch64
#
# arm64 runs under qemu's user-mode emulation (tests/package/setup-qemu.sh installs it): for the
# length of the run the kernel is told, through binfmt_misc, to run aarch64 programs with
# qemu-aarch64 (a registration named markoff-test-<run>, removed at the end; one left by a killed
# run is removed by the next). The root is made by `debootstrap --arch=arm64` every time (never
# cached), and besides the checks above the end-to-end tests of the Modbus acquisition (pymodbus
# over TCP) and of the sync (PostgreSQL, kills at random moments) run once
# against the installed arm64 `markoff` (MARKOFF_BIN_RUNNER, see tests/src/binary.rs).
#
# Needs root (debootstrap, chroot, mounts), debootstrap, lintian, systemd-nspawn (Debian's
# systemd-container), cargo-deb, access to a Debian mirror, and PostgreSQL (psql, and a server
# that trusts the postgres role from 127.0.0.1, as tests/run.sh sets up); for arm64 also
# qemu-aarch64 8 or newer (tests/package/setup-qemu.sh), the arm64 build tools
# (packaging/build-deb.sh --setup arm64) and the Modbus test peers (tests/modbus/setup.sh).
# tests/run.sh runs it under CI=true and whenever those tools are present.
#
# Environment:
#   MARKOFF_DEB_MIRROR     Debian mirror (default http://deb.debian.org/debian)
#   MARKOFF_DEB_SUITE      suite of the root (default: this machine's, e.g. bookworm)
#   MARKOFF_DEB_CACHE      where the pristine debootstrapped root of this machine's architecture
#                          is kept as a tarball between runs (default /var/cache/markoff-test)
#   MARKOFF_DEB_NO_BUILD=1 use the packages already in target/debian/ instead of building
#   MARKOFF_DEB_KEEP=1     keep the work directory (the root) for inspection
#   MARKOFF_TEST_PG_ADDR   PostgreSQL host:port (default 127.0.0.1:5432); a database of its own
#                          is created and dropped

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

MIRROR="${MARKOFF_DEB_MIRROR:-http://deb.debian.org/debian}"
# shellcheck disable=SC1091 # the host's os-release
SUITE="${MARKOFF_DEB_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}"
CACHE="${MARKOFF_DEB_CACHE:-/var/cache/markoff-test}"
HOST_ARCH=$(dpkg --print-architecture)
ARCH="${1:-$HOST_ARCH}"
# The emulator of a foreign architecture's root, and its binfmt_misc registration for this run.
QEMU=""
BINFMT_DIR=/proc/sys/fs/binfmt_misc
BINFMT_NAME=""
# Present while binfmt_misc is mounted because a run of this script mounted it.
BINFMT_MOUNTED_MARK=/run/markoff-test-binfmt-mounted
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

PG_ADDR="${MARKOFF_TEST_PG_ADDR:-127.0.0.1:5432}"
PG_DB="markoff_pkgtest_$$"
PG_URL="postgres://postgres@$PG_ADDR/$PG_DB"
PG_CREATED=""

WORK=""
CHROOT=""
NOTIFY_PID=""
DAEMON_PID=""
CHECKS=0

section() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
fail() {
    printf 'tests/package/install-test.sh: FAILED: %s\n' "$*" >&2
    if [[ -n $CHROOT && -f $CHROOT/tmp/markoff-run.log ]]; then
        printf '\n--- daemon log (last 40 lines) ---\n' >&2
        tail -n 40 "$CHROOT/tmp/markoff-run.log" >&2
    fi
    exit 1
}
ok() {
    CHECKS=$((CHECKS + 1))
    note "ok: $*"
}

# Runs a command inside the root, as root.
in_root() { chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# Runs a command inside the root as the markoff user, in its groups.
as_markoff() {
    chroot --userspec=markoff:markoff --groups=dialout "$CHROOT" \
        /usr/bin/env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
}

# Runs psql as postgres on database $1 of the test server: pg DB ARGS...
pg() {
    local db=$1
    shift
    psql -w -X -v ON_ERROR_STOP=1 -h "${PG_ADDR%:*}" -p "${PG_ADDR##*:}" -U postgres -d "$db" -Atq "$@"
}

# Polls `check` (a command) up to `tries` times, `delay` seconds apart; SLOWDOWN times as often
# in a root run by an emulator.
SLOWDOWN=1
eventually() {
    local what=$1 tries=$(($2 * SLOWDOWN)) delay=$3 i
    shift 3
    for ((i = 0; i < tries; i++)); do
        if "$@"; then
            return 0
        fi
        sleep "$delay"
    done
    fail "$what (not true after $tries checks, ${delay}s apart)"
}

cleanup() {
    local rc=$?
    # Every step runs, whatever the one before it did.
    set +e
    [[ -n $DAEMON_PID ]] && kill -KILL "$DAEMON_PID" 2>/dev/null
    [[ -n $NOTIFY_PID ]] && kill "$NOTIFY_PID" 2>/dev/null
    [[ -z $CHROOT ]] || detach_root
    [[ -z $PG_CREATED ]] || drop_database "$PG_DB"
    if [[ -n $BINFMT_NAME ]]; then
        # Under the lock of the work directories, as registering is (see main).
        exec 8>"${WORK_PREFIX}lock"
        flock 8
        unregister_binfmt "$BINFMT_NAME"
        release_binfmt_mount
    fi
    if [[ -n $WORK ]]; then
        if [[ ${MARKOFF_DEB_KEEP:-0} == 1 ]]; then
            touch "$WORK/kept"
            printf 'kept %s\n' "$WORK" >&2
        else
            # Never into a file system still mounted below the work directory.
            rm -rf --one-file-system "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT

WORK_PREFIX="${TMPDIR:-/tmp}/markoff-deb-test."

drop_database() {
    pg postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 ||
        note "could not drop the test database $1"
}

# A run killed before its cleanup (SIGKILL, a lost session) leaves its root mounted and its
# database behind. Every run holds a lock on its work directory's `lock` file for as long as it
# lives; a directory whose lock is free (and that was not kept with MARKOFF_DEB_KEEP=1) is such
# a leftover: its mounts are detached, its database dropped and the directory removed, so that
# nothing later (this script, a tmp cleaner, an operator's rm -rf) walks into them.
reap_stale_roots() {
    local dir m
    for dir in "$WORK_PREFIX"*/; do
        dir=${dir%/}
        [[ -d $dir && ! -e $dir/kept ]] || continue
        flock -n "$dir/lock" true || continue # a run that is still going
        while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done < <(findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r)
        [[ ! -s $dir/database ]] || drop_database "$(cat "$dir/database")"
        rm -rf --one-file-system "$dir"
        note "removed what an earlier run left behind: $dir"
    done
    reap_stale_binfmt
}

# --------------------------------------------------------------------------------------------
# binfmt_misc: the kernel runs the root's aarch64 programs with qemu-aarch64, for this run only.
# --------------------------------------------------------------------------------------------

# An aarch64 ELF executable or shared object (PIE), little-endian: the header bytes the kernel
# matches, and which of their bits count (the low bit of e_type: ET_EXEC or ET_DYN).
AARCH64_MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
AARCH64_MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

# Registers qemu-aarch64 as the interpreter of aarch64 programs under the name
# markoff-test-<suffix of the work directory>. Flags: F opens the emulator now, so that it is
# found inside the root and the container without a copy there; O and C let a setuid program in
# the root run as it would natively. The newest registration of a format wins, so one the host
# may have (e.g. from qemu-user-binfmt) is left alone and used again afterwards.
register_binfmt() {
    if ! mountpoint -q "$BINFMT_DIR"; then
        mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" || fail "cannot mount binfmt_misc on $BINFMT_DIR"
        : >"$BINFMT_MOUNTED_MARK"
    fi
    [[ $(cat "$BINFMT_DIR/status") == enabled ]] || fail "binfmt_misc is disabled ($BINFMT_DIR/status)"
    BINFMT_NAME="markoff-test-${WORK##*.}"
    printf ':%s:M::%s:%s:%s:OCF' "$BINFMT_NAME" "$AARCH64_MAGIC" "$AARCH64_MASK" "$QEMU" \
        >"$BINFMT_DIR/register" || fail "cannot register $QEMU with binfmt_misc"
    ok "binfmt_misc: aarch64 programs run with $QEMU for this run ($BINFMT_DIR/$BINFMT_NAME)"
}

unregister_binfmt() {
    if [[ -e $BINFMT_DIR/$1 ]]; then
        printf -- '-1' >"$BINFMT_DIR/$1" || note "could not remove the binfmt_misc registration $1"
    fi
}

# Unmounts binfmt_misc when a run of this script mounted it and no registration is left.
release_binfmt_mount() {
    [[ -e $BINFMT_MOUNTED_MARK ]] || return 0
    if mountpoint -q "$BINFMT_DIR"; then
        local entry
        for entry in "$BINFMT_DIR"/*; do
            case ${entry##*/} in
                register | status) ;;
                *) return 0 ;;
            esac
        done
        umount "$BINFMT_DIR" || return 0
    fi
    rm -f "$BINFMT_MOUNTED_MARK"
}

# A registration whose run is over (its work directory gone, or its lock free) is removed.
reap_stale_binfmt() {
    mountpoint -q "$BINFMT_DIR" || return 0
    local entry dir
    for entry in "$BINFMT_DIR"/markoff-test-*; do
        [[ -e $entry ]] || continue
        dir="$WORK_PREFIX${entry##*/markoff-test-}"
        if [[ ! -d $dir ]] || flock -n "$dir/lock" true; then
            unregister_binfmt "${entry##*/}"
            note "removed the binfmt_misc registration an earlier run left behind: ${entry##*/}"
        fi
    done
    release_binfmt_mount
}

# Mounts what apt and the daemon need inside the root, and keeps services from starting there
# (the daemon is started by hand, or by the root's own systemd in boot_test).
#
# The root gets a /dev of its own (a small tmpfs with the usual nodes and a private devpts
# instance) and a read-only /sys: with the host's /dev bound in, the package scripts run by apt
# in the root, or an rm -rf of a root left mounted, could change or delete the host's device
# nodes.
attach_root() {
    mount -t proc proc "$CHROOT/proc"
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$CHROOT/sys"
    mount -t tmpfs -o mode=0755,nosuid,size=1m markoff-test-dev "$CHROOT/dev"
    local node name major minor
    for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
        IFS=: read -r name major minor <<<"$node"
        mknod -m 0666 "$CHROOT/dev/$name" c "$major" "$minor"
    done
    mkdir -m 0755 "$CHROOT/dev/pts"
    mkdir -m 1777 "$CHROOT/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$CHROOT/dev/pts"
    ln -s pts/ptmx "$CHROOT/dev/ptmx"
    ln -s /proc/self/fd "$CHROOT/dev/fd"
    ln -s /proc/self/fd/0 "$CHROOT/dev/stdin"
    ln -s /proc/self/fd/1 "$CHROOT/dev/stdout"
    ln -s /proc/self/fd/2 "$CHROOT/dev/stderr"
    printf '#!/bin/sh\nexit 101\n' >"$CHROOT/usr/sbin/policy-rc.d"
    chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
}

# The reverse of attach_root: the root as it would boot.
detach_root() {
    local m
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$CHROOT/$m"; then
            umount "$CHROOT/$m" 2>/dev/null || umount -l "$CHROOT/$m"
        fi
    done
    rm -f "$CHROOT/usr/sbin/policy-rc.d"
}

# expect_stat PATH OWNER:GROUP MODE (inside the root)
expect_stat() {
    [[ -e $CHROOT$1 ]] || fail "$1 is missing"
    # Names as the root sees them (its /etc/passwd), not the host's.
    local uid gid mode user group
    read -r uid gid mode < <(stat -c '%u %g %a' "$CHROOT$1")
    user=$(in_root getent passwd "$uid" | cut -d: -f1)
    group=$(in_root getent group "$gid" | cut -d: -f1)
    [[ "$user:$group $mode" == "$2 $3" ]] || fail "$1 is $user:$group $mode, expected $2 $3"
    ok "$1 $2 $3"
}

# --------------------------------------------------------------------------------------------

preflight() {
    section "Tools"
    [[ $(id -u) -eq 0 ]] || fail "must run as root (debootstrap, chroot and mounts)"
    local t
    for t in debootstrap lintian dpkg-deb chroot python3 systemd-nspawn psql; do
        command -v "$t" >/dev/null 2>&1 || fail "$t is missing (tests/run.sh installs it under CI=true)"
    done
    if [[ $ARCH != "$HOST_ARCH" ]]; then
        [[ $HOST_ARCH == amd64 && $ARCH == arm64 ]] ||
            fail "a root of $ARCH cannot be tested on $HOST_ARCH (only this machine's architecture, or arm64 on amd64)"
        QEMU=$(command -v qemu-aarch64) || fail "qemu-aarch64 is missing (tests/package/setup-qemu.sh)"
        SLOWDOWN=5
        local major
        major=$("$QEMU" --version | sed -n '1s/^qemu-aarch64 version \([0-9]*\)\..*/\1/p')
        [[ -n $major && $major -ge 8 ]] ||
            fail "$("$QEMU" --version | head -n 1) hangs on threaded programs; 8 or newer is needed (tests/package/setup-qemu.sh)"
        note "$("$QEMU" --version | head -n 1)"
    fi
    cargo deb --version >/dev/null 2>&1 || fail "cargo-deb is missing (packaging/build-deb.sh --setup)"
    pg postgres -c 'SELECT 1' >/dev/null 2>&1 ||
        fail "PostgreSQL at $PG_ADDR does not answer as postgres (tests/run.sh starts it)"
    note "$(cargo deb --version), lintian $(lintian --version | awk '{print $2}'), suite $SUITE, $ARCH"
}

build_packages() {
    if [[ ${MARKOFF_DEB_NO_BUILD:-0} == 1 ]]; then
        section "Packages (already built)"
    else
        section "Building the packages (packaging/build-deb.sh $ARCH)"
        packaging/build-deb.sh "$ARCH"
    fi
    local version
    version=$(cargo metadata --no-deps --format-version 1 --locked |
        python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "markoff"))')
    DEB_GATEWAY="target/debian/markoff_${version}-1_${ARCH}.deb"
    DEB_CENTRAL="target/debian/markoff-central_${version}-1_${ARCH}.deb"
    [[ -f $DEB_GATEWAY ]] || fail "$DEB_GATEWAY was not built"
    [[ -f $DEB_CENTRAL ]] || fail "$DEB_CENTRAL was not built"
    note "$DEB_GATEWAY"
    note "$DEB_CENTRAL"
    # The next revision of the same package, for the upgrade in boot_test: dpkg runs the upgrade
    # paths of the maintainer scripts (prerm upgrade, postinst configure OLD), which restart the
    # service. Repacked with dpkg-deb, so target/debian/ stays as built.
    local unpacked="$WORK/upgrade/markoff" new_version
    mkdir -p "$WORK/upgrade"
    dpkg-deb -R "$DEB_GATEWAY" "$unpacked"
    new_version="$(dpkg-deb -f "$DEB_GATEWAY" Version | sed 's/-[0-9]*$//')-2"
    sed -i "s/^Version: .*/Version: $new_version/" "$unpacked/DEBIAN/control"
    DEB_UPGRADE="$WORK/upgrade/markoff_${new_version}_${ARCH}.deb"
    dpkg-deb --root-owner-group -b "$unpacked" "$DEB_UPGRADE" >/dev/null || fail "repacking the upgrade package failed"
    note "$DEB_UPGRADE (the upgrade)"
}

check_control() {
    section "Package metadata"
    local depends
    depends=$(dpkg-deb --field "$DEB_GATEWAY" Depends)
    note "markoff Depends: $depends"
    local need
    for need in libc6 systemd procps opus-tools; do
        [[ $depends == *"$need"* ]] || fail "markoff does not depend on $need"
    done
    ok "markoff depends on libc6, systemd, procps and opus-tools"
    dpkg-deb --ctrl-tarfile "$DEB_GATEWAY" | tar -xO ./conffiles >"$WORK/conffiles"
    grep -qx /etc/markoff/markoff.toml "$WORK/conffiles" || fail "/etc/markoff/markoff.toml is not a conffile"
    grep -qx /etc/default/markoff "$WORK/conffiles" || fail "/etc/default/markoff is not a conffile"
    ok "conffiles: $(tr '\n' ' ' <"$WORK/conffiles")"
}

run_lintian() {
    section "lintian"
    local deb out
    for deb in "$DEB_GATEWAY" "$DEB_CENTRAL"; do
        # Errors fail the test; warnings are printed for the record.
        if ! out=$(lintian --fail-on error --display-info "$deb" 2>&1); then
            printf '%s\n' "$out" >&2
            fail "lintian reports errors in $deb"
        fi
        [[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/    /'
        ok "lintian: no errors in $(basename "$deb")"
    done
}

make_root() {
    section "Debian root ($SUITE, $ARCH)"
    CHROOT="$WORK/root"
    if [[ $ARCH != "$HOST_ARCH" ]]; then
        # Made afresh every run: debootstrap's second stage runs the root's own programs, here
        # under qemu-aarch64.
        note "debootstrap --arch=$ARCH --variant=minbase $SUITE from $MIRROR"
        debootstrap --arch="$ARCH" --variant=minbase "$SUITE" "$CHROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
            { tail -n 30 "$WORK/debootstrap.log" >&2; fail "debootstrap --arch=$ARCH failed"; }
        [[ $(in_root dpkg --print-architecture) == "$ARCH" ]] || fail "the root is not $ARCH"
        cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
        attach_root
        ok "$ARCH root ready in $CHROOT ($(in_root uname -m) under $QEMU)"
        return 0
    fi
    local tarball="$CACHE/$SUITE-$ARCH-minbase.tar"
    if [[ ! -f $tarball ]]; then
        note "debootstrap --variant=minbase $SUITE from $MIRROR (cached in $tarball)"
        mkdir -p "$CACHE"
        local fresh="$WORK/fresh"
        debootstrap --variant=minbase "$SUITE" "$fresh" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
            { tail -n 30 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }
        tar -C "$fresh" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf --one-file-system "$fresh"
    fi
    mkdir -p "$CHROOT"
    tar -C "$CHROOT" -xf "$tarball"
    cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
    attach_root
    ok "root ready in $CHROOT"
}

install_packages() {
    section "apt-get install ./markoff.deb ./markoff-central.deb"
    cp "$DEB_GATEWAY" "$DEB_CENTRAL" "$CHROOT/tmp/"
    in_root apt-get update -q >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; fail "apt-get update failed"; }
    # apt resolves the declared dependencies (systemd, procps, opus-tools, ...) from the mirror.
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "/tmp/$(basename "$DEB_GATEWAY")" "/tmp/$(basename "$DEB_CENTRAL")" >>"$WORK/apt.log" 2>&1 ||
        { tail -n 40 "$WORK/apt.log" >&2; fail "installing the packages failed"; }
    # shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
    in_root dpkg-query -W -f '${Status}\n' markoff | grep -q 'install ok installed' || fail "markoff is not installed"
    # shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
    in_root dpkg-query -W -f '${Status}\n' markoff-central | grep -q 'install ok installed' ||
        fail "markoff-central is not installed"
    ok "both packages installed with their dependencies"
}

check_files() {
    section "Files, owners and modes"
    expect_stat /usr/bin/markoff root:root 755
    expect_stat /usr/bin/markoff-central root:root 755
    expect_stat /etc/markoff/markoff.toml root:root 644
    expect_stat /etc/default/markoff root:root 600
    expect_stat /etc/markoff/credentials root:root 700
    expect_stat /etc/markoff/central.toml root:root 644
    expect_stat /etc/default/markoff-central root:root 600
    expect_stat /etc/markoff/central-credentials root:root 700
    expect_stat /etc/markoff/central-maintain-credentials root:root 700
    expect_stat /etc/default/markoff-central-maintain root:root 600
    expect_stat /usr/lib/systemd/system/markoff.service root:root 644
    expect_stat /usr/lib/systemd/system/markoff-central.service root:root 644
    expect_stat /usr/lib/systemd/system/markoff-central-maintain.service root:root 644
    expect_stat /usr/lib/systemd/system/markoff-central-maintain.timer root:root 644
    expect_stat /usr/lib/sysusers.d/markoff.conf root:root 644
    expect_stat /var/lib/markoff markoff:markoff 750
    expect_stat /usr/lib/tmpfiles.d/markoff.conf root:root 644
    # Made by the postinst's systemd-tmpfiles (the root is not booted), as at boot.
    expect_stat /run/markoff markoff:markoff-operators 2750
    cmp -s "$CHROOT/etc/markoff/markoff.toml" config/markoff.toml || fail "the shipped config is not config/markoff.toml"
    ok "/etc/markoff/markoff.toml is the reference config/markoff.toml"
    [[ -f $CHROOT/usr/share/doc/markoff/operations.md && -f $CHROOT/usr/share/doc/markoff/copyright ]] ||
        fail "docs or copyright missing in /usr/share/doc/markoff"
    ok "docs and copyright in /usr/share/doc/markoff"
    [[ -f $CHROOT/usr/share/man/man1/markoff.1.gz && -f $CHROOT/usr/share/man/man1/markoff-validate.1.gz &&
        -f $CHROOT/usr/share/man/man1/markoff-central-serve.1.gz ]] || fail "manual pages missing in /usr/share/man/man1"
    ok "manual pages in /usr/share/man/man1"
    local v
    [[ -f $CHROOT/usr/share/bash-completion/completions/markoff && -f $CHROOT/usr/share/zsh/vendor-completions/_markoff &&
        -f $CHROOT/usr/share/fish/vendor_completions.d/markoff.fish ]] || fail "shell completions missing"
    v=$(in_root bash -c 'source /usr/share/bash-completion/completions/markoff && complete -p markoff') ||
        fail "the bash completion of markoff does not load in the root"
    ok "shell completions for bash, zsh and fish installed ($v)"
    v=$(in_root markoff --version) || fail "markoff --version fails in the root"
    ok "$v runs in the root"
    v=$(in_root markoff-central --version) || fail "markoff-central --version fails in the root"
    ok "$v runs in the root"
}

check_user() {
    section "The markoff user"
    local entry uid shell home groups
    entry=$(in_root getent passwd markoff) || fail "no markoff user"
    IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
    ((uid < 1000)) || fail "markoff is not a system user (uid $uid)"
    [[ $home == /var/lib/markoff ]] || fail "markoff's home is $home"
    [[ $shell == */nologin ]] || fail "markoff can log in (shell $shell)"
    groups=$(in_root id -nG markoff)
    [[ " $groups " == *" dialout "* ]] || fail "markoff is not in dialout (groups: $groups)"
    ok "markoff: system user $uid, home $home, shell $shell, groups: $groups"
    local gid
    gid=$(in_root getent group markoff-operators | cut -d: -f3) || fail "no group markoff-operators"
    ((gid < 1000)) || fail "markoff-operators is not a system group (gid $gid)"
    [[ " $groups " != *" markoff-operators "* ]] || fail "markoff should not be in markoff-operators"
    ok "markoff-operators: system group $gid (markoff is not a member)"
    in_root getent passwd markoff-central >/dev/null || fail "no markoff-central user"
    groups=$(in_root id -nG markoff-central)
    [[ " $groups " != *" dialout "* ]] || fail "markoff-central should not be in dialout"
    ok "markoff-central: system user, not in dialout"
}

check_units() {
    section "systemd units"
    [[ -L $CHROOT/etc/systemd/system/multi-user.target.wants/markoff.service ]] ||
        fail "markoff.service is not enabled"
    ok "markoff.service enabled (multi-user.target.wants)"
    [[ ! -e $CHROOT/etc/systemd/system/multi-user.target.wants/markoff-central.service ]] ||
        fail "markoff-central.service should not be enabled on installation"
    ok "markoff-central.service installed, not enabled"
    [[ ! -e $CHROOT/etc/systemd/system/timers.target.wants/markoff-central-maintain.timer ]] ||
        fail "markoff-central-maintain.timer should not be enabled on installation"
    ok "markoff-central-maintain.timer installed, not enabled"
    local unit out score
    for unit in markoff.service markoff-central.service markoff-central-maintain.service \
        markoff-central-maintain.timer; do
        out=$(in_root systemd-analyze verify "/usr/lib/systemd/system/$unit" 2>&1) ||
            { printf '%s\n' "$out" >&2; fail "systemd-analyze verify $unit"; }
        [[ -z $out ]] || { printf '%s\n' "$out" >&2; fail "systemd-analyze verify $unit warns"; }
        ok "systemd-analyze verify $unit: clean"
    done
    for unit in markoff markoff-central markoff-central-maintain; do
        score=$(in_root systemd-analyze security --offline=true "/usr/lib/systemd/system/$unit.service" 2>&1 |
            sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        [[ -n $score ]] || fail "no exposure score for $unit.service"
        # docs/operations.md records the score; it must stay in the "OK" band (below 2.0).
        python3 -c "import sys; sys.exit(0 if float('$score') < 2.0 else 1)" ||
            fail "$unit.service exposure $score (must stay below 2.0)"
        ok "$unit.service exposure level $score"
    done
}

check_validate() {
    section "markoff validate of the shipped config"
    local out
    out=$(as_markoff markoff validate --config /etc/markoff/markoff.toml 2>&1) ||
        { printf '%s\n' "$out" >&2; fail "markoff validate rejects the shipped config"; }
    ok "markoff validate --config /etc/markoff/markoff.toml: $(printf '%s' "$out" | head -n 1)"
    # The shipped config starts no source.
    awk '/^\[sources\.simulator\]/{s=1} s&&/^enabled *=/{print; exit}' "$CHROOT/etc/markoff/markoff.toml" |
        grep -q 'false' || fail "the shipped config enables the simulator"
    grep -Eq '^\[\[?sources\.(modbus|mqtt)' "$CHROOT/etc/markoff/markoff.toml" &&
        fail "the shipped config configures a Modbus or MQTT source"
    ok "no source enabled in the shipped config"
    # A config with a mistake is refused with EX_CONFIG, file:line:col.
    sed 's/^shutdown_timeout = "20s"/shutdown_timeout = "twenty"/' "$CHROOT/etc/markoff/markoff.toml" \
        >"$CHROOT/tmp/broken.toml"
    chmod 644 "$CHROOT/tmp/broken.toml"
    local rc=0
    out=$(as_markoff markoff validate --config /tmp/broken.toml 2>&1) || rc=$?
    [[ $rc -eq 78 ]] || fail "markoff validate of a broken config exited $rc, expected 78"
    [[ $out == *"/tmp/broken.toml:"* ]] || fail "validate did not name file:line:col: $out"
    ok "a broken config is refused (exit 78, $(printf '%s' "$out" | grep -m1 -o '/tmp/broken.toml:[0-9]*:[0-9]*'))"
}

# The notify socket the daemon reports to, as systemd's would be: a datagram socket whose
# messages a small listener appends to a file.
start_notify_listener() {
    mkdir -p "$CHROOT/run/markoff-test"
    python3 - "$CHROOT/run/markoff-test/notify.sock" "$WORK/notify.log" <<'EOF' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
with open(log, "a", buffering=1) as f:
    while True:
        data = s.recv(4096).decode(errors="replace")
        for line in data.splitlines():
            f.write(line + "\n")
EOF
    NOTIFY_PID=$!
    eventually "the notify listener is up" 50 0.1 test -S "$CHROOT/run/markoff-test/notify.sock"
    : >>"$WORK/notify.log"
}

notified() { grep -qx "$1" "$WORK/notify.log"; }
# At least $2 lines equal to $1.
notified_times() { [[ $(grep -cx "$1" "$WORK/notify.log" || true) -ge $2 ]]; }

daemon_alive() { kill -0 "$DAEMON_PID" 2>/dev/null; }

readings_stored() {
    local out
    out=$(as_markoff markoff readings --json --config /etc/markoff/sim.toml 2>/dev/null) || return 1
    [[ $out == *'"f1.r'*'.temperature"'* ]]
}

# Logs in to the LAN page with a token; prints the status code and "cookie" when a session
# cookie was set.
lan_login() {
    python3 - "$(cat "$CHROOT/var/lib/markoff/markoff.lan")" "$1" <<'EOF'
import http.client, sys, urllib.parse
addr = sys.argv[1].strip()
addr = addr.split("://", 1)[-1].rstrip("/")
conn = http.client.HTTPConnection(addr, timeout=10)
body = urllib.parse.urlencode({"token": sys.argv[2]})
conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
r = conn.getresponse()
cookie = "markoff_lan=" in (r.getheader("Set-Cookie") or "")
print(r.status, "cookie" if cookie else "")
EOF
}

run_daemon() {
    section "The daemon on the simulator, as the unit runs it"
    # The shipped config with the simulator on, the API on a free port and one LAN token from
    # the credentials directory (named the way LoadCredential=markoff:/etc/markoff/credentials
    # names it), so that the credential lookup is exercised too.
    awk '
        /^\[sources\.simulator\]/ { sim = 1 }
        sim && /^enabled = false/ { print "enabled = true"; sim = 0; next }
        /^\[lan\]/ { lan = 1 }
        lan && /^enabled = false/ { print "enabled = true"; next }
        lan && /^listen = / { print "listen = \"127.0.0.1:0\""; lan = 0; next }
        /^listen = "127\.0\.0\.1:9780"/ { print "listen = \"127.0.0.1:0\""; next }
        { print }
    ' "$CHROOT/etc/markoff/markoff.toml" >"$CHROOT/etc/markoff/sim.toml"
    # Three local accounts for the API socket: ivan and olga, members of markoff-operators
    # mapped to an operator and a viewer, and nadia, outside the group. An alarm that is always
    # active, for them to try to acknowledge.
    local member
    for member in ivan olga; do
        in_root useradd --no-create-home --shell /usr/sbin/nologin --groups markoff-operators "$member" ||
            fail "cannot create the account $member in markoff-operators"
    done
    in_root useradd --no-create-home --shell /usr/sbin/nologin nadia || fail "cannot create the account nadia"
    cat >>"$CHROOT/etc/markoff/sim.toml" <<'EOF'

[[users]]
login = "installer"
role = "viewer"

[[users]]
login = "ivan"
role = "operator"
unix_user = "ivan"

[[users]]
login = "olga"
role = "viewer"
unix_user = "olga"

[[alarms.rule]]
alert = "InstallTestWarm"
kind = "high"
sensor = "f1.r101.temperature"
limit = 0.0
severity = "high"

[[lan.token]]
user = "installer"
token_credential = "lan-test"
EOF
    chmod 644 "$CHROOT/etc/markoff/sim.toml"
    mkdir -p "$CHROOT/run/credentials/markoff.service"
    printf 'install-test-token-0123456789abcdef\n' >"$CHROOT/run/credentials/markoff.service/markoff_lan-test"
    chown -R "$(in_root id -u markoff):$(in_root id -g markoff)" "$CHROOT/run/credentials/markoff.service"
    chmod 500 "$CHROOT/run/credentials/markoff.service"
    chmod 400 "$CHROOT/run/credentials/markoff.service/markoff_lan-test"

    local env=(STATE_DIRECTORY=/var/lib/markoff CREDENTIALS_DIRECTORY=/run/credentials/markoff.service
        MARKOFF_CONFIG=/etc/markoff/sim.toml)
    as_markoff "${env[@]}" markoff validate >/dev/null 2>&1 ||
        { as_markoff "${env[@]}" markoff validate >&2 || true; fail "markoff validate rejects the simulator config"; }
    ok "the simulator config validates (with the credential)"

    start_notify_listener
    # UMask=0077 as in the unit; a 2 s watchdog (the unit's is 30 s) so that pings come soon.
    chroot --userspec=markoff:markoff --groups=dialout "$CHROOT" /usr/bin/env -i \
        PATH=/usr/bin:/bin LANG=C.UTF-8 "${env[@]}" \
        NOTIFY_SOCKET=/run/markoff-test/notify.sock WATCHDOG_USEC=2000000 \
        /bin/sh -c 'umask 077; exec /usr/bin/markoff run' >"$CHROOT/tmp/markoff-run.log" 2>&1 &
    DAEMON_PID=$!
    eventually "the daemon reports READY=1" 100 0.2 notified READY=1
    ok "READY=1 on the notify socket"
    eventually "the simulator's readings are stored and served" 100 0.2 readings_stored
    ok "simulator readings stored in the buffer and served by the local API"
    eventually "a watchdog ping" 100 0.2 notified WATCHDOG=1
    ok "WATCHDOG=1 on the notify socket"
    eventually "the LAN page is up" 100 0.1 test -s "$CHROOT/var/lib/markoff/markoff.lan"
    [[ $(lan_login install-test-token-0123456789abcdef) == "303 cookie" ]] ||
        fail "the LAN page refused the token from the credentials directory"
    [[ $(lan_login wrong-token) == 401* ]] || fail "the LAN page accepted a wrong token"
    ok "LAN page login with the token read from \$CREDENTIALS_DIRECTORY/markoff_lan-test"
    grep -q '^STATUS=' "$WORK/notify.log" || fail "no STATUS= line"
    ok "$(grep -m1 '^STATUS=' "$WORK/notify.log")"
    expect_stat /var/lib/markoff/markoff.db markoff:markoff 600
    expect_stat /run/markoff/api.sock markoff:markoff-operators 660

    kill -HUP "$DAEMON_PID"
    eventually "the reload is reported" 100 0.1 notified RELOADING=1
    eventually "READY=1 again after the reload" 100 0.1 notified_times READY=1 2
    daemon_alive || fail "the daemon died on SIGHUP"
    ok "SIGHUP: RELOADING=1, READY=1, still running"

    kill -TERM "$DAEMON_PID"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=""
    [[ $rc -eq 0 ]] || fail "the daemon exited $rc on SIGTERM"
    notified STOPPING=1 || fail "no STOPPING=1 on shutdown"
    ok "SIGTERM: STOPPING=1, exit 0"
    grep -qi 'panick' "$CHROOT/tmp/markoff-run.log" && fail "the daemon panicked"
    ok "no panic in the daemon's log"
}

# The probe that runs inside the booted root as a service: checks markoff.service as systemd
# runs it, writes "ok: ..." / "FAIL: ..." lines to /markoff-probe.out, then powers off.
write_probe() {
    cat >"$CHROOT/usr/local/sbin/markoff-probe" <<'EOF'
#!/bin/sh
out=/markoff-probe.out
ok() { echo "ok: $*" >>$out; }
bad() { echo "FAIL: $*" >>$out; }
finish() {
    journalctl -u markoff --no-pager -o cat >/markoff-journal.txt 2>&1
    journalctl -u markoff-central-maintain --no-pager -o cat >/markoff-central-journal.txt 2>&1
    echo done >>$out
    systemctl poweroff
    exit 0
}
prop() { systemctl show -P "$1" markoff.service; }
# wait_for SECONDS COMMAND...: polls every half second.
wait_for() {
    n=$(($1 * 2)); shift
    while [ $n -gt 0 ]; do
        if "$@"; then return 0; fi
        sleep 0.5; n=$((n - 1))
    done
    return 1
}
is_active() { [ "$(prop ActiveState)" = active ]; }
readings() { markoff readings --json --config /etc/markoff/sim.toml 2>/dev/null | grep -q '"f1\.r.*\.temperature"'; }
# The watchdog timestamp moves on with every ping (the first one is set at READY).
watchdog_pinged() { [ "$(prop WatchdogTimestampMonotonic)" != "$1" ]; }
journal_has() { journalctl -u markoff --no-pager -o cat | grep -q "$1"; }
restarted() { [ "$(prop NRestarts)" -ge 1 ] && is_active && [ "$(prop MainPID)" != "$1" ]; }

if ! wait_for 60 is_active; then
    bad "markoff.service did not become active: $(prop ActiveState)/$(prop SubState) $(prop Result)"
    finish
fi
ok "markoff.service active under systemd (Type=notify: READY received)"
pid=$(prop MainPID)
ok "status: $(prop StatusText)"
ids=$(ps -o user=,group=,supgrp= -p "$pid" | tr -s ' ')
case "$ids" in
    "markoff markoff "*dialout*) ok "runs as markoff:markoff with dialout ($ids)" ;;
    *) bad "runs as: $ids" ;;
esac
grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status && ok "NoNewPrivs" || bad "NoNewPrivs not set"
grep -q '^Seccomp:[[:space:]]*2' /proc/$pid/status && ok "seccomp filter in force" || bad "no seccomp filter"
grep -q '^CapEff:[[:space:]]*0000000000000000' /proc/$pid/status && ok "no capabilities" || bad "has capabilities"
[ -f /run/credentials/markoff.service/markoff_lan-test ] &&
    ok "LoadCredential= passed /etc/markoff/credentials/lan-test as markoff_lan-test" ||
    bad "credential markoff_lan-test missing: $(ls /run/credentials/markoff.service 2>&1)"
journalctl -u markoff --no-pager -o verbose | grep -q '^ *F_TOKENS=1$' &&
    journal_has 'LAN page listening' && ok "the LAN page read its token from the credential" ||
    bad "the LAN page did not start with the credential's token"
wait_for 30 readings && ok "simulator readings stored and served" || bad "no simulator readings"
[ "$(stat -c '%U:%G %a' /var/lib/markoff/markoff.db)" = "markoff:markoff 600" ] &&
    ok "/var/lib/markoff/markoff.db markoff:markoff 600 (UMask=0077)" ||
    bad "buffer file is $(stat -c '%U:%G %a' /var/lib/markoff/markoff.db)"
wait_for 25 watchdog_pinged "$(prop WatchdogTimestampMonotonic)" && ok "watchdog pings arrive (WatchdogSec=$(prop WatchdogUSec))" ||
    bad "no watchdog ping"

# The API socket: nadia (outside markoff-operators) cannot act, olga (a member, unix_user of
# the viewer olga) is refused, ivan (a member, unix_user of the operator ivan) acknowledges as
# ivan. The host checks the audit log after the run.
sock=/run/markoff/api.sock
# The socket directory and the socket, as the daemon serves them (after $1).
socket_access() {
    if [ "$(stat -c '%U:%G %a' /run/markoff 2>&1)" = "markoff:markoff-operators 2750" ] &&
        [ "$(stat -c '%U:%G %a' $sock 2>&1)" = "markoff:markoff-operators 660" ]; then
        ok "$1: /run/markoff markoff:markoff-operators 2750, $sock markoff:markoff-operators 660"
    else
        bad "$1: /run/markoff $(stat -c '%U:%G %a' /run/markoff 2>&1), $sock $(stat -c '%U:%G %a' $sock 2>&1)"
    fi
}
socket_access "started by systemd"
journalctl -u markoff --no-pager -o verbose | grep -q '^ *F_GROUP=markoff-operators$' &&
    journal_has 'API socket listening' && ok "the journal names the socket's group (GROUP=markoff-operators)" ||
    bad "the journal does not name markoff-operators as the socket's group"
alarms_json() { markoff alarms --all --json --config /etc/markoff/sim.toml 2>/dev/null | tr -d ' \n'; }
alarm_id() { alarms_json | grep -o '"id":[0-9]*' | head -n 1 | cut -d: -f2; }
raised() { [ -n "$(alarm_id)" ]; }
acked_by() { alarms_json | grep -o '"acked_by":[^,}]*' | head -n 1 | cut -d: -f2; }
as_user() { u=$1; shift; runuser -u "$u" -- markoff "$@" --config /etc/markoff/sim.toml --socket $sock 2>&1; }
if wait_for 60 raised; then
    id=$(alarm_id)
    if said=$(as_user nadia ack "$id"); then
        bad "nadia, outside markoff-operators, acknowledged alarm $id: $said"
    else
        case "$said" in
            *socket*) ok "nadia (not in markoff-operators) is refused on $sock" ;;
            *) bad "nadia's ack failed, but not at the socket: $said" ;;
        esac
    fi
    [ "$(acked_by)" = null ] && ok "alarm $id still unacknowledged" || bad "alarm $id acked by $(acked_by)"
    if said=$(as_user olga ack "$id"); then
        bad "olga, a viewer, acknowledged alarm $id: $said"
    else
        case "$said" in
            *403*) ok "olga (markoff-operators, unix_user of the viewer olga) is refused: $said" ;;
            *) bad "olga's ack failed, but not with 403: $said" ;;
        esac
    fi
    [ "$(acked_by)" = null ] && ok "alarm $id still unacknowledged" || bad "alarm $id acked by $(acked_by)"
    if said=$(as_user ivan ack "$id"); then
        ok "ivan (markoff-operators, unix_user of the operator ivan) acknowledged alarm $id: $said"
    else
        bad "ivan's ack of alarm $id failed: $said"
    fi
    [ "$(acked_by)" = '"ivan"' ] && ok "alarm $id acked_by ivan" || bad "alarm $id acked_by $(acked_by)"
else
    bad "the alarm InstallTestWarm was not raised: $(alarms_json)"
fi

if systemctl reload markoff && is_active && [ "$(prop MainPID)" = "$pid" ] && wait_for 10 journal_has 'Config reloaded'; then
    ok "systemctl reload: validated, SIGHUP, reloaded in place"
else
    bad "systemctl reload failed"
fi
cp /etc/markoff/sim.toml /root/sim.toml.good
echo 'this is not toml' >>/etc/markoff/sim.toml
if systemctl reload markoff 2>/dev/null; then
    bad "reload accepted an invalid config"
elif is_active && [ "$(prop MainPID)" = "$pid" ]; then
    ok "reload of an invalid config refused by ExecReload's validate; the service runs on"
else
    bad "an invalid config stopped the service"
fi
cp /root/sim.toml.good /etc/markoff/sim.toml

kill -KILL "$pid"
if wait_for 30 restarted "$pid"; then
    ok "killed with SIGKILL: restarted by systemd (NRestarts=$(prop NRestarts))"
else
    bad "not restarted after SIGKILL: $(prop ActiveState)/$(prop SubState)"
fi
wait_for 30 readings && ok "readings served again after the restart" || bad "no readings after the restart"
socket_access "restarted after SIGKILL"

# An upgrade to the next revision of the package, with the service running. The maintainer
# scripts restart the service: it stops cleanly (the daemon logs "Stopped cleanly" on SIGTERM,
# a crash would not) and starts again, on the same buffer: the latest reading of a sensor from
# before the upgrade (its seq and time) is still in that sensor's history after it.
sensor=$(markoff readings --json --config /etc/markoff/sim.toml 2>/dev/null | grep -o '"f1\.r[^"]*\.temperature"' | head -n 1 | tr -d '"')
seq_and_ts() {
    markoff readings "$sensor" --json --limit "$1" --config /etc/markoff/sim.toml 2>/dev/null | tr -d ' ' | grep -A1 '^"seq":'
}
clean_stops() { journalctl -u markoff --no-pager -o cat | grep -c 'Stopped cleanly'; }
upgraded() {
    [ "$(dpkg-query -W -f '${Version}' markoff)" = "$1" ] && is_active && [ "$(prop MainPID)" != "$2" ] &&
        [ "$(clean_stops)" -gt "$3" ]
}
in_history() { seq_and_ts 10000 | grep -A1 -Fx "$1" | grep -qFx "$2"; }
newer_reading() { [ "$(seq_and_ts 1 | head -n 1)" != "$1" ]; }
pid=$(prop MainPID)
stops0=$(clean_stops)
before=$(seq_and_ts 1 | head -n 2)
seq0=$(printf '%s\n' "$before" | sed -n 1p)
ts0=$(printf '%s\n' "$before" | sed -n 2p)
new=$(dpkg-deb -f /root/markoff-upgrade.deb Version)
if DEBIAN_FRONTEND=noninteractive dpkg -i /root/markoff-upgrade.deb >/markoff-upgrade.log 2>&1 &&
    wait_for 30 upgraded "$new" "$pid" "$stops0"; then
    ok "upgrade to $new (dpkg -i): markoff.service stopped cleanly and started again (pid $pid, then $(prop MainPID))"
else
    bad "upgrade to $new: $(dpkg-query -W -f '${Version} ${Status}' markoff), service $(prop ActiveState), pid $(prop MainPID) (was $pid), clean stops $(clean_stops) (were $stops0): $(tail -n 3 /markoff-upgrade.log)"
fi
case "$seq0/$ts0" in
    '"seq":'*/'"ts":'*)
        if in_history "$seq0" "$ts0" && wait_for 30 newer_reading "$seq0"; then
            ok "the buffer survives the upgrade: $sensor keeps its reading $seq0 $ts0 and gets newer ones"
        else
            bad "after the upgrade $sensor lacks its reading $seq0 $ts0, or gets no newer one"
        fi
        ;;
    *) bad "no reading of '$sensor' before the upgrade: '$before'" ;;
esac
socket_access "upgraded"

systemctl stop markoff
[ "$(prop ActiveState)" = inactive ] && [ "$(prop Result)" = success ] &&
    ok "systemctl stop: clean exit" || bad "stop: $(prop ActiveState) $(prop Result)"
journal_has 'panicked' && bad "the journal shows a panic"

# The central maintenance: the timer, and one run of its service against the test database
# (DATABASE_URL in /etc/default/markoff-central-maintain, written by the host script).
timer() { systemctl show -P "$1" markoff-central-maintain.timer; }
if systemctl enable --now markoff-central-maintain.timer >/dev/null 2>&1 &&
    [ "$(timer ActiveState)" = active ] && [ -n "$(timer NextElapseUSecRealtime)" ]; then
    ok "markoff-central-maintain.timer enabled and scheduled (next: $(timer NextElapseUSecRealtime))"
else
    bad "markoff-central-maintain.timer: $(timer ActiveState), next '$(timer NextElapseUSecRealtime)'"
fi
created() { journalctl -u markoff-central-maintain --no-pager -o cat | grep -qx 'readings partitions created: 1'; }
if systemctl start markoff-central-maintain.service; then
    wait_for 10 created && ok "markoff-central-maintain.service: 1 partition created" ||
        bad "markoff-central-maintain.service: $(journalctl -u markoff-central-maintain --no-pager -o cat | tail -n 3)"
    uids=$(journalctl -u markoff-central-maintain 'MESSAGE=readings partitions created: 1' --no-pager -o export |
        sed -n 's/^_UID=//p' | sort -u)
    [ -n "$uids" ] && [ "$uids" = "$(id -u markoff-central)" ] &&
        ok "it ran as markoff-central (uid $uids) with the owner's password credential" ||
        bad "it ran as uid '$uids', not markoff-central ($(id -u markoff-central))"
else
    bad "markoff-central-maintain.service failed: $(systemctl show -P Result markoff-central-maintain.service)"
fi
finish
EOF
    chmod 755 "$CHROOT/usr/local/sbin/markoff-probe"
    cat >"$CHROOT/etc/systemd/system/markoff-probe.service" <<'EOF'
[Unit]
Description=Install test probe of markoff.service
After=multi-user.target markoff.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/markoff-probe
EOF
    ln -sf /etc/systemd/system/markoff-probe.service \
        "$CHROOT/etc/systemd/system/multi-user.target.wants/markoff-probe.service"
}

# A central database for the maintenance unit: migrated by the packaged markoff-central (run in
# the root, which shares the host's network), then its newest partition dropped, for the unit's
# run in the booted root to recreate.
DROPPED_PARTITION=""
prepare_central() {
    pg postgres -c "CREATE DATABASE $PG_DB" >/dev/null || fail "cannot create database $PG_DB"
    PG_CREATED=1
    printf '%s\n' "$PG_DB" >"$WORK/database"
    in_root markoff-central migrate --database-url "$PG_URL" >"$WORK/migrate.log" 2>&1 ||
        { cat "$WORK/migrate.log" >&2; fail "markoff-central migrate (in the root) failed"; }
    DROPPED_PARTITION=$(pg "$PG_DB" -c "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'markoff.readings'::regclass AND c.relname ~ '^readings_[0-9]{4}_[0-9]{2}\$'
        ORDER BY 1 DESC LIMIT 1")
    [[ -n $DROPPED_PARTITION ]] || fail "markoff-central migrate created no monthly partition"
    pg "$PG_DB" -c "DROP TABLE markoff.$DROPPED_PARTITION" >/dev/null
    ok "central database migrated in the root; markoff.$DROPPED_PARTITION dropped for the maintenance to recreate"
    printf 'DATABASE_URL=%s\n' "$PG_URL" >>"$CHROOT/etc/default/markoff-central-maintain"
    # The unit passes the owner's password from this credential (the test server trusts
    # 127.0.0.1, so its value is not checked there; without it the service fails).
    install -m 0600 /dev/stdin "$CHROOT/etc/markoff/central-maintain-credentials/owner-password" <<<'install-test-owner-password'
}

# A root of a foreign architecture is not booted (docs/operations.md says why: under qemu's
# user-mode emulation systemd cannot set up a unit's credentials or seccomp filter, so the units
# cannot run as shipped). The central maintenance runs in it by hand instead, as its unit would:
# as markoff-central, against a central database migrated by the root's markoff-central.
maintain_in_root() {
    section "markoff-central migrate and maintain in the $ARCH root"
    prepare_central
    local out
    out=$(chroot --userspec=markoff-central:markoff-central "$CHROOT" /usr/bin/env -i \
        PATH=/usr/bin:/bin LANG=C.UTF-8 DATABASE_URL="$PG_URL" markoff-central maintain 2>&1) ||
        { printf '%s\n' "$out" >&2; fail "markoff-central maintain failed in the root"; }
    grep -qx 'readings partitions created: 1' <<<"$out" || fail "markoff-central maintain: $out"
    [[ -n $(pg "$PG_DB" -c "SELECT to_regclass('markoff.$DROPPED_PARTITION')") ]] ||
        fail "markoff.$DROPPED_PARTITION was not recreated by the maintenance"
    ok "markoff-central maintain (as markoff-central) recreated markoff.$DROPPED_PARTITION"
    sed -i '/^DATABASE_URL=/d' "$CHROOT/etc/default/markoff-central-maintain"
}

boot_test() {
    section "The unit under systemd: the root booted in a container (systemd-nspawn)"
    # The unit reads the simulator config through /etc/default/markoff and the LAN token from
    # the credentials directory, as an operator would set them up.
    printf 'MARKOFF_CONFIG=/etc/markoff/sim.toml\n' >>"$CHROOT/etc/default/markoff"
    install -m 0600 /dev/stdin "$CHROOT/etc/markoff/credentials/lan-test" <<<'install-test-token-0123456789abcdef'
    rm -rf "$CHROOT/var/lib/markoff/"*
    rm -f "$CHROOT/markoff-probe.out"
    # /tmp of the booted root is a fresh tmpfs.
    cp "$DEB_UPGRADE" "$CHROOT/root/markoff-upgrade.deb"
    write_probe
    prepare_central
    detach_root
    local rc=0
    timeout 240 systemd-nspawn --quiet --register=no --keep-unit -D "$CHROOT" -b \
        >"$WORK/nspawn.log" 2>&1 || rc=$?
    attach_root
    if [[ ! -f $CHROOT/markoff-probe.out ]]; then
        tail -n 40 "$WORK/nspawn.log" >&2
        fail "the container did not run the probe (systemd-nspawn exit $rc)"
    fi
    local line
    while IFS= read -r line; do
        case $line in
            ok:*) ok "${line#ok: }" ;;
            FAIL:*)
                printf '\n--- markoff.service journal ---\n' >&2
                tail -n 40 "$CHROOT/markoff-journal.txt" >&2 || true
                printf '\n--- markoff-central-maintain.service journal ---\n' >&2
                tail -n 20 "$CHROOT/markoff-central-journal.txt" >&2 || true
                fail "${line#FAIL: }"
                ;;
        esac
    done <"$CHROOT/markoff-probe.out"
    grep -qx 'done' "$CHROOT/markoff-probe.out" || fail "the probe did not finish"
    # The audit log of the socket checks: olga's acknowledgement refused and ivan's done, each
    # under their own login and uid; nadia never reached the daemon.
    local audit expected
    audit=$(python3 - "$CHROOT/var/lib/markoff/markoff.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for row in db.execute("SELECT actor, role, channel, action, outcome FROM audit_log ORDER BY id"):
    print("|".join("" if v is None else str(v) for v in row))
PY
    ) || fail "cannot read the audit log of the booted run"
    expected="olga|viewer|socket:uid=$(in_root id -u olga)|ack|refused
ivan|operator|socket:uid=$(in_root id -u ivan)|ack|done"
    [[ $audit == "$expected" ]] || fail "audit log: '$audit', expected '$expected'"
    ok "audit log: $(tr '\n' ' ' <<<"$expected")(the members under their own logins and uids)"
    [[ -n $(pg "$PG_DB" -c "SELECT to_regclass('markoff.$DROPPED_PARTITION')") ]] ||
        fail "markoff.$DROPPED_PARTITION was not recreated by the maintenance"
    ok "markoff.$DROPPED_PARTITION is back in the central database"
    # Back to the shipped defaults for the lifecycle checks.
    sed -i '/^MARKOFF_CONFIG=\/etc\/markoff\/sim.toml$/d' "$CHROOT/etc/default/markoff"
    sed -i '/^DATABASE_URL=/d' "$CHROOT/etc/default/markoff-central-maintain"
}

check_lifecycle() {
    section "Conffile, remove and purge"
    local marker="# changed on site by the install test"
    printf '%s\n' "$marker" >>"$CHROOT/etc/markoff/markoff.toml"
    # The root has the upgrade installed (boot_test): reinstalling that same version. A root of a
    # foreign architecture is not booted and still has the first revision: an upgrade.
    cp "$DEB_UPGRADE" "$CHROOT/tmp/"
    in_root env DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "/tmp/$(basename "$DEB_UPGRADE")" \
        >>"$WORK/apt.log" 2>&1 || fail "reinstalling markoff failed"
    grep -qx "$marker" "$CHROOT/etc/markoff/markoff.toml" || fail "reinstalling overwrote the changed conffile"
    ok "a local change to /etc/markoff/markoff.toml survives reinstalling"

    in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q markoff >>"$WORK/apt.log" 2>&1 ||
        fail "apt-get remove markoff failed"
    [[ ! -e $CHROOT/usr/bin/markoff ]] || fail "/usr/bin/markoff is still there after remove"
    [[ -s $CHROOT/var/lib/markoff/markoff.db ]] || fail "remove deleted the buffer"
    grep -qx "$marker" "$CHROOT/etc/markoff/markoff.toml" || fail "remove deleted the config"
    [[ ! -e $CHROOT/run/markoff ]] || fail "remove left /run/markoff"
    ok "remove: binary and /run/markoff gone; buffer and config kept"

    in_root dpkg --purge markoff >>"$WORK/apt.log" 2>&1 || fail "dpkg --purge markoff failed"
    [[ ! -e $CHROOT/var/lib/markoff ]] || fail "purge left /var/lib/markoff"
    [[ ! -e $CHROOT/etc/markoff/markoff.toml ]] || fail "purge left /etc/markoff/markoff.toml"
    [[ ! -e $CHROOT/etc/markoff/credentials ]] || fail "purge left /etc/markoff/credentials"
    [[ ! -e $CHROOT/etc/default/markoff ]] || fail "purge left /etc/default/markoff"
    [[ -f $CHROOT/etc/markoff/central.toml ]] || fail "purging markoff removed markoff-central's config"
    ok "purge: buffer, config, secrets and defaults gone; markoff-central untouched"
}

# The end-to-end tests that matter most on a gateway, once more against the installed binary of
# a foreign architecture under qemu-aarch64 (with the root's own libraries): every value and
# committed row of the Modbus acquisition against pymodbus over TCP, in every byte order (not RTU
# on a serial line: under the emulator the daemon cannot open the pty, docs/operations.md); the sync to PostgreSQL killed at random moments, exactly once; a backlog
# drained after an outage. The test harness is this machine's (built by cargo as usual).
E2E_TESTS=(
    the_daemon_binary_reads_and_commits_every_value_over_tcp
    kill9_at_random_moments_during_sync_leaves_exactly_the_local_rows_centrally
    a_backlog_drains_by_itself_after_killed_sessions_and_an_outage
)

run_e2e_emulated() {
    section "End-to-end tests against the installed $ARCH markoff (qemu-aarch64)"
    local bin="$WORK/markoff-$ARCH"
    cp "$CHROOT/usr/bin/markoff" "$bin"
    # e_machine of the ELF header: 0xb7 0x00 is aarch64.
    [[ $(od -An -tx1 -j18 -N2 "$bin" | tr -d ' ') == b700 ]] || fail "/usr/bin/markoff of the root is not an aarch64 program"
    local out="$WORK/e2e.log" rc=0
    # --workspace: the features of tests/run.sh's `cargo test --workspace`, so nothing is rebuilt.
    CI=true MARKOFF_BIN="$bin" MARKOFF_BIN_RUNNER="$QEMU -L $CHROOT" \
        MARKOFF_TEST_PATIENCE="${MARKOFF_TEST_PATIENCE:-3}" \
        cargo test --workspace --test modbus_interop --test sync -- --exact "${E2E_TESTS[@]}" \
        >"$out" 2>&1 || rc=$?
    grep -E '^(test |running |markoff under test)' "$out" | sed 's/^/    /'
    [[ $rc -eq 0 ]] || { tail -n 60 "$out" >&2; fail "the end-to-end tests against the $ARCH binary failed"; }
    local passed
    passed=$(grep -c '^test .* ok$' "$out" || true)
    [[ $passed -eq ${#E2E_TESTS[@]} ]] || fail "$passed of ${#E2E_TESTS[@]} end-to-end tests ran and passed"
    grep -q "markoff under test: $bin run by \`$QEMU -L $CHROOT\`" "$out" ||
        fail "the tests did not run the $ARCH binary through $QEMU"
    ok "${#E2E_TESTS[@]} end-to-end tests passed against the $ARCH binary under $QEMU"
}

main() {
    preflight
    # The reaping and the new directory's lock under one lock, so that no run reaps another's
    # directory before its lock is taken.
    exec 8>"${WORK_PREFIX}lock"
    flock 8
    reap_stale_roots
    WORK=$(mktemp -d "${WORK_PREFIX}XXXXXX")
    exec 9>"$WORK/lock"
    flock -n 9 || fail "cannot lock $WORK/lock"
    [[ $ARCH == "$HOST_ARCH" ]] || register_binfmt
    exec 8>&-
    build_packages
    check_control
    run_lintian
    make_root
    install_packages
    check_files
    check_user
    check_units
    check_validate
    run_daemon
    if [[ $ARCH == "$HOST_ARCH" ]]; then
        boot_test
    else
        run_e2e_emulated
        maintain_in_root
    fi
    check_lifecycle
    detach_root
    [[ -c /dev/null ]] || fail "the host's /dev/null is no longer a character device"
    ok "the host's /dev is untouched (/dev/null is still the null device)"
    section "Install test passed: $CHECKS checks"
}

main "$@"
