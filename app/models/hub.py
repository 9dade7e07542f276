"""Download GGUF models from Hugging Face (huggingface_hub's metadata calls and HTTP session, with
the download loop here so that it can be stopped).

- The hub's announced size and sha256 (the LFS ETag) are checked before a file is moved into the
  models folder; a corrupt download is deleted, so it never appears in the model list.
- The bytes go to a partial file in a hidden staging folder, named after the file and its sha256;
  a dropped connection, a stopped download and a killed studio all resume from it with a Range
  request. A partial of another version of the file is removed.
- One download per file, shared by every run that asks for it (each sees its progress). A run that
  stops leaves the download; when no run wants it any more it stops within a second (checked
  between network reads, and a stalled connection is shut) and its partial file stays for next time.
- Disk space is checked first ("needs X, you have Y"); gated, missing, unauthorised, rate-limited
  and server errors each get their own message; HF_TOKEN is used by huggingface_hub when set and
  never appears in a message.
- Offline (HF_HUB_OFFLINE=1 or no connection), files downloaded and verified earlier still work.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors
from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from app.core.errors import ChainStudioError, DownloadError, DownloadStopped
from app.core.hub_links import ModelLink

# huggingface_hub reads this once, at import; another library may have imported it before the
# studio's default (app/__init__.py) was set. Downloads send nothing but the download requests.
hub_constants.HF_HUB_DISABLE_TELEMETRY = True

STAGING_DIR = ".downloading"
PARTIAL_SUFFIX = ".incomplete"
REGISTRY_FILE = ".chain-studio-downloads.json"
TESTING_KEY = "__testing_model__"
POLL_SECONDS = 0.1  # how often a waiting request looks at its stop button
STOP_WAIT_SECONDS = 1.0  # how long a stopped request waits for the download to close its partial file
RETRIES = 5  # reconnections in a row without new bytes before a download fails


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


def _size(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * 2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def stopped_message(name: str, kept: int, shared: bool = False) -> str:
    """What a run that stopped the download of `name` says."""
    if shared:
        return f"download of {name} stopped for this run; another run still wants it, so it goes on"
    if kept:
        return f"download of {name} stopped; {_size(kept)} kept, it resumes next time"
    return f"download of {name} stopped before any bytes arrived"


class _Stopped(Exception):
    """Raised inside a download's thread when no request wants the file any more."""


class _Listener:
    """One request waiting for a download (its own object, so two requests never compare equal)."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress


class _Transfer:
    """One file's download: runs in its own thread, shared by every request for the file, and
    stopped (its partial file kept) when the last of them leaves."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancel = threading.Event()
        self.finished = threading.Event()
        self.listeners: list[_Listener] = []
        self.path: Path | None = None
        self.error: ChainStudioError | None = None
        self.received = 0  # bytes in the partial file
        self.total: int | None = None
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None  # the connection being read, shut on stop
        self._first = 0
        self._started = time.monotonic()
        self._last_report = 0.0

    def stop(self) -> None:
        """No request wants the file any more: end the download at the next network read."""
        self.cancel.set()
        with self._lock:  # held, so the socket cannot go back to the connection pool meanwhile
            if self._socket is not None:
                # A stalled server would otherwise keep the read waiting for its timeout. The plain
                # socket's shutdown (not SSLSocket's, which drops its TLS state under the reader).
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self._socket, socket.SHUT_RDWR)

    @contextlib.contextmanager
    def reading(self, response: Any) -> Iterator[None]:
        """While `response`'s body is read, a stop shuts its connection."""
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._socket = sock if isinstance(sock, socket.socket) else None
        try:
            if self.cancel.is_set():
                raise _Stopped
            yield
        finally:
            with self._lock:
                self._socket = None

    def begin(self, have: int, total: int | None) -> None:
        self.received, self.total, self._first = have, total, have
        self._started = time.monotonic()
        self.report(force=True)

    def advance(self, n: int) -> None:
        self.received += n
        self.report()

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < 0.1:
            return
        self._last_report = now
        elapsed = max(now - self._started, 1e-6)
        update = DownloadProgress(self.name, self.received, self.total, (self.received - self._first) / elapsed)
        for listener in list(self.listeners):
            if listener.progress is not None:
                with contextlib.suppress(Exception):  # a progress display must not end the download
                    listener.progress(update)


