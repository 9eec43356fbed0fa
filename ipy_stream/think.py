"""Take a leading ``<think>…</think>`` out of an answer streamed token by token.

Servers that do not separate a model's thinking (DeepSeek-R1 or Qwen3 served raw) put it
at the start of the text. The tags may be cut anywhere between tokens, so a possible
partial tag at the end of a token is held back until the next one decides. Only a
``<think>`` at the very start (after whitespace) counts; a later one is ordinary text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

__all__ = ["CLOSE_TAG", "OPEN_TAG", "ThinkSplitter"]

OPEN_TAG: Final = "<think>"
CLOSE_TAG: Final = "</think>"


class _Where(Enum):
    START = auto()  # no answer text decided yet: may still open with <think>
    THINK = auto()  # inside the leading <think>
    AFTER = auto()  # right after </think>: newlines are dropped
    TEXT = auto()  # ordinary answer text


def _held_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that could be the start of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


@dataclass
class ThinkSplitter:
    """Takes a leading ``<think>...</think>`` out of the answer text, token by token."""

    _where: _Where = _Where.START
    _held: str = ""

    def feed(self, text: str) -> tuple[str, str]:
        """Return the (answer, reasoning) that ``text`` settles."""
        answer: list[str] = []
        reasoning: list[str] = []
        rest = self._held + text
        self._held = ""
        while rest:
            if self._where is _Where.START:
                stripped = rest.lstrip()
                if stripped.startswith(OPEN_TAG):
                    self._where = _Where.THINK
                    rest = stripped[len(OPEN_TAG) :]
                elif OPEN_TAG.startswith(stripped):
                    # Only whitespace, or whitespace and part of "<think>": wait and see.
                    self._held = rest
                    rest = ""
                else:
                    self._where = _Where.TEXT
            elif self._where is _Where.THINK:
                end = rest.find(CLOSE_TAG)
                if end >= 0:
                    reasoning.append(rest[:end])
                    self._where = _Where.AFTER
                    rest = rest[end + len(CLOSE_TAG) :]
                else:
                    keep = _held_suffix(rest, CLOSE_TAG)
                    reasoning.append(rest[: len(rest) - keep])
                    self._held = rest[len(rest) - keep :]
                    rest = ""
            elif self._where is _Where.AFTER:
                rest = rest.lstrip("\r\n")
                if rest:
                    self._where = _Where.TEXT
            else:
                answer.append(rest)
                rest = ""
        return "".join(answer), "".join(reasoning)

    def end(self) -> tuple[str, str]:
        """Release what is held back and start over."""
        held, where = self._held, self._where
        self._held, self._where = "", _Where.START
        if where is _Where.THINK:
            return "", held
        return held, ""
