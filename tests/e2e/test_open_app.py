"""./open_app.sh on this machine: the studio comes up on 127.0.0.1 with the demo model selected,
and pressing Enter gives the demo model's answer in a real browser."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStudio


def listening_addresses(port: int) -> set[str]:
    """Local addresses of listening TCP sockets on `port`, from the kernel's own table."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.add(address if width == 32 else ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.e2e
def test_open_app_serves_locally_with_the_demo_model(studio: RunningStudio, browser: object, artifacts_dir: Path) -> None:
    if sys.platform.startswith("linux"):
        assert listening_addresses(studio.port) == {"127.0.0.1"}  # even with GRADIO_SERVER_NAME=0.0.0.0
    with urllib.request.urlopen(studio.url + "config", timeout=10) as response:
        ids = {c.get("props", {}).get("elem_id") for c in json.load(response)["components"]}
    assert {"system-prompt", "previous-response", "user-prompt", "models"} <= ids
    for switched_off in ("monitoring", "gradio_api/mcp/sse"):
        try:
            with urllib.request.urlopen(studio.url + switched_off, timeout=10) as response:
                assert response.status != 200, switched_off
        except urllib.error.HTTPError as refused:
            assert refused.code in (401, 403, 404), switched_off

    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(studio.url)
        assert page.locator("#models textarea").input_value() == "chain-studio-demo.gguf"  # selected
        prompt = page.locator("#user-prompt textarea")
        prompt.fill("Hello there")
        prompt.press("Enter")
        transcript = page.locator("#transcript")
        transcript.get_by_text("Hello from the demo model.").wait_for(timeout=120_000)
        assert "generated tokens" in transcript.inner_text()
        page.screenshot(path=str(artifacts_dir / "answer.png"), full_page=True)

        # Shift+Enter adds a line and starts nothing.
        prompt.fill("first line")
        prompt.press("Shift+Enter")
        prompt.type("second line")
        assert prompt.input_value() == "first line\nsecond line"
        page.wait_for_timeout(1000)
        assert transcript.inner_text().count("Hello from the demo model.") == 1
    finally:
        page.close()
