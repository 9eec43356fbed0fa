"""The live footer never freezes: a clock before the first token, a count while a model
thinks, and a stall said as such, all without a token arriving."""

from __future__ import annotations

import re

import pytest

from ipy_stream.outcome import Outcome
from ipy_stream.view import WidgetView
from tests.support import wait_until


def _done(view: WidgetView) -> None:
    view.finish(Outcome(text="", status="done"))
    view.close()


def test_the_clock_ticks_before_the_first_token() -> None:
    view = WidgetView("demo", interval=0.05)
    try:
        assert view.widget.footer == "demo · waiting for the first token…"
        wait_until(lambda: view.widget.footer != "demo · waiting for the first token…")
        assert re.fullmatch(r"demo · waiting for the first token… · \d+\.\d s", view.widget.footer)
    finally:
        _done(view)


def test_thinking_is_counted_while_no_answer_comes() -> None:
    view = WidgetView("demo", interval=0.05)
    try:
        for piece in ["Let", " me", " think"]:
            view.think(piece)
        wait_until(lambda: "thinking… · 3 tokens" in view.widget.footer)
    finally:
        _done(view)


def test_a_stall_mid_stream_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ipy_stream.view.STALL_NOTICE", 0.2)
    view = WidgetView("demo", interval=0.05)
    try:
        view.append("Hello")
        wait_until(lambda: "no token for" in view.widget.footer)
        assert view.widget.footer.startswith("demo · streaming… · 1 token · no token for ")
    finally:
        _done(view)
