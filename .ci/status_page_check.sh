#!/usr/bin/env bash
# The status page as a person sees it: runs examples/axum_service with the upstream in an outage
# (its breaker trips: a transition with a reason) and then forced open, next to a healthy store;
# loads /status in headless Chromium once the page's script has run (--virtual-time-budget), and
# checks from the DOM that every service of the TOML file appears with its current state (as
# text, not only colour), that the script refreshed the page (data-updated on <body>), and that
# the transition's reason is shown. Saves a screenshot to target/status.png (out of git).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get install -y chromium >/dev/null 2>&1 \
        || { $sudo apt-get update >/dev/null && $sudo apt-get install -y chromium >/dev/null; }
fi

target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --example axum_service
work="$(mktemp -d)"
"$target/debug/examples/axum_service" --addr 127.0.0.1:0 --serve-for 90s --outage \
    --force-open upstream >"$work/log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 300); do
    if grep -q '^ready' "$work/log"; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/log"; echo "the example exited"; exit 1; fi
    sleep 0.1
done
grep -q '^ready' "$work/log" || { cat "$work/log"; echo "the example did not get ready"; exit 1; }
url="$(grep -o 'listening on http://[0-9.:]*' "$work/log" | head -1 | sed 's/listening on //')"
echo "status page at $url/status"

browse() {
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" \
        --virtual-time-budget=5000 "$@" 2>>"$work/chromium.log"
}
browse --dump-dom "$url/status" >"$work/dom.html"

fail() { echo "status page check failed: $*"; exit 1; }
dom="$work/dom.html"
grep -q '<body[^>]* data-updated="[0-9]\+"' "$dom" || fail "the script did not refresh the page (no data-updated on <body>)"

# Every service of the services file, each with its current state as text.
declare -A expected=([upstream]=forced_open [store]=closed)
services="$(grep -o '^\[services\.[A-Za-z0-9_-]*\]' examples/axum_service.toml | sed 's/^\[services\.\(.*\)\]$/\1/')"
[ -n "$services" ] || fail "no service found in examples/axum_service.toml"
for service in $services; do
    row="$(grep -oP "<tr data-service=\"$service\".*?</tr>" "$dom" | head -1)" \
        || fail "service $service is missing from the page"
    state="${expected[$service]:-}"
    [ -n "$state" ] || fail "no expected state for $service: add it to this script"
    echo "$row" | grep -q "data-breaker=\"$state\"" || fail "$service: breaker state is not $state"
    echo "$row" | grep -q "</span> ${state//_/ }</span>" || fail "$service: no '${state//_/ }' text"
    echo "  ok  $service appears, breaker ${state//_/ }"
done
grep -q 'consecutive failures' "$dom" || fail "the upstream's trip is shown without its reason"
echo "  ok  the transition's reason is shown"
grep -q 'SECRET-TOKEN-123' "$dom" && fail "the upstream's error text reached the page"
echo "  ok  no error text on the page"

mkdir -p target
browse --screenshot=target/status.png --window-size=1200,800 "$url/status" >/dev/null
[ -s target/status.png ] || fail "no screenshot"
echo "  ok  screenshot at target/status.png"
