"""The spoken command grammar, in English and Portuguese."""

from __future__ import annotations

import pytest

from app.core.errors import VoiceError
from app.media.voice_commands import ACTIONS, PHRASES, VoiceCommand, parse_command, parse_commands


@pytest.mark.parametrize(
    ("heard", "action"),
    [
        ("ok", "send"), ("okay", "send"), ("send", "send"),
        ("stop", "stop"),
        ("read again", "read_again"), ("read it again", "read_again"),
        ("close", "close"),
    ],
)
def test_english_commands_alone_and_after_the_wake_word(heard: str, action: str) -> None:
    assert parse_command(heard) == VoiceCommand(action)
    assert parse_command(f"samantha {heard}") == VoiceCommand(action)


@pytest.mark.parametrize(
    ("heard", "action"),
    [
        ("ok", "send"), ("enviar", "send"), ("envie", "send"), ("envia", "send"),
        ("pare", "stop"), ("parar", "stop"),
        ("leia novamente", "read_again"), ("leia de novo", "read_again"), ("ler de novo", "read_again"),
        ("repita", "read_again"),
        ("fechar", "close"), ("feche", "close"), ("encerrar", "close"),
    ],
)
def test_portuguese_commands_alone_and_after_the_wake_word(heard: str, action: str) -> None:
    assert parse_command(heard) == VoiceCommand(action)
    assert parse_command(f"samantha {heard}") == VoiceCommand(action)


def test_every_phrase_maps_to_a_known_action() -> None:
    assert set(PHRASES) | {"prompt"} == set(ACTIONS)


def test_the_wake_word_starts_a_prompt() -> None:
    assert parse_command("samantha tell me a joke") == VoiceCommand("prompt", "tell me a joke")
    assert parse_command("samantha me conte uma piada") == VoiceCommand("prompt", "me conte uma piada")


def test_the_wake_word_inside_longer_speech() -> None:
    assert parse_command("so samantha tell me a joke") == VoiceCommand("prompt", "tell me a joke")
    assert parse_command("então samantha qual é a capital da frança") == VoiceCommand(
        "prompt", "qual é a capital da frança"
    )
    # The first wake word counts; a later one is part of the prompt.
    assert parse_command("hey samantha say samantha twice") == VoiceCommand("prompt", "say samantha twice")
    # Words heard before the wake word do not hide a command.
    assert parse_command("um samantha stop") == VoiceCommand("stop")
    assert parse_command("bom samantha pare") == VoiceCommand("stop")


def test_a_command_word_inside_a_prompt_is_part_of_the_prompt() -> None:
    assert parse_command("samantha stop the music and read again") == VoiceCommand(
        "prompt", "stop the music and read again"
    )
    assert parse_command("samantha ok tell me more") == VoiceCommand("prompt", "ok tell me more")


def test_nothing_to_do() -> None:
    assert parse_command("samantha") is None
    assert parse_command("well samantha") is None
    assert parse_command("tell me a joke") is None
    assert parse_command("please stop") is None
    assert parse_command("stop it") is None
    assert parse_command("read") is None
    assert parse_command("") is None
    assert parse_command("  ...  ") is None
    assert parse_command("samanthas are nice") is None  # whole words only


def test_case_accents_and_punctuation_are_tolerated() -> None:
    assert parse_command("OK.") == VoiceCommand("send")
    assert parse_command("Samantha, STOP!") == VoiceCommand("stop")
    assert parse_command("Páre") == VoiceCommand("stop")
    assert parse_command("Leia de novo, por favor") is None
    assert parse_command("Leia, de novo!") == VoiceCommand("read_again")
    assert parse_command("SÁMANTHA: fechar") == VoiceCommand("close")


def test_the_prompt_keeps_the_words_as_they_were_heard() -> None:
    heard = "Samantha, what's the capital of França?"
    assert parse_command(heard) == VoiceCommand("prompt", "what's the capital of França?")


def test_a_configured_wake_word_of_several_words() -> None:
    assert parse_command("hey computer open the pod bay doors", wake_word="Hey Computer") == VoiceCommand(
        "prompt", "open the pod bay doors"
    )
    assert parse_command("hey computer stop", wake_word="hey computer") == VoiceCommand("stop")
    assert parse_command("computer stop", wake_word="hey computer") is None
    assert parse_command("stop", wake_word="hey computer") == VoiceCommand("stop")
    # The default wake word is then just a word.
    assert parse_command("samantha tell me a joke", wake_word="hey computer") is None


def test_a_wake_word_with_accents_matches_without_them() -> None:
    assert parse_command("olá assistente conte uma história", wake_word="Olá Assistente") == VoiceCommand(
        "prompt", "conte uma história"
    )
    assert parse_command("ola assistente repita", wake_word="Olá Assistente") == VoiceCommand("read_again")


def test_an_empty_wake_word_is_refused() -> None:
    with pytest.raises(VoiceError, match="wake word"):
        parse_command("stop", wake_word=" !? ")


@pytest.mark.parametrize(("heard", "expected"), [
    ("tell me a joke ok", [VoiceCommand("prompt", "tell me a joke"), VoiceCommand("send")]),
    ("samantha tell me a joke ok", [VoiceCommand("prompt", "tell me a joke"), VoiceCommand("send")]),
    ("conte uma piada enviar", [VoiceCommand("prompt", "conte uma piada"), VoiceCommand("send")]),
    ("ok", [VoiceCommand("send")]),
    ("samantha stop", [VoiceCommand("stop")]),
    ("samantha tell me a joke", [VoiceCommand("prompt", "tell me a joke")]),
    ("just talking", []),
])
def test_a_command_then_ok_in_one_utterance(heard: str, expected: list[VoiceCommand]) -> None:
    assert parse_commands(heard) == expected
