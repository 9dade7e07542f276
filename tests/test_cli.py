"""`python -m app` as people and scripts use it: exit codes, JSON lines, messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.settings import PROJECT_ROOT


def run_app(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=timeout
    )


def test_info_prints_the_header_as_one_json_line(demo_model: Path) -> None:
    done = run_app("info", str(demo_model))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    info = json.loads(lines[0])
    assert info["architecture"] == "llama"
    assert info["vocab_size"] == 294 and info["context_length"] == 4096
    assert info["quantization"] == "F32" and info["file_size"] == demo_model.stat().st_size
    for key in ("name", "size_label", "parameter_count", "chat_template", "version"):
        assert key in info


def test_info_refuses_a_bad_file_with_its_message(tmp_path: Path) -> None:
    page = tmp_path / "model.gguf"
    page.write_text("<html><body>Sign in to download</body></html>")
    done = run_app("info", str(page))
    assert done.returncode == 1
    assert "HTML web page" in json.loads(done.stdout)["error"]
    assert done.stderr.startswith("error: ") and "HTML web page" in done.stderr


def test_demo_model_goes_to_the_models_folder(studio_home: Path, tmp_path: Path) -> None:
    done = run_app("demo-model")
    assert done.returncode == 0, done.stderr
    written = Path(json.loads(done.stdout)["path"])
    assert written == (studio_home / "models" / "chain-studio-demo.gguf").resolve()
    # --models-dir works before and after the sub-command; a bare name is looked up in it.
    elsewhere = tmp_path / "elsewhere"
    assert run_app("--models-dir", str(elsewhere), "demo-model").returncode == 0
    assert run_app("demo-model", "--models-dir", str(elsewhere), "--keep-existing").returncode == 0
    info = run_app("info", "chain-studio-demo.gguf", "--models-dir", str(elsewhere))
    assert json.loads(info.stdout)["file_name"] == "chain-studio-demo.gguf"


def test_listen_without_password_is_refused_before_starting() -> None:
    done = run_app("ui", "--listen", "--no-browser")
    assert done.returncode == 2
    assert "--listen" in done.stderr and "--password" in done.stderr


def test_importing_the_entry_point_loads_nothing_heavy() -> None:
    code = (
        "import sys, app.__main__ as m; m.build_parser();"
        "print(sorted(n for n in ('gradio', 'llama_cpp', 'numpy', 'gguf') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert done.stdout.strip() == "[]"
