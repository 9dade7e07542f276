"""The verified Vosk model download: pinned size and sha256, safe unpacking, progress, stopping, and
nothing left behind when anything is wrong. The Vosk project's server is a loopback stand-in."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from pathlib import Path

import pytest

from app.core.errors import VoiceError
from app.media.stt import check_model_folder
from app.media.vosk_models import CATALOG, VoskModelFile, catalog_entry, download_model
from app.ui.panels.vosk_download import download_steps
from tests.hub_standin import StandInHub

NAME = "vosk-model-small-xx-0.1"
REPO = "vosk/models"


def model_zip(name: str = NAME, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip laid out as the Vosk project's are: one top folder holding am/, conf/, graph/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/am/final.mdl", b"\x00" * 4096)
        archive.writestr(f"{name}/conf/model.conf", b"--sample-frequency=16000\n")
        archive.writestr(f"{name}/graph/words.txt", "olá 1\n".encode())
        for member, content in (extra or {}).items():
            archive.writestr(member, content)
    return buffer.getvalue()


def pinned(content: bytes, name: str = NAME) -> VoskModelFile:
    return VoskModelFile("xx", "Test language, small", name, len(content), hashlib.sha256(content).hexdigest())


@pytest.fixture
def mirror():
    hub = StandInHub().start()
    yield hub
    hub.stop()


def base(hub: StandInHub) -> str:
    return f"{hub.endpoint}/{REPO}/resolve/main"


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_pinned_models_are_the_small_english_and_portuguese_ones() -> None:
    assert {code: (e.name, e.size) for code, e in CATALOG.items()} == {
        "en": ("vosk-model-small-en-us-0.15", 41_205_931),
        "pt": ("vosk-model-small-pt-0.3", 32_453_112),
    }
    assert all(re.fullmatch(r"[0-9a-f]{64}", e.sha256) for e in CATALOG.values())
    assert CATALOG["pt"].url() == "https://alphacephei.com/vosk/models/vosk-model-small-pt-0.3.zip"
    with pytest.raises(VoiceError, match="choose one of en, pt"):
        catalog_entry("fr")


def test_a_verified_download_is_unpacked_into_its_own_folder_with_progress(mirror, tmp_path) -> None:
    content = model_zip()
    hosted = mirror.add(REPO, f"{NAME}.zip", content)
    seen: list[tuple[int, int]] = []
    folder = download_model(pinned(content), tmp_path, base_url=base(mirror), on_progress=lambda *p: seen.append(p))
    assert folder == tmp_path / NAME
    check_model_folder(folder)
    assert (folder / "graph" / "words.txt").read_text() == "olá 1\n"
    assert seen[-1] == (len(content), len(content)) and all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert leftovers(tmp_path) == [f"{NAME}/am/final.mdl", f"{NAME}/conf/model.conf", f"{NAME}/graph/words.txt"]
    # A second request finds it and asks the server for nothing.
    assert download_model(pinned(content), tmp_path, base_url=base(mirror)) == folder
    assert hosted.gets == 1


@pytest.mark.parametrize("behaviour, message", [
    ("wrong", "its sha256 is"),  # same length, other bytes
    ("drop40", "could not be downloaded|ended after"),  # the connection drops at 40%
    ("404", "answered 404"),
])
def test_a_download_that_is_not_the_pinned_file_is_deleted(mirror, tmp_path, behaviour, message) -> None:
    content = model_zip()
    if behaviour != "404":
        mirror.add(REPO, f"{NAME}.zip", content, behaviour=behaviour)
    else:
        mirror.add(REPO, "other.zip", b"x")
    with pytest.raises(VoiceError, match=message):
        download_model(pinned(content), tmp_path, base_url=base(mirror))
    assert leftovers(tmp_path) == []
    assert not (tmp_path / NAME).exists()


def test_a_file_longer_than_the_pin_is_refused_before_it_is_read(mirror, tmp_path) -> None:
    content = model_zip()
    mirror.add(REPO, f"{NAME}.zip", content + b"tail")
    with pytest.raises(VoiceError, match="announces"):
        download_model(pinned(content), tmp_path, base_url=base(mirror))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "elsewhere/am/final.mdl"])
def test_a_zip_member_outside_the_model_folder_unpacks_nothing(mirror, tmp_path, member) -> None:
    content = model_zip(extra={member: b"payload"})
    mirror.add(REPO, f"{NAME}.zip", content)
    root = tmp_path / "models"
    with pytest.raises(VoiceError, match="unsafe member"):
        download_model(pinned(content), root, base_url=base(mirror))
    assert leftovers(tmp_path) == []
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"payload"


def test_a_zip_that_is_not_a_model_is_refused(mirror, tmp_path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{NAME}/README", b"no model here")
    content = buffer.getvalue()
    mirror.add(REPO, f"{NAME}.zip", content)
    with pytest.raises(VoiceError, match="not a Vosk model"):
        download_model(pinned(content), tmp_path, base_url=base(mirror))
    assert leftovers(tmp_path) == []


def test_cancel_stops_the_download_and_keeps_nothing(mirror, tmp_path) -> None:
    content = model_zip(extra={f"{NAME}/graph/HCLG.fst": bytes(range(256)) * 4096})  # ~1 MB
    mirror.add(REPO, f"{NAME}.zip", content, rate=200_000)  # five seconds at this rate
    stop = threading.Event()
    steps = download_steps("xx", tmp_path, base_url=base(mirror), poll=0.05, stop=stop)
    entry = pinned(content)
    CATALOG["xx"] = entry
    try:
        first = next(steps)
        assert first[0].startswith("⬇️ Downloading") and first[1] is None
        stop.set()
        last = list(steps)[-1]
    finally:
        del CATALOG["xx"]
    assert last == (f"⚠️ the download of {NAME} was stopped; nothing was kept", None)
    assert leftovers(tmp_path) == []


def test_the_page_steps_end_with_the_folder(mirror, tmp_path) -> None:
    content = model_zip()
    mirror.add(REPO, f"{NAME}.zip", content)
    CATALOG["xx"] = pinned(content)
    try:
        steps = list(download_steps("xx", tmp_path, base_url=base(mirror), poll=0.05))
        again = list(download_steps("xx", tmp_path, base_url=base(mirror), poll=0.05))
    finally:
        del CATALOG["xx"]
    assert steps[-1] == (f"✅ {NAME} downloaded, its sha256 verified, and unpacked into {tmp_path / NAME}",
                         str(tmp_path / NAME))
    assert again == [(f"✅ {NAME} is already here: {tmp_path / NAME}", str(tmp_path / NAME))]
