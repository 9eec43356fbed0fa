"""A cell's output: the live views while its answers stream, and what stays at the end.

:class:`WidgetOutput` (notebooks) shows one live widget per model, side by side for
several, with a Stop button for background runs, and at the end replaces them in
place with the saved output (:func:`ipy_stream.saved.final_bundle`). :class:`TextOutput`
(terminals) prints tokens as they come, or, for several models, each answer whole at
the end (:func:`ipy_stream.saved.final_text`). Either way the final output is made in
one place, :meth:`finish`. Nothing here knows IPython: publishing a display is a
function given by the caller.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ipy_stream.outcome import Outcome
from ipy_stream.panes import FinishedRuns, Panes
from ipy_stream.saved import SavedAnswer, final_bundle, final_text
from ipy_stream.view import QuietTextView, StdoutView, View, WidgetView

__all__ = ["CellOutput", "Publish", "TextOutput", "WidgetOutput"]


class Publish(Protocol):
    """Show ``bundle`` as the output ``display_id`` of the running cell (``update``:
    replace that output in place)."""

    def __call__(self, bundle: dict[str, Any], display_id: str, *, update: bool) -> None: ...


class CellOutput(Protocol):
    """What a run needs from the cell's output."""

    views: Sequence[View]

    def finish(self, labels: Sequence[str], outcomes: Sequence[Outcome]) -> None:
        """Replace the live views by the final output (once every stream ended)."""


class WidgetOutput:
    """Live widgets in a notebook, replaced by sanitized HTML and text at the end.

    ``attachments``: the labels of the tables and images the prompt carried, named in
    the final output."""

    def __init__(
        self,
        labels: Sequence[str],
        *,
        publish: Publish,
        kept: FinishedRuns,
        interval: float,
        on_stop: Callable[[], None] | None = None,
        show_reasoning: bool = True,
        attachments: Sequence[str] = (),
    ) -> None:
        self._publish = publish
        self._attachments = tuple(attachments)
        self._show_reasoning = show_reasoning
        self._kept = kept
        # A background run's cell has ended by the time its answers do, so its failures
        # can only be read in the footers; a blocking cell also says them on a line.
        self._with_message = on_stop is not None
        self._views = [
            WidgetView(label, interval=interval, show_thinking=show_reasoning) for label in labels
        ]
        self.views: Sequence[View] = self._views
        self._panes = Panes(self._views, on_stop=on_stop)
        self._display_id = uuid.uuid4().hex
        publish(self._panes.widget._repr_mimebundle_(), self._display_id, update=False)

    def finish(self, labels: Sequence[str], outcomes: Sequence[Outcome]) -> None:
        """Take the Stop button away, then show the saved output where the views were.

        The widgets stay open for a while, then are closed (see :class:`FinishedRuns`):
        a page reloaded while the stream ran still shows them, ended.
        """
        try:
            self._panes.finished()
            answers = [
                SavedAnswer.of(
                    label,
                    outcome,
                    view.html(outcome.text),
                    with_message=self._with_message,
                    show_reasoning=self._show_reasoning,
                    attachments=self._attachments,
                )
                for label, outcome, view in zip(labels, outcomes, self._views, strict=True)
            ]
            self._publish(final_bundle(answers), self._display_id, update=True)
        finally:
            self._kept.add(self._panes)


class TextOutput:
    """Answers printed in a terminal: one streamed as it comes, several at the end."""

    def __init__(self, count: int, *, background: bool, attachments: Sequence[str] = ()) -> None:
        self._streamed = count == 1
        self._with_message = background
        self._attachments = tuple(attachments)
        self.views: Sequence[View] = (
            [StdoutView()] if self._streamed else [QuietTextView() for _ in range(count)]
        )

    def finish(self, labels: Sequence[str], outcomes: Sequence[Outcome]) -> None:
        """Print each answer's footer (and, for several, each whole answer)."""
        answers = [
            SavedAnswer.of(
                label,
                outcome,
                "",
                with_message=self._with_message,
                attachments=self._attachments,
            )
            for label, outcome in zip(labels, outcomes, strict=True)
        ]
        sys.stdout.write(final_text(answers, streamed=self._streamed))
        sys.stdout.flush()
