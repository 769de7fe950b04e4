#!/usr/bin/env bash
# Validates the Prometheus config and alert rules with promtool and runs the rule unit tests.
# promtool comes with Debian's `prometheus` package (apt-get install -y prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-prometheus: promtool not found; install it with: apt-get install -y prometheus" >&2
  exit 1
fi

promtool check config prometheus/prometheus.yml
promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts.test.yml
echo "check-prometheus: config, rules and rule tests OK"
