"""A notebook page that also reads ipy_stream's live view through its DOM contract
(``.ipy-stream`` with a status, the saved output that replaces it) and watches outputs for
anything that could run script, load a resource or navigate."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from .constants import SEL_OUTPUT_AREA, SEL_SAVED_OUTPUT, SEL_STREAM, STREAM_STATUSES
from .notebook import LabNotebook

if TYPE_CHECKING:
    from playwright.sync_api import Locator


class NotebookPage(LabNotebook):
    """One notebook opened in JupyterLab (see :meth:`Lab.open`), with ipy_stream's live view."""

    # -- ipy_stream's live widget (DOM contract) -------------------------------------------------

    def stream_widget(self, index: int) -> Locator:
        """The live ``.ipy-stream`` widget root in cell ``index`` (while streaming)."""
        return self.output(index, SEL_STREAM)

    def stream_status(self, index: int, nth: int = 0) -> str | None:
        """Status of the (``nth``) live view in cell ``index``, or None if there is none (any
        more): its ``data-status``, or the ``X`` of an ``ipy-stream--X`` class."""
        views = self.stream_widget(index)
        if views.count() <= nth:
            return None
        status = views.nth(nth).evaluate("(el) => window.__ipyTest.streamStatus(el)")
        return None if status is None else str(status)

    def wait_stream_status(self, index: int, status: str, *, timeout: float = 30.0) -> None:
        """Wait until cell ``index`` holds a live view with that status (``data-status`` or an
        ``ipy-stream--<status>`` class)."""
        assert status in STREAM_STATUSES, status
        selector = f'{SEL_STREAM}[data-status="{status}"], {SEL_STREAM}.ipy-stream--{status}'
        self.output(index, selector).first.wait_for(state="attached", timeout=timeout * 1000)

    def watch_unsafe(self, index: int) -> int:
        """Start watching cell ``index``'s output area for anything that could run script,
        load a resource or navigate (``script``, ``iframe``, ``img``, ``svg``..., ``on*``
        attributes, ``javascript:``/``data:`` URLs), at every DOM mutation; see
        :meth:`unsafe_seen`."""
        area = self.cell(index).locator(SEL_OUTPUT_AREA).first
        return int(area.evaluate("(el) => window.__ipyTest.watchUnsafe(el)"))

    def unsafe_seen(self, watch: int, *, stop: bool = False) -> list[str]:
        """What the :meth:`watch_unsafe` watch saw so far (``stop`` ends it)."""
        result = self.page.evaluate("(a) => window.__ipyTest.unsafeSeen(a[0], a[1])", [watch, stop])
        assert result is not None, f"no unsafe-watch {watch}"
        return [str(f) for f in result["found"]]

    def unsafe_now(self, index: int) -> list[str]:
        """Anything unsafe in cell ``index``'s output area right now (see watch_unsafe)."""
        area = self.cell(index).locator(SEL_OUTPUT_AREA).first
        return [str(f) for f in area.evaluate("(el) => window.__ipyTest.unsafeIn(el)")]

    def final_output(self, index: int) -> Locator:
        """The ``text/html`` output that replaces the widget at the end."""
        return self.output(index, SEL_SAVED_OUTPUT)

    def wait_final_output(
        self, index: int, pattern: re.Pattern[str] | None = None, *, timeout: float = 30.0
    ) -> str:
        """Wait until cell ``index`` holds no live view any more and its (first) final
        output is rendered (JupyterLab attaches the element before it renders the HTML into
        it): non-empty, and matching ``pattern`` if given. Its inner text."""
        final = self.final_output(index).first
        deadline = time.monotonic() + timeout
        while True:
            text = final.inner_text() if final.count() else ""
            done = bool(text.strip()) and not self.stream_widget(index).count()
            if done and (pattern is None or pattern.search(text)):
                return text
            if time.monotonic() > deadline:
                matching = f" matching {pattern.pattern!r}" if pattern else ""
                raise AssertionError(
                    f"cell {index}: no final output{matching} after {timeout}s; "
                    f"outputs: {self.output_text(index)!r}"
                )
            self.page.wait_for_timeout(50)
