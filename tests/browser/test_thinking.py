"""Real-browser test of the live view's Thinking section: what a person sees in JupyterLab
while a model thinks, then answers.

The project's test server streams reasoning deltas (``reasoning_content``) before the
answer. While they come, a ``details.ipy-stream-thinking`` above the answer's body is open
and its text grows; once the answer streams it folds; a click on its summary opens it again,
and it stays open; the saved output that replaces the view shows it folded. The reasoning
holds raw HTML, which must show as text, live and saved, and never run.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.openai_server import tokenize

from .lab import SEL_STREAM, SEL_STREAM_BODY, Lab, Recording
from .support import LOAD, growing, growth, letters, reload_page, reply_text, window_pwned

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.openai_server import StreamServer

    from .lab import NotebookPage

pytestmark = pytest.mark.browser

SEL_THINKING = ".ipy-stream-thinking"
SEL_THINKING_BODY = f"{SEL_THINKING} > .ipy-stream-thinking-body"
SEL_SUMMARY = f"{SEL_THINKING} > summary"

REASONING = (
    "First I **recall** what a generator is: a function that yields values one at a "
    "time, keeping its state between calls. Then I think about laziness, memory, and "
    "the iterator protocol, and how `next` drives it.\n\n"
    'Careful with <img src=x onerror="window.__pwned=1"> and '
    "<script>window.__pwned=2</script> here: they are only text.\n\n"
    "Finally I plan a short answer with an example."
)
ANSWER_HELD = 10
"""The server holds the answer after this many tokens until the test has clicked the
Thinking section open again: the click lands while the answer streams, however slow the
page, and the rest of the answer comes after it."""
OPEN_WHILE_STREAMING = (
    f'{SEL_STREAM}[data-status="streaming"] {SEL_THINKING}[open] + {SEL_STREAM_BODY}'
)
"""The live answer while the Thinking section above it is open and the answer streams."""
# "1 token", any other count "N tokens"
LIVE_LABEL = re.compile(r"^Thinking · (?:(1) token|(\d*[02-9]|\d{2,}) tokens) · \d+\.\d s$")


def wait_for(
    condition: Callable[[], object], what: str | Callable[[], str], *, timeout: float = 30.0
) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` (or what it returns then)
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {timeout} s: {what if isinstance(what, str) else what()}"
            )
        time.sleep(0.05)


def thinking_state(nb: NotebookPage, index: int) -> dict[str, Any] | None:
    """The live Thinking section of cell ``index`` as one DOM state (None if absent)."""
    section = nb.output(index, SEL_THINKING)
    if not section.count():
        return None
    return dict(
        section.first.evaluate(
            """(el) => ({
                 hidden: el.hidden,
                 open: el.open,
                 summary: el.querySelector('summary').textContent,
                 text: el.querySelector('.ipy-stream-thinking-body').textContent,
                 images: el.querySelectorAll('img, script').length,
                 aboveBody: el.nextElementSibling !== null
                   && el.nextElementSibling.classList.contains('ipy-stream-body'),
                 body: el.parentElement.querySelector('.ipy-stream-body').textContent,
                 status: el.parentElement.dataset.status,
                 height: el.getBoundingClientRect().height,
                 color: getComputedStyle(el.querySelector('summary')).color,
               })"""
        )
    )


def test_thinking_streams_open_folds_for_the_answer_and_is_saved_folded(
    lab: Lab, server: StreamServer
) -> None:
    server.configure(
        tokens=80,
        rate=15,  # about 5 s of thinking, then about 5 s of answer
        reasoning=REASONING,
        reasoning_field="reasoning_content",
        stall_after=ANSWER_HELD,
        stall_seconds=240,
    )
    nb = lab.open(
        lab.write_notebook("thinking", [LOAD, "%%stream -m gpt-4o-mini\nExplain generators."])
    )
    nb.run_cell(0)
    unsafe = nb.watch_unsafe(1)
    with (
        nb.record(1, SEL_THINKING_BODY) as text,
        nb.record(1, SEL_THINKING, attribute="open") as opened,
    ):
        watch = nb.start_cell(1)
        assert watch is not None
        _while_thinking(nb, text)
        folded = _once_answering(nb)
        _opened_by_a_click(nb, server)
        nb.wait_run_done(watch, 1, timeout=60)
        final = nb.wait_final_output(1)

    # The thinking's text only grew, to all of it (raw HTML included, as text).
    grown = growth(text)
    assert growing(grown), text.distinct()
    assert grown[-1] == letters(REASONING), grown[-1]
    # open (""), then folded (None), then opened by the click (""): in that order.
    assert _in_order([s.value for s in opened.samples], ["", None, ""]), opened.samples

    _saved_folded(nb, final, folded)
    # Nothing that could run script ever appeared in the cell's outputs, and nothing ran.
    assert nb.unsafe_seen(unsafe, stop=True) == []
    assert window_pwned(nb) is None


def _while_thinking(nb: NotebookPage, text: Recording) -> None:
    """While the model thinks: the section shows, open, above an empty answer, and its
    text grows as the reasoning arrives."""
    nb.output(1, f"{SEL_THINKING}[open]").first.wait_for(state="visible", timeout=30_000)
    thinking = thinking_state(nb, 1)
    assert thinking is not None
    assert thinking["aboveBody"], thinking
    assert thinking["status"] == "streaming", thinking
    assert thinking["body"] == "", "the thinking is not part of the answer"
    assert LIVE_LABEL.match(str(thinking["summary"])), thinking
    wait_for(
        lambda: len(growth(_peeked(text))) >= 3,
        lambda: f"the thinking's text grows: {_peeked(text).distinct()}",
    )
    nb.screenshot("thinking-midway")


def _once_answering(nb: NotebookPage) -> dict[str, Any]:
    """Once the answer streams: the section is folded, with all of the thinking in it."""
    wait_for(
        lambda: (s := thinking_state(nb, 1)) is not None and bool(s["body"]) and not s["open"],
        "the section folds once the answer starts",
    )
    folded = thinking_state(nb, 1)
    assert folded is not None
    assert folded["status"] == "streaming", folded
    assert 'Careful with <img src=x onerror="window.__pwned=1">' in str(folded["text"])
    assert "<script>window.__pwned=2</script>" in str(folded["text"])
    assert folded["images"] == 0, folded
    assert "Careful" not in str(folded["body"]), "the thinking is not part of the answer"
    assert LIVE_LABEL.match(str(folded["summary"])), folded
    return folded


def _opened_by_a_click(nb: NotebookPage, server: StreamServer) -> None:
    """A click on the summary opens it again (while the server holds the answer), and it
    stays open while the rest of the answer streams."""
    nb.output(1, SEL_SUMMARY).first.click()
    nb.output(1, f"{SEL_THINKING}[open]").first.wait_for(state="visible", timeout=10_000)
    held = len(letters(reply_text(ANSWER_HELD)))  # the most the answer can show yet

    def answer_grew() -> bool:
        body = nb.output(1, SEL_STREAM_BODY).first.inner_text()
        return len(letters(body)) > held + 20

    # Recorded in the page, on every change: what the answer showed while the section was
    # open and the answer still streaming, however late this test looks.
    with nb.record(1, OPEN_WHILE_STREAMING) as open_body:
        server.end_stall()
        wait_for(answer_grew, "the answer goes on")
    shown = [len(letters(value)) for value in open_body.values]
    assert shown and max(shown) > held + 20, ("the person's choice is kept", open_body.samples)


def _saved_folded(nb: NotebookPage, final: str, folded: dict[str, Any]) -> None:
    """The saved output: the thinking folded above the answer, its raw HTML as text."""
    saved = nb.final_output(1).first.locator(SEL_THINKING)
    assert saved.count() == 1
    # As tall as the live one was folded: the swap does not move the answer.
    saved_height = float(saved.evaluate("(el) => el.getBoundingClientRect().height"))
    assert abs(saved_height - float(folded["height"])) <= 1, (saved_height, folded)
    assert saved.evaluate("(el) => el.open") is False
    summary = saved.locator("summary").inner_text()
    assert re.match(r"Thinking · (1 token|(\d*[02-9]|\d{2,}) tokens)\b", summary), summary
    # Muted like the footer, as it was live.
    color = saved.locator("summary").evaluate("(el) => getComputedStyle(el).color")
    assert color == folded["color"], (color, folded["color"])
    saved_text = str(saved.evaluate("(el) => el.textContent"))
    assert 'Careful with <img src=x onerror="window.__pwned=1">' in saved_text
    saved_body = nb.final_output(1).first.locator(SEL_STREAM_BODY).inner_text()
    assert saved_body.strip()
    assert "Careful" not in saved_body, "the thinking is not part of the answer"
    assert "Careful" not in final.rsplit("\n", 1)[-1], "nor of the footer"


def _peeked(recording: Recording) -> Recording:
    """A recording's samples so far, as a Recording (for growth() while it records)."""
    return Recording(samples=recording.peek())


