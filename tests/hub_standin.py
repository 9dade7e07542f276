"""A loopback stand-in for the Hugging Face Hub's file endpoints, for download tests.

Serves HEAD/GET /ORG/REPO/resolve/REV/PATH with the headers huggingface_hub reads (X-Repo-Commit,
X-Linked-Etag = sha256, X-Linked-Size), honours Range requests, counts requests and the body bytes
it sends, can serve a file at a set rate (a slow link: `rate` bytes a second), and can misbehave
per file: drop the connection at 40%, go silent after 25% (stall), serve wrong bytes, answer 401,
403 (gated), 404 or 429 ("throttle").
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HostedFile:
    content: bytes
    behaviour: str = "ok"  # ok | slow | drop40 | stall | wrong | 401 | 403-gated | throttle (429)
    rate: int | None = None  # bytes a second, when set (may be changed between requests)
    gets: int = 0
    sent: int = 0  # body bytes written, over every GET
    starts: list[int] = field(default_factory=list)  # the first byte each GET asked for

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class StandInHub:
    files: dict[str, HostedFile] = field(default_factory=dict)  # "org/repo/path" -> file
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    closing: threading.Event = field(default_factory=threading.Event)  # ends stalled responses

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, repo: str, path: str, content: bytes, behaviour: str = "ok", rate: int | None = None) -> HostedFile:
        hosted = self.files[f"{repo}/{path}"] = HostedFile(content, behaviour, rate)
        return hosted

    def start(self) -> "StandInHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> tuple[HostedFile | None, str]:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return None, "RepoNotFound"
                repo, path = "/".join(parts[:2]), "/".join(parts[4:])
                if not any(key.startswith(repo + "/") for key in hub.files):
                    return None, "RepoNotFound"
                return hub.files.get(f"{repo}/{path}"), "EntryNotFound"

            def _error(self, status: int, code: str | None) -> None:
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _headers(self, hosted: HostedFile, status: int, length: int, start: int = 0) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{hosted.sha256}"')
                self.send_header("ETag", f'"{hosted.sha256}"')
                self.send_header("X-Linked-Size", str(len(hosted.content)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(hosted.content) - 1}/{len(hosted.content)}")
                self.end_headers()

            def _serve(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                hosted, missing = self._lookup()
                if hosted is None:
                    self._error(404, missing)
                    return
                if hosted.behaviour == "401":
                    self._error(401, None)
                    return
                if hosted.behaviour == "403-gated":
                    self._error(403, "GatedRepo")
                    return
                if hosted.behaviour == "throttle":
                    self._error(429, None)
                    return
                content = hosted.content
                if hosted.behaviour == "wrong":
                    content = bytes(b ^ 0xFF for b in content)
                start = 0
                wanted = self.headers.get("Range", "")
                if wanted.startswith("bytes=") and wanted[6:].split("-")[0]:
                    start = int(wanted[6:].split("-")[0])
                status = 206 if start else 200
                self._headers(hosted, status, len(content) - start, start)
                if not body:
                    return
                hosted.gets += 1
                hosted.starts.append(start)
                if hosted.behaviour == "drop40" and hosted.gets == 1 and start == 0:
                    self.wfile.write(content[: len(content) * 4 // 10])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if hosted.behaviour == "slow":  # 512 KB every 50 ms, so progress can be watched
                    for offset in range(start, len(content), 2**19):
                        self.wfile.write(content[offset : offset + 2**19])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                try:
                    self._send(hosted, content, start)
                except OSError:  # the client went away (a stopped download)
                    self.close_connection = True

            def _send(self, hosted: HostedFile, content: bytes, start: int) -> None:
                stall_at = len(content) // 4 if hosted.behaviour == "stall" else len(content)
                offset = start
                while offset < len(content):
                    if offset >= stall_at:  # silent, connection open, until the stand-in closes
                        hub.closing.wait(120)
                        self.close_connection = True
                        return
                    piece = content[offset : min(offset + 2**14, stall_at)]
                    self.wfile.write(piece)
                    self.wfile.flush()
                    offset += len(piece)
                    hosted.sent += len(piece)
                    if hosted.rate:
                        time.sleep(len(piece) / hosted.rate)

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.closing.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
