"""A long answer keeps its progress in sight, and the reader can follow its newest text.

In real JupyterLab, a background run whose answer grows far past the bottom of the
notebook: its footer and its Stop button stay inside the notebook's visible area at
every check, the newest text stays in view while the reader follows it, scrolling up
to read stops the following (the page no longer moves under the reader), the "newest"
button brings the end back and follows again, and the Stop button works from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .lab import SEL_STREAM, SEL_STREAM_STOP, Lab
from .support import LOAD, final_answer

if TYPE_CHECKING:
    from tests.openai_server import StreamServer

    from .lab import NotebookPage

pytestmark = pytest.mark.browser

# Where things are, against the notebook's scrolling area (viewport coordinates).
GEOMETRY = """(root) => {
  const scroller = root.closest('.jp-WindowedPanel-outer');
  const box = (el) => el ? el.getBoundingClientRect() : null;
  const area = box(scroller);
  const run = root.closest('.ipy-stream-run');
  const inside = (el) => {
    const b = box(el);
    return !!b && b.height > 0 && b.top >= area.top - 1 && b.bottom <= area.bottom + 1;
  };
  const body = root.querySelector('.ipy-stream-body');
  const newest = root.querySelector('.ipy-stream-newest');
  return {
    scrollTop: scroller.scrollTop,
    areaHeight: area.height,
    height: box(root).height,
    length: Number(root.dataset.length || 0),
    pinned: root.dataset.pinned || null,
    footerInSight: inside(root.querySelector('.ipy-stream-footer')),
    stopInSight: inside(run && run.querySelector('.ipy-stream-stop')),
    newestInSight: inside(newest) && getComputedStyle(newest).display !== 'none',
    // the end of the run, against the bottom of the notebook's visible area
    endBelow: box(run || root).bottom - area.bottom,
    textBottom: box(body.lastElementChild || body).bottom - area.bottom,
  };
}"""


def geometry(nb: NotebookPage) -> dict[str, Any]:
    result: dict[str, Any] = nb.output(1, SEL_STREAM).first.evaluate(GEOMETRY)
    return result


def wait_for_growth(nb: NotebookPage, more: int) -> None:
    """Wait until the live view holds ``more`` code points more than now."""
    start = geometry(nb)["length"]
    nb.page.wait_for_function(
        "([el, n]) => Number(el.dataset.length || 0) >= n",
        arg=[nb.output(1, SEL_STREAM).first.element_handle(), start + more],
        timeout=30_000,
    )


def test_a_long_answer_keeps_its_footer_and_stop_in_sight_and_follows_the_newest_text(
    lab: Lab, server: StreamServer
) -> None:
    server.configure(tokens=4000, rate=60)  # about a minute unless stopped
    path = lab.write_notebook("pin", [LOAD, "%%stream --bg -m gpt-4o-mini -o essay\nAn essay."])
    nb = lab.open(path)
    nb.run_cell(0)
    nb.run_cell(1, timeout=10)
    root = nb.output(1, SEL_STREAM).first
    root.wait_for(timeout=30_000)
    nb.page.wait_for_function(
        "(el) => el.getBoundingClientRect().height > "
        "1.5 * el.closest('.jp-WindowedPanel-outer').clientHeight",
        arg=root.element_handle(),
        timeout=60_000,
    )

    # Following: the page scrolls along, the newest text and the progress stay in sight.
    for _ in range(3):
        wait_for_growth(nb, 300)
        seen = geometry(nb)
        assert seen["height"] > seen["areaHeight"], seen
        assert seen["footerInSight"] and seen["stopInSight"], seen
        assert -seen["areaHeight"] / 3 < seen["textBottom"] <= 2, seen
    nb.screenshot("pin-following")

    # Scrolling up to read: the page stays put while the answer grows under it, and the
    # footer and Stop button are held at the bottom of the screen, with "newest".
    scroller_box = nb.page.locator(".jp-WindowedPanel-outer").first.bounding_box()
    assert scroller_box is not None
    nb.page.mouse.move(scroller_box["x"] + 300, scroller_box["y"] + 200)
    nb.page.mouse.wheel(0, -600)
    nb.page.wait_for_function(
        "(el) => el.dataset.pinned === 'away'", arg=root.element_handle(), timeout=10_000
    )
    reading = geometry(nb)
    for _ in range(3):
        wait_for_growth(nb, 300)
        seen = geometry(nb)
        assert abs(seen["scrollTop"] - reading["scrollTop"]) <= 2, (reading, seen)
        assert seen["endBelow"] > 100, seen
        assert seen["footerInSight"] and seen["stopInSight"] and seen["newestInSight"], seen
    nb.screenshot("pin-reading")

    # "newest": back to the end, following again.
    root.locator(".ipy-stream-newest").click()
    wait_for_growth(nb, 300)
    seen = geometry(nb)
    assert -seen["areaHeight"] / 3 < seen["textBottom"] <= 2, seen
    assert seen["footerInSight"] and seen["stopInSight"] and not seen["newestInSight"], seen

    # The Stop button, held in sight, stops the run.
    request = server.completion_requests[-1]
    nb.output(1, SEL_STREAM_STOP).click()
    server.wait_for(lambda: request.finished is not None, timeout=10)
    _, footer = final_answer(nb, 1, timeout=20)
    assert "interrupted" in footer, footer
    assert not request.completed
