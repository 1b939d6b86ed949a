#!/usr/bin/env bash
# Run Interaction Hub on this machine with demo data: needs only Python 3.11 or newer.
# Embedded mode: one process, a SQLite file in var/, outbound mail and texts in the
# development outbox. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Interaction Hub needs Python 3.11 or newer as '$python' (set PYTHON=… to choose)." >&2
        exit 1
    fi
    echo "Creating .venv …"
    "$python" -m venv .venv
fi
echo "Installing Interaction Hub into .venv …"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .

.venv/bin/hub migrate
.venv/bin/hub demo
exec .venv/bin/hub serve
