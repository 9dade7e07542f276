"""Stopping a download (issue 12 item 7): Stop all, Stop/Next and Ctrl-C end it within a second,
the bytes received stay where the next request resumes from them, and the model lock is free.

The stand-in Hub serves the file at 100 KB/s, so a whole download would take about 26 s."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from app.core.chain import ChainSpec
from app.core.errors import DownloadStopped
from app.core.events import AnswerFinished, Failure, ModelDownloading, RunFinished
from app.core.hub_links import ModelLink
from app.models.demo_model import SCRIPT_HELLO
from app.models.hub import STAGING_DIR, HubDownloader, HubModelSource
from app.models.local_backend import LocalBackend
from app.models.model_folder import list_model_files
from app.services import Services
from app.settings import PROJECT_ROOT
from app.store.journal import Journal
from tests.hub_standin import StandInHub

REPO = "studio-tests/demo-GGUF"
RATE = 100_000  # bytes a second: the demo model's 2.6 MB take ~26 s
STOP_BOUND = 3.0  # seconds from a stop to the end of the run (generous: the machine may be busy)


def wait_until(condition: Callable[[], bool], seconds: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def partials(models: Path, name: str) -> list[Path]:
    """The partial files of `name` in the staging folder (where a resumed download starts)."""
    return sorted((models / STAGING_DIR).rglob(f"{name}.*.incomplete"))


def kept_bytes(models: Path, name: str) -> int:
    found = partials(models, name)
    assert len(found) == 1, found
    return found[0].stat().st_size


def test_stop_all_ends_a_download_keeps_the_partial_and_frees_the_model_lock(
        hub: StandInHub, models: Path, demo_model: Path, backend: LocalBackend, studio_home: Path) -> None:
    content = demo_model.read_bytes()
    hosted = hub.add(REPO, "slow.gguf", content, rate=RATE)
    journal = Journal()
    services = Services(models_dir=models, backend=backend, journal=journal)
    runner = services.runner_for("tab-1")
    source = HubModelSource(services.downloader())
    events: list = []

    def tab() -> None:  # as the page's run handler: the model lock is held for the whole run
        with services.run_lock:
            for event in runner.run(ChainSpec(models=(f"{REPO}:slow.gguf",), prompts="hello"), source):
                events.append(event)

    try:
        running = threading.Thread(target=tab)
        running.start()
        wait_until(lambda: any(isinstance(e, ModelDownloading) and (e.fraction or 0) > 0.02 for e in list(events)),
                   what="the download to be under way")
        stopped_at = time.monotonic()
        runner.control.stop_all()  # what "Stop all & reset" calls
        running.join(timeout=60)
        took = time.monotonic() - stopped_at
        assert not running.is_alive()
        assert took < STOP_BOUND, f"the run ended {took:.1f} s after Stop all"

        # The lock is free: another tab's run starts at once and the demo model answers.
        assert services.run_lock.acquire(timeout=0.5)
        services.run_lock.release()
        other = list(services.runner_for("tab-2").run(ChainSpec(models=(str(demo_model),), prompts="hello")))
        assert [e.answer.text for e in other if isinstance(e, AnswerFinished)] == [SCRIPT_HELLO]

        # A clear message, the run recorded as stopped, and the partial kept but never listed.
        failures = [e for e in events if isinstance(e, Failure)]
        assert len(failures) == 1
        assert re.fullmatch(r"download of slow\.gguf stopped; \d+\.\d MB kept, it resumes next time",
                            failures[0].message), failures[0].message
        assert isinstance(events[-1], RunFinished) and events[-1].reason == "stopped"
        summary, _spec, _answers, recorded = journal.run(events[-1].run_id)
        assert summary.end_reason == "stopped" and recorded[0]["message"] == failures[0].message
        kept = kept_bytes(models, "slow.gguf")
        assert 0 < kept < len(content)
        assert list_model_files(models) == []

        # The next request resumes: it asks for the rest only, and the whole file verifies.
        hosted.rate = None
        sent_before = hosted.sent
        path = services.downloader().fetch(ModelLink(REPO, "slow.gguf"))
        assert path.read_bytes() == content
        assert hosted.starts[-1] == kept and hosted.sent - sent_before == len(content) - kept
        assert partials(models, "slow.gguf") == [] and list_model_files(models) == [path]
    finally:
        journal.close()


def test_stop_next_skips_a_downloading_model_and_the_chain_goes_on(
        hub: StandInHub, models: Path, demo_model: Path, backend: LocalBackend, studio_home: Path) -> None:
    hub.add(REPO, "skipped.gguf", demo_model.read_bytes(), rate=RATE)
    services = Services(models_dir=models, backend=backend, journal=Journal())
    runner = services.runner_for("tab")
    spec = ChainSpec(models=(f"{REPO}:skipped.gguf", str(demo_model)), prompts="hello")
    events: list = []
    try:
        for event in runner.run(spec, HubModelSource(services.downloader())):
            events.append(event)
            if isinstance(event, ModelDownloading) and (event.fraction or 0) > 0.02:
                runner.control.stop_current()  # what "Stop / Next" calls
        failures = [e for e in events if isinstance(e, Failure)]
        assert [f.model for f in failures] == ["skipped.gguf"] and "stopped;" in failures[0].message
        assert [e.answer.text for e in events if isinstance(e, AnswerFinished)] == [SCRIPT_HELLO]
        assert events[-1].reason == "completed"
        assert kept_bytes(models, "skipped.gguf") > 0
    finally:
        services.journal.close()


def _fetch_in_thread(downloader: HubDownloader, name: str, stop: threading.Event) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["path"] = downloader.fetch(ModelLink(REPO, name), should_stop=stop.is_set)
        except DownloadStopped as exc:
            outcome["stopped"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, outcome


def test_a_download_two_runs_share_goes_on_until_neither_wants_it(hub: StandInHub, models: Path,
                                                                   demo_model: Path) -> None:
    content = demo_model.read_bytes()
    shared = hub.add(REPO, "shared.gguf", content, rate=RATE)
    downloader = HubDownloader(models)  # one per models folder, shared by every tab
    first_stop, second_stop = threading.Event(), threading.Event()
    first, first_outcome = _fetch_in_thread(downloader, "shared.gguf", first_stop)
    wait_until(lambda: shared.sent > 50_000, what="the download to be under way")
    second, second_outcome = _fetch_in_thread(downloader, "shared.gguf", second_stop)
    time.sleep(0.3)  # the second request is waiting for the same download
    stopped_at = time.monotonic()
    first_stop.set()
    first.join(timeout=30)
    assert first_outcome["at"] - stopped_at < STOP_BOUND
    assert "another run still wants it, so it goes on" in str(first_outcome["stopped"])
    shared.rate = None  # the download goes on for the second request, to the end
    second.join(timeout=60)
    assert second_outcome["path"].read_bytes() == content
    assert shared.gets == 1 and shared.starts == [0]

    # Stopped by both: the download itself stops, keeps its bytes, and the next request resumes.
    both = hub.add(REPO, "both.gguf", content, rate=RATE)
    stops = [threading.Event(), threading.Event()]
    started = [_fetch_in_thread(downloader, "both.gguf", stop) for stop in stops]
    wait_until(lambda: both.sent > 50_000, what="the download to be under way")
    for stop in stops:
        stop.set()
    for thread, _outcome in started:
        thread.join(timeout=30)
    messages = sorted(str(outcome["stopped"]) for _thread, outcome in started)
    assert "another run still wants it" in messages[0] and "kept, it resumes next time" in messages[1]
    kept = kept_bytes(models, "both.gguf")
    both.rate = None
    assert downloader.fetch(ModelLink(REPO, "both.gguf")).read_bytes() == content
    assert both.starts == [0, kept]


def test_a_stalled_connection_is_shut_when_the_download_stops(hub: StandInHub, models: Path,
                                                              demo_model: Path) -> None:
    content = demo_model.read_bytes()
    stalled = hub.add(REPO, "stalled.gguf", content, behaviour="stall")  # silent after 25%
    stop = threading.Event()
    thread, outcome = _fetch_in_thread(HubDownloader(models), "stalled.gguf", stop)
    wait_until(lambda: stalled.sent == len(content) // 4, what="the server to go silent")
    time.sleep(0.5)  # the client has read what was sent and waits for more
    stopped_at = time.monotonic()
    stop.set()
    thread.join(timeout=30)
    assert outcome["at"] - stopped_at < STOP_BOUND
    # The download's own thread has ended too (it did not wait for the read timeout): its partial
    # file is closed, with everything the server sent.
    assert not [t for t in threading.enumerate() if t.name == "hub download stalled.gguf"]
    assert outcome["stopped"].kept == kept_bytes(models, "stalled.gguf") == len(content) // 4


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_ctrl_c_stops_a_cli_download_and_the_next_command_resumes(hub: StandInHub, models: Path,
                                                                 demo_model: Path, tmp_path: Path) -> None:
    content = demo_model.read_bytes()
    hosted = hub.add(REPO, "cli.gguf", content, rate=RATE)
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint}
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n", encoding="utf-8")

    def interrupted(*command: str) -> subprocess.CompletedProcess:
        process = subprocess.Popen([sys.executable, "-m", "app", *command, "--models-dir", str(models)],
                                   cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            before = hosted.sent
            wait_until(lambda: hosted.sent > before + 50_000, what="the download to be under way")
            process.send_signal(signal.SIGINT)
            stopped_at = time.monotonic()
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert time.monotonic() - stopped_at < STOP_BOUND + 2, "the command took long to end after Ctrl-C"
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    chained = interrupted("chain", "--model", f"{REPO}:cli.gguf", "--prompts", str(prompts), "--jsonl")
    assert chained.returncode == 130, chained.stderr
    records = [json.loads(line) for line in chained.stdout.splitlines()]
    failure = next(r for r in records if r["type"] == "failure")
    assert re.fullmatch(r"download of cli\.gguf stopped; \d+\.\d MB kept, it resumes next time", failure["message"])
    assert records[-1]["type"] == "run_finished" and records[-1]["reason"] == "stopped"
    first_kept = kept_bytes(models, "cli.gguf")

    downloaded = interrupted("download", f"{REPO}:cli.gguf")
    assert downloaded.returncode == 130, downloaded.stderr
    assert "error: download of cli.gguf stopped;" in downloaded.stderr and "Traceback" not in downloaded.stderr
    assert hosted.starts[-1] == first_kept  # it resumed
    kept = kept_bytes(models, "cli.gguf")
    assert kept > first_kept

    hosted.rate = None
    done = subprocess.run([sys.executable, "-m", "app", "download", f"{REPO}:cli.gguf", "--models-dir", str(models)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (models / "cli.gguf").read_bytes() == content and hosted.starts[-1] == kept
