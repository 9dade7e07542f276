"""Text to speech through the real engine (espeak-ng via pyttsx3 here), measured with sox."""

from __future__ import annotations

import ast
import subprocess
import sys
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app import settings
from app.core.errors import VoiceError
from app.execution.processes import pid_alive
from app.media import tts
from app.settings import PROJECT_ROOT

HELLO = "Hello from the demo model."
CODE = "for number in range(10):\n    print('a long line of code that would take seconds to read aloud', number)\n"


def soxi_seconds(path: Path) -> float:
    """The duration sox measures (independent of our own WAV reading)."""
    done = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.fixture(scope="module")
def voices() -> list[tts.Voice]:
    problem = tts.engine_problem()
    if problem:
        pytest.fail(f"espeak-ng is installed on this machine, so a speech engine must work: {problem}")
    return tts.list_voices()


def test_hello_becomes_a_wav_of_a_sensible_length(voices: list[tts.Voice], tmp_path: Path) -> None:
    wav = tts.synthesize(HELLO, tmp_path / "hello.wav")
    assert wav == (tmp_path / "hello.wav").resolve()
    assert 0.5 < soxi_seconds(wav) < 10
    with wave.open(str(wav), "rb") as audio:
        assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
    assert tts.wav_seconds(wav) == pytest.approx(soxi_seconds(wav), abs=0.001)
    assert [p.name for p in tmp_path.iterdir()] == ["hello.wav"]  # no temporary file left behind


def test_a_long_text_is_written_whole(voices: list[tts.Voice], tmp_path: Path) -> None:
    # The engine writes the file when the utterance ends, after its run loop has returned: the
    # worker waits for that (a long text used to come back as "finished without writing any audio").
    sentence = "This sentence is spoken again and again so that the answer takes a while to read. "
    wav = tts.synthesize(sentence * 12, tmp_path / "long.wav")
    assert soxi_seconds(wav) > 30


def test_a_code_block_is_not_spoken(voices: list[tts.Voice], tmp_path: Path) -> None:
    plain = soxi_seconds(tts.synthesize(HELLO, tmp_path / "plain.wav"))
    with_code = soxi_seconds(tts.synthesize(f"{HELLO}\n\n```python\n{CODE}```\n", tmp_path / "code.wav"))
    code_read_aloud = soxi_seconds(tts.synthesize(f"{HELLO}\n\n{CODE}", tmp_path / "read.wav"))
    assert with_code == plain
    assert code_read_aloud > plain + 2  # the same words as prose take seconds longer


def test_markup_and_special_tokens_are_not_spoken(voices: list[tts.Voice], tmp_path: Path) -> None:
    plain = tts.synthesize(HELLO, tmp_path / "plain.wav").read_bytes()
    marked = tts.synthesize("<think>hmm</think>**Hello** from the `x` demo model.<|im_end|>", tmp_path / "m.wav")
    assert marked.read_bytes() == plain


def test_the_rate_holds_when_the_machine_is_busy(voices: list[tts.Voice], tmp_path: Path) -> None:
    # espeak-ng applies a rate on its own thread: without a wait for it, about one reading in twenty
    # on a busy machine came out at its default 175 words a minute. Eight readings at a time keep
    # both cores busy, as a chain run beside the speech does.
    def read(index: int) -> int:
        return tts.synthesize(HELLO, tmp_path / f"busy-{index}.wav").stat().st_size

    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(read, range(64)))
    assert set(sizes) == {sizes[0]}, f"{len(set(sizes))} different lengths: {sorted(set(sizes))}"


def test_voice_by_name_any_case_is_the_voice_by_id(voices: list[tts.Voice], tmp_path: Path) -> None:
    english = next(v for v in voices if v.id.endswith("en-us"))
    portuguese = next(v for v in voices if v.id.endswith("pt-br"))
    assert english.name == "English (America)" and english.languages == ("en-us",)
    by_id = tts.synthesize(HELLO, tmp_path / "id.wav", voice=english.id).read_bytes()
    by_name = tts.synthesize(HELLO, tmp_path / "name.wav", voice=english.name.upper()).read_bytes()
    other = tts.synthesize(HELLO, tmp_path / "pt.wav", voice=portuguese.name).read_bytes()
    assert by_name == by_id
    assert other != by_id


