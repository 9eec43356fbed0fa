"""Honest answers read as written in JupyterLab: math typeset by the notebook's MathJax,
``<`` in prose and code, code in tables, escaped characters, autolinks and prices, read
back from the page after a real ``%%stream`` run and after save and re-open."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .lab import Lab, NotebookPage

if TYPE_CHECKING:
    from tests.openai_server import StreamServer

pytestmark = pytest.mark.browser

HONEST = """\
If $0<x<1$ then $x^2<x$.

In prose a < b and c > d; `a<b` in code.

| op | code |
|----|------|
| less | `a<b` |
| or | `x \\| y` |

Escaped \\<div> and \\*stars\\*.

Docs: <https://example.com/docs>

It costs $5 and $10.

$$
\\frac{1}{2}
$$
"""


def assert_reads_as_written(nb: NotebookPage) -> None:
    saved = nb.output(1, ".ipy-stream-saved .ipy-stream-body").first
    saved.wait_for(timeout=30_000)
    # the three formulas were typeset by JupyterLab's MathJax, and nothing else was
    math = saved.locator("mjx-container")
    math.nth(2).wait_for(timeout=30_000)
    assert math.count() == 3
    paragraphs = saved.locator("p").all_inner_texts()
    assert "In prose a < b and c > d; a<b in code." in paragraphs
    assert "Escaped <div> and *stars*." in paragraphs
    assert "It costs $5 and $10." in paragraphs
    assert saved.locator("td code").all_inner_texts() == ["a<b", "x | y"]
    link = saved.locator('a[href="https://example.com/docs"]')
    assert link.inner_text() == "https://example.com/docs"
    assert "noopener" in (link.get_attribute("rel") or "")


def test_honest_answers_read_as_written(lab: Lab, server: StreamServer) -> None:
    server.configure(text=HONEST, rate=0)
    path = lab.write_notebook(
        "honest", ["%load_ext ipy_stream", "%%stream -m gpt-4o-mini -o answer\nExplain."]
    )
    nb = lab.open(path)
    nb.run_cell(0)
    nb.run_cell(1, timeout=60)
    assert_reads_as_written(nb)
    nb.screenshot("honest-answer")
    nb.save()
    nb.shutdown_kernel()
    nb.reopen()
    assert_reads_as_written(nb)
