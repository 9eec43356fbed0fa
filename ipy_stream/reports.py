"""Plain-text reports for the ``%stream`` line commands (configuration, history, log)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache

from langchain_core.messages import BaseMessage
from markdown_it import MarkdownIt

from ipy_stream.chain import SHOWN
from ipy_stream.cost import format_cost
from ipy_stream.runlog import LoggedRun

__all__ = [
    "DEFAULT_WIDTH",
    "SUBCOMMANDS",
    "format_history",
    "format_log",
    "format_rows",
    "plain_text",
    "shorten",
]

SUBCOMMANDS = """\
Commands:
  %%stream [options]        stream the cell's answer (%%stream? for every option)
  %stream                   this summary
  %stream history [THREAD]  show a conversation kept with %%stream -c [THREAD]
  %stream reset [THREAD]    forget a conversation
  %stream log [-n N] [TEXT] the latest runs in the run log (only those containing TEXT)"""


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def format_rows(title: str, rows: Sequence[tuple[str, object]]) -> str:
    """``name  value`` lines under a title, names aligned."""
    width = max(len(name) for name, _ in rows)
    return "\n".join([title, *(f"  {name.ljust(width)}  {value!s}" for name, value in rows)])


def format_history(thread: str, messages: Sequence[BaseMessage], others: Sequence[str]) -> str:
    """A conversation, one message per paragraph."""
    if not messages:
        known = f" Threads with messages: {', '.join(others)}." if others else ""
        return f"Thread '{thread}' is empty.{known}"
    turns = sum(1 for message in messages if message.type == "ai")
    lines = [f"Thread '{thread}': {turns} turn{'s' if turns != 1 else ''}"]
    for message in messages:
        role = {"human": "user", "ai": "assistant"}.get(message.type, message.type)
        mark = ""
        if message.response_metadata.get("ipy_stream_status") == "interrupted":
            mark = " (interrupted)"
        text = str(message.text)
        for label, sent in message.response_metadata.get(SHOWN, {}).items():
            # A table is named, not printed: with the line break that ends it, if it is there.
            text = text.replace(sent, label).replace(sent.rstrip("\n"), label)
        lines += ["", f"[{role}]{mark}", text]
    return "\n".join(lines)


DEFAULT_WIDTH = 100
"""Columns ``%stream log`` fits its lines into when not told otherwise."""

_MIN_WIDTH = 20
_GAP = "  "
_ARROW = " → "
_MIN_PREVIEW = 20
"""Columns the prompt → answer preview needs (or a third of the width, if more) before
other columns give way."""
_SOURCE_LIMIT = 4000
"""Characters of a prompt or answer read for its preview, which needs only the start."""


def format_log(
    runs: Sequence[LoggedRun], path: str, search: str | None, width: int = DEFAULT_WIDTH
) -> str:
    """The latest runs as a table, newest first, each line at most ``width`` columns.

    The prompt → answer preview (plain text) gets the room the other columns leave;
    at narrow widths the seconds, tokens and start-time columns give way first. A failed
    run's reason follows on its own indented line. The log's path alone is never cut, as
    it is there to be copied: when it does not fit, it gets a line of its own.
    """
    width = max(width, _MIN_WIDTH)
    where = f" matching '{_fit(_one_line(search), max(8, width // 3))}'" if search else ""
    if not runs:
        return _with_path(
            f"No runs{where} in the run log ({path}).",
            f"No runs{where} in the run log at",
            path,
            width,
        )
    lines = _with_path(
        f"Latest runs{where} (newest first), from {path}:",
        f"Latest runs{where} (newest first), from the run log at",
        path,
        width,
    ).splitlines()
    table = _Table(runs, width)
    lines.append(table.header())
    for index, run in enumerate(runs):
        lines.append(table.row(index, run))
        reason = _one_line(run.error or "") if run.status == "failed" else ""
        if reason:
            indent = " " * table.indent
            lines.append(indent + _fit(f"↳ {reason}", width - len(indent)))
    return "\n".join(lines)


def _with_path(line: str, lead: str, path: str, width: int) -> str:
    """``line`` if it fits; else ``lead`` (cut to fit) with the path, uncut, below it."""
    if _columns(line) <= width:
        return line
    return f"{_fit(lead, width)}\n{path}"


class _Table:
    """The columns of ``%stream log`` sized for the runs shown and the width."""

    def __init__(self, runs: Sequence[LoggedRun], width: int) -> None:
        self.width = width
        self.models = [_one_line(run.model) for run in runs]
        self.cells: dict[str, list[str]] = {
            "id": [str(run.id) for run in runs],
            "started (UTC)": [run.started_at[:16].replace("T", " ") for run in runs],
            "status": [run.status for run in runs],
            "tokens": ["" if run.tokens is None else str(run.tokens) for run in runs],
            "secs": ["" if run.seconds is None else f"{run.seconds:.1f}" for run in runs],
            "cost": ["" if run.cost is None else _cost(run.cost) for run in runs],
        }
        self.shown = ["id", "started (UTC)", "model", "status", "tokens", "secs"]
        if any(self.cells["cost"]):
            self.shown.append("cost")
        self.model_width = min(24, max(_columns(m) for m in [*self.models, "model"]))
        # What gives way, in turn, while the preview has too little room: a narrower
        # model column (a number) or a column left out (a name).
        for step in (16, "cost", "secs", "tokens", 10, "started (UTC)"):
            if self.preview_width >= max(_MIN_PREVIEW, width // 3):
                break
            if isinstance(step, int):
                self.model_width = min(self.model_width, max(step, len("model")))
            elif step in self.shown:
                self.shown.remove(step)

    def _width_of(self, name: str) -> int:
        if name == "model":
            return self.model_width
        return max(_columns(cell) for cell in [*self.cells[name], name])

    @property
    def preview_width(self) -> int:
        used = sum(self._width_of(name) + len(_GAP) for name in self.shown)
        return self.width - used

    @property
    def indent(self) -> int:
        """Where the second column starts: failure reasons are indented to it."""
        return self._width_of("id") + len(_GAP)

    def _line(self, cells: dict[str, str], preview: str) -> str:
        parts = []
        for name in self.shown:
            size = self._width_of(name)
            cell = _fit(cells[name], size)
            pad = " " * (size - _columns(cell))
            parts.append(pad + cell if name in ("id", "tokens", "secs", "cost") else cell + pad)
        line = _GAP.join(parts) + _GAP + preview
        # A last guard: nothing above should make a line wider, but a terminal that
        # wraps a table is worse than a cell cut short.
        return _fit(line.rstrip(), self.width)

    def header(self) -> str:
        names = {name: name for name in self.shown}
        return self._line(names, _fit("prompt → answer", max(self.preview_width, 0)))

    def row(self, index: int, run: LoggedRun) -> str:
        """The line for ``run``, the ``index``-th of the runs the table was sized for."""
        cells = {name: values[index] for name, values in self.cells.items()}
        cells["model"] = self.models[index]
        return self._line(cells, _preview(run, max(self.preview_width, 0)))


def _cost(usd: float) -> str:
    """``$0.0012``: the footer's figure without its "≈" (the column says "cost")."""
    return format_cost(usd).removeprefix("≈ ")


