#!/usr/bin/env bash
# The quality gate: install with the dev extras, lint, check the import contracts, run every
# test. Database tests run on SQLite always, and on PostgreSQL (127.0.0.1:5432) and Redis
# (127.0.0.1:6379) when reachable; with CI=true an unreachable one is a failure.
# Arguments are passed to pytest (e.g. scripts/test.sh tests/test_cli.py -x). Tests run in
# parallel, one pytest-xdist worker per CPU, each file's tests on one worker in their order
# (the authorization matrix's entries build on each other); PYTEST_WORKERS=0 runs them all in
# this process.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$python" -m venv .venv
fi
echo "== installing (editable, with dev extras)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# The browser tests drive Debian's chromium (never a browser download) and inject axe-core,
# pinned in package.json, from node_modules/. Both steps are skipped once installed.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
command -v npm >/dev/null || missing="$missing npm"
if [ -n "$missing" ]; then
    echo "== installing$missing (Debian packages) for the browser tests"
    as_root apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "== installing axe-core (package-lock.json) for the accessibility checks"
    npm ci --no-audit --no-fund --silent
fi

reachable() {
    .venv/bin/python -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
' "$1" "$2"
}

postgres="not reachable at 127.0.0.1:5432: PostgreSQL tests are skipped"
redis="not reachable at 127.0.0.1:6379: Redis tests are skipped"
postgres_up=0
redis_up=0
if reachable 127.0.0.1 5432; then postgres="ran (127.0.0.1:5432)"; postgres_up=1; fi
if reachable 127.0.0.1 6379; then redis="reachable (127.0.0.1:6379)"; redis_up=1; fi

backends() {
    echo "Backends: SQLite ran; PostgreSQL $postgres; Redis $redis."
}

if [ "${CI:-}" = "true" ] && [ $((postgres_up * redis_up)) -eq 0 ]; then
    backends
    echo "CI=true: every backend must be reachable; start them with .ci/run." >&2
    exit 1
fi

# compose.yaml is validated offline by Debian's docker-compose (no Docker engine needed):
# tests/production/test_compose.py runs `docker-compose config`.
if ! command -v docker-compose >/dev/null; then
    echo "== installing docker-compose (Debian package) to validate compose.yaml"
    root=""
    [ "$(id -u)" -eq 0 ] || root="sudo"
    install_compose() {
        $root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
    }
    install_compose 2>/dev/null || { $root apt-get update -qq && install_compose; }
fi

echo "== ruff check"
.venv/bin/ruff check .
echo "== import contracts"
.venv/bin/lint-imports
echo "== mypy --strict"
.venv/bin/mypy hub journeys channels
echo "== pytest"
status=0
.venv/bin/pytest -n "${PYTEST_WORKERS:-auto}" --dist loadfile "$@" || status=$?
backends
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure." >&2
    exit 1
fi
exit "$status"
