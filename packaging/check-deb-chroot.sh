#!/usr/bin/env bash
# Runs the Debian package's maintainer scripts for real, in a throwaway Debian chroot made with
# debootstrap in a temporary directory: install, a run of the installed daemon as the scrapyd
# user, upgrade, remove and purge, checking after each what the package promises. Nothing is
# installed on the machine itself, nothing is mounted, and no service is started (there is no
# systemd in the chroot, so the scripts only enable the unit).
#
#   packaging/check-deb-chroot.sh     # as root; needs debootstrap and the Debian mirror
set -euo pipefail
cd "$(dirname "$0")/.."

check_name=check-deb-chroot
# shellcheck source=packaging/check-lib.sh
. packaging/check-lib.sh
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot)"
for tool in debootstrap curl python3; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install $tool)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/check-deb-chroot.XXXXXX")
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill -KILL "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

deb=$(packaging/build-deb.sh)
root=$work/root
suite=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release)
debootstrap --variant=minbase "$suite" "$root" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap $suite"; }
ok "a minimal $suite chroot"

in_root() {
    chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
# `stat` inside the chroot, so that user and group names are the chroot's.
owner_mode() { in_root stat -c '%U:%G %a' "$1"; }
exists() { in_root test -e "$1"; }

cp "$deb" "$root/tmp/"
package=/tmp/$(basename "$deb")
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get update in the chroot"; }
in_root apt-get install -y -qq --no-install-recommends "$package" >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "apt-get install of the package in the chroot"; }
ok "apt-get install $(basename "$deb") with its dependencies"

# --- install ----------------------------------------------------------------------------------

IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd scrapyd) || fail "no scrapyd user"
[ "$uid" -lt 1000 ] || fail "scrapyd has uid $uid, not a system uid"
[ "$home" = /var/lib/scrapyd ] || fail "scrapyd's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "scrapyd's shell is $shell"
[ "$(in_root getent group scrapyd | cut -d: -f3)" = "$gid" ] || fail "scrapyd's primary group is not scrapyd"
for dir in /var/lib/scrapyd /var/log/scrapyd; do
    [ "$(owner_mode "$dir")" = "scrapyd:scrapyd 750" ] || fail "$dir is $(owner_mode "$dir")"
done
[ "$(owner_mode /etc/scrapyd/scrapyd.conf)" = "root:root 644" ] || fail "scrapyd.conf is not root's"
in_root test -L /etc/systemd/system/multi-user.target.wants/scrapyd-rs.service ||
    fail "scrapyd-rs.service is not enabled"
ok "install: system user and group scrapyd (uid $uid), data and log directories theirs (0750), unit enabled"

# The installed daemon as the service runs it: user scrapyd, in /var/lib/scrapyd, the unit's
# umask, the installed configuration plus an admin's conf.d file that moves it off port 6800.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[scrapyd]\nhttp_port = %s\n' "$port" >"$root/etc/scrapyd/conf.d/50-port.conf"
chroot --userspec=scrapyd:scrapyd "$root" env -i PATH=/usr/bin:/bin HOME=/var/lib/scrapyd \
    sh -c 'umask 0027 && cd /var/lib/scrapyd && exec /usr/bin/scrapyd-rs -n' >"$work/daemon.log" 2>&1 &
daemon_pid=$!
status=
for _ in $(seq 100); do
    status=$(curl -sS --max-time 5 "http://127.0.0.1:$port/daemonstatus.json" 2>/dev/null) && break
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; fail "the installed daemon exited at start"; }
    sleep 0.1
done
case $status in
*'"status": "ok"'*) ;;
*) fail "daemonstatus.json answered '$status'" ;;
esac
[ "$(owner_mode /var/lib/scrapyd/spool)" = "scrapyd:scrapyd 750" ] ||
    fail "the daemon's spool is $(owner_mode /var/lib/scrapyd/spool), expected scrapyd's, 0750"
kill -TERM "$daemon_pid"
code=0
wait "$daemon_pid" || code=$?
daemon_pid=
[ "$code" -eq 0 ] || fail "the installed daemon exited with $code on SIGTERM"
ok "the installed daemon runs as scrapyd with the installed config and writes its spool in /var/lib/scrapyd"

# What an admin and the daemon leave behind.
in_root install -d -o scrapyd -g scrapyd /var/log/scrapyd/demo/follow
in_root install -o scrapyd -g scrapyd /dev/null /var/log/scrapyd/demo/follow/job.log

# --- upgrade, remove, purge -------------------------------------------------------------------

in_root dpkg -i "$package" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i over the installed package"; }
[ "$(in_root getent passwd scrapyd | cut -d: -f3)" = "$uid" ] || fail "the upgrade changed scrapyd's uid"
[ "$(owner_mode /var/lib/scrapyd)" = "scrapyd:scrapyd 750" ] || fail "the upgrade changed /var/lib/scrapyd"
in_root test -L /etc/systemd/system/multi-user.target.wants/scrapyd-rs.service || fail "the upgrade disabled the unit"
ok "upgrade: user, directories and enablement unchanged"

in_root dpkg --remove scrapyd-rs >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --remove"; }
! exists /usr/bin/scrapyd-rs || fail "remove left /usr/bin/scrapyd-rs"
! exists /usr/lib/systemd/system/scrapyd-rs.service || fail "remove left the unit"
for path in /etc/scrapyd/scrapyd.conf /var/log/scrapyd/demo/follow/job.log /var/lib/scrapyd/spool; do
    exists "$path" || fail "remove deleted $path"
done
ok "remove: binary and units gone; configuration, logs and data kept"

in_root dpkg --purge scrapyd-rs >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --purge"; }
for path in /etc/scrapyd/scrapyd.conf /var/log/scrapyd /etc/systemd/system/multi-user.target.wants/scrapyd-rs.service; do
    ! exists "$path" || fail "purge left $path"
done
for path in /var/lib/scrapyd/spool /etc/scrapyd/conf.d/50-port.conf; do
    exists "$path" || fail "purge deleted $path"
done
in_root getent passwd scrapyd >/dev/null || fail "purge deleted the scrapyd user, who owns the kept data"
ok "purge: conffile, logs and enablement gone; the data, the admin's conf.d file and the scrapyd user kept"

echo "check-deb-chroot: all $passed checks passed in $((SECONDS - started)) s"
