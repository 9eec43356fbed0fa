"""The answer is rendered once and sanitized: what may come out, and what honest text
looks like. The HTML is read back with html5lib, a parser that follows the WHATWG
specification as browsers do; the browser suite (``tests/browser/test_adversarial.py``)
checks the same outputs in real JupyterLab, nbconvert HTML and the live view."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import html5lib
import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbconvert import HTMLExporter

from ipy_stream.outcome import Outcome
from ipy_stream.render import POLICY, AnswerRenderer, _markdown, is_safe_url, render_markdown
from ipy_stream.saved import SavedAnswer, final_bundle
from tests.attacks import KNOWN, hostile_markdown

FUZZ_EXAMPLES = int(os.environ.get("IPY_STREAM_FUZZ_EXAMPLES", "3000"))
"""How many generated answers the fuzzer tries (CI runs the default)."""

_TAGS = set(POLICY["tags"])
_ATTRIBUTES = {tag: set(names) for tag, names in POLICY["attributes"].items()}
_ATTRIBUTES["a"].add("rel")
_RISKY_TEX = re.compile(
    r"\\(?:" + "|".join(POLICY["tex_commands_shown_as_code"]) + r")(?![A-Za-z])"
)
_MATH_CLASS = "mathjax_process"


def _parse(html: str) -> Any:
    return html5lib.parseFragment(html, container="div", namespaceHTMLElements=False)


def _serialize(fragment: Any) -> str:
    return str(html5lib.serialize(fragment, tree="etree", omit_optional_tags=False))


def policy_violations(html: str) -> list[str]:
    """What in ``html`` (an answer's rendered body) lies outside the policy."""
    found: list[str] = []
    for element in _parse(html).iter():
        tag = element.tag
        if not isinstance(tag, str) or tag == "DOCUMENT_FRAGMENT":
            continue
        if tag not in _TAGS:
            found.append(f"element <{tag}>")
            continue
        for name, value in element.attrib.items():
            if name not in _ATTRIBUTES.get(tag, set()):
                found.append(f"<{tag} {name}={value!r}>")
            elif name == "href" and not is_safe_url(value):
                found.append(f"<{tag} href={value!r}>")
            elif name == "style" and not re.fullmatch(r"text-align:(left|right|center)", value):
                found.append(f"<{tag} style={value!r}>")
            elif name == "rel" and set(value.split()) != {"noopener", "noreferrer", "nofollow"}:
                found.append(f"<{tag} rel={value!r}>")
        if _MATH_CLASS in element.attrib.get("class", "").split():
            text = "".join(element.itertext())
            if _RISKY_TEX.search(text):
                found.append(f"math with a risky command: {text!r}")
    return found


def assert_safe(answer: str) -> str:
    html = render_markdown(answer)
    assert policy_violations(html) == [], (answer, html)
    # What a browser parses is what it serializes back: no mutation on a second pass.
    once = _serialize(_parse(html))
    assert _serialize(_parse(once)) == once, html
    return html


@pytest.mark.parametrize(("name", "answer"), KNOWN, ids=[name for name, _ in KNOWN])
def test_known_attacks_stay_within_the_policy(name: str, answer: str) -> None:
    html = assert_safe(answer)
    assert "<script" not in html
    assert "onerror" not in html or "&gt;" in html  # only ever as text


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile_markdown())
def test_generated_attacks_stay_within_the_policy(answer: str) -> None:
    assert_safe(answer)


def test_the_policy_check_can_fail() -> None:
    # The checker above sees each kind of thing it exists to catch.
    bad = (
        '<img src=x><a href="javascript:x">a</a><p onclick="x">b</p><td style="color:red">'
        '<a href="https://e.com" rel="noopener">c</a>'
        '<span class="mathjax_process">$\\href{x}{y}$</span>'
    )
    found = policy_violations(bad)
    assert any("<img>" in f for f in found)
    assert any("javascript:" in f for f in found)
    assert any("onclick" in f for f in found)
    assert any("rel=" in f for f in found)
    assert any("risky" in f for f in found)


# -- honest answers read as written ------------------------------------------------------


