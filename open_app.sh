#!/usr/bin/env bash
# Install what is missing, then open Chain Studio (extra arguments go to `python -m app ui`).
set -euo pipefail
cd "$(dirname "$0")"
./install.sh
exec venvs/app/bin/python -m app ui "$@"
