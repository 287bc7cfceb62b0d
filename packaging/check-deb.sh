#!/usr/bin/env bash
# Builds the Debian package and checks it without touching the machine: nothing is installed,
# no user is created, no service is started.
#
#   packaging/check-deb.sh
#
# 1. the package: its file list with owners and modes, its control fields, its conffiles and
#    md5sums; `sh -n` (and shellcheck, when installed) on the maintainer scripts;
# 2. the units: `systemd-analyze verify` against the extracted tree, the template against the
#    single unit, and the hardening exposure score;
# 3. lintian: no error and no warning (info tags are listed);
# 4. a smoke run: the extracted binary, with the packaged /etc/scrapyd/scrapyd.conf plus a small
#    file pointing the data and log directories into a temporary directory, serves
#    daemonstatus.json, takes an egg built from fixtures/projects/demo and runs a crawl of a local
#    site to the end.
#
# The smoke run needs a Python with Scrapy: $SCRAPYD_RS_TEST_PYTHON, or target/test-venv, which
# `cargo test` provisions (this script runs one test to provision it when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

check_name=check-deb
# shellcheck source=packaging/check-lib.sh
. packaging/check-lib.sh
need() {
    command -v "$1" >/dev/null || fail "$1 is missing (apt-get install $2)"
}
need dpkg-deb dpkg
need lintian lintian
need systemd-analyze systemd
need curl curl
need python3 python3

work=$(mktemp -d "${TMPDIR:-/tmp}/check-deb.XXXXXX")
daemon_pid=
site_pid=
cleanup() {
    # Only the processes this script started; the daemon stops its own crawls
    # (stop_crawls_on_shutdown = on in the smoke configuration).
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$daemon_pid" 2>/dev/null || true
    fi
    if [ -n "$site_pid" ]; then
        kill -TERM "$site_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- 1. the package ---------------------------------------------------------------------------

deb=$(packaging/build-deb.sh)
[ -f "$deb" ] || fail "build-deb.sh did not produce a package"
ok "built $deb"

cargo_version=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }
' Cargo.toml)
arch=$(dpkg --print-architecture)

# Every path with its type, mode and owner; anything missing or extra fails.
dpkg-deb --contents "$deb" | awk '{ sub(/^\.\//, "", $6) } $6 != "" { print $1, $2, $6 }' | sort -k3 >"$work/contents"
sort -k3 >"$work/expected" <<'EOF'
drwxr-xr-x root/root etc/
drwxr-xr-x root/root etc/scrapyd/
drwxr-xr-x root/root etc/scrapyd/conf.d/
drwxr-xr-x root/root etc/scrapyd/instances/
-rw-r--r-- root/root etc/scrapyd/scrapyd.conf
drwxr-xr-x root/root usr/
drwxr-xr-x root/root usr/bin/
-rwxr-xr-x root/root usr/bin/scrapyd-rs
drwxr-xr-x root/root usr/lib/
drwxr-xr-x root/root usr/lib/systemd/
drwxr-xr-x root/root usr/lib/systemd/system/
-rw-r--r-- root/root usr/lib/systemd/system/scrapyd-rs.service
-rw-r--r-- root/root usr/lib/systemd/system/scrapyd-rs@.service
drwxr-xr-x root/root usr/share/
drwxr-xr-x root/root usr/share/doc/
drwxr-xr-x root/root usr/share/doc/scrapyd-rs/
-rw-r--r-- root/root usr/share/doc/scrapyd-rs/changelog.Debian.gz
-rw-r--r-- root/root usr/share/doc/scrapyd-rs/copyright
drwxr-xr-x root/root usr/share/lintian/
drwxr-xr-x root/root usr/share/lintian/overrides/
-rw-r--r-- root/root usr/share/lintian/overrides/scrapyd-rs
drwxr-xr-x root/root usr/share/man/
drwxr-xr-x root/root usr/share/man/man8/
-rw-r--r-- root/root usr/share/man/man8/scrapyd-rs.8.gz
drwxr-xr-x root/root var/
drwxr-xr-x root/root var/lib/
drwxr-xr-x root/root var/lib/scrapyd/
drwxr-xr-x root/root var/log/
drwxr-xr-x root/root var/log/scrapyd/
EOF
diff -u "$work/expected" "$work/contents" || fail "the package's files differ from the expected list (above)"
ok "contents: $(wc -l <"$work/contents") paths, owners and modes as expected"

