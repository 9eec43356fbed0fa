"""Streamed tool calls: pieces numbered by call, whatever the provider's numbering.

A model streams each tool call in pieces (``chunk.message.tool_call_chunks``: dicts with
``index``, ``id``, ``name``, ``args``). Providers number calls differently: OpenAI by
``index``, some servers send index 0 for every call and tell calls apart by ``id``, and
Ollama and Gemini send each call whole with no index. :class:`ToolCallReader` turns them
into :class:`ToolCallDelta` pieces numbered 0, 1, ... in the order calls first appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ToolCallDelta", "ToolCallReader"]


@dataclass(frozen=True)
class ToolCallDelta:
    """One streamed piece of a tool call.

    ``index`` says which call the piece belongs to: 0 for the first call of the stream, 1
    for the next, in the order they first appear (providers number calls differently, and
    some not at all). ``id`` is usually only on a call's first piece.
    """

    index: int
    id: str | None
    name: str
    """Name piece ("" if none in this chunk)."""
    arguments: str
    """JSON-arguments piece ("" if none in this chunk)."""


@dataclass
class _CallNumbers:
    """Numbers tool calls 0, 1, ... in the order they first appear.

    Pieces are matched to a call by the provider's index, else by the call id, else they
    continue the previous call. An index that shows up again with a different id is a new
    call.
    """

    _count: int = 0
    _by_index: dict[object, int] = field(default_factory=dict)
    _by_id: dict[str, int] = field(default_factory=dict)
    _id_of: dict[int, str] = field(default_factory=dict)
    _last: int | None = None

    def number(self, index: object, call_id: str | None) -> int:
        number: int | None
        if index is not None:
            number = self._by_index.get(index)
            if (
                number is not None
                and call_id is not None
                and self._id_of.get(number, call_id) != call_id
            ):
                number = None  # the index came back with another call's id
            if number is None and call_id is not None:
                number = self._by_id.get(call_id)
        elif call_id is not None:
            number = self._by_id.get(call_id)
        else:
            number = self._last
        if number is None:
            number = self._count
            self._count += 1
        if index is not None:
            self._by_index[index] = number
        if call_id is not None:
            self._by_id.setdefault(call_id, number)
            self._id_of.setdefault(number, call_id)
        self._last = number
        return number


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class ToolCallReader:
    """Reads the tool-call pieces of one stream."""

    def __init__(self) -> None:
        self._numbers = _CallNumbers()

    def read(self, chunks: object) -> tuple[ToolCallDelta, ...]:
        if not isinstance(chunks, list):
            return ()
        deltas: list[ToolCallDelta] = []
        for piece in chunks:
            if not isinstance(piece, Mapping):
                continue
            call_id = _optional_str(piece.get("id"))
            name = _optional_str(piece.get("name")) or ""
            arguments = _optional_str(piece.get("args")) or ""
            if call_id is None and not name and not arguments:
                continue
            number = self._numbers.number(piece.get("index"), call_id)
            deltas.append(ToolCallDelta(number, call_id, name, arguments))
        return tuple(deltas)
