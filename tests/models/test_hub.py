"""Downloads against a loopback stand-in for the Hub (HF_ENDPOINT): verified, resumed, refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.core.errors import DownloadError
from app.core.hub_links import ModelLink, parse_model_link
from app.models.hub import DownloadProgress, HubDownloader
from app.models.model_folder import list_model_files
from tests.hub_standin import StandInHub

REPO = "studio-tests/demo-GGUF"


def test_download_verifies_and_reports_progress(hub: StandInHub, models: Path, demo_model: Path) -> None:
    hub.add(REPO, "demo.gguf", demo_model.read_bytes())
    seen: list[DownloadProgress] = []
    path = HubDownloader(models).fetch(ModelLink(REPO, "demo.gguf"), seen.append)
    assert path == models / "demo.gguf" and path.read_bytes() == demo_model.read_bytes()
    assert seen[-1].done == seen[-1].total == demo_model.stat().st_size
    assert "Downloading demo.gguf: 100%" in seen[-1].describe()
    assert list_model_files(models) == [path]
    # A second request reuses the verified copy: one HEAD, no new GET.
    before = len([r for r in hub.requests if r.startswith("GET")])
    assert HubDownloader(models).fetch(ModelLink(REPO, "demo.gguf")) == path
    assert len([r for r in hub.requests if r.startswith("GET")]) == before


def test_dropped_connection_resumes(hub: StandInHub, models: Path, demo_model: Path) -> None:
    hosted = hub.add(REPO, "flaky.gguf", demo_model.read_bytes(), behaviour="drop40")
    path = HubDownloader(models).fetch(ModelLink(REPO, "flaky.gguf"))
    assert path.read_bytes() == demo_model.read_bytes()
    assert hosted.gets == 2
    ranges = [r for r in hub.requests if r.startswith("GET")]
    assert len(ranges) == 2  # the second GET asked only for the rest (Range)


def test_wrong_bytes_are_refused_and_never_listed(hub: StandInHub, models: Path, demo_model: Path) -> None:
    hub.add(REPO, "corrupt.gguf", demo_model.read_bytes(), behaviour="wrong")
    with pytest.raises(DownloadError, match="download corrupt: corrupt.gguf was deleted because its sha256"):
        HubDownloader(models).fetch(ModelLink(REPO, "corrupt.gguf"))
    assert list_model_files(models) == []
    assert not list(models.rglob("corrupt.gguf"))


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        ("401", "needs authorisation (401)"),
        ("403-gated", "is gated: accept its terms"),
        ("throttle", "rate-limiting downloads (429)"),
    ],
)
def test_refusals_have_their_own_messages(hub: StandInHub, models: Path, behaviour: str, message: str) -> None:
    hub.add(REPO, "x.gguf", b"GGUF", behaviour=behaviour)
    with pytest.raises(DownloadError, match=re.escape(message)):
        HubDownloader(models).fetch(ModelLink(REPO, "x.gguf"))


def test_missing_repo_and_missing_file(hub: StandInHub, models: Path) -> None:
    hub.add(REPO, "present.gguf", b"GGUF")
    with pytest.raises(DownloadError, match="repository nobody/nothing not found"):
        HubDownloader(models).fetch(ModelLink("nobody/nothing", "a.gguf"))
    with pytest.raises(DownloadError, match=f"{REPO} has no file absent.gguf"):
        HubDownloader(models).fetch(ModelLink(REPO, "absent.gguf"))


def test_not_enough_disk_space_is_refused_before_downloading(hub: StandInHub, models: Path, demo_model: Path) -> None:
    hub.add(REPO, "big.gguf", demo_model.read_bytes())
    downloader = HubDownloader(models, free_space=lambda _path: 1_000_000)
    with pytest.raises(DownloadError, match=r"needs 2\.6 MB, you have 1\.0 MB free"):
        downloader.fetch(ModelLink(REPO, "big.gguf"))
    assert not [r for r in hub.requests if r.startswith("GET")]


def test_split_models_download_every_part(hub: StandInHub, models: Path) -> None:
    for n in (1, 2, 3):
        hub.add(REPO, f"big-0000{n}-of-00003.gguf", f"part {n}".encode())
    first = HubDownloader(models).fetch(parse_model_link(f"{REPO}:big-00001-of-00003.gguf"))
    assert first.name == "big-00001-of-00003.gguf"
    assert sorted(p.name for p in models.glob("big-*.gguf")) == [f"big-0000{n}-of-00003.gguf" for n in (1, 2, 3)]


def test_testing_mode_keeps_only_the_last_test_model(hub: StandInHub, models: Path) -> None:
    hub.add(REPO, "first.gguf", b"first")
    hub.add(REPO, "second.gguf", b"second")
    downloader = HubDownloader(models)
    downloader.fetch(ModelLink(REPO, "first.gguf"), testing=True)
    downloader.fetch(ModelLink(REPO, "second.gguf"), testing=True)
    assert sorted(p.name for p in models.glob("*.gguf")) == ["second.gguf"]


def test_offline_uses_verified_copies(hub: StandInHub, models: Path, demo_model: Path, monkeypatch) -> None:
    hub.add(REPO, "kept.gguf", demo_model.read_bytes())
    downloader = HubDownloader(models)
    path = downloader.fetch(ModelLink(REPO, "kept.gguf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: offline
    assert downloader.fetch(ModelLink(REPO, "kept.gguf")) == path
    with pytest.raises(DownloadError, match="cannot reach Hugging Face"):
        downloader.fetch(ModelLink(REPO, "never-downloaded.gguf"))


def test_the_token_is_never_shown(hub: StandInHub, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    hub.add(REPO, "private.gguf", b"GGUF", behaviour="401")
    with pytest.raises(DownloadError) as caught:
        HubDownloader(models).fetch(ModelLink(REPO, "private.gguf"))
    assert "hf_secret_value_123" not in str(caught.value)


def test_two_requests_for_one_file_cause_one_download(hub: StandInHub, models: Path, demo_model: Path) -> None:
    import threading

    hosted = hub.add(REPO, "shared.gguf", demo_model.read_bytes(), behaviour="slow")
    downloader = HubDownloader(models)  # the studio shares one per models folder between tabs
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(downloader.fetch(ModelLink(REPO, "shared.gguf"))))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [models / "shared.gguf"] * 2
    assert hosted.gets == 1
