"""The benchmark's helper processes and listeners: the model server in a process of its own,
a second subscriber to the kernel's IOPub socket, and logging."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.openai_server import remote_configure, remote_reset

HERE = Path(__file__).resolve().parent


def http_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    """The benchmark itself could not do what it needed (not a figure)."""


# --------------------------------------------------------------------------- model server


class ModelServer:
    """``benchmarks/model_server.py`` in a subprocess (its own GIL, like a real server)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "model_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise HarnessError("the model server did not start")
        info = json.loads(line)
        self.url: str = info["url"]
        self.base_url: str = info["base_url"]
        self.offset: float = info["offset"]  # wall = monotonic + offset, in that process

    def configure(self, **knobs: Any) -> None:
        remote_reset(self.url)
        remote_configure(self.url, timeout=30, **knobs)

    def completions(self) -> list[dict[str, Any]]:
        records = http_json(self.url + "/_control/requests", timeout=30)["requests"]
        return [r for r in records if r["path"] == "/v1/chat/completions"]

    def tokens_sent(self) -> int:
        records = self.completions()
        return int(records[-1]["tokens_sent"]) if records else 0

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# --------------------------------------------------------------------------- IOPub listener


class IOPubListener:
    """A second subscriber to the kernel's IOPub socket: when each message left the kernel
    (as received here), its size in bytes (all ZMQ frames) and its type."""

    def __init__(self, connection_file: Path) -> None:
        import zmq

        info = json.loads(connection_file.read_text(encoding="utf-8"))
        self._zmq = zmq
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
        self.messages: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="iopub-listener", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        poller = self._zmq.Poller()
        poller.register(self._socket, self._zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            while True:
                try:
                    frames = self._socket.recv_multipart(self._zmq.NOBLOCK)
                except self._zmq.Again:
                    break
                now = time.time()
                size = sum(len(f) for f in frames)
                msg_type = "?"
                with contextlib.suppress(ValueError, IndexError, KeyError, TypeError):
                    header = frames[frames.index(b"<IDS|MSG>") + 2]
                    msg_type = json.loads(header)["msg_type"]
                self.messages.append((now, size, msg_type))

    def between(self, start: float, end: float) -> list[tuple[float, int, str]]:
        return [m for m in list(self.messages) if start <= m[0] <= end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._socket.close(0)
        self._context.term()
