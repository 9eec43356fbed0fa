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

:func:`render_html` is the same guarantee for the live view: Markdown to HTML with
raw HTML disabled, the same link rules, and images shown as links.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["is_safe_url", "render_html", "safe_markdown"]

_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "ftp", "ftps"})
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f\\]")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_IMAGE_OPEN = re.compile(r"(?<!\\)!(?=\[)")
# An inline code span on one line, not containing "|" (a GFM table splits cells
# on "|" before it sees code spans). Missing a span only escapes too much.
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)[^\n|]+?(?<!`)\1(?!`)")
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
    text = _IMAGE_OPEN.sub("\\\\!", text)
    return _TAG_OPEN.sub("&lt;", text)


def _neutralize_lines(text: str) -> str:
    """Escape a run of non-code lines, leaving inline code spans as they are."""
    out: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_neutralize_prose(text[position : span.start()]))
        out.append(span.group(0))
        position = span.end()
    out.append(_neutralize_prose(text[position:]))
    return "".join(out)


@lru_cache(maxsize=1)
def _block_parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _code_blocks(lines: list[str]) -> list[tuple[int, int, Token]]:
    tokens = _block_parser().parse("\n".join(lines))
    return [
        (token.map[0], token.map[1], token)
        for token in tokens
        if token.type in ("fence", "code_block") and token.map is not None
    ]


def _closing_fence(lines: list[str], start: int, end: int, token: Token) -> str | None:
    """The line that closes a fence left open at the end of the text, if needed."""
    if token.type != "fence" or any(line.strip() for line in lines[end:]):
        return None
    marker = token.markup
    last = lines[end - 1].strip().lstrip(">").strip() if end - 1 > start else ""
    if last and set(last) == {marker[0]} and len(last) >= len(marker):
        return None
    opening = lines[start]
    prefix = opening[: opening.find(marker)] if marker in opening else ""
    return "".join(c if c == ">" else " " for c in prefix) + marker


def safe_markdown(text: str) -> str:
    """Markdown that renders like ``text`` but cannot run script or load anything."""
    lines = text.split("\n")
    out: list[str] = []
    cursor = 0
    closing: str | None = None
    for start, end, token in _code_blocks(lines):
        if start > cursor:
            out.append(_neutralize_lines("\n".join(lines[cursor:start])))
        out.append("\n".join(lines[start:end]))
        closing = _closing_fence(lines, start, end, token)
        cursor = end
    if cursor < len(lines):
        out.append(_neutralize_lines("\n".join(lines[cursor:])))
    if closing is not None:
        out.append(closing)
    return "\n".join(out)


def _render_image_as_link(
    renderer: Any, tokens: list[Token], idx: int, options: Any, env: Any
) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = html.escape(token.content or src)
    if not is_safe_url(src):
        return alt
    return f'<a href="{html.escape(src)}" rel="noopener noreferrer" target="_blank">🖼 {alt}</a>'


@lru_cache(maxsize=1)
def _html_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = is_safe_url  # type: ignore[method-assign]
    md.add_render_rule("image", _render_image_as_link)
    return md


def render_html(text: str) -> str:
    """HTML for the live view: raw HTML shown as text, unsafe links and images inert."""
    return str(_html_renderer().render(text))
