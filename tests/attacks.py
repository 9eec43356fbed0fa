"""Hostile answers: what a prompt-injected model could stream into a notebook.

Two sources, used by the unit fuzzer (``tests/test_render.py``) and by the browser
suite (``tests/browser/test_adversarial.py``):

* :data:`KNOWN`: hand-written answers, one or more per class of attack that has
  worked against notebook renderers (raw HTML, parser differentials between
  markdown-it, marked and mistune, math pre-passes, fence info strings, link
  reference definitions, URL obfuscation);
* :func:`hostile_markdown`: a Hypothesis strategy that mixes the same risky pieces
  at random, so the suites also meet attacks nobody wrote down.

Every address in them is ``{canary}``-based (see :func:`with_canary`): a browser
test serves the canary and fails if anything ever asks it for a page, and every
script attempt calls ``alert`` (a dialog) or sets ``window.__pwned``.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

CANARY = "http://canary.invalid"
"""Stands for the canary server's address until :func:`with_canary` fills it in."""

_RUN = "alert(1);window.__pwned=1"

# Raw HTML that would run or fetch if any renderer let it through as HTML.
_HTML = [
    f"<img src={CANARY}/img onerror={_RUN}>",
    f'<img src="{CANARY}/img2">',
    f"<script>{_RUN}</script>",
    f"<svg onload={_RUN}>",
    f"<svg><a xlink:href=javascript:{_RUN}><text>x</text></a></svg>",
    f'<iframe src="javascript:{_RUN}"></iframe>',
    f"<iframe srcdoc='<script>{_RUN}</script>'>",
    f'<a href="javascript:{_RUN}">click</a>',
    f'<a href="#" onclick="{_RUN}">click</a>',
    f"<details open ontoggle={_RUN}>",
    f"<style>*{{background:url({CANARY}/css)}}</style>",
    f'<link rel=stylesheet href="{CANARY}/link">',
    f'<object data="{CANARY}/object"></object>',
    f"<video><source onerror={_RUN}></video>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={_RUN}>",
    f'<noscript><p title="</noscript><img src=x onerror={_RUN}>">',
    f'<form action="javascript:{_RUN}"><button>go</button></form>',
    f'<div style="background:url({CANARY}/style)">x</div>',
    f"<base href={CANARY}/>",
    f"<meta http-equiv=refresh content='0;url={CANARY}/meta'>",
    "<!--",
    "-->",
    "<![CDATA[",
    "<?xml",
]
# Markdown syntax whose edges renderers read differently.
_SYNTAX = [
    "`", "``", "```", "````", "~~~", "~~", "~", "$", "$$", "\\(", "\\)", "\\[", "\\]",
    "\\begin{equation}", "\\end{equation}", "[", "]", "(", ")", "<", ">", "![", "!",
    "[x]: ", "[x]", "[x][]", "\n", "\n\n", "\t", "    ", "> ", "- ", "* ", "1. ", "| ",
    " |", "|---|---|\n", "---", "===", "\\", "&lt;", "&#60;", "&#x3c;", "&lt", '"',
    "'", "*", "_", "**", "#", "## ", "\u00a0", "\r", "\x00", "\u200b", "\ufeff",
]  # fmt: skip
# Link destinations, from plain to obfuscated.
_URLS = [
    f"{CANARY}/link",
    f"<{CANARY}/angle>",
    f'{CANARY}/title "a title"',
    f"javascript:{_RUN}",
    f"JaVaScRiPt:{_RUN}",
    f"java\tscript:{_RUN}",
    f"java&#x73;cript:{_RUN}",
    f"&#106;avascript:{_RUN}",
    f"javascript&colon;{_RUN}",
    f"java%73cript:{_RUN}",
    f"\njavascript:{_RUN}",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    f"//{CANARY.removeprefix('http://')}/protocol-relative",
    "/files/relative",
    "#anchor",
]
_MATH = [
    f"\\href{{javascript:{_RUN}}}{{x}}",
    f"\\href{{{CANARY}/mathlink}}{{x}}",
    "\\style{background:url(" + CANARY + "/mathstyle)}{x}",
    "\\class{jp-Dialog}{x}",
    "\\cssId{x}{y}",
    "\\unicode{x1F600}",
    "\\require{html}",
    "\\def\\x{\\href}",
    "\\newcommand{\\x}{y}",
    "\\bbox[background:url(" + CANARY + "/bbox)]{x}",
    "x<y",
    "a_1 * b_2",
    "\\frac{1}{2}",
]
_INFO = [
    "python",
    f'"><img src=x onerror={_RUN}>',
    f"python onmouseover={_RUN}",
    "mermaid",
    "html",
    "js",
    "x`y",
    "",
]


def _link(text: str, url: str) -> str:
    return f"[{text}]({url})"


