#!/bin/sh
# Makes web/index.html, the page Mosquitto serves, from web/page.html: the stylesheet
# and the scripts that page.html names go inline, so a browser gets the whole page in
# one answer. Mosquitto's web server answers a file in two passes of its main loop (an
# idle broker passes every 100 ms) and a page that names five files waits for that twice;
# see tests/bench/README.md. Edit page.html and the files it names, not index.html.
set -eu
cd "$(dirname "$0")"
for f in $(sed -n 's/^<script src="\([^"]*\)"><\/script>$/\1/p' page.html); do
    # "</script" would end the inline element early; "<!--" can hide its end
    if grep -qi '</script\|<!--' "$f"; then
        echo "web/build.sh: $f contains \"</script\" or \"<!--\", which cannot go inline" >&2
        exit 1
    fi
done
for f in $(sed -n 's/^<link rel="stylesheet" href="\([^"]*\)">$/\1/p' page.html); do
    if grep -qi '</style' "$f"; then
        echo "web/build.sh: $f contains \"</style\", which cannot go inline" >&2
        exit 1
    fi
done
awk '
function inline(start, file, end,    line, n) {
    print start
    while ((n = getline line < file) > 0) print line
    if (n < 0) { print "web/build.sh: cannot read " file > "/dev/stderr"; exit 1 }
    close(file)
    print end
}
/^<script src="[^"]*"><\/script>$/ { split($0, q, "\""); inline("<script>", q[2], "</script>"); next }
/^<link rel="stylesheet" href="[^"]*">$/ { split($0, q, "\""); inline("<style>", q[4], "</style>"); next }
{ print }
' page.html > index.html.tmp || { rm -f index.html.tmp; exit 1; }
mv index.html.tmp index.html
