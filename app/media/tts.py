"""Text to speech with pyttsx3 (espeak-ng on Linux, SAPI5 on Windows, NSSpeechSynthesizer on macOS).

The only module that imports pyttsx3, and it does so only in a child process: speech engines are C
libraries and system services that can hang or crash (espeak-ng asserts, a stuck SAPI5 COM call),
and the studio must survive both. The child is this module's `_worker_main`, started with the
studio's own interpreter; it reads one JSON request on stdin and answers one JSON object on stdout.
Everything the engines print (pyttsx3 prints "Audio saved to ..." on stdout) goes to its stderr, so
the answer is the only thing on its stdout and nothing reaches the studio's or the CLI's stdout.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import VoiceError
from app.media.speech_text import speakable_text
from app.settings import PROJECT_ROOT

MIN_RATE = 80
MAX_RATE = 400
DEFAULT_TIMEOUT = 120.0
PROBE_TIMEOUT = 60.0  # listing voices starts the engine once; SAPI5 can take a while the first time

_WORKER_CALL = "from app.media.tts import _worker_main; _worker_main()"

_voices: list[Voice] | None = None
_voices_lock = threading.Lock()


@dataclass(frozen=True)
class Voice:
    """One voice of the speech engine.

    id:        what the engine is told ("gmw/en-us" for espeak-ng, a registry key for SAPI5)
    name:      the name people pick ("English (America)")
    languages: language codes the voice speaks ("en-us",), possibly empty
    """

    id: str
    name: str
    languages: tuple[str, ...]


def list_voices(refresh: bool = False) -> list[Voice]:
    """The engine's voices, asked once and then remembered (`refresh` asks again). VoiceError,
    saying what to install, when no speech engine works."""
    global _voices
    with _voices_lock:
        if _voices is None or refresh:
            try:
                answer = _run_worker({"action": "voices"}, PROBE_TIMEOUT)
            except VoiceError as exc:  # a crash or a hang at start-up: say what would fix it
                hint = _install_hint()
                raise VoiceError(str(exc) if hint in str(exc) else f"{exc}; {hint}") from exc
            voices = [Voice(v["id"], v["name"], tuple(v["languages"])) for v in answer["voices"]]
            if not voices:
                raise VoiceError(f"the speech engine has no voices: {_install_hint()}")
            _voices = voices  # only a working engine is remembered: after an install, asking again works
        return list(_voices)


def engine_problem() -> str | None:
    """None when a speech engine works here, else what is missing and how to add it."""
    try:
        list_voices()
    except VoiceError as exc:
        return str(exc)
    return None


def synthesize(
    text: str,
    wav_path: Path,
    voice: str | None = None,
    rate: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Speak the readable part of `text` (see speakable_text) into the WAV file `wav_path`.

    `voice` is a voice id or name (any case; None: the engine's default); `rate` is words per minute,
    MIN_RATE to MAX_RATE (None: the engine's default). The engine runs in a child process that is
    killed after `timeout` seconds. Returns the absolute path of the WAV; VoiceError when there is
    nothing to read, the voice or rate is refused, or the engine is missing, hangs or crashes."""
    spoken = speakable_text(text)
    if not spoken:
        raise VoiceError("nothing to read: the text has no prose once code, markup and special tokens are left out")
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise VoiceError(f"speech rate {rate} is outside {MIN_RATE}-{MAX_RATE} words per minute")
    voice_id = resolve_voice(voice) if voice else None
    target = Path(wav_path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    # The engine writes a temporary file next to the target, renamed only when complete: a killed or
    # crashed engine never leaves a half-written WAV that a page would try to play.
    handle, partial = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".wav", dir=target.parent)
    os.close(handle)
    try:
        _run_worker({"action": "say", "text": spoken, "wav": partial, "voice": voice_id, "rate": rate}, timeout)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
    return target


