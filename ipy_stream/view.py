"""Live views of a growing answer: a widget for notebooks, plain text for terminals.

Tokens may arrive thousands of times a second; a frontend must not get a message
for each. The callback only appends to a buffer; one writer thread renders at most
once per ``interval`` while something changed, and :meth:`finish` always renders
the end. This module knows ipywidgets but not LangChain.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ipy_stream.outcome import Outcome, footer_text
from ipy_stream.safe import render_html

__all__ = ["StdoutView", "View", "WidgetView"]


class View(Protocol):
    """What the magic needs from a live view."""

    def append(self, text: str) -> None:
        """Add a piece of the answer (called for every token; must be cheap)."""

    def finish(self, outcome: Outcome) -> None:
        """Show the final state; no more appends follow."""


_CSS = """
<style>
.ipy-stream { border-left: 3px solid var(--jp-brand-color1, #1976d2); padding-left: 10px; }
.ipy-stream--failed { border-left-color: var(--jp-error-color1, #d32f2f); }
.ipy-stream--interrupted { border-left-color: var(--jp-warn-color1, #f57c00); }
.ipy-stream-body { font-size: var(--jp-content-font-size1, 14px); line-height: 1.5; }
.ipy-stream-body pre { padding: 6px 8px; background: var(--jp-layout-color2, #f5f5f5);
  overflow-x: auto; }
.ipy-stream-footer { color: var(--jp-ui-font-color2, #757575); font-size: 11px; }
</style>
"""


class WidgetView:
    """An ipywidgets view: rendered Markdown that grows, with a status footer.

    The DOM has a root with class ``ipy-stream`` and ``ipy-stream--<status>``,
    the answer in ``.ipy-stream-body`` and the summary in ``.ipy-stream-footer``.
    """

    def __init__(self, label: str, *, interval: float = 0.1) -> None:
        import ipywidgets as widgets

        self._label = label
        self._interval = interval
        self._parts: list[str] = []
        self._tokens = 0
        self._dirty = False
        self._lock = threading.Lock()
        self._started = time.perf_counter()
        self._status = "streaming"
        self._body = widgets.HTML(value="")
        self._body.add_class("ipy-stream-body")
        self._footer = widgets.HTML(value=self._escape(f"{label} · waiting for the first token…"))
        self._footer.add_class("ipy-stream-footer")
        self.widget = widgets.VBox([widgets.HTML(_CSS), self._body, self._footer])
        self.widget.add_class("ipy-stream")
        self.widget.add_class("ipy-stream--streaming")
        self._stop = threading.Event()
        self._writer = threading.Thread(
            target=self._write_loop, name="ipy-stream-view", daemon=True
        )
        self._writer.start()

    @staticmethod
    def _escape(text: str) -> str:
        import html

        return html.escape(text)

    def append(self, text: str) -> None:
        """Buffer the text; the writer thread shows it within one interval."""
        with self._lock:
            self._parts.append(text)
            self._tokens += 1
            self._dirty = True

    def _write_loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._render_if_dirty()

    def _render_if_dirty(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            text = "".join(self._parts)
            self._parts = [text]
            tokens = self._tokens
        elapsed = time.perf_counter() - self._started
        footer = f"{self._label} · streaming… · {tokens} tokens · {elapsed:.1f} s"
        with self.widget.hold_sync():
            self._body.value = render_html(text)
            self._footer.value = self._escape(footer)

    def finish(self, outcome: Outcome) -> None:
        """Stop the writer and show the whole text and the final footer."""
        self._stop.set()
        self._writer.join()
        with self.widget.hold_sync():
            self._body.value = render_html(outcome.text)
            self._footer.value = self._escape(footer_text(self._label, outcome))
            self.widget.remove_class("ipy-stream--streaming")
            self.widget.add_class(f"ipy-stream--{outcome.status}")

    def close(self) -> None:
        """Release the widget (after its display was replaced)."""
        self.widget.close()


class StdoutView:
    """For terminal IPython: tokens go straight to stdout, then a summary line."""

    def __init__(self, label: str, write: Callable[[str], Any] | None = None) -> None:
        self._label = label
        self._write = write or sys.stdout.write
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
            ("" if self._ends_with_newline else "\n") + f"— {footer_text(self._label, outcome)}\n"
        )
