"""What ``%stream log`` prints, and how failures read: within the output's width, with
each failed run's reason, previews as plain text, and no doubled punctuation."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wcwidth import wcswidth

from ipy_stream.errors import clause, describe_error, join_text, sentence
from ipy_stream.outcome import Outcome, Status, footer_text
from ipy_stream.reports import format_log
from ipy_stream.runlog import LoggedRun, RunLog

BASE_URL = "http://localhost:9/v1"
REQUEST = httpx2.Request("POST", f"{BASE_URL}/chat/completions")
_ids = itertools.count()

DOUBLED = re.compile(r"[.;:,][)\]'\"]*\s?[.;:,·…]|…\.")
"""Punctuation a reader sees twice: "error.).", "error.);", "cut….", "cut,…",
"reason. · 0 tokens"."""


def record(
    log: RunLog,
    *,
    model: str = "gpt-4o-mini",
    prompt: str = "Say hi",
    answer: str = "Hi!",
    status: Status = "done",
    message: str = "",
    tokens: int = 3,
) -> None:
    """One run, recorded as the magic records it."""
    log.record(
        batch=f"batch-{next(_ids)}",
        started_at=datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),
        model=model,
        label=model,
        base_url=BASE_URL,
        params={"temperature": None, "background": False},
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
        outcome=Outcome(text=answer, status=status, message=message, tokens=tokens, seconds=1.25),
    )


def shown(log: RunLog, width: int | None = None, search: str | None = None) -> list[str]:
    """The lines ``%stream log`` prints for this log."""
    runs = log.recent(10, search)
    if width is None:
        return format_log(runs, str(log.path), search).splitlines()
    return format_log(runs, str(log.path), search, width=width).splitlines()


def table(lines: list[str], log: RunLog) -> list[str]:
    """The lines after the title (and the log's path, when it has a line of its own)."""
    rest = lines[1:]
    if rest and rest[0] == str(log.path):
        rest = rest[1:]
    return rest


def row_of(lines: list[str], run_id: int) -> int:
    """The index of the row of run ``run_id``."""
    (index,) = [i for i, line in enumerate(lines) if line.split()[:1] == [str(run_id)]]
    return index


def too_wide(lines: list[str], log: RunLog, width: int) -> list[str]:
    """Lines wider than ``width`` terminal columns, but the log's path, which is never cut."""
    return [line for line in lines if line != str(log.path) and wcswidth(line) > width]


def connection_error(cause: Exception | None = None) -> openai.APIConnectionError:
    """An APIConnectionError as the openai client raises it, chained to ``cause``."""
    exc = openai.APIConnectionError(request=REQUEST)
    exc.__cause__ = cause
    return exc


def status_error(status: int, message: str, body: object = None) -> openai.APIStatusError:
    response = httpx2.Response(status, request=REQUEST, json=body)
    return openai.APIStatusError(message, response=response, body=body)


@pytest.fixture
def log(tmp_path: Path) -> RunLog:
    return RunLog(tmp_path / "runs.sqlite3")


# -- the width ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
def test_long_models_prompts_answers_and_reasons_stay_within_the_width(
    log: RunLog, width: int
) -> None:
    record(log, model="organisation/" + "very-long-model-name-" * 4, prompt="Why? " * 80)
    record(log, answer="Because " * 300, tokens=123_456)
    record(
        log,
        status="failed",
        answer="",
        message=describe_error(
            connection_error(httpx2.ConnectError("x" * 500)), model="m", base_url=BASE_URL
        ),
    )
    record(log, status="interrupted", prompt="猫 " * 100, answer="🐈" * 200)
    lines = shown(log, width)
    assert too_wide(lines, log, width) == []
    rows = table(lines, log)
    assert len(rows) == 1 + 4 + 1, "a header, four runs and one reason"
    assert "interrupted" in rows[row_of(rows, 4)], "an interrupted run is marked at any width"
    assert "failed" in rows[row_of(rows, 3)]
    # Cut text says so, and a short answer stays whole beside a long prompt.
    assert rows[row_of(rows, 1)].endswith("… → Hi!")
    long_answer = rows[row_of(rows, 2)]
    assert "→ Beca" in long_answer and long_answer.endswith("…")
    if width >= 60:
        assert "Say hi → Because" in long_answer


def test_the_default_width_suits_a_notebook(log: RunLog) -> None:
    record(log, model="x" * 60, prompt="A long question " * 20, answer="A long answer " * 50)
    assert too_wide(shown(log), log, 100) == []


def test_the_preview_gets_the_room_the_other_columns_leave(log: RunLog) -> None:
    record(log, prompt="Tell me about the sea " * 10, answer="The sea is large " * 20)
    previews = {}
    for width in (60, 100, 160):
        rows = table(shown(log, width), log)
        row = rows[row_of(rows, 1)]
        assert width - 2 <= wcswidth(row) <= width, "the preview fills the line"
        previews[width] = row.split("  ")[-1]
    assert len(previews[60]) < len(previews[100]) < len(previews[160])
    # Both ends stay in view, each cut with "…".
    for preview in previews.values():
        prompt, answer = preview.split(" → ")
        assert prompt.startswith("Tell me") and prompt.endswith("…")
        assert answer.startswith("The sea") and answer.endswith("…")


def test_the_path_of_the_log_is_never_cut(log: RunLog) -> None:
    record(log)
    lines = shown(log, 40)
    assert str(log.path) in lines, "the path is on a line of its own, whole, to be copied"
    assert too_wide(lines, log, 40) == []


# Letters, wide characters, combining marks, control characters and Markdown syntax.
_alphabet = st.sampled_from(
    [*"aZ09 .,;:!?-", "\n", "\t", "\x1b", "\x07", "\u00e9", "\u0301", "猫", "🐈", *"#*_`[]()<>|~!"]
)
_texts = st.text(_alphabet, max_size=300)


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(min_value=30, max_value=220),
    runs=st.lists(
        st.tuples(
            st.text(_alphabet, min_size=1, max_size=80),
            _texts,
            _texts,
            st.sampled_from(["done", "failed", "interrupted"]),
            _texts,
            st.integers(min_value=0, max_value=10**9),
        ),
        min_size=1,
        max_size=4,
    ),
    search=st.none() | st.text(_alphabet, min_size=1, max_size=60),
)
def test_every_line_fits_any_width(
    tmp_path_factory: pytest.TempPathFactory,
    width: int,
    runs: list[tuple[str, str, str, Status, str, int]],
    search: str | None,
) -> None:
    log = RunLog(tmp_path_factory.mktemp("log") / "runs.sqlite3")
    for model, prompt, answer, status, message, tokens in runs:
        record(
            log,
            model=model,
            prompt=prompt,
            answer=answer,
            status=status,
            message=message,
            tokens=tokens,
        )
    lines = format_log(log.recent(10), str(log.path), search, width=width).splitlines()
    assert too_wide(lines, log, width) == []
    assert not any(char in line for line in lines for char in "\x1b\x07\t")