field() { dpkg-deb --field "$deb" "$1"; }
expect_field() {
    local value
    value=$(field "$1")
    [ "$value" = "$2" ] || fail "control field $1 is '$value', expected '$2'"
}
expect_field Package scrapyd-rs
case $(field Version) in
"$cargo_version"-[0-9]*) ;;
*) fail "Version $(field Version) does not start with Cargo.toml's $cargo_version-" ;;
esac
expect_field Architecture "$arch"
expect_field Recommends python3-scrapy
expect_field Section net
expect_field Priority optional
depends=$(field Depends)
for dependency in 'libc6 (>= ' adduser python3; do
    case ", $depends," in
    *", $dependency"*) ;;
    *) fail "Depends ($depends) lacks $dependency" ;;
    esac
done
[[ $(field Installed-Size) =~ ^[0-9]+$ ]] || fail "Installed-Size is not a number"
[ -n "$(field Maintainer)" ] || fail "no Maintainer field"
[ -n "$(field Description)" ] || fail "no Description field"
ok "control: $(field Package) $(field Version) $(field Architecture); Depends: $depends"

root=$work/root
dpkg-deb --extract "$deb" "$root"
dpkg-deb --control "$deb" "$root/DEBIAN"
[ "$(cat "$root/DEBIAN/conffiles")" = /etc/scrapyd/scrapyd.conf ] ||
    fail "conffiles is not exactly /etc/scrapyd/scrapyd.conf: $(cat "$root/DEBIAN/conffiles")"
ok "conffiles: /etc/scrapyd/scrapyd.conf"
(cd "$root" && md5sum --check --quiet DEBIAN/md5sums) || fail "md5sums do not match the files"
ok "md5sums match"

for script in postinst prerm postrm; do
    [ -x "$root/DEBIAN/$script" ] || fail "$script is missing or not executable"
    sh -n "$root/DEBIAN/$script" || fail "sh -n $script"
