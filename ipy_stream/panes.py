"""Arrange live views: side-by-side panes and the Stop button of background runs.

No LangChain here. DOM: the root has class ``ipy-stream-run``; several panes sit in
``.ipy-stream-grid``; the Stop button, under them, has class ``ipy-stream-stop``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ipy_stream.view import WidgetView, close_widget

__all__ = ["FinishedRuns", "Panes"]


class Panes:
    """One widget holding every pane of a run, and (for background runs) a Stop button."""

    def __init__(self, views: Sequence[WidgetView], *, on_stop: Callable[[], None] | None) -> None:
        import ipywidgets as widgets

        self.views = list(views)
        children: list[Any] = []
        self._button: Any = None
        if on_stop is not None:
            button = widgets.Button(description="Stop", icon="stop", tooltip="Stop streaming")
            button.add_class("ipy-stream-stop")

            def clicked(_: Any) -> None:
                button.disabled = True
                button.description = "Stopping…"
                on_stop()

            button.on_click(clicked)
            self._button = button
        if len(self.views) == 1:
            children.append(self.views[0].widget)
        else:
            grid = widgets.GridBox(
                [view.widget for view in self.views],
                layout=widgets.Layout(
                    grid_template_columns=f"repeat({len(self.views)}, minmax(0, 1fr))",
                    grid_gap="12px",
                    width="100%",
                ),
            )
            grid.add_class("ipy-stream-grid")
            children.append(grid)
        if self._button is not None:
            # Under the answers: the live view holds it in sight at the bottom of the
            # screen while they grow (js/src/pin.js).
            children.append(self._button)
        if len(children) == 1 and on_stop is None:
            self.widget = children[0]
        else:
            self.widget = widgets.VBox(children)
            self.widget.add_class("ipy-stream-run")

    def finished(self) -> None:
        """Take the Stop button away once every stream has ended."""
        if self._button is not None:
            self._button.layout.display = "none"

    def close(self) -> None:
        """Release every widget (after the display was replaced)."""
        for view in self.views:
            view.close()
        close_widget(self.widget)


class FinishedRuns:
    """Keeps the widgets of the last ``keep`` finished runs open, and closes older ones.

    The page that ran a cell replaces its live view with the final Markdown. A page
    reloaded while the stream ran never gets that update (JupyterLab applies it only to
    outputs of executions that page watched), so its restored live view must outlive
    the run: it ends showing the whole answer, the final status and footer.
    """

    def __init__(self, keep: int = 10) -> None:
        self._keep = keep
        self._runs: deque[Panes] = deque()
        self._lock = threading.Lock()  # background runs finish on their own threads

    def add(self, panes: Panes) -> None:
        """Keep ``panes`` open; close the oldest runs beyond ``keep``."""
        with self._lock:
            self._runs.append(panes)
            expired = [self._runs.popleft() for _ in range(len(self._runs) - self._keep)]
        for old in expired:
            old.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)
