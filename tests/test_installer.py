"""The installer: stamps make a repeat run a no-op; missing OS packages are named precisely."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app import installer
from app.settings import PROJECT_ROOT


def test_stamp_changes_with_requirements(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("gradio==6.31.0\n")
    first = installer.stamp_for([req])
    assert installer.stamp_for([req]) == first
    req.write_text("gradio==6.31.1\n")
    assert installer.stamp_for([req]) != first


def test_second_run_with_nothing_changed_installs_nothing() -> None:
    """run_tests.sh has just installed everything: a new run only compares stamps."""
    done = subprocess.run(
        ["./install.sh", "--with-tests", "--skip-os-packages"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "venvs/app: up to date (app)" in done.stdout
    assert "venvs/app: up to date (test)" in done.stdout
    assert "venvs/jupyter: up to date (jupyter)" in done.stdout
    assert "installing" not in done.stdout


def test_missing_os_packages_without_root_print_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(installer.sys, "platform", "linux")
    monkeypatch.setattr(installer, "missing_os_packages", lambda: ["espeak-ng", "sox"])
    monkeypatch.setattr(installer.os, "geteuid", lambda: 1000, raising=False)
    installer.install_os_packages()
    assert "run once: sudo apt-get install -y --no-install-recommends espeak-ng sox" in capsys.readouterr().out


def test_code_environment_has_the_data_tools() -> None:
    python = installer.venv_python("jupyter")
    code = "import ipykernel, jupyterlab, numpy, pandas, matplotlib, seaborn, scipy, sklearn, plotly, pymupdf, requests, bs4"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
