#!/usr/bin/env bash
# Every figure of issue 8's table, one run after another, as docs/performance.md
# ("Where the figures stand") reports them: about 18 minutes, the soak being 10 of them.
# Needs DATABASE_URL pointing at a database filled by `npm run bench:data` (section 1), warmed
# (section 0); the results land in bench/results/ as every run's do. A failed run stops the
# rest: a figure taken after an error says little.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  echo "bench/figures.sh: set DATABASE_URL to a database filled by npm run bench:data" >&2
  exit 2
fi

run() {
  echo "=== npm run bench -- $* ($(date -u +%T) UTC)"
  npm run -s bench -- "$@"
}

run --scenario login-browse --vus 20 --duration 60 --think-ms 0-1000 --ramp-ms 2000
run --scenario login-browse --vus 100 --duration 40 --think-ms 0-1000 --ramp-ms 2000
run --scenario login-browse --vus 20 --duration 30 --ramp-ms 2000
run --scenario login-browse --vus 20 --duration 30 --ramp-ms 2000
run --scenario browse --vus 50 --duration 30
run --scenario browse --vus 50 --duration 30
run --scenario me --vus 50 --duration 20
run --scenario healthz --vus 50 --duration 10
run --scenario healthz --vus 50 --duration 10
run --scenario healthz --vus 50 --duration 10
run --scenario formula-304 --vus 50 --duration 10
echo "=== npm run bench:soak ($(date -u +%T) UTC)"
npm run -s bench:soak
