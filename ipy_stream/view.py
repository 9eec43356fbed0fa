"""Live views of one growing answer: a widget for notebooks, plain text for terminals.

Tokens may arrive thousands of times a second; a frontend must not get a message
for each. A widget view only appends to a buffer; one writer thread sends what is
new at most once per ``interval`` while something changed, and :meth:`finish` always
sends the end. This module knows ipywidgets but not LangChain.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from ipy_stream.outcome import Outcome, footer_text
from ipy_stream.render import AnswerRenderer

__all__ = ["STALL_NOTICE", "QuietTextView", "StdoutView", "View", "WidgetView"]

STALL_NOTICE = 5.0
"""Seconds without a token after which the footer says so."""


class View(Protocol):
    """What a run needs from the live view of one answer."""

    def append(self, text: str) -> None:
        """Add a piece of the answer (called for every token; must be cheap)."""

    def think(self, text: str) -> None:
        """Add a piece of the model's thinking (kept apart from the answer)."""

    def tool(self, index: int, name: str, arguments: str) -> None:
        """Tool call ``index`` has grown: its name and its arguments so far."""

    def finish(self, outcome: Outcome) -> None:
        """Show the final state; no more appends follow."""

    def close(self) -> None:
        """Release what the view holds (after the final output replaced it)."""


class WidgetView:
    """A live widget: Markdown rendered in the browser as it grows, with a status footer.

    A thin wrapper over :class:`ipy_stream.live.LiveMarkdown`, which sends the
    front end only the new text (see that module for the protocol). The DOM has a
    root with class ``ipy-stream`` and ``data-status`` (streaming, done, failed,
    interrupted), the model's thinking (if any) in ``details.ipy-stream-thinking`` above
    the answer, the answer in ``.ipy-stream-body`` and the summary in
    ``.ipy-stream-footer``, with the tool calls the model makes between them in
    ``.ipy-stream-tools``. ``show_thinking=False`` keeps the thinking out of the view
    (the footer still counts it).
    """

    def __init__(self, label: str, *, interval: float = 0.1, show_thinking: bool = True) -> None:
        from ipy_stream.live import LiveMarkdown

        self._label = label
        self._show_thinking = show_thinking
        self._started = time.perf_counter()
        self._tokens = 0
        self._thinking = 0
        self._last_at: float | None = None
        self._tool: str | None = None
        # Renders finished blocks while the answer streams (on the widget's writer
        # thread, off the token path), so the saved output costs little at the end.
        self._renderer = AnswerRenderer()
        self.widget = LiveMarkdown(
            interval=interval,
            footer=f"{label} · waiting for the first token…",
            progress=self._progress,
            on_sent=self._renderer.add,
        )
        self.widget.start_clock()

    def _progress(self, _appends: int) -> str:
        """The footer while streaming: never the same for long, so a stall shows."""
        now = time.perf_counter()
        if self._tokens:
            state = f"streaming… · {_tokens(self._tokens)}"
        elif self._thinking:
            state = f"thinking… · {_tokens(self._thinking)}"
        else:
            state = "waiting for the first token…"
        if self._tool is not None:
            state += f" · calling {self._tool}"
        if self._last_at is not None and now - self._last_at >= STALL_NOTICE:
            state += f" · no token for {now - self._last_at:.0f} s"
        return f"{self._label} · {state} · {now - self._started:.1f} s"

    def append(self, text: str) -> None:
        """Buffer the text; the widget's writer thread sends it within one interval."""
        self._tokens += 1
        self._last_at = time.perf_counter()
        self.widget.append(text)

    def think(self, text: str) -> None:
        """Buffer a piece of thinking for the view's Thinking section; count it for the footer."""
        self._thinking += 1
        self._last_at = time.perf_counter()
        if self._show_thinking:
            self.widget.think(text)

    def tool(self, index: int, name: str, arguments: str) -> None:
        """Show the tool call as it grows, and say in the footer which tool is called."""
        self._tool = name
        self._last_at = time.perf_counter()
        self.widget.tool(index, name, arguments)

    def finish(self, outcome: Outcome) -> None:
        """Stop the writer; send the rest of the text, the final status and footer."""
        self.widget.finish(
            outcome.status, footer=footer_text(self._label, outcome), text=outcome.text
        )

    def html(self, text: str) -> str:
        """The answer ``text`` rendered and sanitized (mostly done while it streamed)."""
        return self._renderer.html(text)

    def close(self) -> None:
        """Release the widget and its layout."""
        close_widget(self.widget)


def _tokens(count: int) -> str:
    return f"{count} token{'s' if count != 1 else ''}"


def close_widget(widget: Any) -> None:
    """Close a widget, its children, and the layout and style models it owns."""
    for child in getattr(widget, "children", ()):
        close_widget(child)
    for part in ("layout", "style"):
        owned = getattr(widget, part, None)
        if owned is not None and hasattr(owned, "close"):
            owned.close()
    widget.close()


class StdoutView:
    """For terminal IPython: tokens go straight to stdout as they come."""

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        self._write = write or sys.stdout.write
        self.ends_with_newline = True

    def append(self, text: str) -> None:
        """Print the token now."""
        self._write(text)
        self.ends_with_newline = text.endswith("\n")
        flush = getattr(sys.stdout, "flush", None)
        if flush is not None:
            flush()

    def think(self, text: str) -> None:
        """Thinking is not printed; the footer counts it."""

    def tool(self, index: int, name: str, arguments: str) -> None:
        """Tool calls are listed in the final output."""

    def finish(self, outcome: Outcome) -> None:
        """End the answer's last line (the footer follows in the final output)."""
        if not self.ends_with_newline:
            self._write("\n")
            self.ends_with_newline = True

    def close(self) -> None:
        """Nothing to release."""


class QuietTextView:
    """For several models in a terminal: nothing is printed while they stream (tokens
    from several streams would interleave); the final output prints each answer."""

    def append(self, text: str) -> None:
        """Nothing is printed until the end."""

    def think(self, text: str) -> None:
        """Nothing is printed until the end."""

    def tool(self, index: int, name: str, arguments: str) -> None:
        """Nothing is printed until the end."""

    def finish(self, outcome: Outcome) -> None:
        """Nothing to show: the final output has the whole answer."""

    def close(self) -> None:
        """Nothing to release."""
