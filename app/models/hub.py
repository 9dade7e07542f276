"""Download GGUF models from Hugging Face (huggingface_hub; no hand-written HTTP).

- The hub's announced size and sha256 (the LFS ETag) are checked before a file is moved into the
  models folder; a failed or corrupt download stays in a hidden staging folder and is deleted, so
  it never appears in the model list.
- A dropped connection is resumed from the bytes already received (huggingface_hub retries with a
  Range request); stale partial files of killed downloads are removed.
- Disk space is checked first ("needs X, you have Y"); gated, missing, unauthorised, rate-limited
  and server errors each get their own message; HF_TOKEN is used by huggingface_hub when set and
  never appears in a message.
- One download per file: a second request for the same file waits and reuses the verified copy.
- Offline (HF_HUB_OFFLINE=1 or no connection), files downloaded and verified earlier still work.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

from app.core.errors import DownloadError
from app.core.hub_links import ModelLink

# huggingface_hub reads this once, at import; another library may have imported it before the
# studio's default (app/__init__.py) was set. Downloads send nothing but the download requests.
hub_constants.HF_HUB_DISABLE_TELEMETRY = True
# Bytes are read (and progress reported) per chunk: 1 MB steps instead of the library's 10 MB.
hub_constants.DOWNLOAD_CHUNK_SIZE = 2**20

STAGING_DIR = ".downloading"
REGISTRY_FILE = ".chain-studio-downloads.json"
TESTING_KEY = "__testing_model__"


@dataclass(frozen=True)
class DownloadProgress:
    """How far one file's download has come."""

    filename: str
    done: int
    total: int | None
    bytes_per_second: float

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def describe(self) -> str:
        """e.g. "Downloading model.gguf: 40% (120.0 of 300.0 MB) · 12.5 MB/s · 14 s left"."""
        mb = 1_000_000
        speed = f"{self.bytes_per_second / mb:.1f} MB/s"
        if not self.total:
            return f"Downloading {self.filename}: {self.done / mb:.1f} MB · {speed}"
        left = (self.total - self.done) / self.bytes_per_second if self.bytes_per_second > 0 else None
        eta = f" · {left:.0f} s left" if left is not None else ""
        return (f"Downloading {self.filename}: {100 * self.done / self.total:.0f}% "
                f"({self.done / mb:.1f} of {self.total / mb:.1f} MB) · {speed}{eta}")


ProgressCallback = Callable[[DownloadProgress], None]


def _progress_reporter(filename: str, callback: ProgressCallback | None) -> type:
    """A progress-bar class for huggingface_hub that reports to `callback` instead of a terminal."""

    class Reporter:
        def __init__(self, total: int | None = None, initial: int = 0, **_: Any) -> None:
            self.total = total
            self.n = initial
            self._started = time.monotonic()
            self._first = initial
            self._last_report = 0.0

        def __enter__(self) -> "Reporter":
            return self

        def __exit__(self, *_: Any) -> None:
            self._report(force=True)

        def update(self, n: int = 1) -> None:
            self.n += n
            self._report()

        def close(self) -> None:
            self._report(force=True)

        def _report(self, force: bool = False) -> None:
            now = time.monotonic()
            if callback is None or (not force and now - self._last_report < 0.1):
                return
            self._last_report = now
            elapsed = max(now - self._started, 1e-6)
            callback(DownloadProgress(filename, self.n, self.total, (self.n - self._first) / elapsed))

    return Reporter


def _size(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * 2**20), b""):
            digest.update(block)
    return digest.hexdigest()


