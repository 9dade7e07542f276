"""Static checks that catch real mistakes: ruff (undefined names, unused imports, import order,
bugbear's likely bugs; rules in pyproject.toml) everywhere, and mypy on the core and the models."""

import subprocess
import sys

from app.settings import PROJECT_ROOT


def test_ruff_finds_no_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "app", "tests", "bench"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_no_errors_in_the_core_and_models() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", "pyproject.toml"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
