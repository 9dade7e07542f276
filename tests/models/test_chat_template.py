"""Chat templates render in Jinja's sandbox; models without one get a plain transcript."""

import pytest

from app.core.backend import ChatMessage
from app.core.errors import GenerationError
from app.core.prompt_format import raw_completion
from app.models.chat_template import render_chat

MESSAGES = (ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"))
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_real_template_renders_with_the_generation_prompt() -> None:
    rendered = render_chat(MESSAGES, CHATML, bos_token="<s>", eos_token="</s>")
    assert rendered.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert rendered.add_bos


def test_template_that_writes_bos_gets_no_second_one() -> None:
    rendered = render_chat(MESSAGES, "{{ bos_token }}{{ messages[-1]['content'] }}", "<s>", "</s>")
    assert rendered.text == "<s>Hi" and not rendered.add_bos


def test_template_reaching_for_python_internals_is_refused() -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(GenerationError, match="chat template could not be applied"):
        render_chat(MESSAGES, evil, "<s>", "</s>")


def test_template_raise_exception_becomes_a_message() -> None:
    with pytest.raises(GenerationError, match="roles must alternate"):
        render_chat(MESSAGES, "{{ raise_exception('roles must alternate') }}", "<s>", "</s>")


def test_models_without_template_get_raw_completion_not_a_made_up_transcript() -> None:
    with pytest.raises(GenerationError, match="no chat template of its own"):
        render_chat(MESSAGES, None, "<s>", "</s>")
    assert raw_completion(MESSAGES) == "Be brief.\n\nHi"
