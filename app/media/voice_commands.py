"""The spoken command grammar (English and Portuguese, as in the original Samantha tool).

Pure: text in, a command out; no audio. Vosk hears lowercase words without punctuation, but typed or
other recognisers' text works too: case, accents and punctuation are ignored when matching.

    "samantha tell me a joke"   -> prompt "tell me a joke" (the wake word anywhere in the speech)
    "ok" / "samantha send"      -> send      (start the chain)
    "tell me a joke ok"         -> prompt "tell me a joke", then send (one utterance, as the original)
    "stop" / "pare"             -> stop
    "read again" / "repita"     -> read_again (read the last answer aloud again)
    "close" / "fechar"          -> close     (stop listening)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from app.core.errors import VoiceError

DEFAULT_WAKE_WORD = "samantha"

ACTIONS = ("prompt", "send", "stop", "read_again", "close")

# Each phrase is matched as whole words, after normalising (see _normalise).
PHRASES: dict[str, tuple[str, ...]] = {
    "send": ("ok", "okay", "send", "enviar", "envie", "envia"),
    "stop": ("stop", "pare", "parar"),
    "read_again": ("read again", "read it again", "leia novamente", "leia de novo", "ler de novo", "repita"),
    "close": ("close", "fechar", "feche", "encerrar"),
}

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters and digits; "what's" is one word


@dataclass(frozen=True)
class VoiceCommand:
    """What a person said to the studio.

    action: "prompt" (put `text` into the user prompt), "send" (start the chain), "stop",
            "read_again" (read the last answer aloud) or "close" (stop listening).
    text:   for "prompt", the words after the wake word as they were heard; empty otherwise.
    """

    action: str
    text: str = ""


def parse_command(heard: str, wake_word: str = DEFAULT_WAKE_WORD) -> VoiceCommand | None:
    """The command in one utterance, or None when it holds none.

    A command phrase counts when it is the whole utterance ("stop") or all that follows the wake
    word ("samantha stop"). Otherwise the wake word anywhere starts a prompt made of the
    words after it ("so samantha tell me a joke" -> prompt "tell me a joke"); the wake word alone,
    or speech without it, is None. The wake word may be several words."""
    wake = [_normalise(word) for word in _WORD.findall(wake_word)]
    if not wake:
        raise VoiceError(f"the wake word {wake_word!r} has no letters: choose a word such as {DEFAULT_WAKE_WORD!r}")
    spans = [(match.start(), _normalise(match.group())) for match in _WORD.finditer(heard)]
    words = [word for _start, word in spans]
    if not words:
        return None
    action = _phrase_action(words)
    if action:
        return VoiceCommand(action)
    at = _find(words, wake)
    if at is None:
        return None
    rest = at + len(wake)
    if rest == len(words):
        return None
    # Recognisers often keep a word or two heard before the wake word: "so samantha stop" is a stop.
    action = _phrase_action(words[rest:])
    if action:
        return VoiceCommand(action)
    return VoiceCommand("prompt", heard[spans[rest][0]:].strip())


def parse_commands(heard: str, wake_word: str = DEFAULT_WAKE_WORD) -> list[VoiceCommand]:
    """Every command in one utterance, in order. As in the original, an utterance that ends with a
    send word after other words ("tell me a joke ok", "samantha tell me a joke ok") is a prompt and
    its sending at once; otherwise it is `parse_command`'s one command (or none)."""
    spans = [(match.start(), match.end(), _normalise(match.group())) for match in _WORD.finditer(heard)]
    if len(spans) >= 2 and spans[-1][2] in PHRASES["send"]:
        before = heard[: spans[-1][0]].rstrip(" ,.;:!?")
        command = parse_command(before, wake_word)
        if command is None or command.action != "prompt":
            # no wake word needed: "ok" at the end submits what was said before it
            words = [word for _s, _e, word in spans[:-1]]
            wake = [_normalise(word) for word in _WORD.findall(wake_word)]
            text = before.strip() if _find(words, wake) is None else ""
            command = VoiceCommand("prompt", text) if text else command
        if command is not None and command.action == "prompt":
            return [command, VoiceCommand("send")]
    command = parse_command(heard, wake_word)
    return [command] if command is not None else []


def _phrase_action(words: list[str]) -> str | None:
    """The action whose phrase is exactly `words`, if any."""
    spoken = " ".join(words)
    for action, phrases in PHRASES.items():
        if spoken in phrases:
            return action
    return None


def _find(words: list[str], wanted: list[str]) -> int | None:
    """Where `wanted` first occurs in `words` as consecutive words."""
    for start in range(len(words) - len(wanted) + 1):
        if words[start:start + len(wanted)] == wanted:
            return start
    return None


def _normalise(word: str) -> str:
    """A word for matching: lowercase, without accents or apostrophes ("Pâre" -> "pare")."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch != "'")
