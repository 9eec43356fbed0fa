"""Real-browser test: a page reloaded while a background ``%%stream`` runs catches up.

Custom messages are not replayed to a page that connects later, so a reloaded page gets the
text it missed through the live view's resync request (see ``ipy_stream/live.py``); the
``checkpoint`` trait only follows the text while it is shorter than :data:`CHECKPOINT_LIMIT`.
Here the page is reloaded once it holds more than that: whatever it shows beyond the limit
can only have come through a resync.

The reload is what a person does: save (a notebook with unsaved changes asks before it
unloads), then the browser's reload. JupyterLab then restores the same workspace, reconnects
to the running kernel and restores the widgets from it; the kernel stays idle (``--bg``).
When the run ends, the reloaded page must still show the whole answer, marked done: the page
that ran the cell replaces the view with Markdown (update_display_data), but JupyterLab
delivers that message only to the page whose execution created the output.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from markdown_it import MarkdownIt

from ipy_stream.live import CHECKPOINT_LIMIT

from .lab import (
    SEL_SAVED_OUTPUT,
    SEL_STREAM,
    SEL_STREAM_BODY,
    SEL_STREAM_FOOTER,
    SEL_STREAM_STOP,
    STATUS,
)
from .support import (
    LOAD,
    MARKDOWN_ELEMENTS,
    STATS,
    WIDGET_ERRORS,
    count_elements,
    growing,
    growth,
    letters,
    reload_page,
    reply_text,
    squash,
    visible,
)

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage

    from tests.openai_server import StreamServer

    from .lab import Lab, NotebookPage

pytestmark = pytest.mark.browser

TOKENS = 4800
"""About 27,000 characters: the page passes the checkpoint limit after about 10 s."""
HOLD_AFTER = 3600
"""The server holds the stream after this many tokens (about 20,000 characters, past the
checkpoint limit) until the test lets it go: the reload happens while it still runs, however
long the machine takes to reload, and about 4 s of stream follow it."""
RATE = 300
"""Tokens per second: fast, but within what hosted models stream; at 50 tok/s reaching the
checkpoint limit would take more than a minute."""
CATCH_UP_TIMEOUT = 10.0
"""Seconds the reloaded page may take to show what it showed before: the front end asks
again every 3 s while it is behind, so this allows three requests."""

_VIEW_STATE = """(el) => ({
    length: Number(el.dataset.length),
    status: el.dataset.status,
    text: el.querySelector('.ipy-stream-body').innerText,
    items: el.querySelectorAll('.ipy-stream-body ol > li').length,
})"""


def list_items(markdown: str) -> int:
    """How many list items ``markdown`` renders to (CommonMark)."""
    return int(MarkdownIt("commonmark").render(markdown).count("<li>"))


def shown_answer(nb: NotebookPage, index: int) -> tuple[str, str]:
    """(answer, footer) as cell ``index`` shows them now: its final Markdown output if it has
    one, else its live view; ("", "") if it shows neither."""
    final = nb.final_output(index)
    if final.count():
        body, _, footer = final.first.inner_text().rstrip().rpartition("\n")
        return body, footer.strip()
    if nb.output(index, SEL_STREAM).count():
        body = nb.output(index, SEL_STREAM_BODY).first.inner_text()
        return body, nb.output(index, SEL_STREAM_FOOTER).first.inner_text().strip()
    return "", ""


class Diagnostics:
    """What failure messages show: the live view's own log lines in the page ("ipy_stream
    resync", and the resync answers) and the warnings in the lab server's log since now (the
    kernels log there too: e.g. a message to a subshell that is not there any more)."""

    def __init__(self, lab: Lab) -> None:
        self.console: list[str] = []
        self.log_path = lab.server.log_path
        self.log_start = self.log_path.stat().st_size
        lab.page.add_init_script("globalThis.__ipyStreamDebug = true")
        lab.page.on("console", self._on_console)

    def _on_console(self, msg: ConsoleMessage) -> None:
        text = msg.text
        if "ipy_stream resync" in text or ("ipy_stream append" in text and text.endswith("true")):
            self.console.append(text)

    def __str__(self) -> str:
        log = self.log_path.read_bytes()[self.log_start :].decode("utf-8", "replace")
        kernel = [line for line in log.splitlines() if "subshell" in line or "WARNING" in line]
        return f"\nconsole: {self.console[-10:]}\nlab server log: {kernel[-10:]}"


def wait_caught_up(nb: NotebookPage, index: int, length: int, diagnostics: Diagnostics) -> None:
    """Wait until the live view in cell ``index`` holds at least ``length`` characters."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    held: int | None = None
    while True:
        now = nb.cell(index).evaluate(
            "(c) => { const v = c.querySelector('.ipy-stream');"
            " return v ? Number(v.dataset.length) : null; }"
        )
        held = held if now is None else int(now)
        if held is not None and held >= length:
            return
        if (now is None and held is not None) or time.monotonic() > deadline:
            gone = " (then the view was gone: the run had ended)" if now is None else ""
            raise AssertionError(
                f"the reloaded page showed {held} characters, it showed {length} before the "
                f"reload{gone}{diagnostics}"
            )
        nb.page.wait_for_timeout(50)


