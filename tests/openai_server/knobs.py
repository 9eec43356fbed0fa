"""The knobs: what the server does with the next requests (reply, rate, injected faults)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Delta fields servers stream thinking in: ``reasoning_content`` (vLLM, llama.cpp,
DeepSeek) or ``reasoning`` (Ollama, OpenRouter); knob ``reasoning_field``."""

LIMIT_PARAMS = ("any", "max_tokens", "max_completion_tokens")
"""Values of knob ``limit_param``."""


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
        status: HTTP status (400-599) to fail chat completion and response requests
            with, with an OpenAI-style error body ``{"error": {"message", "type", "param",
            "code"}}``.
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
        reasoning: Thinking sent before the answer (split with :func:`tokenize`), one
            token per chunk in the delta field ``reasoning_field``, paced by ``rate``
            (non-streamed replies carry it in that field of the message). It counts in
            ``usage.completion_tokens`` and against the answer limit (thinking first, as
            servers do), but not in a record's ``tokens_sent``; the "after N tokens"
            hooks count answer tokens only. On ``/v1/responses`` it is the reasoning
            summary: one summary part per paragraph (split at blank lines), one
            ``response.reasoning_summary_text.delta`` per token.
        reasoning_field: ``"reasoning_content"`` (vLLM, llama.cpp, DeepSeek) or
            ``"reasoning"`` (Ollama, OpenRouter).
        limit_param: Which request field the server honours as the answer limit:
            ``"max_tokens"`` (like llama.cpp: ``max_completion_tokens`` is ignored and the
            full reply is sent), ``"max_completion_tokens"``, or ``"any"`` (either;
            ``max_completion_tokens`` wins when both are sent). Chat completions only:
            ``/v1/responses`` honours ``max_output_tokens``, the Responses API's limit
            (a cut response ends with ``response.incomplete``).
        usage: ``False`` never sends a usage chunk, even when the request asks with
            ``stream_options.include_usage`` (like servers without ``stream_options``
            support), and ``response.completed`` on ``/v1/responses`` carries
            ``"usage": null``; non-streamed replies still carry ``usage``.
        refuse_params: Request fields the model "does not support": a request that
            contains any of them fails with HTTP 400 and OpenAI's error body
            (``code: "unsupported_parameter"``, ``param``: the first one found, in this
            list's order). Such requests do not count towards ``fail_times``.
        tool_calls: Tool calls the model makes after its answer text, each a ``[name,
            arguments]`` pair (``arguments``: the JSON text, sent as it is). Streamed as
            OpenAI streams them: per call, a first delta with ``index``, ``id``
            (``call_...``), ``type`` and the name (arguments ``""``), then the arguments in
            pieces (split with :func:`tokenize`, paced by ``rate``), with finish reason
            ``"tool_calls"``; non-streamed replies carry ``message.tool_calls``. On
            ``/v1/responses`` each call is a ``function_call`` output item. The pieces
            count in the usage and against the limit (after the thinking and the answer;
            a call cut there keeps its partial arguments, later calls are not sent).
        refuse_images: The model "does not read images": a request whose messages carry
            an image part (``image_url``) fails with HTTP 400 and OpenAI's error body for
            models without vision ("Invalid content type. image_url is only supported by
            certain models."). Such requests do not count towards ``fail_times``.

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
    reasoning: str | None = None
    reasoning_field: str = "reasoning_content"
    limit_param: str = "any"
    usage: bool = True
    refuse_params: list[str] = field(default_factory=list)
    refuse_images: bool = False
    tool_calls: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Each Knobs owns its lists (``dataclasses.replace`` would share them); tuples are
        # accepted too. Anything else is left for ``validate`` to report.
        if isinstance(self.refuse_params, list | tuple):
            self.refuse_params = list(self.refuse_params)
        if isinstance(self.tool_calls, list | tuple):
            self.tool_calls = [
                list(call) if isinstance(call, list | tuple) else call for call in self.tool_calls
            ]

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
        check("reasoning", self.reasoning is None or isinstance(self.reasoning, str), "str or None")
        check(
            "reasoning_field",
            self.reasoning_field in REASONING_FIELDS,
            " or ".join(repr(name) for name in REASONING_FIELDS),
        )
        check(
            "limit_param",
            self.limit_param in LIMIT_PARAMS,
            ", ".join(repr(name) for name in LIMIT_PARAMS),
        )
        check("usage", isinstance(self.usage, bool), "bool")
        check("refuse_images", isinstance(self.refuse_images, bool), "bool")
        check(
            "refuse_params",
            isinstance(self.refuse_params, list)
            and all(isinstance(name, str) and name for name in self.refuse_params),
            "list of non-empty str",
        )
        check(
            "tool_calls",
            isinstance(self.tool_calls, list)
            and all(
                isinstance(call, list)
                and len(call) == 2
                and isinstance(call[0], str)
                and call[0]
                and isinstance(call[1], str)
                for call in self.tool_calls
            ),
            "list of [name, arguments_json] pairs of str, name non-empty",
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
