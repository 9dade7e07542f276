"""Pure pieces of the page: the transcript builder, the HTML view, vocabulary pages, libraries."""

from pathlib import Path

import pytest

from app.core.backend import ChatMessage
from app.core.errors import ChainStudioError
from app.core.events import Answer, AnswerFinished, AnswerStarted, AnswerToken, Failure, RunFinished, RunStarted
from app.core.sampling import SamplingParams
from app.store.library import entry_label, library_entries, save_prompt
from app.ui.panels.html_view import EMPTY, html_view
from app.ui.panels.model_panel import vocabulary_page
from app.ui.render import TranscriptBuilder, plain_transcript, render_transcript


def answer(index: int, text: str) -> Answer:
    return Answer(index, "m.gguf", "/m.gguf", 1, 1, 1, "p", (ChatMessage("user", "p"),), SamplingParams(),
                  text, 3, 4, 0.5, "eos", 1)


def test_builder_streams_then_settles_on_the_final_text() -> None:
    builder = TranscriptBuilder([])
    builder.apply(RunStarted(7, 2, 1, ("/m.gguf",)))
    builder.apply(AnswerStarted(1, "m.gguf", 1, 1, 1, "p", SamplingParams()))
    assert builder.apply(AnswerToken(1, "Hel")) is False
    builder.apply(AnswerToken(1, "lo"))
    assert builder.snapshot()[-1].text == "Hello"
    builder.apply(AnswerFinished(answer(1, "Hello!")))  # the final text is the recorded one
    builder.apply(Failure("bad.gguf", "no such file", 1))
    builder.apply(RunFinished(7, "completed", 1, 1))
    entries = builder.snapshot()
    assert [e.kind for e in entries] == ["run", "answer", "failure"]
    assert entries[1].text == "Hello!" and "4 generated tokens" in entries[1].footer
    assert builder.status == "Run finished." and builder.last_answer == "Hello!"
    markdown = render_transcript(entries)
    assert "##### Run 7 · 2 answers planned" in markdown and "⚠️ **bad.gguf:** no such file" in markdown
    assert "<div class=\"asked\">› p</div>" in markdown  # what was asked, above its answer
    assert "````text\nHello!\n````" in render_transcript(entries, raw=True)
    assert plain_transcript(entries) == "m.gguf · item 1 · response 1 · loop 1\nHello!"


def test_html_view_renders_html_blocks_in_a_sandbox() -> None:
    assert html_view("no html here") == EMPTY
    shown = html_view('Here:\n```html\n<h1 class="x">Hi & bye</h1>\n```\n')
    assert shown.startswith('<iframe sandbox="allow-scripts"')
    assert "allow-same-origin" not in shown
    assert 'srcdoc="&lt;h1 class=&quot;x&quot;&gt;Hi &amp; bye&lt;/h1&gt;"' in shown


def test_vocabulary_pages_and_search() -> None:
    vocab = [f"t{i}" for i in range(250)] + [" from", "\n"]
    rows, page, pages = vocabulary_page(vocab, "", 9)
    assert (page, pages) == (3, 3) and rows[-1] == [251, "↵"]
    rows, _, _ = vocabulary_page(vocab, "from", 1)
    assert rows == [[250, "␣from"]]


def test_saving_prompts_appends_entries(tmp_path: Path) -> None:
    first = save_prompt(tmp_path, "../../etc/my list", "one\ntwo")
    assert first == tmp_path / "etcmy list.txt"  # no way out of the prompts folder
    save_prompt(tmp_path, "etcmy list.txt", "three")
    entries = library_entries(first)
    assert [e.text for e in entries] == ["one\ntwo", "three"]
    assert entry_label(entries[0]) == "one"
    with pytest.raises(ChainStudioError, match="empty"):
        save_prompt(tmp_path, "x", "   ")
