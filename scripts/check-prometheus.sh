#!/usr/bin/env bash
# Validates the Prometheus config and alert rules with promtool and runs the rule unit tests.
# promtool comes with Debian's `prometheus` package (apt-get install -y prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-prometheus: promtool not found; install it with: apt-get install -y prometheus" >&2
  exit 1
fi

# prometheus.yml is written for docker-compose.yml, which mounts prometheus/ at /etc/prometheus.
# promtool checks that files it names exist, and /etc/prometheus/metrics-token (the token block an
# operator uncomments with METRICS_TOKEN) does not on the host: check a copy that names them where
# compose takes them from, so the check passes once prometheus/metrics-token is written.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -R prometheus/. "$tmp/"
for mounted in $(grep -vE '^[[:space:]]*#' prometheus/prometheus.yml | grep -oE '/etc/prometheus/[^[:space:]"]+' | sort -u); do
  local_file=prometheus/${mounted#/etc/prometheus/}
  if [ ! -e "$local_file" ]; then
    echo "check-prometheus: prometheus.yml reads $mounted, which compose mounts from $local_file: it does not exist; write the app's METRICS_TOKEN to it (docs/operations.md, \"Running with Docker Compose\")" >&2
    exit 1
  fi
done
sed "s#/etc/prometheus/#$tmp/#g" prometheus/prometheus.yml >"$tmp/prometheus.yml"

echo "Checking prometheus/prometheus.yml (as compose mounts it)"
promtool check config "$tmp/prometheus.yml"
promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts.test.yml
echo "check-prometheus: config, rules and rule tests OK"
