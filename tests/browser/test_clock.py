"""Real-browser test: a wait is never silent in JupyterLab.

Before the first token the footer's clock ticks (a new second at least every second or
so), and when a stream stops sending mid-answer the footer says ``no token for N s``,
counting up, while nothing arrives. The server holds the stream (``stall_after``) until
the test lets it go, so the waits last as long as the test needs, however slow the
machine.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest

from .lab import SEL_STREAM_FOOTER, Lab, distinct
from .support import LOAD, final_answer

if TYPE_CHECKING:
    from tests.openai_server import StreamServer

    from .lab import NotebookPage, Recording

pytestmark = pytest.mark.browser

WAITING = re.compile(r"^gpt-4o-mini · waiting for the first token… · (\d+\.\d) s$")
STALLED = re.compile(r"^gpt-4o-mini · streaming… · 5 tokens · no token for (\d+) s · [\d.]+ s$")


def wait_for_values(
    recording: Recording, pattern: re.Pattern[str], count: int, timeout: float = 60.0
) -> list[str]:
    """Wait until the footer has shown ``count`` distinct texts matching ``pattern``."""
    deadline = time.monotonic() + timeout
    while True:
        seen = distinct(recording.peek(), str.strip)
        matching = [v for v in seen if pattern.match(v)]
        if len(matching) >= count:
            return matching
        if time.monotonic() > deadline:
            raise AssertionError(f"footer texts seen: {seen}")
        time.sleep(0.1)


def run_held(nb: NotebookPage, server: StreamServer, index: int) -> None:
    """Start cell ``index`` (its stream held by the server)."""
    nb.run_cell(index, timeout=10)
    server.wait_for(lambda: bool(server.completion_requests), timeout=30)


def test_the_clock_ticks_before_the_first_token_and_a_stall_is_said(
    lab: Lab, server: StreamServer
) -> None:
    path = lab.write_notebook(
        "clock",
        [LOAD, "%%stream --bg -m gpt-4o-mini\nHello?", "%%stream --bg -m gpt-4o-mini\nAgain?"],
    )
    nb = lab.open(path)
    nb.run_cell(0)

    # Held before the first token: the clock goes on, second after second.
    server.configure(tokens=12, rate=50, stall_after=0, stall_seconds=240)
    with nb.record(1, SEL_STREAM_FOOTER) as footer:
        run_held(nb, server, 1)
        waiting = wait_for_values(footer, WAITING, 4)
    seconds = [float(m.group(1)) for v in waiting if (m := WAITING.match(v))]
    assert seconds == sorted(seconds) and seconds[-1] - seconds[0] >= 2.0, waiting
    server.end_stall()
    _, done = final_answer(nb, 1, timeout=30)
    assert " · done · " in done, done

    # Held after 5 tokens: from 5 s on, the footer says how long nothing came, live.
    server.reset()
    server.configure(tokens=12, rate=50, stall_after=5, stall_seconds=240)
    with nb.record(2, SEL_STREAM_FOOTER) as footer:
        run_held(nb, server, 2)
        stalled = wait_for_values(footer, STALLED, 3)
    counts = [int(m.group(1)) for v in stalled if (m := STALLED.match(v))]
    assert counts[0] >= 5 and counts == sorted(counts) and counts[-1] > counts[0], stalled
    server.end_stall()
    _, done = final_answer(nb, 2, timeout=30)
    assert " · done · " in done and "no token" not in done, done
