"""Real-browser test: JupyterLab says the kernel is Busy for as long as a ``%%stream`` cell runs.

The live view's widget opens a comm while the cell runs; JupyterLab then asks the kernel for
a comm subshell on the control channel, and the kernel's ``idle`` answer to that request used
to make the status bar say Idle for the rest of the cell (see ``ipy_stream/busy.py``).

What a person sees is read from the DOM: the status bar's kernel item ("Python 3 (ipykernel)
| Busy") and the notebook toolbar's execution indicator (``data-status`` and its "Kernel
status: ..." tooltip). The page is sampled whenever something on it changes (a condition
checked at every animation frame), from the moment the run shows Busy until the live view is
replaced by the saved answer, which the kernel sends just before the cell ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .lab import (
    SEL_CELL,
    SEL_EXEC_INDICATOR,
    SEL_INPUT_PROMPT,
    SEL_SAVED_OUTPUT,
    SEL_STREAM,
    SEL_STREAM_BODY,
    Lab,
)

if TYPE_CHECKING:
    from playwright.sync_api import ElementHandle

    from tests.openai_server import StreamServer

    from .lab import NotebookPage

pytestmark = pytest.mark.browser

KERNEL_DISPLAY_NAME = "Python 3 (ipykernel)"  # the kernelspec of make_notebook's notebooks
SEL_TOOLBAR = ".jp-NotebookPanel-toolbar"
STREAM_CELL = 1

# One DOM state of the page: what the kernel indicators say, and how the run is going.
SNAPSHOT_JS = """
([panel, cellIndex, name, sel]) => {
  const cell = panel.querySelectorAll(sel.cell)[cellIndex];
  const item = Array.from(document.querySelectorAll('#jp-main-statusbar .jp-StatusBar-TextItem'))
    .map((el) => el.textContent.trim())
    .find((text) => text.startsWith(name + ' | '));
  const indicator = panel.querySelector(sel.toolbar + ' ' + sel.indicator);
  const tooltip = indicator ? indicator.querySelector(sel.tooltip) : null;
  const live = cell ? cell.querySelector(sel.stream) : null;
  const body = live ? live.querySelector(sel.body) : null;
  const prompt = cell ? cell.querySelector(sel.prompt) : null;
  return {
    statusBar: item === undefined ? null : item.slice(name.length + 3),
    toolbar: indicator ? indicator.getAttribute('data-status') : null,
    tooltip: tooltip ? tooltip.textContent.trim() : null,
    live: !!live,
    text: body ? body.textContent.length : -1,
    saved: !!(cell && cell.querySelector(sel.saved)),
    prompt: prompt ? prompt.textContent.trim() : null,
  };
}
"""

CHANGED_JS = f"""
([panel, cellIndex, name, sel, last]) => {{
  const now = ({SNAPSHOT_JS})([panel, cellIndex, name, sel]);
  const keys = Object.keys(now);
  return keys.some((k) => now[k] !== last[k]) ? now : false;
}}
"""

SELECTORS = {
    "cell": SEL_CELL,
    "toolbar": SEL_TOOLBAR,
    "indicator": SEL_EXEC_INDICATOR,
    "tooltip": ".jp-Notebook-ExecutionIndicator-tooltip > span",
    "stream": SEL_STREAM,
    "body": SEL_STREAM_BODY,
    "saved": SEL_SAVED_OUTPUT,
    "prompt": SEL_INPUT_PROMPT,
}


@dataclass(frozen=True)
class Snapshot:
    status_bar: str | None
    toolbar: str | None
    tooltip: str | None
    live: bool
    text: int
    saved: bool
    prompt: str | None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Snapshot:
        return cls(
            status_bar=raw["statusBar"],
            toolbar=raw["toolbar"],
            tooltip=raw["tooltip"],
            live=bool(raw["live"]),
            text=int(raw["text"]),
            saved=bool(raw["saved"]),
            prompt=raw["prompt"],
        )

    def raw(self) -> dict[str, Any]:
        return {
            "statusBar": self.status_bar,
            "toolbar": self.toolbar,
            "tooltip": self.tooltip,
            "live": self.live,
            "text": self.text,
            "saved": self.saved,
            "prompt": self.prompt,
        }

    @property
    def busy(self) -> bool:
        """Both indicators say Busy."""
        return (
            self.status_bar == "Busy"
            and self.toolbar == "busy"
            and self.tooltip == "Kernel status: Busy"
        )


class Watcher:
    """Snapshots of the page, each taken when something in it changed."""

    def __init__(self, nb: NotebookPage) -> None:
        self.nb = nb
        self.panel: ElementHandle = nb.panel.element_handle()
        self.last = self.now()

    def _args(self) -> list[Any]:
        return [self.panel, STREAM_CELL, KERNEL_DISPLAY_NAME, SELECTORS]

    def now(self) -> Snapshot:
        return Snapshot.of(self.nb.page.evaluate(SNAPSHOT_JS, self._args()))

    def next(self, *, timeout: float = 30.0) -> Snapshot:
        """Wait until the page differs from the last snapshot (checked every frame)."""
        handle = self.nb.page.wait_for_function(
            CHANGED_JS,
            arg=[*self._args(), self.last.raw()],
            polling="raf",
            timeout=timeout * 1000,
        )
        self.last = Snapshot.of(handle.json_value())
        return self.last

    def until(self, predicate: str, what: str, *, timeout: float = 30.0) -> Snapshot:
        """Wait until ``predicate`` (JS, over a snapshot ``s``) holds; that snapshot."""
        try:
            handle = self.nb.page.wait_for_function(
                f"(a) => {{ const s = ({SNAPSHOT_JS})(a); return ({predicate}) ? s : false; }}",
                arg=self._args(),
                polling="raf",
                timeout=timeout * 1000,
            )
        except Exception as exc:
            raise AssertionError(f"not {what} after {timeout}s: {self.now()}") from exc
        self.last = Snapshot.of(handle.json_value())
        return self.last


def test_kernel_says_busy_until_a_blocking_stream_ends(lab: Lab, server: StreamServer) -> None:
    tokens = 240
    server.configure(tokens=tokens, rate=40)  # 6 s of streaming
    nb = lab.open(
        lab.write_notebook(
            "busy",
            [
                "%load_ext ipy_stream",
                "%%stream -m gpt-4o-mini\nWrite a long answer.",
            ],
        )
    )
    nb.run_cell(0)
    watcher = Watcher(nb)
    assert watcher.last.status_bar == "Idle", watcher.last
    watch = nb.start_cell(STREAM_CELL)
    assert watch is not None

    # From the moment the run shows Busy until the saved answer replaces the live view (the
    # kernel's last output before the cell ends), every state of the page says Busy.
    seen = [watcher.until("s.statusBar === 'Busy'", "Busy after starting the run")]
    while not seen[-1].saved:
        seen.append(watcher.next())
    running = [s for s in seen if not s.saved]
    not_busy = [s for s in running if not s.busy]
    assert not not_busy, (
        f"{len(not_busy)} of {len(running)} states while the cell ran did not say Busy; "
        f"first: {not_busy[0]}"
    )
    assert all(s.prompt == "[*]:" for s in running), [s.prompt for s in running]

    # Not vacuous: those states span the stream, its text growing from the live view's first
    # characters on, well after the widget's comm was opened.
    lengths = [s.text for s in running if s.live and s.text > 0]
    assert len(set(lengths)) >= 20, lengths
    assert lengths[-1] > lengths[0], lengths

    # The cell ends: both indicators say Idle.
    nb.wait_run_done(watch, STREAM_CELL, timeout=60)
    end = watcher.until(
        "s.statusBar === 'Idle' && s.toolbar === 'idle' && s.tooltip === 'Kernel status: Idle'",
        "Idle after the cell ended",
    )
    assert re.fullmatch(r"\[\d+\]:", end.prompt or ""), end
    assert end.saved and not end.live, end
