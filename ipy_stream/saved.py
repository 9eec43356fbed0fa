"""The output a finished run leaves in the notebook: sanitized HTML and the plain text.

This replaces the live view when a stream ends, and is what saved, exported
(nbconvert), executed (papermill, nbclient) and re-opened notebooks show. It holds
exactly two types: ``text/html``, the answer rendered once and sanitized
(:mod:`ipy_stream.render`), and ``text/plain``, the answer as received. No other rich
type is kept, so no frontend can pick one that renders the answer another way.

The layout mirrors the live view (``js/src/live.css``), with its styles written inline
because a re-opened notebook loads no stylesheet of ours: a coloured rule on the left,
the answer in the host's own rendered-Markdown styles, a small footer under it, and
several answers side by side in columns. Every text in it that does not come from this
module (the answer, the footer with a server's error message, a model's name) is
rendered or escaped, then sanitized.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipy_stream.outcome import Outcome, Status, ToolCall, footer_text
from ipy_stream.render import POLICY, escape, render_markdown, sanitize

__all__ = ["SavedAnswer", "final_bundle", "final_text"]

# Each colour as a literal, then as the theme's variable: a notebook that is not trusted
# has its outputs' styles filtered (JupyterLab drops var()), and keeps the literal.
_RULE_COLORS = {
    "streaming": ("#1976d2", "var(--jp-brand-color1, #1976d2)"),
    "done": ("#bdbdbd", "var(--jp-border-color1, #bdbdbd)"),
    "failed": ("#d32f2f", "var(--jp-error-color1, #d32f2f)"),
    "interrupted": ("#f57c00", "var(--jp-warn-color1, #f57c00)"),
}
_FOOTER_COLORS = {
    "failed": ("#d32f2f", "var(--jp-error-color1, #d32f2f)"),
    None: ("#757575", "var(--jp-ui-font-color2, #757575)"),
}
_FOOTER_STYLE = (
    "font-family: system-ui, sans-serif; "
    "font-family: var(--jp-ui-font-family, system-ui, sans-serif); "
    "font-size: 11px; font-size: var(--jp-ui-font-size0, 11px); "
    "line-height: 1.5; padding-bottom: 2px"
)
# The muted colour of a footer that did not fail: the thinking and the attachments too.
_MUTED = "color: {}; color: {}".format(*_FOOTER_COLORS[None])
_GRID_STYLE = "display: flex; gap: 12px; align-items: flex-start; width: 100%"
_PANE_STYLE = "flex: 1 1 0; min-width: 0"


@dataclass(frozen=True)
class SavedAnswer:
    """One model's part of the saved output."""

    text: str
    """The answer as received (Markdown)."""
    html: str
    """The answer rendered and sanitized: only what :mod:`ipy_stream.render` returns."""
    footer: str
    """The summary line (model, status, tokens, timings), plain text."""
    status: Status
    label: str
    """The model's name, as given with ``-m``."""
    thinking: str = ""
    """The model's thinking, rendered and sanitized ("" for none, or when not shown)."""
    thinking_tokens: int = 0
    tool_calls: tuple[ToolCall, ...] = ()
    attachments: tuple[str, ...] = ()
    """Labels of the tables and images sent with the prompt, e.g. ``[image: fig, 640×480]``."""

    @classmethod
    def of(
        cls,
        label: str,
        outcome: Outcome,
        html: str,
        *,
        with_message: bool = True,
        show_reasoning: bool = True,
        attachments: Sequence[str] = (),
    ) -> SavedAnswer:
        """The part of a finished stream of model ``label``; ``html`` is its answer as
        :mod:`ipy_stream.render` returns it (``with_message``: see ``footer_text``).
        ``show_reasoning`` keeps the model's thinking, folded, above the answer."""
        thinking = outcome.reasoning if show_reasoning else ""
        return cls(
            text=outcome.text,
            html=html,
            footer=footer_text(label, outcome, with_message=with_message),
            status=outcome.status,
            label=label,
            thinking=render_markdown(thinking) if thinking.strip() else "",
            thinking_tokens=outcome.reasoning_tokens,
            tool_calls=outcome.tool_calls,
            attachments=tuple(attachments),
        )