done
if command -v shellcheck >/dev/null; then
    shellcheck --shell=sh "$root"/DEBIAN/{postinst,prerm,postrm} || fail "shellcheck on the maintainer scripts"
    shellcheck packaging/*.sh .ci/run || fail "shellcheck on the packaging scripts and .ci/run"
    ok "maintainer scripts: sh -n and shellcheck clean"
else
    ok "maintainer scripts: sh -n clean (shellcheck not installed, skipped)"
fi

conf=$root/etc/scrapyd/scrapyd.conf
for line in 'bind_address = 127.0.0.1' 'http_port = 6800' 'eggs_dir = /var/lib/scrapyd/eggs' \
    'dbs_dir = /var/lib/scrapyd/dbs' 'spool_dir = /var/lib/scrapyd/spool' 'logs_dir = /var/log/scrapyd'; do
    grep -Eq "^${line// /[[:space:]]*}\$" "$conf" || fail "$conf lacks '$line'"
done
ok "scrapyd.conf: loopback on 6800, data in /var/lib/scrapyd, logs in /var/log/scrapyd"

# --- 2. the units -----------------------------------------------------------------------------

units=$root/usr/lib/systemd/system
verify() {
    local output
    # --root makes ExecStart resolve in the extracted tree; the system targets are not there,
    # hence --recursive-errors=no. MANPATH lets the Documentation= check find our man page.
    if ! output=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" --recursive-errors=no "$1" 2>&1) ||
        [ -n "$output" ]; then
        fail "systemd-analyze verify $1: $output"
    fi
}
verify /usr/lib/systemd/system/scrapyd-rs.service
verify /usr/lib/systemd/system/scrapyd-rs@.service
verify scrapyd-rs@check.service
ok "systemd-analyze verify: scrapyd-rs.service, scrapyd-rs@.service, scrapyd-rs@check.service"

# The template is the single unit plus its instance file: the same settings otherwise.
settings() { sed -n '/^\[Unit\]/,$p' "$1" | grep -Ev '^(#|$|Description=|ExecStart=)'; }
diff -u <(settings "$units/scrapyd-rs.service") <(settings "$units/scrapyd-rs@.service") ||
    fail "scrapyd-rs@.service and scrapyd-rs.service differ beyond Description and ExecStart"
grep -qx 'ExecStart=/usr/bin/scrapyd-rs -n --config /etc/scrapyd/instances/%i.conf' "$units/scrapyd-rs@.service" ||
    fail "the template does not read /etc/scrapyd/instances/%i.conf"
for line in User=scrapyd Group=scrapyd WorkingDirectory=/var/lib/scrapyd KillMode=process NoNewPrivileges=yes; do
    grep -qx "$line" "$units/scrapyd-rs.service" || fail "scrapyd-rs.service lacks $line"
done
for option in PrivateTmp PrivateNetwork MemoryDenyWriteExecute RestrictNamespaces; do
    ! grep -q "^$option=" "$units/scrapyd-rs.service" || fail "scrapyd-rs.service sets $option, which breaks spiders"
done
ok "units: the template matches the single unit; User=scrapyd, KillMode=process"

# Exposure on systemd's 0-10 scale (threshold in tenths): fail if the hardening is lost.
exposure=$(systemd-analyze security --offline=yes --root="$root" --threshold=50 \
    /usr/lib/systemd/system/scrapyd-rs.service 2>&1 | sed -n 's/^.*Overall exposure level for [^:]*: //p') ||
    fail "systemd-analyze security: exposure above 5.0 ($exposure)"
ok "systemd-analyze security: exposure $exposure"

# --- 3. lintian -------------------------------------------------------------------------------

lintian -I --pedantic --show-overrides "$deb" 2>&1 | grep -v '^N:' |
    grep -v 'running with root privileges is not recommended' | sed 's/^/    /' || true
lintian --fail-on error,warning "$deb" >/dev/null 2>&1 || fail "lintian reports errors or warnings (above)"
ok "lintian: no errors, no warnings"

# --- 4. a smoke run of the extracted binary ---------------------------------------------------

version_line=$("$root/usr/bin/scrapyd-rs" --version)
[ "$version_line" = "scrapyd-rs $cargo_version (Scrapyd 1.6.0 compatible)" ] || fail "--version printed '$version_line'"

target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in
/*) ;;
*) target_dir=$PWD/$target_dir ;;
esac
python=${SCRAPYD_RS_TEST_PYTHON:-$target_dir/test-venv/bin/python}
if [ -z "${SCRAPYD_RS_TEST_PYTHON:-}" ] && [ ! -e "$target_dir/test-venv/.ready" ]; then
    echo "check-deb: provisioning the test venv with one test" >&2
    cargo test --quiet --test tests runner::list_shows_the_spiders_of_the_egg >&2
fi
"$python" -c 'import scrapy, setuptools' || fail "$python cannot import Scrapy and setuptools"

# An egg of the demo project, built as scrapyd-deploy builds one.
cp -r fixtures/projects/demo "$work/demo"
(cd "$work/demo" && "$python" setup.py --quiet bdist_egg --dist-dir "$work/dist" >/dev/null 2>&1) ||
    fail "cannot build the demo egg"
egg=$(echo "$work"/dist/*.egg)
[ -f "$egg" ] || fail "no egg in $work/dist"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c 'import json, sys; print(eval(sys.argv[1], {}, {"d": json.load(sys.stdin)}))' "$1"; }

# A two-page site for the crawl.
mkdir -p "$work/site"
echo '<html><head><title>home</title></head><body><a href="/two.html">two</a></body></html>' >"$work/site/index.html"
echo '<html><head><title>two</title></head><body></body></html>' >"$work/site/two.html"
site_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/site" "$site_port" >"$work/site.log" 2>&1 &
site_pid=$!

port=$(free_port)
mkdir -p "$work/data" "$work/home"
cat >"$work/local.conf" <<EOF
[scrapyd]
http_port = $port
eggs_dir = $work/data/eggs
dbs_dir = $work/data/dbs
spool_dir = $work/data/spool
logs_dir = $work/logs
python = $python
node_name = check-deb
stop_crawls_on_shutdown = on
EOF
# The binary reads /etc/scrapyd of this machine first (the package is never installed here, so
# there is none unless an admin made one); both --config files come after it and win.
(cd "$work/data" && exec env -i PATH="$PATH" HOME="$work/home" LANG=C.UTF-8 \
    "$root/usr/bin/scrapyd-rs" -n --config "$conf" --config "$work/local.conf") >"$work/daemon.log" 2>&1 &
daemon_pid=$!
base=http://127.0.0.1:$port

status=
for _ in $(seq 200); do
    status=$(curl -sS --max-time 5 "$base/daemonstatus.json" 2>/dev/null) && break
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; fail "the daemon exited at start"; }
    sleep 0.1
done
[ "$(json 'd["status"], d["node_name"]' <<<"$status")" = "('ok', 'check-deb')" ] ||
    fail "daemonstatus.json answered: $status"
ok "the extracted binary with the packaged config serves daemonstatus.json: $status"

answer=$(curl -sS --max-time 120 -F project=demo -F version=r1 -F "egg=@$egg" "$base/addversion.json")
[ "$(json 'd["status"]' <<<"$answer")" = ok ] || fail "addversion.json answered: $answer"
answer=$(curl -sS --max-time 30 -d project=demo -d spider=follow -d "url=http://127.0.0.1:$site_port/" \
    -d limit=5 "$base/schedule.json")
[ "$(json 'd["status"]' <<<"$answer")" = ok ] || fail "schedule.json answered: $answer"
job=$(json 'd["jobid"]' <<<"$answer")

state=
for _ in $(seq 600); do
    state=$(curl -sS --max-time 5 "$base/status.json?job=$job" | json 'd["currstate"]')
    [ "$state" = finished ] && break
    sleep 0.2
done
[ "$state" = finished ] || { cat "$work/daemon.log" >&2; fail "job $job is still $state after 120 s"; }
outcome=$(curl -sS --max-time 5 "$base/listjobs.json?project=demo" | json '[j["outcome"] for j in d["finished"] if j["id"] == "'"$job"'"]')
[ "$outcome" = "['finished']" ] || fail "job $job ended with outcome $outcome"
log=$work/logs/demo/follow/$job.log
grep -q 'Spider closed (finished)' "$log" || fail "$log does not say the spider finished"
# The stats Scrapy dumps at the end: both pages fetched, one item each.
for stat in "'downloader/response_status_count/200': 2," "'item_scraped_count': 2,"; do
    grep -qF "$stat" "$log" || { cat "$log" >&2; fail "$log lacks the stat $stat"; }
done
ok "deployed the demo egg and crawled the local site: job $job finished, 2 pages, 2 items"

kill -TERM "$daemon_pid"
code=0
wait "$daemon_pid" || code=$?
daemon_pid=
[ "$code" -eq 0 ] || { cat "$work/daemon.log" >&2; fail "the daemon exited with status $code on SIGTERM"; }
ok "SIGTERM stops the daemon with status 0"

echo "check-deb: all $passed checks passed in $((SECONDS - started)) s"
