"""How a stream ended, and the one-line summary shown under every answer.

Plain data only: the runner fills it, the view and the magic read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ipy_stream.cost import format_cost
from ipy_stream.errors import clause

__all__ = ["Outcome", "Status", "ToolCall", "footer_text"]

Status = Literal["streaming", "done", "failed", "interrupted"]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model streamed: which tool, and its arguments (JSON text)."""

    name: str
    arguments: str
    id: str | None = None


@dataclass
class Outcome:
    """How a stream ended, with the whole text received."""

    text: str
    status: Status
    message: str = ""
    tokens: int = 0
    seconds: float = 0.0
    first_token_seconds: float | None = None
    usage: dict[str, int] | None = None
    finish_reason: str | None = None
    """Why the model stopped, when it says: "stop", or "length" at the token limit."""
    reasoning: str = ""
    """What the model thought before (or while) answering, kept apart from the answer."""
    reasoning_tokens: int = 0
    tool_calls: tuple[ToolCall, ...] = ()
    usage_missing: bool = False
    """The server should have reported token usage and did not (the count is ours)."""
    cost: float | None = None
    """Estimated US dollars for the reported usage, when the price table knows both the
    server and the model (see :mod:`ipy_stream.cost`); None otherwise."""

    @property
    def tokens_per_second(self) -> float | None:
        """Generation rate after the first token, when it can be measured."""
        if self.first_token_seconds is None or self.tokens < 2:
            return None
        span = self.seconds - self.first_token_seconds
        return (self.tokens - 1) / span if span > 0 else None


_STATUS_WORDS = {
    "streaming": "streaming…",
    "done": "done",
    "failed": "failed",
    "interrupted": "interrupted (partial answer)",
}


def footer_text(label: str, outcome: Outcome, *, with_message: bool = True) -> str:
    """``model · status · N tokens · first token 0.31 s · 42 tok/s · 3.1 s``.

    ``with_message=False`` leaves out a failure's message, for when the cell shows it
    on its own line already.
    """
    status = _STATUS_WORDS[outcome.status]
    if outcome.status == "failed" and clause(outcome.message) and with_message:
        # The parts are joined with " · ": a message's final full stop would end up
        # as "failed: Bad gateway. · 0 tokens".
        status = f"failed: {clause(outcome.message)}"
    elif outcome.status == "done" and outcome.finish_reason == "length":
        status = "done, cut short at the token limit"
    parts = [label, status]
    if outcome.usage:
        prompt = outcome.usage.get("prompt_tokens", 0)
        completion = outcome.usage.get("completion_tokens", 0)
        parts.append(f"{prompt} prompt + {completion} completion tokens")
    else:
        count = f"{outcome.tokens} token{'s' if outcome.tokens != 1 else ''}"
        if outcome.usage_missing:
            count += " (counted, not reported)"
        parts.append(count)
    if outcome.cost is not None:
        parts.append(format_cost(outcome.cost))
    if outcome.reasoning_tokens:
        parts.append(f"thought {outcome.reasoning_tokens} tokens")
    if outcome.tool_calls:
        names = ", ".join(call.name or "?" for call in outcome.tool_calls)
        parts.append(f"tool call{'s' if len(outcome.tool_calls) > 1 else ''}: {names}")
    if outcome.first_token_seconds is not None:
        parts.append(f"first token {outcome.first_token_seconds:.2f} s")
    rate = outcome.tokens_per_second
    if rate is not None:
        parts.append(f"{rate:.0f} tok/s")
    parts.append(f"{outcome.seconds:.1f} s")
    return " · ".join(parts)