def _preview(run: LoggedRun, width: int) -> str:
    """``prompt → answer`` as plain text in ``width`` columns, both kept in view."""
    prompt = plain_text(run.prompt)
    answer = plain_text(run.answer) or "(no answer)"
    room = width - len(_ARROW)
    if room < 8 or _columns(prompt) + _columns(answer) <= room:
        return _fit(f"{prompt}{_ARROW}{answer}", width)
    # The prompt gets two fifths, or more when the answer is short; the answer the rest.
    prompt = _fit(prompt, max(room * 2 // 5, room - _columns(answer)))
    return f"{prompt}{_ARROW}{_fit(answer, room - _columns(prompt))}"


@cache
def _markdown() -> MarkdownIt:
    # The answers' dialect (see ipy_stream.render) without math: $…$ stays as written.
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    return md.enable(["table", "strikethrough"])


def plain_text(markdown: str, limit: int = _SOURCE_LIMIT) -> str:
    """The text a reader sees in the first ``limit`` characters of ``markdown``, on one
    line: markup (headings, emphasis, code marks, links, fences, list bullets, tables)
    dropped, link and image texts kept, whitespace collapsed."""
    pieces: list[str] = []
    for token in _markdown().parse(markdown[:limit]):
        if token.type == "inline":
            for child in token.children or []:
                if child.type in ("text", "code_inline", "image"):
                    pieces.append(child.content)  # an image's content is its alt text
                elif child.type in ("softbreak", "hardbreak"):
                    pieces.append(" ")
        elif token.type in ("fence", "code_block"):
            pieces.append(f" {token.content} ")
        else:
            pieces.append(" ")  # block boundaries (paragraphs, items, cells) are spaces
    return _one_line("".join(pieces))


def _one_line(text: str) -> str:
    """``text`` on one line: control characters become spaces, whitespace is collapsed."""
    text = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    return " ".join(text.split())


def _char_columns(char: str) -> int:
    """Columns a character takes in a terminal or notebook: 0 for combining marks and
    format characters, 2 for wide East Asian ones (and most emoji), else 1."""
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _columns(text: str) -> int:
    return sum(_char_columns(char) for char in text)


def _fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, ending with "…" when it had to be cut."""
    if _columns(text) <= width:
        return text
    if width <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for char in text:
        used += _char_columns(char)
        if used > width - 1:
            break
        kept.append(char)
    # No ".…" or " …" where the cut falls after punctuation or a space.
    return "".join(kept).rstrip(" .;:,…") + "…"
