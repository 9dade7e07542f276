#!/usr/bin/env bash
# Install Chain Studio: OS packages (as root), venvs/app, venvs/jupyter and the demo model.
# Safe to run again: with nothing changed it finishes in seconds.
set -euo pipefail
cd "$(dirname "$0")"

find_python() {
  local candidate
  for candidate in "${CHAIN_STUDIO_PYTHON:-}" python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! PYTHON=$(find_python); then
  echo "Chain Studio needs Python 3.11 or newer (python3.11 was not found)." >&2
  echo "On Debian/Ubuntu: sudo apt-get install -y python3.11 python3.11-venv" >&2
  exit 1
fi
exec "$PYTHON" -m app.installer "$@"