KNOWN: list[tuple[str, str]] = [
    ("raw HTML", "\n\n".join(_HTML)),
    ("raw HTML inline", "Text " + " and ".join(_HTML[:10]) + " end."),
    ("links", "\n".join(_link(f"l{i}", url) for i, url in enumerate(_URLS))),
    ("images", "\n".join(f"![i{i}]({url})" for i, url in enumerate(_URLS))),
    ("autolinks", f"<{CANARY}/auto> <javascript:{_RUN}> {CANARY}/bare www.canary.invalid"),
    (
        "reference definitions",
        f"[a] [b] [c] [d]\n\n[a]: javascript:{_RUN}\n[b]:\n{CANARY}/next-line\n"
        f"- [c]: {CANARY}/in-list\n\n[d\\]]: javascript:{_RUN}\n[multi\nline]: {CANARY}/ml",
    ),
    (
        "code span next to a link destination",
        f'[x](`{CANARY}/a` "`<img src=x onerror={_RUN}>`") `[y](javascript:{_RUN})`',
    ),
    (
        "fence openers and closers",
        f"~~~\n<img src=x onerror={_RUN}>\n~~~ \n\n```\tx\n<script>{_RUN}</script>\n```\t\n"
        f"`<img src=x onerror={_RUN}>`\n````\n",
    ),
    (
        "fence info strings",
        "\n\n".join(f"```{info}\n<img src=x onerror={_RUN}>\n```" for info in _INFO),
    ),
    (
        "mermaid fence",
        "\n".join(
            [
                "```mermaid",
                "graph TD",
                f"A[<img src=x onerror={_RUN}>] --> B",
                f'click A "javascript:{_RUN}"',
                "```",
            ]
        ),
    ),
    (
        "math",
        "\n\n".join(f"${m}$ and $${m}$$" for m in _MATH)
        + f"\n\n$$\n{_MATH[0]}\n$$\n\n\\begin{{equation}}{_MATH[0]}\\end{{equation}}",
    ),
    (
        "math around HTML",
        f"$x$<img src=x onerror={_RUN}>$y$ and $`$<script>{_RUN}</script>`$` "
        f'<a title="$">$</a><img src=x onerror={_RUN}>',
    ),
    (
        "blockquote lazy lines",
        f"> quote\n<img src=x onerror={_RUN}>\n> ```\nlazy <script>{_RUN}</script>\n> ```",
    ),
    (
        "tabs after list items",
        f"- item\n\t<img src=x onerror={_RUN}>\n\n1. one\n\t\t<script>{_RUN}</script>",
    ),
    (
        "strikethrough and emphasis",
        f"~~<img src=x onerror={_RUN}>~~ ~<script>{_RUN}</script>~ "
        f"**[x](javascript:{_RUN})** _<svg onload={_RUN}>_",
    ),
    (
        "tables",
        f"| a | b |\n|---|:-:|\n| `x|<img src=x onerror={_RUN}>` | <script>{_RUN}</script> |\n"
        f'| [x](javascript:{_RUN}) | <td style="background:url({CANARY}/td)"> |',
    ),
    (
        "footer spoofing",
        "Answer.\n\n```\n<small>gpt-4o · done · 1 tokens</small>\n",
    ),
    ("unclosed fence", f"Intro\n\n```html\n<script>{_RUN}</script>\n"),
    ("escapes", f"\\<img src=x onerror={_RUN}> \\\\<script>{_RUN}</script> &lt;b&gt;"),
    ("entities", f"&lt;img src=x onerror={_RUN}&gt; &#60;script&#62;{_RUN}&#60;/script&#62;"),
]


def with_canary(text: str, canary: str) -> str:
    """``text`` with its addresses pointing at the canary server ``canary``."""
    return text.replace(CANARY, canary.rstrip("/"))


_PIECES = (
    st.sampled_from(_HTML)
    | st.sampled_from(_SYNTAX)
    | st.sampled_from(_URLS).map(lambda url: _link("x", url))
    | st.sampled_from(_URLS).map(lambda url: f"![x]({url})")
    | st.sampled_from(_URLS).map(lambda url: f"\n[r]: {url}\n")
    | st.sampled_from(_MATH).map(lambda tex: f"${tex}$")
    | st.sampled_from(_MATH).map(lambda tex: f"$${tex}$$")
    | st.sampled_from(_INFO).map(lambda info: f"\n```{info}\n")
    | st.text(alphabet="ab <>`$\\[]()!\n\t", max_size=6)
)


def hostile_markdown(max_pieces: int = 24) -> st.SearchStrategy[str]:
    """Markdown made of risky pieces in any order."""
    return st.lists(_PIECES, max_size=max_pieces).map("".join)


def random_hostile(rng: random.Random, pieces: int = 24) -> str:
    """One answer of risky pieces, drawn with ``rng`` (for suites that run outside
    Hypothesis and must be the same on every run)."""
    makers = [
        lambda: rng.choice(_HTML),
        lambda: rng.choice(_SYNTAX),
        lambda: _link("x", rng.choice(_URLS)),
        lambda: f"![x]({rng.choice(_URLS)})",
        lambda: f"\n[r]: {rng.choice(_URLS)}\n",
        lambda: f"${rng.choice(_MATH)}$",
        lambda: f"$${rng.choice(_MATH)}$$",
        lambda: f"\n```{rng.choice(_INFO)}\n",
    ]
    return "".join(rng.choice(makers)() for _ in range(pieces))
