"""A small OpenAI-compatible streaming server for tests and benchmarks.

Stdlib only. It speaks enough of the OpenAI HTTP API for the real ``openai`` client and
``langchain_openai.ChatOpenAI`` to talk to it over real HTTP on 127.0.0.1:

* ``POST /v1/chat/completions`` -- streaming (Server-Sent Events over
  ``Transfer-Encoding: chunked``, one flushed event per token) and non-streaming.
* ``GET /v1/models`` and ``GET /v1/models/{id}``.
* ``POST /_control/configure`` (JSON object of knobs), ``POST /_control/reset``,
  ``GET /_control/knobs`` and ``GET /_control/requests`` to drive and observe the server
  from another process.

Its behaviour is controlled by :class:`Knobs` (reply size and text, token rate, injected
HTTP errors, dropped / stalled / malformed streams), and every request is recorded as a
:class:`RequestRecord` so tests can check what the client sent and what happened to the
response (for example that the client closed the connection mid-stream).

In-process use::

    with StreamServer() as server:
        server.configure(tokens=10, rate=0)
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key")
        ...
        record = server.wait_for_tokens(3)

Command line::

    python tests/openai_server.py --port 8765 --tokens 200 --rate 50
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import re
import select
import signal
import socket
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from types import TracebackType

__all__ = [
    "CHAT_COMPLETIONS_PATH",
    "DEFAULT_MODELS",
    "Knobs",
    "RequestRecord",
    "StreamServer",
    "generate_reply",
    "main",
    "remote_configure",
    "remote_reset",
    "tokenize",
]

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
"""Path of the chat completions endpoint (what :class:`RequestRecord.path` holds)."""

DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1")
"""Model ids listed by ``GET /v1/models``. Any model name is accepted by completions."""

_POLL_SECONDS = 0.05
"""Longest a streaming handler blocks before re-checking the stop flag and the socket."""

_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)

_MALFORMED_EVENT = b'data: {"id": "chatcmpl-broken", "choices": [<<not json>>\n\n'

_ERROR_DETAILS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Simulated bad request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM). Please try again later.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


# --------------------------------------------------------------------------- text


def tokenize(text: str) -> list[str]:
    """Split *text* into word-piece tokens whose concatenation is exactly *text*.

    A token is optional leading whitespace followed by either a run of word characters
    or a single other character (so ``"Hello, world"`` becomes ``["Hello", ",", " world"]``
    and ``"**"`` is two tokens, as with real tokenizers that split Markdown markers).
    """
    return _TOKEN_RE.findall(text)


_REPLY_PREFIX = (
    "# Streaming test reply\n\n"
    "This is **streamed Markdown** for testing.\n\n"
    "- first item\n"
    "- second item\n\n"
    '```python\nprint("hello")\n```'
)


def _paragraph(number: int) -> str:
    return f"\n\n{number}. Paragraph {number} keeps the answer going with deterministic words."


def generate_reply(tokens: int) -> list[str]:
    """Return the deterministic Markdown-shaped reply of exactly *tokens* tokens.

    The reply starts with a ``#`` heading, a ``**bold**`` phrase, a bullet list and a
    fenced ```` ```python ```` block (34 tokens in all, so the default 40 tokens contain
    every construct, fence closed), then continues with numbered paragraphs. Shorter
    replies are a prefix of longer ones.
    """
    if tokens < 0:
        raise ValueError("tokens must be >= 0")
    out = tokenize(_REPLY_PREFIX)
    for number in itertools.count(1):
        if len(out) >= tokens:
            break
        out.extend(tokenize(_paragraph(number)))
    return out[:tokens]


def _message_text(content: object) -> str:
    """Text of a chat message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("messages")
    if not isinstance(raw, list):
        return []
    return [m for m in raw if isinstance(m, dict)]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(_messages(body)):
        if message.get("role") == "user":
            return _message_text(message.get("content"))
    return ""


def _quote(text: str) -> str:
    lines = text.splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines) + "\n\n"


def _prompt_tokens(body: dict[str, Any]) -> int:
    messages = _messages(body)
    return sum(len(tokenize(_message_text(m.get("content")))) + 3 for m in messages)


# --------------------------------------------------------------------------- knobs


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class Knobs:
    """Behaviour of the server; change with :meth:`StreamServer.configure`.

    Attributes:
        tokens: Number of tokens of the generated reply (ignored when ``text`` is set).
        rate: Tokens per second; ``0`` sends as fast as possible. Non-streaming requests
            wait ``tokens / rate`` seconds before answering.
        text: Exact reply text (split with :func:`tokenize`); ``None`` generates the
            Markdown reply of :func:`generate_reply`.
        echo: Start the reply with the last user message quoted as Markdown (``> ...``
            lines, then a blank line); ``tokens`` counts only the part after the quote.
        status: HTTP status (400-599) to fail chat completion requests with, with an
            OpenAI-style error body ``{"error": {"message", "type", "param", "code"}}``.
        fail_times: How many requests fail with ``status`` before the server behaves
            normally again; negative means every request. Counted from the last
            ``configure`` call that set ``status`` or ``fail_times``.
        retry_after: Seconds sent as ``retry-after`` (and ``retry-after-ms``) with 429s.
        drop_after: Close the connection abruptly after this many tokens (streams only):
            the chunked body is never terminated and no ``[DONE]`` is sent.
        stall_after: Stop sending after this many tokens (streams only) ...
        stall_seconds: ... for this long, then continue normally.
        malformed_after: Send a ``data:`` line that is not JSON after this many tokens
            (streams only), then continue normally.

    The "after N tokens" hooks run in the order malformed, stall, drop, and ``N`` may equal
    the reply length (after the last token, before the finish chunk).
    """

    tokens: int = 40
    rate: float = 200.0
    text: str | None = None
    echo: bool = False
    status: int | None = None
    fail_times: int = 1
    retry_after: float | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 0.0
    malformed_after: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` if a knob has the wrong type or an impossible value."""
        problems: list[str] = []

        def check(name: str, ok: bool, expected: str) -> None:
            if not ok:
                problems.append(f"{name}={getattr(self, name)!r} (expected {expected})")

        check("tokens", _is_int(self.tokens) and self.tokens >= 0, "int >= 0")
        check("rate", _is_number(self.rate) and self.rate >= 0, "number >= 0")
        check("text", self.text is None or isinstance(self.text, str), "str or None")
        check("echo", isinstance(self.echo, bool), "bool")
        check(
            "status",
            self.status is None or (_is_int(self.status) and 400 <= self.status <= 599),
            "int 400-599 or None",
        )
        check("fail_times", _is_int(self.fail_times), "int")
        check(
            "retry_after",
            self.retry_after is None or (_is_number(self.retry_after) and self.retry_after >= 0),
            "number >= 0 or None",
        )
        for name in ("drop_after", "stall_after", "malformed_after"):
            value = getattr(self, name)
            check(name, value is None or (_is_int(value) and value >= 0), "int >= 0 or None")
        check(
            "stall_seconds",
            _is_number(self.stall_seconds) and self.stall_seconds >= 0,
            "number >= 0",
        )
        if problems:
            raise ValueError("invalid knobs: " + ", ".join(problems))

    def to_json(self) -> dict[str, Any]:
        """The knobs as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def names(cls) -> frozenset[str]:
        """Names of all knobs."""
        return frozenset(f.name for f in dataclasses.fields(cls))


