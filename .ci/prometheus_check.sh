#!/usr/bin/env bash
# Runs the demo with its metrics exporter, checks the exposition with `promtool check metrics`,
# then has a real Prometheus server (loopback only) scrape it every second and checks, through
# Prometheus' HTTP query API, that warden_circuit_state and warden_calls_total series exist for
# every service the demo exported. Installs Debian's `prometheus` package when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need prometheus || ! need promtool || ! need curl || ! need jq; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus curl jq >/dev/null
fi

work=$(mktemp -d)
demo_pid=""
prom_pid=""
cleanup() {
    [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null || true
    [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metrics_port=$(free_port)
prom_port=$(free_port)

# Poll `$@` every 0.5 s until it succeeds or $1 seconds pass.
wait_for() {
    local limit=$1; shift
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then return 1; fi
        sleep 0.5
    done
}

cargo build --quiet --example resiliency_demo
./target/debug/examples/resiliency_demo --quiet --metrics-addr "127.0.0.1:$metrics_port" --linger 90 \
    >"$work/demo.log" 2>&1 &
demo_pid=$!

metrics_url="http://127.0.0.1:$metrics_port/metrics"
# The scenarios run first; the exporter keeps serving while the demo lingers.
wait_for 120 sh -c "curl -fsS '$metrics_url' | grep -q '^warden_calls_total'" \
    || { echo "demo never exported warden_calls_total"; cat "$work/demo.log"; exit 1; }
# Let the scenarios finish so every service is in the exposition.
wait_for 120 grep -q "serving the final metrics" "$work/demo.log" \
    || { echo "the demo did not finish its scenarios"; cat "$work/demo.log"; exit 1; }
curl -fsS "$metrics_url" >"$work/metrics.txt"
echo "== promtool check metrics"
promtool check metrics <"$work/metrics.txt"

services=$(grep '^warden_circuit_state{' "$work/metrics.txt" | sed -E 's/.*service="([^"]+)".*/\1/' | sort -u)
[ -n "$services" ] || { echo "no services exported"; exit 1; }
echo "services exported by the demo: $(echo $services)"

cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: warden_demo
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!

api="http://127.0.0.1:$prom_port/api/v1"
series_services() { # $1 = metric name; prints the services Prometheus has series for
    curl -fsS --get "$api/query" --data-urlencode "query=count by (service) ($1)" \
        | jq -r '.data.result[].metric.service' | sort -u
}
has_all() { # $1 = metric name
    [ "$(series_services "$1")" = "$services" ]
}
echo "== waiting for Prometheus to scrape the demo"
# A fresh Prometheus hands new targets to the scraper in batches (about 5-8 s): poll, bounded.
if ! wait_for 60 has_all warden_circuit_state || ! wait_for 20 has_all warden_calls_total; then
    echo "Prometheus did not get the demo's series"
    curl -fsS "$api/targets" | jq '.data.activeTargets' || true
    tail -20 "$work/prometheus.log"
    exit 1
fi
for metric in warden_circuit_state warden_calls_total; do
    echo "$metric: $(series_services $metric | tr '\n' ' ')"
done
echo "prometheus check passed"
