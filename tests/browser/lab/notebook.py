"""One notebook opened in JupyterLab: run cells and wait for them, read and record outputs,
interrupt, shut the kernel down, save, reopen."""

from __future__ import annotations

import contextlib
import re
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any, Self

from playwright.sync_api import Error as PlaywrightError

from .constants import (
    SEL_CELL,
    SEL_CODE_CELL,
    SEL_DIALOG,
    SEL_INPUT_PROMPT,
    SEL_INTERRUPT,
    SEL_OUTPUT,
    SEL_OUTPUT_AREA,
)
from .recording import Recording, Sample

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Locator, Page

    from .workspace import Lab

_PROMPT_DONE = re.compile(r"^\[\d+\]:$")


class LabNotebook:
    """One notebook opened in JupyterLab, driven as a person would (see :meth:`Lab.open`,
    which returns the :class:`NotebookPage` subclass)."""

    def __init__(self, lab: Lab, path: str):
        self.lab = lab
        self.path = path
        self.panel_id: str | None = None

    # -- locators ------------------------------------------------------------------------------

    @property
    def page(self) -> Page:
        return self.lab.page

    @property
    def panel(self) -> Locator:
        assert self.panel_id, "notebook not open"
        return self.page.locator(f"[id='{self.panel_id}']")

    def cells(self) -> Locator:
        return self.panel.locator(SEL_CELL)

    def cell(self, index: int) -> Locator:
        return self.cells().nth(index)

    def outputs(self, index: int) -> Locator:
        """All ``.jp-OutputArea-output`` of cell ``index`` (stream, result, display, error)."""
        return self.cell(index).locator(SEL_OUTPUT)

    def output(self, index: int, selector: str) -> Locator:
        """Elements matching ``selector`` inside cell ``index``'s output area."""
        return self.cell(index).locator(SEL_OUTPUT_AREA).locator(selector)

    # -- opening -------------------------------------------------------------------------------

    def open(self, *, timeout: float = 60.0) -> Self:
        workspace = f"t{uuid.uuid4().hex[:12]}"
        server = self.lab.server
        url = (
            f"{server.base_url}/lab/workspaces/{workspace}/tree/"
            f"{urllib.parse.quote(self.path)}?reset&token={server.token}"
        )
        self.page.goto(url, wait_until="domcontentloaded")
        try:
            self.page.wait_for_function(
                """(p) => { const s = window.__ipyTest && window.__ipyTest.kernelState(p);
                            return s && s.panel && s.ready && s.cells > 0; }""",
                arg=self.path,
                timeout=timeout * 1000,
                polling=100,
            )
        except Exception as exc:
            raise AssertionError(f"notebook {self.path} did not open: {self.describe()}") from exc
        self.panel_id = self.page.evaluate("(p) => window.__ipyTest.kernelState(p).id", self.path)
        self.wait_kernel_idle(timeout=timeout)
        return self

    def reopen(self, *, timeout: float = 60.0) -> Self:
        """Close this page (no unload prompt) and open the notebook in a new page + workspace."""
        self.page.close()
        self.lab.page = self.lab.context.new_page()
        self.panel_id = None
        return self.open(timeout=timeout)

    # -- kernel --------------------------------------------------------------------------------

    def kernel_state(self) -> dict[str, Any]:
        """``{kernel, connection, indicator, dirty, cells, ...}`` as the page sees it."""
        return dict(self.page.evaluate("(p) => window.__ipyTest.kernelState(p)", self.path))

    def wait_kernel_idle(self, *, timeout: float = 60.0) -> None:
        """Kernel connected and ``idle`` and the toolbar execution indicator ``idle``."""
        self._wait_kernel(
            "s.kernel === 'idle' && s.connection === 'connected' && s.indicator === 'idle'",
            "idle",
            timeout,
        )

    def wait_kernel_busy(self, *, timeout: float = 30.0) -> None:
        self._wait_kernel("s.kernel === 'busy'", "busy", timeout)

    def wait_no_kernel(self, *, timeout: float = 30.0) -> None:
        """No kernel attached to the panel and none running on the server for this path."""
        self._wait_kernel("s.kernel === null", "no kernel", timeout)
        deadline = time.monotonic() + timeout
        while any(s.get("path") == self.path for s in self.lab.server.sessions()):
            if time.monotonic() > deadline:
                raise AssertionError(f"server still has a session for {self.path}")
            self.page.wait_for_timeout(100)

    def _wait_kernel(self, condition: str, what: str, timeout: float) -> None:
        try:
            self.page.wait_for_function(
                f"(p) => {{ const s = window.__ipyTest.kernelState(p); return s.panel && "
                f"({condition}); }}",
                arg=self.path,
                timeout=timeout * 1000,
                polling=50,
            )
        except Exception as exc:
            raise AssertionError(f"kernel not {what} after {timeout}s: {self.describe()}") from exc

    def interrupt(
        self, index: int | None = None, *, timeout: float = 20.0, retry_every: float = 2.0
    ) -> None:
        """Click the toolbar's stop button; if ``index`` is given wait until that cell's run is
        over, clicking again every ``retry_every`` s (a SIGINT that lands before the cell's
        code really runs is lost otherwise)."""
        button = self.page.locator(f"[id='{self.panel_id}'] {SEL_INTERRUPT}")
        if index is None:
            button.click()
            return
        prompt = self.cell(index).locator(SEL_INPUT_PROMPT).first
        try:
            self.page.wait_for_function(
                "(el) => el.textContent.trim() === '[*]:'",
                arg=prompt.element_handle(),
                timeout=5000,
                polling=50,
            )
        except Exception as exc:
            raise AssertionError(
                f"interrupt: cell {index} is not running (prompt {self.prompt(index)!r})"
            ) from exc
        button.click()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.wait_cell_done(index, timeout=min(retry_every, timeout))
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                button.click()

    def shutdown_kernel(self, *, timeout: float = 30.0) -> None:
        """Kernel menu > Shut Down Kernel; wait until the server has no session for it."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
        self.page.locator('.lm-Menu-item[data-command="kernelmenu:shutdown"]').click()
        self.wait_no_kernel(timeout=timeout)

    # -- running cells -------------------------------------------------------------------------

    def select_cell(self, index: int) -> None:
        """Click cell ``index``'s input prompt: it becomes the only selected, active cell."""
        cell = self.cell(index)
        cell.locator(SEL_INPUT_PROMPT).first.click()
        cell.and_(self.page.locator(".jp-mod-active")).wait_for(timeout=5000)

    def is_code_cell(self, index: int) -> bool:
        return SEL_CODE_CELL in (self.cell(index).get_attribute("class") or "").split()

    def start_cell(self, index: int) -> int | None:
        """Select cell ``index`` and press Ctrl+Enter (run, stay); return a watch id for
        :meth:`wait_run_done` (None for non-code cells)."""
        self.select_cell(index)
        watch = self._watch(index) if self.is_code_cell(index) else None
        self.page.keyboard.press("Control+Enter")
        return watch

    def run_cell(self, index: int, *, timeout: float = 60.0) -> None:
        """Run cell ``index`` and wait until its prompt went ``[*]`` and then ``[N]``."""
        watch = self.start_cell(index)
        if watch is not None:
            self.wait_run_done(watch, index, timeout=timeout)

    def run_all(self, *, timeout: float = 120.0) -> None:
        """Run all cells (the ``notebook:run-all-cells`` command, as Run > Run All Cells) and
        wait until every code cell finished."""
        watches = {i: self._watch(i) for i in range(self.cells().count()) if self.is_code_cell(i)}
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline = time.monotonic() + timeout
        for i, w in watches.items():
            self.wait_run_done(w, i, timeout=max(0.1, deadline - time.monotonic()))

    def _watch(self, index: int) -> int:
        return int(self.cell(index).evaluate("(el) => window.__ipyTest.watchRun(el)"))

    def run_finished(self, watch: int) -> bool:
        """Non-blocking: has the run watched by ``watch`` (from :meth:`start_cell`) ended?"""
        return bool(
            self.page.evaluate(
                "(id) => { const s = window.__ipyTest.runState(id); return !!(s && s.done); }",
                watch,
            )
        )

    def wait_run_done(self, watch: int, index: int, *, timeout: float = 60.0) -> None:
        """Wait for the run started by :meth:`start_cell` (``watch``) of cell ``index``."""
        try:
            self.page.wait_for_function(
                "(id) => { const s = window.__ipyTest.runState(id); return s && s.done; }",
                arg=watch,
                timeout=timeout * 1000,
                polling=50,
            )
        except Exception as exc:
            state = self.page.evaluate("(id) => window.__ipyTest.runState(id)", watch)
            raise AssertionError(
                f"cell {index} not finished after {timeout}s (watch {state}): {self.describe()}"
            ) from exc
        self.page.evaluate("(id) => window.__ipyTest.forgetRun(id)", watch)

    def wait_cell_done(self, index: int, *, timeout: float = 60.0) -> None:
        """Cell ``index``'s prompt shows ``[N]:`` (not ``[*]:``/``[ ]:``) — for cells already
        started; prefer :meth:`run_cell` / :meth:`wait_run_done` which cannot see a stale
        count."""
        prompt = self.cell(index).locator(SEL_INPUT_PROMPT).first
        deadline = time.monotonic() + timeout
        while not _PROMPT_DONE.match(prompt.inner_text().strip()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"cell {index} prompt {prompt.inner_text()!r} after {timeout}s"
                )
            self.page.wait_for_timeout(50)

    def prompt(self, index: int) -> str:
        """The input prompt text of cell ``index``: ``[ ]:``, ``[*]:`` or ``[N]:``."""
        return self.cell(index).locator(SEL_INPUT_PROMPT).first.inner_text().strip()

    # -- outputs -------------------------------------------------------------------------------

    def output_text(self, index: int) -> str:
        """inner_text of every output of cell ``index``, joined by newlines ("" if none)."""
        return "\n".join(self.outputs(index).all_inner_texts())

    def wait_output_text(
        self, index: int, expected: str | re.Pattern[str], *, timeout: float = 30.0
    ) -> str:
        """Wait until :meth:`output_text` contains ``expected`` (or matches the pattern)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.output_text(index)
            ok = expected.search(text) if isinstance(expected, re.Pattern) else expected in text
            if ok:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"cell {index} output lacks {expected!r} after {timeout}s; it is {text!r}"
                )
            self.page.wait_for_timeout(50)

    @contextlib.contextmanager
    def record(
        self,
        index: int,
        selector: str | None = SEL_OUTPUT_AREA,
        *,
        attribute: str | None = None,
        nth: int | None = None,
    ) -> Iterator[Recording]:
        """Record, in the page, every distinct successive value of ``selector`` under cell
        ``index`` (``innerText``, or ``attribute``; None while absent) on every DOM mutation,
        for the duration of the ``with`` block. ``nth`` picks the nth match (0-based) instead
        of the first; ``attribute=STATUS`` records the live view's status::

            with nb.record(0, ".jp-OutputArea-output") as rec:
                nb.run_cell(0)
            assert len(rec.values) > 3

        Nothing is lost to polling: even states that lasted one frame are there.
        """
        rec_id = self.cell(index).evaluate(
            "(el, a) => window.__ipyTest.startRecording(el, a[0], a[1], a[2])",
            [selector, attribute, nth],
        )
        page = self.page

        def fetch(fn: str) -> list[Sample]:
            raw = page.evaluate(f"(id) => window.__ipyTest.{fn}(id)", rec_id) or []
            return [Sample(s["t"] / 1000.0, s["value"]) for s in raw]

        rec = Recording(_peek=lambda: fetch("peekRecording"))
        try:
            yield rec
        finally:
            rec.samples = fetch("stopRecording")
            rec._peek = None

    # -- saving --------------------------------------------------------------------------------

    def save(self, *, timeout: float = 30.0) -> None:
        """Control+S, then wait until the file changed on the server and the tab is clean."""
        before = self.lab.server.last_modified(self.path)
        self.page.keyboard.press("Control+s")  # a document-wide shortcut: no focus needed
        deadline = time.monotonic() + timeout
        while True:
            state = self.kernel_state()
            if not state["dirty"] and self.lab.server.last_modified(self.path) != before:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.path} not saved after {timeout}s: {state}")
            self.page.wait_for_timeout(50)

    # -- diagnostics ---------------------------------------------------------------------------

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        """PNG into tests/artifacts/<name>.png (git-ignored)."""
        return self.lab.screenshot(name, full_page=full_page)

    def describe(self) -> str:
        """Kernel state and any open dialog, for error messages."""
        parts = []
        try:
            parts.append(
                repr(
                    self.page.evaluate(
                        "(p) => window.__ipyTest ? window.__ipyTest.kernelState(p) : 'no helpers'",
                        self.path,
                    )
                )
            )
            dialogs = self.page.locator(SEL_DIALOG)
            if dialogs.count():
                parts.append("dialog open: " + " | ".join(dialogs.all_inner_texts()))
        except PlaywrightError as exc:
            parts.append(f"(page not inspectable: {exc})")
        return "; ".join(parts)
