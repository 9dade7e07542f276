"""Issue #13, point 10, as a person sees it: a huge n_ctx is refused at once with the figures and
the n_ctx that would fit (no minute of "Loading…" while memory fills up), and a load that goes
ahead shows its progress in the status line."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app.models.benchmark_model import write_benchmark_model
from app.models.gguf_file import inspect_gguf
from app.models.gguf_writer import LlamaShape
from app.models.memory import available_memory, estimate_memory
from tests.e2e.conftest import wait_status

pytestmark = pytest.mark.e2e
# Random weights, deep and narrow: a 30 MB file whose KV cache is 64 MB per 1,000 tokens.
DEEP = LlamaShape(n_vocab=512, n_embd=256, n_layer=64, n_head=8, n_head_kv=8, n_ff=256, n_ctx_train=8192)
VIEWPORT = {"width": 1280, "height": 720}


@pytest.fixture(scope="module")
def deep_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_benchmark_model(tmp_path_factory.mktemp("models") / "deep-context.gguf", DEEP)


def set_n_ctx(page, value: str) -> None:
    """Settings > Model loading > n_ctx (the accordion is closed at first)."""
    page.get_by_role("tab", name="Settings").click()
    field = page.get_by_label("n_ctx", exact=True)
    if not field.is_visible():
        page.get_by_role("button", name="Model loading").click()
    field.fill(value)
    field.press("Tab")  # the number is sent when the field loses focus


def test_a_huge_n_ctx_is_refused_at_once_with_what_would_fit(page, deep_model: Path, artifacts_dir: Path) -> None:
    free = available_memory()
    if free is None or estimate_memory(inspect_gguf(deep_model), 1_000_000).total <= free:
        pytest.skip("this machine has the memory for it")
    page.set_viewport_size(VIEWPORT)
    page.locator("#models textarea").fill(str(deep_model))
    prompt = page.locator("#user-prompt textarea")
    prompt.fill("hi")

    # Ten million is beyond the setting's bound (1,048,576): the field refuses it, nothing runs.
    set_n_ctx(page, "10000000")
    prompt.press("Enter")
    page.get_by_text(re.compile(r"greater than maximum value 1048576")).first.wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "n-ctx-10000000.png"))
    assert page.locator("#transcript blockquote").count() == 0

    # One million passes the bound; the model's estimate at it is far beyond the memory here.
    set_n_ctx(page, "1000000")
    started = time.monotonic()
    prompt.press("Enter")
    failure = page.locator("#transcript blockquote").filter(has_text="deep-context.gguf")
    failure.wait_for(timeout=60_000)
    took = time.monotonic() - started
    text = failure.inner_text()
    assert re.search(r"deep-context\.gguf at n_ctx 1,000,000 needs about 76\.40 GB of memory \(weights 0\.03 GB, "
                     r"KV cache 61\.04 GB, compute 15\.26 GB\), but only \d+\.\d\d GB is available", text), text
    assert re.search(r"; n_ctx [\d,]+ or less would fit: lower n_ctx \(Settings > Model loading", text), text
    assert took < 15, f"the refusal came {took:.1f} s after Enter"
    wait_status(page, "Run ended: every answer failed.")
    assert page.locator("#load-progress").count() == 0  # nothing was loaded
    page.screenshot(path=str(artifacts_dir / "refused.png"))


def test_a_load_shows_its_progress_in_the_status(page, deep_model: Path, artifacts_dir: Path) -> None:
    page.set_viewport_size(VIEWPORT)
    # Every status with a load progress bar is recorded: the load takes a second or two.
    page.evaluate("""() => {
        window.loadStatuses = [];
        const status = document.querySelector('#status');
        new MutationObserver(() => {
            const bar = status.querySelector('#load-progress');
            if (bar) window.loadStatuses.push([status.innerText.trim(), Number(bar.getAttribute('value'))]);
        }).observe(status, {subtree: true, childList: true, characterData: true, attributes: true});
    }""")
    page.locator("#models textarea").fill(str(deep_model))
    set_n_ctx(page, "32768")  # 2 GB of KV cache to write
    prompt = page.locator("#user-prompt textarea")
    prompt.fill("{max_tokens=2} hi")  # random weights never stop by themselves
    prompt.press("Enter")
    page.wait_for_function("() => window.loadStatuses.length > 0", timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "loading.png"))
    wait_status(page, "Run finished.", timeout=240_000)  # a hang guard: a busy machine loads slowly
    seen = page.evaluate("() => window.loadStatuses")
    for text, value in seen:
        assert re.fullmatch(r"Loading deep-context\.gguf… \d{1,3}%", text), text
        assert 0 <= value <= 1
    values = [value for _, value in seen]
    # Rising (the page may skip updates on a busy machine: the backend's own test checks every step).
    assert values and values == sorted(values), values
    page.screenshot(path=str(artifacts_dir / "loaded.png"))
