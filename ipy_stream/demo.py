"""The offline ``demo`` chat model: no key, no network, a deterministic Markdown reply.

It exists so that the quickstart and a first try work anywhere. Every reply says
plainly that it comes from the demo model, and names the tables and images it was
sent (by the labels :mod:`ipy_stream.context` puts before them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

__all__ = ["DEFAULT_DELAY", "DemoChatModel", "demo_reply"]

DEFAULT_DELAY = 0.03
"""Seconds between tokens for ``-m demo``: about 30 tokens a second, easy to follow."""

_TOKEN = re.compile(r"\s*\S+|\s+")
_LABEL = re.compile(r"\[(table|image|array|list|tuple|dict): ([A-Za-z_]\w*), ([^\]\n]+)\]")


def _last_user(messages: list[BaseMessage]) -> tuple[str, int]:
    """The last user message's text, and how many images it carries."""
    for message in reversed(messages):
        if message.type == "human":
            parts = message.content if isinstance(message.content, list) else []
            images = sum(1 for p in parts if isinstance(p, dict) and p.get("type") == "image")
            return message.text, images
    return "", 0


def _received(prompt: str, images: int) -> str:
    """``I was sent a table df (50 of 10,000 rows) and an image fig (640×480).``"""
    named = []
    for kind, name, extent in _LABEL.findall(prompt):
        if kind == "image":
            if images == 0:
                continue
            images -= 1
        article = "an" if kind[0] in "aei" else "a"
        named.append(f"{article} {kind} `{name}` ({extent})")
    if not named:
        return ""
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f"I was sent {listed}. A real model reads them; the demo model only names them.\n\n"


def demo_reply(prompt: str, images: int = 0) -> str:
    """The Markdown the demo model answers to ``prompt`` (deterministic), sent with
    ``images`` images."""
    words = prompt.split()
    first_line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    if len(first_line) > 120:
        first_line = first_line[:119] + "…"
    return (
        "## Demo answer (offline `demo` model)\n\n"
        "This reply comes from **ipy_stream's built-in demo model**: it needs no API key "
        "and sends nothing anywhere, so you can see how `%%stream` works.\n\n"
        f"Your prompt has **{len(words)} words** and starts with:\n\n"
        f"> {first_line}\n\n"
        f"{_received(prompt, images)}"
        "What `%%stream` did with it:\n\n"
        "- filled `{names}` in the cell from your notebook variables,\n"
        "- streamed the answer token by token into this live view,\n"
        "- kept the answer in the notebook, rendered and safe to re-open, and in a variable "
        "with `-o`.\n\n"
        "Math is typeset by the notebook: the mean is $\\bar{x} = \\frac{1}{n}\\sum_i x_i$.\n\n"
        "```python\n"
        "%%stream -m gpt-4o-mini -o answer\n"
        "Summarize {text} in three bullet points.\n"
        "```\n\n"
        "To use a real model, set `OPENAI_API_KEY` (or point `OPENAI_BASE_URL` at a local "
        "OpenAI-compatible server) and pick it with `-m`."
    )


class DemoChatModel(BaseChatModel):
    """An offline chat model that streams :func:`demo_reply` at a readable pace."""

    delay: float = DEFAULT_DELAY
    """Seconds between tokens (0 streams as fast as possible)."""
    max_tokens: int | None = None
    """Stop after this many tokens, as a server does at its limit (``--max-tokens``)."""

    @property
    def _llm_type(self) -> str:
        return "ipy-stream-demo"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = demo_reply(*_last_user(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        pieces = _TOKEN.findall(demo_reply(*_last_user(messages)))
        cut = self.max_tokens is not None and len(pieces) > self.max_tokens
        if cut:
            pieces = pieces[: self.max_tokens]
        for index, piece in enumerate(pieces):
            if self.delay:
                time.sleep(self.delay)
            last = cut and index == len(pieces) - 1
            metadata = {"finish_reason": "length"} if last else {}
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(content=piece, response_metadata=metadata)
            )
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
