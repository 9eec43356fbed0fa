"""What the live view has sent and has still to send: the messages of its protocol.

:class:`~ipy_stream.live.LiveMarkdown` owns the threads, the locks and the synced
traits; the two outboxes here own the bookkeeping and build each message. They are
plain objects, not thread-safe on their own: the widget calls them under its locks.

The answer (:class:`TextOutbox`) goes out in ``append`` messages, each carrying only
the characters after what was sent::

    {"type": "append", "seq": n, "epoch": e, "offset": <chars before>,
     "text": <new chars>, "footer": <progress>}

so the traffic for an answer of N characters is about N, whatever the token rate.
Offsets count code points (Python ``str`` indices); the front end counts the same
way. ``epoch`` counts the times the text was replaced (a message with
``"reset": true`` and the whole new text): within one epoch the text only grows, so
a front end's text is right as far as it goes when its epoch is the kernel's, and an
offset and a length are all it needs to compare. A front end that missed messages
asks ``{"type": "resync", "have": k, "epoch": e}`` and gets ``text[k:]``
(``"resync": true``) or, when ``e`` is not the current epoch or ``k`` is past the
end, the whole text as a reset.

The model's thinking (:class:`ThoughtOutbox`) is kept apart: it never enters the
answer, its offsets or its epochs. It only grows, so it needs no epochs or resync::

    {"type": "thinking", "offset": <code points before>, "text": <new chars>,
     "tokens": <pieces so far>, "seconds": <from the first piece to the last>}
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

__all__ = ["TextOutbox", "ThoughtOutbox", "ToolOutbox", "clean"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` that UTF-8 can carry: each (lone) surrogate becomes one U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _is_count(value: object) -> TypeGuard[int]:
    """A non-negative int from JSON (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class TextOutbox:
    """The answer: pieces buffered since the last send, and the text sent so far."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.appends = 0  # pieces added so far
        self._parts: list[str] = []  # the text sent so far
        self.sent = 0  # its length in code points
        self.seq = 0  # of the last message
        self.epoch = 0  # bumped by each reset: the text of one epoch only grows

    def add(self, text: str) -> None:
        self.pending.append(text)
        self.appends += 1

    def buffered(self) -> str:
        """The text added since the last :meth:`take`."""
        return clean("".join(self.pending))

    def take(self) -> str:
        """The text added since the last take, which is no longer pending."""
        new = self.buffered()
        self.pending.clear()
        return new

    def text(self) -> str:
        """Everything sent so far, as one string (kept as one part from now on)."""
        text = "".join(self._parts)
        self._parts = [text] if text else []
        return text

    def message(
        self, new: str, *, reset: bool = False, footer: str | None = None
    ) -> dict[str, Any]:
        """The message that sends ``new`` after what was sent (with ``reset``, instead)."""
        if reset:
            self._parts, self.sent = [], 0
            self.epoch += 1
        self.seq += 1
        message: dict[str, Any] = {
            "type": "append",
            "seq": self.seq,
            "epoch": self.epoch,
            "offset": self.sent,
            "text": new,
        }
        if reset:
            message["reset"] = True
        if footer is not None:
            message["footer"] = footer
        self._parts.append(new)
        self.sent += len(new)
        return message

    def ending(self, wanted: str) -> tuple[str, bool]:
        """What to send so the front end ends with ``wanted``: (text, whether a reset)."""
        wanted = clean(wanted)
        sent = self.text()
        if wanted.startswith(sent):
            return wanted[len(sent) :], False
        return wanted, True

    def resync(self, request: object) -> dict[str, Any] | None:
        """The answer to a front end's resync request, or None for anything else."""
        if not isinstance(request, dict) or request.get("type") != "resync":
            return None
        have = request.get("have")
        epoch = request.get("epoch", self.epoch)
        if not (_is_count(have) and _is_count(epoch)):
            return None
        text = self.text()
        whole = epoch != self.epoch or have > len(text)
        offset = 0 if whole else have
        self.seq += 1
        message: dict[str, Any] = {
            "type": "append",
            "seq": self.seq,
            "epoch": self.epoch,
            "offset": offset,
            "text": text[offset:],
            "resync": True,
        }
        if whole:
            message["reset"] = True
        return message


class ThoughtOutbox:
    """The thinking: pieces buffered, what was sent, and what the trait holds."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self._count = 0  # pieces added so far
        self._span: tuple[float, float] | None = None  # when the first and last came
        self._parts: list[str] = []  # the thinking sent so far
        self._sent = 0  # its length in code points
        self._synced = 0  # the length the `thinking` trait holds
        self.stats = (0, 0.0)  # tokens and seconds of what was taken

    def add(self, text: str, now: float) -> None:
        self.pending.append(text)
        self._count += 1
        first = now if self._span is None else self._span[0]
        self._span = (first, now)

    def take(self) -> str:
        """The thinking added since the last take; updates :attr:`stats`."""
        thought = clean("".join(self.pending))
        self.pending.clear()
        if thought:
            first, last = self._span or (0.0, 0.0)
            self.stats = (self._count, round(last - first, 1))
        return thought

    def message(self, new: str, *, footer: str | None = None) -> dict[str, Any]:
        """The message that sends ``new`` after the thinking sent so far."""
        tokens, seconds = self.stats
        message: dict[str, Any] = {
            "type": "thinking",
            "offset": self._sent,
            "text": new,
            "tokens": tokens,
            "seconds": seconds,
        }
        if footer is not None:
            message["footer"] = footer
        self._parts.append(new)
        self._sent += len(new)
        return message

    @property
    def unsynced(self) -> bool:
        """Whether thinking was sent that the trait does not hold yet."""
        return self._synced != self._sent

    def sync(self) -> str:
        """All the thinking sent, for the trait (which from now on holds it)."""
        thinking = "".join(self._parts)
        self._parts = [thinking]
        self._synced = self._sent
        return thinking


class ToolOutbox:
    """The tool calls: each call's name and arguments so far, and which changed.

    A tool call is small (a name and a JSON object), so a message carries the whole of
    each call that changed since the last one, and the ``tool_calls`` trait all of them::

        {"type": "tools", "calls": [[<index>, <name>, <arguments so far>], ...]}
    """

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str, str]] = {}
        self._changed: set[int] = set()
        self._unsynced = False

    def add(self, index: int, name: str, arguments: str) -> None:
        self._calls[index] = (clean(name), clean(arguments))
        self._changed.add(index)

    def take(self) -> list[list[Any]]:
        """The calls that changed since the last take, as ``[index, name, arguments]``."""
        changed = [[index, *self._calls[index]] for index in sorted(self._changed)]
        self._changed.clear()
        self._unsynced = self._unsynced or bool(changed)
        return changed

    @staticmethod
    def message(calls: list[list[Any]], *, footer: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "tools", "calls": calls}
        if footer is not None:
            message["footer"] = footer
        return message

    @property
    def unsynced(self) -> bool:
        """Whether calls were sent that the trait does not hold yet."""
        return self._unsynced

    def sync(self) -> list[list[str]]:
        """Every call, in order, for the trait (which from now on holds them)."""
        self._unsynced = False
        return [list(self._calls[index]) for index in sorted(self._calls)]
