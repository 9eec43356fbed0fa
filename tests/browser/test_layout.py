"""The live view's last frame and the saved output look the same in JupyterLab.

One cell shows the same finished answer both ways, one under the other in the same
output area: the live widget (``WidgetView``, fed the answer and finished, as a run does)
and the saved output that replaces it at the end of a run (``final_bundle``). Then the
page's own layout decides: the bodies have the same height, the whole differs by no more
than the footer, and headings, lists, code blocks and highlighted code are styled alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .lab import Lab

if TYPE_CHECKING:
    from playwright.sync_api import Locator

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
from ipy_stream.saved import final_bundle
from ipy_stream.view import WidgetView

text = {ANSWER!r}
view = WidgetView("gpt-4o-mini")
view.append(text)
outcome = Outcome(text=text, status="done", tokens=120, seconds=1.5, first_token_seconds=0.2)
view.finish(outcome)
display(view.widget)
display(HTML(final_bundle([view.saved(outcome)])["text/html"]))
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


def test_the_live_views_last_frame_and_the_saved_output_have_the_same_layout(lab: Lab) -> None:
    nb = lab.open(lab.write_notebook("layout", [BOTH]))
    nb.run_cell(0, timeout=60)
    live = nb.output(0, ".ipy-stream").first
    saved = nb.output(0, ".ipy-stream-saved").first
    live.wait_for(timeout=20_000)
    saved.wait_for(timeout=20_000)
    # the live view has drawn the whole answer and its final footer
    nb.page.wait_for_function(
        "(el) => el.dataset.status === 'done' && el.querySelector('.ipy-stream-body h1')"
        " && el.innerText.includes('The end.')",
        arg=live.element_handle(),
        timeout=20_000,
    )
    nb.screenshot("layout-live-and-saved")

    live_body, saved_body = live.locator(".ipy-stream-body"), saved.locator(".ipy-stream-body")
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