def body_of(markdown: str) -> str:
    return render_markdown(markdown)


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        (
            "If $0<x<1$ then",
            '<p>If <span class="ipy-math mathjax_process tex2jax_process">$0&lt;x&lt;1$</span>'
            " then</p>\n",
        ),
        (
            "$$\n\\sum_i a_i * b_i\n$$",
            '<div class="ipy-math ipy-math-display mathjax_process tex2jax_process">'
            "$$\\sum_i a_i * b_i$$</div>\n",
        ),
        ("It costs $5 and $10.", "<p>It costs $5 and $10.</p>\n"),
        ("a < b and c > d", "<p>a &lt; b and c &gt; d</p>\n"),
        ("\\<div> is a tag", "<p>&lt;div&gt; is a tag</p>\n"),
        (
            "<https://example.com/docs>",
            '<p><a href="https://example.com/docs" rel="noopener noreferrer nofollow">'
            "https://example.com/docs</a></p>\n",
        ),
        ("~~gone~~ and **bold**", "<p><s>gone</s> and <strong>bold</strong></p>\n"),
        ("`a<b` in code", "<p><code>a&lt;b</code> in code</p>\n"),
        ("1 &amp; 2 &lt; 3", "<p>1 &amp; 2 &lt; 3</p>\n"),
    ],
)
def test_honest_text_reads_as_written(markdown: str, html: str) -> None:
    assert body_of(markdown) == html


def test_code_in_a_table_reads_as_written() -> None:
    html = body_of("| op | meaning |\n|:--|--:|\n| `a<b` | less |\n| `x \\| y` | or |")
    assert '<td style="text-align:left"><code>a&lt;b</code></td>' in html
    assert '<td style="text-align:left"><code>x | y</code></td>' in html
    assert '<th style="text-align:right">meaning</th>' in html


def test_fenced_code_is_highlighted_for_jupyters_pygments_theme() -> None:
    html = body_of('```python\ndef f(x):\n    return "<b>" + 1 if x in y else 0  # done\n```')
    assert html == (
        '<pre class="highlight"><code><span class="k">def </span>f(x):\n'
        '    <span class="k">return </span><span class="s">"&lt;b&gt;" </span>'
        '+ <span class="m">1 </span><span class="k">if </span>x <span class="k">in </span>'
        'y <span class="k">else </span><span class="m">0  </span><span class="c"># done\n'
        "</span></code></pre>\n"
    )


def test_code_in_an_unknown_language_is_shown_plain() -> None:
    assert body_of("```brainfuck\n+[<>]\n```") == (
        '<pre class="highlight"><code>+[&lt;&gt;]\n</code></pre>\n'
    )


def test_images_are_links_and_unsafe_links_are_text() -> None:
    assert body_of("![a chart](https://example.com/c.png)") == (
        '<p><a href="https://example.com/c.png" rel="noopener noreferrer nofollow">🖼 a chart'
        "</a></p>\n"
    )
    assert body_of("[x](javascript:alert(1)) [y](/files/a.txt)") == (
        "<p>[x](javascript:alert(1)) [y](/files/a.txt)</p>\n"
    )


def test_math_that_could_make_links_or_styles_is_shown_as_code() -> None:
    assert body_of("$\\href{https://e.com}{x}$") == (
        "<p><code>$\\href{https://e.com}{x}$</code></p>\n"
    )
    # a longer command that only starts like a risky one is fine
    assert "ipy-math" in body_of("$\\stylename x$")


# -- the saved output --------------------------------------------------------------------


def saved_answer(text: str, *, status: str = "done", message: str = "") -> SavedAnswer:
    outcome = Outcome(text=text, status=status, message=message, tokens=3, seconds=1.0)  # type: ignore[arg-type]
    return SavedAnswer.of("gpt-4o-mini", outcome, render_markdown(text))


def test_the_saved_output_is_html_and_plain_text_only() -> None:
    bundle = final_bundle([saved_answer("# Hi")])
    assert set(bundle) == {"text/html", "text/plain"}
    assert bundle["text/plain"] == "# Hi"
    html = bundle["text/html"]
    assert (
        '<div class="ipy-stream-body jp-RenderedHTMLCommon mathjax_ignore tex2jax_ignore">'
        '<h1 class="jp-toc-ignore">Hi</h1>\n</div>'
    ) in html
    assert "gpt-4o-mini · done · 3 tokens · 1.0 s</div>" in html


def test_a_servers_message_in_the_footer_is_text() -> None:
    answer = saved_answer(
        "", status="failed", message='<img src=x onerror="alert(1)"> `code` [x](javascript:y)'
    )
    html = final_bundle([answer])["text/html"]
    assert "<img" not in html
    assert 'failed: &lt;img src=x onerror="alert(1)"&gt; `code` [x](javascript:y)' in html


