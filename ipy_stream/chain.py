"""Compile a parsed prompt into ``ChatPromptTemplate | model``. No IPython here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from ipy_stream.prompt import Prompt

__all__ = ["build_chain", "rendered_messages"]

_LANGCHAIN_ROLE = {"system": "system", "user": "human", "assistant": "ai"}


def _template(prompt: Prompt) -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [(_LANGCHAIN_ROLE[role], text) for role, text in prompt.messages],
        template_format="f-string",
    )


def build_chain(prompt: Prompt, model: Runnable[Any, Any]) -> Runnable[Any, Any]:
    """The chain the magic streams: the cell's template piped into the model."""
    return _template(prompt) | model


def rendered_messages(prompt: Prompt, inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    """The messages exactly as sent, as ``{"role", "content"}`` dicts."""
    messages = _template(prompt).format_messages(**inputs)
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles.get(m.type, m.type), "content": m.text} for m in messages]
