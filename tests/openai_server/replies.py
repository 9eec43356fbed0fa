"""The server's replies: the tokenizer, the generated Markdown reply, and what a request's
messages ask for."""

from __future__ import annotations

import itertools
import re
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
    """The message objects of a chat completion request body."""
    raw = body.get("messages")
    if not isinstance(raw, list):
        return []
    return [m for m in raw if isinstance(m, dict)]


def first_image_part(body: dict[str, Any]) -> str | None:
    """Where the first image part of the request's messages is, as OpenAI names it in
    errors (``messages.[0].content.[1].type``), or None when there is none."""
    for index, message in enumerate(chat_messages(body)):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for position, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "image_url":
                return f"messages.[{index}].content.[{position}].type"
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
    """The limit on generated tokens that *body* sets, read as knob ``limit_param`` says."""
    if knobs.limit_param == "any":
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
    else:
        limit = body.get(knobs.limit_param)
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        return limit
    return None


def plan_output(knobs: Knobs, body: dict[str, Any]) -> tuple[list[str], list[str], str]:
    """Reasoning tokens and answer tokens for *body* under *knobs*, and the finish reason.

    The limit covers both, thinking first: a small limit can leave no answer at all.
    """
    reasoning = tokenize(knobs.reasoning) if knobs.reasoning is not None else []
    tokens = tokenize(knobs.text) if knobs.text is not None else generate_reply(knobs.tokens)
    if knobs.echo:
        tokens = tokenize(_quote(_last_user_text(body))) + tokens
    limit = answer_limit(knobs, body)
    if limit is not None and limit < len(reasoning) + len(tokens):
        return reasoning[:limit], tokens[: max(0, limit - len(reasoning))], "length"
    return reasoning, tokens, "stop"


def plan_reply(knobs: Knobs, body: dict[str, Any]) -> tuple[list[str], str]:
    """Tokens of the reply (the answer) for *body* under *knobs*, and its finish reason."""
    _, tokens, finish_reason = plan_output(knobs, body)
    return tokens, finish_reason
