#!/bin/sh
# Installs what mosqlite needs to build, run and test, if it is missing: Debian packages
# through apt-get (as root, or via sudo) and the npm packages pinned in package-lock.json.
#
# The broker: Mosquitto 2.0.13 or newer. Debian 12's own 2.0.11 has an in-flight
# accounting bug that cuts QoS 2 delivery to one subscriber to a fraction with many
# producers (docs/deployment.md, "Which Mosquitto"). On Debian 12 this script therefore adds Debian's
# own bookworm-backports archive to apt's sources, if no source names it yet, and installs
# mosquitto, mosquitto-clients, libmosquitto1 and libmosquitto-dev from it. Backports is
# pinned below the release, so nothing else on the machine is upgraded from it.
# MOSQLITE_DISTRO_MOSQUITTO=1 keeps the distribution's own broker instead.
set -eu
cd "$(dirname "$0")/.."

PKGS="gcc make pkg-config libsqlite3-dev libcjson-dev sqlite3 openssl chromium
nodejs npm clang iproute2 procps curl python3"
MQ_PKGS="mosquitto mosquitto-clients libmosquitto1 libmosquitto-dev"
[ "${MOSQLITE_NO_BROWSER:-}" = 1 ] && PKGS=$(echo "$PKGS" | sed 's/chromium//')
# Installing as a service (tests/t_install.sh, tests/t_deb.sh): man to render the man
# pages, systemd-analyze to check the unit, Debian's tools for make deb and lintian.
# Debian 13 keeps systemd.pc (where units go) in systemd-dev.
PKGS="$PKGS man-db systemd dpkg-dev debhelper lintian"
# Leadership in etcd (the writer's etcd-endpoints): libcurl for the writer's client of
# etcd's HTTP/JSON gateway (writer/etcd_http.c); etcd itself, a 3-member cluster on
# loopback, and etcdctl for tests/t_etcd.sh (tests/etcd.sh).
PKGS="$PKGS libcurl4-openssl-dev etcd-server etcd-client"
[ "$( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")" = bookworm ] || PKGS="$PKGS systemd-dev"

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
updated=
apt_update() { [ -n "$updated" ] || { $SUDO apt-get update -qq >&2; updated=1; }; }
apt_install() {
    # shellcheck disable=SC2068
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $@ >&2
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
# True when Debian version $1 is older than 2.0.13 (the first broker without the bug).
too_old() { dpkg --compare-versions "$1" lt 2.0.13; }

codename=$( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")

# Adds bookworm-backports next to the machine's own bookworm source (same mirror, same
# keyring), unless some source already names it.
add_backports() {
    if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    uri= keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: the stanza whose Suites has bookworm gives URIs.
        uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |$|\n)/ && /Types:[^\n]*deb( |$|\n)/ {
                   if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0,RSTART,RLENGTH);
                   sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
              /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    fi
    [ -n "$uri" ] || { echo "deps: no Debian bookworm source found in apt's sources;" \
                            "add bookworm-backports by hand, or set MOSQLITE_DISTRO_MOSQUITTO=1" >&2
                       exit 1; }
    echo "deps: adding bookworm-backports ($uri) to apt's sources for Mosquitto 2.0.21" >&2
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
        "$uri" "$keyring" | $SUDO tee /etc/apt/sources.list.d/mosqlite-backports.sources >/dev/null
    updated=
}

missing=
for p in $PKGS; do
    installed "$p" || missing="$missing $p"
done
# node/npm may come from outside Debian (they do on some images): accept any working one.
case "$missing" in *nodejs*|*npm*)
    if command -v node >/dev/null && command -v npm >/dev/null; then
        missing=$(echo "$missing" | sed -e 's/ nodejs//' -e 's/ npm//')
    fi;;
esac
if [ -n "$missing" ]; then
    echo "deps: installing Debian packages:$missing" >&2
    apt_update
    apt_install $missing
fi

# Mosquitto: a fixed broker unless told otherwise.
mq_missing=
for p in $MQ_PKGS; do
    if ! installed "$p"; then mq_missing="$mq_missing $p"
    elif [ "${MOSQLITE_DISTRO_MOSQUITTO:-}" != 1 ] && too_old "$(version_of "$p")"; then
        mq_missing="$mq_missing $p"
    fi
done
if [ -n "$mq_missing" ]; then
    if [ "${MOSQLITE_DISTRO_MOSQUITTO:-}" = 1 ]; then
        echo "deps: installing the distribution's Mosquitto:$mq_missing" >&2
        apt_update
        apt_install $mq_missing
    elif [ "$codename" = bookworm ]; then
        add_backports
        apt_update
        echo "deps: installing Mosquitto from bookworm-backports:$mq_missing" >&2
        apt_install -t bookworm-backports $MQ_PKGS
    else
        echo "deps: installing Mosquitto:$mq_missing" >&2
        apt_update
        apt_install $MQ_PKGS
    fi
    v=$(version_of mosquitto)
    too_old "$v" && echo "deps: note: Mosquitto $v is older than 2.0.13 (docs/deployment.md, \"Which Mosquitto\")" >&2
fi

if [ -f package-lock.json ]; then
    stamp=node_modules/.mosqlite-stamp
    if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
        echo "deps: npm ci" >&2
        npm ci --no-audit --no-fund --loglevel=error >&2
        touch "$stamp"
    fi
fi
