#!/usr/bin/env bash
# Scale mode on one machine: two web workers on one port, two Rasa replicas, one action server, all on
# PostgreSQL (DATABASE_URL) and Redis (REDIS_URL). The same code as `make run`; only settings differ.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export RASA_URL="${RASA_URL:-http://127.0.0.1:5005,http://127.0.0.1:5006}"
.venv/bin/python -m civic.migrate
eval "$(.venv/bin/python -m webapp.scale "$DATABASE_URL" "$REDIS_URL")"
# Every process writes its metrics here and the exporter adds them up; a previous run's counts must not add in.
export PROMETHEUS_MULTIPROC_DIR="$PWD/var/prometheus"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
echo "Scale mode: web chat http://localhost:${WEB_PORT:-8000}/chat (2 workers) · Rasa :5005 and :5006 · PostgreSQL + Redis"
exec .venv/bin/honcho start -f Procfile.scaled
