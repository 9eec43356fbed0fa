"""What the server saw and did for each request."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any


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
        reasoning_sent: Reasoning tokens written before the answer (knob ``reasoning``;
            not counted in ``tokens_sent``).
        tool_calls_sent: The tool calls sent so far (knob ``tool_calls``), each
            ``{"id", "name", "arguments"}``, the arguments as far as they were sent.
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
    reasoning_sent: int = 0
    tool_calls_sent: list[dict[str, str]] = field(default_factory=list)
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
