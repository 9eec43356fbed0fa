"""Helpers the unit tests share: a fake chat model that records what it was asked, running a
cell and capturing what it shows, reading the run log, the background threads of runs, what a
live widget sends, and the real OpenAI clients pointed at the project's test server.

Fixtures are in ``tests/conftest.py``; test files import helpers from here, never from each
other."""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import openai
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from ipy_stream.live import LiveMarkdown

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

    from tests.openai_server import RequestRecord, StreamServer


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


# -- what a live widget sends ------------------------------------------------------------


@dataclass
class Recorder:
    """Everything one widget sent, in order, as its ``_send`` (the one exit of custom
    messages and state updates alike): ``("message", content)`` or ``("state", state)``
    events, and the bytes Jupyter would put on the wire for them. Safe to read while the
    widget's writer thread sends."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, msg: dict[str, Any], buffers: Any = None) -> None:
        wire = json.dumps(msg, ensure_ascii=False, allow_nan=False).encode("utf-8")
        with self.lock:
            self.bytes += len(wire)
            if msg["method"] == "custom":
                self.events.append(("message", msg["content"]))
            else:
                self.events.append(("state", msg["state"]))

    def _of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [content for sort, content in self.events if sort == kind]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The custom messages, in order."""
        return self._of("message")

    @property
    def updates(self) -> list[dict[str, Any]]:
        """The state updates, in order."""
        return self._of("state")

    @property
    def footers(self) -> list[str]:
        """Each footer sent, in a message or a state update, as a front end would show them."""
        with self.lock:
            return [content["footer"] for _, content in self.events if "footer" in content]

    @property
    def appends(self) -> list[dict[str, Any]]:
        """The answer's append messages, resync answers left out."""
        return [m for m in self.of_type("append") if not m.get("resync")]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """The custom messages of type ``kind`` (``append``, ``thinking``, ``tools``)."""
        return [m for m in self.messages if m["type"] == kind]

    def latest(self, trait: str) -> Any:
        """The last value of ``trait`` sent in a state update (None if never)."""
        values = [u[trait] for u in self.updates if trait in u]
        return values[-1] if values else None

    def text(self) -> str:
        """The answer a front end that saw every message in order would hold (resets and
        resync answers applied, by offset)."""
        text = ""
        for message in self.of_type("append"):
            offset = message["offset"]
            assert offset <= len(text), f"gap: offset {offset} after {len(text)} chars"
            if message.get("reset"):
                text = text[:offset]
            text += message["text"][len(text) - offset :]
        return text

    def answer(self) -> str:
        """The answer of the append messages, each of which must start where the one
        before ended."""
        text = ""
        for message in self.of_type("append"):
            assert message["offset"] == len(text), "appends leave in offset order"
            text += message["text"]
        return text

    def thinking(self) -> str:
        """The thinking a front end that saw every thinking message in order would hold."""
        text = ""
        for message in self.of_type("thinking"):
            assert message["offset"] == len(text), "thinking messages leave in offset order"
            text += message["text"]
        return text


def record_sends(widget: LiveMarkdown) -> Recorder:
    """Record what ``widget`` sends from now on (it has a dummy comm outside a kernel)."""
    recorder = Recorder()
    widget._send = recorder
    return recorder


def recorded(**kwargs: Any) -> tuple[LiveMarkdown, Recorder]:
    """A new LiveMarkdown (``kwargs``: its arguments) and what it sends."""
    widget = LiveMarkdown(**kwargs)
    return widget, record_sends(widget)


def from_front_end(widget: LiveMarkdown, content: Any) -> None:
    """What a front end's custom message (``content``) does when it reaches the kernel."""
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


# -- the real clients, pointed at the project's test server ------------------------------

API_KEY = "test-key"
MODEL = "gpt-4o-mini"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def make_client(server: StreamServer, **kwargs: Any) -> openai.OpenAI:
    """The real openai client pointed at *server*, no retries unless asked."""
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=server.base_url, api_key=API_KEY, **kwargs)


def make_chat(server: StreamServer, **kwargs: Any) -> ChatOpenAI:
    """The real ChatOpenAI pointed at *server*, no retries unless asked."""
    kwargs.setdefault("max_retries", 0)
    return ChatOpenAI(base_url=server.base_url, api_key=SecretStr(API_KEY), model=MODEL, **kwargs)


def open_stream(client: openai.OpenAI, **kwargs: Any) -> openai.Stream[ChatCompletionChunk]:
    """Start a streamed chat completion of :data:`USER`."""
    stream = client.chat.completions.create(model=MODEL, messages=USER, stream=True, **kwargs)
    return cast("openai.Stream[ChatCompletionChunk]", stream)


def content_of(chunk: ChatCompletionChunk) -> str | None:
    """The delta content of a chunk, or None when it has no choice/content."""
    if not chunk.choices:
        return None
    return chunk.choices[0].delta.content


def only_completion(server: StreamServer) -> RequestRecord:
    """The single chat completion record (asserts there is exactly one)."""
    records = server.completion_requests
    assert len(records) == 1, records
    return records[0]
