"""What recognised speech does to the page (the part of the Voice tab that needs no microphone)."""

from __future__ import annotations

from app.media.stt import Heard
from app.ui.panels.voice_panel import apply_heard


def test_partial_results_only_update_the_live_text() -> None:
    update = apply_heard([Heard("samantha tell", False), Heard("samantha tell me", False)], "samantha")
    assert (update.live, update.prompt, update.commands) == ("samantha tell me", None, [])


def test_the_wake_word_fills_the_prompt_and_commands_follow_in_order() -> None:
    update = apply_heard([
        Heard("so samantha write a haiku about rain", True),
        Heard("send", True),
        Heard("stop", True),
    ], "samantha")
    assert update.prompt == "write a haiku about rain"
    assert [c.action for c in update.commands] == ["send", "stop"]
    assert update.live == "stop"


def test_portuguese_commands_and_a_custom_wake_word() -> None:
    update = apply_heard([Heard("computador escreva um poema", True), Heard("enviar", True),
                          Heard("leia novamente", True), Heard("fechar", True)], "computador")
    assert update.prompt == "escreva um poema"
    assert [c.action for c in update.commands] == ["send", "read_again", "close"]


def test_speech_without_the_wake_word_changes_nothing() -> None:
    update = apply_heard([Heard("tell me a joke", True)], "samantha")
    assert (update.prompt, update.commands, update.live) == (None, [], "tell me a joke")


def test_the_speech_folder_keeps_only_the_newest_wavs(tmp_path) -> None:
    import os

    from app.ui.panels.voice_panel import prune_speech

    for number in range(5):
        wav = tmp_path / f"speech-{number}.wav"
        wav.write_bytes(b"RIFF")
        os.utime(wav, (1000 + number, 1000 + number))
    (tmp_path / "other.wav").write_bytes(b"RIFF")
    assert prune_speech(tmp_path, keep=2) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.wav", "speech-3.wav", "speech-4.wav"]


def test_a_prompt_and_ok_in_one_utterance_fill_the_prompt_and_start() -> None:
    update = apply_heard([Heard("samantha write a haiku about rain ok", True)], "samantha")
    assert update.prompt == "write a haiku about rain"
    assert [c.action for c in update.commands] == ["send"]
