#!/bin/bash
# make deb, lintian on the packages, then the packages installed on this machine with
# dpkg -i (as root): the service user and its state directory, the unit checked by
# systemd-analyze, the man pages, a write through the installed writer running as the
# service user against a real broker, and dpkg --purge leaving the machine as it was.
. "$(dirname "$0")/lib.sh"
# The package is built from the sources with Debian's flags, whatever build is under
# test: under make asan (another BIN) it would only repeat the same checks.
if [ "$BIN" != "$ROOT/bin" ]; then
    note "BIN is $BIN: the package does not depend on it; checked by make test"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
    note "not root: dpkg -i needs root; nothing checked"; exit 0
fi
if dpkg-query -W -f='${Status}' mosqlite 2>/dev/null | grep -q 'ok installed'; then
    note "a mosqlite package is installed on this machine already: left alone, nothing checked"; exit 0
fi
for d in /etc/mosqlite /var/lib/mosqlite /etc/mosquitto/conf.d/mosqlite.conf; do
    [ -e "$d" ] && { note "$d exists already: left alone, nothing checked"; exit 0; }
done
had_user=; getent passwd mosqlite >/dev/null && had_user=1
PKGS="mosqlite libmosqlite-dev libmosqlite0"

# Whatever happens, take the packages off again (purge), and the user if we made it.
deb_cleanup() {
    [ -n "${WRITER_PID:-}" ] && kill -9 "$WRITER_PID" 2>/dev/null
    dpkg --purge $PKGS >"$T/purge-cleanup.log" 2>&1
    if [ -z "$had_user" ] && getent passwd mosqlite >/dev/null; then
        userdel mosqlite 2>/dev/null
        getent group mosqlite >/dev/null && groupdel mosqlite 2>/dev/null
    fi
    cleanup
}
trap deb_cleanup EXIT

start=$(date +%s)
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" deb >"$T/deb.log" 2>&1; then
    ok "make deb"
else
    fail "make deb"; tail -40 "$T/deb.log"; exit 1
fi
note "make deb took $(( $(date +%s) - start )) s"
D=$ROOT/build/deb
V=$(cd "$ROOT" && dpkg-parsechangelog -S Version)
A=$(dpkg --print-architecture)
DEBS="$D/mosqlite_${V}_$A.deb $D/libmosqlite0_${V}_$A.deb $D/libmosqlite-dev_${V}_$A.deb"
for f in $DEBS; do [ -f "$f" ] || fail "built: $(basename "$f")"; done

lintian --fail-on error,warning --display-info $DEBS >"$T/lintian.out" 2>&1
check "lintian: no error, no warning (info tags explained in debian/*.lintian-overrides)" [ $? = 0 ]
grep -v 'root privileges' "$T/lintian.out" | sed 's/^/# lintian: /'
# The symbols file names every function the library exports, and only those.
nm -D --defined-only "$ROOT/build/libmosqlite.so" | awk '$2 == "T" {print $3}' | sort >"$T/exported"
awk '/^ mosqlite/ {sub(/@.*/, "", $1); print $1}' "$ROOT/debian/libmosqlite0.symbols" | sort >"$T/listed"
check_eq "debian/libmosqlite0.symbols lists what libmosqlite.so exports" \
    "$(diff "$T/exported" "$T/listed" | grep '^[<>]' | tr '\n' ' ')" ""

if dpkg -i $DEBS >"$T/dpkg.log" 2>&1; then
    ok "dpkg -i the three packages"
else
    fail "dpkg -i the three packages"; cat "$T/dpkg.log"; exit 1
fi
check "service user mosqlite, no login" bash -c "getent passwd mosqlite | grep -q ':/var/lib/mosqlite:/usr/sbin/nologin$'"
check_eq "state directory" "$(stat -c '%U:%G %a' /var/lib/mosqlite)" "mosqlite:mosqlite 755"
check_eq "config readable by the service group only" "$(stat -c '%U:%G %a' /etc/mosqlite/mosqlite.conf)" \
    "root:mosqlite 640"
check "config files are conffiles" bash -c "dpkg-query -W -f='\${Conffiles}' mosqlite |
    grep -q /etc/mosqlite/mosqlite.conf && dpkg-query -W -f='\${Conffiles}' mosqlite | grep -q /etc/mosquitto/conf.d/mosqlite.conf"
