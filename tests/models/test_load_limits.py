"""Loading is bounded and stoppable; chat templates from files cannot hang or flood the worker.
(The worker's own guards, Ctrl-C and the studio's death, are in test_worker.py.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from app.core.backend import GenerationRequest, GenerationResult
from app.core.errors import GenerationError, ModelLoadError
from app.models.demo_model import CHAT_TEMPLATE, SCRIPT_HELLO, write_demo_model
from app.models.local_backend import LocalBackend

LAST = "{{ messages[-1]['content'] }}"


def _load_within(backend: LocalBackend, model: Path, seconds: float = 120) -> None:
    """Load in a thread so that a load that hangs fails the test instead of hanging it."""
    errors: list[BaseException] = []

    def load() -> None:
        try:
            backend.load(model)
        except BaseException as exc:  # reported below
            errors.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(seconds)
    if loader.is_alive():
        backend.stop_all()
        pytest.fail(f"loading {model.name} did not finish within {seconds} s")
    if errors:
        raise errors[0]


def _answer(backend: LocalBackend, prompt: str = "hi") -> str:
    events = list(backend.generate(GenerationRequest.chat(prompt)))
    assert isinstance(events[-1], GenerationResult)
    return events[-1].text


@pytest.mark.parametrize(("template", "message"), [
    ("{% set a = 3 ** 1000000000 %}" + LAST, "larger than 4096 bits"),
    ("{% set a = 'x' * 2000000000 %}" + LAST, "beyond the size limit"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}" + LAST,
     "took longer than 5 s"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}" + LAST,
     "more memory than the model worker may use"),
])
def test_hostile_templates_load_at_once_and_fail_with_a_message(
        tmp_path: Path, demo_model: Path, template: str, message: str) -> None:
    hostile = write_demo_model(tmp_path / "hostile.gguf", chat_template=template)
    backend = LocalBackend(log_dir=tmp_path)
    try:
        _load_within(backend, hostile)  # llama-cpp-python no longer compiles (and folds) the template
        with pytest.raises(GenerationError, match=message):
            _answer(backend)
        backend.load(demo_model)  # the studio goes on with the next model
        assert _answer(backend) == SCRIPT_HELLO
    finally:
        backend.close()


def test_a_load_that_takes_too_long_is_ended(tmp_path: Path, demo_model: Path) -> None:
    backend = LocalBackend(log_dir=tmp_path, load_timeout=0.01)  # shorter than starting Python
    try:
        with pytest.raises(ModelLoadError, match="took longer than 0.01 s"):
            backend.load(demo_model)
        assert backend.loaded is None and not backend.loading
    finally:
        backend.close()
    patient = LocalBackend(log_dir=tmp_path)
    try:
        patient.load(demo_model)
        assert _answer(patient) == SCRIPT_HELLO
    finally:
        patient.close()


@pytest.mark.parametrize("how", ["stop_all", "unload"])
def test_stop_all_and_unload_end_a_load_that_hangs(tmp_path: Path, demo_model: Path, how: str) -> None:
    backend = LocalBackend(log_dir=tmp_path)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            backend.load(demo_model)
        except BaseException as exc:
            errors.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        deadline = time.monotonic() + 60
        while backend._loading is None and time.monotonic() < deadline:
            time.sleep(0.005)
        worker = backend._loading
        assert worker is not None
        os.kill(worker.process.pid, signal.SIGSTOP)  # a load stuck inside llama.cpp
        started = time.monotonic()
        getattr(backend, how)()
        loader.join(30)
        assert not loader.is_alive()
        assert time.monotonic() - started < 10
        assert len(errors) == 1 and isinstance(errors[0], ModelLoadError)
        assert "was stopped" in str(errors[0])
        backend.load(demo_model)
        assert _answer(backend) == SCRIPT_HELLO
    finally:
        backend.close()


def test_stop_all_in_a_run_ends_its_hung_load_and_the_run(tmp_path: Path, demo_model: Path) -> None:
    from app.core.chain import ChainSpec
    from app.core.events import Failure, RunFinished
    from app.core.runner import ChainRunner
    from app.store.journal import Journal

    backend = LocalBackend(log_dir=tmp_path)
    journal = Journal(tmp_path / "journal.sqlite3")
    runner = ChainRunner(backend, journal)
    events: list = []
    running = threading.Thread(target=lambda: events.extend(runner.run(ChainSpec(models=(str(demo_model),),
                                                                                  prompts="hi"))), daemon=True)
    running.start()
    try:
        deadline = time.monotonic() + 60
        while backend._loading is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert backend._loading is not None
        os.kill(backend._loading.process.pid, signal.SIGSTOP)  # the load hangs
        runner.control.stop_all()  # what the page's Stop all does
        running.join(30)
        assert not running.is_alive()
        failures = [e for e in events if isinstance(e, Failure)]
        assert len(failures) == 1 and "was stopped" in failures[0].message
        assert isinstance(events[-1], RunFinished) and events[-1].reason == "stopped"
        assert journal.runs()[0].end_reason == "stopped"
    finally:
        backend.close()
        journal.close()


def test_the_demo_template_still_renders(tmp_path: Path) -> None:
    from app.core.backend import ChatMessage
    from app.models.chat_template import render_chat

    assert render_chat([ChatMessage("user", "hi")], CHAT_TEMPLATE, "<s>", "</s>").text == "hi"
