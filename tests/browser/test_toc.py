"""Real-browser test: an answer's headings stay out of JupyterLab's table of contents.

The table of contents lists the notebook's own sections; JupyterLab adds the headings
of rendered outputs to it (on by default), so every heading of every long answer would
fill the list and shift its numbering. The saved output marks them ``jp-toc-ignore``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nbformat
import pytest

from .lab import Lab
from .support import LOAD, final_answer

if TYPE_CHECKING:
    from tests.openai_server import StreamServer

pytestmark = pytest.mark.browser

ANSWER = "# Answer title\n\nSome text.\n\n## Answer part\n\nMore text.\n"
TOC_TEXT = """() => {
  const panel = document.querySelector('.jp-TableOfContents');
  return panel ? Array.from(panel.querySelectorAll('.jp-tocItem-content'))
    .map((el) => el.textContent.trim()) : null;
}"""


def test_an_answers_headings_stay_out_of_the_table_of_contents(
    lab: Lab, server: StreamServer
) -> None:
    server.configure(text=ANSWER)
    nb = lab.open(
        lab.write_notebook(
            "toc",
            [
                nbformat.v4.new_markdown_cell("# My analysis"),
                LOAD,
                "%%stream -m gpt-4o-mini\nExplain.",
                "from IPython.display import Markdown\nMarkdown('# Output after the answer')",
            ],
        )
    )
    nb.page.get_by_title("Table of Contents").first.click()
    nb.page.wait_for_function(f"() => ({TOC_TEXT})()?.includes('My analysis')")
    nb.run_cell(1)
    nb.run_cell(2)
    body, _ = final_answer(nb, 2)
    assert "Answer title" in body and "Answer part" in body
    nb.run_cell(3)
    # An output's heading after the answer's is listed: the answer's output was read too.
    handle = nb.page.wait_for_function(
        f"() => {{ const t = ({TOC_TEXT})(); return t?.includes('Output after the answer') && t; }}"
    )
    listed = handle.json_value()
    assert listed == ["My analysis", "Output after the answer"], listed
