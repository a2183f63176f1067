#!/bin/sh
# Puts MQTT.js's browser bundle (from the pinned npm package) beside the page. The page
# loads it as a plain script: Mosquitto's HTTP server sends no Content-Type, so ES
# modules would not load.
set -eu
cd "$(dirname "$0")/.."
src=node_modules/mqtt/dist/mqtt.min.js
[ -f "$src" ] || { echo "web/build.sh: $src missing (run make deps)" >&2; exit 1; }
mkdir -p web/vendor
cp "$src" web/vendor/mqtt.min.js
