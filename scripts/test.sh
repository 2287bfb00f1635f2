#!/usr/bin/env bash
# The whole suite: lint, then pytest on SQLite, then again on PostgreSQL (+ Redis reachable) as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD" SQLALCHEMY_SILENCE_UBER_WARNING=1
PG_URL="${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"

echo "== lint"
.venv/bin/ruff check .
.venv/bin/mypy civic bot actions webapp telephony operator_console

echo "== pytest on SQLite"
env -u DATABASE_URL .venv/bin/python -m pytest "$@"

echo "== pytest on PostgreSQL ($PG_URL)"
if .venv/bin/python - "$PG_URL" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as error:
    print(f"PostgreSQL unreachable: {error}", file=sys.stderr)
    sys.exit(1)
PY
then
  DATABASE_URL="$PG_URL" .venv/bin/python -m pytest "$@"
elif [ -n "${CI:-}" ]; then
  echo "CI is set and PostgreSQL is unreachable: failing, not skipping." >&2
  exit 1
else
  echo "PostgreSQL unreachable and CI unset: the PostgreSQL run is skipped on this laptop." >&2
fi