def test_a_slower_rate_gives_a_longer_wav(voices: list[tts.Voice], tmp_path: Path) -> None:
    slow = soxi_seconds(tts.synthesize(HELLO, tmp_path / "slow.wav", rate=100))
    fast = soxi_seconds(tts.synthesize(HELLO, tmp_path / "fast.wav", rate=300))
    assert slow > fast * 1.5


def test_an_unknown_voice_is_refused_by_name(voices: list[tts.Voice], tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match=r"no voice named 'Klingon Warrior'.*python -m app voices"):
        tts.synthesize(HELLO, tmp_path / "x.wav", voice="Klingon Warrior")
    with pytest.raises(VoiceError, match=r"closest: English \(America\)"):
        tts.synthesize(HELLO, tmp_path / "x.wav", voice="Englsh (America)")
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("rate", [79, 401, 0, -5])
def test_a_rate_out_of_bounds_is_refused(rate: int, tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match=f"speech rate {rate} is outside 80-400 words per minute"):
        tts.synthesize(HELLO, tmp_path / "x.wav", rate=rate)


@pytest.mark.parametrize("text", ["", "```python\nprint(1)\n```", "<think>only thoughts</think>", "<|im_end|>"])
def test_nothing_to_read_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="nothing to read"):
        tts.synthesize(text, tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


def test_the_speech_folder_holds_wavs(voices: list[tts.Voice], studio_home: Path) -> None:
    folder = settings.speech_dir()
    assert folder == studio_home / "speech" and folder.is_dir()
    assert 0.5 < soxi_seconds(tts.synthesize(HELLO, folder / "answer.wav")) < 10


def test_the_engine_prints_nothing_on_the_studios_stdout(voices: list[tts.Voice], tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    tts.synthesize(HELLO, tmp_path / "quiet.wav")
    out, _err = capfd.readouterr()
    assert out == ""  # pyttsx3 prints "Audio saved to ..." in the worker, where it stays


def test_the_studio_process_never_imports_pyttsx3(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from app.media import tts;"
        f"tts.synthesize('Hi there.', Path({str(tmp_path / 'a.wav')!r})); tts.list_voices();"
        "print('pyttsx3' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert done.stdout == "False\n", done.stderr


def test_pyttsx3_is_imported_by_tts_only() -> None:
    assert modules_importing("pyttsx3") == ["app/media/tts.py"]


def test_a_hanging_engine_is_killed_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real process that never answers stands in for a speech engine stuck in its C library.
    pid_file = tmp_path / "worker.pid"
    hang = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    monkeypatch.setattr(tts, "worker_command", lambda: [sys.executable, "-c", hang])
    with pytest.raises(VoiceError, match=r"did not finish within 1 s and was stopped"):
        tts.synthesize(HELLO, tmp_path / "hang.wav", timeout=1)
    assert not pid_alive(int(pid_file.read_text()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker.pid"]  # neither the WAV nor a partial one


def test_a_crashing_engine_is_reported_with_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crash = "import os, sys; sys.stderr.write('espeak: assertion failed\\n'); sys.stderr.flush(); os._exit(134)"
    monkeypatch.setattr(tts, "worker_command", lambda: [sys.executable, "-c", crash])
    with pytest.raises(VoiceError, match=r"crashed \(exit code 134\); its last output: espeak: assertion failed"):
        tts.synthesize(HELLO, tmp_path / "crash.wav")
    assert list(tmp_path.iterdir()) == []


def test_without_an_engine_the_problem_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real worker, in a real child process, in which pyttsx3 cannot be imported.
    missing = "import sys; sys.modules['pyttsx3'] = None; " + tts._WORKER_CALL
    monkeypatch.setattr(tts, "worker_command", lambda: [sys.executable, "-c", missing])
    monkeypatch.setattr(tts, "_voices", None)
    problem = tts.engine_problem()
    assert problem is not None and problem.startswith("no working speech engine: install espeak-ng: ")
    assert "sudo apt-get install espeak-ng" in problem and "pyttsx3" in problem
    with pytest.raises(VoiceError, match="sudo apt-get install espeak-ng"):
        tts.list_voices()
    monkeypatch.undo()
    assert tts.engine_problem() is None  # a failure is not remembered: after an install it works


def modules_importing(name: str) -> list[str]:
    """The app modules that import `name` (anywhere in the file, lazily or not)."""
    found = []
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == name or n.startswith(name + ".") for n in names):
                found.append(path.relative_to(PROJECT_ROOT).as_posix())
                break
    return found
