#!/bin/sh
# Makes web/index.html, the page Mosquitto serves, from web/page.html: the stylesheet
# and the scripts that page.html names go inline, so a browser gets the whole page in
# one answer. Mosquitto's web server answers a file in two passes of its main loop (an
# idle broker passes every 100 ms) and a page that names five files waits for that twice;
# see tests/bench/README.md. Edit page.html and the files it names, not index.html.
set -eu
cd "$(dirname "$0")"
# A file that holds its element's end tag ("</script", "</style"), or "<!--" in a
# script (which can hide the end), cannot go inline: refused.
awk '
function inline(start, file, end, bad,    line, n) {
    print start
    while ((n = getline line < file) > 0) {
        if (tolower(line) ~ bad) {
            print "web/build.sh: " file " holds its end tag or \"<!--\": it cannot go inline" > "/dev/stderr"
            exit 1
        }
        print line
    }
    if (n < 0) { print "web/build.sh: cannot read " file > "/dev/stderr"; exit 1 }
    close(file)
    print end
}
/^<script src="[^"]*"><\/script>$/ { split($0, q, "\""); inline("<script>", q[2], "</script>", "<\\/script|<!--"); next }
/^<link rel="stylesheet" href="[^"]*">$/ { split($0, q, "\""); inline("<style>", q[4], "</style>", "<\\/style"); next }
{ print }
' page.html > index.html.tmp || { rm -f index.html.tmp; exit 1; }
mv index.html.tmp index.html
