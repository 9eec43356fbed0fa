"""Shared fixtures: a fresh IPython shell per test, and fake models that record what they got."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from traitlets.config import Config

from ipy_stream.panes import Panes
from tests.openai_server import StreamServer


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Nothing may reach a real provider, or the developer's own run log, by accident."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


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


class RecordingChatModel(BaseChatModel):
    """Streams ``reply`` word by word, records the messages it was asked, and can fail.

    ``fail_after`` raises ``error`` after that many tokens; ``interrupt_after`` raises
    KeyboardInterrupt there instead (what the kernel's stop button does).
    """

    reply: str = "Hello from the fake model."
    calls: list[list[BaseMessage]] = []  # noqa: RUF012 - pydantic copies per instance
    fail_after: int | None = None
    interrupt_after: int | None = None
    error: Exception = RuntimeError("boom")
    closed: bool = False
    delay: float = 0.0
    """Seconds before each word."""
    sent: int = 0
    """Words streamed so far."""

    @property
    def _llm_type(self) -> str:
        return "recording-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self.calls.append(list(messages))
        pieces = [word + " " for word in self.reply.split(" ")]
        pieces[-1] = pieces[-1][:-1]
        try:
            for index, piece in enumerate(pieces):
                if self.fail_after is not None and index == self.fail_after:
                    raise self.error
                if self.interrupt_after is not None and index == self.interrupt_after:
                    raise KeyboardInterrupt
                if self.delay:
                    time.sleep(self.delay)
                object.__setattr__(self, "sent", self.sent + 1)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        finally:
            # Set when the consumer closes the stream (as an HTTP response would be).
            object.__setattr__(self, "closed", True)


@pytest.fixture
def fake() -> RecordingChatModel:
    """A recording fake chat model, not yet in any namespace."""
    return RecordingChatModel()


class Captured:
    """What a cell printed and displayed."""

    def __init__(self, io: CapturedIO, displays: list[dict[str, Any]]) -> None:
        self.stdout = io.stdout
        self.stderr = io.stderr
        self.displays = displays
        """Each display as published: ``data``, ``transient`` and ``update``."""

    def final_outputs(self) -> list[dict[str, Any]]:
        """The outputs a notebook keeps: updates replace the display with the same id."""
        kept: list[dict[str, Any]] = []
        for shown in self.displays:
            display_id = (shown.get("transient") or {}).get("display_id")
            if shown.get("update"):
                kept = [
                    shown if (k.get("transient") or {}).get("display_id") == display_id else k
                    for k in kept
                ]
            else:
                kept.append(shown)
        return kept


def run(ip: InteractiveShell, source: str) -> tuple[Any, Captured]:
    """Run a cell in ``ip``, capturing stdout, stderr and every display it publishes."""
    publisher = CapturingDisplayPublisher()
    original = ip.display_pub
    ip.display_pub = publisher
    try:
        with capture_output(display=False) as io:
            result = ip.run_cell(source)
    finally:
        ip.display_pub = original
    return result, Captured(io, publisher.outputs)


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

    monkeypatch.setattr("ipy_stream.magic.Panes", Recording)
    return made


def log_rows(log_path: Path) -> list[dict[str, Any]]:
    """Every row of the run log, oldest first."""
    connection = sqlite3.connect(log_path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        connection.close()
