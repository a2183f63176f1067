#!/bin/sh
# structure.sh [MAX_FILE_LINES [MAX_FUNCTION_LINES]]: the size limits of the C sources
# under writer/, publisher/, replica/, common/ and console/ (default 700 lines a file,
# 80 lines a function). Prints each file and each function over its limit, as
# FILE: N lines or FILE:LINE: NAME() N lines, then a count; exits 1 when any is over.
#
# A function is what the house style makes of one: its definition starts at column 0
# (the line holding the name and its "("), its body opens with a "{" alone on a line
# and closes with a "}" alone on a line; its length counts from the name's line to
# that "}". Struct and array initialisers end in "};" and are not counted.
set -eu
cd "$(dirname "$0")/.."
MAXF=${1:-700}
MAXFN=${2:-80}
over=0
for f in writer/*.[ch] publisher/*.[ch] replica/*.[ch] common/*.[ch] console/*.[ch]; do
    [ -f "$f" ] || continue
    n=$(wc -l <"$f")
    if [ "$n" -gt "$MAXF" ]; then
        echo "$f: $n lines (limit $MAXF)"
        over=$((over + 1))
    fi
    k=$(awk -v f="$f" -v max="$MAXFN" '
        /^[A-Za-z_].*\(/ && !/;[ \t]*$/ && !/^(static )?(const )?struct [A-Za-z_0-9]+ *\{/ {
            sig = NR
            name = $0
            sub(/\(.*/, "", name)
            sub(/.*[ *]/, "", name)
        }
        /^\{[ \t]*$/ { start = sig ? sig : NR; fn = name; body = 1 }
        /^\}[ \t]*$/ && body {
            len = NR - start + 1
            if (len > max) { printf "%s:%d: %s() %d lines (limit %d)\n", f, start, fn, len, max; k++ }
            body = 0; sig = 0; name = ""
        }
        END { exit k > 255 ? 255 : k }' "$f") || true
    if [ -n "$k" ]; then
        printf '%s\n' "$k"
        over=$((over + $(printf '%s\n' "$k" | wc -l)))
    fi
done
echo "structure: $over over the limits (files $MAXF lines, functions $MAXFN)"
[ "$over" = 0 ]
