#!/bin/sh
# Installs what mosqlite needs to build, run and test, if it is missing: Debian packages
# through apt-get (as root, or via sudo) and the npm packages pinned in package-lock.json.
set -eu
cd "$(dirname "$0")/.."

PKGS="gcc make pkg-config libmosquitto-dev libsqlite3-dev libcjson-dev mosquitto
mosquitto-clients sqlite3 openssl chromium nodejs npm clang iproute2 procps"
[ "${MOSQLITE_NO_BROWSER:-}" = 1 ] && PKGS=$(echo "$PKGS" | sed 's/chromium//')

missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' ||
        missing="$missing $p"
done
# node/npm may come from outside Debian (they do on some images): accept any working one.
case "$missing" in *nodejs*|*npm*)
    if command -v node >/dev/null && command -v npm >/dev/null; then
        missing=$(echo "$missing" | sed -e 's/ nodejs//' -e 's/ npm//')
    fi;;
esac
if [ -n "$missing" ]; then
    echo "deps: installing Debian packages:$missing" >&2
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi

if [ -f package-lock.json ]; then
    stamp=node_modules/.mosqlite-stamp
    if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
        echo "deps: npm ci" >&2
        npm ci --no-audit --no-fund --loglevel=error >&2
        touch "$stamp"
    fi
fi
