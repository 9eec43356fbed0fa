"""A small OpenAI-compatible streaming server for tests and benchmarks.

Stdlib only. It speaks enough of the OpenAI HTTP API for the real ``openai`` client and
``langchain_openai.ChatOpenAI`` to talk to it over real HTTP on 127.0.0.1:

* ``POST /v1/chat/completions`` -- streaming (Server-Sent Events over
  ``Transfer-Encoding: chunked``, one flushed event per token) and non-streaming.
* ``POST /v1/responses`` -- OpenAI's Responses API (what ``ChatOpenAI(...,
  use_responses_api=True)`` calls): its typed events, reasoning summaries, function calls
  and ``max_output_tokens``; streaming and non-streaming.
* ``GET /v1/models`` and ``GET /v1/models/{id}``.
* ``POST /_control/configure`` (JSON object of knobs), ``POST /_control/reset``,
  ``GET /_control/knobs`` and ``GET /_control/requests`` to drive and observe the server
  from another process.

Its behaviour is controlled by :class:`Knobs` (reply size and text, token rate, injected
HTTP errors, dropped / stalled / malformed streams, and what servers people run do
differently: streamed reasoning, which limit field is honoured, no usage chunk, refused
parameters or images; streamed tool calls), and every request is recorded as a
:class:`RequestRecord` so tests can check what the client sent and what happened to the
response (for example that the client closed the connection mid-stream).

In-process use::

    with StreamServer() as server:
        server.configure(tokens=10, rate=0)
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key")
        ...
        record = server.wait_for_tokens(3)

Command line (from the project root)::

    python -m tests.openai_server --port 8765 --tokens 200 --rate 50

Modules: ``replies`` (the tokenizer and the generated reply), ``knobs``, ``records``,
``protocol`` (the OpenAI wire format), ``transport`` (one connection's I/O, pace and
injected faults), ``handler`` (routing, models, chat completions, control),
``responses_api`` (the Responses API), ``server`` (:class:`StreamServer`), ``remote``
(control from another process), ``cli``.
"""

from __future__ import annotations

from .cli import main
from .knobs import Knobs
from .protocol import CHAT_COMPLETIONS_PATH, RESPONSES_PATH
from .records import RequestRecord
from .remote import remote_configure, remote_reset
from .replies import generate_reply, tokenize
from .server import DEFAULT_MODELS, StreamServer

__all__ = [
    "CHAT_COMPLETIONS_PATH",
    "DEFAULT_MODELS",
    "RESPONSES_PATH",
    "Knobs",
    "RequestRecord",
    "StreamServer",
    "generate_reply",
    "main",
    "remote_configure",
    "remote_reset",
    "tokenize",
]