# --------------------------------------------------------------------------- records


@dataclass
class RequestRecord:
    """What the server saw and did for one HTTP request (``/_control/*`` is not recorded).

    Records are updated live by the handler thread; read them after
    :meth:`StreamServer.wait_for` to avoid races.

    Attributes:
        method: HTTP method.
        path: Request path without the query string.
        headers: Request headers, lower-cased, without credentials (``authorization``,
            ``api-key``, ``x-api-key``, ``cookie``, ``proxy-authorization`` are dropped).
        auth_present: Whether an ``Authorization`` header was sent.
        auth_last4: Last 4 characters of the ``Authorization`` header value, if any.
        body: Parsed JSON body (``None`` if absent or not a JSON object).
        status: HTTP status of the response (0 until it is about to be written).
        stream: Whether the client asked for ``"stream": true``.
        planned_tokens: Tokens the reply would have had if fully sent.
        tokens_sent: Content tokens written and flushed to the socket.
        text_sent: Concatenation of the content tokens sent.
        token_times: ``time.monotonic()`` after each token was flushed.
        completed: A successful reply was fully written (``[DONE]`` for streams).
        client_closed: Writing failed, or the socket hit EOF, because the client went
            away before the reply was complete.
        dropped: The server closed the connection on purpose (``drop_after``).
        error: Short description of what went wrong, if anything.
        started: ``time.monotonic()`` when the request was parsed.
        finished: ``time.monotonic()`` when the handler finished with the request.
    """

    method: str
    path: str
    headers: dict[str, str]
    auth_present: bool
    auth_last4: str | None
    body: dict[str, Any] | None = None
    status: int = 0
    stream: bool = False
    planned_tokens: int = 0
    tokens_sent: int = 0
    text_parts: list[str] = field(default_factory=list, repr=False)
    token_times: list[float] = field(default_factory=list)
    completed: bool = False
    client_closed: bool = False
    dropped: bool = False
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def text_sent(self) -> str:
        """Concatenation of the content tokens sent."""
        return "".join(self.text_parts)

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-serialisable dict."""
        data = dataclasses.asdict(self)
        del data["text_parts"]
        data["text_sent"] = self.text_sent
        return data


# --------------------------------------------------------------------------- HTTP plumbing


class _ClientGoneError(Exception):
    """The client closed the connection (write failed or EOF seen)."""


class _StoppingError(Exception):
    """The server is shutting down."""


@dataclass
class _Reply:
    """Everything needed to send one successful completion."""

    tokens: list[str]
    finish_reason: str
    meta: dict[str, Any]
    usage: dict[str, int]
    include_usage: bool

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        """A ``chat.completion.chunk`` event with one choice carrying *delta*."""
        out: dict[str, Any] = {
            **self.meta,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            out["usage"] = None
        return out


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: StreamServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about client disconnects unless the owner is verbose."""
        if self.owner.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Per-connection request handler; all state lives in the owning StreamServer."""

    protocol_version = "HTTP/1.1"
    server_version = "ipy-stream-test-openai/1.0"
    disable_nagle_algorithm = True
    server: _HTTPServer

    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    # -- lifecycle ----------------------------------------------------------------

    @property
    def owner(self) -> StreamServer:
        """The StreamServer this handler belongs to."""
        return self.server.owner

    def setup(self) -> None:
        """Register the connection so ``close()`` can unblock it."""
        super().setup()
        self.owner._register_connection(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.owner._unregister_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Log to stderr only when verbose."""
        if self.owner.verbose:
            super().log_message(format, *args)

    # -- routing ------------------------------------------------------------------

    def do_GET(self) -> None:
        """Serve models and control reads."""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/_control/knobs":
            self._send_json(200, {"knobs": self.owner.knobs.to_json()})
            return
        if path == "/_control/requests":
            with self.owner._cond:  # a consistent snapshot of the live records
                records = [r.to_json() for r in self.owner.requests]
            self._send_json(200, {"requests": records})
            return
        record = self._new_record(None)
        self._guarded(record, lambda: self._get(path, record))

    def _get(self, path: str, record: RequestRecord) -> None:
        if path == "/v1/models":
            now = int(time.time())
            data = [
                {"id": m, "object": "model", "created": now, "owned_by": "openai"}
                for m in self.owner.models
            ]
            self._mark_completed(
                record, lambda: self._send_json(200, {"object": "list", "data": data}, record)
            )
        elif path.startswith("/v1/models/"):
            model = path.removeprefix("/v1/models/")
            if model in self.owner.models:
                payload = {"id": model, "object": "model", "created": 0, "owned_by": "openai"}
                self._mark_completed(record, lambda: self._send_json(200, payload, record))
            else:
                self._send_error(404, record, model=model)
        else:
            self._send_invalid_url(record)

    def do_POST(self) -> None:
        """Serve chat completions and control writes."""
        path = self.path.split("?", 1)[0].rstrip("/")
        raw = self._read_body()
        if path.startswith("/_control/"):
            self._control(path, raw)
            return
        body = _parse_object(raw)
        record = self._new_record(body)
        if path == CHAT_COMPLETIONS_PATH:
            self._guarded(record, lambda: self._chat_completions(record, body))
        else:
            self._guarded(record, lambda: self._send_invalid_url(record))

    def _guarded(self, record: RequestRecord, action: Callable[[], None]) -> None:
        """Run *action* for *record*, turning disconnects/shutdown into record fields."""
        try:
            action()
        except _ClientGoneError:
            self.owner._update(
                record,
                client_closed=not record.completed,
                error=record.error or "client closed the connection",
            )
            self.close_connection = True
        except _StoppingError:
            self.owner._update(record, error="server shut down")
            self.close_connection = True
        except Exception as exc:
            self.owner._update(record, error=f"server bug: {exc!r}")
            self.close_connection = True
            raise
        finally:
            self.owner._finish_record(record)

    # -- control ------------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        if path == "/_control/reset":
            self.owner.reset()
            self._send_json(200, {"knobs": self.owner.knobs.to_json()})
            return
        if path == "/_control/configure":
            body = _parse_object(raw)
            if body is None:
                self._send_json(400, _error_body("Body must be a JSON object.", 400))
                return
            try:
                knobs = self.owner.configure(**body)
            except (TypeError, ValueError) as exc:
                self._send_json(400, _error_body(str(exc), 400))
                return
            self._send_json(200, {"knobs": knobs.to_json()})
            return
        self._send_json(404, _error_body(f"Invalid URL (POST {path})", 404))

    # -- chat completions -----------------------------------------------------------

    def _chat_completions(self, record: RequestRecord, body: dict[str, Any] | None) -> None:
        if body is None:
            self._send_json(
                400,
                _error_body("We could not parse the JSON body of your request.", 400),
                record,
            )
            return
        if not _messages(body):
            self._send_json(
                400,
                _error_body("'messages' must be a non-empty array of objects.", 400, "messages"),
                record,
            )
            return
        self.owner._update(record, stream=body.get("stream") is True)
        knobs, fail = self.owner._admit()
        model = str(body.get("model") or "gpt-4o-mini")
        if fail and knobs.status is not None:
            extra: dict[str, str] = {}
            if knobs.status == 429 and knobs.retry_after is not None:
                extra["retry-after"] = f"{knobs.retry_after:g}"
                extra["retry-after-ms"] = str(round(knobs.retry_after * 1000))
            self._send_error(knobs.status, record, model=model, extra_headers=extra)
            return

        tokens, finish_reason = _plan_reply(knobs, body)
        prompt_tokens = _prompt_tokens(body)
        stream_options = body.get("stream_options")
        reply = _Reply(
            tokens=tokens,
            finish_reason=finish_reason,
            meta={
                "id": f"chatcmpl-test{next(self._ids)}",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_test",
            },
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            },
            include_usage=isinstance(stream_options, dict)
            and bool(stream_options.get("include_usage")),
        )
        self.owner._update(record, planned_tokens=len(tokens))
        if record.stream:
            self._stream(record, knobs, reply)
        else:
            self._complete(record, knobs, reply)

    def _complete(self, record: RequestRecord, knobs: Knobs, reply: _Reply) -> None:
        if knobs.rate > 0 and reply.tokens:
            self._wait_until(time.monotonic() + len(reply.tokens) / knobs.rate)
        text = "".join(reply.tokens)
        payload = {
            **reply.meta,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": reply.usage,
            "service_tier": "default",
        }
        self.owner._update(
            record,
            tokens_sent=len(reply.tokens),
            text_parts=[text],
            token_times=[time.monotonic()] * len(reply.tokens),
        )
        self._mark_completed(record, lambda: self._send_json(200, payload, record))

    def _mark_completed(self, record: RequestRecord, final_write: Callable[[], None]) -> None:
        """Mark *record* completed, then do the write that completes it (undo on failure)."""
        self.owner._update(record, completed=True)
        try:
            final_write()
        except (_ClientGoneError, _StoppingError):
            self.owner._update(record, completed=False)
            raise

    def _stream(self, record: RequestRecord, knobs: Knobs, reply: _Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{reply.meta['id']}")
        self._end_headers(record, 200)

        tokens = reply.tokens
        self._write_event(reply.chunk({"role": "assistant", "content": "", "refusal": None}))
        interval = 1.0 / knobs.rate if knobs.rate > 0 else 0.0
        next_at = time.monotonic()
        for index in range(len(tokens) + 1):
            if index == knobs.malformed_after:
                self._write_chunk(_MALFORMED_EVENT)
            if index == knobs.stall_after:
                self._wait_until(time.monotonic() + knobs.stall_seconds)
                next_at = max(next_at, time.monotonic())
            if index == knobs.drop_after:
                self._drop(record)
                return
            if index == len(tokens):
                break
            self._wait_until(next_at)
            self._write_event(reply.chunk({"content": tokens[index]}))
            self.owner._token_sent(record, tokens[index])
            next_at += interval

        tail = [reply.chunk({}, reply.finish_reason)]
        if reply.include_usage:
            tail.append({**reply.meta, "object": "chat.completion.chunk", "choices": []})
            tail[-1]["usage"] = reply.usage
        data = b"".join(f"data: {_dumps(event)}\n\n".encode() for event in tail)
        # One write for the tail, [DONE] and the terminating chunk: a client that closes
        # right after [DONE] cannot make a later write fail and look like an interruption.
        # The record is marked first so it is already final when the client sees [DONE].
        self._mark_completed(
            record, lambda: self._write_chunk(data + b"data: [DONE]\n\n", last=True)
        )

    def _drop(self, record: RequestRecord) -> None:
        self.owner._update(record, dropped=True, error=f"dropped after {record.tokens_sent} tokens")
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- low-level I/O --------------------------------------------------------------

    def _new_record(self, body: dict[str, Any] | None) -> RequestRecord:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            if name.lower() not in _SECRET_HEADERS:
                headers[name.lower()] = value
        auth = self.headers.get("Authorization")
        record = RequestRecord(
            method=self.command,
            path=self.path.split("?", 1)[0],
            headers=headers,
            auth_present=auth is not None,
            auth_last4=auth[-4:] if auth is not None else None,
            body=body,
        )
        self.owner._add_record(record)
        return record

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        return self.rfile.read(int(length))

    def _end_headers(self, record: RequestRecord | None, status: int) -> None:
        if record is not None:
            self.owner._update(record, status=status)
        try:
            self.end_headers()
        except OSError as exc:
            raise self._gone() from exc

    def _send_json(
        self,
        status: int,
        payload: dict[str, Any],
        record: RequestRecord | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        data = _dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_test{next(self._ids)}")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self._end_headers(record, status)
        self._write(data)

    def _send_error(
        self,
        status: int,
        record: RequestRecord,
        *,
        model: str = "gpt-4o-mini",
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        key = "sk-..." + (record.auth_last4 or "")
        body = _error_body(None, status, model=model, key=key)
        record.error = f"HTTP {status}"
        self._send_json(status, body, record, extra_headers)

    def _send_invalid_url(self, record: RequestRecord) -> None:
        message = f"Invalid URL ({self.command} {self.path.split('?', 1)[0]})"
        self._send_json(404, _error_body(message, 404), record)

    def _write_event(self, payload: dict[str, Any]) -> None:
        self._write_chunk(f"data: {_dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes, *, last: bool = False) -> None:
        frame = f"{len(data):X}\r\n".encode() + data + b"\r\n"
        if last:
            frame += b"0\r\n\r\n"
        self._write(frame)

    def _write(self, data: bytes) -> None:
        if self.owner._stopping.is_set():
            raise _StoppingError
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            raise self._gone() from exc

    def _gone(self) -> Exception:
        return _StoppingError() if self.owner._stopping.is_set() else _ClientGoneError()

    def _peer_closed(self, timeout: float) -> bool:
        """Wait up to *timeout* for the socket to become readable; True on EOF/reset."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], timeout)
            if not readable:
                return False
            data = sock.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True
        if data == b"":
            return True
        # The client sent bytes mid-response (unusual); don't spin on them.
        time.sleep(timeout)
        return False

    def _wait_until(self, deadline: float) -> None:
        """Sleep until *deadline*, noticing shutdown and a client that went away."""
        while True:
            if self.owner._stopping.is_set():
                raise _StoppingError
            remaining = deadline - time.monotonic()
            if self._peer_closed(max(0.0, min(remaining, _POLL_SECONDS))):
                raise self._gone()
            if remaining <= 0:
                return


def _dumps(payload: object) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _parse_object(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _error_body(
    message: str | None,
    status: int,
    param: str | None = None,
    *,
    model: str = "gpt-4o-mini",
    key: str = "sk-...",
) -> dict[str, Any]:
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    err_type, code, template = _ERROR_DETAILS.get(
        status, (default_type, None, f"Simulated HTTP {status} error.")
    )
    text = message if message is not None else template.format(model=model, key=key)
    return {"error": {"message": text, "type": err_type, "param": param, "code": code}}


def _plan_reply(knobs: Knobs, body: dict[str, Any]) -> tuple[list[str], str]:
    """Tokens of the reply for *body* under *knobs*, and its finish reason."""
    tokens = tokenize(knobs.text) if knobs.text is not None else generate_reply(knobs.tokens)
    if knobs.echo:
        tokens = tokenize(_quote(_last_user_text(body))) + tokens
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit < len(tokens):
        return tokens[:limit], "length"
    return tokens, "stop"


# --------------------------------------------------------------------------- server


class StreamServer:
    """OpenAI-compatible server on a daemon thread; see the module docstring.

    Args:
        host: Interface to bind (default ``127.0.0.1``).
        port: Port to bind; ``0`` picks a free ephemeral port.
        knobs: Initial knobs; also what :meth:`reset` returns to (default ``Knobs()``).
        models: Model ids listed by ``GET /v1/models``.
        verbose: Log requests and handler errors to stderr.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        knobs: Knobs | None = None,
        *,
        models: Sequence[str] = DEFAULT_MODELS,
        verbose: bool = False,
    ) -> None:
        baseline = dataclasses.replace(knobs) if knobs is not None else Knobs()
        baseline.validate()
        self.host = host
        self.port = port
        self.models: tuple[str, ...] = tuple(models)
        self.verbose = verbose
        self._baseline = baseline
        self._knobs = dataclasses.replace(baseline)
        self._failures_served = 0
        self._records: list[RequestRecord] = []
        self._cond = threading.Condition(threading.RLock())
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving on a daemon thread (idempotent); returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), self)
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name=f"StreamServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and abort open connections (idempotent, never hangs)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._httpd = None
        self._thread = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the server."""
        self.close()

    def serve_until_interrupted(self) -> None:
        """Block the calling thread until Ctrl-C, then close (for the command line)."""
        self.start()
        try:
            while self._httpd is not None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("StreamServer is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, for ``OpenAI(base_url=...)`` / ``ChatOpenAI(base_url=...)``."""
        return self.url + "/v1"

    # -- knobs --------------------------------------------------------------------

    @property
    def knobs(self) -> Knobs:
        """A copy of the current knobs."""
        with self._cond:
            return dataclasses.replace(self._knobs)

    def configure(self, **knobs: Any) -> Knobs:
        """Change some knobs (see :class:`Knobs`) and return the new full set.

        Raises ``TypeError`` for unknown names and ``ValueError`` for bad values; on error
        nothing changes. Setting ``status`` or ``fail_times`` restarts the failure count.
        """
        unknown = set(knobs) - Knobs.names()
        if unknown:
            raise TypeError(f"unknown knobs: {', '.join(sorted(unknown))}")
        with self._cond:
            new = dataclasses.replace(self._knobs, **knobs)
            new.validate()
            self._knobs = new
            if {"status", "fail_times"} & set(knobs):
                self._failures_served = 0
            self._cond.notify_all()
            return dataclasses.replace(new)

    def reset(self) -> None:
        """Restore the initial knobs, forget all requests, restart the failure count."""
        with self._cond:
            self._knobs = dataclasses.replace(self._baseline)
            self._failures_served = 0
            self._records.clear()
            self._cond.notify_all()

    # -- observation ----------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot list of the (live) records of every request so far, oldest first."""
        with self._cond:
            return list(self._records)

    @property
    def completion_requests(self) -> list[RequestRecord]:
        """The records of ``POST /v1/chat/completions`` requests only."""
        with self._cond:
            return [r for r in self._records if r.path == CHAT_COMPLETIONS_PATH]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true; raise ``TimeoutError`` after *timeout* s.

        The predicate is re-evaluated whenever a record or the knobs change (and at
        least every 0.1 s), so tests never need fixed sleeps. It runs with the server's
        (re-entrant) lock held, so it sees a consistent state; keep it quick.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(min(remaining, 0.1))

    def wait_for_tokens(self, n: int, timeout: float = 5.0) -> RequestRecord:
        """Wait until a chat completion has sent at least *n* tokens; return its record."""
        found: list[RequestRecord] = []

        def ready() -> bool:
            found[:] = [r for r in self.completion_requests if r.tokens_sent >= n]
            return bool(found)

        self.wait_for(ready, timeout)
        return found[-1]

    def wait_for_finished(self, count: int = 1, timeout: float = 5.0) -> list[RequestRecord]:
        """Wait until *count* chat completion requests have finished; return them all."""

        def ready() -> bool:
            done = [r for r in self.completion_requests if r.finished is not None]
            return len(done) >= count

        self.wait_for(ready, timeout)
        return self.completion_requests

    # -- used by handlers -------------------------------------------------------------

    def _admit(self) -> tuple[Knobs, bool]:
        """Snapshot the knobs and decide (atomically) whether this request must fail."""
        with self._cond:
            knobs = dataclasses.replace(self._knobs)
            fail = knobs.status is not None and (
                knobs.fail_times < 0 or self._failures_served < knobs.fail_times
            )
            if fail:
                self._failures_served += 1
            return knobs, fail

    def _add_record(self, record: RequestRecord) -> None:
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()

    def _update(self, record: RequestRecord, **changes: Any) -> None:
        with self._cond:
            for name, value in changes.items():
                setattr(record, name, value)
            self._cond.notify_all()

    def _token_sent(self, record: RequestRecord, token: str) -> None:
        with self._cond:
            record.tokens_sent += 1
            record.text_parts.append(token)  # joined on demand: += would be quadratic
            record.token_times.append(time.monotonic())
            self._cond.notify_all()

    def _finish_record(self, record: RequestRecord) -> None:
        self._update(record, finished=time.monotonic())

    def _register_connection(self, conn: socket.socket) -> None:
        with self._cond:
            self._connections.add(conn)

    def _unregister_connection(self, conn: socket.socket) -> None:
        with self._cond:
            self._connections.discard(conn)


# --------------------------------------------------------------------------- remote control


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def remote_configure(url: str, timeout: float = 5.0, **knobs: Any) -> dict[str, Any]:
    """``POST /_control/configure`` on a server at *url* (``http://HOST:PORT``).

    Returns the new knobs as a dict; raises ``urllib.error.HTTPError`` (400) on bad knobs.
    """
    result = _post_json(url.rstrip("/") + "/_control/configure", knobs, timeout)
    knob_values: dict[str, Any] = result["knobs"]
    return knob_values


def remote_reset(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """``POST /_control/reset`` on a server at *url*; returns the restored knobs."""
    result = _post_json(url.rstrip("/") + "/_control/reset", {}, timeout)
    knob_values: dict[str, Any] = result["knobs"]
    return knob_values


# --------------------------------------------------------------------------- command line


def main(argv: Iterable[str] | None = None) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM; prints its base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=Knobs.tokens)
    parser.add_argument("--rate", type=float, default=Knobs.rate, help="tokens/s, 0 = max")
    parser.add_argument("--text", default=None, help="exact reply text")
    parser.add_argument("--echo", action="store_true", help="quote the last user message")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(None if argv is None else list(argv))
    knobs = Knobs(tokens=args.tokens, rate=args.rate, text=args.text, echo=args.echo)
    try:
        knobs.validate()
    except ValueError as exc:
        parser.error(str(exc))
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started in the background (where
    # shells make SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    server = StreamServer(args.host, args.port, knobs, verbose=args.verbose).start()
    print(server.base_url, flush=True)
    server.serve_until_interrupted()
    return 0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