def _answer_html(answer: SavedAnswer) -> str:
    rule, rule_theme = _RULE_COLORS[answer.status]
    color, color_theme = _FOOTER_COLORS.get(answer.status, _FOOTER_COLORS[None])
    return (
        f'<div class="ipy-stream-saved" data-status="{answer.status}" '
        f'style="border-left: 3px solid {rule}; border-left: 3px solid {rule_theme}; '
        'padding-left: 10px">'
        f"{_thinking_html(answer)}"
        f'<div class="ipy-stream-body jp-RenderedHTMLCommon {POLICY["math_classes"]["container"]}">'
        f"{answer.html}</div>{_tools_html(answer)}{_attachments_html(answer)}"
        f'<div class="ipy-stream-footer" style="{_FOOTER_STYLE}; '
        f'color: {color}; color: {color_theme}">'
        f"{sanitize(escape(answer.footer))}</div></div>"
    )


def _thinking_html(answer: SavedAnswer) -> str:
    if not answer.thinking:
        return ""
    tokens = answer.thinking_tokens
    count = f" · {tokens} token{'' if tokens == 1 else 's'}" if tokens else ""
    return (
        f'<details class="ipy-stream-thinking" style="{_FOOTER_STYLE}; margin-bottom: 4px; '
        f'{_MUTED}">'
        f"<summary>Thinking{count}</summary>"
        f'<div class="jp-RenderedHTMLCommon {POLICY["math_classes"]["container"]}">'
        f"{answer.thinking}</div></details>"
    )


def _tools_html(answer: SavedAnswer) -> str:
    if not answer.tool_calls:
        return ""
    calls = "".join(
        f"<li><code>{sanitize(escape(call.name))}({sanitize(escape(call.arguments))})</code></li>"
        for call in answer.tool_calls
    )
    style = _FOOTER_STYLE
    return f'<div class="ipy-stream-tools" style="{style}">Tool calls:<ul>{calls}</ul></div>'


def _attachments_html(answer: SavedAnswer) -> str:
    if not answer.attachments:
        return ""
    style = f"{_FOOTER_STYLE}; {_MUTED}"
    sent = escape("Sent with the prompt: " + ", ".join(answer.attachments))
    return f'<div class="ipy-stream-attachments" style="{style}">{sanitize(sent)}</div>'


def final_bundle(answers: Sequence[SavedAnswer]) -> dict[str, str]:
    """The output that stays in the notebook: ``text/html`` and ``text/plain``."""
    if len(answers) == 1:
        html = _answer_html(answers[0])
        plain = answers[0].text
    else:
        panes = "".join(
            f'<div class="ipy-stream-pane" style="{_PANE_STYLE}">{_answer_html(a)}</div>'
            for a in answers
        )
        html = f'<div class="ipy-stream-grid" style="{_GRID_STYLE}">{panes}</div>'
        plain = "\n\n".join(f"── {a.label} ──\n{a.text}" for a in answers)
    return {"text/html": html, "text/plain": plain}


def final_text(answers: Sequence[SavedAnswer], *, streamed: bool) -> str:
    """What a terminal shows at the end: after a streamed answer, its footer; for
    answers that were not printed while they streamed, each with its label and footer.
    A line names the tables and images sent with the prompt, if any."""
    sent = answers[0].attachments if answers else ()
    listed = f"— Sent with the prompt: {', '.join(sent)}\n" if sent else ""
    if streamed:
        return listed + "".join(f"— {a.footer}\n" for a in answers)
    return "".join(f"── {a.label} ──\n{a.text}\n— {a.footer}\n\n" for a in answers) + listed
