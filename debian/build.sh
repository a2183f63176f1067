#!/bin/sh
# make deb: builds the Debian packages with dpkg-buildpackage (debhelper) in a copy of
# this tree, so that the build's files stay out of it, and puts the .deb files (and
# the .changes and .buildinfo) in build/deb/. Needs dpkg-dev, debhelper and the build
# dependencies in debian/control (tests/deps.sh installs them).
set -eu
cd "$(dirname "$0")/.."
version=$(dpkg-parsechangelog -S Version)
out=$(pwd)/build/deb
rm -rf "$out"
mkdir -p "$out/src/mosqlite-$version"
tar -cf - --exclude=./build --exclude=./bin --exclude=./node_modules --exclude=./data \
    --exclude=./.git . | tar -xf - -C "$out/src/mosqlite-$version"
(cd "$out/src/mosqlite-$version" && dpkg-buildpackage -b -uc -us >"$out/build.log" 2>&1) ||
    { tail -n 40 "$out/build.log" >&2; echo "make deb: dpkg-buildpackage failed (log: $out/build.log)" >&2; exit 1; }
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"
ls "$out"/*.deb
