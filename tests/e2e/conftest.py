"""Browser and server fixtures for end-to-end tests: Debian's chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from app.settings import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's services from a machine that is offline.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningStudio:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    home: Path | None = None


def wait_for_page(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the studio exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the studio did not answer at {url}:\n{log.read_text()[-3000:]}")


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def studio(tmp_path: Path, studio_home: Path) -> Iterator[RunningStudio]:
    """The studio started the way a person starts it: ./open_app.sh (which installs what is
    missing first). GRADIO_SERVER_NAME asks for all interfaces; the studio must ignore it."""
    port = free_port()
    log = tmp_path / "studio.log"
    env = dict(os.environ, CHAIN_STUDIO_HOME=str(studio_home), GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SHARE="True")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["./open_app.sh", "--port", str(port), "--no-browser"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_page(url, process, log)
        yield RunningStudio(url, port, process, log)
    finally:
        stop_process_group(process)


@contextlib.contextmanager
def launch_studio(home: Path, extra_env: dict[str, str] | None = None,
                  extra_args: tuple[str, ...] = ()) -> Iterator[RunningStudio]:
    """`python -m app ui` on a fresh data folder (prompts saved inside it), stopped afterwards."""
    import sys

    port = free_port()
    log = home / "studio.log"
    env = dict(os.environ, CHAIN_STUDIO_HOME=str(home), CHAIN_STUDIO_PROMPTS_DIR=str(home / "prompts"),
               **(extra_env or {}))
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "ui", "--port", str(port), "--no-browser", *extra_args],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_page(url, process, log)
        yield RunningStudio(url, port, process, log, home)
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStudio]:
    """One studio process for a module's browser tests (each test opens its own tab, i.e. its own
    session)."""
    with launch_studio(tmp_path_factory.mktemp("studio-home")) as studio:
        yield studio


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is not installed (./install.sh installs it when run as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def open_tab(browser: object, url: str, width: int = 1400, height: int = 1100) -> Iterator[object]:
    """A new tab (its own browser context, so its own session) on `url`, once the page is drawn."""
    context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    try:
        opened = context.new_page()
        opened.goto(url)
        opened.locator("#user-prompt textarea").wait_for()
        yield opened
    finally:
        context.close()


@pytest.fixture
def page(studio_server: RunningStudio, browser: object, artifacts_dir: Path) -> Iterator[object]:
    """A new tab (its own session) on the module's studio; a screenshot is kept at the end."""
    with open_tab(browser, studio_server.url) as opened:
        yield opened
        opened.screenshot(path=str(artifacts_dir / "page.png"), full_page=True)  # type: ignore[attr-defined]


def wait_status(page, text: str, timeout: float = 90_000) -> None:
    """Wait until the status line shows `text` (generous: the machine may be busy)."""
    page.locator("#status").get_by_text(text).wait_for(timeout=timeout)


def choose_option(page, elem_id: str, value: str, attempts: int = 3) -> None:
    """Pick `value` in the dropdown `#elem_id` by clicking its option (typing and Enter can pick
    before the list is filtered on a busy machine), and wait until the field shows it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    field = page.locator(f"#{elem_id} input")
    shows = f"() => document.querySelector('#{elem_id} input').value === {value!r}"
    for _ in range(attempts):
        field.click()
        field.fill(value)
        page.locator(f'#{elem_id} li[aria-label="{value}"]').click(timeout=10_000)
        try:
            page.wait_for_function(shows, timeout=10_000)
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError(f"the dropdown #{elem_id} never showed {value!r}")


def run_prompt(page, text: str) -> None:
    """Type `text` as the user prompt, press Enter and wait for the run to finish."""
    page.locator("#user-prompt textarea").fill(text)
    page.locator("#user-prompt textarea").press("Enter")
    wait_status(page, "Run finished.")


def refresh_until_finished(page, attempts: int = 30) -> None:
    """Press History's Refresh until the newest run shows "completed": the journal may record the
    run's end a moment after the page says it finished."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    finished = "() => (document.querySelector('#history-runs [data-testid=cell-0-2]') || {}).innerText === 'completed'"
    for _ in range(attempts):
        page.locator("#history-refresh").click()
        try:
            page.wait_for_function(finished, timeout=2_000)
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError("History never showed the run as completed")
