"""The LangChain callback handler that feeds tokens to whoever is listening."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from ipy_stream.channels import ChunkReader, Pieces, ToolCallDelta

__all__ = ["StopRequested", "TokenHandler", "Usage"]

Usage = dict[str, int]


class StopRequested(BaseException):
    """Raised inside the stream when a Stop button (or an interrupt) asked it to end.

    A BaseException, like KeyboardInterrupt: LangChain logs every Exception a callback
    raises as an error, and a stop is not one.
    """


def _finish_reason_of(response: LLMResult) -> str | None:
    for generations in response.generations:
        for generation in generations:
            info = generation.generation_info or {}
            message = getattr(generation, "message", None)
            metadata = getattr(message, "response_metadata", None) or {}
            reason = info.get("finish_reason") or metadata.get("finish_reason")
            if isinstance(reason, str):
                return reason
            # The Responses API says "incomplete" instead, and why.
            incomplete = metadata.get("incomplete_details") or {}
            if isinstance(incomplete, dict) and incomplete.get("reason") == "max_output_tokens":
                return "length"
    return None


def _usage_of(response: LLMResult) -> Usage | None:
    """Prompt and completion tokens, and ``cached_tokens`` (the part of the prompt the
    server read from its cache, priced lower) when the server says."""
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                details = usage.get("input_token_details") or {}
                return _counts(
                    usage.get("input_tokens"), usage.get("output_tokens"), details.get("cache_read")
                )
    token_usage = (response.llm_output or {}).get("token_usage")
    if isinstance(token_usage, dict) and token_usage:
        details = token_usage.get("prompt_tokens_details") or {}
        return _counts(
            token_usage.get("prompt_tokens"),
            token_usage.get("completion_tokens"),
            details.get("cached_tokens") if isinstance(details, dict) else None,
        )
    return None


def _counts(prompt: Any, completion: Any, cached: Any) -> Usage:
    usage = {"prompt_tokens": int(prompt or 0), "completion_tokens": int(completion or 0)}
    if isinstance(cached, int) and cached > 0:
        usage["cached_tokens"] = cached
    return usage


class TokenHandler(BaseCallbackHandler):
    """Passes every piece any LLM in the chain streams to the listeners: answer text to
    ``on_token``, thinking to ``on_reasoning``, tool-call pieces to ``on_tool_call``
    (see :mod:`ipy_stream.channels` for where each comes from).

    It is attached per request through the run config, so the user's model object
    is never changed. It runs inline and re-raises its own errors, so a bug in the
    view is not silently logged away.
    """

    raise_error = True
    run_inline = True

    def __init__(
        self,
        on_token: Callable[[str], None],
        on_usage: Callable[[Usage], None] | None = None,
        on_finish_reason: Callable[[str], None] | None = None,
        on_reasoning: Callable[[str], None] | None = None,
        on_tool_call: Callable[[ToolCallDelta], None] | None = None,
    ) -> None:
        self._on_token = on_token
        self._on_usage = on_usage
        self._on_finish_reason = on_finish_reason
        self._on_reasoning = on_reasoning
        self._on_tool_call = on_tool_call
        self._readers: dict[UUID | None, ChunkReader] = {}

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        """A model in the chain starts: read its stream from a clean state."""
        self._readers[kwargs.get("run_id")] = ChunkReader()

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        """A completion model in the chain starts."""
        self._readers[kwargs.get("run_id")] = ChunkReader()

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        """Forward the token's pieces (empty keep-alive tokens are dropped)."""
        run_id = kwargs.get("run_id")
        reader = self._readers.get(run_id)
        if reader is None:
            reader = self._readers[run_id] = ChunkReader()
        self._emit(reader.feed(token, chunk))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        """Pass on what a reader still held (a partial tag is real text)."""
        with suppress(StopRequested):  # the stream is ending anyway
            self._end(kwargs.get("run_id"))

    def _end(self, run_id: UUID | None) -> None:
        reader = self._readers.pop(run_id, None)
        if reader is not None:
            self._emit(reader.end())

    def _emit(self, pieces: Pieces) -> None:
        if pieces.reasoning and self._on_reasoning is not None:
            self._on_reasoning(pieces.reasoning)
        if pieces.text:
            self._on_token(pieces.text)
        if self._on_tool_call is not None:
            for delta in pieces.tool_calls:
                self._on_tool_call(delta)

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Report token usage and why generation stopped, when the provider says."""
        self._end(kwargs.get("run_id"))
        if self._on_usage is not None:
            usage = _usage_of(response)
            if usage:
                self._on_usage(usage)
        if self._on_finish_reason is not None:
            reason = _finish_reason_of(response)
            if reason:
                self._on_finish_reason(reason)
