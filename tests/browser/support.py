"""What the browser tests share: the expected text of a streamed answer, how rendered text
grows, how a cell's outputs and the live view read in the page, and the browser's reload.
Browser test files import helpers from here (or from ``.lab``), never from each other."""

from __future__ import annotations

import ast
import html
import itertools
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt

from tests.openai_server import generate_reply

from .lab import SEL_STREAM, SEL_WIDGET

if TYPE_CHECKING:
    from .lab import NotebookPage, Recording

LOAD = "%load_ext ipy_stream"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
STDERR_MIME = "application/vnd.jupyter.stderr"
WIDGET_ERRORS = ("Error displaying widget", "model not found", "Loading widget")
MARKDOWN_ELEMENTS = {"h1": 1, "strong": 1, "ul > li": 2, "pre code": 1}
"""What generate_reply's Markdown prefix renders to (its numbered paragraphs are an ``ol``)."""
STATS = r"first token \d+\.\d\d s · \d+ tok/s · \d+\.\d s"
FINAL_FOOTER = re.compile(r"· (done|failed|interrupted)\b.* · \d+\.\d s\s*$")
"""The last line of a final Markdown output: ``model · status · ... · 1.6 s``."""


# --- text -----------------------------------------------------------------------------------


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(" ")


def squash(text: str) -> str:
    """Whitespace collapsed, JupyterLab's heading anchors (¶) dropped: text to compare."""
    return " ".join(text.replace("¶", " ").split())


def visible(markdown: str) -> str:
    """The text a person reads when ``markdown`` is rendered (CommonMark), squashed."""
    parser = _TextOf()
    parser.feed(MarkdownIt("commonmark").render(markdown))
    return squash(html.unescape("".join(parser.parts)))


def letters(text: str) -> str:
    """Only the letters: the part of a rendered text that only grows while Markdown streams.

    Rendered Markdown is not a raw prefix of itself a moment later: ``**bold`` shows its
    asterisks until the closing ``**`` arrives, ``1`` turns into an ordered list item (whose
    number innerText does not show) once ``.`` follows, a fence's info string disappears.
    Letters do not come and go like that.
    """
    return "".join(ch for ch in text if ch.isalpha())


def growth(rec: Recording) -> list[str]:
    """The distinct successive non-empty :func:`letters` of a recording of rendered text."""
    out: list[str] = []
    for value in rec.distinct():
        text = letters(value)
        if text and (not out or out[-1] != text):
            out.append(text)
    return out


def growing(states: list[str]) -> bool:
    """Each state strictly extends the previous one."""
    return all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(states))


def active_span(rec: Recording) -> tuple[float, float]:
    """Seconds (since recording) of the first and last non-empty sample."""
    times = [s.t for s in rec.samples if s.value and s.value.strip()]
    assert times, rec.samples
    return times[0], times[-1]


def reply_text(tokens: int) -> str:
    return "".join(generate_reply(tokens))


# --- reading a cell in the page ---------------------------------------------------------------


def count_elements(nb: NotebookPage, index: int, root: str, nth: int = 0) -> dict[str, int]:
    """How many h1, strong, ``ul > li`` and ``pre code`` are under the ``nth`` ``root`` in
    cell ``index``'s outputs, counted in one go (one DOM state)."""
    return dict(
        nb.output(index, root)
        .nth(nth)
        .evaluate(
            """(el) => Object.fromEntries(['h1', 'strong', 'ul > li', 'pre code'].map(
                 (s) => [s, el.querySelectorAll(s).length]))"""
        )
    )


def error_lines(nb: NotebookPage, index: int) -> list[str]:
    """The text of each stderr or error output of cell ``index`` (tracebacks included)."""
    outputs = nb.outputs(index).and_(nb.page.locator(f'[data-mime-type="{STDERR_MIME}"]'))
    return [t.strip() for t in outputs.all_inner_texts()]


def printed(nb: NotebookPage, index: int) -> Any:
    """The Python literal that cell ``index`` printed (``print(repr(x))``)."""
    return ast.literal_eval(nb.output_text(index).strip())


def final_answer(nb: NotebookPage, index: int, *, timeout: float = 30.0) -> tuple[str, str]:
    """Wait for cell ``index``'s final output (footer rendered); (answer, footer line)."""
    text = nb.wait_final_output(index, FINAL_FOOTER, timeout=timeout)
    body, _, footer = text.rstrip().rpartition("\n")
    return body, footer.strip()


def window_pwned(nb: NotebookPage) -> Any:
    return nb.page.evaluate("() => window.__pwned")


def assert_no_widget_leftovers(nb: NotebookPage, index: int) -> None:
    """No live view, no widget, no widget error placeholder in cell ``index``."""
    text = nb.output_text(index)
    for bad in WIDGET_ERRORS:
        assert bad not in text, (bad, text)
    assert nb.output(index, SEL_WIDGET).count() == 0
    assert nb.output(index, SEL_STREAM).count() == 0


# --- the page -------------------------------------------------------------------------------


def reload_page(nb: NotebookPage, *, timeout: float = 60.0) -> None:
    """The browser's reload button: same URL and workspace; wait until the notebook is back
    with its kernel connected (JupyterLab gives the panel a new id)."""
    page = nb.page
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function(
        """(p) => { const s = window.__ipyTest && window.__ipyTest.kernelState(p);
                    return s && s.panel && s.ready && s.cells > 0; }""",
        arg=nb.path,
        timeout=timeout * 1000,
        polling=100,
    )
    nb.panel_id = page.evaluate("(p) => window.__ipyTest.kernelState(p).id", nb.path)
    nb.wait_kernel_idle(timeout=timeout)