def test_side_by_side_answers_are_columns_each_with_its_footer() -> None:
    bundle = final_bundle([saved_answer("one"), saved_answer("two", status="interrupted")])
    html = bundle["text/html"]
    assert html.startswith('<div class="ipy-stream-grid" style="display: flex;')
    assert html.count('class="ipy-stream-pane"') == 2
    assert html.count('class="ipy-stream-footer"') == 2
    assert html.index("one") < html.index("two")
    assert 'data-status="interrupted"' in html


def test_no_answer_can_break_out_of_its_body() -> None:
    # An answer that ends inside an open code block, a list or a quote cannot swallow
    # the footer: the body is one element, closed by construction.
    for text in ("```\ncode", "- a\n  - b", "> q\n>", "<div>", "</div></div><div>"):
        html = final_bundle([saved_answer(text)])["text/html"]
        fragment = _parse(html)
        (root,) = list(fragment)
        body, footer = list(root)
        assert "ipy-stream-body" in body.attrib["class"]
        assert footer.attrib["class"] == "ipy-stream-footer"
        assert "".join(footer.itertext()).startswith("gpt-4o-mini · done")


# -- rendering while the answer streams ----------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                "para", "# h", "- item", "  - sub", "1. one", "> quote", "```", "```python",
                "    code", "$$", "x = $a$", "| a | b |", "|---|---|", "---", "[r]: https://e.com",
                "[r]", "text", "~~~", "\t", "",
            ]
        ),
        max_size=60,
    ).map("\n".join),
    st.integers(min_value=1, max_value=40),
    st.randoms(use_true_random=False),
)  # fmt: skip
def test_blocks_rendered_while_streaming_equal_the_whole_rendered_at_once(
    text: str, step: int, rng: random.Random
) -> None:
    renderer = AnswerRenderer(step=step)
    position = 0
    while position < len(text):
        size = rng.randint(1, 12)
        renderer.add(text[position : position + size])
        position += size
    assert renderer.html(text) == render_markdown(text)


def test_a_renderer_given_another_text_renders_that_text() -> None:
    renderer = AnswerRenderer(step=1)
    for piece in ("one\n\n", "two\n\n", "three\n\n", "four"):
        renderer.add(piece)
    assert renderer.html("other\n\nthing") == render_markdown("other\n\nthing")


# -- nbconvert ------------------------------------------------------------------------------


def export(answers: list[str]) -> str:
    """nbconvert's HTML for a notebook whose cells left these answers behind."""
    cells = []
    for text in answers:
        cell = nbformat.v4.new_code_cell("%%stream\nhi")
        cell.outputs = [
            nbformat.v4.new_output("display_data", data=final_bundle([saved_answer(text)]))
        ]
        cells.append(cell)
    body, _ = HTMLExporter().from_notebook_node(nbformat.v4.new_notebook(cells=cells))
    return str(body)


def test_nbconvert_exports_every_known_attack() -> None:
    body = export([text for _, text in KNOWN])
    assert body.count('class="ipy-stream-saved"') == len(KNOWN)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_markdown(), min_size=40, max_size=40))
def test_nbconvert_exports_generated_attacks(answers: list[str]) -> None:
    assert export(answers).count('class="ipy-stream-saved"') == len(answers)


# -- the live view speaks the same dialect ---------------------------------------------------

JS = Path(__file__).resolve().parent.parent / "js"
_HIGHLIGHTED = re.compile(r'(<pre class="highlight"><code)[^>]*>(.*?)(</code></pre>)', re.S)


def _without_highlighting(html: str) -> str:
    # Highlighting differs by design (highlight.js live, Pygments saved): compare the code.
    return _HIGHLIGHTED.sub(
        lambda m: m.group(1) + ">" + re.sub(r"</?span[^>]*>", "", m.group(2)) + m.group(3), html
    )


@pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules").is_dir(),
    reason="needs node and js/node_modules (make test runs npm ci in js/ first)",
)
def test_the_live_view_renders_the_same_html_before_sanitizing() -> None:
    output = subprocess.run(
        ["node", str(JS / "test" / "render-cases.mjs")],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    live = json.loads(output)
    assert len(live) >= 30
    for text, html in live.items():
        saved = _markdown().render(text)
        assert _without_highlighting(html) == _without_highlighting(saved), text


def test_a_failure_while_rendering_ahead_leaves_the_end_to_render_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    renderer = AnswerRenderer(step=1)

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug while streaming")

    monkeypatch.setattr(AnswerRenderer, "_advance", broken)
    renderer.add("# One\n\n")  # the live view's writer thread must not see the error
    renderer.add("two\n\nthree")
    monkeypatch.undo()
    assert renderer.html("# One\n\ntwo\n\nthree") == render_markdown("# One\n\ntwo\n\nthree")
