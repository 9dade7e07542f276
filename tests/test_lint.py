"""Static checks that catch real mistakes (undefined names, unused imports, syntax errors)."""

import subprocess
import sys

from app.settings import PROJECT_ROOT


def test_ruff_finds_no_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "F,E9", "--output-format", "concise", "app", "tests", "bench"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
