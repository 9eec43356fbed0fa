"""Baseline live views for the benchmark, swapped into the kernel in place of ipy_stream's.

Both are the usual way of showing a LangChain stream in a notebook: an ``ipywidgets.HTML``
whose ``value`` is set to the whole answer, rendered to HTML, again and again.

* :class:`PerTokenView` (``per-token``): on every token, LangChain's documented pattern
  (a callback's ``on_llm_new_token`` updating a widget).
* :class:`ThrottledView` (``throttle-50ms``): the same, at most one update per 50 ms:
  a token arriving less than 50 ms after the previous update ended only goes to the buffer
  (the update is not deferred to a timer; the next token or ``finish`` shows it).

They have the constructor and methods a run uses (``WidgetView(label, *, interval=...,
show_thinking=...)``, ``.widget``, ``append``, ``think``, ``tool``, ``finish``, ``html``,
``close``) and :func:`use` puts one in place by replacing ``ipy_stream.display.WidgetView``
(which the notebook output builds its views from), so a run
still goes through the real ``%%stream`` magic, the real ``ChatOpenAI`` client and real
HTTP. The widget carries the class ``ipy-stream-body`` so the benchmark's DOM probe
finds the text the same way as in the product's view. ``use(name, record_to=path)``
also notes when each token reaches the
view. Runs inside the kernel.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

__all__ = ["VIEWS", "PerTokenView", "ThrottledView", "product_view", "selected", "use"]

THROTTLE_SECONDS = 0.05


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off, as a careful notebook author would write it.
    return MarkdownIt("commonmark", {"html": False})


class PerTokenView:
    """``ipywidgets.HTML``; its value is the whole answer rendered, set on every token."""

    def __init__(self, label: str, *, interval: float = 0.1, show_thinking: bool = True) -> None:
        import ipywidgets

        del interval, show_thinking  # no batching by time (throttled: its own); no thinking
        self._label = label
        self._md = _markdown()
        self._parts: list[str] = []
        self.widget = ipywidgets.HTML(value="")
        self.widget.add_class("ipy-stream-body")

    def _show(self, text: str) -> None:
        self.widget.value = self._md.render(text)

    def append(self, text: str) -> None:
        """Add the token and show the whole answer again."""
        self._parts.append(text)
        self._show("".join(self._parts))

    def think(self, text: str) -> None:
        """Thinking is not shown (the benchmark's streams have none)."""

    def tool(self, index: int, name: str, arguments: str) -> None:
        """Tool calls are not shown (the benchmark's streams have none)."""

    def finish(self, outcome: Any) -> None:
        """Show the final text (the run replaces the widget with its saved output next)."""
        self._show(outcome.text)

    def html(self, text: str) -> str:
        """The saved output's HTML, as the product makes it (the whole answer, at the end)."""
        from ipy_stream.render import render_markdown

        return render_markdown(text)

    def close(self) -> None:
        """Release the widget."""
        self.widget.close()


class ThrottledView(PerTokenView):
    """Like :class:`PerTokenView`, but at most one update every 50 ms."""

    def __init__(self, label: str, *, interval: float = 0.1, show_thinking: bool = True) -> None:
        super().__init__(label, interval=interval, show_thinking=show_thinking)
        self._next = 0.0

    def append(self, text: str) -> None:
        """Add the token; show the whole answer if 50 ms passed since the last update."""
        self._parts.append(text)
        if time.monotonic() >= self._next:
            self._show("".join(self._parts))
            self._next = time.monotonic() + THROTTLE_SECONDS


def product_view() -> type:
    """ipy_stream's own ``WidgetView``."""
    import ipy_stream.view

    return ipy_stream.view.WidgetView


VIEWS: dict[str, Any] = {
    "ipy_stream": product_view,
    "per-token": lambda: PerTokenView,
    "throttle-50ms": lambda: ThrottledView,
}


_selected = "ipy_stream"


def _recording(base: type, path: str) -> type:
    """``base`` with ``time.time()`` noted as each token reaches ``append`` (before the view
    sees it); the list is written to ``path`` (JSON) when the run finishes the view, before
    the cell ends. Costs a list append per token."""

    class Recording(base):  # type: ignore[valid-type,misc]
        def __init__(self, label: str, **options: Any) -> None:
            super().__init__(label, **options)
            self._bench_arrivals: list[float] = []

        def append(self, text: str) -> None:
            self._bench_arrivals.append(time.time())
            super().append(text)

        def finish(self, outcome: Any) -> None:
            try:
                super().finish(outcome)
            finally:
                Path(path).write_text(json.dumps(self._bench_arrivals), encoding="utf-8")

    Recording.__qualname__ = f"{base.__qualname__}+arrivals"
    return Recording


def use(name: str, *, record_to: str | None = None) -> str:
    """Make ``%%stream`` use the view called ``name`` (a key of :data:`VIEWS`); with
    ``record_to``, also note when each token reaches the view (see :func:`_recording`).
    Returns the dotted name of the class."""
    global _selected  # noqa: PLW0603 - one kernel, one benchmark
    import ipy_stream.display

    view = VIEWS[name]()
    if record_to is not None:
        view = _recording(view, record_to)
    ipy_stream.display.WidgetView = view  # type: ignore[misc]
    _selected = name
    return f"{view.__module__}.{view.__qualname__}"


def selected() -> str:
    """The name (a key of :data:`VIEWS`) of the view ``%%stream`` uses now."""
    return _selected
