"""Real engines for the tests and bench/engines.py: llama-cpp-python's own OpenAI-compatible server
(`python -m llama_cpp.server`) on a loopback port, and `FaultProxy`, a small loopback HTTP proxy in
front of one or more servers that adds latency or injects a fault (a status, a Retry-After, a
redirect, a stream cut mid-answer, a stream that goes silent) and records what it was sent."""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` with `model` on 127.0.0.1, listing it as `alias`. Requests queue
    one after another (`--interrupt_requests False`: by default a new request cuts the running one)."""

    def __init__(self, model: Path, alias: str = "demo", n_ctx: int = 2048) -> None:
        self.port = free_port()
        self.alias = alias
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", "1",
             "--interrupt_requests", "False", "--verbose", "False"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama_cpp.server did not start within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Fault:
    """What the proxy does to the next requests (None: forwards them unchanged).

    kind: "status" (answer `status` with `body` and `headers`, `times` times, then forward),
    "redirect" (307 to `location`), "cut" (forward `after` stream events, then drop the connection),
    "silent" (forward `after` events, then send nothing and keep the connection open)."""

    kind: str
    status: int = 500
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1_000_000
    location: str = ""
    after: int = 0
    paths: tuple[str, ...] = ("/v1/chat/completions", "/v1/completions")


class FaultProxy:
    """A loopback proxy in front of `upstreams` (taken in turn), adding `delay` seconds each way."""

    def __init__(self, upstreams: list[str], delay: float = 0.0) -> None:
        self.upstreams = itertools.cycle([u.rstrip("/") for u in upstreams])
        self.delay = delay
        self.fault: Fault | None = None
        self.seen: list[dict[str, Any]] = []  # every request: path, headers, body
        self.in_flight = 0  # completion requests being answered now
        self.most_in_flight = 0  # the most at any one time
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                proxy._handle(self, self.rfile.read(length))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a client gone mid-request
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            fault = self.fault
            if fault is None or path not in fault.paths:
                return None
            if fault.kind == "status":
                if fault.times <= 0:
                    return None
                fault.times -= 1
            return fault

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        counted = [handler.command == "POST"]  # a completion in flight until its end marker is relayed
        with self._lock:
            self.seen.append({"path": handler.path, "headers": dict(handler.headers),
                              "body": json.loads(body) if body else None})
            if counted[0]:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)

        def finished() -> None:
            # Before the end marker goes out: the client may send its next request as soon as it reads it.
            if counted[0]:
                counted[0] = False
                with self._lock:
                    self.in_flight -= 1

        try:
            self._answer(handler, body, finished)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the studio closed the stream (Stop/Next, a cut it noticed): nothing to relay to
        finally:
            finished()

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes | None, finished: Any) -> None:
        time.sleep(self.delay)
        fault = self._take_fault(handler.path)
        if fault is not None and fault.kind in ("status", "redirect"):
            status = 307 if fault.kind == "redirect" else fault.status
            payload = json.dumps(fault.body).encode() if fault.body else b""
            handler.send_response(status)
            for name, value in {**fault.headers, **({"Location": fault.location} if fault.location else {})}.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        upstream = next(self.upstreams)
        target = http.client.HTTPConnection(upstream.split("://", 1)[1].split("/", 1)[0], timeout=120)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        target.request(handler.command, handler.path, body=body, headers=headers)
        response = target.getresponse()
        time.sleep(self.delay)
        handler.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                handler.send_header(name, value)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        events = 0
        for chunk in self._chunks(response):
            if fault is not None and chunk.startswith(b"data:") and events >= fault.after:
                if fault.kind == "cut":  # drop the connection mid-body: no closing chunk
                    handler.wfile.flush()
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    handler.close_connection = True
                    target.close()
                    return
                if fault.kind == "silent":
                    time.sleep(3600)
            if chunk.startswith(b"data:"):
                events += 1
                if chunk.startswith(b"data: [DONE]"):
                    finished()
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
        target.close()

    @staticmethod
    def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
        """The body line by line (a server-sent event is a line)."""
        while True:
            line = response.readline()
            if not line:
                return
            yield line
