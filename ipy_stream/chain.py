"""Compile a parsed prompt into ``ChatPromptTemplate | model``. No IPython here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable

from ipy_stream.prompt import Prompt

__all__ = ["HISTORY", "build_chain", "build_template", "message_dicts", "turn_messages"]

HISTORY = "ipy_stream_history"
"""Input name under which earlier chat turns are passed (as messages, never re-templated)."""

_LANGCHAIN_ROLE = {"system": "system", "user": "human", "assistant": "ai"}
_PLAIN_ROLE = {"system": "system", "human": "user", "ai": "assistant"}


def build_template(prompt: Prompt, *, history: bool = False) -> ChatPromptTemplate:
    """The cell's messages as a template; with ``history``, earlier turns go after the
    leading system message and before the cell's own messages."""
    parts: list[Any] = [(_LANGCHAIN_ROLE[role], text) for role, text in prompt.messages]
    if history:
        position = 1 if prompt.messages and prompt.messages[0][0] == "system" else 0
        parts.insert(position, MessagesPlaceholder(HISTORY, optional=True))
    return ChatPromptTemplate.from_messages(parts, template_format="f-string")


def build_chain(template: ChatPromptTemplate, model: Runnable[Any, Any]) -> Runnable[Any, Any]:
    """The chain the magic streams: the cell's template piped into the model."""
    return template | model


def turn_messages(prompt: Prompt, inputs: Mapping[str, Any]) -> list[BaseMessage]:
    """This cell's own messages, filled, without system messages (what a chat keeps)."""
    own = Prompt(
        messages=tuple(m for m in prompt.messages if m[0] != "system"), variables=prompt.variables
    )
    if not own.messages:
        return []
    return build_template(own).format_messages(**inputs)


def message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Messages as ``{"role", "content"}`` dicts (for the run log and history display)."""
    return [{"role": _PLAIN_ROLE.get(m.type, m.type), "content": m.text} for m in messages]
