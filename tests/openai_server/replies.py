"""The server's replies: the tokenizer, the generated Markdown reply, and what a request's
messages ask for."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .knobs import Knobs

_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")


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


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The message objects of a request body: chat completion ``messages``, or the
    Responses API's ``input`` (a string is one user message; ``instructions`` one system
    message before it; items that are not messages, such as function call outputs, are
    left out)."""
    raw = body.get("messages")
    if raw is None and "input" in body:
        return _input_messages(body["input"], body.get("instructions"))
    if not isinstance(raw, list):
        return []
    return [m for m in raw if isinstance(m, dict)]


def _input_messages(raw: object, instructions: object) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        return []
    system = [{"role": "system", "content": instructions}] if isinstance(instructions, str) else []
    return system + [m for m in raw if isinstance(m, dict) and "role" in m]


_IMAGE_PARTS = {
    "image_url": "messages.[{}].content.[{}].type",
    "input_image": "input[{}].content[{}]",
}


def first_image_part(body: dict[str, Any]) -> str | None:
    """Where the first image part of the request's messages is, as OpenAI names it in
    errors (``messages.[0].content.[1].type``; ``input[0].content[1]`` for the Responses
    API), or None when there is none."""
    raw = body.get("messages", body.get("input"))
    for index, message in enumerate(raw if isinstance(raw, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for position, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") in _IMAGE_PARTS:
                return _IMAGE_PARTS[part["type"]].format(index, position)
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(chat_messages(body)):
        if message.get("role") == "user":
            return _message_text(message.get("content"))
    return ""


def _quote(text: str) -> str:
    lines = text.splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines) + "\n\n"


def count_prompt_tokens(body: dict[str, Any]) -> int:
    """The ``usage.prompt_tokens`` reported for *body*."""
    messages = chat_messages(body)
    return sum(len(tokenize(_message_text(m.get("content")))) + 3 for m in messages)


def answer_limit(knobs: Knobs, body: dict[str, Any]) -> int | None:
    """The limit on generated tokens that a chat completion *body* sets, read as knob
    ``limit_param`` says."""
    if knobs.limit_param == "any":
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
    else:
        limit = body.get(knobs.limit_param)
    return valid_limit(limit)


def valid_limit(limit: object) -> int | None:
    """*limit* if it is an int >= 0, else None (no limit)."""
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        return limit
    return None


@dataclass(frozen=True)
class PlannedCall:
    """One tool call of a reply (knob ``tool_calls``)."""

    id: str
    """``call_...``, as OpenAI names tool calls."""
    name: str
    pieces: list[str]
    """The arguments, in the pieces they are streamed in."""

    @property
    def arguments(self) -> str:
        """The arguments sent, whole."""
        return "".join(self.pieces)


@dataclass(frozen=True)
class Plan:
    """What one reply sends: thinking, answer, tool calls, and why it stops."""

    reasoning: list[str]
    tokens: list[str]
    calls: list[PlannedCall]
    finish_reason: str
    """``"stop"``, ``"length"`` (the limit cut it) or ``"tool_calls"``."""

    @property
    def completion_tokens(self) -> int:
        """Generated tokens: thinking, answer and tool-call argument pieces."""
        return len(self.reasoning) + len(self.tokens) + sum(len(c.pieces) for c in self.calls)


def plan(knobs: Knobs, body: dict[str, Any], limit: int | None, call_prefix: str) -> Plan:
    """The reply to *body* under *knobs*, cut at *limit* generated tokens.

    The limit covers thinking first, then the answer, then the tool calls' argument
    pieces: a small limit can leave no answer at all, a call cut by it keeps its partial
    arguments and later calls are not sent. Tool call ids are ``call_<call_prefix>_<n>``.
    """
    reasoning = tokenize(knobs.reasoning) if knobs.reasoning is not None else []
    tokens = tokenize(knobs.text) if knobs.text is not None else generate_reply(knobs.tokens)
    if knobs.echo:
        tokens = tokenize(_quote(_last_user_text(body))) + tokens
    calls = [
        PlannedCall(f"call_{call_prefix}_{n}", name, tokenize(arguments))
        for n, (name, arguments) in enumerate(knobs.tool_calls)
    ]
    full = Plan(reasoning, tokens, calls, "tool_calls" if calls else "stop")
    if limit is None or full.completion_tokens <= limit:
        return full
    left = max(0, limit - len(reasoning) - len(tokens))
    cut: list[PlannedCall] = []
    for call in calls:
        if left <= 0:
            break
        cut.append(PlannedCall(call.id, call.name, call.pieces[:left]))
        left -= len(call.pieces)
    return Plan(reasoning[:limit], tokens[: max(0, limit - len(reasoning))], cut, "length")
