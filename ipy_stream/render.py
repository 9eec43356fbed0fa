"""An untrusted answer, rendered once from Markdown to HTML and sanitized.

A model's answer may carry HTML or script (a prompt injection can put it there), and
every Markdown renderer reads edge cases differently. So the answer is never kept as
Markdown for some other renderer to interpret: it is rendered here, once, and what is
kept is HTML that a real sanitizer has cleaned.

* **One dialect**: markdown-it-py, CommonMark with tables and strikethrough, raw HTML
  off (it shows as text), no bare-URL linking, ``$…$`` and ``$$…$$`` math. The live
  view runs the same dialect in the browser (``js/src/markdown.js``).
* **One policy** (``policy.json``, also bundled into the live view): the elements and
  attributes an answer may become, links only to http, https and mailto (with
  ``rel="noopener noreferrer nofollow"``), no ``style`` but a table column's
  alignment, and images shown as links, so nothing fetches an address.
* **A real sanitizer**: nh3 (ammonia), which parses HTML as browsers do and
  re-serializes only what the policy allows.
* **Math stays text** for the notebook's MathJax to typeset: the answer sits in a
  container MathJax skips (``mathjax_ignore``), and only the math spans that this
  module writes are processed again. Math that uses TeX commands able to make links,
  styles or new macros is shown as code instead.
* **Code is highlighted** with Pygments, as ``<pre class="highlight">``, which
  JupyterLab, Notebook 7 and nbconvert colour with the notebook's theme.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token as MdToken
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments.lexers import get_lexer_by_name
from pygments.token import Token, _TokenType

__all__ = [
    "HIGHLIGHT_CLASSES",
    "POLICY",
    "AnswerRenderer",
    "escape",
    "is_safe_url",
    "render_markdown",
    "sanitize",
]

POLICY: dict[str, Any] = json.loads(files("ipy_stream").joinpath("policy.json").read_text())

_SCHEMES = frozenset(POLICY["url_schemes"])
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f\\]")
_RISKY_TEX = re.compile(
    r"\\(?:" + "|".join(POLICY["tex_commands_shown_as_code"]) + r")(?![A-Za-z])"
)
# The languages the live view highlights (js/src/markdown.js), by the same names.
_LANGUAGES = {
    "bash": "bash", "sh": "bash", "shell": "bash", "console": "console",
    "shellsession": "console", "c": "c", "cpp": "cpp", "c++": "cpp", "diff": "diff",
    "go": "go", "ini": "ini", "toml": "toml", "java": "java", "javascript": "javascript",
    "js": "javascript", "json": "json", "markdown": "markdown", "md": "markdown",
    "python": "python", "py": "python", "python3": "python", "ipython": "python",
    "pycon": "pycon", "rust": "rust", "rs": "rust", "sql": "sql", "typescript": "typescript",
    "ts": "typescript", "xml": "xml", "html": "html", "yaml": "yaml", "yml": "yaml",
}  # fmt: skip
_HIGHLIGHT_LIMIT = 100_000
"""Longer code blocks are shown plain: highlighting is decoration, not worth seconds."""


def is_safe_url(url: str) -> bool:
    """Whether a link may point at ``url``: only http, https and mailto addresses."""
    decoded = _URL_NOISE.sub("", html.unescape(url)).lower()
    match = _SCHEME.match(decoded)
    return match is not None and match.group(1) in _SCHEMES


def escape(text: str) -> str:
    """Plain text (a footer, a server's error message) as HTML text."""
    return html.escape(text, quote=True)


def _code_block(code: str, info: str) -> str:
    words = info.split(maxsplit=1)
    language = _LANGUAGES.get(words[0].lower()) if words else None
    body = escape(code)
    if language is not None and len(code) <= _HIGHLIGHT_LIMIT:
        body = _highlight(code, language)
    return f'<pre class="highlight"><code>{body}</code></pre>\n'


# Pygments token kinds -> the classes that Jupyter's Pygments theme (jupyterlab_pygments,
# in JupyterLab, Notebook 7 and nbconvert) colours as the live view colours them; other
# tokens (names, punctuation, operators, which highlight.js leaves plain too) stay plain
# text, which keeps the saved output small.
_TOKEN_CLASSES = (
    (Token.Comment, "c"),
    (Token.Keyword, "k"),
    (Token.Operator.Word, "k"),  # "and", "in", "not": keywords, as highlight.js has them
    (Token.Literal.Number, "m"),
    (Token.Literal.String, "s"),
    (Token.Error, "err"),
)
HIGHLIGHT_CLASSES = frozenset(name for _, name in _TOKEN_CLASSES)


@cache
def _token_class(kind: _TokenType) -> str | None:
    ancestors = kind.split()  # the kind and every kind it belongs to
    return next((name for parent, name in _TOKEN_CLASSES if parent in ancestors), None)


def _highlight(code: str, language: str) -> str:
    out: list[str] = []
    run: list[str] = []
    current: str | None = None
    # The code exactly as written: no blank lines dropped, no newline added.
    lexer = get_lexer_by_name(language, stripnl=False, ensurenl=False)
    for kind, value in lexer.get_tokens(code):
        name = _token_class(kind) if value.strip() else current
        if name != current:
            _close_run(out, run, current)
            current = name
        run.append(value)
    _close_run(out, run, current)
    return "".join(out)


def _close_run(out: list[str], run: list[str], name: str | None) -> None:
    if run:
        text = escape("".join(run))
        out.append(f'<span class="{name}">{text}</span>' if name else text)
        run.clear()


def _math(content: str, *, display: bool, inline: bool = False) -> str:
    delimiter = "$$" if display else "$"
    source = escape(delimiter + content + delimiter)
    if _RISKY_TEX.search(content):
        return f"<code>{source}</code>"
    classes = POLICY["math_classes"]["display" if display else "inline"]
    if display and not inline:
        return f'<div class="{classes}">{source}</div>\n'
    return f'<span class="{classes}">{source}</span>'


def _render_fence(_renderer: Any, tokens: Sequence[MdToken], idx: int, *_: Any) -> str:
    token = tokens[idx]
    return _code_block(token.content, token.info if token.type == "fence" else "")


def _render_image(_renderer: Any, tokens: Sequence[MdToken], idx: int, *_: Any) -> str:
    # An image would make the page fetch its address: show a link to it instead.
    token = tokens[idx]
    source = str(token.attrGet("src") or "")
    alt = escape(token.content or source)
    if not is_safe_url(source):
        return alt
    return f'<a href="{escape(source)}">🖼 {alt}</a>'


def _render_heading(
    renderer: Any, tokens: Sequence[MdToken], idx: int, options: Any, env: Any
) -> str:
    # Marked for JupyterLab's table of contents to leave out: an answer's headings are not
    # the notebook's sections (they would flood the list and shift its numbering).
    tokens[idx].attrSet("class", POLICY["heading_class"])
    return str(renderer.renderToken(tokens, idx, options, env))


def _render_math_inline(_renderer: Any, tokens: Sequence[MdToken], idx: int, *_: Any) -> str:
    return _math(tokens[idx].content, display=False)


def _render_math_inline_double(_renderer: Any, tokens: Sequence[MdToken], idx: int, *_: Any) -> str:
    return _math(tokens[idx].content, display=True, inline=True)


def _render_math_display(_renderer: Any, tokens: Sequence[MdToken], idx: int, *_: Any) -> str:
    return _math(tokens[idx].content.strip("\n"), display=True)


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(
        dollarmath_plugin,
        allow_labels=False,
        allow_digits=False,
        allow_blank_lines=False,
        double_inline=True,
    )
    md.validateLink = is_safe_url  # type: ignore[method-assign]
    rules = md.add_render_rule
    rules("fence", _render_fence)
    rules("code_block", _render_fence)
    rules("image", _render_image)
    rules("heading_open", _render_heading)
    rules("math_inline", _render_math_inline)
    rules("math_inline_double", _render_math_inline_double)
    rules("math_block", _render_math_display)
    return md


def _classes() -> dict[str, set[str]]:
    math = {name for value in POLICY["math_classes"].values() for name in value.split()}
    return {
        "div": {"ipy-math", "ipy-math-display", *math},
        "pre": {"highlight"},
        "span": set(HIGHLIGHT_CLASSES) | math,
        "code": set(),
        **{f"h{level}": {POLICY["heading_class"]} for level in range(1, 7)},
    }


@cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(POLICY["tags"]),
        clean_content_tags={"script", "style"},
        # Classes are checked one by one (allowed_classes), so "class" is not listed here.
        attributes={tag: set(names) - {"class"} for tag, names in POLICY["attributes"].items()},
        url_schemes=set(POLICY["url_schemes"]),
        url_relative="deny",
        link_rel=POLICY["link_rel"],
        allowed_classes=_classes(),
        filter_style_properties=set(POLICY["style_properties"]),
        strip_comments=True,
    )


