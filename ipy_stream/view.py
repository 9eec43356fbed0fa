"""Live views of a growing answer: a widget for notebooks, plain text for terminals.

Tokens may arrive thousands of times a second; a frontend must not get a message
for each. The callback only appends to a buffer; one writer thread sends what is new
at most once per ``interval`` while something changed, and :meth:`finish` always
sends the end. This module knows ipywidgets but not LangChain.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from ipy_stream.outcome import Outcome, footer_text
from ipy_stream.render import AnswerRenderer
from ipy_stream.saved import SavedAnswer

__all__ = ["StdoutView", "View", "WidgetView"]


class View(Protocol):
    """What the magic needs from a live view."""

    def append(self, text: str) -> None:
        """Add a piece of the answer (called for every token; must be cheap)."""

    def finish(self, outcome: Outcome) -> None:
        """Show the final state; no more appends follow."""


class WidgetView:
    """A live widget: Markdown rendered in the browser as it grows, with a status footer.

    A thin wrapper over :class:`ipy_stream.live.LiveMarkdown`, which sends the
    front end only the new text (see that module for the protocol). The DOM has a
    root with class ``ipy-stream`` and ``data-status`` (streaming, done, failed,
    interrupted), the answer in ``.ipy-stream-body`` and the summary in
    ``.ipy-stream-footer``.
    """

    def __init__(self, label: str, *, interval: float = 0.1) -> None:
        from ipy_stream.live import LiveMarkdown

        self._label = label
        self._started = time.perf_counter()
        # Renders finished blocks while the answer streams (on the widget's writer
        # thread, off the token path), so the saved output costs little at the end.
        self._renderer = AnswerRenderer()
        self.widget = LiveMarkdown(
            interval=interval,
            footer=f"{label} · waiting for the first token…",
            progress=self._progress,
            on_sent=self._renderer.add,
        )

    def _progress(self, tokens: int) -> str:
        elapsed = time.perf_counter() - self._started
        return f"{self._label} · streaming… · {tokens} tokens · {elapsed:.1f} s"

    def append(self, text: str) -> None:
        """Buffer the text; the widget's writer thread sends it within one interval."""
        self.widget.append(text)

    def finish(self, outcome: Outcome) -> None:
        """Stop the writer; send the rest of the text, the final status and footer."""
        self.widget.finish(
            outcome.status, footer=footer_text(self._label, outcome), text=outcome.text
        )

    def saved(self, outcome: Outcome, *, with_message: bool = True) -> SavedAnswer:
        """What stays in the notebook for this answer (after :meth:`finish`)."""
        html = self._renderer.html(outcome.text)
        return SavedAnswer.of(self._label, outcome, html, with_message=with_message)

    def close(self) -> None:
        """Release the widget (after its display was replaced)."""
        self.widget.close()


class StdoutView:
    """For terminal IPython: tokens go straight to stdout, then a summary line."""

    def __init__(
        self,
        label: str,
        write: Callable[[str], Any] | None = None,
        *,
        with_message: bool = True,
    ) -> None:
        self._label = label
        self._write = write or sys.stdout.write
        self._with_message = with_message
        self._ends_with_newline = True

    def append(self, text: str) -> None:
        """Print the token now."""
        self._write(text)
        self._ends_with_newline = text.endswith("\n")
        flush = getattr(sys.stdout, "flush", None)
        if flush is not None:
            flush()

    def finish(self, outcome: Outcome) -> None:
        """Print the summary on its own line."""
        self._write(
            ("" if self._ends_with_newline else "\n")
            + f"— {footer_text(self._label, outcome, with_message=self._with_message)}\n"
        )
