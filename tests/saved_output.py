"""Read the output a finished run leaves in the notebook, as a person would see it.

The saved output is ``text/html`` (the answer rendered once and sanitized, under a
footer) plus ``text/plain``. These helpers take it apart with a real HTML parser
(BeautifulSoup, installed with nbconvert) so tests can ask what a reader sees: each
answer's rendered body, its visible text, its footer and its status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bs4 import BeautifulSoup, Tag

from ipy_stream.render import render_markdown


@dataclass(frozen=True)
class SavedAnswer:
    """One answer of a saved output."""

    body_html: str
    """The inner HTML of the rendered answer."""
    text: str
    """The answer's visible text."""
    footer: str
    status: str

    def renders(self, markdown: str) -> bool:
        """Whether the body is exactly ``markdown`` rendered (the answer, whole)."""
        return self.body_html == _reserialized(render_markdown(markdown))

    def starts_with(self, markdown: str) -> bool:
        """Whether the body begins with what ``markdown`` renders to, up to its last
        finished block (for partial answers, whose last block may still be open)."""
        expected = _reserialized(render_markdown(markdown))
        cut = expected.rfind("\n<", 0, len(expected) - 1)
        return self.body_html.startswith(expected[: cut + 1] if cut > 0 else "")


def _reserialized(html: str) -> str:
    # Compared as the parser below serializes it, like the body it is compared with.
    return BeautifulSoup(html, "html.parser").decode()


@dataclass(frozen=True)
class Saved:
    """The saved output of one ``%%stream`` cell."""

    html: str
    plain: str
    answers: list[SavedAnswer]
    columns: bool
    """Whether several answers sit side by side."""

    @property
    def answer(self) -> SavedAnswer:
        """The only answer (one model)."""
        (answer,) = self.answers
        return answer

    @property
    def visible(self) -> str:
        """Everything a reader sees in the output (answers and footers)."""
        return BeautifulSoup(self.html, "html.parser").get_text()


def saved(data: Mapping[str, Any]) -> Saved:
    """Parse an output's ``data`` (a mime bundle) that ``%%stream`` left behind."""
    assert set(data) == {"text/html", "text/plain"}, sorted(data)
    html = str(data["text/html"])
    soup = BeautifulSoup(html, "html.parser")
    answers = []
    for root in soup.select(".ipy-stream-saved"):
        body = root.select_one(".ipy-stream-body")
        footer = root.select_one(".ipy-stream-footer")
        assert isinstance(body, Tag) and isinstance(footer, Tag), html[:500]
        answers.append(
            SavedAnswer(
                body_html=body.decode_contents(),
                text=body.get_text(),
                footer=footer.get_text(),
                status=str(root.get("data-status")),
            )
        )
    assert answers, f"no answer in the saved output: {html[:500]}"
    return Saved(
        html=html,
        plain=str(data["text/plain"]),
        answers=answers,
        columns=soup.select_one(".ipy-stream-grid") is not None,
    )