def sanitize(fragment: str) -> str:
    """``fragment`` with everything outside the policy removed (nh3)."""
    return str(_cleaner().clean(fragment))


def _normalized(text: str) -> str:
    # What markdown-it does to its input, done first so that line offsets are its own.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def render_markdown(text: str) -> str:
    """The answer ``text`` as sanitized HTML, ready to keep in a notebook."""
    return sanitize(_markdown().render(_normalized(text)))


_REFERENCE = re.compile(r"\]:")
"""Could define a link reference, which changes how earlier text renders."""


class AnswerRenderer:
    """Renders the finished blocks of a growing answer while it streams, so that its
    end costs only the rest: :meth:`html` equals :func:`render_markdown` of the text.

    A top-level block is finished once another one has started after a blank line:
    nothing appended later changes it, except a link reference definition, so an
    answer that may hold one is rendered whole at the end. Work is done when the
    text has grown by ``step`` characters and by the part still open, so a block
    that never ends (one long code block) is parsed a bounded number of times.
    Not thread-safe: one thread adds, then asks for :meth:`html`.
    """

    def __init__(self, step: int = 4096) -> None:
        self._step = step
        self._pending: list[str] = []
        self._length = 0
        self._next = step
        self._source = ""  # the text rendered so far ...
        self._html: list[str] = []  # ... and its HTML
        self._whole = False  # True once a reference definition may exist

    def add(self, chunk: str) -> None:
        """Take the next piece of the answer."""
        self._pending.append(chunk)
        self._length += len(chunk)
        if self._length >= self._next and not self._whole:
            try:
                self._advance()
            except Exception:  # noqa: BLE001 - rendering ahead only saves time at the end
                # It runs on the live view's writer thread, which must keep sending
                # text: the end renders the whole answer instead (and shows any error).
                self._whole = True

    def _advance(self) -> None:
        tail = _normalized("".join(self._pending))
        self._pending = [tail]
        if _REFERENCE.search(tail):
            self._whole = True
            return
        tokens = _markdown().parse(tail)
        starts = [i for i, token in enumerate(tokens) if token.level == 0 and token.nesting >= 0]
        lines = tail.split("\n")
        cut = None
        for index in reversed(starts[1:]):
            where = tokens[index].map
            line = where[0] if where else 0
            # Started after a blank line, and its first line is complete.
            if line >= 1 and not lines[line - 1].strip(" \t") and line + 1 < len(lines):
                cut = (index, line)
                break
        if cut is not None:
            index, line = cut
            offset = sum(len(text) + 1 for text in lines[:line])
            rendered = _markdown().renderer.render(tokens[:index], _markdown().options, {})
            self._html.append(sanitize(rendered))
            self._source += tail[:offset]
            self._pending = [tail[offset:]]
            tail = tail[offset:]
        self._next = self._length + max(self._step, len(tail))

    def html(self, text: str) -> str:
        """The final answer ``text`` as sanitized HTML (the blocks done so far are reused)."""
        text = _normalized(text)
        if self._whole or not text.startswith(self._source) or _REFERENCE.search(text):
            return render_markdown(text)
        return "".join(self._html) + render_markdown(text[len(self._source) :])