# -- what a row says ------------------------------------------------------------------------


def test_a_failed_run_shows_why_on_an_indented_line_below_it(log: RunLog) -> None:
    reason = describe_error(
        connection_error(httpx2.ConnectError("[Errno 111] Connection refused")),
        model="gpt-4o",
        base_url=BASE_URL,
    )
    record(log, model="gpt-4o", answer="", status="failed", message=reason)
    record(log, model="gpt-4o-mini", answer="Fine.")
    rows = table(shown(log, 200), log)
    assert len(rows) == 1 + 2 + 1
    failed = row_of(rows, 1)
    assert "failed" in rows[failed]
    line = rows[failed + 1]
    assert line.startswith("  ") and not line.lstrip()[0].isdigit()
    assert "Could not reach the model server at http://localhost:9/v1" in line
    assert "Connection refused" in line
    # A run that worked has no such line.
    assert rows[row_of(rows, 2) + 1 :] == [rows[failed], line]


def test_a_failure_reason_is_shortened_to_the_width(log: RunLog) -> None:
    reason = describe_error(RuntimeError("the proxy said no " * 20), model="m")
    record(log, answer="", status="failed", message=reason)
    rows = table(shown(log, 70), log)
    line = rows[row_of(rows, 1) + 1]
    assert "RuntimeError: the proxy said no" in line
    assert wcswidth(line) <= 70
    assert line.endswith("…")