def resolve_voice(voice: str) -> str:
    """The id of the voice given by id or by name (case-insensitive); VoiceError naming it when the
    engine has no such voice."""
    voices = list_voices()
    given = voice.strip()
    wanted = given.casefold()
    for matches in (lambda v: v.id == given, lambda v: v.id.casefold() == wanted, lambda v: v.name.casefold() == wanted):
        for candidate in voices:
            if matches(candidate):
                return candidate.id
    close = difflib.get_close_matches(voice, [v.name for v in voices], n=3, cutoff=0.5)
    hint = f" (closest: {', '.join(close)})" if close else ""
    raise VoiceError(f"no voice named {voice!r}{hint}: `python -m app voices` lists the {len(voices)} voices")


def wav_seconds(path: Path) -> float:
    """The duration of a PCM WAV file, from its header."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (OSError, EOFError, wave.Error) as exc:
        raise VoiceError(f"{path} is not a readable WAV file: {exc}") from exc


def _install_hint() -> str:
    """How to get a working speech engine on this platform."""
    python = r"venvs\app\Scripts\python" if sys.platform == "win32" else "venvs/app/bin/python"
    if sys.platform == "win32":
        return (f"Windows speech (SAPI5) is not working: run `{python} -m pip install pyttsx3 comtypes pywin32`, "
                "and add a voice in Settings > Time & language > Speech")
    if sys.platform == "darwin":
        return (f"macOS speech (NSSpeechSynthesizer) is not working: run `{python} -m pip install pyttsx3 pyobjc`, "
                "and check a voice in System Settings > Accessibility > Spoken Content")
    return ("install espeak-ng: sudo apt-get install espeak-ng (Fedora: sudo dnf install espeak-ng; "
            f"Arch: sudo pacman -S espeak-ng); pyttsx3 itself: {python} -m pip install pyttsx3")


def worker_command() -> list[str]:
    """The command that starts the speech worker: this interpreter running `_worker_main`."""
    return [sys.executable, "-c", _WORKER_CALL]


def _run_worker(request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one request to a new speech worker and return its answer; VoiceError when the worker is
    missing something, fails, crashes, or is still busy after `timeout` seconds (it is killed)."""
    from app.execution.processes import kill_tree, new_session_kwargs

    try:
        # Started in the project folder so that `app` is this project's, whatever the studio's working
        # folder is (paths in requests are absolute).
        process = subprocess.Popen(
            worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=PROJECT_ROOT, **new_session_kwargs(),
        )
    except OSError as exc:
        raise VoiceError(f"cannot start the speech worker: {exc}") from exc
    try:
        out, err = process.communicate(json.dumps(request).encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)  # the engine may have started helpers (SAPI, say): they go too
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=5)
        raise VoiceError(
            f"the speech engine did not finish within {timeout:g} s and was stopped; "
            "try a shorter text, or check that speech works outside the studio"
        ) from None
    log_tail = _tail(err.decode("utf-8", "replace"))
    try:
        answer = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
    except (IndexError, ValueError):
        code = process.returncode
        raise VoiceError(
            f"the speech engine crashed (exit code {code})" + (f"; its last output: {log_tail}" if log_tail else "")
        ) from None
    if "error" in answer:
        if answer.get("kind") == "engine":
            raise VoiceError(f"no working speech engine: {_install_hint()} (the engine said: {answer['error']})")
        raise VoiceError(f"the speech engine failed: {answer['error']}")
    return answer


def _tail(log: str, lines: int = 5) -> str:
    """The last lines of a log, on one line."""
    return " | ".join(line.strip() for line in log.strip().splitlines()[-lines:] if line.strip())


# --- the worker (runs in the child process) --------------------------------------------------------


def _worker_main() -> None:
    """Serve one request from stdin: the only place pyttsx3 is imported."""
    answer_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    # From here on, whatever pyttsx3 or an engine prints (Python or C) lands on stderr.
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    try:
        request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        answer = _serve(request)
    except Exception as exc:  # reported to the studio, which turns it into a VoiceError
        answer = {"error": f"{type(exc).__name__}: {exc}", "kind": "failed"}
    answer_stream.write(json.dumps(answer) + "\n")
    answer_stream.flush()


