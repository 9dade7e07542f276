"""`python -m app say` and `python -m app voices`: JSON lines, WAV files measured with sox, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import PROJECT_ROOT


def run_app(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, input=stdin,
        timeout=300,
    )


def soxi_seconds(path: Path) -> float:
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)


def test_say_writes_a_wav_and_prints_one_json_line(tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    done = run_app("say", "Hello from the demo model.", "--wav", str(wav))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1  # the engine's "Audio saved to ..." stays off stdout
    said = json.loads(lines[0])
    assert set(said) == {"type", "wav", "seconds", "characters"}
    assert said["type"] == "said" and said["wav"] == str(wav.resolve())
    assert said["characters"] == len("Hello from the demo model.")
    assert 0.5 < soxi_seconds(wav) < 10
    assert said["seconds"] == pytest.approx(soxi_seconds(wav), abs=0.001)


def test_say_reads_standard_input_and_skips_code(tmp_path: Path) -> None:
    text = "# Result\nThe **answer** is four.\n\n```python\nprint(2 + 2)\n```\n"
    done = run_app("say", "-", "--wav", str(tmp_path / "answer.wav"), "--voice", "english (america)",
                   "--rate", "150", stdin=text)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["characters"] == len("Result.\nThe answer is four.")
    assert 0.5 < soxi_seconds(tmp_path / "answer.wav") < 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["say", "Hi.", "--voice", "Vulcan"], "no voice named 'Vulcan'"),
        (["say", "Hi.", "--rate", "1000"], "speech rate 1000 is outside 80-400 words per minute"),
        (["say", "```\ncode only\n```"], "nothing to read"),
    ],
)
def test_say_refusals_print_an_error_line_and_exit_1(args: list[str], message: str, tmp_path: Path) -> None:
    wav = tmp_path / "x.wav"
    done = run_app(*args, "--wav", str(wav))
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert message in error["error"] and error["wav"] == str(wav)
    assert done.stderr.startswith(f"error: {error['error']}")
    assert not wav.exists()


def test_say_needs_a_wav_path() -> None:
    done = run_app("say", "Hi.")
    assert done.returncode == 2 and "--wav" in done.stderr


def test_voices_prints_one_line_per_voice() -> None:
    done = run_app("voices")
    assert done.returncode == 0, done.stderr
    voices = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(voices) > 1
    assert all(set(v) == {"type", "id", "name", "languages"} and v["type"] == "voice" for v in voices)
    assert {"type": "voice", "id": "gmw/en-us", "name": "English (America)", "languages": ["en-us"]} in voices


def test_vosk_model_refuses_an_unknown_language_and_a_file_that_is_not_the_pinned_one(tmp_path: Path) -> None:
    import os

    from tests.hub_standin import StandInHub

    unknown = run_app("vosk-model", "fr")
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout)["error"].endswith("choose one of en, pt")
    mirror = StandInHub().start()
    try:
        mirror.add("vosk/models", "vosk-model-small-en-us-0.15.zip", b"PK not the model")
        env = dict(os.environ, CHAIN_STUDIO_HOME=str(tmp_path),
                   CHAIN_STUDIO_VOSK_URL=f"{mirror.endpoint}/vosk/models/resolve/main")
        done = subprocess.run([sys.executable, "-m", "app", "vosk-model", "en"], capture_output=True, text=True,
                              cwd=PROJECT_ROOT, env=env, timeout=300)
    finally:
        mirror.stop()
    assert done.returncode == 1
    line = json.loads(done.stdout)
    assert line["language"] == "en" and "is not the expected vosk-model-small-en-us-0.15" in line["error"]
    assert "Traceback" not in done.stderr
    assert [p for p in (tmp_path / "vosk-models").rglob("*") if p.is_file()] == []