def _in_order(values: list[str | None], wanted: list[str | None]) -> bool:
    """``wanted`` is a subsequence of ``values``."""
    it = iter(values)
    return all(any(v == w for v in it) for w in wanted)


def test_a_page_reloaded_while_the_model_thinks_shows_the_thinking_and_goes_on(
    lab: Lab, server: StreamServer, dialogs: list[str]
) -> None:
    # All the thinking, then the server holds the answer until the test lets it go: the
    # page is reloaded in between, when only the `thinking` trait can bring it back.
    server.configure(
        tokens=40,
        rate=30,
        reasoning=REASONING,
        reasoning_field="reasoning_content",
        stall_after=0,
        stall_seconds=240,
    )
    path = lab.write_notebook(
        "thinking-reload", [LOAD, "%%stream --bg -m gpt-4o-mini -o answer\nExplain generators."]
    )
    nb = lab.open(path)
    nb.run_cell(0)
    nb.run_cell(1, timeout=10)  # --bg: the kernel stays free
    request = server.completion_requests[-1]
    thoughts = len(tokenize(REASONING))
    server.wait_for(lambda: request.reasoning_sent == thoughts, timeout=60)
    wait_for(
        lambda: letters(str((thinking_state(nb, 1) or {}).get("text"))) == letters(REASONING),
        lambda: f"all the thinking shows before the reload: {thinking_state(nb, 1)}",
    )
    nb.save()

    reload_page(nb)
    assert dialogs == []
    nb.wait_stream_status(1, "streaming", timeout=20)
    # The reloaded page shows it all, open above the empty answer, with its count.
    wait_for(
        lambda: letters(str((thinking_state(nb, 1) or {}).get("text"))) == letters(REASONING),
        lambda: f"the reloaded page shows the thinking: {thinking_state(nb, 1)}",
    )
    restored = thinking_state(nb, 1)
    assert restored is not None and restored["open"] and not restored["hidden"], restored
    assert restored["body"] == "" and restored["images"] == 0, restored
    label = LIVE_LABEL.match(str(restored["summary"]))
    assert label is not None and int(label.group(1) or label.group(2)) == thoughts, restored

    # The answer then streams into the reloaded page, and the thinking folds for it.
    server.end_stall()
    nb.wait_stream_status(1, "done", timeout=60)
    wait_for(
        lambda: not (thinking_state(nb, 1) or {"open": True})["open"],
        lambda: f"folded once the answer came: {thinking_state(nb, 1)}",
    )
    ended = thinking_state(nb, 1)
    assert ended is not None
    shown = reply_text(40).replace("```python", "```")  # the fence's language is not shown
    assert letters(str(ended["body"])) == letters(shown), ended
    assert letters(str(ended["text"])) == letters(REASONING)
    assert window_pwned(nb) is None
