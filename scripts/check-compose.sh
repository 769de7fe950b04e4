#!/usr/bin/env bash
# Validates docker-compose.yml offline with `docker compose config` (v2 plugin) or, where only
# Debian's docker-compose 1.29 exists (apt-get install -y docker-compose), `docker-compose config`.
# Skips with a message when neither is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The file refuses to render without SESSION_SECRET, AUDIT_CHAIN_KEY, POSTGRES_PASSWORD and
# GRAFANA_ADMIN_PASSWORD; any values do for validation.
export SESSION_SECRET="${SESSION_SECRET:-check-compose-placeholder-not-a-real-secret}"
export AUDIT_CHAIN_KEY="${AUDIT_CHAIN_KEY:-check-compose-placeholder-not-a-real-audit-key}"
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-checkcomposeplaceholder}"
export GRAFANA_ADMIN_PASSWORD="${GRAFANA_ADMIN_PASSWORD:-checkcomposeplaceholder}"

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "check-compose: neither 'docker compose' nor 'docker-compose' is installed; skipped" >&2
  exit 0
fi
"${compose[@]}" -f docker-compose.yml config --quiet
# The documented quick start: .env copied from .env.example (the shell's SESSION_SECRET still wins).
"${compose[@]}" --env-file .env.example -f docker-compose.yml config --quiet
echo "check-compose: docker-compose.yml OK, also with .env.example"
