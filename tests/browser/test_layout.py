"""The live view's last frame and the saved output look the same in JupyterLab.

One cell shows the same finished answer both ways, one under the other in the same
output area: the live widget (``WidgetView``, fed the answer and finished, as a run does)
and the saved output that replaces it at the end of a run (``final_bundle``). Then the
page's own layout decides: the bodies have the same height, the whole differs by no more
than the footer, and headings, lists, code blocks and highlighted code are styled alike.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from ipy_stream.outcome import Outcome
from ipy_stream.render import render_markdown
from ipy_stream.saved import SavedAnswer, final_bundle

from .lab import ARTIFACTS_DIR, Lab

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser

ANSWER = """\
# A heading

Some text with **bold**, *emphasis*, `inline code` and a [link](https://example.com).

## A list

- first item
- second item with `code`
  - nested item

1. one
2. two

> A quote that runs on for a little while.

```python
def greet(name):
    # say hello
    return f"Hello, {name}!" * 2
```

| name | value |
|:-----|------:|
| a    | 1     |
| b    | 22    |

---

The end.
"""

BOTH = f"""\
from IPython.display import HTML, display
from ipy_stream.outcome import Outcome
from ipy_stream.saved import SavedAnswer, final_bundle
from ipy_stream.view import WidgetView

text = {ANSWER!r}
view = WidgetView("gpt-4o-mini")
view.append(text)
outcome = Outcome(text=text, status="done", tokens=120, seconds=1.5, first_token_seconds=0.2)
view.finish(outcome)
display(view.widget)
saved = SavedAnswer.of("gpt-4o-mini", outcome, view.html(text))
display(HTML(final_bundle([saved])["text/html"]))
"""

STYLE = """(el) => {
  const s = getComputedStyle(el);
  return {
    fontFamily: s.fontFamily, fontSize: s.fontSize, fontWeight: s.fontWeight,
    lineHeight: s.lineHeight, color: s.color, background: s.backgroundColor,
    marginTop: s.marginTop, marginBottom: s.marginBottom, paddingLeft: s.paddingLeft,
    paddingTop: s.paddingTop, whiteSpace: s.whiteSpace,
  };
}"""


def height(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return float(box["height"])


def style(locator: Locator) -> dict[str, Any]:
    result: dict[str, Any] = locator.first.evaluate(STYLE)
    return result


def wait_for_both(page: Page, area: Locator) -> tuple[Locator, Locator]:
    """The live view (once it has drawn the whole answer and its final footer) and the
    saved output, in the output area ``area``."""
    live = area.locator(".ipy-stream").first
    saved = area.locator(".ipy-stream-saved").first
    live.wait_for(timeout=60_000)
    saved.wait_for(timeout=60_000)
    page.wait_for_function(
        "(el) => el.dataset.status === 'done' && el.querySelector('.ipy-stream-body h1')"
        " && el.innerText.includes('The end.')",
        arg=live.element_handle(),
        timeout=20_000,
    )
    return live, saved


def assert_same_layout(live: Locator, saved: Locator) -> None:
    live_body, saved_body = live.locator(".ipy-stream-body"), saved.locator(".ipy-stream-body")
    # the host's rendered-Markdown styles apply to both
    assert "jp-RenderedHTMLCommon" in (live_body.get_attribute("class") or "")
    footer = height(saved.locator(".ipy-stream-footer"))
    assert abs(height(live_body) - height(saved_body)) <= 1, (
        height(live_body),
        height(saved_body),
    )
    assert abs(height(live) - height(saved)) <= footer
    # the same left rule and indent
    assert style(live)["paddingLeft"] == style(saved)["paddingLeft"]
    for selector in ("h1", "h2", "p", "li", "blockquote", "table", "td", "pre", "pre code",
                     "p code", "hr"):  # fmt: skip
        assert style(live_body.locator(selector)) == style(saved_body.locator(selector)), selector
    # highlighted code: keywords, strings and comments in the same colours and weights
    for live_token, saved_token in (
        (".hljs-keyword", ".k"),
        (".hljs-string", ".s"),
        (".hljs-comment", ".c"),
    ):
        live_style = style(live_body.locator(f"pre {live_token}"))
        saved_style = style(saved_body.locator(f"pre {saved_token}"))
        for key in ("color", "fontWeight", "fontFamily", "fontSize"):
            assert live_style[key] == saved_style[key], (live_token, key)
    # the footers read the same, in the same type
    assert (
        live.locator(".ipy-stream-footer").inner_text()
        == saved.locator(".ipy-stream-footer").inner_text()
    )
    assert style(live.locator(".ipy-stream-footer")) == style(saved.locator(".ipy-stream-footer"))


def test_the_live_views_last_frame_and_the_saved_output_have_the_same_layout(lab: Lab) -> None:
    nb = lab.open(lab.write_notebook("layout", [BOTH]))
    nb.run_cell(0, timeout=60)
    live, saved = wait_for_both(nb.page, nb.cell(0))
    nb.screenshot("layout-live-and-saved")
    assert_same_layout(live, saved)


def open_in_notebook_7(lab: Lab, path: str) -> Page:
    """Open ``path`` in Notebook 7 (served by the same Jupyter server as JupyterLab)."""
    server = lab.server
    page = lab.page
    url = f"{server.base_url}/notebooks/{urllib.parse.quote(path)}?token={server.token}"
    page.goto(url)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    return page


def run_in_notebook_7(page: Page, cell: Locator, *, tries: int = 10) -> None:
    """Run ``cell`` with Shift+Enter, as a person would, once the kernel takes it.

    While Notebook 7 is still connecting to its new kernel, a run is dropped (the prompt
    stays ``[ ]:``): then the cell is run again, up to ``tries`` times."""
    prompt = cell.locator(".jp-InputArea-prompt")
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
    for _ in range(tries):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                r"(el) => /^\[(\*|\d+)\]:$/.test(el.textContent.trim())",
                arg=prompt.element_handle(),
                timeout=10_000,
            )
        except PlaywrightTimeoutError:
            continue
        return
    raise AssertionError(f"the cell never ran in Notebook 7 ({tries} tries)")


def test_notebook_7_shows_the_same_layout_live_and_saved(lab: Lab) -> None:
    page = open_in_notebook_7(lab, lab.write_notebook("layout-nb7", [BOTH]))
    cell = page.locator(".jp-Notebook .jp-Cell").first
    run_in_notebook_7(page, cell)
    live, saved = wait_for_both(page, cell)
    lab.screenshot("layout-notebook-7")
    assert_same_layout(live, saved)


def side_by_side_output() -> dict[str, str]:
    answers = []
    for label in ("gpt-4o-mini", "gpt-4o"):
        outcome = Outcome(text=ANSWER, status="done", tokens=120, seconds=1.5)
        answers.append(SavedAnswer.of(label, outcome, render_markdown(ANSWER)))
    return final_bundle(answers)


def assert_columns(panes: Locator) -> None:
    """Two answers side by side, top-aligned, each with its body and footer."""
    assert panes.count() == 2
    left, right = panes.nth(0).bounding_box(), panes.nth(1).bounding_box()
    assert left is not None and right is not None
    assert left["x"] + left["width"] <= right["x"], (left, right)
    assert abs(left["y"] - right["y"]) < 1, (left, right)
    assert abs(left["width"] - right["width"]) < 1, (left, right)
    for i, label in enumerate(("gpt-4o-mini", "gpt-4o")):
        assert panes.nth(i).locator(".ipy-stream-body h1").inner_text() == "A heading"
        footer = panes.nth(i).locator(".ipy-stream-footer").inner_text()
        assert footer.startswith(f"{label} · done · "), footer


def test_side_by_side_answers_stay_in_columns_in_nbconvert_html(lab: Lab, tmp_path: Path) -> None:
    cell = nbformat.v4.new_code_cell("%%stream -m gpt-4o-mini,gpt-4o\nCompare.")
    cell.outputs = [nbformat.v4.new_output("display_data", data=side_by_side_output())]
    notebook = tmp_path / "columns.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), notebook)
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(notebook)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    page = lab.page
    # nbconvert's page asks a CDN for MathJax and require.js: nothing leaves this machine.
    page.route("http*://**", lambda route: route.abort())
    page.goto((tmp_path / "columns.html").as_uri(), wait_until="load")
    assert_columns(page.locator(".ipy-stream-grid .ipy-stream-saved"))
    font = page.locator(".ipy-stream-body pre code").first.evaluate(
        "(el) => getComputedStyle(el).fontFamily"
    )
    assert "mono" in font.lower(), font
    page.screenshot(path=str(ARTIFACTS_DIR / "layout-nbconvert-columns.png"), full_page=True)


def test_side_by_side_answers_stay_in_columns_in_notebook_7(lab: Lab) -> None:
    cell = nbformat.v4.new_code_cell("%%stream -m gpt-4o-mini,gpt-4o\nCompare.")
    cell.outputs = [nbformat.v4.new_output("display_data", data=side_by_side_output())]
    page = open_in_notebook_7(lab, lab.write_notebook("columns-nb7", [cell]))
    panes = page.locator(".jp-OutputArea-output .ipy-stream-grid .ipy-stream-saved")
    panes.first.wait_for(timeout=30_000)
    assert_columns(panes)
    lab.screenshot("layout-notebook-7-columns")
