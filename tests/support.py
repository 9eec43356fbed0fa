"""Helpers the unit tests share: a fake chat model that records what it was asked, running a
cell and capturing what it shows, reading the run log, and the background threads of runs."""

from __future__ import annotations

import copy
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


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


def log_rows(log_path: Path) -> list[dict[str, Any]]:
    """Every row of the run log, oldest first."""
    connection = sqlite3.connect(log_path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        connection.close()


def background_threads() -> list[threading.Thread]:
    """The threads of ``--bg`` runs still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("ipy-stream-background")]


def wait_until(predicate: Callable[[], object], timeout: float = 10) -> None:
    """Return once ``predicate()`` is true, checking every 10 ms; ``TimeoutError`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.01)


class InterruptAfter(BaseCallbackHandler):
    """Raises KeyboardInterrupt at the n-th token: the kernel's interrupt, at a known point
    of the stream."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.seen = 0

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if token:
            self.seen += 1
            if self.seen == self.tokens:
                raise KeyboardInterrupt


class ScriptedChatModel(BaseChatModel):
    """Streams the given chunks as an integration's ``_stream`` would yield them.

    With ``gate`` (a ``threading.Semaphore``), each chunk waits for one release, so a
    test can look at what a chunk did before the next one comes.
    """

    chunks: list[AIMessageChunk]
    gate: Any = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self.chunks:
            if self.gate is not None:
                assert self.gate.acquire(timeout=30), "the test stopped releasing chunks"
            yield ChatGenerationChunk(message=copy.deepcopy(chunk))
