"""The API is served by the page's own server (ahead of the page's routes, behind the same
Host/Origin guard), and asks for its token there too."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import launch_studio

pytestmark = pytest.mark.e2e
TOKEN = "cs-page-server-token"


def status_of(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_page_server_serves_the_api_with_its_token(tmp_path: Path) -> None:
    import openai

    home = tmp_path / "home"
    home.mkdir()
    with launch_studio(home, extra_env={"CHAIN_STUDIO_API_TOKEN": TOKEN}) as studio:
        client = openai.OpenAI(base_url=f"{studio.url}v1", api_key=TOKEN, max_retries=0)
        assert "chain-studio-demo.gguf" in [m.id for m in client.models.list()]
        reply = client.chat.completions.create(model="chain-studio-demo.gguf", temperature=0,
                                               messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hello from the demo model."
        assert status_of(f"{studio.url}v1/models", {}) == 401
        assert status_of(f"{studio.url}api/models", {"Authorization": "Bearer wrong"}) == 401
        # The guard is in front of the API as of the page: a rebinding Host is refused.
        assert status_of(f"{studio.url}v1/models", {"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}) == 403
        assert status_of(studio.url, {}) == 200  # the page is still the page
