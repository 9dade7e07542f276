"""Speech to text with Vosk, from a microphone (sounddevice) or a WAV file, through one code path.

The only module that imports vosk and sounddevice, and only inside functions: a missing PortAudio
library or vosk wheel must become a VoiceError saying how to fix it when voice input is used, not
an ImportError when the studio starts.

Offline by construction: Vosk downloads a model when it is given a language or model name, so it is
only ever given the path of an existing local folder (check_model_folder runs first).

    source (MicrophoneSource | WavSource) --bytes--> Listener thread --> Transcriber --> Heard
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from app.core.errors import VoiceError

MODELS_URL = "https://alphacephei.com/vosk/models"
POLL_SECONDS = 0.1  # how often a waiting microphone iterator looks at its stop flag
_PYTHON = r"venvs\app\Scripts\python" if sys.platform == "win32" else "venvs/app/bin/python"

_models: dict[Path, Any] = {}  # loaded Vosk models by folder: loading takes seconds, reuse is free
_models_lock = threading.Lock()


@dataclass(frozen=True)
class Heard:
    """Recognised speech.

    text:  the words (lowercase, no punctuation, as Vosk writes them)
    final: True when the recogniser has settled an utterance (after a pause); False for a partial
           result that may still change as the person speaks
    """

    text: str
    final: bool


class AudioSource(Protocol):
    """Chunks of 16-bit mono PCM at `sample_rate`, until the audio ends or `close()` is called."""

    sample_rate: int

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


# --- the model -------------------------------------------------------------------------------------


def check_model_folder(path: Path) -> None:
    """Refuse, with how to get a model, anything but an existing folder that looks like a Vosk model
    (it has am/final.mdl, or final.mdl in older models: what Vosk itself looks for)."""
    path = Path(path)
    get_one = ("press Download under “Download a Vosk model” in the Voice tab (or run `python -m app "
               f"vosk-model en`), or download a model from {MODELS_URL} (e.g. vosk-model-small-en-us-0.15 or "
               "vosk-model-small-pt-0.3), unzip it, and choose the unzipped folder as the Vosk model folder")
    if not path.exists():
        raise VoiceError(f"no Vosk model at {path}: {get_one}")
    if not path.is_dir():
        what = "a zip file: unzip it and choose the folder inside" if path.suffix.lower() == ".zip" else "a file"
        raise VoiceError(f"the Vosk model {path} is {what}, not a folder: {get_one}")
    if looks_like_model(path):
        return
    inside = [child for child in sorted(path.iterdir()) if child.is_dir() and looks_like_model(child)]
    if inside:
        raise VoiceError(f"{path} holds a Vosk model one level down: choose {inside[0]} as the Vosk model folder")
    raise VoiceError(f"{path} is not a Vosk model (it has no am/final.mdl): {get_one}")


def looks_like_model(folder: Path) -> bool:
    """Whether a folder has the files of a Vosk (Kaldi) model, in the new or the old layout."""
    return (folder / "am" / "final.mdl").is_file() or (folder / "final.mdl").is_file()


def _vosk() -> Any:
    """The vosk module, quiet; VoiceError with the fix when it cannot be imported."""
    try:
        import vosk
    except ImportError as exc:
        raise VoiceError(f"vosk is not installed ({exc}): run `{_PYTHON} -m pip install vosk`") from exc
    except OSError as exc:  # the wheel's libvosk could not be loaded
        raise VoiceError(f"vosk cannot load its library ({exc}): reinstall it with "
                         f"`{_PYTHON} -m pip install --force-reinstall vosk`") from exc
    vosk.SetLogLevel(-1)  # Kaldi's start-up log would otherwise flood the studio's stderr
    return vosk


def _load_model(folder: Path) -> Any:
    """The Vosk model in `folder`, loaded once per folder. Only a checked, existing folder's path is
    given to vosk.Model (anything else could make it download)."""
    check_model_folder(folder)
    key = folder.resolve()
    with _models_lock:
        if key not in _models:
            vosk = _vosk()
            try:
                _models[key] = vosk.Model(str(key))
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                raise VoiceError(f"Vosk could not load the model in {key} ({exc}): the folder may be "
                                 f"incomplete; unzip the model from {MODELS_URL} again") from exc
        return _models[key]


class Transcriber:
    """Vosk recognition of one audio stream: feed it PCM, get what was heard.

    One Transcriber per stream (the recogniser keeps the utterance in progress); the model behind it
    is shared. Use it from one thread at a time."""

    def __init__(self, model_folder: Path, sample_rate: int = 16000) -> None:
        self.model_folder = Path(model_folder)
        self.sample_rate = sample_rate
        model = _load_model(self.model_folder)
        self._recognizer = _vosk().KaldiRecognizer(model, float(sample_rate))
        self._partial = ""

    def feed(self, pcm16_mono: bytes) -> list[Heard]:
        """Recognise one chunk of 16-bit mono PCM at `sample_rate`: a final result when an utterance
        ended, a partial result when the words in progress changed, else nothing."""
        if not pcm16_mono:
            return []
        if self._recognizer.AcceptWaveform(pcm16_mono):
            return self._final(self._recognizer.Result())
        partial = json.loads(self._recognizer.PartialResult()).get("partial", "").strip()
        if partial == self._partial:
            return []
        self._partial = partial
        return [Heard(partial, final=False)] if partial else []

    def finish(self) -> list[Heard]:
        """The last utterance, settled (call when the audio ends)."""
        return self._final(self._recognizer.FinalResult())

    def _final(self, result: str) -> list[Heard]:
        self._partial = ""
        text = json.loads(result).get("text", "").strip()
        return [Heard(text, final=True)] if text else []


# --- audio sources ---------------------------------------------------------------------------------


class WavSource:
    """A sound file as chunks of 16-bit mono PCM at `sample_rate`, as fast as they can be read (once).

    Any other WAV (stereo, 22 kHz, 8-bit, float...) or another format sox reads is converted with sox
    into a temporary file first (VoiceError when sox is missing or cannot read it)."""

    def __init__(self, path: Path, chunk_seconds: float = 0.1, sample_rate: int = 16000) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.chunk_frames = max(1, int(chunk_seconds * sample_rate))
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._reading = False
        self._converted: Path | None = None
        if not self.path.is_file():
            raise VoiceError(f"no sound file at {self.path}")
        if not self._is_pcm16_mono():
            self._converted = _convert_with_sox(self.path, sample_rate)

    def _is_pcm16_mono(self) -> bool:
        try:
            with wave.open(str(self.path), "rb") as wav:
                return (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getcomptype()) == \
                    (1, 2, self.sample_rate, "NONE")
        except (wave.Error, EOFError):
            return False

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            if self._closed.is_set():
                return
            self._reading = True
        try:
            with wave.open(str(self._converted or self.path), "rb") as wav:
                while not self._closed.is_set():
                    chunk = wav.readframes(self.chunk_frames)
                    if not chunk:
                        break
                    yield chunk
        finally:
            # A file is read once: the converted copy goes as soon as the reading ends.
            with self._lock:
                self._reading = False
                self._closed.set()
            self._remove_converted()

    def close(self) -> None:
        """Stop the iteration at the next chunk and delete the converted copy."""
        self._closed.set()
        with self._lock:
            reading = self._reading
        if not reading:  # an iteration in progress deletes it itself, after closing the file
            self._remove_converted()

    def _remove_converted(self) -> None:
        if self._converted is not None:
            with contextlib.suppress(OSError):
                self._converted.unlink()
                self._converted.parent.rmdir()


def _convert_with_sox(path: Path, sample_rate: int) -> Path:
    """A temporary 16-bit mono WAV at `sample_rate` made from `path` by sox."""
    sox = shutil.which("sox")
    if sox is None:
        install = {"win32": "install SoX from https://sourceforge.net/projects/sox/ and put it on PATH",
                   "darwin": "brew install sox"}.get(sys.platform, "sudo apt-get install sox")
        raise VoiceError(f"{path.name} is not 16-bit mono {sample_rate} Hz audio, and sox is needed to convert it: {install}")
    folder = Path(tempfile.mkdtemp(prefix="chain-studio-audio-"))
    target = folder / "converted.wav"
    # -D: no dither, so the same file always gives the same samples (dither is random noise).
    done = subprocess.run(
        [sox, "-D", str(path), "-r", str(sample_rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(target)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        raise VoiceError(f"sox cannot convert {path.name}: {reason}")
    return target


def _sounddevice() -> Any:
    """The sounddevice module; VoiceError with the fix when it or PortAudio is missing."""
    try:
        import sounddevice
    except ImportError as exc:
        raise VoiceError(f"sounddevice is not installed ({exc}): run `{_PYTHON} -m pip install sounddevice`") from exc
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found") at import
        raise VoiceError(f"PortAudio is missing: {_portaudio_hint()} ({exc})") from exc
    return sounddevice


def _portaudio_hint() -> str:
    if sys.platform.startswith("linux"):
        return "install libportaudio2: sudo apt-get install libportaudio2 (Fedora: sudo dnf install portaudio), then restart the studio"
    return f"reinstall sounddevice, which brings PortAudio: `{_PYTHON} -m pip install --force-reinstall sounddevice`"


def microphone_problem() -> str | None:
    """None when an audio input device exists, else what is missing and how to add it."""
    try:
        sounddevice = _sounddevice()
        devices = sounddevice.query_devices()
    except VoiceError as exc:
        return str(exc)
    except Exception as exc:  # PortAudioError: the audio system itself does not answer
        return f"the audio system cannot list devices ({exc}): check that sound works on this computer"
    if not any(device.get("max_input_channels", 0) > 0 for device in devices):
        return ("no microphone found: connect one (or allow this program to use it in the system's privacy "
                "settings) and try again; on Linux, `arecord -l` lists the capture devices the system sees")
    return None


class MicrophoneSource:
    """The microphone as chunks of 16-bit mono PCM at `sample_rate`, as they are recorded.

    Constructed: the input stream is opened (VoiceError when there is no microphone). Iterated: it
    records until `close()`; the iterator wakes every POLL_SECONDS even in silence, so closing stops
    it promptly. PortAudio's callback thread only puts bytes in a queue: it must never wait."""

    def __init__(self, sample_rate: int = 16000, device: int | str | None = None) -> None:
        self.sample_rate = sample_rate
        self.device = device
        self._chunks: queue.Queue[bytes] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        problem = microphone_problem()
        if problem:
            raise VoiceError(problem)
        sounddevice = _sounddevice()
        try:
            self._stream = sounddevice.RawInputStream(
                samplerate=sample_rate, blocksize=int(sample_rate * POLL_SECONDS), device=device,
                channels=1, dtype="int16", callback=self._on_audio,
            )
        except Exception as exc:  # PortAudioError, ValueError for an unknown device
            which = f"microphone {device!r}" if device is not None else "the microphone"
            raise VoiceError(f"cannot open {which} at {sample_rate} Hz: {exc}") from exc

    def _on_audio(self, data: Any, frames: int, time: Any, status: Any) -> None:
        # Runs on PortAudio's thread. Overflows (status) are dropped audio: recognition copes.
        self._chunks.put(bytes(data))

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            if self._closed.is_set():
                return
            if not self._started:
                try:
                    self._stream.start()
                except Exception as exc:  # PortAudioError: the device went away or is taken
                    raise VoiceError(f"cannot start recording from the microphone: {exc}") from exc
                self._started = True
        while not self._closed.is_set():
            try:
                yield self._chunks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue

    def close(self) -> None:
        """Stop recording and release the microphone (safe to call from any thread, more than once)."""
        self._closed.set()
        with self._lock:
            stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.stop()
            with contextlib.suppress(Exception):
                stream.close()