def test_previews_are_plain_text_without_markdown(log: RunLog) -> None:
    record(
        log,
        prompt="# Plan\n\nList **three** `fruits` from [the shop](https://shop.example/list)",
        answer=(
            "## Fruits\n\n1. *Apples*\n2. __Pears__\n- ~~Plums~~\n\n"
            "> quoted\n\n```python\nprint('done')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
        ),
    )
    rows = table(shown(log, 250), log)
    row = rows[row_of(rows, 1)]
    assert row.endswith(
        "Plan List three fruits from the shop → Fruits Apples Pears Plums quoted "
        "print('done') a b 1 2"
    )
    for markup in ("#", "**", "`", "](", "https://", "__", "~~", "> ", "|", "```", "1."):
        assert markup not in row.split("  ")[-1], markup


def test_previews_collapse_whitespace_and_show_html_as_text(log: RunLog) -> None:
    record(log, prompt="Line one\n\n\n   line\ttwo", answer="<b>bold</b>\r\nnext")
    rows = table(shown(log, 200), log)
    assert rows[row_of(rows, 1)].endswith("Line one line two → <b>bold</b> next")


def test_a_run_without_an_answer_says_so(log: RunLog) -> None:
    record(log, answer="", status="failed", message="Bad gateway.")
    rows = table(shown(log, 120), log)
    assert rows[row_of(rows, 1)].endswith("Say hi → (no answer)")


def test_the_log_exposes_each_runs_error(log: RunLog) -> None:
    record(log, status="failed", answer="", message="Bad gateway.")
    record(log)
    assert [run.error for run in log.recent()] == [None, "Bad gateway."]


def test_format_log_reads_runs_given_directly() -> None:
    run = LoggedRun(
        id=7,
        started_at="2024-05-01T12:34:56.000+00:00",
        model="m",
        status="failed",
        tokens=0,
        seconds=0.5,
        prompt="*Hi*",
        answer="",
        error="ValueError: boom.",
    )
    lines = format_log([run], "/tmp/runs.sqlite3", None, width=60).splitlines()
    assert lines[2].startswith(" 7  2024-05-01 12:34  m")
    assert lines[2].endswith("Hi → (no answer)")
    assert lines[3].strip() == "↳ ValueError: boom."


# -- punctuation ------------------------------------------------------------------------------

EXCEPTIONS: list[tuple[str, BaseException, int]] = [
    ("connection error, nothing received", connection_error(), 0),
    ("connection error, some tokens received", connection_error(), 5),
    (
        "connection error with a cause ending in a full stop",
        connection_error(httpx2.ConnectError("All connection attempts failed.")),
        0,
    ),
    (
        "dropped connection with a cause ending in a full stop",
        connection_error(httpx2.RemoteProtocolError("peer closed connection.")),
        9,
    ),
    (
        "connection error with a long cause cut after a full stop",
        connection_error(httpx2.ConnectError("No route. " * 40)),
        0,
    ),
    (
        "an HTTP error with a JSON body",
        status_error(502, "Error code: 502 - {'error': 'upstream'}", {"error": "upstream"}),
        0,
    ),
    (
        "an HTTP error with a long message",
        openai.InternalServerError(
            "Error code: 500 - " + "retry, " * 60,
            response=httpx2.Response(500, request=REQUEST),
            body=None,
        ),
        0,
    ),
    (
        "an unreadable response",
        openai.APIError("Response ended early:", request=REQUEST, body=None),
        0,
    ),
    ("another exception without a full stop", ValueError("boom"), 0),
    ("a KeyError", KeyError("missing"), 0),
    ("another exception with a long first line", RuntimeError("abc. " * 60), 0),
    ("another exception without a message", RuntimeError(), 0),
]


