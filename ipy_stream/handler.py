"""The LangChain callback handler that feeds tokens to whoever is listening."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

__all__ = ["TokenHandler", "Usage"]

Usage = dict[str, int]


def _text_of(token: Any, chunk: Any) -> str:
    if isinstance(token, str):
        return token
    # Content blocks (lists) from newer providers: the chunk knows its plain text.
    message = getattr(chunk, "message", None)
    text = getattr(message, "text", None) if message is not None else getattr(chunk, "text", None)
    return text if isinstance(text, str) else ""


def _finish_reason_of(response: LLMResult) -> str | None:
    for generations in response.generations:
        for generation in generations:
            info = generation.generation_info or {}
            message = getattr(generation, "message", None)
            metadata = getattr(message, "response_metadata", None) or {}
            reason = info.get("finish_reason") or metadata.get("finish_reason")
            if isinstance(reason, str):
                return reason
    return None


def _usage_of(response: LLMResult) -> Usage | None:
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                return {
                    "prompt_tokens": int(usage.get("input_tokens", 0)),
                    "completion_tokens": int(usage.get("output_tokens", 0)),
                }
    token_usage = (response.llm_output or {}).get("token_usage")
    if isinstance(token_usage, dict) and token_usage:
        return {
            "prompt_tokens": int(token_usage.get("prompt_tokens", 0)),
            "completion_tokens": int(token_usage.get("completion_tokens", 0)),
        }
    return None


class TokenHandler(BaseCallbackHandler):
    """Passes every token any LLM in the chain emits to ``on_token``.

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
    ) -> None:
        self._on_token = on_token
        self._on_usage = on_usage
        self._on_finish_reason = on_finish_reason

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        """Forward the token's text (empty keep-alive tokens are dropped)."""
        text = _text_of(token, chunk)
        if text:
            self._on_token(text)

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Report token usage and why generation stopped, when the provider says."""
        if self._on_usage is not None:
            usage = _usage_of(response)
            if usage:
                self._on_usage(usage)
        if self._on_finish_reason is not None:
            reason = _finish_reason_of(response)
            if reason:
                self._on_finish_reason(reason)