# --- listening -------------------------------------------------------------------------------------


class Listener:
    """A daemon thread feeding an audio source to a transcriber.

    Each Heard goes into `heard` (a queue.Queue) and to `on_heard` (called on the listening thread).
    The thread ends when the audio ends (a WAV: the last utterance is settled first), on `stop()`, or
    on an error, which is kept in `error`. The source is closed when it ends."""

    def __init__(self, source: AudioSource, transcriber: Transcriber,
                 on_heard: Callable[[Heard], None] | None = None) -> None:
        source_rate = getattr(source, "sample_rate", transcriber.sample_rate)
        if source_rate != transcriber.sample_rate:
            raise VoiceError(f"the audio is {source_rate} Hz but the recogniser expects {transcriber.sample_rate} Hz")
        self.source = source
        self.transcriber = transcriber
        self.on_heard = on_heard
        self.heard: queue.Queue[Heard] = queue.Queue()
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the listening thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start listening on a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError("a Listener starts once; make a new one to listen again")
        self._thread = threading.Thread(target=self._listen, name="voice-listener", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the audio to end by itself (a WAV file); True when the thread has ended."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self.running

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop listening and wait up to `timeout` seconds for the thread to end; True when it has.
        An utterance still in progress is dropped (a WAV read to its end is settled instead)."""
        self._stopping.set()
        self.source.close()  # wakes a source waiting for audio
        if self._thread is None:
            return True
        if self._thread is threading.current_thread():
            return True  # on_heard called stop(): the thread ends as soon as the callback returns
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _listen(self) -> None:
        chunks = iter(self.source)
        try:
            for chunk in chunks:
                if self._stopping.is_set():
                    break
                self._deliver(self.transcriber.feed(chunk))
                if self._stopping.is_set():
                    break
            else:
                if not self._stopping.is_set():
                    self._deliver(self.transcriber.finish())
        except Exception as exc:  # kept for the caller: a thread has no one else to tell
            self.error = exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator's cleanup (a WAV's converted copy) runs now, not at collection
            self.source.close()

    def _deliver(self, heard: list[Heard]) -> None:
        for item in heard:
            self.heard.put(item)
            if self.on_heard is not None:
                self.on_heard(item)
