"""Voice sub-commands of `python -m app`: `say` (text to a spoken WAV) and `voices`.

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
