"""A verified download of the small English and Portuguese Vosk models, only when a person asks.

Each model's zip is pinned by its exact size and sha256: a file that differs in one byte is deleted
and never unpacked. The zip is unpacked member by member after checking that every member stays
inside the model's own folder (no absolute paths, no "..", no links) and that the whole fits in a
bounded size, then moved into place in one rename, so a folder under `vosk-models/` is always a
complete model.

    GET <mirror>/<name>.zip --> .downloading/<name>.zip (size, sha256) --> .unpacking-<name>/ --> <name>/
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from app.core.errors import VoiceError

VOSK_URL_ENV = "CHAIN_STUDIO_VOSK_URL"  # a mirror of the Vosk project's models folder
DEFAULT_VOSK_URL = "https://alphacephei.com/vosk/models"
CHUNK_BYTES = 256 * 1024
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # the small models unpack to well under 100 MB
MAX_MEMBERS = 5_000
TIMEOUT_SECONDS = 30.0

Progress = Callable[[int, int], None]  # (bytes received, bytes expected)


@dataclass(frozen=True)
class VoskModelFile:
    """One downloadable Vosk model: its folder name (also the zip's name and its top folder), what
    the page calls it, and the zip's pinned size and sha256."""

    language: str
    label: str
    name: str
    size: int
    sha256: str

    def url(self, base: str | None = None) -> str:
        """Where the zip is: the Vosk project's models folder, or the mirror in $CHAIN_STUDIO_VOSK_URL."""
        base = base or os.environ.get(VOSK_URL_ENV) or DEFAULT_VOSK_URL
        return f"{base.rstrip('/')}/{self.name}.zip"

    @property
    def size_text(self) -> str:
        return f"{self.size / 1_048_576:.1f} MiB"


# Sizes as the Vosk project's model list gives them; sha256 of the zips it serves.
CATALOG: dict[str, VoskModelFile] = {
    "en": VoskModelFile("en", "English (US), small", "vosk-model-small-en-us-0.15", 41_205_931,
                        "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498"),
    "pt": VoskModelFile("pt", "Portuguese (Brazil), small", "vosk-model-small-pt-0.3", 32_453_112,
                        "6e1ce909032e1afa7a88e68a3d628ecafff302bdf195befab308826c395e93b7"),
}


def catalog_entry(language: str) -> VoskModelFile:
    """The pinned model for a language code ("en" or "pt"); VoiceError naming the choices otherwise."""
    entry = CATALOG.get((language or "").strip().lower())
    if entry is None:
        raise VoiceError(f"no Vosk model to download for {language!r}: choose one of {', '.join(CATALOG)}")
    return entry


def installed(entry: VoskModelFile, root: Path) -> Path | None:
    """The model's folder under `root` when it is there and complete, else None."""
    from app.media.stt import check_model_folder

    folder = root / entry.name
    try:
        check_model_folder(folder)
    except VoiceError:
        return None
    return folder


def download_model(entry: VoskModelFile, root: Path, *, base_url: str | None = None,
                   on_progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> Path:
    """Download, verify and unpack `entry` into `root/<name>` and return that folder (at once when
    it is already there). VoiceError, with nothing left behind, for a network failure, a size or
    sha256 that differs from the pin, an unsafe or oversized zip, or `should_stop()` turning true."""
    done = installed(entry, root)
    if done is not None:
        return done
    partial_dir = root / ".downloading"
    try:
        partial_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VoiceError(f"cannot write the Vosk model into {root}: {exc.strerror or exc}") from exc
    zip_path = partial_dir / f"{entry.name}.zip"
    try:
        _fetch(entry, entry.url(base_url), zip_path, on_progress, should_stop)
        return _unpack(entry, zip_path, root)
    finally:
        zip_path.unlink(missing_ok=True)


def _fetch(entry: VoskModelFile, url: str, zip_path: Path, on_progress: Progress | None,
           should_stop: Callable[[], bool] | None) -> None:
    """Stream the zip into `zip_path`, checking its length and sha256 against the pin."""
    import httpx

    digest = hashlib.sha256()
    received = 0
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=TIMEOUT_SECONDS) as response:
            if response.status_code != 200:
                raise VoiceError(f"the Vosk model {entry.name} could not be downloaded from {url}: "
                                 f"the server answered {response.status_code}")
            announced = response.headers.get("content-length")
            if announced and announced.isdigit() and int(announced) != entry.size:
                raise VoiceError(_mismatch(entry, url, f"the server announces {int(announced):,} bytes, "
                                                       f"the pinned size is {entry.size:,}"))
            with zip_path.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    if should_stop is not None and should_stop():
                        raise VoiceError(f"the download of {entry.name} was stopped; nothing was kept")
                    received += len(chunk)
                    if received > entry.size:
                        raise VoiceError(_mismatch(entry, url, f"the server sent more than the pinned "
                                                               f"{entry.size:,} bytes"))
                    digest.update(chunk)
                    out.write(chunk)
                    if on_progress is not None:
                        on_progress(received, entry.size)
    except httpx.HTTPError as exc:
        raise VoiceError(f"the Vosk model {entry.name} could not be downloaded from {url}: {exc}") from exc
    except OSError as exc:
        raise VoiceError(f"cannot write the Vosk model to {zip_path}: {exc.strerror or exc}") from exc
    if received != entry.size:
        raise VoiceError(_mismatch(entry, url, f"the download ended after {received:,} of {entry.size:,} bytes"))
    if digest.hexdigest() != entry.sha256:
        raise VoiceError(_mismatch(entry, url, f"its sha256 is {digest.hexdigest()}, the pinned one is {entry.sha256}"))


def _mismatch(entry: VoskModelFile, url: str, what: str) -> str:
    return f"the Vosk model downloaded from {url} is not the expected {entry.name} ({what}); it was deleted"


def _unpack(entry: VoskModelFile, zip_path: Path, root: Path) -> Path:
    """Unpack the verified zip into root/<name> through a temporary folder and one rename."""
    from app.media.stt import check_model_folder

    staging = Path(tempfile.mkdtemp(prefix=f".unpacking-{entry.name}-", dir=root))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = _safe_members(entry, archive)
                for member in members:
                    archive.extract(member, staging)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise VoiceError(f"the Vosk model zip {entry.name} could not be unpacked: {exc}") from exc
        check_model_folder(staging / entry.name)
        target = root / entry.name
        if target.exists():  # an incomplete folder a person left there: replaced by the verified one
            shutil.rmtree(target)
        (staging / entry.name).rename(target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _safe_members(entry: VoskModelFile, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Every member, once each is known to stay inside <name>/, to be no link, and the whole to be
    of a bounded count and size; VoiceError naming the first member that is not."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise VoiceError(f"the Vosk model zip {entry.name} has {len(members):,} members (at most {MAX_MEMBERS:,})")
    total = 0
    for member in members:
        path = PurePosixPath(member.filename.replace("\\", "/"))
        unsafe = (path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != entry.name
                  or stat.S_ISLNK(member.external_attr >> 16))
        if unsafe:
            raise VoiceError(f"the Vosk model zip {entry.name} has an unsafe member {member.filename!r}; "
                             "nothing was unpacked")
        total += member.file_size
    if total > MAX_UNPACKED_BYTES:
        raise VoiceError(f"the Vosk model zip {entry.name} would unpack to {total:,} bytes "
                         f"(at most {MAX_UNPACKED_BYTES:,})")
    return members