@pytest.mark.parametrize(
    ("exc", "tokens"),
    [pytest.param(exc, tokens, id=name) for name, exc, tokens in EXCEPTIONS],
)
def test_error_messages_read_as_sentences_without_doubled_punctuation(
    exc: BaseException, tokens: int
) -> None:
    message = describe_error(exc, model="gpt-4o", base_url=BASE_URL, tokens=tokens)
    assert DOUBLED.search(message) is None, message
    assert message.endswith((".", "?", "!", "…")), message


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (
            status_error(
                500,
                "Error code: 500 - {'error': {'message': 'boom'}}",
                {"error": {"message": "The engine overheated."}},
            ),
            "answered HTTP 500: The engine overheated.",
        ),
        (
            status_error(
                502, "Error code: 502 - {'message': 'upstream down'}", {"message": "upstream down"}
            ),
            "answered HTTP 502: upstream down.",
        ),
        (
            status_error(503, "Error code: 503 - busy", None),
            "answered HTTP 503: busy.",
        ),
    ],
)
def test_an_http_error_says_its_status_once_and_what_the_server_said(
    exc: BaseException, said: str
) -> None:
    message = describe_error(exc, model="gpt-4o", base_url=BASE_URL)
    assert message.endswith(said), message
    assert "Error code" not in message


@pytest.mark.parametrize(
    ("exc", "tokens"),
    [pytest.param(exc, tokens, id=name) for name, exc, tokens in EXCEPTIONS[:5]],
)
def test_a_failure_in_the_footer_has_no_doubled_punctuation(
    exc: BaseException, tokens: int
) -> None:
    message = describe_error(exc, model="gpt-4o", base_url=BASE_URL, tokens=tokens)
    outcome = Outcome(text="", status="failed", message=message, tokens=tokens, seconds=2.0)
    footer = footer_text("gpt-4o", outcome)
    assert footer.startswith("gpt-4o · failed: ")
    assert DOUBLED.search(footer) is None, footer
    assert footer.endswith(f" · {tokens} token{'s' if tokens != 1 else ''} · 2.0 s")


def test_a_footer_keeps_a_messages_own_words() -> None:
    outcome = Outcome(text="", status="failed", message="Bad gateway. Try again later.")
    assert (
        footer_text("m", outcome) == "m · failed: Bad gateway. Try again later · 0 tokens · 0.0 s"
    )


# -- the helpers for composing messages -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ("Connection error.", ".", "Connection error."),
        ("Connection error", ".", "Connection error."),
        ("Cut short…", ".", "Cut short…"),
        ("Is it on?", ".", "Is it on?"),
        (
            "Bad gateway.",
            "; the partial answer is kept.",
            "Bad gateway; the partial answer is kept.",
        ),
        (
            "Bad gateway",
            "; the partial answer is kept.",
            "Bad gateway; the partial answer is kept.",
        ),
        ("Failed:", ". Try again.", "Failed. Try again."),
        ("(see the docs.)", ".", "(see the docs.)"),
        ("a failed", " (kept in 'x').", "a failed (kept in 'x')."),
        ("", ". Next.", "Next."),
    ],
)
def test_join_text_never_doubles_punctuation(text: str, suffix: str, expected: str) -> None:
    assert join_text(text, suffix) == expected


def test_sentence_and_clause_compose_the_multi_model_failure_line() -> None:
    messages = {
        "a": describe_error(connection_error(), model="a"),
        "b": describe_error(ValueError("boom"), model="b"),
    }
    joined = sentence("; ".join(f"{model} failed: {clause(m)}" for model, m in messages.items()))
    assert joined == (
        "a failed: Could not reach the model server, or the connection dropped mid-stream "
        "(Connection error); b failed: ValueError: boom."
    )
    as_sentences = " ".join(sentence(f"{model} failed: {m}") for model, m in messages.items())
    assert DOUBLED.search(as_sentences) is None, as_sentences
