#!/bin/sh
# make-certs.sh DIR HOST [HOST ...]: a certificate authority of your own and a server
# certificate signed by it, for conf/secure/mosquitto.conf's TLS listener, in DIR:
#   ca.crt ca.key          the CA (made once: an existing pair in DIR is reused)
#   server.crt server.key  the broker's, naming every HOST in its subjectAltName (an
#                          address as IP:, a name as DNS:); clients connect to one of them
# Clients check the broker with ca.crt (mosqlite-pub --cafile, mosqlite-writer --cafile,
# mosquitto_pub --cafile): copy ca.crt to them, never ca.key. Keys are made readable by
# their owner only. DAYS (environment) sets the validity, 825 days by default.
#   sh make-certs.sh /etc/mosquitto/secure/certs central.example 192.0.2.10
set -eu
if [ $# -lt 2 ]; then
    echo "usage: make-certs.sh DIR HOST [HOST ...]" >&2
    exit 2
fi
dir=$1
shift
days=${DAYS:-825}
san=
for h in "$@"; do
    case $h in
        ''|*[!A-Za-z0-9.:-]*) echo "make-certs.sh: bad host name \"$h\"" >&2; exit 2 ;;
        *[!0-9.]*) case $h in *:*) kind=IP ;; *) kind=DNS ;; esac ;;
        *) kind=IP ;;
    esac
    san=${san:+$san,}$kind:$h
done
umask 077
mkdir -p "$dir"
cd "$dir"
if [ ! -f ca.key ] || [ ! -f ca.crt ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days "$days" \
        -subj /CN=mosqlite-ca 2>/dev/null
    echo "make-certs.sh: wrote $dir/ca.crt and $dir/ca.key (keep ca.key off the broker if you can)"
fi
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=$1" 2>/dev/null
printf 'subjectAltName=%s\n' "$san" >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
    -days "$days" -extfile server.ext 2>/dev/null
rm -f server.csr server.ext
chmod 644 ca.crt server.crt
echo "make-certs.sh: wrote $dir/server.crt and $dir/server.key for $san"