def run_until_logged(nb: NotebookPage, index: int, *, timeout: float = 10.0) -> str:
    """Run cell ``index`` (``%stream log -n 1 ...``) until it lists a run; its output. The
    kernel logs a run last, once it is done with its live view."""
    deadline = time.monotonic() + timeout
    while True:
        nb.run_cell(index, timeout=10)
        text = nb.output_text(index)
        if "No runs" not in text or time.monotonic() > deadline:
            return text
        nb.page.wait_for_timeout(100)


def test_reload_mid_stream_catches_up_and_streams_to_the_end(
    lab: Lab, server: StreamServer, dialogs: list[str]
) -> None:
    server.configure(tokens=TOKENS, rate=RATE, stall_after=HOLD_AFTER, stall_seconds=240)
    run = uuid.uuid4().hex[:8]  # finds this run in the run log
    path = lab.write_notebook(
        "reload",
        [
            LOAD,
            f"%%stream --bg -m gpt-4o-mini -o essay\nWrite a long essay ({run}).",
            f"%stream log -n 1 {run}",
        ],
    )
    nb = lab.open(path)
    diagnostics = Diagnostics(lab)
    nb.run_cell(0)
    nb.run_cell(1, timeout=10)  # --bg: returns at once
    request = server.completion_requests[-1]
    view = nb.output(1, SEL_STREAM).first
    nb.page.wait_for_function(
        "(a) => Number(a[0].dataset.length) > a[1]",
        arg=[view.element_handle(), CHECKPOINT_LIMIT + 500],
        timeout=60_000,
        polling=50,
    )
    server.wait_for(lambda: request.tokens_sent >= HOLD_AFTER, timeout=120)
    nb.page.wait_for_function(
        "(a) => Number(a[0].dataset.length) >= a[1]",
        arg=[view.element_handle(), len(reply_text(HOLD_AFTER))],
        timeout=60_000,
        polling=50,
    )
    before = view.evaluate(_VIEW_STATE)
    assert before["status"] == "streaming"
    nb.save()
    assert request.finished is None

    reload_page(nb)
    assert dialogs == []  # saved: no "leave the page?" prompt held the reload up
    # the restored view is there at once, still streaming, with its Stop button
    nb.wait_stream_status(1, "streaming", timeout=20)
    assert nb.output(1, SEL_STREAM_STOP).first.is_visible()

    # it catches up: the text shown before the reload, more than the checkpoint carries...
    wait_caught_up(nb, 1, before["length"], diagnostics)
    caught_up = nb.output(1, SEL_STREAM).first.evaluate(_VIEW_STATE)
    # ... while the answer is still streaming, so through the resync, not the stream's end
    assert caught_up["status"] == "streaming", caught_up["status"]
    assert letters(caught_up["text"]).startswith(letters(before["text"]))
    # rendered as Markdown: the heading, bold text, bullets and code block from the start,
    # and the numbered paragraphs (those that came back through the resync too) as a list
    assert count_elements(nb, 1, SEL_STREAM_BODY) == MARKDOWN_ELEMENTS
    assert caught_up["items"] >= before["items"] > 100, (before["items"], caught_up["items"])

    # it keeps growing in the reloaded page, to the end of the stream
    with nb.record(1, SEL_STREAM_BODY) as body, nb.record(1, SEL_STREAM, attribute=STATUS) as st:
        server.end_stall()
        server.wait_for(lambda: request.finished is not None, timeout=30)
        # the run log lists the run once the kernel is done with it, its live view included
        logged = run_until_logged(nb, 2)
    assert re.search(rf"gpt-4o-mini\s+done\s+{TOKENS}\s", logged), logged
    grown = growth(body)
    assert len(grown) >= 5, body.distinct()
    assert growing(grown), body.distinct()

    # and the whole answer is on screen at the end, marked done, as Markdown
    expected = reply_text(TOKENS)
    answer, footer = shown_answer(nb, 1)
    assert answer, (
        "the answer vanished from the reloaded page when the run ended; the cell shows "
        f"{nb.output_text(1)!r} (outputs: {nb.outputs(1).count()}, statuses seen: {st.values})"
    )
    assert squash(answer) == visible(expected)
    assert re.fullmatch(
        rf"gpt-4o-mini · done · \d+ prompt \+ {TOKENS} completion tokens · {STATS}", footer
    ), footer
    shown = nb.output(1, f"{SEL_SAVED_OUTPUT}, {SEL_STREAM_BODY}").first
    assert shown.locator("li").count() == list_items(expected)
    assert nb.outputs(1).count() == 1
    text = nb.output_text(1)
    for bad in WIDGET_ERRORS:
        assert bad not in text, (bad, text)
    nb.screenshot("stream-reloaded")