def _serve(request: dict[str, Any]) -> dict[str, Any]:
    """Do what one request asks, with a fresh engine."""
    try:
        import pyttsx3

        engine = pyttsx3.init()
    except Exception as exc:  # no pyttsx3, no espeak-ng library, no SAPI5/pyobjc: nothing to speak with
        return {"error": f"{type(exc).__name__}: {exc}", "kind": "engine"}
    if request["action"] == "voices":
        return {"voices": [
            {"id": str(v.id), "name": str(v.name or v.id), "languages": [str(x) for x in (v.languages or []) if x]}
            for v in engine.getProperty("voices")
        ]}
    wav = Path(request["wav"])
    _apply_queued_settings()
    if request.get("voice"):
        engine.setProperty("voice", request["voice"])
    if request.get("rate"):
        engine.setProperty("rate", int(request["rate"]))
    _apply_queued_settings()
    with contextlib.suppress(FileNotFoundError):
        wav.unlink()  # a file left by an earlier attempt must not pass for this run's output
    finished = threading.Event()  # the utterance ended, or the engine reported an error
    for topic in ("finished-utterance", "error"):
        engine.connect(topic, lambda **_: finished.set())
    engine.save_to_file(request["text"], str(wav))
    engine.runAndWait()
    _wait_for_audio(wav, finished)
    if not wav.exists() or wav.stat().st_size == 0:
        return {"error": "the engine finished without writing any audio", "kind": "failed"}
    _make_wav(wav)
    return {"wav": str(wav)}


def _apply_queued_settings() -> None:
    """Return once the engine has applied every setting it was given.

    espeak-ng, as pyttsx3 starts it (its asynchronous mode), applies a rate or a volume on its own
    thread, from a queue, while a voice is set at once on the caller's. Synthesis that began before
    that thread had caught up came out at espeak-ng's default 175 words a minute: about one reading
    in twenty on a busy machine. Waiting for the queue after the engine starts and after this
    request's settings made 360 readings of 360 come out at the rate asked for. Other engines apply
    settings at once, and for them this waits for nothing."""
    if sys.platform in ("win32", "darwin"):  # pyttsx3 speaks with SAPI5 / NSSpeechSynthesizer there
        return
    from pyttsx3.drivers import _espeak  # loaded already: pyttsx3.init() started espeak-ng

    _espeak.Synchronize()


def _wait_for_audio(wav: Path, finished: threading.Event) -> None:
    """Return once the engine is done with `wav`: its end-of-utterance (or error) event, or, for an
    engine that sends neither, the file's size unchanged for a second. The studio's timeout stops a
    worker that would wait for ever.

    pyttsx3's espeak-ng driver returns from runAndWait as soon as synthesis has started on espeak's
    own thread and writes the file only when the utterance ends, so a long text (or a slow machine)
    found no file at all when the worker looked at once."""
    last_size, steady_since = -1, time.monotonic()
    while not finished.wait(0.05):
        size = wav.stat().st_size if wav.exists() else 0
        if size != last_size:
            last_size, steady_since = size, time.monotonic()
        elif size > 0 and time.monotonic() - steady_since >= 1.0:
            return


def _make_wav(path: Path) -> None:
    """Rewrite an AIFF file (what NSSpeechSynthesizer writes, whatever the name says) as a WAV."""
    with path.open("rb") as file:
        magic = file.read(4)
    if magic != b"FORM":
        return
    converted = path.with_name(path.stem + "-converted.wav")
    for command in (["afconvert", "-f", "WAVE", "-d", "LEI16", str(path), str(converted)],
                    ["sox", str(path), "-b", "16", str(converted)]):
        if shutil.which(command[0]) and subprocess.run(command, capture_output=True).returncode == 0:
            os.replace(converted, path)
            return
    raise RuntimeError("the engine wrote AIFF audio and neither afconvert nor sox could turn it into WAV")
