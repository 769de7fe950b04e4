#!/usr/bin/env bash
# Validates the Prometheus config and alert rules with promtool and runs the rule unit tests, then
# the Alertmanager config with amtool.
# promtool comes with Debian's `prometheus` package (apt-get install -y prometheus), amtool with
# `prometheus-alertmanager`; without amtool the Alertmanager config is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

# --skip-rule-tests: everything but `promtool test rules` (13-14 s of CPU, the script's whole cost). For
# this script's own tests of its file checks (test/integration/check-prometheus-script.test.ts), where
# the rule tests are not what is tested and one plain run of the script beside them runs them.
run_rule_tests=1
case "${1-}" in
  "") ;;
  --skip-rule-tests) run_rule_tests=0 ;;
  *)
    echo "check-prometheus: unknown argument $1 (the only one is --skip-rule-tests)" >&2
    exit 2
    ;;
esac

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-prometheus: promtool not found; install it with: apt-get install -y prometheus" >&2
  exit 1
fi

# prometheus.yml is written for docker-compose.yml, which mounts prometheus/ at /etc/prometheus.
# promtool checks that files it names exist, and /etc/prometheus/metrics-token (the token block an
# operator uncomments with METRICS_TOKEN) does not on the host: check a copy that names them where
# compose takes them from, so the check passes once prometheus/metrics-token is written.
# require_mounted_files CONFIG DIR HINT: every /etc/DIR/ file CONFIG reads (outside comments) must exist
# as DIR/..., where compose mounts it from; HINT says how to write a missing one.
require_mounted_files() {
  local config=$1 dir=$2 hint=$3 mounted local_file
  for mounted in $(grep -vE '^[[:space:]]*#' "$config" | grep -oE "/etc/$dir/[^[:space:]\"]+" | sort -u); do
    local_file=$dir/${mounted#/etc/$dir/}
    if [ ! -e "$local_file" ]; then
      echo "check-prometheus: $(basename "$config") reads $mounted, which compose mounts from $local_file: it does not exist; $hint" >&2
      exit 1
    fi
    # The containers run as nobody (uid 65534, group nogroup 65534) and see the file with its mode and
    # owner on this host: a chmod 600 file of the operator's passed this check and then failed every
    # scrape (401, AppDown) or every notification.
    if ! readable_by_nobody "$local_file"; then
      echo "check-prometheus: $local_file is not readable by the container's user nobody (uid 65534), as compose mounts it (mode $(stat -c %a "$local_file"), owner uid $(stat -c %u "$local_file")): chmod 644 $local_file, or chown 65534 $local_file and chmod 400 $local_file" >&2
      exit 1
    fi
  done
}

# readable_by_nobody FILE: whether uid 65534 (group 65534) may read FILE, by its mode bits.
readable_by_nobody() {
  local mode uid gid
  read -r mode uid gid < <(stat -c '%a %u %g' "$1")
  mode=$((8#$mode))
  if [ "$uid" = 65534 ]; then
    (((mode & 8#400) != 0))
  elif [ "$gid" = 65534 ]; then
    (((mode & 8#040) != 0))
  else
    (((mode & 8#004) != 0))
  fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -R prometheus/. "$tmp/"
require_mounted_files prometheus/prometheus.yml prometheus \
  "write the app's METRICS_TOKEN to it (docs/operations.md, \"Running with Docker Compose\")"
# alertmanager.yml is mounted at /etc/alertmanager the same way: the secret files its receiver names
# (an SMTP password, a webhook URL) are checked where compose takes them from. Before promtool's rule
# tests (seconds of CPU), so a missing file is told at once.
if [ -f alertmanager/alertmanager.yml ]; then
  require_mounted_files alertmanager/alertmanager.yml alertmanager "write it (docs/operations.md, \"Alert notifications\")"
fi
sed "s#/etc/prometheus/#$tmp/#g" prometheus/prometheus.yml >"$tmp/prometheus.yml"

echo "Checking prometheus/prometheus.yml (as compose mounts it)"
promtool check config "$tmp/prometheus.yml"
promtool check rules prometheus/alerts.yml
if [ "$run_rule_tests" = 1 ]; then
  promtool test rules prometheus/alerts.test.yml
  echo "check-prometheus: config, rules and rule tests OK"
else
  echo "check-prometheus: config and rules OK (rule tests skipped: --skip-rule-tests)"
fi

if [ ! -f alertmanager/alertmanager.yml ]; then
  echo "check-prometheus: no alertmanager/alertmanager.yml; Alertmanager config not checked" >&2
  exit 0
fi
if ! command -v amtool >/dev/null 2>&1; then
  echo "check-prometheus: amtool not found; alertmanager/alertmanager.yml not checked (apt-get install -y prometheus-alertmanager)" >&2
  exit 0
fi
mkdir "$tmp/alertmanager"
cp -R alertmanager/. "$tmp/alertmanager/"
sed "s#/etc/alertmanager/#$tmp/alertmanager/#g" alertmanager/alertmanager.yml >"$tmp/alertmanager/alertmanager.yml"
echo "Checking alertmanager/alertmanager.yml (as compose mounts it)"
amtool check-config "$tmp/alertmanager/alertmanager.yml"
echo "check-prometheus: Alertmanager config OK"
