#!/bin/sh
# make-passwd.sh FILE USER PASSWORD [USER PASSWORD ...]: create (or replace) the
# Mosquitto password file FILE with these users, hashed by mosquitto_passwd, readable
# by its owner only (then `chown mosquitto:mosquitto FILE`: see README.md here). For
# conf/secure/mosquitto.conf, one file for every listener with a user of each role in
# acl: writer, a producer, the operator ops, the read replica replica1, and the page's
# users, the viewer web and the page's operator ops-web:
#   sh make-passwd.sh /etc/mosquitto/secure/passwd writer "$W" builder "$B" ops "$OPS" \
#       replica1 "$R1" web "$WEB" ops-web "$OPS_WEB"
# A password given on the command line shows in `ps` while this runs; run it where no
# one else is logged in, or type them at mosquitto_passwd's prompt instead.
set -eu
if [ $# -lt 3 ] || [ $(($# % 2)) != 1 ]; then
    echo "usage: make-passwd.sh FILE USER PASSWORD [USER PASSWORD ...]" >&2
    exit 2
fi
file=$1
shift
umask 077
tmp=$file.tmp.$$
: >"$tmp"
while [ $# -gt 0 ]; do
    case $1 in *:*|'') echo "make-passwd.sh: bad user name \"$1\"" >&2; rm -f "$tmp"; exit 2 ;; esac
    mosquitto_passwd -b "$tmp" "$1" "$2"
    shift 2
done
mv "$tmp" "$file"
echo "make-passwd.sh: wrote $file"