class HubDownloader:
    """Downloads GGUF files into one models folder; safe to share between threads."""

    def __init__(self, models_dir: Path, free_space: Callable[[Path], int] | None = None) -> None:
        self.models_dir = models_dir
        self._free_space = free_space or (lambda path: shutil.disk_usage(path).free)
        self._guard = threading.Lock()
        self._file_locks: dict[str, threading.Lock] = {}
        self._transfers: dict[str, _Transfer] = {}  # file name -> the download requests share

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

    def fetch(self, link: ModelLink, progress: ProgressCallback | None = None, testing: bool = False,
              should_stop: Callable[[], bool] | None = None) -> Path:
        """The local path of `link` (every part of a split model is fetched; the first is
        returned), downloading and verifying what is not here yet. When `should_stop()` turns true
        this request raises DownloadStopped within a fraction of a second; the download itself stops
        (keeping its bytes for next time) unless another request still waits for the file."""
        paths = [self._fetch_one(part, progress, should_stop) for part in link.split_parts()]
        if testing:
            self._keep_only_latest_test_model(paths)
        return paths[0]

    def _keep_only_latest_test_model(self, paths: list[Path]) -> None:
        """Testing mode: the previous test model is deleted to save disk."""
        with self._guard:
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

    def _fetch_one(self, link: ModelLink, progress: ProgressCallback | None,
                   should_stop: Callable[[], bool] | None) -> Path:
        listener = _Listener(progress)
        with self._guard:
            transfer = self._transfers.get(link.basename)
            if transfer is None:
                transfer = self._transfers[link.basename] = _Transfer(link.basename)
                threading.Thread(target=self._run, args=(transfer, link), name=f"hub download {link.basename}",
                                 daemon=True).start()
            transfer.listeners.append(listener)
        stop_requested = False
        try:
            while not transfer.finished.wait(POLL_SECONDS):
                if should_stop is not None and should_stop():
                    stop_requested = True
                    break
        except BaseException:  # e.g. Ctrl-C: nobody waits for these bytes any more
            self._leave(transfer, listener)
            raise
        if stop_requested:
            raise self._leave(transfer, listener)
        if transfer.error is not None:
            raise transfer.error
        assert transfer.path is not None
        return transfer.path

    def _leave(self, transfer: _Transfer, listener: _Listener) -> DownloadStopped:
        """`listener` stops waiting; the last one to leave stops the download itself."""
        with self._guard:
            transfer.listeners = [other for other in transfer.listeners if other is not listener]
            last = not transfer.listeners
            if last:
                if self._transfers.get(transfer.name) is transfer:
                    del self._transfers[transfer.name]  # a new request starts a new download (resuming)
                transfer.stop()
        if last:
            transfer.finished.wait(STOP_WAIT_SECONDS)  # the partial file is complete and closed
        return DownloadStopped(stopped_message(transfer.name, transfer.received, shared=not last), transfer.received)

    def _run(self, transfer: _Transfer, link: ModelLink) -> None:
        """The download's own thread: the outcome goes to every request waiting for it."""
        try:
            transfer.path = self._download(link, transfer)
        except _Stopped:
            transfer.error = DownloadStopped(stopped_message(link.basename, transfer.received), transfer.received)
        except ChainStudioError as exc:
            transfer.error = exc
        except Exception as exc:  # reported to the requests, never a dead thread they wait for
            transfer.error = self._explain(exc, link)
        finally:
            with self._guard:
                if self._transfers.get(transfer.name) is transfer:
                    del self._transfers[transfer.name]
            transfer.finished.set()

    def _download(self, link: ModelLink, transfer: _Transfer) -> Path:
        target = self.models_dir / link.basename
        with self._lock_for(target.name):  # a stopped download of this file has closed its partial
            if transfer.cancel.is_set():
                raise _Stopped
            metadata = self._metadata(link)
            if self._verified_copy(link, target, metadata):
                return target
            if metadata is None:
                raise DownloadError(
                    f"cannot reach Hugging Face (offline?) and {link.basename} has not been downloaded yet"
                )
            staging = self.models_dir / STAGING_DIR / link.repo_id.replace("/", "--")
            partial = staging / f"{link.basename}.{(metadata.etag or 'unversioned')[:16]}{PARTIAL_SUFFIX}"
            self._remove_stale_partials(staging, link.basename, keep=partial)
            have = partial.stat().st_size if partial.is_file() else 0
            if metadata.size is not None and have > metadata.size:
                have = 0
            self._check_space(link, (metadata.size or 0) - have)
            transfer.begin(have, metadata.size)
            # Pinned to the commit the hub announced, so resumed bytes belong to the same file.
            url = hf_hub_url(link.repo_id, link.filename, revision=metadata.commit_hash or link.revision,
                             endpoint=self._endpoint())
            self._stream(url, partial, metadata.size, transfer)
            self._verify(partial, link, metadata)
            os.replace(partial, target)
            with self._guard:
                registry = self._registry()
                registry[target.name] = {
                    "repo_id": link.repo_id, "filename": link.filename, "revision": link.revision,
                    "commit": metadata.commit_hash, "sha256": metadata.etag, "size": metadata.size,
                }
                self._save_registry(registry)
            return target

    @staticmethod
    def _stream(url: str, partial: Path, size: int | None, transfer: _Transfer) -> None:
        """Append the file's missing bytes to `partial`, reconnecting (with a Range request) when the
        connection drops; raises _Stopped, keeping what arrived, when the transfer is stopped."""
        partial.parent.mkdir(parents=True, exist_ok=True)
        failures = 0
        while size is None or transfer.received < size:
            headers = build_hf_headers()  # HF_TOKEN when set; dropped by redirects to another host
            headers["Accept-Encoding"] = "identity"  # the file's own bytes, as the sha256 covers them
            if transfer.received:
                headers["Range"] = f"bytes={transfer.received}-"
            try:
                with get_session().stream("GET", url, headers=headers,
                                          timeout=hub_constants.HF_HUB_DOWNLOAD_TIMEOUT) as response:
                    hf_raise_for_status(response)
                    if transfer.received and response.status_code != 206:  # the Range was ignored: start over
                        transfer.begin(0, size)
                    with transfer.reading(response), open(partial, "ab" if transfer.received else "wb") as out:
                        for chunk in response.iter_bytes():
                            if transfer.cancel.is_set():
                                raise _Stopped
                            out.write(chunk)
                            transfer.advance(len(chunk))
                            failures = 0
                if size is None:
                    break
            except (_Stopped, hub_errors.HfHubHTTPError):
                raise
            except OSError as exc:  # the disk, not the network
                if transfer.cancel.is_set():
                    raise _Stopped from None
                raise DownloadError(f"cannot write {partial}: {exc.strerror or exc}") from None
            except Exception:
                if transfer.cancel.is_set():
                    raise _Stopped from None
                failures += 1
                if failures > RETRIES:
                    raise
            else:
                failures += 1  # the server ended the body early without an error
                if failures > RETRIES:
                    raise DownloadError(f"download of {transfer.name} failed: the server kept ending it early")
            if transfer.received != size and transfer.cancel.wait(0.5 * failures):
                raise _Stopped
        transfer.report(force=True)

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
    def _remove_stale_partials(staging: Path, name: str, keep: Path) -> None:
        """A partial file of another version of `name` can never be completed: remove it."""
        if not staging.is_dir():
            return
        for partial in staging.glob(f"{glob.escape(name)}.*{PARTIAL_SUFFIX}"):
            if partial != keep:
                partial.unlink(missing_ok=True)
        # Left by earlier versions of the studio (huggingface_hub's own temporary files): never resumed.
        for leftover in (staging / ".cache").rglob(f"*{PARTIAL_SUFFIX}"):
            leftover.unlink(missing_ok=True)

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

    def resolve(self, ref: str, progress: Callable[[str, float | None], None],
                should_stop: Callable[[], bool] | None = None) -> str:
        from app.core.hub_links import parse_model_link

        def report(update: DownloadProgress) -> None:
            progress(update.describe(), update.fraction)

        return str(self.downloader.fetch(parse_model_link(ref), report, testing=self.testing,
                                         should_stop=should_stop))
