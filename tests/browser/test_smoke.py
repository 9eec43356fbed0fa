"""Smoke tests of the browser harness itself: JupyterLab + Chromium + the helpers in lab/."""

from __future__ import annotations

import itertools
import sys
import time
from typing import TYPE_CHECKING

import nbformat
import pytest

from .lab import (
    SEL_STREAM,
    SEL_STREAM_BODY,
    SEL_STREAM_FOOTER,
    SEL_WIDGET,
    distinct,
    sample_text,
)

if TYPE_CHECKING:
    from .lab import Lab

pytestmark = pytest.mark.browser

LOOP = "import time\nfor i in range(10):\n    print(i, flush=True)\n    time.sleep(0.2)"
FINAL = "\n".join(str(i) for i in range(10))


def _growing(states: list[str]) -> bool:
    """Each state is a strict prefix-extension of the one before."""
    return all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(states))


def test_output_grows_while_the_cell_runs(lab: Lab) -> None:
    nb = lab.open(lab.write_notebook("loop", [LOOP]))
    with nb.record(0) as rec:
        watch = nb.start_cell(0)
        assert watch is not None
        polled = sample_text(nb.outputs(0), until=lambda: nb.run_finished(watch), timeout=30)
        nb.wait_run_done(watch, 0)
    nb.screenshot("smoke-loop")

    seen = distinct(polled, str.strip)
    assert len(seen) >= 4, seen  # ten prints 0.2 s apart: most are seen by 30 ms polling
    assert _growing(seen), seen
    assert seen[-1] == FINAL

    # the in-page recorder sees every DOM state: each of the ten prints, in order
    recorded = rec.distinct()
    assert recorded == ["\n".join(str(i) for i in range(n)) for n in range(1, 11)], recorded
    assert rec.samples[-1].t - rec.samples[0].t > 1.0  # spread over the run, not one burst
    assert nb.output_text(0).strip() == FINAL
    assert nb.prompt(0) == "[1]:"


def test_ipywidget_renders(lab: Lab) -> None:
    nb = lab.open(
        lab.write_notebook("widget", ['import ipywidgets as w\nw.HTML("<b>hello widget</b>")'])
    )
    plugins = nb.page.evaluate("() => window.jupyterapp.listPlugins()")
    assert "@jupyter-widgets/jupyterlab-manager:plugin" in plugins
    nb.run_cell(0)
    widget = nb.output(0, SEL_WIDGET)
    widget.locator("b", has_text="hello widget").wait_for(timeout=15_000)
    nb.screenshot("smoke-widget")
    assert "widget-html" in (widget.first.get_attribute("class") or "")
    # a widget view, not the "Loading widget..." / model-not-found text fallback
    assert "Loading widget" not in nb.output_text(0)
    assert "HTML(value=" not in nb.output_text(0)


def test_output_survives_save_kernel_shutdown_and_reopen(lab: Lab) -> None:
    path = lab.write_notebook("persist", ["print('plain output', 6 * 7)"])
    nb = lab.open(path)
    nb.run_cell(0)
    assert nb.output_text(0).strip() == "plain output 42"
    nb.save()
    on_disk = lab.read_notebook(path).cells[0]
    assert on_disk.outputs[0]["text"] == "plain output 42\n"
    assert on_disk.execution_count == 1

    first_kernels = {k["id"] for k in lab.server.kernels()}
    nb.shutdown_kernel()
    nb.reopen()
    assert nb.output_text(0).strip() == "plain output 42"
    assert nb.prompt(0) == "[1]:"
    assert not first_kernels & {k["id"] for k in lab.server.kernels()}  # a new kernel
    nb.screenshot("smoke-reopened")


def test_interrupt_from_the_toolbar(lab: Lab) -> None:
    nb = lab.open(
        lab.write_notebook(
            "sleep",
            ["import time\nprint('sleeping', flush=True)\ntime.sleep(60)", "print('alive')"],
        )
    )
    watch = nb.start_cell(0)
    assert watch is not None
    nb.wait_output_text(0, "sleeping")
    started = time.monotonic()
    nb.interrupt(0)
    elapsed = time.monotonic() - started
    nb.wait_output_text(0, "KeyboardInterrupt", timeout=5)
    nb.screenshot("smoke-interrupt")
    assert elapsed < 10, elapsed
    nb.wait_kernel_idle(timeout=10)
    nb.run_cell(1, timeout=10)  # same kernel still usable
    assert nb.output_text(1).strip() == "alive"


def test_run_all_renders_markdown(lab: Lab) -> None:
    nb = lab.open(
        lab.write_notebook(
            "runall",
            [
                nbformat.v4.new_markdown_cell("# A title"),
                "x = 6 * 7",
                "from IPython.display import Markdown\nMarkdown(f'**answer** {x}')",
                "import sys\nprint(sys.executable)",
            ],
        )
    )
    nb.run_all()
    assert [nb.prompt(i) for i in (1, 2, 3)] == ["[1]:", "[2]:", "[3]:"]
    assert nb.output_text(3).strip() == sys.executable  # the kernel runs this venv's python
    md = nb.output(2, ".jp-RenderedMarkdown")
    assert md.inner_text().strip() == "answer 42"
    assert md.locator("strong").inner_text() == "answer"


# A stand-in for ipy_stream's DOM contract, to exercise the stream helpers: an HTML widget
# with the .ipy-stream structure grows word by word, then its display is replaced in place
# (update_display_data) by an HTML output, as ipy_stream's is.
STAND_IN = """\
import time
import ipywidgets as w
from IPython.display import HTML, display

def view(status, body):
    return (f'<div class="ipy-stream" data-status="{status}">'
            f'<div class="ipy-stream-body"><p>{body}</p></div>'
            f'<div class="ipy-stream-footer">fake-model</div></div>')

box = w.HTML(view("streaming", ""))
handle = display(box, display_id=True)
text = ""
for word in "one two three four five".split():
    text = (text + " " + word).strip()
    box.value = view("streaming", text)
    time.sleep(0.15)
box.value = view("done", text)
handle.update(HTML(f"<p>{text}</p><p><em>fake-model</em></p>"))
"""


def test_stream_helpers_on_a_stand_in(lab: Lab) -> None:
    nb = lab.open(lab.write_notebook("standin", [STAND_IN]))
    with (
        nb.record(0, SEL_STREAM_BODY) as body,
        nb.record(0, SEL_STREAM, attribute="data-status") as status,
    ):
        watch = nb.start_cell(0)
        assert watch is not None
        nb.wait_stream_status(0, "streaming", timeout=15)
        assert any(s.value == "streaming" for s in status.peek())  # readable mid-run
        assert nb.stream_widget(0).locator(SEL_STREAM_FOOTER).inner_text() == "fake-model"
        nb.wait_run_done(watch, 0)
    words = ["one", "two", "three", "four", "five"]
    assert body.distinct() == [" ".join(words[:n]) for n in range(1, 6)]
    assert status.values == ["streaming", "done"]
    assert status.samples[-1].value is None  # the widget is gone...
    assert nb.stream_status(0) is None
    final = nb.final_output(0)  # ...replaced in place by an HTML output
    assert final.inner_text().split("\n")[0] == "one two three four five"
    assert final.locator("em").inner_text() == "fake-model"
    assert nb.outputs(0).count() == 1
    nb.screenshot("smoke-stand-in")