class HubDownloader:
    """Downloads GGUF files into one models folder; safe to share between threads."""

    def __init__(self, models_dir: Path, free_space: Callable[[Path], int] | None = None) -> None:
        self.models_dir = models_dir
        self._free_space = free_space or (lambda path: shutil.disk_usage(path).free)
        self._guard = threading.Lock()
        self._file_locks: dict[str, threading.Lock] = {}

    # -- registry of verified downloads -------------------------------------------------------

    def _registry_path(self) -> Path:
        return self.models_dir / REGISTRY_FILE

    def _registry(self) -> dict[str, Any]:
        try:
            return json.loads(self._registry_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _save_registry(self, registry: dict[str, Any]) -> None:
        partial = self._registry_path().with_suffix(".partial")
        partial.write_text(json.dumps(registry, indent=1), encoding="utf-8")
        os.replace(partial, self._registry_path())

    def _lock_for(self, name: str) -> threading.Lock:
        with self._guard:
            return self._file_locks.setdefault(name, threading.Lock())

    # -- public --------------------------------------------------------------------------------

    def fetch(self, link: ModelLink, progress: ProgressCallback | None = None, testing: bool = False) -> Path:
        """The local path of `link` (every part of a split model is fetched; the first is
        returned), downloading and verifying what is not here yet."""
        paths = [self._fetch_one(part, progress) for part in link.split_parts()]
        if testing:
            self._keep_only_latest_test_model(paths)
        return paths[0]

    def _keep_only_latest_test_model(self, paths: list[Path]) -> None:
        """Testing mode: the previous test model is deleted to save disk."""
        registry = self._registry()
        previous = [p for p in registry.get(TESTING_KEY, []) if p not in {x.name for x in paths}]
        for name in previous:
            (self.models_dir / name).unlink(missing_ok=True)
            registry.pop(name, None)
        registry[TESTING_KEY] = [p.name for p in paths]
        self._save_registry(registry)

    @staticmethod
    def _endpoint() -> str | None:
        # Read at call time: huggingface_hub reads HF_ENDPOINT once, when it is first imported.
        return os.environ.get("HF_ENDPOINT") or None

    def _metadata(self, link: ModelLink) -> Any | None:
        """What the hub announces for the file; None when offline."""
        url = hf_hub_url(link.repo_id, link.filename, revision=link.revision, endpoint=self._endpoint())
        try:
            return get_hf_file_metadata(url)
        except (hub_errors.OfflineModeIsEnabled, ConnectionError, TimeoutError):
            return None
        except Exception as exc:
            if type(exc).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException"):
                return None
            raise self._explain(exc, link) from None

    def _verified_copy(self, link: ModelLink, target: Path, metadata: Any | None) -> bool:
        record = self._registry().get(target.name)
        if not target.is_file() or not record:
            return False
        if record.get("repo_id") != link.repo_id or record.get("filename") != link.filename:
            return False
        if target.stat().st_size != record.get("size"):
            return False
        return metadata is None or (record.get("sha256") == metadata.etag and record.get("size") == metadata.size)

    def _fetch_one(self, link: ModelLink, progress: ProgressCallback | None) -> Path:
        target = self.models_dir / link.basename
        with self._lock_for(target.name):
            metadata = self._metadata(link)
            if self._verified_copy(link, target, metadata):
                return target
            if metadata is None:
                raise DownloadError(
                    f"cannot reach Hugging Face (offline?) and {link.basename} has not been downloaded yet"
                )
            self._check_space(link, metadata.size)
            staging = self.models_dir / STAGING_DIR / link.repo_id.replace("/", "--")
            self._remove_stale_partials(staging)
            try:
                downloaded = Path(hf_hub_download(
                    link.repo_id, link.filename, revision=link.revision, local_dir=staging,
                    endpoint=self._endpoint(),
                    force_download=True, tqdm_class=_progress_reporter(link.basename, progress),
                ))
            except Exception as exc:
                raise self._explain(exc, link) from None
            self._verify(downloaded, link, metadata)
            os.replace(downloaded, target)
            registry = self._registry()
            registry[target.name] = {
                "repo_id": link.repo_id, "filename": link.filename, "revision": link.revision,
                "commit": metadata.commit_hash, "sha256": metadata.etag, "size": metadata.size,
            }
            self._save_registry(registry)
            return target

    def _check_space(self, link: ModelLink, size: int | None) -> None:
        if not size:
            return
        free = self._free_space(self.models_dir)
        # The download is written next to its final place, then renamed: one copy's room is enough.
        if free < size:
            raise DownloadError(
                f"not enough disk space for {link.basename}: needs {_size(size)}, you have {_size(free)} free"
            )

    @staticmethod
    def _remove_stale_partials(staging: Path) -> None:
        """Partial files of downloads that were killed are never reused: remove them."""
        if staging.is_dir():
            for partial in staging.rglob("*.incomplete"):
                partial.unlink(missing_ok=True)

    @staticmethod
    def _verify(path: Path, link: ModelLink, metadata: Any) -> None:
        size = path.stat().st_size
        problem = None
        if metadata.size is not None and size != metadata.size:
            problem = f"it has {size:,} bytes, the hub announced {metadata.size:,}"
        elif metadata.etag and len(metadata.etag) == 64:  # LFS files: the ETag is the sha256
            actual = sha256_of(path)
            if actual != metadata.etag:
                problem = f"its sha256 is {actual[:12]}…, the hub announced {metadata.etag[:12]}…"
        if problem:
            path.unlink(missing_ok=True)
            raise DownloadError(f"download corrupt: {link.basename} was deleted because {problem}; try again")

    @staticmethod
    def _explain(exc: Exception, link: ModelLink) -> DownloadError:
        name = f"{link.repo_id}/{link.filename}"
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(exc, hub_errors.GatedRepoError):
            return DownloadError(f"{link.repo_id} is gated: accept its terms on huggingface.co, then set "
                                 "HF_TOKEN to a token that has access")
        if isinstance(exc, hub_errors.RepositoryNotFoundError):
            if status == 401:
                return DownloadError(f"{link.repo_id} needs authorisation (401): it is private or does not "
                                     "exist; set HF_TOKEN if you have access")
            return DownloadError(f"repository {link.repo_id} not found (404): check the name")
        if isinstance(exc, hub_errors.RevisionNotFoundError):
            return DownloadError(f"{link.repo_id} has no revision {link.revision!r}")
        if isinstance(exc, hub_errors.RemoteEntryNotFoundError):
            return DownloadError(f"{link.repo_id} has no file {link.filename} (404)")
        if status == 403:
            return DownloadError(f"access to {name} is forbidden (403): your token may lack permission")
        if status == 401:
            return DownloadError(f"{name} needs authorisation (401): set HF_TOKEN to a token with access")
        if status == 429:
            return DownloadError("Hugging Face is rate-limiting downloads (429): wait a few minutes and retry")
        if isinstance(status, int) and status >= 500:
            return DownloadError(f"Hugging Face answered with a server error ({status}): try again later")
        if isinstance(exc, hub_errors.OfflineModeIsEnabled):
            return DownloadError(f"offline mode is on (HF_HUB_OFFLINE) and {link.basename} is not downloaded")
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return DownloadError(f"download of {link.basename} failed: {text}")


class HubModelSource:
    """The runner's ModelSource: links become verified files in the models folder."""

    def __init__(self, downloader: HubDownloader, testing: bool = False) -> None:
        self.downloader = downloader
        self.testing = testing

    def resolve(self, ref: str, progress: Callable[[str, float | None], None]) -> str:
        from app.core.hub_links import parse_model_link

        def report(update: DownloadProgress) -> None:
            progress(update.describe(), update.fraction)

        return str(self.downloader.fetch(parse_model_link(ref), report, testing=self.testing))