UNIT=$(dpkg -L mosqlite | grep '/systemd/system/mosqlite-writer.service$')
check "unit installed where systemd looks ($UNIT)" [ -f "$UNIT" ]
systemd-analyze verify "$UNIT" >"$T/verify.out" 2>&1
check "systemd-analyze verify $UNIT" test $? = 0 -a ! -s "$T/verify.out"
sed 's/^/# verify: /' "$T/verify.out"
for m in mosqlite-writer.8 mosqlite-pub.1 mosqlite-work.1 mosqlite.1 libmosqlite.3; do
    f=$(dpkg -L mosqlite libmosqlite-dev | grep "/$m.gz$")
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>"$T/man.err")
    check "man -l $f" test -n "$out" -a ! -s "$T/man.err"
done
check_eq "man finds mosqlite-writer in section 8" "$(man -w mosqlite-writer)" /usr/share/man/man8/mosqlite-writer.8.gz
check "the page in /usr/share/mosqlite/web is web/index.html as built (all inline)" \
    cmp -s "$ROOT/web/index.html" /usr/share/mosqlite/web/index.html
check_eq "pkg-config --modversion mosqlite" "$(pkg-config --modversion mosqlite)" "$V"
check_eq "mosqlite.pc names the multiarch libdir" "$(pkg-config --variable=libdir mosqlite)" \
    "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)"

# The writer as the unit runs it: the service user, the installed config (database in
# /var/lib/mosqlite, schema in /etc/mosqlite/schema), here with this test's port.
broker_start
setpriv --reuid=mosqlite --regid=mosqlite --init-groups --no-new-privs -- \
    /usr/sbin/mosqlite-writer -c /etc/mosqlite/mosqlite.conf -p "$MQTT_PORT" >"$WRITER_LOG" 2>&1 &
WRITER_PID=$!
if wait_until 15 status_is online; then
    ok "the installed writer, as user mosqlite, comes online"
else
    fail "the installed writer, as user mosqlite, comes online"; cat "$WRITER_LOG"; exit 1
fi
/usr/bin/mosqlite-pub -p "$MQTT_PORT" --wait --timeout 20 builds '{"id": 7, "name": "deb #7"}' >"$T/pub.out" 2>&1
check "installed mosqlite-pub --wait: applied" [ $? = 0 ]; sed 's/^/# /' "$T/pub.out"
out=$(/usr/bin/mosqlite -p "$MQTT_PORT" --json stats 2>&1)
check "installed mosqlite: the writer answers stats ($out)" grep -q '"cmd":"stats","ok":true' <<<"$out"
check "bash completion for mosqlite where bash-completion looks" \
    test -f /usr/share/bash-completion/completions/mosqlite
DB=/var/lib/mosqlite/mosqlite.db
check_eq "row in /var/lib/mosqlite/mosqlite.db" "$(sql 'SELECT name FROM builds WHERE id = 7')" "deb #7"
check_eq "database owned by the service user" "$(stat -c %U "$DB")" mosqlite
cc -std=c11 -Wall -Wextra -Werror -o "$T/probe" "$ROOT/tests/c/install_probe.c" \
    $(pkg-config --cflags --libs mosqlite) 2>"$T/cc.err"
check "a program builds against libmosqlite-dev" [ $? = 0 ]; sed 's/^/# /' "$T/cc.err"
check_eq "and sends through libmosqlite0" "$("$T/probe" "$MQTT_PORT" builds '{"values": {"id": 8, "name": "deb C"}}')" \
    "version $V: applied"
kill -TERM "$WRITER_PID"; wait "$WRITER_PID"
check "writer stops cleanly" [ $? = 0 ]
WRITER_PID=

dpkg --purge $PKGS >"$T/purge.log" 2>&1
check "dpkg --purge" [ $? = 0 ]
left=
for f in /etc/mosqlite /var/lib/mosqlite /etc/mosquitto/conf.d/mosqlite.conf "$UNIT" /usr/sbin/mosqlite-writer \
         /etc/systemd/system/multi-user.target.wants/mosqlite-writer.service; do
    [ -e "$f" ] && left="$left $f"
done
check_eq "nothing of the packages left after purge" "$left" ""
