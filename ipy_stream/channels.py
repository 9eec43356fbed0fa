"""Split what a chat model streams into answer text, reasoning and tool-call pieces.

A LangChain callback handler gets ``on_llm_new_token(token, chunk=...)`` once per streamed
piece. What is in it depends on the provider integration (all verified against
langchain-core 1.8 and the integrations' sources):

* ``chunk.message.content`` is a string (OpenAI Chat Completions, DeepSeek, Ollama, Groq,
  OpenRouter, raw servers) or a list of blocks and strings: ``{"type": "text", "text"}``
  (Anthropic, the OpenAI Responses API, Gemini 3), ``{"type": "reasoning", "reasoning"}``
  (standard v1 blocks; ``output_version="v1"``), ``{"type": "reasoning", "summary":
  [{"type": "summary_text", "text"}]}`` (Responses API, default ``"responses/v1"``),
  ``{"type": "thinking", "thinking"}`` (Anthropic, Gemini), ``{"type":
  "reasoning_content", "reasoning_content": {"text"}}`` (Bedrock Converse), bare strings
  (Gemini), and blocks that carry neither (tool use, signatures, citations).
* ``chunk.message.additional_kwargs["reasoning_content"]`` (DeepSeek, Ollama, Groq,
  OpenRouter, xAI) or ``additional_kwargs["reasoning"]``: a string, or with the Responses
  API and ``output_version="v0"`` a dict holding a ``summary`` list.
* ``chunk.message.tool_call_chunks``: dicts with ``index``, ``id``, ``name``, ``args``, read by
  :mod:`ipy_stream.toolcalls` (``index`` is ``None`` where a provider sends each call whole).
* The ``token`` argument is ``chunk.message.content`` (a string *or a list*) when LangChain
  drives the stream, or the chunk's plain text when an integration calls back itself, so it
  is only read when there is no chunk.

``message.content_blocks`` is not used as the primary source: it drops bare strings in
Anthropic-tagged lists, ignores ``reasoning_content`` on chunks tagged ``"openai"`` and
leaves ``thinking`` blocks untranslated when no provider is tagged. It is consulted only for
block types this module does not know, so a translator an integration registers still
yields reasoning.

Servers that do not separate reasoning (DeepSeek-R1 or Qwen3 served raw) put it in the text
as a leading ``<think>...</think>``; the reader takes that out too, even when the tags are
split across tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_core.messages import BaseMessage

from ipy_stream.think import CLOSE_TAG, OPEN_TAG, ThinkSplitter
from ipy_stream.toolcalls import ToolCallDelta, ToolCallReader

__all__ = ["CLOSE_TAG", "OPEN_TAG", "ChunkReader", "Pieces", "ToolCallDelta"]


# Block types whose text is reasoning.
_REASONING_TYPES: Final = frozenset({"reasoning", "thinking", "reasoning_content"})
# Block types known to carry neither answer text nor reasoning text.
_INERT_TYPES: Final = frozenset(
    {
        "tool_use",
        "input_json_delta",
        "function_call",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "redacted_thinking",
        "refusal",
        "image",
        "image_url",
        "audio",
        "video",
        "file",
        "text-plain",
        "executable_code",
        "code_execution_result",
        "compaction",
    }
)
_TRANSLATION_ERRORS: Final = (
    AttributeError,
    LookupError,
    NotImplementedError,
    TypeError,
    ValueError,
)


@dataclass(frozen=True)
class Pieces:
    """What one streamed token adds to each channel."""

    text: str = ""
    """Answer text."""
    reasoning: str = ""
    """Thinking text."""
    tool_calls: tuple[ToolCallDelta, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.text or self.reasoning or self.tool_calls)


_NOTHING: Final = Pieces()


@dataclass
class _Split:
    """Text and reasoning found in one message chunk."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    has_reasoning_block: bool = False
    has_unknown_block: bool = False
    opens_part: bool = False
    """A part of the reasoning opens here (empty text at its start): after earlier
    thinking, its text is a new paragraph."""


def _summary_texts(summary: object) -> Iterable[str]:
    if isinstance(summary, list):
        for part in summary:
            if isinstance(part, Mapping) and isinstance(text := part.get("text"), str):
                yield text


def _opens_summary_part(summary: object) -> bool:
    # The Responses API streams a summary in parts; LangChain marks the start of each
    # with an empty text at the part's index, then streams its text at the same index.
    return isinstance(summary, list) and any(
        isinstance(part, Mapping) and part.get("text") == "" and isinstance(part.get("index"), int)
        for part in summary
    )


