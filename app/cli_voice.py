"""Voice sub-commands of `python -m app`: `say` (text to a spoken WAV), `voices` and `vosk-model`.

Output follows app/cli.py: one JSON object per line on stdout, messages on stderr, exit code 1 with
an "error" line when something is refused. The speech engine runs in a child process, so what it
prints never reaches this stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.cli import emit, fail
from app.core.errors import ChainStudioError


def cmd_say(text: str, wav: str, voice: str | None = None, rate: int | None = None) -> int:
    """`say TEXT --wav PATH [--voice NAME] [--rate N]`: write the spoken text as a WAV file and print
    `{"type": "said", "wav", "seconds", "characters"}` ("-" as TEXT reads standard input)."""
    from app.media.speech_text import speakable_text
    from app.media.tts import synthesize, wav_seconds

    if text == "-":
        text = sys.stdin.read()
    try:
        written = synthesize(text, Path(wav), voice=voice, rate=rate)
        seconds = wav_seconds(written)
    except ChainStudioError as exc:
        return fail(str(exc), wav=wav)
    emit({"type": "said", "wav": str(written), "seconds": round(seconds, 3),
          "characters": len(speakable_text(text))})
    return 0


def cmd_voices() -> int:
    """`voices`: one `{"type": "voice", "id", "name", "languages"}` line per voice of the speech engine."""
    from app.media.tts import list_voices

    try:
        voices = list_voices()
    except ChainStudioError as exc:
        return fail(str(exc))
    for voice in voices:
        emit({"type": "voice", "id": voice.id, "name": voice.name, "languages": list(voice.languages)})
    return 0


def cmd_vosk_model(language: str) -> int:
    """`vosk-model LANGUAGE`: download, verify (pinned size and sha256) and unpack the small Vosk
    model for `en` or `pt` into the data folder's vosk-models/, with progress on stderr, and print
    `{"type": "vosk_model", "language", "name", "path"}`."""
    from app import settings
    from app.media.vosk_models import catalog_entry, download_model

    shown = {"percent": -1}

    def progress(received: int, total: int) -> None:
        percent = 100 * received // total
        if percent != shown["percent"]:
            shown["percent"] = percent
            print(f"\r{received / 1_048_576:.1f} of {total / 1_048_576:.1f} MiB ({percent}%)", end="",
                  file=sys.stderr, flush=True)

    try:
        entry = catalog_entry(language)
        folder = download_model(entry, settings.vosk_models_dir(), on_progress=progress)
    except ChainStudioError as exc:
        return fail(str(exc), language=language)
    except KeyboardInterrupt:
        return fail("the download was stopped; nothing was kept", language=language)
    finally:
        if shown["percent"] >= 0:
            print(file=sys.stderr)
    emit({"type": "vosk_model", "language": entry.language, "name": entry.name, "path": str(folder)})
    return 0
