#!/usr/bin/env bash
# Does a change alter what is stored? Each of two mailbeacon binaries (say the release builds of
# two commits) serves a fresh SQLite database on 127.0.0.1 while 40 messages get Apple's prefetch,
# readers' opens and clicks and a script's clicks; then `check` and `stats` of both binaries read
# both databases, and the outputs are compared byte for byte. Prints "agree" or the differences.
#
#   bash tools/check_across_binaries.sh OLD_BINARY NEW_BINARY [PORT]
set -euo pipefail
old=$1 new=$2 port=${3:-18555}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mail="$(cd "$(dirname "$0")/.." && pwd)/examples/mail.html"
chrome="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
export MAILBEACON_PUBLIC_URL="http://127.0.0.1:$port"

seed() { # binary dir
    mkdir -p "$2" && cd "$2"
    "$1" campaign create --name Check >/dev/null
    for i in $(seq 1 40); do
        "$1" instrument --campaign 1 --recipient "r$i@example.com" \
            --sent-at 2026-11-23T09:00:00Z "$mail" >"m$i.html" 2>/dev/null
    done
    "$1" serve --listen "127.0.0.1:$port" >serve.log 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    for i in $(seq 1 40); do
        local px cl
        px=$(grep -o "http://127.0.0.1:$port/o/[^\"]*" "m$i.html" | head -1)
        cl=$(grep -o "http://127.0.0.1:$port/c/[^\"]*" "m$i.html" | head -1)
        curl -s -o /dev/null -A "Mozilla/5.0" "$px"
        if [ $((i % 2)) = 0 ]; then curl -s -o /dev/null -A "$chrome" "$px"; curl -s -o /dev/null -A "$chrome" "$px"; fi
        if [ $((i % 3)) = 0 ]; then curl -s -o /dev/null -A "$chrome" "$cl"; curl -s -o /dev/null -A "python-requests/2.32" "$cl"; fi
    done
    kill -TERM "$pid"; wait "$pid" || true
    cd - >/dev/null
}

seed "$old" "$work/old"
seed "$new" "$work/new"
# out-DB-BIN: DB written by that binary, read by BIN.
for db in old new; do
    for which in old new; do
        bin=$old; [ "$which" = new ] && bin=$new
        (cd "$work/$db" && "$bin" check 2>&1 && "$bin" stats --campaign 1 | grep -v '^first activity\|^last activity') \
            >"$work/out-$db-$which"
    done
done
first="$work/out-old-old"
for other in out-old-new out-new-old out-new-new; do
    if ! cmp -s "$first" "$work/$other"; then
        echo "differ: $other"; diff "$first" "$work/$other" || true
        exit 1
    fi
done
echo "agree:"; cat "$first"
