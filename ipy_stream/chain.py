"""Compile a parsed prompt into ``ChatPromptTemplate | model``. No IPython here.

A message that inserts an image variable becomes a list of parts: the text before it
(ending with the image's label), a LangChain standard image content block, and the
text after it, so the cell's words keep their place around the image.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable

from ipy_stream.context import ImagePart
from ipy_stream.prompt import Prompt

__all__ = [
    "HISTORY",
    "SHOWN",
    "build_chain",
    "build_template",
    "message_dicts",
    "sent_chars",
    "turn_messages",
]

HISTORY = "ipy_stream_history"
"""Input name under which earlier chat turns are passed (as messages, never re-templated)."""

_LANGCHAIN_ROLE = {"system": "system", "user": "human", "assistant": "ai"}
_PLAIN_ROLE = {"system": "system", "human": "user", "ai": "assistant"}


_FORMATTER = string.Formatter()


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _with_images(template: str, images: Mapping[str, ImagePart]) -> str | list[dict[str, Any]]:
    """``template`` as it is, or as text and image parts when it inserts an image."""
    parsed = list(_FORMATTER.parse(template))
    if not any(field in images for _, field, _, _ in parsed):
        return template
    parts: list[dict[str, Any]] = []
    text = ""
    for literal, field, _, _ in parsed:
        text += _escape(literal)
        if field is None:
            continue
        if field in images:
            image = images[field]
            parts.append({"type": "text", "text": text + _escape(image.label)})
            parts.append(dict(image.block))
            text = ""
        else:
            text += "{" + field + "}"
    if text:
        parts.append({"type": "text", "text": text})
    return parts


def build_template(
    prompt: Prompt, *, history: bool = False, images: Mapping[str, ImagePart] | None = None
) -> ChatPromptTemplate:
    """The cell's messages as a template; with ``history``, earlier turns go after the
    leading system message and before the cell's own messages. ``images``: the variables
    sent as images (only user messages may insert them)."""
    parts: list[Any] = [
        (_LANGCHAIN_ROLE[role], _with_images(text, images or {})) for role, text in prompt.messages
    ]
    if history:
        position = 1 if prompt.messages and prompt.messages[0][0] == "system" else 0
        parts.insert(position, MessagesPlaceholder(HISTORY, optional=True))
    return ChatPromptTemplate.from_messages(parts, template_format="f-string")


def build_chain(template: ChatPromptTemplate, model: Runnable[Any, Any]) -> Runnable[Any, Any]:
    """The chain the magic streams: the cell's template piped into the model."""
    return template | model


SHOWN = "ipy_stream_shown"
"""A kept message's ``response_metadata`` key: label -> the table or text it stands for,
so ``%stream history`` shows ``[table: df, 50 of 10,000 rows]``, not the whole table."""


def turn_messages(
    prompt: Prompt,
    inputs: Mapping[str, Any],
    images: Mapping[str, ImagePart] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[BaseMessage]:
    """This cell's own messages, filled, without system messages (what a chat keeps).
    ``labels`` maps each table or shortened value's text to its label."""
    own = Prompt(
        messages=tuple(m for m in prompt.messages if m[0] != "system"), variables=prompt.variables
    )
    if not own.messages:
        return []
    messages = build_template(own, images=images).format_messages(**inputs)
    for message in messages:
        shown = {label: text for text, label in (labels or {}).items() if text in message.text}
        if shown:
            message.response_metadata[SHOWN] = shown
    return messages


def sent_chars(messages: Sequence[BaseMessage]) -> int:
    """Characters the messages send: their text, and each image's base64 data or address."""
    total = 0
    for message in messages:
        if isinstance(message.content, str):
            total += len(message.content)
            continue
        for part in message.content:
            if isinstance(part, str):
                total += len(part)
            elif part.get("type") == "text":
                total += len(str(part.get("text", "")))
            else:
                total += len(str(part.get("base64") or part.get("url") or part))
    return total


def message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Messages as ``{"role", "content"}`` dicts (for the run log and history display):
    the text only, where each image is named by its label, never its data."""
    return [{"role": _PLAIN_ROLE.get(m.type, m.type), "content": m.text} for m in messages]
