"""Shared fixtures: a fresh IPython shell per test, fake models that record what they got, and
the project's OpenAI-compatible test server. Helpers that tests call live in
``tests/support.py``."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from ipy_stream.panes import Panes
from tests.openai_server import StreamServer
from tests.support import RecordingChatModel


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Nothing may reach a real provider, or the developer's own run log, by accident."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture
def offline_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients built in the test process stay local: no base URL from the environment, no
    tracing, no proxy for 127.0.0.1. Not for every test: kernels started in a test inherit
    the environment, and langchain-openai warns in a cell about a proxy setting."""
    for name in ("OPENAI_API_BASE", "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def ip_empty() -> Iterator[InteractiveShell]:
    """A fresh shell with nothing loaded (not the global singleton)."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    yield shell
    shell.history_manager.end_session()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Where the test's run log is written."""
    return tmp_path / "runs.sqlite3"


@pytest.fixture
def ip(ip_empty: InteractiveShell, log_path: Path) -> InteractiveShell:
    """A fresh shell with ``%load_ext ipy_stream`` done and its own run log."""
    ip_empty.run_line_magic("load_ext", "ipy_stream")
    ip_empty.run_line_magic("config", f"StreamMagics.log_path = {str(log_path)!r}")
    return ip_empty


@pytest.fixture
def fake() -> RecordingChatModel:
    """A recording fake chat model, not yet in any namespace."""
    return RecordingChatModel()


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """An API key that must never show up anywhere."""
    key = "sk-test-" + os.urandom(12).hex()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


@pytest.fixture(scope="session")
def stream_server() -> Iterator[StreamServer]:
    """The project's OpenAI-compatible streaming server on 127.0.0.1, for the whole session.

    Tests that change its knobs get it through ``server`` (below), which resets it.
    """
    with StreamServer() as server:
        yield server


@pytest.fixture
def server(stream_server: StreamServer) -> Iterator[StreamServer]:
    """The shared test server, reset to its defaults before and after the test."""
    stream_server.reset()
    yield stream_server
    stream_server.reset()


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread, as in a kernel (also when the
    suite runs in the background, where shells start processes with SIGINT ignored)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are only delivered to the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def panes(monkeypatch: pytest.MonkeyPatch) -> list[Panes]:
    """Every Panes the magic builds, to look at its widgets and reach its Stop button."""
    made: list[Panes] = []

    class Recording(Panes):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr("ipy_stream.display.Panes", Recording)
    return made


@pytest.fixture
def http(
    ip: InteractiveShell,
    server: StreamServer,
    secret_key: str,
    caplog: pytest.LogCaptureFixture,
) -> InteractiveShell:
    """``ip`` talking to the test server with a fake key, showing the widget view; the
    WARNING log records a notebook would print under the cell are in ``caplog``."""
    caplog.set_level(logging.WARNING)
    ip.run_line_magic("config", f"StreamMagics.base_url = {server.base_url!r}")
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    return ip
