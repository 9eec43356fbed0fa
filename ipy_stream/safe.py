"""Make untrusted model output safe to show as Markdown.

A model's answer may carry HTML or script (a prompt injection can put it there).
Notebook frontends render raw HTML inside a trusted ``text/markdown`` output and run
its event handlers, and some accept ``javascript:`` links. So before the answer is
kept as Markdown in the notebook:

* every ``<`` that could open a tag, a comment or an autolink (``<`` followed by a
  letter, ``/``, ``!`` or ``?``) outside code becomes ``&lt;``: it reads the same,
  but no renderer sees HTML;
* links and reference definitions whose destination has a scheme other than
  http, https, mailto or ftp (``javascript:``, ``data:``, ``vbscript:``...) lose
  their link syntax and show as text;
* images do not load: ``![alt](url)`` shows as a link, so an answer cannot make
  the page fetch an address (a known way to leak data out of a chat);
* code (fenced, indented, and inline spans) is left exactly as written, since
  renderers show it literally; an unclosed fence at the end is closed.

The live view gives the same guarantees in the browser (``js/src/markdown.js``):
raw HTML disabled, the same link rules, images shown as links, and DOMPurify on top.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["is_safe_url", "safe_markdown"]

_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "ftp", "ftps"})
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f\\]")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_IMAGE_OPEN = re.compile(r"(\\*)!(?=\[)")
_BACKTICKS = re.compile(r"`+")
_INLINE_LINK = re.compile(r"\]\(\s*<?([^\s)>]*)")
_REFERENCE = re.compile(r"^([ \t>]*)\[([^\]\n]+)\]:[ \t]*<?(\S*)", re.MULTILINE)


def is_safe_url(url: str) -> bool:
    """Whether a link destination may be clickable: no scheme, or an allowed one."""
    decoded = _URL_NOISE.sub("", html.unescape(url)).lower()
    match = _SCHEME.match(decoded)
    return match is None or match.group(1) in _SAFE_SCHEMES


def _neutralize_prose(text: str) -> str:
    text = _INLINE_LINK.sub(
        lambda m: m.group(0) if is_safe_url(m.group(1)) else "]\\(" + m.group(0)[2:], text
    )
    text = _REFERENCE.sub(
        lambda m: (
            m.group(0)
            if is_safe_url(m.group(3))
            else m.group(1) + "\\" + m.group(0)[len(m.group(1)) :]
        ),
        text,
    )
    # "![" opens an image unless an odd number of backslashes escapes the "!".
    text = _IMAGE_OPEN.sub(
        lambda m: m.group(0) if len(m.group(1)) % 2 else m.group(1) + "\\!", text
    )
    return _TAG_OPEN.sub("&lt;", text)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Code spans of one paragraph, paired as CommonMark pairs them.

    A backtick run not preceded by an unescaped backslash opens a span that ends at the
    next run of the same length; a run without such a partner is literal text. Line
    breaks inside the paragraph do not matter, and container markers (``>``, list
    indentation) hold no backticks, so the paragraph's source lines can be scanned
    as they are.
    """
    spans: list[tuple[int, int]] = []
    runs = list(_BACKTICKS.finditer(text))
    index = 0
    while index < len(runs):
        opener = runs[index]
        backslashes = len(text[: opener.start()]) - len(text[: opener.start()].rstrip("\\"))
        length = len(opener.group(0))
        start = opener.start()
        if backslashes % 2:
            # An escaped backtick is literal; the rest of the run may still open a span.
            length -= 1
            start += 1
        closer = next(
            (j for j in range(index + 1, len(runs)) if len(runs[j].group(0)) == length), None
        )
        if length == 0 or closer is None:
            index += 1
            continue
        spans.append((start, runs[closer].end()))
        index = closer + 1
    return spans


def _neutralize_paragraph(text: str) -> str:
    """Escape one paragraph's source, leaving its inline code spans as they are."""
    out: list[str] = []
    position = 0
    for start, end in _code_spans(text):
        out.append(_neutralize_prose(text[position:start]))
        out.append(text[start:end])
        position = end
    out.append(_neutralize_prose(text[position:]))
    return "".join(out)


@lru_cache(maxsize=1)
def _block_parser() -> MarkdownIt:
    # Only the block structure matters here: skip inline parsing, the slow half.
    return MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])


_CODE = "code"
_PROSE = "prose"


def _classify(lines: list[str]) -> tuple[list[str | int], Token | None]:
    """For each line: ``"code"``, a paragraph number (its spans may cross lines), or
    ``"prose"`` (no code spans honoured: HTML blocks, tables, definitions, blank lines).
    Also the last code block, if the text ends inside it."""
    kinds: list[str | int] = [_PROSE] * len(lines)
    last_code: Token | None = None
    in_table = False
    for number, token in enumerate(_block_parser().parse("\n".join(lines))):
        if token.type == "table_open":
            in_table = True
        elif token.type == "table_close":
            in_table = False
        if token.map is None:
            continue
        start, end = token.map
        if token.type in ("fence", "code_block"):
            kinds[start:end] = [_CODE] * (end - start)
            last_code = token
        elif token.type == "inline" and not in_table:
            kinds[start:end] = [number] * (end - start)
    return kinds, last_code


def _closing_fence(lines: list[str], token: Token | None) -> str | None:
    """The line that closes a fence left open at the end of the text, if needed."""
    if token is None or token.type != "fence" or token.map is None:
        return None
    start, end = token.map
    if any(line.strip() for line in lines[end:]):
        return None
    marker = token.markup
    last = lines[end - 1].strip().lstrip(">").strip() if end - 1 > start else ""
    if last and set(last) == {marker[0]} and len(last) >= len(marker):
        return None
    opening = lines[start]
    prefix = opening[: opening.find(marker)] if marker in opening else ""
    return "".join(c if c == ">" else " " for c in prefix) + marker


def _escape_outside_code(text: str) -> tuple[str, str | None]:
    lines = text.split("\n")
    kinds, last_code = _classify(lines)
    out: list[str] = []
    start = 0
    while start < len(lines):
        end = start + 1
        while end < len(lines) and kinds[end] == kinds[start]:
            end += 1
        chunk = "\n".join(lines[start:end])
        if kinds[start] == _CODE:
            out.append(chunk)
        elif kinds[start] == _PROSE:
            out.append(_neutralize_prose(chunk))
        else:
            out.append(_neutralize_paragraph(chunk))
        start = end
    return "\n".join(out), _closing_fence(lines, last_code)


_MAX_PASSES = 50


def safe_markdown(text: str) -> str:
    """Markdown that renders like ``text`` but cannot run script or load anything."""
    # Escaping can change the block structure (an HTML block becomes a paragraph that
    # then absorbs an indented line that was code), so repeat until the text no longer
    # changes: then every region left as is really is code in the text we emit.
    # Each pass only escapes more, so this ends; the bound is a guard.
    # Renderers treat "\r" and "\r\n" as line ends too: make the lines we see theirs.
    current = text.replace("\r\n", "\n").replace("\r", "\n")
    for _ in range(_MAX_PASSES):
        escaped, closing = _escape_outside_code(current)
        if escaped == current:
            return current if closing is None else f"{current}\n{closing}"
        current = escaped
    return _TAG_OPEN.sub("&lt;", current)
