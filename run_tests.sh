#!/usr/bin/env bash
# Install what is missing (with the test tools), then run the test suite (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")"
./install.sh --with-tests
set +e
venvs/app/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run_tests.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