def _read_block(block: Mapping[str, Any], split: _Split, *, nested: bool = False) -> None:
    kind = block.get("type")
    if kind == "text":
        if isinstance(text := block.get("text"), str):
            split.text.append(text)
    elif kind in _REASONING_TYPES:
        split.has_reasoning_block = True
        value = block.get(kind)
        if isinstance(value, Mapping):  # Bedrock Converse: {"reasoning_content": {"text"}}
            value = value.get("text")
        if isinstance(value, str):
            split.reasoning.append(value)
            split.opens_part |= value == ""  # output_version="v1", Anthropic
        else:  # Responses API: {"type": "reasoning", "summary": [{"text"}]}
            split.reasoning.extend(_summary_texts(block.get("summary")))
            split.opens_part |= _opens_summary_part(block.get("summary"))
    elif kind == "non_standard" and not nested and isinstance(value := block.get("value"), Mapping):
        _read_block(value, split, nested=True)
    elif kind not in _INERT_TYPES:
        split.has_unknown_block = True


def _read_content(content: object, split: _Split) -> None:
    if isinstance(content, str):
        split.text.append(content)
    elif isinstance(content, list):
        for item in content:
            if isinstance(item, str):
                split.text.append(item)
            elif isinstance(item, Mapping):
                _read_block(item, split)


def _kwargs_reasoning(extra: Mapping[str, Any]) -> Iterable[str]:
    # Some servers send the same text under both keys; read one.
    value = extra.get("reasoning_content")
    if value is None:
        value = extra.get("reasoning")
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):  # Responses API, output_version="v0"
        yield from _summary_texts(value.get("summary"))


def _translated_reasoning(message: BaseMessage) -> Iterable[str]:
    try:
        blocks = message.content_blocks
    except _TRANSLATION_ERRORS:
        return
    for block in blocks:
        if block.get("type") == "reasoning" and isinstance(text := block.get("reasoning"), str):
            yield text


def _read_message(message: BaseMessage) -> _Split:
    split = _Split()
    _read_content(message.content, split)
    if not split.has_reasoning_block:
        extra = message.additional_kwargs
        if isinstance(extra, Mapping):
            split.reasoning.extend(_kwargs_reasoning(extra))
            if isinstance(summarized := extra.get("reasoning"), Mapping):  # output_version="v0"
                split.opens_part = _opens_summary_part(summarized.get("summary"))
    if split.has_unknown_block and not (split.has_reasoning_block or split.reasoning):
        split.reasoning.extend(_translated_reasoning(message))
    return split


def _message_of(chunk: object) -> BaseMessage | None:
    message = getattr(chunk, "message", None)
    if isinstance(message, BaseMessage):
        return message
    return chunk if isinstance(chunk, BaseMessage) else None


class ChunkReader:
    """Splits one stream (one LLM run) into answer text, reasoning and tool-call pieces.

    Create one per run, call :meth:`feed` with every ``on_llm_new_token(token, chunk=...)``
    and :meth:`end` when the run ends or fails: a possible partial ``<think>`` tag is held
    back until the next token settles it, and ``end`` releases it. After ``end`` the
    reader starts over as if new.
    """

    def __init__(self) -> None:
        self._think = ThinkSplitter()
        self._calls = ToolCallReader()
        self._thought = False  # some thinking was passed on
        self._paragraph = False  # the next thinking starts a new part of it

    def feed(self, token: object, chunk: object = None) -> Pieces:
        """Split one streamed token; ``chunk`` is the callback's ``chunk`` argument."""
        message = _message_of(chunk)
        tool_calls: tuple[ToolCallDelta, ...] = ()
        if message is not None:
            split = _read_message(message)
            tool_calls = self._calls.read(getattr(message, "tool_call_chunks", None))
        else:
            split = _Split()
            text = getattr(chunk, "text", None) if chunk is not None else None
            # A non-chat GenerationChunk knows its text; otherwise the token is all there is.
            _read_content(text if isinstance(text, str) else token, split)
        answer, thought = self._think.feed("".join(split.text))
        reasoning = "".join(split.reasoning) + thought
        self._paragraph |= split.opens_part and self._thought
        if reasoning:
            if self._paragraph:
                reasoning, self._paragraph = "\n\n" + reasoning, False
            self._thought = True
        if not (answer or reasoning or tool_calls):
            return _NOTHING
        return Pieces(text=answer, reasoning=reasoning, tool_calls=tool_calls)

    def end(self) -> Pieces:
        """Release whatever is held back and start over."""
        answer, reasoning = self._think.end()
        self._calls = ToolCallReader()
        self._thought = self._paragraph = False
        if not (answer or reasoning):
            return _NOTHING
        return Pieces(text=answer, reasoning=reasoning)
